"""A step-by-step harness for the Deployment controller on an embedded store, and its own checks.

The controller runs against real informers and a real one-member store,
but the test decides when it syncs: ``converge`` syncs a Deployment until a
sync changes nothing. ``run_replicasets`` stands in for the ReplicaSet
controller: every ReplicaSet's status follows its spec (``replicas``,
``observedGeneration``); pods become available (``readyReplicas`` =
``availableReplicas``) only as ``promote`` allows, and are gone at once
when a ReplicaSet shrinks. ``RolloutWatcher`` sees every write to the
ReplicaSets, in order, so bounds can be checked at each one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Self

import pytest

import kvstore
from controllers.api import Clientset
from controllers.api.objects import Obj
from controllers.api.watch import ResourceWatch, WatchEventType
from controllers.builtin.deployment import DeploymentController
from controllers.clock import FakeClock
from controllers.controller import ControllerContext, Result
from controllers.events import EventRecorder
from controllers.informers import SharedInformer, SharedInformerFactory
from kvstore.clock import FakeClock as WallFakeClock
from kvstore.node import NodeOptions

WALL_START = 1_700_000_000.0
DEADLINE = 10.0
"""Real seconds a condition that must come true may take; hitting it fails the test."""

Promote = Callable[[Obj], int | bool]
"""For a ReplicaSet: True (all its pods become available), False (none), or how many more."""


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Clientset]:
    async with kvstore.open(str(tmp_path / "s"),
                            options=NodeOptions(tick_interval=0.01, unsafe_no_fsync=True)) as n:
        clientset = Clientset(n, clock=WallFakeClock(WALL_START))
        await clientset.ensure_default_namespaces()
        yield clientset


def template(image: str = "nginx:1", app: str = "web") -> Obj:
    return {"metadata": {"labels": {"app": app}},
            "spec": {"containers": [{"name": "main", "image": image}]}}


def deployment(name: str = "web", replicas: int = 3, image: str = "nginx:1", *,
               surge: int | str | None = None, unavailable: int | str | None = None,
               recreate: bool = False, **spec: Any) -> Obj:
    strategy: Obj = {"type": "Recreate"} if recreate else {"type": "RollingUpdate"}
    if not recreate and (surge is not None or unavailable is not None):
        strategy["rollingUpdate"] = {k: v for k, v in (("maxSurge", surge),
                                                       ("maxUnavailable", unavailable))
                                     if v is not None}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": template(image), "strategy": strategy, **spec}}


def replicas(obj: Obj) -> int:
    return int(obj["spec"]["replicas"])


def available(obj: Obj) -> int:
    return int((obj.get("status") or {}).get("availableReplicas") or 0)


class Harness:
    """The controller with real informers, synced only when the test says."""

    def __init__(self, api: Clientset) -> None:
        self.api = api
        wall = api.clock
        if not isinstance(wall, WallFakeClock):
            raise TypeError("the harness needs a clientset on a fake wall clock")
        self.wall = wall
        self.clock = FakeClock()
        self.factory = SharedInformerFactory(api, clock=self.clock, freeze_objects=True)
        self.controller = DeploymentController()
        self.recorder = EventRecorder(api, "deployment-controller")
        self.queued: list[str] = []
        self.delayed: list[tuple[str, float]] = []
        informers = {name: self.factory.informer_for(name) for name in self.controller.informers}
        self.controller.setup(ControllerContext(
            api, informers, self.queued.append,
            lambda key, delay: self.delayed.append((key, delay)), self.recorder))

    async def __aenter__(self) -> Self:
        self.factory.start()
        await asyncio.wait_for(self.factory.wait_for_cache_sync(), DEADLINE)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.recorder.close()
        await self.factory.shutdown()

    def informer(self, resource: str) -> SharedInformer:
        return self.factory.informer_for(resource)

    async def seen(self, resource: str, obj: Obj) -> None:
        """Wait until the informer of ``resource`` has seen the write that returned ``obj``."""
        await asyncio.wait_for(self.informer(resource).wait_for_resource_version(
            obj["metadata"]["resourceVersion"]), DEADLINE)

    async def handlers_idle(self) -> None:
        """Wait until every informer handler has handled what it was told so far."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + DEADLINE
        while not all(i.handlers_idle() for i in self.factory.informers().values()):
            if loop.time() > give_up:
                raise AssertionError("informer handlers never went idle")
            await asyncio.sleep(0.005)

    # -- Deployments ------------------------------------------------------------------
    async def create(self, body: Obj) -> Obj:
        created = await self.api.resource("deployments").create(body)
        await self.seen("deployments", created)
        return created

    async def change(self, change: Callable[[Obj], None], name: str = "web") -> Obj:
        d = await self.api.resource("deployments").get(name, "default")
        change(d)
        written = await self.api.resource("deployments").update(d)
        await self.seen("deployments", written)
        return written

    async def deployment(self, name: str = "web") -> Obj:
        return await self.api.resource("deployments").get(name, "default")

    async def replicasets(self) -> list[Obj]:
        found = await self.api.resource("replicasets").list("default")
        return sorted(found["items"], key=lambda rs: rs["metadata"]["name"])

    # -- syncing ----------------------------------------------------------------------
    def _snapshot(self) -> tuple[tuple[str, str], ...]:
        objs = [*self.informer("deployments").lister().list(namespace="default"),
                *self.informer("replicasets").lister().list(namespace="default")]
        return tuple(sorted((o["kind"] + "/" + o["metadata"]["name"],
                             o["metadata"]["resourceVersion"]) for o in objs))

    async def sync(self, key: str = "default/web") -> Result | None:
        return await self.controller.reconcile(key)

    async def converge(self, key: str = "default/web", limit: int = 40) -> Result | None:
        """Sync ``key`` until a sync writes nothing; the last sync's result."""
        for _ in range(limit):
            before = self._snapshot()
            result = await self.sync(key)
            if self._snapshot() == before:
                return result
        raise AssertionError(f"{key} never settled in {limit} syncs")

    async def run_replicasets(self, promote: Promote = lambda rs: True) -> bool:
        """Stand in for the ReplicaSet controller once; whether any status changed."""
        changed = False
        for rs in await self.replicasets():
            want = replicas(rs)
            status = rs.get("status") or {}
            now = min(int(status.get("availableReplicas") or 0), want)
            grant = promote(rs)
            if grant is True:
                now = want
            elif grant is not False:
                now = min(want, now + int(grant))
            goal = {"replicas": want, "readyReplicas": now, "availableReplicas": now,
                    "observedGeneration": rs["metadata"]["generation"]}
            if {k: status.get(k) for k in goal} == goal:
                continue
            rs["status"] = {**status, **goal}
            await self.seen("replicasets",
                            await self.api.resource("replicasets").update_status(rs))
            changed = True
        return changed

    async def rollout(self, key: str = "default/web", promote: Promote = lambda rs: True,
                      limit: int = 60) -> int:
        """Alternate syncs and ReplicaSet status until neither changes; the passes taken."""
        for step in range(limit):
            await self.converge(key)
            if not await self.run_replicasets(promote):
                return step
        raise AssertionError(f"the rollout of {key} never finished")

    async def events(self) -> list[Obj]:
        await self.recorder.flush()
        found = await self.api.resource("events").list("default")
        return [e for e in found["items"] if e["source"]["component"] == "deployment-controller"]


class RolloutWatcher:
    """Every state of the ReplicaSets of a namespace, one per write (see the module)."""

    def __init__(self, api: Clientset) -> None:
        self.api = api
        self.current: dict[str, Obj] = {}
        self.states: list[dict[str, Obj]] = []
        self.revision = 0
        self._watch: ResourceWatch | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        client = self.api.resource("replicasets")
        listed = await client.list("default")
        for rs in listed["items"]:
            self.current[rs["metadata"]["name"]] = rs
        self._watch = await client.watch("default",
                                         resource_version=listed["metadata"]["resourceVersion"])
        self._task = asyncio.ensure_future(self._run(self._watch))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._watch is not None:
            await self._watch.aclose()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self, watch: ResourceWatch) -> None:
        async for ev in watch:
            if ev.type != WatchEventType.BOOKMARK:
                name = ev.object["metadata"]["name"]
                if ev.type == WatchEventType.DELETED:
                    self.current.pop(name, None)
                else:
                    self.current[name] = ev.object
                self.states.append(dict(self.current))
            self.revision = max(self.revision, int(ev.resource_version))

    async def caught_up(self) -> None:
        """Wait until every ReplicaSet write so far has been seen."""
        listed = await self.api.resource("replicasets").list("default")
        newest = max([int(rs["metadata"]["resourceVersion"]) for rs in listed["items"]],
                     default=0)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + DEADLINE
        while self.revision < newest:
            if loop.time() > give_up:
                raise AssertionError("the watch never caught up")
            await asyncio.sleep(0.005)


def total_replicas(state: dict[str, Obj]) -> int:
    return sum(replicas(rs) for rs in state.values())


def pods_available(state: dict[str, Obj]) -> int:
    """Available pods that still exist: a shrunk ReplicaSet's extra pods are gone."""
    return sum(min(replicas(rs), available(rs)) for rs in state.values())


# -- the harness's own checks -------------------------------------------------------------
async def test_run_replicasets_follows_spec_and_promotes_as_told(api: Clientset) -> None:
    async with Harness(api) as h:
        await h.create(deployment(replicas=4))
        await h.converge()
        [rs] = await h.replicasets()
        assert replicas(rs) == 4 and available(rs) == 0
        assert await h.run_replicasets(lambda rs: 1)
        assert available((await h.replicasets())[0]) == 1
        assert not await h.run_replicasets(lambda rs: False)
        assert available((await h.replicasets())[0]) == 1
        assert await h.run_replicasets()
        [rs] = await h.replicasets()
        assert rs["status"] == {"replicas": 4, "readyReplicas": 4, "availableReplicas": 4,
                                "observedGeneration": rs["metadata"]["generation"]}


async def test_watcher_sees_every_write(api: Clientset) -> None:
    async with Harness(api) as h, RolloutWatcher(api) as watcher:
        await h.create(deployment(replicas=2))
        await h.rollout()
        await watcher.caught_up()
        # The create, the status writes: never fewer states than writes seen.
        assert len(watcher.states) >= 2
        final = watcher.states[-1]
        assert next(iter(final.values()))["status"]["availableReplicas"] == 2
        assert pods_available(final) == 2 and total_replicas(final) == 2
