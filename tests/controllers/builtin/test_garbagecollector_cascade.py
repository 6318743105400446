"""The garbage collector under a Manager on an embedded store: every propagation policy.

Owners and dependents are plain objects with ownerReferences (no workload
controller runs). Queues and delays run on a ``FakeClock``; the wall clock of
the clientset is a fake too, and both move together while a test waits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import kvstore
from controllers.api import Clientset, NotFound
from controllers.api.objects import Obj
from controllers.builtin.garbagecollector import GarbageCollector
from controllers.builtin.podutil import owner_reference
from controllers.clock import FakeClock
from controllers.controller import (
    DONE,
    ControllerContext,
    PermanentError,
    requeue_after,
)
from controllers.events import EventRecorder
from controllers.informers import FREEZE_ENV, SharedInformerFactory
from controllers.manager import Manager
from kvstore.clock import FakeClock as WallFakeClock
from kvstore.node import NodeOptions

DEADLINE = 20.0  # real seconds; a test reaching it has failed


@dataclass
class Env:
    api: Clientset
    clock: FakeClock
    wall: WallFakeClock

    async def eventually(self, check: Callable[[], Awaitable[bool]], what: str) -> None:
        """Move both clocks in small steps until ``check()`` holds."""
        give_up = time.monotonic() + DEADLINE
        while not await check():
            if time.monotonic() > give_up:
                raise AssertionError(f"never happened: {what}")
            self.clock.advance(0.05)
            self.wall.advance(0.05)
            await asyncio.sleep(0.005)

    def run(self, manager: Manager) -> asyncio.Task[None]:
        return asyncio.ensure_future(manager.run())


@pytest.fixture
async def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Env]:
    monkeypatch.setenv(FREEZE_ENV, "1")
    async with kvstore.open(str(tmp_path / "s"),
                            options=NodeOptions(tick_interval=0.01, unsafe_no_fsync=True)) as n:
        wall = WallFakeClock(1_700_000_000.0)
        api = Clientset(n, clock=wall)
        await api.ensure_default_namespaces()
        yield Env(api, FakeClock(), wall)


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.wait({task})


def template(app: str) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": app}},
            "spec": {"containers": [{"name": "main", "image": "nginx:1.25"}]}}


def deployment(name: str) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": template(name)}}


def replicaset(name: str, *owners: Obj) -> Obj:
    m: dict[str, Any] = {"name": name, "namespace": "default"}
    if owners:
        m["ownerReferences"] = [owner_reference(o) for o in owners]
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": m,
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": template(name)}}


def pod(name: str, *owners: Obj, controller: bool = True, finalizers: tuple[str, ...] = ()
        ) -> Obj:
    m: dict[str, Any] = {"name": name, "namespace": "default"}
    if owners:
        m["ownerReferences"] = [owner_reference(o, controller=controller and i == 0)
                                for i, o in enumerate(owners)]
    if finalizers:
        m["finalizers"] = list(finalizers)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": m,
            "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]}}


async def exists(api: Clientset, resource: str, name: str, namespace: str = "default") -> bool:
    try:
        await api.resource(resource).get(name, namespace)
    except NotFound:
        return False
    return True


async def none_exist(api: Clientset, names: list[tuple[str, str]]) -> bool:
    for resource, name in names:
        if await exists(api, resource, name):
            return False
    return True


async def chain(api: Clientset, name: str, pods: int = 3) -> tuple[Obj, Obj, list[Obj]]:
    """A Deployment owning a ReplicaSet owning ``pods`` pods."""
    d = await api.resource("deployments").create(deployment(name))
    rs = await api.resource("replicasets").create(replicaset(f"{name}-rs", d))
    ps = [await api.resource("pods").create(pod(f"{name}-{i}", rs)) for i in range(pods)]
    return d, rs, ps


def names(rs: Obj, pods: list[Obj]) -> list[tuple[str, str]]:
    return [("replicasets", rs["metadata"]["name"])] + [
        ("pods", p["metadata"]["name"]) for p in pods]


@pytest.mark.parametrize("workers", [1, 4])
async def test_background_deletion_cascades_through_two_levels(env: Env, workers: int) -> None:
    api = env.api
    _, rs, ps = await chain(api, "web", pods=6)
    _, keep_rs, keep_ps = await chain(api, "other")
    task = env.run(Manager(api, [GarbageCollector()], clock=env.clock,
                           workers_per_controller=workers))
    try:
        await api.resource("deployments").delete("web", "default")
        assert not await exists(api, "deployments", "web")  # background: the owner goes at once
        await env.eventually(lambda: none_exist(api, names(rs, ps)), "replicaset and pods gone")
        # Nothing else was touched.
        for resource, name in names(keep_rs, keep_ps):
            assert await exists(api, resource, name)
        assert await exists(api, "deployments", "other")
    finally:
        await stop(task)


async def record_deletions(api: Clientset, resources: list[str], rv: str,
                           seen: list[tuple[int, str]]) -> None:
    watches = [await api.resource(r).watch(None, resource_version=rv) for r in resources]

    async def drain(watch: Any) -> None:
        async for event in watch:
            if event.type == "DELETED":
                seen.append((int(event.resource_version), event.object["metadata"]["name"]))

    try:
        await asyncio.gather(*(drain(w) for w in watches))
    finally:
        for w in watches:
            await w.aclose()


async def test_foreground_deletion_removes_dependents_before_owners(env: Env) -> None:
    api = env.api
    _, _, ps = await chain(api, "web")
    seen: list[tuple[int, str]] = []
    recorder = asyncio.ensure_future(record_deletions(
        api, ["deployments", "replicasets", "pods"], ps[-1]["metadata"]["resourceVersion"], seen))
    task = env.run(Manager(api, [GarbageCollector()], clock=env.clock))
    try:
        marked = await api.resource("deployments").delete("web", "default",
                                                          propagation_policy="Foreground")
        assert marked["metadata"]["finalizers"] == ["foregroundDeletion"]
        await env.eventually(lambda: none_exist(api, [("deployments", "web")]), "owner gone")
        await env.eventually(lambda: asyncio.sleep(0, len(seen) == 5), "five deletions seen")
        order = [name for _, name in sorted(seen)]
        assert sorted(order[:3]) == ["web-0", "web-1", "web-2"]
        assert order[3:] == ["web-rs", "web"]
    finally:
        await stop(task)
        recorder.cancel()
        await asyncio.wait({recorder})


async def test_orphan_deletion_keeps_dependents_without_the_reference(env: Env) -> None:
    api = env.api
    _, rs, ps = await chain(api, "web")
    task = env.run(Manager(api, [GarbageCollector()], clock=env.clock))
    try:
        await api.resource("deployments").delete("web", "default", propagation_policy="Orphan")
        await env.eventually(lambda: none_exist(api, [("deployments", "web")]), "owner gone")
        left = await api.resource("replicasets").get("web-rs", "default")
        assert "ownerReferences" not in left["metadata"]
        # The orphan's own dependents are untouched.
        for p in ps:
            got = await api.resource("pods").get(p["metadata"]["name"], "default")
            assert got["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
        # Give the collector time to do anything wrong.
        for _ in range(20):
            env.clock.advance(0.5)
            await asyncio.sleep(0.01)
        assert await exists(api, "replicasets", "web-rs")
    finally:
        await stop(task)


async def test_a_dependent_with_a_live_owner_only_loses_the_dead_reference(env: Env) -> None:
    api = env.api
    a = await api.resource("replicasets").create(replicaset("a"))
    b = await api.resource("replicasets").create(replicaset("b"))
    shared = await api.resource("pods").create(pod("shared", a, b))
    await api.resource("pods").create(pod("only-a", a))
    task = env.run(Manager(api, [GarbageCollector()], clock=env.clock))
    try:
        await api.resource("replicasets").delete("a", "default")
        await env.eventually(lambda: none_exist(api, [("pods", "only-a")]), "only-a collected")

        async def reference_dropped() -> bool:
            got = await api.resource("pods").get("shared", "default")
            return [r["uid"] for r in got["metadata"]["ownerReferences"]] == [
                b["metadata"]["uid"]]

        await env.eventually(reference_dropped, "the dangling reference dropped")
        assert shared["metadata"]["uid"] == (
            await api.resource("pods").get("shared", "default"))["metadata"]["uid"]
    finally:
        await stop(task)


async def test_references_to_owners_that_never_existed(env: Env) -> None:
    api = env.api
    ghost: Obj = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
             "metadata": {"name": "ghost", "namespace": "default",
                          "uid": "00000000-0000-4000-8000-000000000000"}}
    for i in range(3):
        await api.resource("configmaps").create(
            {"metadata": {"name": f"cm-{i}", "namespace": "default",
                          "ownerReferences": [owner_reference(ghost)]}})
    # An owner of that name that exists, with another uid, is not the owner either.
    real = await api.resource("replicasets").create(replicaset("real"))
    impostor = {**real, "metadata": {**real["metadata"], "uid": "not-the-uid"}}
    await api.resource("configmaps").create(
        {"metadata": {"name": "cm-impostor", "namespace": "default",
                      "ownerReferences": [owner_reference(impostor)]}})
    # An owner in another namespace does not count: namespaced owners must share it.
    await api.resource("namespaces").create({"metadata": {"name": "elsewhere"}})
    far = await api.resource("replicasets").create(
        {**replicaset("far"), "metadata": {"name": "far", "namespace": "elsewhere"}})
    await api.resource("configmaps").create(
        {"metadata": {"name": "cm-far", "namespace": "default",
                      "ownerReferences": [owner_reference(far)]}})
    # A cluster-scoped object naming a namespaced owner is left alone.
    await api.resource("namespaces").create(
        {"metadata": {"name": "owned", "ownerReferences": [owner_reference(ghost)]}})
    gc = GarbageCollector()
    task = env.run(Manager(api, [gc], clock=env.clock))
    try:
        await env.eventually(lambda: none_exist(api, [(
            "configmaps", n) for n in ("cm-0", "cm-1", "cm-2", "cm-impostor", "cm-far")]),
            "configmaps with dangling owners collected")
        kind = api.registry.lookup("replicasets")
        assert gc.is_known_absent(kind, "default", "ghost", ghost["metadata"]["uid"])
        assert await exists(api, "replicasets", "real")
        assert await exists(api, "replicasets", "far", "elsewhere")

        async def warned() -> bool:
            events = (await api.resource("events").list(None))["items"]
            return {e["involvedObject"]["name"] for e in events
                    if e["reason"] == "OwnerRefInvalidNamespace"} == {"owned", "cm-far"}

        await env.eventually(warned, "OwnerRefInvalidNamespace events")
        assert await exists(api, "namespaces", "owned", "")
    finally:
        await stop(task)


async def test_a_new_manager_finishes_a_cascade_the_old_one_left(env: Env) -> None:
    api = env.api
    _, rs, _ = await chain(api, "web")
    await api.resource("pods").create(pod("held", rs, finalizers=("example.com/hold",)))
    first = env.run(Manager(api, [GarbageCollector()], clock=env.clock))
    await api.resource("deployments").delete("web", "default", propagation_policy="Foreground")

    async def stuck_on_the_held_pod() -> bool:
        left = (await api.resource("pods").list("default"))["items"]
        rs_now = await api.resource("replicasets").get("web-rs", "default")
        return ([p["metadata"]["name"] for p in left] == ["held"]
                and bool(rs_now["metadata"].get("deletionTimestamp"))
                and bool(left[0]["metadata"].get("deletionTimestamp")))

    await env.eventually(stuck_on_the_held_pod, "the cascade reaching the held pod")
    await stop(first)
    # While no collector runs: the pod is released, and another owner goes in the background.
    got = await api.resource("pods").get("held", "default")
    got["metadata"]["finalizers"] = []
    await api.resource("pods").update(got)
    assert not await exists(api, "pods", "held")
    _, rs2, ps2 = await chain(api, "api")
    await api.resource("deployments").delete("api", "default")
    assert await exists(api, "deployments", "web")
    assert await exists(api, "replicasets", "web-rs")
    second = env.run(Manager(api, [GarbageCollector()], clock=env.clock))
    try:
        await env.eventually(lambda: none_exist(api, [("deployments", "web"),
                                                      ("replicasets", "web-rs")]),
                             "the foreground cascade finished")
        await env.eventually(lambda: none_exist(api, names(rs2, ps2)),
                             "the background cascade finished")
    finally:
        await stop(second)


async def test_nothing_is_decided_before_the_graph_holds_the_initial_lists(env: Env) -> None:
    factory = SharedInformerFactory(env.api, clock=env.clock)
    gc = GarbageCollector(resources=["pods", "replicasets"])
    assert gc.informers == ("pods", "replicasets")
    enqueued: list[str] = []
    recorder = EventRecorder(env.api, gc.name)
    gc.setup(ControllerContext(
        env.api, {r: factory.informer_for(r) for r in gc.informers}, enqueued.append,
        lambda key, delay: None, recorder))
    try:
        # The informers have not listed yet: come back later, whatever the key.
        assert await gc.reconcile("delete/some-uid") == requeue_after(0.1)
        with pytest.raises(PermanentError):
            await gc.reconcile("something-else")
        factory.start()
        await factory.wait_for_cache_sync()
        await env.eventually(lambda: asyncio.sleep(0, all(
            i.handlers_idle() for i in factory.informers().values())), "handlers idle")
        assert await gc.reconcile("delete/some-uid") == DONE  # no such node: nothing to do
    finally:
        await factory.shutdown()
        await recorder.close()
