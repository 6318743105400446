"""The kubelet's state machine in simulated mode, against a real embedded store, on a fake clock."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import kvstore
from controllers.api import Clientset
from controllers.api.objects import parse_timestamp
from controllers.clock import FakeClock
from kvstore.node import Node
from runtime.kubelet import (
    EXIT_CODE_ANNOTATION,
    KUBELET_VERSION,
    NODE_LEASE_NAMESPACE,
    RUN_SECONDS_ANNOTATION,
    Kubelet,
    ProbeKind,
)
from runtime.kubelet.containers import ContainerLaunch
from runtime.kubelet.ipam import pod_cidr_for
from runtime.kubelet.probes import ProbeResult, ProbeSpec
from tests.kubelet.support import FAST, WALL_START, eventually, make_kubelet, pod, pod_status


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Node]:
    async with kvstore.open(str(tmp_path / "store"), options=FAST) as node:
        yield node


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(WALL_START)


class ScriptedProbes:
    """A probe runner answering from a per-(container, kind) dict; success by default."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, ProbeKind], bool] = {}
        self.calls: list[tuple[str, ProbeKind]] = []

    async def run(self, kind: ProbeKind, launch: ContainerLaunch,
                  probe: ProbeSpec) -> ProbeResult:
        self.calls.append((launch.container, kind))
        return ProbeResult(self.answers.get((launch.container, kind), True))


async def started(store: Node, tmp_path: Path, clock: FakeClock, **kwargs: Any) -> Kubelet:
    k = make_kubelet(store, tmp_path / "root", clock, **kwargs)
    k.start()
    await asyncio.wait_for(k.wait_ready(), 10)
    return k


async def settled(k: Kubelet) -> None:
    """Wait until every status change has been written."""
    await eventually(k.status_manager.is_idle, "statuses written")
    await asyncio.sleep(0)
    await eventually(k.status_manager.is_idle, "statuses written")


async def status_where(api: Clientset, name: str, check: Any) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        st = await pod_status(api, name)
        return st if st is not None and check(st) else None
    return await eventually(probe, f"status of {name}")


def conditions(status: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status["conditions"]}


def container(status: dict[str, Any], index: int = 0) -> dict[str, Any]:
    """One container's status (an empty one before the kubelet wrote any)."""
    statuses = status.get("containerStatuses") or []
    found = statuses[index] if index < len(statuses) else {}
    return {"state": {}, "lastState": {}, "ready": False, "restartCount": -1, **found}


async def test_registers_the_node_and_renews_its_lease(store: Node, tmp_path: Path,
                                                       clock: FakeClock) -> None:
    k = await started(store, tmp_path, clock, labels={"zone": "a"},
                      taints=[{"key": "dedicated", "value": "x", "effect": "NoSchedule"}])
    api = k.clientset
    node = await api.resource("nodes").get("n1")
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "n1"
    assert node["metadata"]["labels"]["zone"] == "a"
    assert node["spec"]["podCIDR"] == pod_cidr_for("n1")
    assert ipaddress.ip_network(node["spec"]["podCIDR"]).subnet_of(
        ipaddress.ip_network("10.244.0.0/16"))
    assert node["spec"]["taints"][0]["key"] == "dedicated"
    status = node["status"]
    assert status["capacity"] == {"cpu": "4", "memory": "8Gi", "pods": "110"}
    assert status["allocatable"] == status["capacity"]
    assert status["nodeInfo"]["kubeletVersion"] == KUBELET_VERSION
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Ready"]["status"] == "True"
    assert conds["MemoryPressure"]["status"] == conds["DiskPressure"]["status"] == "False"
    assert "lastHeartbeatTime" in conds["Ready"]
    assert {"type": "Hostname", "address": "n1"} in status["addresses"]
    assert {"type": "InternalIP", "address": "127.0.0.1"} in status["addresses"]
    assert status["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 0

    leases = api.resource("leases")
    lease = await leases.get("n1", NODE_LEASE_NAMESPACE)
    assert lease["spec"]["holderIdentity"] == "n1"
    assert lease["spec"]["leaseDurationSeconds"] == 40
    first = parse_timestamp(lease["spec"]["renewTime"])
    assert first == pytest.approx(WALL_START)
    assert "." in lease["spec"]["renewTime"]  # micro time
    clock.advance(10)

    async def renewed() -> bool:
        got = await leases.get("n1", NODE_LEASE_NAMESPACE)
        return parse_timestamp(got["spec"]["renewTime"]) >= WALL_START + 10
    await eventually(renewed, "lease renewed")

    # A node controller marks the node NotReady: the next beat puts it back.
    node = await api.resource("nodes").get("n1")
    for cond in node["status"]["conditions"]:
        if cond["type"] == "Ready":
            cond["status"] = "Unknown"
    await api.resource("nodes").update_status(node)
    await eventually(lambda: k.node_agent is not None and k.node_agent.lease_renewals >= 2,
                     "beat")
    clock.advance(10)

    async def ready_again() -> bool:
        got = await api.resource("nodes").get("n1")
        return {c["type"]: c["status"] for c in got["status"]["conditions"]}["Ready"] == "True"
    await eventually(ready_again, "Ready again")
    await k.stop()


async def test_an_existing_node_is_updated_and_keeps_its_pod_cidr(
        store: Node, tmp_path: Path, clock: FakeClock) -> None:
    api = Clientset(store, clock=clock)
    await api.resource("nodes").create({"metadata": {"name": "n1", "labels": {"old": "1"}},
                                        "spec": {"podCIDR": "10.244.77.0/24"}})
    k = await started(store, tmp_path, clock)
    node = await api.resource("nodes").get("n1")
    assert node["metadata"]["labels"]["old"] == "1"
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "n1"
    assert conditions(node["status"])["Ready"] == "True"
    await api.resource("pods").create(pod("p"))
    status = await status_where(api, "p", lambda s: s.get("phase") == "Running")
    assert ipaddress.ip_address(status["podIP"]) in ipaddress.ip_network("10.244.77.0/24")
    await k.stop()


async def test_pod_becomes_running_and_ready_after_the_start_delay(
        store: Node, tmp_path: Path, clock: FakeClock) -> None:
    k = await started(store, tmp_path, clock, simulated_start_delay=3)
    api = k.clientset
    await api.resource("pods").create(pod("web", containers=[
        {"name": "a", "image": "nginx"}, {"name": "b", "image": "redis"}]))
    pending = await status_where(api, "web", lambda s: "containerStatuses" in s)
    assert pending["phase"] == "Pending"
    assert container(pending)["state"]["waiting"]["reason"] == "ContainerCreating"
    assert conditions(pending)["Ready"] == "False"
    await settled(k)
    clock.advance(3)
    status = await status_where(api, "web", lambda s: s.get("phase") == "Running")
    assert conditions(status) == {"PodScheduled": "True", "Initialized": "True",
                                  "ContainersReady": "True", "Ready": "True"}
    assert [c["ready"] for c in status["containerStatuses"]] == [True, True]
    assert container(status)["state"]["running"]["startedAt"] == "2023-11-14T22:13:23Z"
    assert container(status)["image"] == "nginx"
    assert status["hostIP"] == "127.0.0.1"
    assert ipaddress.ip_address(status["podIP"]) in ipaddress.ip_network(pod_cidr_for("n1"))
    assert status["qosClass"] == "BestEffort"
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert ready["lastTransitionTime"] == "2023-11-14T22:13:23Z"
    await k.stop()


@pytest.mark.parametrize("policy, phase", [("Never", "Failed"), ("OnFailure", "Running")])
async def test_false_fails_or_crash_loops(store: Node, tmp_path: Path, clock: FakeClock,
                                          policy: str, phase: str) -> None:
    k = await started(store, tmp_path, clock)
    api = k.clientset
    await api.resource("pods").create(pod("f", restart=policy, containers=[
        {"name": "c", "image": "x", "command": ["false"]}]))
    status = await status_where(api, "f", lambda s: s.get("phase") == phase)
    if policy == "Never":
        assert container(status)["state"]["terminated"]["exitCode"] == 1
        assert container(status)["state"]["terminated"]["reason"] == "Error"
    await k.stop()


async def test_crash_loop_backoff_doubles_and_counts_restarts(
        store: Node, tmp_path: Path, clock: FakeClock) -> None:
    k = await started(store, tmp_path, clock)
    api = k.clientset
    await api.resource("pods").create(pod("crash", restart="Always", containers=[
        {"name": "c", "image": "x", "command": ["false"]}]))
    status = await status_where(api, "crash", lambda s: "waiting" in container(s)["state"]
                                and container(s)["state"]["waiting"]["reason"]
                                == "CrashLoopBackOff")
    assert status["phase"] == "Running"
    assert container(status)["lastState"]["terminated"]["exitCode"] == 1
    assert "back-off 10s" in container(status)["state"]["waiting"]["message"]
    worker = k.worker("default", "crash")
    assert worker is not None
    for restarts, delay in ((1, 10), (2, 20), (3, 40), (4, 80), (5, 160), (6, 300), (7, 300)):
        assert worker.app[0].restart_count == restarts - 1
        await settled(k)
        clock.advance(delay - 0.5)
        await settled(k)
        assert worker.app[0].restart_count == restarts - 1, "restarted too early"
        clock.advance(0.5)
        await eventually(lambda r=restarts: worker.app[0].restart_count == r, "restart")
    status = await status_where(api, "crash", lambda s: container(s)["restartCount"] == 7)
    assert container(status)["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    await k.stop()


async def test_backoff_resets_after_ten_minutes_of_running(
        store: Node, tmp_path: Path, clock: FakeClock) -> None:
    k = await started(store, tmp_path, clock)
    api = k.clientset
    await api.resource("pods").create(pod("slow", restart="Always", annotations={
        EXIT_CODE_ANNOTATION: "2", RUN_SECONDS_ANNOTATION: "700"}))
    worker = k.worker("default", "slow") or await eventually(
        lambda: k.worker("default", "slow"), "worker")
    for restarts in (1, 2, 3):
        await eventually(lambda: worker.app[0].is_running(), "running")
        await settled(k)
        clock.advance(700)
        await eventually(lambda: "waiting" in worker.app[0].state, "crashed")
        assert "back-off 10s" in worker.app[0].state["waiting"]["message"]
        await settled(k)
        clock.advance(10)
        await eventually(lambda r=restarts: worker.app[0].restart_count == r, "restart")
    await k.stop()


@pytest.mark.parametrize("code, policy, phase", [
    ("0", "Never", "Succeeded"), ("0", "OnFailure", "Succeeded"), ("3", "Never", "Failed")])
async def test_the_exit_code_annotation(store: Node, tmp_path: Path, clock: FakeClock,
                                        code: str, policy: str, phase: str) -> None:
    k = await started(store, tmp_path, clock)
    api = k.clientset
    await api.resource("pods").create(pod("job", restart=policy, annotations={
        EXIT_CODE_ANNOTATION: code, RUN_SECONDS_ANNOTATION: "5"}))
    running = await status_where(api, "job", lambda s: s.get("phase") == "Running")
    assert container(running)["ready"] is True
    await settled(k)
    clock.advance(5)
    status = await status_where(api, "job", lambda s: s.get("phase") == phase)
    assert container(status)["state"]["terminated"]["exitCode"] == int(code)
    assert conditions(status)["Ready"] == "False"
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert ready["reason"] == "PodCompleted"
    # The finished pod's IP is free again.
    allocator = k.ip_allocator
    assert allocator is not None
    await eventually(lambda: allocator.in_use() == 0, "IP released")
    await k.stop()


async def test_init_containers_then_app(store: Node, tmp_path: Path, clock: FakeClock) -> None:
    k = await started(store, tmp_path, clock, simulated_start_delay=2)
    api = k.clientset
    await api.resource("pods").create(pod("i", init=[{"name": "setup", "image": "x"}]))
    status = await status_where(api, "i", lambda s: "initContainerStatuses" in s)
    assert status["phase"] == "Pending"
    assert conditions(status)["Initialized"] == "False"
    assert container(status)["state"]["waiting"]["reason"] == "PodInitializing"
    await settled(k)
    clock.advance(2)  # the init container starts and exits 0
    await eventually(lambda: k.worker("default", "i") is not None
                     and k.worker("default", "i").app[0].state.get("waiting", {}).get("reason")
                     == "ContainerCreating", "init done")
    await settled(k)
    clock.advance(2)
    status = await status_where(api, "i", lambda s: s.get("phase") == "Running")
    assert conditions(status)["Initialized"] == "True"
    assert status["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    await k.stop()


async def test_a_failing_init_container_is_retried_with_back_off(
        store: Node, tmp_path: Path, clock: FakeClock) -> None:
    k = await started(store, tmp_path, clock)
    api = k.clientset
    await api.resource("pods").create(pod("retry", init=[
        {"name": "bad", "image": "x", "command": ["false"]}]))
    status = await status_where(
        api, "retry", lambda s: (s.get("initContainerStatuses") or [{"state": {}}])[0]["state"].get("waiting", {})
        .get("reason") == "CrashLoopBackOff")
    assert status["phase"] == "Pending"
    await settled(k)
    clock.advance(10)
    await status_where(api, "retry",
                       lambda s: s["initContainerStatuses"][0]["restartCount"] == 1)
    await k.stop()


async def test_readiness_and_liveness_probes(store: Node, tmp_path: Path,
                                            clock: FakeClock) -> None:
    probes = ScriptedProbes()
    probes.answers[("c", ProbeKind.READINESS)] = False
    k = await started(store, tmp_path, clock, probe_runner=probes)
    api = k.clientset
    await api.resource("pods").create(pod("probed", containers=[{
        "name": "c", "image": "x",
        "readinessProbe": {"exec": {"command": ["check"]}, "initialDelaySeconds": 5,
                           "periodSeconds": 10, "failureThreshold": 1, "successThreshold": 2},
        "livenessProbe": {"exec": {"command": ["alive"]}, "periodSeconds": 10,
                          "failureThreshold": 2}}]))
    status = await status_where(api, "probed", lambda s: s.get("phase") == "Running")
    assert container(status)["ready"] is False
    assert conditions(status)["ContainersReady"] == "False"
    await settled(k)
    clock.advance(5)  # first readiness probe: fails
    await eventually(lambda: ("c", ProbeKind.READINESS) in probes.calls, "readiness probed")
    probes.answers[("c", ProbeKind.READINESS)] = True
    await settled(k)
    clock.advance(10)  # one success of two needed
    await eventually(lambda: probes.calls.count(("c", ProbeKind.READINESS)) == 2, "probe 2")
    await settled(k)
    assert container(await pod_status(api, "probed") or {})["ready"] is False
    clock.advance(10)
    status = await status_where(api, "probed", lambda s: container(s)["ready"])
    assert conditions(status)["Ready"] == "True"

    probes.answers[("c", ProbeKind.LIVENESS)] = False
    await settled(k)
    clock.advance(10)  # one liveness failure of two
    await settled(k)
    clock.advance(10)  # the second: stopped (exits 0 on SIGTERM), restarted after back-off
    status = await status_where(api, "probed", lambda s: "waiting" in container(s)["state"])
    assert container(status)["lastState"]["terminated"]["exitCode"] == 0
    assert container(status)["ready"] is False
    probes.answers[("c", ProbeKind.LIVENESS)] = True
    await settled(k)
    clock.advance(10)
    await status_where(api, "probed", lambda s: container(s)["restartCount"] == 1
                       and "running" in container(s)["state"])
    await k.stop()


async def test_deletion_stops_the_pod_then_deletes_it(store: Node, tmp_path: Path,
                                                      clock: FakeClock) -> None:
    k = await started(store, tmp_path, clock)
    api = k.clientset
    await api.resource("pods").create(pod("gone", grace=15))
    await status_where(api, "gone", lambda s: s.get("phase") == "Running")
    marked = await api.resource("pods").delete("gone", "default")
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 15
    await eventually(lambda: _absent(api, "gone"), "pod deleted")
    assert k.worker("default", "gone") is None or not k.worker("default", "gone").is_running("c")
    await eventually(lambda: k.worker("default", "gone") is None, "worker forgotten")
    assert k.ip_allocator is not None and k.ip_allocator.in_use() == 0
    await k.stop()


async def test_deletion_of_a_pod_with_a_finalizer_keeps_it_until_released(
        store: Node, tmp_path: Path, clock: FakeClock) -> None:
    k = await started(store, tmp_path, clock)
    api = k.clientset
    p = pod("held")
    p["metadata"]["finalizers"] = ["example.com/hold"]
    await api.resource("pods").create(p)
    await status_where(api, "held", lambda s: s.get("phase") == "Running")
    await api.resource("pods").delete("held", "default")
    status = await status_where(api, "held", lambda s: s.get("phase") == "Succeeded")
    assert container(status)["state"]["terminated"]["exitCode"] == 0
    async def released_by_the_kubelet() -> bool:
        stored = await api.resource("pods").get("held", "default")
        return bool(stored["metadata"]["deletionGracePeriodSeconds"] == 0)
    await eventually(released_by_the_kubelet, "deleted with grace 0")
    assert k.worker("default", "held") is not None  # still in the store, still known
    await k.stop()


async def test_a_vanished_pod_is_killed_and_its_ip_reused_last(
        store: Node, tmp_path: Path, clock: FakeClock) -> None:
    k = await started(store, tmp_path, clock)
    api = k.clientset
    await api.resource("pods").create(pod("a"))
    first = await status_where(api, "a", lambda s: s.get("phase") == "Running")
    worker = k.worker("default", "a")
    assert worker is not None
    # A pod on another node is not ours.
    await api.resource("pods").create(pod("elsewhere", node="n2"))
    # Removed at once (grace 0): the kubelet only sees it vanish.
    await api.resource("pods").delete("a", "default", grace_period_seconds=0)
    await eventually(lambda: k.worker("default", "a") is None, "worker dropped")
    await eventually(lambda: not worker.is_running("c") and worker.finished, "killed")
    await api.resource("pods").create(pod("b"))
    second = await status_where(api, "b", lambda s: s.get("phase") == "Running")
    assert second["podIP"] != first["podIP"]
    assert await pod_status(api, "elsewhere") == {"phase": "Pending"}
    await k.stop()


async def test_pod_ips_are_unique(store: Node, tmp_path: Path, clock: FakeClock) -> None:
    k = await started(store, tmp_path, clock)
    api = k.clientset
    for i in range(12):
        await api.resource("pods").create(pod(f"p{i}"))
    ips = []
    for i in range(12):
        st = await status_where(api, f"p{i}", lambda s: s.get("phase") == "Running")
        ips.append(st["podIP"])
    assert len(set(ips)) == 12
    await k.stop()


async def test_status_write_survives_a_conflict(store: Node, tmp_path: Path,
                                                clock: FakeClock) -> None:
    k = await started(store, tmp_path, clock, simulated_start_delay=1)
    api = k.clientset
    await api.resource("pods").create(pod("c1"))
    await status_where(api, "c1", lambda s: "containerStatuses" in s)
    await settled(k)
    # Someone else changes the pod; the worker's copy is now stale.
    worker = k.worker("default", "c1")
    assert worker is not None
    stale_rv = worker.pod["metadata"]["resourceVersion"]
    await api.resource("pods").patch("c1", "default", {"metadata": {"labels": {"x": "y"}}})
    worker.pod["metadata"]["resourceVersion"] = stale_rv
    clock.advance(1)
    status = await status_where(api, "c1", lambda s: s.get("phase") == "Running")
    assert conditions(status)["Ready"] == "True"
    got = await api.resource("pods").get("c1", "default")
    assert got["metadata"]["labels"] == {"x": "y"}
    await k.stop()


async def test_many_simulated_kubelets_share_one_process(store: Node, tmp_path: Path,
                                                         clock: FakeClock) -> None:
    kubelets = [make_kubelet(store, tmp_path / f"r{i}", clock, name=f"node-{i}")
                for i in range(20)]
    for k in kubelets:
        k.start()
    for k in kubelets:
        await asyncio.wait_for(k.wait_ready(), 10)
    api = kubelets[0].clientset
    for i in range(20):
        await api.resource("pods").create(pod(f"w{i}", node=f"node-{i}"))
    for i in range(20):
        await status_where(api, f"w{i}", lambda s: s.get("phase") == "Running")
    nodes = await api.resource("nodes").list()
    assert len(nodes["items"]) == 20
    await asyncio.gather(*(k.stop() for k in kubelets))


async def _absent(api: Clientset, name: str) -> bool:
    return await pod_status(api, name) is None


async def test_active_deadline_fails_the_pod(store: Node, tmp_path: Path,
                                             clock: FakeClock) -> None:
    k = await started(store, tmp_path, clock)
    api = k.clientset
    p = pod("late", grace=5)
    p["spec"]["activeDeadlineSeconds"] = 30
    await api.resource("pods").create(p)
    await status_where(api, "late", lambda s: s.get("phase") == "Running")
    await settled(k)
    clock.advance(29)
    await settled(k)
    assert (await pod_status(api, "late") or {}).get("phase") == "Running"
    clock.advance(1)
    status = await status_where(api, "late", lambda s: s.get("phase") == "Failed")
    assert status["reason"] == "DeadlineExceeded"
    await eventually(lambda: k.worker("default", "late") is not None
                     and k.worker("default", "late").finished, "stopped")
    status = await status_where(api, "late", lambda s: "terminated" in container(s)["state"])
    assert status["phase"] == "Failed"
    await k.stop()


async def test_a_restarted_kubelet_takes_its_pods_back(store: Node, tmp_path: Path,
                                                       clock: FakeClock) -> None:
    k = await started(store, tmp_path, clock)
    api = k.clientset
    await api.resource("pods").create(pod("keep", restart="OnFailure"))
    await api.resource("pods").create(pod("done", restart="Never",
                                          annotations={EXIT_CODE_ANNOTATION: "0"}))
    before = await status_where(api, "keep", lambda s: s.get("phase") == "Running")
    await status_where(api, "done", lambda s: s.get("phase") == "Succeeded")
    await settled(k)
    await k.stop()
    again = await started(store, tmp_path, clock)
    worker = await eventually(lambda: again.worker("default", "keep"), "worker")
    assert worker.pod_ip == before["podIP"]
    assert again.worker("default", "done") is None  # finished pods are left alone
    assert (await again.clientset.resource("nodes").get("n1"))["spec"]["podCIDR"] == \
        pod_cidr_for("n1")
    await again.stop()


async def test_a_new_image_restarts_the_container_at_once(store: Node, tmp_path: Path,
                                                          clock: FakeClock) -> None:
    k = await started(store, tmp_path, clock)
    api = k.clientset
    await api.resource("pods").create(pod("img", restart="Never", containers=[
        {"name": "c", "image": "app:v1"}, {"name": "side", "image": "side:v1"}]))
    await status_where(api, "img", lambda s: s.get("phase") == "Running")
    await api.resource("pods").patch("img", "default", {"spec": {"containers": [
        {"name": "c", "image": "app:v2"}, {"name": "side", "image": "side:v1"}]}},
        "strategic")
    status = await status_where(api, "img", lambda s: container(s)["restartCount"] == 1
                                and "running" in container(s)["state"])
    assert container(status)["image"] == "app:v2"
    assert container(status)["lastState"]["terminated"]["exitCode"] == 0
    assert container(status, 1)["restartCount"] == 0
    await k.stop()
