"""The DaemonSet controller and the scheduler under a Manager, on an embedded one-member store.

``Cluster`` runs both with fake clocks (the manager's for queues and
delays, the clientset's wall clock for timestamps, moved together by
``advance``) and stands in for the node agents: ``kubelet`` starts every
bound pod (Running, and Ready unless its node is held back) and removes
pods being deleted. Informers hand out frozen objects, so a controller that
mutated a cached object would fail loudly. The pod informer's watch can be
held back (``pods_lw.gate``) to make its cache lag.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import kvstore
from controllers.api import Clientset
from controllers.api.errors import Conflict, NotFound
from controllers.api.objects import Obj, format_timestamp
from controllers.builtin.daemonset import (
    CONTROLLER_REVISION_HASH_LABEL,
    DaemonSetController,
)
from controllers.builtin.scheduler import Scheduler
from controllers.clock import FakeClock
from controllers.informers.reflector import ListWatch
from controllers.informers.shared_informer import SharedInformer
from controllers.manager import Manager
from kvstore.clock import FakeClock as WallFakeClock
from kvstore.node import NodeOptions
from tests.controllers.builtin.scheduler_objects import make_node
from tests.controllers.builtin.support import GatedListWatch

T0 = 1_700_000_000.0
DEADLINE = 10.0


class Cluster:
    """A store, fake clocks, a manager running the DaemonSet controller and the scheduler."""

    def __init__(self, api: Clientset, wall: WallFakeClock) -> None:
        self.api = api
        self.wall = wall
        self.clock = FakeClock()
        self.pods_lw = GatedListWatch(ListWatch(api.resource("pods")))
        self.held: set[str] = set()
        """Nodes whose pods do not become ready."""
        self.task: asyncio.Task[None] | None = None
        self.controller: DaemonSetController | None = None

    def advance(self, seconds: float) -> None:
        self.wall.advance(seconds)
        self.clock.advance(seconds)

    async def start(self, **options: Any) -> DaemonSetController:
        informers = {r: SharedInformer(ListWatch(self.api.resource(r)), clock=self.clock,
                                       freeze_objects=True, resource=r)
                     for r in ("daemonsets", "nodes", "controllerrevisions")}
        informers["pods"] = SharedInformer(self.pods_lw, clock=self.clock, freeze_objects=True,
                                           resource="pods")
        self.controller = DaemonSetController(**options)
        manager = Manager(self.api, [self.controller, Scheduler()], clock=self.clock,
                          cache_sync_poll=0.01, informer_factory=informers.__getitem__)
        self.task = asyncio.ensure_future(manager.run())
        await self.until(lambda: all(i.has_synced() for i in informers.values()), "sync",
                         kubelet=False)
        self.advance(0.05)  # the workers start on the next cache-sync poll
        return self.controller

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.wait({self.task})

    async def kubelet(self) -> None:
        """One pass of every node agent (see the module docstring)."""
        client = self.api.resource("pods")
        for pod in (await client.list("default"))["items"]:
            meta, spec = pod["metadata"], pod["spec"]
            try:
                if meta.get("deletionTimestamp"):
                    await client.delete(meta["name"], "default", grace_period_seconds=0)
                elif spec.get("nodeName") and pod["status"].get("phase") == "Pending":
                    status = pod["status"]
                    status["phase"] = "Running"
                    if spec["nodeName"] not in self.held:
                        status["conditions"] = [
                            c for c in status.get("conditions") or () if c["type"] != "Ready"
                        ] + [{"type": "Ready", "status": "True",
                              "lastTransitionTime": format_timestamp(self.wall.now())}]
                    await client.update_status(pod)
            except (Conflict, NotFound):
                continue  # changed meanwhile; the next pass sees it again

    async def until(self, check: Callable[[], Any], what: str, *, kubelet: bool = True) -> None:
        """Run the node agents and poll ``check`` until true; a real-time deadline."""
        deadline = time.monotonic() + DEADLINE
        while True:
            if kubelet:
                await self.kubelet()
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            if time.monotonic() > deadline:
                print(await self.pods_by_node(), await self.status())
                raise AssertionError(f"never happened: {what}")
            await asyncio.sleep(0.01)

    # -- reads ----------------------------------------------------------------------------
    async def pods(self, *, active: bool = True) -> list[Obj]:
        items = (await self.api.resource("pods").list("default"))["items"]
        if active:
            items = [p for p in items if not p["metadata"].get("deletionTimestamp")]
        return sorted(items, key=lambda p: (p["spec"].get("nodeName") or "",
                                            p["metadata"]["name"]))

    async def pods_by_node(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for pod in await self.pods():
            found.setdefault(pod["spec"].get("nodeName") or "", []).append(
                pod["metadata"]["name"])
        return found

    async def status(self, name: str = "agent") -> Obj:
        ds = await self.api.resource("daemonsets").get(name, "default")
        return dict(ds.get("status") or {})

    async def events(self, reason: str) -> list[Obj]:
        items = (await self.api.resource("events").list("default"))["items"]
        return [e for e in items if e["reason"] == reason]

    async def add_nodes(self, *names: str, **options: Any) -> None:
        for name in names:
            await self.api.resource("nodes").create(make_node(name, **options))

    async def change_node(self, name: str, change: Callable[[Obj], None]) -> None:
        client = self.api.resource("nodes")
        node = await client.get(name)
        change(node)
        await client.update(node)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with kvstore.open(str(tmp_path / "s"),
                            options=NodeOptions(tick_interval=0.01, unsafe_no_fsync=True)) as n:
        wall = WallFakeClock(T0)
        api = Clientset(n, clock=wall, rng=random.Random(7))
        await api.ensure_default_namespaces()
        c = Cluster(api, wall)
        try:
            yield c
        finally:
            await c.stop()


def daemonset(name: str = "agent", *, image: str = "agent:1", **spec: Any) -> Obj:
    pod_spec: Obj = {"containers": [{"name": "c", "image": image}]}
    pod_spec.update(spec.pop("pod", {}))
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
                     **spec}}


def settled(cluster: Cluster, nodes: list[str], name: str = "agent") -> Callable[[], Any]:
    """A check: exactly one ready pod on each of ``nodes`` and nowhere else; status caught up."""
    async def check() -> bool:
        by_node = await cluster.pods_by_node()
        if sorted(by_node) != sorted(nodes) or any(len(v) != 1 for v in by_node.values()):
            return False
        status = await cluster.status(name)
        return (status.get("numberReady") == len(nodes)
                and status.get("desiredNumberScheduled") == len(nodes))
    return check


def placed(cluster: Cluster, nodes: list[str], *, desired: int,
           misscheduled: int) -> Callable[[], Any]:
    """A check: one pod on each of ``nodes``, none elsewhere; the status counts given."""
    async def check() -> bool:
        by_node = await cluster.pods_by_node()
        if sorted(by_node) != sorted(nodes) or any(len(v) != 1 for v in by_node.values()):
            return False
        status = await cluster.status()
        return (status.get("desiredNumberScheduled"), status.get("numberMisscheduled"),
                status.get("currentNumberScheduled")) == (desired, misscheduled, desired)
    return check


# -- scenarios ----------------------------------------------------------------------------------
async def test_one_pod_per_node_follows_nodes_and_taints(cluster: Cluster) -> None:
    await cluster.add_nodes("n1", "n2", "n3")
    await cluster.start()
    created = await cluster.api.resource("daemonsets").create(daemonset())
    await cluster.until(settled(cluster, ["n1", "n2", "n3"]), "3 pods on 3 nodes")

    pod = (await cluster.pods())[0]
    ds_uid = created["metadata"]["uid"]
    assert pod["metadata"]["ownerReferences"][0]["uid"] == ds_uid
    assert pod["metadata"]["generateName"] == "agent-"
    assert pod["metadata"]["labels"][CONTROLLER_REVISION_HASH_LABEL]
    # Pinned by node affinity and bound by the scheduler, not named by the controller.
    terms = pod["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                       "values": [pod["spec"]["nodeName"]]}]}]
    keys = {(t["key"], t["effect"]) for t in pod["spec"]["tolerations"]}
    assert ("node.kubernetes.io/not-ready", "NoExecute") in keys
    assert ("node.kubernetes.io/unschedulable", "NoSchedule") in keys
    status = await cluster.status()
    assert {k: status[k] for k in ("desiredNumberScheduled", "currentNumberScheduled",
                                   "numberMisscheduled", "numberReady", "numberAvailable",
                                   "numberUnavailable", "updatedNumberScheduled",
                                   "observedGeneration")} == {
        "desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberMisscheduled": 0,
        "numberReady": 3, "numberAvailable": 3, "numberUnavailable": 0,
        "updatedNumberScheduled": 3, "observedGeneration": 1}
    assert len(await cluster.events("SuccessfulCreate")) == 3

    await cluster.add_nodes("n4")
    await cluster.until(settled(cluster, ["n1", "n2", "n3", "n4"]), "a 4th pod")

    await cluster.change_node("n2", lambda n: n["spec"].update(
        taints=[{"key": "dedicated", "value": "db", "effect": "NoExecute"}]))
    await cluster.until(settled(cluster, ["n1", "n3", "n4"]), "the pod leaves the tainted node")
    assert (await cluster.events("SuccessfulDelete"))

    # NoSchedule alone: the running pod stays (counted as misscheduled, as Kubernetes
    # does), and a new node with that taint gets none.
    await cluster.change_node("n3", lambda n: n["spec"].update(
        taints=[{"key": "dedicated", "effect": "NoSchedule"}]))
    await cluster.add_nodes("n5", taints=[{"key": "dedicated", "effect": "NoSchedule"}])
    await cluster.until(placed(cluster, ["n1", "n3", "n4"], desired=2, misscheduled=1),
                        "NoSchedule keeps what runs")

    # A node removed: its pod goes at once (nothing is left there to stop it).
    await cluster.api.resource("nodes").delete("n4")
    await cluster.until(placed(cluster, ["n1", "n3"], desired=1, misscheduled=1),
                        "the removed node's pod is gone")


async def test_selectors_affinity_and_cordoned_nodes(cluster: Cluster) -> None:
    await cluster.add_nodes("a", labels={"disk": "ssd"})
    await cluster.add_nodes("b", labels={"disk": "hdd"})
    await cluster.add_nodes("c", labels={"disk": "ssd"}, unschedulable=True, taints=[
        {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}])
    await cluster.start()
    await cluster.api.resource("daemonsets").create(daemonset(pod={
        "nodeSelector": {"disk": "ssd"}}))
    await cluster.until(settled(cluster, ["a", "c"]), "pods on the ssd nodes, cordoned too")

    await cluster.change_node("b", lambda n: n["metadata"]["labels"].update(disk="ssd"))
    await cluster.until(settled(cluster, ["a", "b", "c"]), "a node gains the label")
    await cluster.change_node("a", lambda n: n["metadata"]["labels"].update(disk="hdd"))
    await cluster.until(placed(cluster, ["b", "c"], desired=2, misscheduled=0),
                        "a node loses the label")


async def test_extra_pods_on_a_node_are_deleted_keeping_the_oldest(cluster: Cluster) -> None:
    await cluster.add_nodes("n1")
    await cluster.start()
    await cluster.api.resource("daemonsets").create(daemonset())
    await cluster.until(settled(cluster, ["n1"]), "one pod")
    oldest = (await cluster.pods())[0]["metadata"]["name"]
    cluster.advance(5)
    # Two orphans matching the selector, on the same node: adopted, then deleted.
    for name in ("stray-1", "stray-2"):
        await cluster.api.resource("pods").create({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": "agent"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "agent:1"}]}})

    async def one_left() -> bool:
        return [p["metadata"]["name"] for p in await cluster.pods(active=False)] == [oldest]
    await cluster.until(one_left, "the extra pods deleted, the oldest kept")


async def test_failed_pods_are_replaced_with_back_off(cluster: Cluster) -> None:
    await cluster.add_nodes("n1")
    await cluster.start()
    await cluster.api.resource("daemonsets").create(daemonset())
    await cluster.until(settled(cluster, ["n1"]), "one pod")

    async def fail_the_pod() -> str:
        pod = (await cluster.pods())[0]
        pod["status"]["phase"] = "Failed"
        pod["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
        await cluster.api.resource("pods").update_status(pod)
        return str(pod["metadata"]["name"])

    first = await fail_the_pod()

    async def replaced(old: str) -> bool:
        names = [p["metadata"]["name"] for p in await cluster.pods(active=False)]
        return len(names) == 1 and names[0] != old
    await cluster.until(lambda: replaced(first), "the failed pod replaced")
    await cluster.until(settled(cluster, ["n1"]), "the replacement runs")
    events = await cluster.events("FailedDaemonPod")
    assert len(events) == 1 and "will try to kill it" in events[0]["message"]

    # Failing again at once: backed off until a second has passed. The status write
    # (no pod ready) comes from the sync that saw the failed pod and left it alone.
    second = await fail_the_pod()

    async def seen_failed() -> bool:
        return (await cluster.status()).get("numberReady") == 0
    await cluster.until(seen_failed, "the failure seen", kubelet=False)
    assert [p["metadata"]["name"] for p in await cluster.pods(active=False)] == [second]
    cluster.advance(1.5)
    await cluster.until(lambda: replaced(second), "replaced after the back-off")
    assert len(await cluster.events("FailedDaemonPod")) == 2


async def test_a_lagging_pod_cache_never_creates_twice(cluster: Cluster) -> None:
    await cluster.add_nodes("n1", "n2")
    controller = await cluster.start()
    cluster.pods_lw.gate.clear()
    await cluster.api.resource("daemonsets").create(daemonset())

    async def two_created() -> bool:
        return len(await cluster.pods()) == 2
    await cluster.until(two_created, "two pods created", kubelet=False)
    # The pod cache saw nothing yet: more syncs (a node update, time passing) create nothing.
    await cluster.change_node("n1", lambda n: n["metadata"]["labels"].update(x="y"))
    cluster.advance(30)
    for _ in range(30):
        await asyncio.sleep(0.01)
    assert len(await cluster.pods()) == 2
    assert controller.expectations is not None
    assert not controller.expectations.satisfied("default/agent")
    cluster.pods_lw.gate.set()
    await cluster.until(settled(cluster, ["n1", "n2"]), "settles with two pods")
    assert len(await cluster.pods(active=False)) == 2


async def test_pods_count_as_available_after_min_ready_seconds(cluster: Cluster) -> None:
    await cluster.add_nodes("n1", "n2")
    await cluster.start()
    await cluster.api.resource("daemonsets").create(daemonset(minReadySeconds=30))
    await cluster.until(settled(cluster, ["n1", "n2"]), "two ready pods")
    status = await cluster.status()
    assert (status["numberReady"], status["numberAvailable"], status["numberUnavailable"]) == (
        2, 0, 2)
    cluster.advance(31)

    async def available() -> bool:
        return (await cluster.status()).get("numberAvailable") == 2
    await cluster.until(available, "available once ready for 30 s")
    assert (await cluster.status())["numberUnavailable"] == 0


async def test_one_sync_creates_at_most_burst_replicas(cluster: Cluster) -> None:
    await cluster.add_nodes("n1", "n2", "n3")
    await cluster.start(burst_replicas=2)
    cluster.pods_lw.gate.clear()
    await cluster.api.resource("daemonsets").create(daemonset())

    async def created(count: int) -> bool:
        return len(await cluster.pods()) == count
    await cluster.until(lambda: created(2), "the first burst", kubelet=False)
    cluster.advance(1)
    for _ in range(30):
        await asyncio.sleep(0.01)
    assert len(await cluster.pods()) == 2
    cluster.pods_lw.gate.set()
    await cluster.until(settled(cluster, ["n1", "n2", "n3"]), "the rest once both were seen")
