"""The kubelet's pure parts: back-off, phases, pod IPs, log tails, env and argv."""

from __future__ import annotations

import asyncio
import io
import signal
import sys
from pathlib import Path

import psutil
import pytest

from controllers.clock import FakeClock
from runtime.kubelet.backoff import CrashLoopBackoff
from runtime.kubelet.containers import IDLE_ARGV, build_launch, expand_references
from runtime.kubelet.ipam import IPExhausted, PodIPAllocator, pod_cidr_for
from runtime.kubelet.logs import read_tail
from runtime.kubelet.probe_runner import LocalProbeRunner
from runtime.kubelet.probes import ProbeKind, ProbeSpec
from runtime.kubelet.status import ContainerRecord, pod_phase, qos_class


def test_backoff_doubles_to_the_cap_and_resets_after_ten_minutes() -> None:
    b = CrashLoopBackoff()
    assert [b.next_delay(1) for _ in range(7)] == [10, 20, 40, 80, 160, 300, 300]
    assert b.next_delay(600) == 10
    assert b.next_delay(5) == 20


def _rec(state: str, code: int = 0, last: bool = False) -> ContainerRecord:
    r = ContainerRecord("c", "img")
    if state == "running":
        r.set_running("t", "id", 0.0)
    elif state == "terminated":
        r.set_running("t", "id", 0.0)
        r.set_terminated(code, finished_at="t")
    if last:
        r.set_waiting("CrashLoopBackOff")
    return r


@pytest.mark.parametrize("policy, records, phase", [
    ("Always", ["waiting"], "Pending"),
    ("Always", ["running", "waiting"], "Pending"),
    ("Always", ["running"], "Running"),
    ("Always", [("terminated", 0)], "Running"),
    ("OnFailure", [("terminated", 0)], "Succeeded"),
    ("OnFailure", [("terminated", 1, True)], "Running"),
    ("Never", [("terminated", 0), ("terminated", 1)], "Failed"),
    ("Never", [("terminated", 1), "running"], "Running"),
])
def test_pod_phase(policy: str, records: list[object], phase: str) -> None:
    recs = [_rec(*r) if isinstance(r, tuple) else _rec(str(r)) for r in records]
    assert pod_phase(policy, [], recs) == phase


def test_pod_phase_with_init_containers_and_final() -> None:
    assert pod_phase("Always", [_rec("running")], [_rec("waiting")]) == "Pending"
    assert pod_phase("Never", [_rec("terminated", 1)], [_rec("waiting")],
                     init_failed=True) == "Failed"
    assert pod_phase("Always", [], [_rec("terminated", 0)], final=True) == "Succeeded"
    assert pod_phase("Always", [], [_rec("terminated", 137)], final=True) == "Failed"


def test_qos_class() -> None:
    assert qos_class({"containers": [{}]}) == "BestEffort"
    full = {"limits": {"cpu": "1", "memory": "1Gi"}}
    assert qos_class({"containers": [{"resources": full}]}) == "Guaranteed"
    assert qos_class({"containers": [{"resources": {"requests": {"cpu": "1"}}}]}) == "Burstable"


def test_pod_cidr_is_a_stable_slash_24() -> None:
    assert pod_cidr_for("n1") == pod_cidr_for("n1")
    assert pod_cidr_for("n1").startswith("10.244.") and pod_cidr_for("n1").endswith(".0/24")
    assert len({pod_cidr_for(f"node-{i}") for i in range(50)}) > 30


def test_ip_allocator_is_unique_next_fit_and_exhausts() -> None:
    a = PodIPAllocator("10.0.0.0/29")  # hosts .2 - .6
    ips = [a.allocate(f"u{i}") for i in range(5)]
    assert ips == [f"10.0.0.{i}" for i in range(2, 7)]
    assert a.allocate("u0") == "10.0.0.2"
    with pytest.raises(IPExhausted):
        a.allocate("u9")
    a.release("u1")
    assert a.allocate("u9") == "10.0.0.3"
    a.release("u9")
    assert not a.reserve("u8", "10.0.0.2")  # held by u0
    assert a.reserve("u8", "10.0.0.3")
    assert not a.reserve("u7", "10.9.9.9")


@pytest.mark.parametrize("text, lines, want", [
    (b"a\nb\nc\n", 2, b"b\nc\n"), (b"a\nb\nc", 2, b"b\nc"), (b"a\nb\n", 5, b"a\nb\n"),
    (b"a\nb\n", 0, b""), (b"a\nb\n", None, b"a\nb\n"), (b"", 3, b""),
])
def test_read_tail(text: bytes, lines: int | None, want: bytes) -> None:
    data, end = read_tail(io.BytesIO(text), lines)
    assert (data, end) == (want, len(text))


def test_read_tail_of_a_large_file() -> None:
    text = b"".join(b"line %d\n" % i for i in range(100_000))
    assert read_tail(io.BytesIO(text), 2)[0] == b"line 99998\nline 99999\n"


def test_expand_references() -> None:
    env = {"A": "1", "B": "two"}
    assert expand_references("$(A)-$(B)-$(C)-$$(A)", env) == "1-two-$(C)-$(A)"


def test_build_launch(tmp_path: Path) -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1",
                        "annotations": {"k": "v"}},
           "spec": {"nodeName": "n1"}}
    c = {"name": "c", "image": "img", "command": ["echo", "$(GREETING)"], "args": ["$(POD)"],
         "env": [{"name": "GREETING", "value": "hi"},
                 {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                 {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                 {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}
    launch = build_launch(pod, c, is_init=False, log_path=tmp_path / "c.log",
                          pod_dir=tmp_path, pod_ip="10.244.1.2", host_ip="127.0.0.1")
    assert launch.argv == ("echo", "hi", "p")
    env = launch.env_dict()
    assert env["POD"] == "p" and env["IP"] == "10.244.1.2" and env["HOSTNAME"] == "p"
    assert "SECRET" not in env
    assert launch.working_dir == tmp_path
    assert launch.annotations == {"k": "v"}
    idle = build_launch(pod, {"name": "i", "image": "img", "workingDir": str(tmp_path / "w")},
                        is_init=False, log_path=tmp_path / "i.log", pod_dir=tmp_path,
                        pod_ip="", host_ip="127.0.0.1")
    assert idle.argv == IDLE_ARGV and idle.command == ()
    assert idle.working_dir == tmp_path / "w"


async def test_the_idle_process_exits_0_on_sigterm(tmp_path: Path) -> None:
    launch = build_launch({"metadata": {"name": "p"}}, {"name": "i"}, is_init=False,
                          log_path=tmp_path / "i.log", pod_dir=tmp_path, pod_ip="",
                          host_ip="")
    proc = await asyncio.create_subprocess_exec(
        *launch.argv, stdout=asyncio.subprocess.PIPE, env=launch.env_dict(), cwd=tmp_path)
    assert proc.stdout is not None
    assert b"sleeping" in await asyncio.wait_for(proc.stdout.readline(), 10)
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), 10) == 0
    assert launch.argv[0] == sys.executable


async def test_exec_probe_runner_codes_and_timeout(tmp_path: Path) -> None:
    clock = FakeClock()
    runner = LocalProbeRunner(clock)
    launch = build_launch({"metadata": {"name": "p"}}, {"name": "c", "env": [
        {"name": "WANT", "value": "yes"}]}, is_init=False, log_path=tmp_path / "c.log",
        pod_dir=tmp_path, pod_ip="", host_ip="")
    ok = ProbeSpec(command=("sh", "-c", 'test "$WANT" = yes'))
    bad = ProbeSpec(command=("sh", "-c", "echo not healthy; exit 1"))
    missing = ProbeSpec(command=("/no/such/probe",))
    assert (await runner.run(ProbeKind.READINESS, launch, ok)).success is True
    failed = await runner.run(ProbeKind.READINESS, launch, bad)
    assert failed.success is False and failed.output == "not healthy\n"
    gone = await runner.run(ProbeKind.READINESS, launch, missing)
    assert gone.success is False and "no such file" in gone.output
    slow = ProbeSpec(command=("sleep", "600"), timeout_seconds=2)
    task = asyncio.create_task(runner.run(ProbeKind.LIVENESS, launch, slow))
    loop = asyncio.get_running_loop()
    give_up = loop.time() + 10
    while not psutil.Process().children():
        assert loop.time() < give_up, "the probe never started"
        await asyncio.sleep(0.005)
    clock.advance(1)
    for _ in range(20):
        await asyncio.sleep(0)
    assert not task.done()
    clock.advance(1)
    timed_out = await asyncio.wait_for(task, 10)
    assert timed_out.success is False and timed_out.output == "command 'sleep 600' timed out"
    assert [p for p in psutil.Process().children() if p.status() != psutil.STATUS_ZOMBIE] == []
