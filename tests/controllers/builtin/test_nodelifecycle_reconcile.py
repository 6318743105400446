"""``reconcile`` driven by hand over caches filled by hand: stale caches, races, requeues.

The informers are real but never run: the test puts into their caches what
it wants the controller to believe, while the store may hold newer objects.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest

import kvstore
from controllers.api import KV, Clientset
from controllers.api.objects import format_timestamp
from controllers.builtin.nodehealth import (
    NODE_LEASE_NAMESPACE,
    condition_of,
    ready_status,
)
from controllers.builtin.nodelifecycle import NodeLifecycleController
from controllers.clock import FakeClock
from controllers.controller import ControllerContext
from controllers.events import EventRecorder
from controllers.informers import SharedInformerFactory, freeze
from kvstore.clock import FakeClock as WallFakeClock
from kvstore.node import NodeOptions

T0 = 1_700_000_000.0
Obj = dict[str, Any]
FAST = NodeOptions(tick_interval=0.01, unsafe_no_fsync=True)


class Bench:
    """A store, a controller set up on unstarted informers, and the keys it enqueued."""

    def __init__(self, kv: KV, controller: NodeLifecycleController) -> None:
        self.wall = WallFakeClock(T0)
        self.api = Clientset(kv, clock=self.wall, rng=random.Random(3))
        self.factory = SharedInformerFactory(self.api, clock=FakeClock(), freeze_objects=True)
        self.informers = {name: self.factory.informer_for(name)
                          for name in ("nodes", "leases", "pods")}
        self.recorder = EventRecorder(self.api, controller.name)
        self.enqueued: list[str] = []
        self.controller = controller
        controller.setup(ControllerContext(
            self.api, dict(self.informers), self.enqueued.append,
            lambda key, _delay: self.enqueued.append(key), self.recorder))

    def cache(self, resource: str, obj: Obj) -> None:
        """Make the controller's cache of ``resource`` hold ``obj`` (as it is now)."""
        indexer = self.informers[resource].indexer
        frozen = freeze(obj)
        if indexer.get(frozen) is None:
            indexer.add(frozen)
        else:
            indexer.update(frozen)

    async def create(self, resource: str, obj: Obj, *, cached: bool = True) -> Obj:
        made = await self.api.resource(resource).create(obj)
        if cached:
            self.cache(resource, made)
        return made

    async def events(self, reason: str) -> list[tuple[str, str]]:
        await self.recorder.flush()
        events = (await self.api.resource("events").list(None))["items"]
        return sorted((e["involvedObject"]["name"], e["message"]) for e in events
                      if e["reason"] == reason)


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    async with kvstore.open(str(tmp_path / "store"), options=FAST) as node:
        b = Bench(cast(KV, node), NodeLifecycleController(eviction_timeout=0))
        await b.api.ensure_default_namespaces()
        await b.api.resource("namespaces").create({"metadata": {"name": NODE_LEASE_NAMESPACE}})
        try:
            yield b
        finally:
            await b.recorder.close()


def node(name: str) -> Obj:
    return {"metadata": {"name": name}, "status": {"conditions": [
        {"type": "Ready", "status": "True", "lastHeartbeatTime": format_timestamp(T0),
         "lastTransitionTime": format_timestamp(T0)}]}}


def pod(name: str, node_name: str, tolerations: list[Obj] | None = None) -> Obj:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node_name, "containers": [{"name": "c", "image": "busybox"}],
                     "tolerations": tolerations or []},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": format_timestamp(T0)}]}}


UNREACHABLE_FOREVER = {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                       "effect": "NoExecute"}


async def test_stale_caches_and_replaced_pods(bench: Bench) -> None:
    api = bench.api
    for name in ("n1", "n2"):
        await bench.create("nodes", node(name))
    await bench.create("leases", {"metadata": {"name": "n1", "namespace": NODE_LEASE_NAMESPACE},
                                  "spec": {"renewTime": "r1"}})
    await bench.create("pods", pod("kept", "n1", [UNREACHABLE_FOREVER]))
    await bench.create("pods", pod("waiting", "n1", [{**UNREACHABLE_FOREVER,
                                                      "tolerationSeconds": 3}]))
    replaced = await bench.create("pods", pod("replaced", "n1"))

    result = await bench.controller.reconcile("n1")
    assert result is not None and result.requeue_after == 5.0  # monitor_period
    health = bench.controller.health("n1")
    assert health is not None and health.probe_timestamp == T0

    # Behind the cache's back: the kubelet touched the node and a pod; "replaced" was
    # deleted and another pod of that name created.
    fresh = await api.resource("nodes").get("n1")
    fresh["metadata"]["labels"] = {"touched": "yes"}
    await api.resource("nodes").update(fresh)
    kept = await api.resource("pods").get("kept", "default")
    kept["metadata"]["labels"] = {"touched": "yes"}
    await api.resource("pods").update(kept)
    await api.resource("pods").delete("replaced", "default", grace_period_seconds=0)
    await bench.create("pods", pod("replaced", "n1"), cached=False)

    bench.wall.advance(39.5)
    result = await bench.controller.reconcile("n1")
    assert result is not None and result.requeue_after == pytest.approx(0.5)  # end of grace
    bench.wall.advance(0.5)
    result = await bench.controller.reconcile("n1")

    # The node writes lost their race to the kubelet, were redone on a fresh read, and won.
    n1 = await api.resource("nodes").get("n1")
    assert ready_status(n1) == "Unknown" and n1["metadata"]["labels"] == {"touched": "yes"}
    assert sorted((t["key"], t["effect"]) for t in n1["spec"]["taints"]) == [
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoSchedule")]
    # The stale pod was marked not ready all the same.
    kept = await api.resource("pods").get("kept", "default")
    assert ready_status(kept) == "False" and kept["metadata"]["labels"] == {"touched": "yes"}
    # The pod judged was the old "replaced": the new one of that name is left alone.
    new = await api.resource("pods").get("replaced", "default")
    assert new["metadata"]["uid"] != replaced["metadata"]["uid"]
    assert ready_status(new) == "True" and condition_of(new, "DisruptionTarget") is None
    assert "deletionTimestamp" not in new["metadata"]
    # "waiting" tolerates 3 s from the taint: look again then.
    assert result is not None and result.requeue_after == pytest.approx(3.0)
    assert await api.resource("pods").get("waiting", "default") is not None
    assert await bench.events("NodeNotReady") == [
        ("kept", "Node is not ready"), ("n1", "Node n1 status is now: NodeNotReady"),
        ("waiting", "Node is not ready")]
    assert await bench.events("TaintManagerEviction") == []


async def test_entering_and_leaving_full_disruption_looks_at_every_node(bench: Bench) -> None:
    for name in ("n1", "n2", "n3"):
        await bench.create("nodes", node(name))
    unknown = node("n2")
    unknown["status"]["conditions"][0]["status"] = "Unknown"
    bench.cache("nodes", {**(await bench.api.resource("nodes").get("n2")),
                          "status": unknown["status"]})
    bench.cache("nodes", {**(await bench.api.resource("nodes").get("n3")),
                          "status": unknown["status"]})
    await bench.controller.reconcile("n1")
    assert bench.enqueued == []  # n1 is ready: nothing changed

    bench.wall.advance(40)  # n1 never renewed: unknown too, and then no node is ready
    await bench.controller.reconcile("n1")
    assert bench.enqueued == ["n2", "n3"]
    n1 = await bench.api.resource("nodes").get("n1")
    assert ready_status(n1) == "Unknown"
    assert [(t["key"], t["effect"]) for t in n1["spec"]["taints"]] == [
        ("node.kubernetes.io/unreachable", "NoSchedule")]

    bench.cache("nodes", node("n3") | {"metadata": (await bench.api.resource("nodes")
                                                    .get("n3"))["metadata"]})
    await bench.controller.reconcile("n1")
    assert bench.enqueued == ["n2", "n3", "n2", "n3"]
    n1 = await bench.api.resource("nodes").get("n1")
    assert sorted((t["key"], t["effect"]) for t in n1["spec"]["taints"]) == [
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoSchedule")]


def zoned(name: str, zone: str) -> Obj:
    made = node(name)
    made["metadata"]["labels"] = {"topology.kubernetes.io/zone": zone}
    return made


async def no_execute(bench: Bench, name: str) -> list[str]:
    """The NoExecute taint keys of the node, after copying it into the cache."""
    fresh = await bench.api.resource("nodes").get(name)
    bench.cache("nodes", fresh)
    return [t["key"] for t in fresh.get("spec", {}).get("taints") or []
            if t["effect"] == "NoExecute"]


async def test_new_no_execute_taints_are_rate_limited_per_zone(bench: Bench) -> None:
    for name in ("a1", "a2", "a3", "a4", "a5"):
        await bench.create("nodes", zoned(name, "a"))
    for name in ("b1", "b2"):
        await bench.create("nodes", zoned(name, "b"))
    for name in ("a1", "a2", "b1"):
        await bench.controller.reconcile(name)
    bench.wall.advance(40)  # a1, a2 and b1 stop posting together

    await bench.controller.reconcile("a1")
    assert await no_execute(bench, "a1") == ["node.kubernetes.io/unreachable"]
    await bench.controller.reconcile("b1")  # another zone, another bucket
    assert await no_execute(bench, "b1") == ["node.kubernetes.io/unreachable"]
    result = await bench.controller.reconcile("a2")  # 0.1 per second: wait 10 s
    assert await no_execute(bench, "a2") == []
    assert ready_status(await bench.api.resource("nodes").get("a2")) == "Unknown"
    assert result is not None and result.requeue_after == 5.0
    bench.wall.advance(6)
    result = await bench.controller.reconcile("a2")
    assert await no_execute(bench, "a2") == []
    assert result is not None and result.requeue_after == pytest.approx(4.0)
    bench.wall.advance(4)
    await bench.controller.reconcile("a2")
    assert await no_execute(bench, "a2") == ["node.kubernetes.io/unreachable"]


async def test_a_small_partially_disrupted_zone_gets_no_new_no_execute_taints(
        bench: Bench) -> None:
    for name in ("c1", "c2", "c3", "c4"):
        await bench.create("nodes", node(name))
    for name in ("c1", "c2", "c3"):
        await bench.controller.reconcile(name)
    bench.wall.advance(40)
    await bench.controller.reconcile("c1")  # 1 of 4 not ready: normal
    assert await no_execute(bench, "c1") == ["node.kubernetes.io/unreachable"]
    await bench.controller.reconcile("c2")  # 2 of 4: normal, but the token is spent
    await no_execute(bench, "c2")
    await bench.controller.reconcile("c3")  # 3 of 4: partial disruption, a small zone
    assert await no_execute(bench, "c3") == []
    for _ in range(3):
        bench.wall.advance(60)
        for name in ("c1", "c2", "c3"):
            await bench.controller.reconcile(name)
    assert [await no_execute(bench, n) for n in ("c1", "c2", "c3")] == [
        ["node.kubernetes.io/unreachable"], [], []]

    # c3's kubelet is back: 2 of 4, normal again, with a fresh bucket.
    c3 = await bench.api.resource("nodes").get("c3")
    c3["status"]["conditions"] = node("c3")["status"]["conditions"]
    c3["status"]["conditions"][0]["lastHeartbeatTime"] = format_timestamp(bench.wall.now())
    bench.cache("nodes", await bench.api.resource("nodes").update_status(c3))
    await bench.controller.reconcile("c3")
    assert await no_execute(bench, "c3") == []
    await bench.controller.reconcile("c2")
    assert await no_execute(bench, "c2") == ["node.kubernetes.io/unreachable"]
