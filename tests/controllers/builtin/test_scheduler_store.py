"""The Scheduler under a Manager on an embedded one-member store, with time on fake clocks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import kvstore
from controllers.api import Clientset
from controllers.builtin.scheduler import Scheduler, builtin_registry
from controllers.clock import FakeClock
from controllers.informers.shared_informer import FREEZE_ENV
from controllers.manager import Manager
from kvstore.clock import FakeClock as WallFakeClock
from kvstore.node import NodeOptions
from tests.controllers.builtin.scheduler_objects import make_node, make_pod

SYNC_POLL = 0.05
RS_UID = "5b0f3c52-0000-4000-8000-000000000001"


@pytest.fixture(autouse=True)
def frozen_informers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FREEZE_ENV, "1")


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Clientset]:
    async with kvstore.open(str(tmp_path / "s"),
                            options=NodeOptions(tick_interval=0.01, unsafe_no_fsync=True)) as n:
        clientset = Clientset(n, clock=WallFakeClock(1_700_000_000.0))
        await clientset.ensure_default_namespaces()
        yield clientset


async def eventually(check: Callable[[], Awaitable[bool]], what: str,
                     timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.02)


class Running:
    """A Manager running one Scheduler; ``advance`` moves both fake clocks."""

    def __init__(self, api: Clientset, scheduler: Scheduler) -> None:
        self.api = api
        self.scheduler = scheduler
        self.clock = FakeClock()
        self.manager = Manager(api, [scheduler], clock=self.clock, cache_sync_poll=SYNC_POLL)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.ensure_future(self.manager.run())

        async def synced() -> bool:
            context = self.scheduler._context
            return context is not None and all(
                context.informer(name).has_synced() for name in ("pods", "nodes"))

        await eventually(synced, "informers synced")
        self.advance(SYNC_POLL)  # the manager's cache-sync poll: start the worker

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        wall = self.api.clock
        assert isinstance(wall, WallFakeClock)
        wall.advance(seconds)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.wait({self.task})


@pytest.fixture
async def run(api: Clientset) -> AsyncIterator[Callable[..., Awaitable[Running]]]:
    started: list[Running] = []

    async def start(scheduler: Scheduler | None = None) -> Running:
        r = Running(api, scheduler if scheduler is not None
                    else Scheduler(registry=builtin_registry()))
        started.append(r)
        await r.start()
        return r

    yield start
    for r in started:
        await r.stop()


async def create(api: Clientset, obj: dict[str, Any]) -> dict[str, Any]:
    return await api.resource(obj["kind"]).create(obj)


async def get_pod(api: Clientset, name: str) -> dict[str, Any]:
    return await api.resource("pods").get(name, "default")


async def node_of(api: Clientset, name: str) -> str:
    return str((await get_pod(api, name))["spec"].get("nodeName") or "")


def scheduled_condition(pod: dict[str, Any]) -> dict[str, Any] | None:
    for cond in pod.get("status", {}).get("conditions") or []:
        if cond["type"] == "PodScheduled":
            return dict(cond)
    return None


async def events(api: Clientset, reason: str) -> list[dict[str, Any]]:
    return [e for e in (await api.resource("events").list(None))["items"]
            if e["reason"] == reason]


async def unschedulable_message(api: Clientset, name: str) -> str:
    cond = scheduled_condition(await get_pod(api, name))
    if cond is None or cond["status"] != "False":
        return ""
    assert cond["reason"] == "Unschedulable"
    return str(cond["message"])


async def test_six_pods_of_one_replicaset_spread_two_per_node(
        api: Clientset, run: Callable[..., Awaitable[Running]]) -> None:
    for name in ("node-a", "node-b", "node-c"):
        await create(api, make_node(name))
    for i in range(3):
        await create(api, make_pod(f"web-{i}", owner_uid=RS_UID))
    await run()
    for i in range(3, 6):  # some before the scheduler started, some after
        await create(api, make_pod(f"web-{i}", owner_uid=RS_UID))

    async def all_bound() -> bool:
        return all([await node_of(api, f"web-{i}") for i in range(6)])

    await eventually(all_bound, "all six pods bound")
    placed = sorted([await node_of(api, f"web-{i}") for i in range(6)])
    assert placed == ["node-a", "node-a", "node-b", "node-b", "node-c", "node-c"]

    async def condition_true() -> bool:
        cond = scheduled_condition(await get_pod(api, "web-0"))
        return cond is not None and cond["status"] == "True"

    await eventually(condition_true, "PodScheduled=True")
    pod = await get_pod(api, "web-0")

    async def scheduled_events() -> bool:
        return len(await events(api, "Scheduled")) == 6

    await eventually(scheduled_events, "six Scheduled events")
    messages = {e["message"] for e in await events(api, "Scheduled")}
    assert f"Successfully assigned default/web-0 to {pod['spec']['nodeName']}" in messages


async def test_unschedulable_pods_say_why_and_retry_when_a_node_is_added(
        api: Clientset, run: Callable[..., Awaitable[Running]]) -> None:
    unreachable = [{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}]
    await create(api, make_node("node-a", cpu="2"))
    await create(api, make_node("node-b", taints=unreachable, ready="Unknown"))
    await create(api, make_node("node-c", taints=unreachable, ready="Unknown"))
    await create(api, make_pod("already-there", cpu="1500m", node_name="node-a"))
    await create(api, make_pod("big", cpu="1"))
    running = await run()
    want = ("0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint "
            "{node.kubernetes.io/unreachable: }.")

    async def explained() -> bool:
        return await unschedulable_message(api, "big") == want

    await eventually(explained, "the PodScheduled=False condition")

    async def warned() -> bool:
        return any(e["message"] == want and e["type"] == "Warning"
                   for e in await events(api, "FailedScheduling"))

    await eventually(warned, "a FailedScheduling event")

    # Time alone (past the back-off, short of the 5 minute flush) brings no new attempt.
    attempts = running.scheduler.attempts
    running.advance(30)
    await asyncio.sleep(0.2)
    assert running.scheduler.attempts == attempts
    assert await node_of(api, "big") == ""

    # A node that fits is added: the pod is tried again at once and bound there.
    await create(api, make_node("node-d", cpu="4"))

    async def bound_to_d() -> bool:
        pod = await get_pod(api, "big")
        cond = scheduled_condition(pod)
        return pod["spec"].get("nodeName") == "node-d" and cond is not None and \
            cond["status"] == "True"

    await eventually(bound_to_d, "the pod bound to the new node")
    cond = scheduled_condition(await get_pod(api, "big"))
    assert cond is not None and "message" not in cond and "reason" not in cond


async def test_selectors_affinity_taints_and_host_ports(
        api: Clientset, run: Callable[..., Awaitable[Running]]) -> None:
    await create(api, make_node("gpu", labels={"accel": "gpu"},
                                taints=[{"key": "dedicated", "value": "gpu",
                                         "effect": "NoSchedule"}]))
    await create(api, make_node("ssd", labels={"disk": "ssd"}))
    await create(api, make_node("plain"))
    gpu_affinity = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "accel", "operator": "In", "values": ["gpu"]}]}]}}
    by_name = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["plain"]}]}]}}
    toleration = [{"key": "dedicated", "operator": "Equal", "value": "gpu",
                   "effect": "NoSchedule"}]
    await create(api, make_pod("selector", node_selector={"disk": "ssd"}))
    await create(api, make_pod("trainer", affinity=gpu_affinity, tolerations=toleration))
    await create(api, make_pod("no-toleration", affinity=gpu_affinity))
    await create(api, make_pod("by-name", affinity=by_name))
    await create(api, make_pod("port-1", host_ports=[8080], node_selector={"disk": "ssd"},
                               priority=10))
    await create(api, make_pod("port-2", host_ports=[8080], node_selector={"disk": "ssd"}))
    await create(api, make_pod("elsewhere", scheduler_name="other-scheduler"))
    running = await run()

    async def placed() -> bool:
        return (await node_of(api, "selector") == "ssd" and await node_of(api, "trainer") == "gpu"
                and await node_of(api, "by-name") == "plain"
                and await node_of(api, "port-1") == "ssd")

    await eventually(placed, "the constrained pods placed")

    async def refused() -> bool:
        return (await unschedulable_message(api, "no-toleration") ==
                "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, "
                "2 node(s) didn't match Pod's node affinity/selector."
                and await unschedulable_message(api, "port-2") ==
                "0/3 nodes are available: 1 node(s) didn't have free ports for the requested "
                "pod ports, 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had "
                "untolerated taint {dedicated: gpu}.")

    await eventually(refused, "the reasons of the pods that fit nowhere")
    other = await get_pod(api, "elsewhere")
    assert not other["spec"].get("nodeName") and scheduled_condition(other) is None

    # Freeing the port (a pod deleted) lets the waiting pod in, after its back-off.
    await api.resource("pods").delete("port-1", "default", grace_period_seconds=0)

    async def port_2_bound() -> bool:
        running.advance(0.5)
        return await node_of(api, "port-2") == "ssd"

    await eventually(port_2_bound, "port-2 bound once port-1 is gone")
    assert await node_of(api, "no-toleration") == ""


async def test_higher_priority_pods_are_scheduled_first(
        api: Clientset, run: Callable[..., Awaitable[Running]]) -> None:
    await create(api, make_node("only", pods=2))
    for name, priority in (("low", 1), ("high", 100), ("mid", 50)):
        await create(api, make_pod(name, priority=priority))
    await run()

    async def done() -> bool:
        return await unschedulable_message(api, "low") == \
            "0/1 nodes are available: 1 Too many pods."

    await eventually(done, "the low priority pod left out")
    assert await node_of(api, "high") == "only" and await node_of(api, "mid") == "only"
    assert await node_of(api, "low") == ""


async def test_a_refused_bind_rereads_and_a_pod_bound_meanwhile_is_skipped(
        api: Clientset, run: Callable[..., Awaitable[Running]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    await create(api, make_node("node-a"))
    await create(api, make_node("node-b", cpu="1"))
    old_uids = {name: (await create(api, make_pod(name)))["metadata"]["uid"]
                for name in ("relabelled", "replaced", "taken")}
    pods = api.resource("pods")
    original = pods.bind
    calls: list[tuple[str, str | None]] = []

    async def bind(name: str, namespace: str, node_name: str, *, uid: str | None = None,
                   resource_version: str | None = None) -> dict[str, Any]:
        calls.append((name, uid))
        if [n for n, _ in calls].count(name) == 1:
            current = await pods.get(name, namespace)
            if name == "relabelled":  # someone edits the pod: the bind must not undo it
                current["metadata"]["labels"] = {"edited": "yes"}
                await pods.update(current)
            elif name == "replaced":  # deleted and created again under the same name
                await pods.delete(name, namespace)
                await pods.create(make_pod(name))
            else:  # someone else binds it first
                await original(name, namespace, "node-b")
        return await original(name, namespace, node_name, uid=uid,
                              resource_version=resource_version)

    monkeypatch.setattr(pods, "bind", bind)
    running = await run()

    async def settled() -> bool:
        return all([await node_of(api, name) for name in old_uids])

    await eventually(settled, "all three pods bound")
    relabelled = await get_pod(api, "relabelled")
    assert relabelled["metadata"]["labels"] == {"edited": "yes"}
    cond = scheduled_condition(relabelled)
    assert cond is not None and cond["status"] == "True"
    assert await node_of(api, "taken") == "node-b"  # left where the other binder put it
    # The new pod is not the one decided for: its bind was refused, it was read again
    # and bound under its own uid.
    replaced = await get_pod(api, "replaced")
    assert replaced["metadata"]["uid"] != old_uids["replaced"]
    assert [c for c in calls if c[0] == "replaced"][:2] == [
        ("replaced", old_uids["replaced"]), ("replaced", replaced["metadata"]["uid"])]
    assert [c for c in calls if c[0] in ("relabelled", "taken")] == [
        ("relabelled", old_uids["relabelled"]), ("taken", old_uids["taken"])]
    await asyncio.sleep(0.1)
    messages = [e["message"] for e in await events(api, "Scheduled")]
    assert not any("default/taken" in m for m in messages)
    # The pod bound by the other party counts on node-b in the scheduler's cache.
    node_b = running.scheduler.cache.get_node("node-b")
    assert node_b is not None and "default/taken" in node_b.pods


async def test_pods_being_deleted_are_not_scheduled(
        api: Clientset, run: Callable[..., Awaitable[Running]]) -> None:
    pod = make_pod("leaving")
    pod["metadata"]["finalizers"] = ["example.com/hold"]
    await create(api, pod)
    await api.resource("pods").delete("leaving", "default")
    running = await run()
    await create(api, make_node("node-a"))
    await create(api, make_pod("staying"))

    async def staying_bound() -> bool:
        return await node_of(api, "staying") == "node-a"

    await eventually(staying_bound, "the other pod bound")
    leaving = await get_pod(api, "leaving")
    assert leaving["metadata"].get("deletionTimestamp") and not leaving["spec"].get("nodeName")
    assert running.scheduler.queue is not None and "default/leaving" not in running.scheduler.queue


async def test_an_uncordoned_node_and_a_finished_pod_let_waiting_pods_in(
        api: Clientset, run: Callable[..., Awaitable[Running]]) -> None:
    await create(api, make_node("cordoned", unschedulable=True))
    await create(api, make_node("full", pods=1))
    await create(api, make_pod("running", node_name="full"))
    await create(api, make_pod("waiting"))
    running = await run()
    want = "0/2 nodes are available: 1 Too many pods, 1 node(s) were unschedulable."

    async def refused() -> bool:
        return await unschedulable_message(api, "waiting") == want

    await eventually(refused, "the pod refused by both nodes")

    # The pod on the full node finishes: its place is free again.
    finished = await get_pod(api, "running")
    finished["status"]["phase"] = "Succeeded"
    await api.resource("pods").update_status(finished)

    async def bound_to(node: str, pod: str) -> bool:
        running.advance(0.5)  # past the back-off
        return await node_of(api, pod) == node

    await eventually(lambda: bound_to("full", "waiting"), "the pod on the freed node")

    # The cordoned node is uncordoned: the next waiting pod goes there.
    await create(api, make_pod("second"))

    async def refused_again() -> bool:
        return await unschedulable_message(api, "second") == want

    await eventually(refused_again, "the second pod refused")
    node = await api.resource("nodes").get("cordoned")
    node["spec"]["unschedulable"] = False
    await api.resource("nodes").update(node)
    await eventually(lambda: bound_to("cordoned", "second"), "the pod on the uncordoned node")
