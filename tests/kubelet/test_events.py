"""The kubelet's Events: about its Node, and about the containers of its pods.

Pods run on the simulated runtime inside a kubelet that is not simulated (a
simulated kubelet records nothing about pods), so every event is real and
time stays on the fake clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import kvstore
from controllers.api import Clientset
from controllers.clock import FakeClock
from kvstore.node import Node
from runtime.cli.describe import describe_object
from runtime.kubelet import ContainerLaunch, ContainerProcess, Kubelet, ProbeKind, ProbeResult
from runtime.kubelet.probes import ProbeSpec
from runtime.kubelet.process import ProcessRuntime
from runtime.kubelet.simulated import SimulatedRuntime
from tests.kubelet.support import FAST, WALL_START, eventually, make_kubelet, pod

MISSING = "/no/such/command"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Node]:
    async with kvstore.open(str(tmp_path / "store"), options=FAST) as node:
        yield node


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(WALL_START)


class Runtime:
    """Simulated attempts, except that a command under ``MISSING`` goes to the process
    runtime, which refuses it."""

    def __init__(self, clock: FakeClock) -> None:
        self.simulated = SimulatedRuntime(clock)
        self.processes = ProcessRuntime()

    async def start(self, launch: ContainerLaunch) -> ContainerProcess:
        if launch.command[:1] == (MISSING,):
            return await self.processes.start(launch)
        return await self.simulated.start(launch)


class Probes:
    """Probe results set by the test per (container, kind); success by default."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, ProbeKind], ProbeResult] = {}
        self.specs: dict[ProbeKind, ProbeSpec] = {}

    async def run(self, kind: ProbeKind, launch: ContainerLaunch,
                  probe: ProbeSpec) -> ProbeResult:
        self.specs[kind] = probe
        return self.answers.get((launch.container, kind), ProbeResult(True))


async def started(store: Node, tmp_path: Path, clock: FakeClock, *, simulated: bool = False,
                  probes: Probes | None = None) -> Kubelet:
    extra: dict[str, Any] = {} if simulated else {
        "runtime": Runtime(clock), "probe_runner": probes or Probes()}
    k = make_kubelet(store, tmp_path / "root", clock, simulated=simulated, **extra)
    k.start()
    await asyncio.wait_for(k.wait_ready(), 10)
    return k


async def events_about(api: Clientset, kind: str, name: str) -> list[dict[str, Any]]:
    items = (await api.resource("events").list(None))["items"]
    return [e for e in items if e["involvedObject"]["kind"] == kind
            and e["involvedObject"]["name"] == name]


def summary(events: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(e["type"], e["reason"], e["message"]) for e in events}


async def has_events(api: Clientset, kind: str, name: str,
                     *wanted: tuple[str, str, str]) -> list[dict[str, Any]]:
    async def check() -> list[dict[str, Any]] | None:
        found = await events_about(api, kind, name)
        return found if set(wanted) <= summary(found) else None
    got: list[dict[str, Any]] = await eventually(check, f"events {wanted} about {name}")
    return got


def count_of(events: list[dict[str, Any]], reason: str) -> int:
    return sum(int(e["count"]) for e in events if e["reason"] == reason)


async def uid_of(api: Clientset, name: str) -> str:
    return str((await api.resource("pods").get(name, "default"))["metadata"]["uid"])


async def settled(k: Kubelet) -> None:
    await eventually(k.status_manager.is_idle, "statuses written")
    await k.recorder.flush()


NODE_EVENTS = (
    ("Normal", "Starting", "Starting kubelet."),
    ("Normal", "NodeHasSufficientMemory", "Node n1 status is now: NodeHasSufficientMemory"),
    ("Normal", "NodeHasNoDiskPressure", "Node n1 status is now: NodeHasNoDiskPressure"),
    ("Normal", "NodeHasSufficientPID", "Node n1 status is now: NodeHasSufficientPID"),
    ("Normal", "NodeReady", "Node n1 status is now: NodeReady"),
)


async def test_registration_records_starting_and_the_node_conditions(
        store: Node, tmp_path: Path, clock: FakeClock) -> None:
    k = await started(store, tmp_path, clock)
    api = k.clientset
    found = await has_events(api, "Node", "n1", *NODE_EVENTS)
    node = await api.resource("nodes").get("n1")
    assert len(found) == len(NODE_EVENTS)
    for e in found:
        assert e["source"] == {"component": "kubelet", "host": "n1"}
        assert e["involvedObject"]["uid"] == node["metadata"]["uid"]
        assert e["metadata"]["namespace"] == "default"
    # A node controller marks the node NotReady: the kubelet's next status says Ready again.
    for cond in node["status"]["conditions"]:
        if cond["type"] == "Ready":
            cond["status"] = "Unknown"
    await api.resource("nodes").update_status(node)
    await settled(k)
    clock.advance(10)

    async def ready_twice() -> bool:
        return count_of(await events_about(api, "Node", "n1"), "NodeReady") == 2
    await eventually(ready_twice, "NodeReady recorded again")
    after = await events_about(api, "Node", "n1")
    assert count_of(after, "Starting") == 1 and count_of(after, "NodeHasSufficientPID") == 1
    lines = await describe_object(api, api.registry.lookup("nodes"), node)
    assert any("Starting kubelet." in line and "kubelet" in line.split() for line in lines)
    await k.stop()


async def test_a_started_container_then_its_deletion(store: Node, tmp_path: Path,
                                                     clock: FakeClock) -> None:
    k = await started(store, tmp_path, clock)
    api = k.clientset
    await api.resource("pods").create(pod("web", grace=15, containers=[
        {"name": "app", "image": "nginx"}, {"name": "side", "image": "envoy"}]))
    found = await has_events(api, "Pod", "web",
                             ("Normal", "Created", "Created container app"),
                             ("Normal", "Started", "Started container app"),
                             ("Normal", "Created", "Created container side"),
                             ("Normal", "Started", "Started container side"))
    uid = await uid_of(api, "web")
    for e in found:
        assert e["involvedObject"]["uid"] == uid
        assert e["involvedObject"]["namespace"] == "default"
        assert e["source"] == {"component": "kubelet", "host": "n1"}
    stored = await api.resource("pods").get("web", "default")
    lines = await describe_object(api, api.registry.lookup("pods"), stored)
    assert any(line.split()[:2] == ["Normal", "Started"] and "kubelet" in line
               and line.endswith("Started container app") for line in lines)
    await api.resource("pods").delete("web", "default")
    found = await has_events(api, "Pod", "web",
                             ("Normal", "Killing", "Stopping container app"),
                             ("Normal", "Killing", "Stopping container side"))
    assert len(found) == 6
    await k.stop()


async def test_a_command_that_cannot_start_fails_then_backs_off(
        store: Node, tmp_path: Path, clock: FakeClock) -> None:
    k = await started(store, tmp_path, clock)
    api = k.clientset
    await api.resource("pods").create(pod("broken", containers=[
        {"name": "c", "image": "x", "command": [MISSING]}]))
    uid = await uid_of(api, "broken")
    failed = ("Warning", "Failed",
              f"Error: failed to start '{MISSING}': executable file not found")
    back_off = ("Warning", "BackOff",
                f"Back-off restarting failed container c in pod broken_default({uid})")
    found = await has_events(api, "Pod", "broken", failed, back_off)
    assert "Started" not in {e["reason"] for e in found}
    await settled(k)
    clock.advance(10)  # the restart fails again: both events are counted, not repeated

    async def twice() -> bool:
        got = await events_about(api, "Pod", "broken")
        return count_of(got, "Failed") == 2 and count_of(got, "BackOff") == 2
    await eventually(twice, "a second failure and back-off")
    assert len(await events_about(api, "Pod", "broken")) == 2
    await k.stop()


async def test_failed_probes_are_unhealthy_and_liveness_kills(
        store: Node, tmp_path: Path, clock: FakeClock) -> None:
    probes = Probes()
    probes.answers[("c", ProbeKind.READINESS)] = ProbeResult(
        False, "HTTP probe failed with statuscode: 503")
    k = await started(store, tmp_path, clock, probes=probes)
    api = k.clientset
    await api.resource("pods").create(pod("probed", containers=[{
        "name": "c", "image": "x", "ports": [{"name": "web", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"port": "web", "path": "/ready"}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 5,
                          "failureThreshold": 2}}]))
    await has_events(api, "Pod", "probed", (
        "Warning", "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503"))
    ready = probes.specs[ProbeKind.READINESS]  # the named port, resolved
    assert (ready.handler, ready.port, ready.path) == ("httpGet", 8080, "/ready")
    probes.answers[("c", ProbeKind.LIVENESS)] = ProbeResult(
        False, "dial tcp 127.0.0.1:8080: connect: connection refused")
    await settled(k)
    clock.advance(5)  # one liveness failure of two: an event, the container keeps running
    liveness = ("Warning", "Unhealthy",
                "Liveness probe failed: dial tcp 127.0.0.1:8080: connect: connection refused")
    found = await has_events(api, "Pod", "probed", liveness)
    assert "Killing" not in {e["reason"] for e in found}
    await settled(k)
    clock.advance(5)
    found = await has_events(api, "Pod", "probed", (
        "Normal", "Killing", "Container c failed liveness probe, will be restarted"))
    assert count_of(found, "Unhealthy") >= 4  # every failed probe, readiness and liveness
    await k.stop()


async def test_a_new_image_and_the_active_deadline(store: Node, tmp_path: Path,
                                                   clock: FakeClock) -> None:
    k = await started(store, tmp_path, clock)
    api = k.clientset
    p = pod("img", grace=5, containers=[{"name": "c", "image": "app:v1"}])
    p["spec"]["activeDeadlineSeconds"] = 60
    await api.resource("pods").create(p)
    await has_events(api, "Pod", "img", ("Normal", "Started", "Started container c"))
    await api.resource("pods").patch("img", "default", {"spec": {"containers": [
        {"name": "c", "image": "app:v2"}]}}, "strategic")
    await has_events(api, "Pod", "img",
                     ("Normal", "Killing", "Container c definition changed, will be restarted"))
    await settled(k)
    clock.advance(60)
    await has_events(api, "Pod", "img",
                     ("Normal", "DeadlineExceeded",
                      "Pod was active on the node longer than the specified deadline"),
                     ("Normal", "Killing", "Stopping container c"))
    await k.stop()


async def test_stop_writes_what_was_queued_then_closes(store: Node, tmp_path: Path,
                                                       clock: FakeClock) -> None:
    k = await started(store, tmp_path, clock)
    api = k.clientset
    names = [f"last-{i}" for i in range(10)]
    for name in names:
        await api.resource("pods").create(pod(name, containers=[
            {"name": "a", "image": "x"}, {"name": "b", "image": "x"}]))
    for name in names:
        await has_events(api, "Pod", name, ("Normal", "Started", "Started container b"))
    await k.stop()  # stopping each container is recorded, and written before the end
    for name in names:
        assert {("Normal", "Killing", "Stopping container a"),
                ("Normal", "Killing", "Stopping container b")} <= summary(
            await events_about(api, "Pod", name))
    written = k.recorder.written
    k.recorder.event(await api.resource("pods").get(names[0], "default"), "Normal", "X", "y")
    await asyncio.sleep(0.01)
    assert k.recorder.written == written  # closed: nothing more is written


async def test_a_simulated_kubelet_records_only_node_events(store: Node, tmp_path: Path,
                                                            clock: FakeClock) -> None:
    k = await started(store, tmp_path, clock, simulated=True)
    api = k.clientset
    await api.resource("pods").create(pod("cheap", containers=[
        {"name": "c", "image": "x", "command": ["false"]}]))
    worker = await eventually(lambda: k.worker("default", "cheap"), "worker")
    await eventually(lambda: worker.app[0].state.get("waiting", {}).get("reason")
                     == "CrashLoopBackOff", "crashed")
    await has_events(api, "Node", "n1", *NODE_EVENTS)
    await settled(k)
    assert await events_about(api, "Pod", "cheap") == []
    await k.stop()
