"""The ReplicaSet controller under a Manager, on an embedded one-member store.

Time is fake: the manager's clock (queues, delays) and the clientset's wall
clock (timestamps, availability, expectations) move together in
``Env.advance``. Informers hand out frozen objects, so any mutation of a
cached object would fail loudly.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import kvstore
from controllers.api import Clientset
from controllers.api.objects import Obj, format_timestamp
from controllers.builtin.pod_control import PodControl, RealPodControl
from controllers.builtin.replicaset import REPLICA_FAILURE, ReplicaSetController
from controllers.clock import FakeClock
from controllers.controller import ControllerContext
from controllers.informers.indexer import IndexFunc
from controllers.informers.reflector import ListWatch
from controllers.informers.shared_informer import SharedInformer
from controllers.manager import Manager
from kvstore.clock import FakeClock as WallFakeClock
from kvstore.node import NodeOptions
from tests.controllers.builtin.support import GatedListWatch, eventually

T0 = 1_700_000_000.0


class TracingPodControl:
    """The real pod control, tracing create starts/ends; creates past ``allowed`` are invalid."""

    def __init__(self, inner: PodControl) -> None:
        self.inner = inner
        self.trace: list[str] = []
        self.allowed: int | None = None
        self.creates = 0

    def batches(self) -> list[int]:
        chunks = "".join(self.trace).replace("ES", "E|S").split("|")
        return [chunk.count("S") for chunk in chunks if chunk]

    async def create_pod(self, namespace: str, template: Mapping[str, Any],
                         owner: Mapping[str, Any], controller_ref: Mapping[str, Any]) -> Obj:
        self.creates += 1
        self.trace.append("S")
        try:
            if self.allowed is not None and self.creates > self.allowed:
                template = {**template, "spec": {"containers": [{"name": "Not_Valid",
                                                                 "image": "x"}]}}
            return await self.inner.create_pod(namespace, template, owner, controller_ref)
        finally:
            self.trace.append("E")

    async def delete_pod(self, namespace: str, name: str, owner: Mapping[str, Any], *,
                         uid: str | None = None) -> None:
        await self.inner.delete_pod(namespace, name, owner, uid=uid)

    async def patch_pod(self, namespace: str, name: str, patch: Obj) -> Obj:
        return await self.inner.patch_pod(namespace, name, patch)


class Env:
    """A store, fake clocks, a running manager with one ReplicaSet controller."""

    def __init__(self, api: Clientset, wall: WallFakeClock) -> None:
        self.api = api
        self.wall = wall
        self.clock = FakeClock()
        self.pods_lw = GatedListWatch(ListWatch(api.resource("pods")))
        self.tracer: TracingPodControl | None = None
        self.task: asyncio.Task[None] | None = None

    def advance(self, seconds: float) -> None:
        self.wall.advance(seconds)
        self.clock.advance(seconds)

    async def start(self, *, pod_indexers: Mapping[str, IndexFunc] | None = None,
                    **options: Any) -> ReplicaSetController:
        def pod_control(context: ControllerContext) -> PodControl:
            self.tracer = TracingPodControl(RealPodControl(context.clientset, context.recorder))
            return self.tracer

        informers = {
            "replicasets": SharedInformer(ListWatch(self.api.resource("replicasets")),
                                          clock=self.clock, freeze_objects=True,
                                          resource="replicasets"),
            "pods": SharedInformer(self.pods_lw, clock=self.clock, freeze_objects=True,
                                   resource="pods", indexers=pod_indexers),
        }
        controller = ReplicaSetController(pod_control_factory=pod_control, **options)
        manager = Manager(self.api, [controller], clock=self.clock, cache_sync_poll=0.01,
                          informer_factory=informers.__getitem__)
        self.task = asyncio.ensure_future(manager.run())
        await eventually(lambda: all(i.has_synced() for i in informers.values()), "sync")
        self.advance(0.05)  # the workers start on the next cache-sync poll
        return controller

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.wait({self.task})

    async def rs(self, name: str = "web") -> Obj:
        return await self.api.resource("replicasets").get(name, "default")

    async def pods(self, *, active: bool = True) -> list[Obj]:
        items = (await self.api.resource("pods").list("default"))["items"]
        if active:
            items = [p for p in items if not p["metadata"].get("deletionTimestamp")]
        return sorted(items, key=lambda p: p["metadata"]["name"])

    async def status(self, name: str = "web") -> Obj:
        return dict((await self.rs(name)).get("status") or {})

    async def events(self, reason: str) -> list[Obj]:
        items = (await self.api.resource("events").list("default"))["items"]
        return [e for e in items if e["reason"] == reason]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with kvstore.open(str(tmp_path / "s"),
                            options=NodeOptions(tick_interval=0.01, unsafe_no_fsync=True)) as n:
        wall = WallFakeClock(T0)
        api = Clientset(n, clock=wall, rng=random.Random(5))
        await api.ensure_default_namespaces()
        e = Env(api, wall)
        try:
            yield e
        finally:
            await e.stop()


def replicaset(name: str = "web", *, replicas: int = 1, min_ready: int = 0,
               finalizers: list[str] | None = None) -> Obj:
    meta: Obj = {"name": name, "namespace": "default"}
    if finalizers:
        meta["finalizers"] = finalizers
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta,
            "spec": {"replicas": replicas, "minReadySeconds": min_ready,
                     "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name, "tier": "fe"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


def pod(name: str, *, labels: dict[str, str], node: str = "", phase: str = "Pending",
        ready: bool = False, restarts: int = 0, ready_at: float = T0) -> Obj:
    spec: Obj = {"containers": [{"name": "c", "image": "nginx"}]}
    if node:
        spec["nodeName"] = node
    status: Obj = {"phase": phase, "containerStatuses": [{"name": "c", "restartCount": restarts}]}
    if ready:
        status["conditions"] = [{"type": "Ready", "status": "True",
                                 "lastTransitionTime": format_timestamp(ready_at)}]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": labels},
            "spec": spec, "status": status}


async def scale(env: Env, replicas: int, name: str = "web") -> int:
    """Set ``spec.replicas``; returns the new generation."""
    # A patch: it retries when the controller's status write gets in between.
    patched = await env.api.resource("replicasets").patch(
        name, "default", {"spec": {"replicas": replicas}})
    return int(patched["metadata"]["generation"])


async def observed(env: Env, generation: int, name: str = "web") -> bool:
    return (await env.status(name)).get("observedGeneration") == generation


async def test_scale_up_in_slow_start_batches_capped_by_the_burst(env: Env) -> None:
    await env.start(burst_replicas=5)
    created = await env.api.resource("replicasets").create(replicaset(replicas=7))

    async def settled() -> bool:
        return len(await env.pods()) == 7 and (await env.status()).get("replicas") == 7
    await eventually(settled, "7 pods")
    assert env.tracer is not None
    # One sync creates at most 5 (1, 2, 2); the next, once those are seen, the last 2 (1, 1).
    assert env.tracer.batches() == [1, 2, 2, 1, 1]
    for p in await env.pods():
        m = p["metadata"]
        assert m["name"].startswith("web-") and m["labels"] == {"app": "web", "tier": "fe"}
        assert m["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                         "name": "web", "uid": created["metadata"]["uid"],
                                         "controller": True, "blockOwnerDeletion": True}]
    assert await env.status() == {"replicas": 7, "fullyLabeledReplicas": 7, "readyReplicas": 0,
                                  "availableReplicas": 0, "observedGeneration": 1}

    async def seven_events() -> bool:
        return len(await env.events("SuccessfulCreate")) == 7
    await eventually(seven_events, "SuccessfulCreate events")
    names = {p["metadata"]["name"] for p in await env.pods()}
    assert {e["message"] for e in await env.events("SuccessfulCreate")} == \
        {f"Created pod: {n}" for n in names}


async def test_failed_creates_stop_the_slow_start_and_set_replica_failure(env: Env) -> None:
    await env.start()
    assert env.tracer is not None
    env.tracer.allowed = 6  # the 7th create and later fail validation
    await env.api.resource("replicasets").create(replicaset(replicas=10))

    async def failing() -> bool:
        conds = (await env.status()).get("conditions") or []
        return any(c["type"] == REPLICA_FAILURE for c in conds)
    await eventually(failing, "ReplicaFailure")
    # 1, 2, then a batch of 4 with one failure: no batch of 8 was started.
    assert env.tracer.batches()[:3] == [1, 2, 4] and len(await env.pods()) == 6
    [cond] = (await env.status())["conditions"]
    assert cond["reason"] == "FailedCreate" and "Not_Valid" in cond["message"]

    async def failed_event() -> bool:
        return any("Error creating" in e["message"] for e in await env.events("FailedCreate"))
    await eventually(failed_event, "FailedCreate event")

    # Creating works again: the rate-limited retry creates the other 4 and clears the failure.
    env.tracer.allowed = None
    before = len(env.tracer.batches())

    async def recovered() -> bool:
        env.advance(1.0)
        status = await env.status()
        return len(await env.pods()) == 10 and status.get("replicas") == 10 and \
            "conditions" not in status
    await eventually(recovered, "10 pods, no failure")
    assert env.tracer.batches()[before:] == [1, 2, 1]


async def test_scale_down_deletes_the_lowest_ranked_pods_first(env: Env) -> None:
    labels = {"app": "web", "tier": "fe"}
    pods = env.api.resource("pods")
    # Orphans, adopted by the ReplicaSet; all scheduled, so deletion is graceful.
    await pods.create(pod("keep", labels=labels, node="n1", phase="Running", ready=True))
    await pods.create(pod("restarts", labels=labels, node="n1", phase="Running", ready=True,
                          restarts=4))
    await pods.create(pod("unready", labels=labels, node="n1", phase="Running"))
    await pods.create(pod("pending", labels=labels, node="n1", phase="Pending"))
    await pods.create(pod("other-app", labels={"app": "db"}, node="n1", phase="Running"))
    await env.start()
    rs = await env.api.resource("replicasets").create(replicaset(replicas=1))

    async def one_left() -> bool:
        return [p["metadata"]["name"] for p in await env.pods()] == ["keep", "other-app"] \
            and (await env.status()).get("replicas") == 1
    await eventually(one_left, "scaled down to 1")
    everything = {p["metadata"]["name"]: p for p in await env.pods(active=False)}
    # The deleted pods are terminating (graceful), owned by the ReplicaSet since adoption.
    for name in ("restarts", "unready", "pending"):
        m = everything[name]["metadata"]
        assert m["deletionTimestamp"] and m["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
    assert everything["keep"]["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
    assert "ownerReferences" not in everything["other-app"]["metadata"]

    async def delete_events() -> bool:
        return len(await env.events("SuccessfulDelete")) == 3
    await eventually(delete_events, "SuccessfulDelete events")
    assert {e["message"] for e in await env.events("SuccessfulDelete")} == {
        "Deleted pod: restarts", "Deleted pod: unready", "Deleted pod: pending"}
    # Terminating pods are not counted and not replaced or deleted again.
    assert (await env.status())["readyReplicas"] == 1
    assert len(await env.pods(active=False)) == 5


async def test_adopt_release_and_a_replicaset_being_deleted(env: Env) -> None:
    pods = env.api.resource("pods")
    await pods.create(pod("orphan", labels={"app": "web"}, phase="Running", ready=True))
    await env.start()
    rs = await env.api.resource("replicasets").create(
        replicaset(replicas=2, finalizers=["example.com/hold"]))
    uid = rs["metadata"]["uid"]

    async def adopted() -> bool:
        found = await env.pods()
        return len(found) == 2 and all(
            (p["metadata"].get("ownerReferences") or [{}])[0].get("uid") == uid for p in found) \
            and (await env.status()).get("replicas") == 2
    await eventually(adopted, "orphan adopted plus one created")
    # The orphan lacks the template's tier label: counted, but not fully labeled.
    status = await env.status()
    assert (status["fullyLabeledReplicas"], status["readyReplicas"]) == (1, 1)

    # Relabel the adopted pod: it is released and replaced.
    await pods.patch("orphan", "default", {"metadata": {"labels": {"app": "elsewhere"}}})

    async def released() -> bool:
        found = {p["metadata"]["name"]: p for p in await env.pods()}
        ours = [p for p in found.values() if p["metadata"]["labels"].get("app") == "web"]
        return not found["orphan"]["metadata"].get("ownerReferences") and len(ours) == 2
    await eventually(released, "released and replaced")

    # Being deleted (held by a finalizer): no adoption, no replacement, status still kept.
    await env.api.resource("replicasets").delete("web", "default")
    await pods.create(pod("late", labels={"app": "web", "tier": "fe"}))
    victim = next(p for p in await env.pods() if p["metadata"].get("ownerReferences"))
    await pods.delete(victim["metadata"]["name"], "default")

    async def shrunk() -> bool:
        return (await env.status()).get("replicas") == 1
    await eventually(shrunk, "status after a pod went away")
    env.advance(1.0)
    await asyncio.sleep(0.2)
    late = await pods.get("late", "default")
    assert not late["metadata"].get("ownerReferences")
    ours = [p for p in await env.pods() if p["metadata"].get("ownerReferences")]
    assert len(ours) == 1


async def test_a_lagging_cache_never_double_creates_or_double_deletes(env: Env) -> None:
    await env.start()
    await env.api.resource("replicasets").create(replicaset(replicas=3))
    gate = env.pods_lw.gate

    async def count(n: int) -> bool:
        return len(await env.pods()) == n and (await env.status()).get("replicas") == n
    await eventually(lambda: count(3), "3 pods")

    # The pod informer stops seeing events: creates are not observed.
    gate.clear()
    generation = await scale(env, 4)
    await eventually(lambda: observed(env, generation), "a sync at generation 2")
    created_before = len(await env.pods())
    generation = await scale(env, 5)
    await eventually(lambda: observed(env, generation), "a sync at generation 3")
    # It scaled by 1 then by 1 again, but only the first create happened: the second sync
    # waited for the first create to show up in the cache.
    assert created_before == 4 and len(await env.pods()) == 4
    gate.set()
    await eventually(lambda: count(5), "5 pods once the cache caught up")

    # Deletions: scale down while the informer lags, then ask for a little more.
    gate.clear()
    await scale(env, 1)
    await eventually(lambda: len_is(env, 1), "deleted down to 1")
    generation = await scale(env, 2)
    await eventually(lambda: observed(env, generation), "a sync while deletions are pending")
    # The stale cache still shows 5 pods; acting on it would delete 3 of them again (maybe
    # the one that is left). It waited for its deletions to show up instead.
    assert len(await env.pods()) == 1
    gate.set()
    await eventually(lambda: count(2), "2 pods once the deletions were seen")
    env.advance(1.0)
    await asyncio.sleep(0.1)
    assert len(await env.pods()) == 2


async def len_is(env: Env, n: int) -> bool:
    return len(await env.pods()) == n


async def test_expectations_expire_so_a_lost_event_cannot_wedge(env: Env) -> None:
    controller = await env.start()
    await env.api.resource("replicasets").create(replicaset(replicas=1))
    await eventually(lambda: len_is(env, 1), "1 pod")
    env.pods_lw.gate.clear()
    await scale(env, 2)
    await eventually(lambda: len_is(env, 2), "2 pods")
    # The cache never sees the second pod. Five minutes later the controller acts anyway
    # (on its stale cache: one more create, as Kubernetes does).
    env.advance(299.0)
    await asyncio.sleep(0.2)
    assert len(await env.pods()) == 2
    env.advance(2.0)
    await eventually(lambda: len_is(env, 3), "a create after the expectations expired")
    # Events flow again: the extra pod goes away.
    env.pods_lw.gate.set()
    await eventually(lambda: len_is(env, 2), "back to 2")
    # A deleted ReplicaSet leaves no expectations behind.
    assert controller.expectations is not None
    assert controller.expectations.keys() == ["default/web"]
    await env.api.resource("replicasets").delete("web", "default")
    await eventually(lambda: controller.expectations is not None
                     and controller.expectations.keys() == [], "expectations forgotten")


async def test_available_replicas_follow_min_ready_seconds(env: Env) -> None:
    await env.start()
    await env.api.resource("replicasets").create(replicaset(replicas=2, min_ready=10))
    await eventually(lambda: len_is(env, 2), "2 pods")
    pods = env.api.resource("pods")
    for p in await env.pods():
        await pods.patch(p["metadata"]["name"], "default", {"status": {
            "phase": "Running", "conditions": [
                {"type": "Ready", "status": "True",
                 "lastTransitionTime": format_timestamp(env.wall.now())}]}},
            subresource="status")

    async def ready() -> bool:
        s = await env.status()
        return (s.get("readyReplicas"), s.get("availableReplicas")) == (2, 0)
    await eventually(ready, "2 ready, 0 available")
    env.advance(9.0)
    await asyncio.sleep(0.2)
    assert (await env.status())["availableReplicas"] == 0
    # The reconcile asked to look again when the pods become available: nothing else
    # happens in between, yet the status moves exactly then.
    env.advance(1.0)

    async def available() -> bool:
        return (await env.status()).get("availableReplicas") == 2
    await eventually(available, "2 available after minReadySeconds")
