"""The node lifecycle controller under a Manager on an embedded store, kubelets played by hand.

Both clocks are fakes moved together by ``Cluster.tick``: the manager's
(queues, requeues) and the clientset's wall clock (timestamps, the
controller's observations). A kubelet that is ``alive`` renews its Lease
every ``renew_every`` seconds of wall time; after each renewal the cluster
waits until the controller has seen it, so the controller's probe time is
exactly the renewal time.
"""

from __future__ import annotations

import asyncio
import datetime
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import pytest

import kvstore
from controllers.api import KV, Clientset, NotFound
from controllers.api.objects import format_timestamp
from controllers.builtin.nodehealth import (
    NODE_LEASE_NAMESPACE,
    condition_of,
    ready_status,
)
from controllers.builtin.nodelifecycle import NodeLifecycleController
from controllers.clock import FakeClock
from controllers.controller import Controller, ControllerContext, Result
from controllers.informers import FREEZE_ENV
from controllers.manager import Manager
from kvstore.clock import FakeClock as WallFakeClock
from kvstore.node import Node, NodeOptions
from tests.controllers.manager.support import DEADLINE, GatedKV, settle

T0 = 1_700_000_000.0
Obj = dict[str, Any]


def micro(seconds: float) -> str:
    """RFC 3339 with microseconds, as a kubelet writes ``renewTime``."""
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def eventually(check: Callable[[], Awaitable[bool] | bool], what: str) -> None:
    """Poll ``check`` until it holds; fail after ``DEADLINE`` real seconds."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + DEADLINE
    while True:
        got = check()
        if not isinstance(got, bool):
            got = await got
        if got:
            return
        if loop.time() > give_up:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.005)


class RecordingController(NodeLifecycleController):
    """The controller, remembering its context and the wall time of every finished pass."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.context: ControllerContext | None = None
        self.passes: list[tuple[str, float]] = []

    def setup(self, context: ControllerContext) -> None:
        super().setup(context)
        self.context = context

    async def reconcile(self, key: str) -> Result | None:
        result = await super().reconcile(key)
        if self.context is not None:
            self.passes.append((key, self.context.clientset.clock.now()))
        return result

    def passed_since(self, key: str, moment: float) -> bool:
        return any(k == key and t >= moment for k, t in self.passes)


class Cluster:
    """The store, the clocks, the manager running one ``RecordingController``, and kubelets."""

    def __init__(self, store: Any, controller: RecordingController,
                 renew_every: float = 10.0) -> None:
        self.kv = GatedKV(store)
        self.wall = WallFakeClock(T0)
        self.clock = FakeClock()
        self.api = Clientset(cast(KV, self.kv), clock=self.wall, rng=random.Random(7))
        self.controller = controller
        self.manager = Manager(self.api, [controller], clock=self.clock)
        self.renew_every = renew_every
        self.alive: dict[str, float] = {}  # node -> wall time of its last renewal
        self._task: asyncio.Future[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        await self.api.ensure_default_namespaces()
        await self.api.resource("namespaces").create({"metadata": {"name": NODE_LEASE_NAMESPACE}})

    async def run_manager(self) -> None:
        """Start the manager and let it sync and look at every node once."""
        self._task = asyncio.ensure_future(self.manager.run())
        nodes = [n["metadata"]["name"]
                 for n in (await self.api.resource("nodes").list())["items"]]
        await eventually(self.manager.is_leading, "the manager leads")
        while not all(self.controller.health(n) is not None for n in nodes):
            await self.tick(0.1)
        await self._observe_renewals()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task})

    async def tick(self, seconds: float) -> None:
        """Move both clocks, let alive kubelets renew, and let everything settle."""
        self.wall.advance(seconds)
        self.clock.advance(seconds)
        for name, last in list(self.alive.items()):
            if self.wall.now() - last >= self.renew_every:
                await self.renew(name)
        await settle(self.kv)
        await self._observe_renewals()

    async def advance(self, seconds: float, step: float = 1.0) -> None:
        """``tick`` in steps of ``step`` until ``seconds`` have passed."""
        steps = round(seconds / step)
        for _ in range(steps):
            await self.tick(step)

    async def advance_to(self, moment: float, step: float = 1.0) -> None:
        await self.advance(moment - self.wall.now(), step)

    async def _observe_renewals(self) -> None:
        if self._task is None:
            return
        for name in self.alive:
            lease = await self.lease(name)
            renew = lease["spec"]["renewTime"]

            def seen(name: str = name, renew: str = renew) -> bool:
                health = self.controller.health(name)
                return health is not None and health.lease_renew_time == renew
            await eventually(seen, f"the controller sees {name}'s renewal {renew}")

    # -- kubelets --------------------------------------------------------------------------
    async def restart(self, controller: RecordingController) -> None:
        """End the manager's term and start a new manager (a new term) with ``controller``."""
        await self.stop()
        self.controller = controller
        self.manager = Manager(self.api, [controller], clock=self.clock)
        await self.run_manager()

    async def add_node(self, name: str, ready: str | None = "True") -> None:
        """A node with a Ready condition and a renewing lease (no status, no lease: None)."""
        status = {"conditions": [self._ready(ready)]} if ready is not None else {}
        await self.api.resource("nodes").create({"metadata": {"name": name}, "status": status})
        if ready is None:
            return
        await self.api.resource("leases").create({
            "metadata": {"name": name, "namespace": NODE_LEASE_NAMESPACE},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                     "renewTime": micro(self.wall.now())}})
        self.alive[name] = self.wall.now()

    def _ready(self, status: str) -> Obj:
        reason = "KubeletReady" if status == "True" else "KubeletNotReady"
        return {"type": "Ready", "status": status, "reason": reason,
                "lastHeartbeatTime": format_timestamp(self.wall.now()),
                "lastTransitionTime": format_timestamp(self.wall.now())}

    async def renew(self, name: str) -> None:
        leases = self.api.resource("leases")
        lease = await leases.get(name, NODE_LEASE_NAMESPACE)
        lease["spec"]["renewTime"] = micro(self.wall.now())
        await leases.update(lease)
        self.alive[name] = self.wall.now()

    async def poke(self, name: str) -> None:
        """Change a label of the node: an event that makes the controller look at it."""
        await self.api.resource("nodes").patch(
            name, "", {"metadata": {"labels": {"poked": format_timestamp(self.wall.now())
                                               .replace(":", "-")}}})

    async def post_ready(self, name: str, status: str) -> None:
        """The kubelet posts its Ready condition (and every other one it holds goes away)."""
        nodes = self.api.resource("nodes")
        node = await nodes.get(name)
        node["status"]["conditions"] = [self._ready(status)]
        await nodes.update_status(node)

    # -- reads -----------------------------------------------------------------------------
    async def node(self, name: str) -> Obj:
        return await self.api.resource("nodes").get(name)

    async def lease(self, name: str) -> Obj:
        return await self.api.resource("leases").get(name, NODE_LEASE_NAMESPACE)

    async def ready(self, name: str) -> Obj:
        cond = condition_of(await self.node(name), "Ready")
        if cond is None:
            raise AssertionError(f"node {name} has no Ready condition")
        return dict(cond)

    async def taints(self, name: str) -> list[tuple[str, str]]:
        node = await self.node(name)
        return sorted((t["key"], t["effect"]) for t in node.get("spec", {}).get("taints") or [])

    async def add_pod(self, name: str, node: str, tolerations: list[Obj] | None = None,
                      finalizers: list[str] | None = None) -> None:
        await self.api.resource("pods").create({
            "metadata": {"name": name, "namespace": "default", "finalizers": finalizers or []},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}],
                     "tolerations": tolerations or []},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True",
                 "lastTransitionTime": format_timestamp(self.wall.now())}]}})

    async def pod(self, name: str) -> Obj | None:
        try:
            return await self.api.resource("pods").get(name, "default")
        except NotFound:
            return None

    async def pod_names(self) -> list[str]:
        pods = (await self.api.resource("pods").list("default"))["items"]
        return sorted(p["metadata"]["name"] for p in pods)

    async def events(self, reason: str) -> list[tuple[str, str]]:
        """(involved object name, message) of every Event with ``reason``."""
        return sorted((name, message) for name, message, _ in await self.event_counts(reason))

    async def event_counts(self, reason: str) -> list[tuple[str, str, int]]:
        """(involved object name, message, count) of every Event with ``reason``."""
        events = (await self.api.resource("events").list(None))["items"]
        return sorted((e["involvedObject"]["name"], e["message"], e.get("count", 1))
                      for e in events if e["reason"] == reason)


# -- tests ---------------------------------------------------------------------------------

FAST = NodeOptions(tick_interval=0.01, unsafe_no_fsync=True)
UNREACHABLE = [("node.kubernetes.io/unreachable", "NoExecute"),
               ("node.kubernetes.io/unreachable", "NoSchedule")]
NOT_READY = [("node.kubernetes.io/not-ready", "NoExecute"),
             ("node.kubernetes.io/not-ready", "NoSchedule")]


@pytest.fixture(autouse=True)
def frozen_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Informers hand out read-only objects: the controller must never mutate them."""
    monkeypatch.setenv(FREEZE_ENV, "1")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Node]:
    async with kvstore.open(str(tmp_path / "store"), options=FAST) as node:
        yield node


def toleration(key: str, seconds: int | None = None) -> Obj:
    out: Obj = {"key": key, "operator": "Exists", "effect": "NoExecute"}
    if seconds is not None:
        out["tolerationSeconds"] = seconds
    return out


async def test_a_silent_node_is_marked_unknown_tainted_and_drained(store: Node) -> None:
    cluster = Cluster(store, RecordingController())
    await cluster.start()
    for name in ("n1", "n2"):
        await cluster.add_node(name)
    await cluster.add_pod("default-toleration", "n1")
    await cluster.add_pod("short", "n1", [toleration("node.kubernetes.io/unreachable", 60)])
    await cluster.add_pod("forever", "n1", [toleration("node.kubernetes.io/unreachable")])
    await cluster.add_pod("everything", "n1", [{"operator": "Exists"}])
    await cluster.add_pod("elsewhere", "n2")
    await cluster.run_manager()
    try:
        # Renewing kubelets: both nodes stay Ready, untainted, well past the grace.
        await cluster.advance(100, step=5)
        for name in ("n1", "n2"):
            assert (await cluster.ready(name))["status"] == "True"
            assert await cluster.taints(name) == []

        # n1's kubelet goes silent. One second short of the grace, nothing has happened.
        silent_since = cluster.alive.pop("n1")
        await cluster.advance_to(silent_since + 39)
        await cluster.poke("n1")  # makes the controller look now, between its periodic looks
        await eventually(lambda: cluster.controller.passed_since("n1", silent_since + 39),
                         "a look at n1 just before the grace ends")
        await settle(cluster.kv)
        assert (await cluster.ready("n1"))["status"] == "True"
        assert await cluster.taints("n1") == []

        # At the grace: Unknown, unreachable taints, pods no longer ready.
        await cluster.tick(1)

        async def unreachable() -> bool:
            return await cluster.taints("n1") == UNREACHABLE
        await eventually(unreachable, "n1 tainted unreachable")
        ready = await cluster.ready("n1")
        assert (ready["status"], ready["reason"], ready["message"]) == (
            "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
        conditions = (await cluster.node("n1"))["status"]["conditions"]
        assert {c["type"]: c["status"] for c in conditions} == {
            "Ready": "Unknown", "MemoryPressure": "Unknown", "DiskPressure": "Unknown",
            "PIDPressure": "Unknown"}
        tainted_at = cluster.wall.now()

        async def pods_not_ready() -> bool:
            for name in ("default-toleration", "short", "forever", "everything"):
                pod = await cluster.pod(name)
                cond = condition_of(pod, "Ready") if pod is not None else None
                if cond is None or cond["status"] != "False":
                    return False
            return True
        await eventually(pods_not_ready, "n1's pods marked not ready")
        elsewhere = await cluster.pod("elsewhere")
        assert elsewhere is not None and ready_status(elsewhere) == "True"

        # The pod tolerating unreachable for 60 s goes at 60 s, not before.
        await cluster.advance_to(tainted_at + 59, step=1)
        await settle(cluster.kv)
        assert await cluster.pod("short") is not None
        await cluster.tick(1)
        await eventually(lambda: _gone(cluster, "short"), "short evicted")

        # A pod bound to the tainted node later is judged from its own creation.
        await cluster.advance_to(tainted_at + 100, step=5)
        await cluster.add_pod("late", "n1", [toleration("node.kubernetes.io/unreachable", 20)])
        created = cluster.wall.now()
        await cluster.advance_to(created + 19)
        await settle(cluster.kv)
        assert await cluster.pod("late") is not None
        await cluster.tick(1)
        await eventually(lambda: _gone(cluster, "late"), "late evicted")

        # The default toleration (300 s) for pods without their own.
        await cluster.advance_to(tainted_at + 295, step=5)
        await cluster.advance(4)
        await settle(cluster.kv)
        assert await cluster.pod("default-toleration") is not None
        await cluster.tick(1)
        await eventually(lambda: _gone(cluster, "default-toleration"),
                         "default-toleration evicted")

        # Tolerating for ever means for ever; the healthy node keeps its pod.
        await cluster.advance(200, step=10)
        assert await cluster.pod_names() == ["elsewhere", "everything", "forever"]
        assert (await cluster.ready("n2"))["status"] == "True"
        assert await cluster.taints("n2") == []

        async def evictions() -> bool:
            return await cluster.events("TaintManagerEviction") == [
                ("default-toleration", "Marking for deletion Pod default/default-toleration"),
                ("late", "Marking for deletion Pod default/late"),
                ("short", "Marking for deletion Pod default/short")]
        await eventually(evictions, "eviction events")

        async def node_not_ready_events() -> bool:
            events = await cluster.events("NodeNotReady")
            return ("n1", "Node n1 status is now: NodeNotReady") in events and \
                ("forever", "Node is not ready") in events
        await eventually(node_not_ready_events, "NodeNotReady events")

        # The kubelet comes back: lease renewed, Ready posted; the taints go.
        await cluster.renew("n1")
        await cluster.post_ready("n1", "True")
        await cluster.tick(1)

        async def untainted() -> bool:
            return await cluster.taints("n1") == []
        await eventually(untainted, "n1's taints removed")
        assert (await cluster.ready("n1"))["status"] == "True"
        await cluster.advance(60, step=5)
        assert await cluster.taints("n1") == []
        assert await cluster.pod_names() == ["elsewhere", "everything", "forever"]
    finally:
        await cluster.stop()


async def _gone(cluster: Cluster, name: str) -> bool:
    return await cluster.pod(name) is None


async def test_a_node_reporting_not_ready_is_tainted_not_ready(store: Node) -> None:
    cluster = Cluster(store, RecordingController(eviction_timeout=30))
    await cluster.start()
    await cluster.add_node("n1")
    await cluster.add_node("n2")  # a ready node: the controller does not suspect itself
    await cluster.add_pod("plain", "n1")
    await cluster.add_pod("patient", "n1", [toleration("node.kubernetes.io/not-ready", 120)])
    await cluster.add_pod("held", "n1", finalizers=["example.com/hold"])
    await cluster.run_manager()
    try:
        await cluster.advance(20, step=5)
        await cluster.post_ready("n1", "False")  # the lease keeps being renewed
        await cluster.tick(1)
        not_ready_at = cluster.wall.now()

        async def not_ready() -> bool:
            return await cluster.taints("n1") == NOT_READY
        await eventually(not_ready, "n1 tainted not-ready")

        # eviction_timeout stands in for the default toleration: 30 s, not 29.
        await cluster.advance_to(not_ready_at + 29)
        await settle(cluster.kv)
        assert await cluster.pod_names() == ["held", "patient", "plain"]
        held = await cluster.pod("held")
        assert held is not None and "deletionTimestamp" not in held["metadata"]
        await cluster.tick(1)
        await eventually(lambda: _gone(cluster, "plain"), "plain evicted")

        # A pod its finalizer holds is forced (grace 0), says why, and is left alone after.
        held = await cluster.pod("held")
        assert held is not None and held["metadata"]["deletionGracePeriodSeconds"] == 0
        target = condition_of(held, "DisruptionTarget")
        assert target is not None and (target["status"], target["reason"]) == (
            "True", "DeletionByTaintManager")

        # The kubelet's word stands: the node stays False, its pods' readiness is the kubelet's.
        await cluster.advance(60, step=5)
        ready = await cluster.ready("n1")
        assert (ready["status"], ready["reason"]) == ("False", "KubeletNotReady")
        assert await cluster.taints("n1") == NOT_READY
        patient = await cluster.pod("patient")
        assert patient is not None and ready_status(patient) == "True"

        # Ready again before the patient pod's 120 s: taints go, its eviction is called off.
        await cluster.post_ready("n1", "True")
        await cluster.tick(1)

        async def untainted() -> bool:
            return await cluster.taints("n1") == []
        await eventually(untainted, "n1's taints removed")

        async def cancelled() -> bool:
            return ("patient", "Cancelling deletion of Pod default/patient") in \
                await cluster.events("TaintManagerEviction")
        await eventually(cancelled, "the pending eviction called off")
        await cluster.advance(120, step=10)
        assert await cluster.pod_names() == ["held", "patient"]
        assert await cluster.event_counts("TaintManagerEviction") == [
            ("held", "Marking for deletion Pod default/held", 1),
            ("patient", "Cancelling deletion of Pod default/patient", 1),
            ("plain", "Marking for deletion Pod default/plain", 1)]
    finally:
        await cluster.stop()


async def test_a_new_term_gives_a_full_grace_but_keeps_the_eviction_clock(store: Node) -> None:
    cluster = Cluster(store, RecordingController(eviction_timeout=100))
    await cluster.start()
    await cluster.add_node("n1")
    await cluster.add_node("n2")
    await cluster.add_pod("plain", "n1")
    await cluster.run_manager()
    try:
        await cluster.advance(10, step=5)
        silent_since = cluster.alive.pop("n1")
        await cluster.advance_to(silent_since + 30, step=5)
        # A new leader 30 s into the silence sees the node for the first time: a full grace.
        await cluster.restart(RecordingController(eviction_timeout=100))
        restarted_at = cluster.wall.now()
        await cluster.advance_to(restarted_at + 39, step=1)
        await cluster.poke("n1")
        await eventually(lambda: cluster.controller.passed_since("n1", restarted_at + 39),
                         "a look at n1 just before the new term's grace ends")
        await settle(cluster.kv)
        assert (await cluster.ready("n1"))["status"] == "True"
        await cluster.tick(1)

        async def unreachable() -> bool:
            return await cluster.taints("n1") == UNREACHABLE
        await eventually(unreachable, "n1 tainted unreachable")
        tainted_at = cluster.wall.now()

        # Another new term 50 s later: the pod still goes 100 s after the taint was added.
        await cluster.advance_to(tainted_at + 50, step=5)
        await cluster.restart(RecordingController(eviction_timeout=100))
        await cluster.advance_to(tainted_at + 99, step=1)
        await settle(cluster.kv)
        assert await cluster.pod("plain") is not None
        await cluster.tick(1)
        await eventually(lambda: _gone(cluster, "plain"), "plain evicted")

        # A deleted node is forgotten.
        await cluster.api.resource("nodes").delete("n2")
        await eventually(lambda: cluster.controller.health("n2") is None, "n2 forgotten")
        assert cluster.controller.health("n1") is not None
    finally:
        await cluster.stop()


def test_the_plugin_contract() -> None:
    controller = NodeLifecycleController()
    assert isinstance(controller, Controller)
    assert controller.name == "node-lifecycle"
    assert tuple(controller.informers) == ("nodes", "leases", "pods")
    assert (controller.grace_period, controller.eviction_timeout, controller.monitor_period,
            controller.startup_grace_period) == (40.0, 300.0, 5.0, 60.0)
    for bad in ({"grace_period": 0}, {"monitor_period": -1}, {"startup_grace_period": 0},
                {"eviction_timeout": -1}):
        with pytest.raises(ValueError):
            NodeLifecycleController(**bad)


async def test_startup_grace_and_no_eviction_while_no_node_is_ready(store: Node) -> None:
    cluster = Cluster(store, RecordingController(startup_grace_period=60, eviction_timeout=30))
    await cluster.start()
    await cluster.add_node("n0", ready=None)  # registered, never posts a status
    await cluster.add_pod("plain", "n0")
    created = cluster.wall.now()
    await cluster.run_manager()
    try:
        await cluster.advance_to(created + 59)
        await cluster.poke("n0")
        await eventually(lambda: cluster.controller.passed_since("n0", created + 59),
                         "a look at n0 just before the startup grace ends")
        await settle(cluster.kv)
        assert (await cluster.node("n0")).get("status", {}).get("conditions") is None
        await cluster.tick(1)

        async def unknown() -> bool:
            conditions = (await cluster.node("n0")).get("status", {}).get("conditions") or []
            return sorted((c["type"], c["status"], c["reason"]) for c in conditions) == [
                (t, "Unknown", "NodeStatusNeverUpdated")
                for t in ("DiskPressure", "MemoryPressure", "PIDPressure", "Ready")]
        await eventually(unknown, "n0's conditions never updated")

        # No node is ready: no NoExecute taint, so nothing is evicted, however long it lasts.
        only_no_schedule = [("node.kubernetes.io/unreachable", "NoSchedule")]
        await eventually(lambda: _has_taints(cluster, "n0", only_no_schedule), "n0 tainted")
        await cluster.advance(100, step=10)
        assert await cluster.taints("n0") == only_no_schedule
        assert await cluster.pod_names() == ["plain"]

        # A ready node joins: n0 is unreachable after all; the eviction clock starts now.
        await cluster.add_node("n1")
        joined = cluster.wall.now()
        await cluster.tick(1)
        await eventually(lambda: _has_taints(cluster, "n0", UNREACHABLE), "n0 NoExecute")
        await cluster.advance_to(joined + 29)
        await settle(cluster.kv)
        assert await cluster.pod_names() == ["plain"]
        await cluster.advance(2)
        await eventually(lambda: _gone(cluster, "plain"), "plain evicted")
    finally:
        await cluster.stop()


async def _has_taints(cluster: Cluster, name: str, want: list[tuple[str, str]]) -> bool:
    return await cluster.taints(name) == want
