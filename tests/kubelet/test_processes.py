"""The kubelet with real processes: logs over HTTP, init order, probes, no process left behind."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest

import kvstore
from controllers.api import Clientset
from controllers.clock import FakeClock
from kvstore.node import Node
from runtime.kubelet import Kubelet, container_log_path
from tests.kubelet.support import FAST, WALL_START, eventually, make_kubelet, pod, pod_status

PY = sys.executable


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Node]:
    async with kvstore.open(str(tmp_path / "store"), options=FAST) as node:
        yield node


@pytest.fixture
async def kubelet(store: Node, tmp_path: Path) -> AsyncIterator[Kubelet]:
    k = make_kubelet(store, tmp_path / "root", FakeClock(WALL_START), simulated=False)
    k.start()
    await asyncio.wait_for(k.wait_ready(), 10)
    yield k
    await k.stop()


def clock_of(k: Kubelet) -> FakeClock:
    clock = k.clock
    assert isinstance(clock, FakeClock)
    return clock


async def phase_is(api: Clientset, name: str, phase: str) -> dict[str, Any] | None:
    status = await pod_status(api, name)
    return status if status and status.get("phase") == phase else None


def processes_with(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if any(marker in part for part in proc.info["cmdline"] or ()):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


async def get_text(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as resp:
            return resp.status, await resp.text()


async def test_a_process_prints_exits_and_its_log_is_served(kubelet: Kubelet) -> None:
    api = kubelet.clientset
    script = ("import sys; [print('line', i, flush=True) for i in range(5)]; "
              "print('oops', file=sys.stderr)")
    await api.resource("pods").create(pod("hello", restart="Never", containers=[
        {"name": "c", "image": "python", "command": [PY, "-c"], "args": [script]}]))
    status = await eventually(lambda: phase_is(api, "hello", "Succeeded"), "Succeeded")
    term = status["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 0 and term["reason"] == "Completed"
    uid = (await api.resource("pods").get("hello", "default"))["metadata"]["uid"]
    path = container_log_path(kubelet.root_dir, "default", "hello", uid, "c")
    assert path.read_text() == "".join(f"line {i}\n" for i in range(5)) + "oops\n"

    node = await api.resource("nodes").get("n1")
    port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
    assert port == kubelet.log_port > 0
    base = f"http://127.0.0.1:{port}/containerLogs/default/hello/c"
    assert await get_text(base) == (200, path.read_text())
    assert await get_text(base + "?tailLines=2") == (200, "line 4\noops\n")
    assert await get_text(base + "?follow=true") == (200, path.read_text())
    code, _ = await get_text(base + "?previous=true")
    assert code == 404
    code, _ = await get_text(f"http://127.0.0.1:{port}/containerLogs/default/nope/c")
    assert code == 404
    code, _ = await get_text(base + "?tailLines=x")
    assert code == 400


async def test_follow_streams_until_the_process_exits(kubelet: Kubelet, tmp_path: Path) -> None:
    api = kubelet.clientset
    gate = tmp_path / "gate"
    script = ("import os, time\nprint('first', flush=True)\n"
              f"while not os.path.exists({str(gate)!r}): time.sleep(0.01)\nprint('last')\n")
    await api.resource("pods").create(pod("follow", restart="Never", containers=[
        {"name": "c", "image": "python", "command": [PY, "-c", script]}]))
    await eventually(lambda: phase_is(api, "follow", "Running"), "Running")
    url = f"http://127.0.0.1:{kubelet.log_port}/containerLogs/default/follow/c?follow=true"
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as resp:
            first = await resp.content.readline()
            assert first == b"first\n"
            gate.touch()
            assert await resp.content.read() == b"last\n"


async def test_init_containers_run_in_order_before_the_app(kubelet: Kubelet,
                                                            tmp_path: Path) -> None:
    api = kubelet.clientset
    trail = tmp_path / "trail"

    def step(word: str) -> list[str]:
        return [PY, "-c", f"open({str(trail)!r}, 'a').write({word!r} + '\\n')"]

    await api.resource("pods").create(pod(
        "ordered", restart="Never",
        init=[{"name": "one", "image": "x", "command": step("one")},
              {"name": "two", "image": "x", "command": step("two")}],
        containers=[{"name": "app", "image": "x", "command": step("app")}]))
    status = await eventually(lambda: phase_is(api, "ordered", "Succeeded"), "Succeeded")
    assert trail.read_text().split() == ["one", "two", "app"]
    assert [s["state"]["terminated"]["exitCode"] for s in status["initContainerStatuses"]] == [0, 0]
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["Initialized"] == "True"


async def test_a_failing_init_container_fails_a_never_pod(kubelet: Kubelet,
                                                          tmp_path: Path) -> None:
    api = kubelet.clientset
    marker = tmp_path / "app-ran"
    await api.resource("pods").create(pod(
        "badinit", restart="Never",
        init=[{"name": "bad", "image": "x", "command": [PY, "-c", "raise SystemExit(3)"]}],
        containers=[{"name": "app", "image": "x",
                     "command": [PY, "-c", f"open({str(marker)!r}, 'w')"]}]))
    status = await eventually(lambda: phase_is(api, "badinit", "Failed"), "Failed")
    assert status["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
    assert status["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"
    assert not marker.exists()


async def test_readiness_probe_drives_ready(kubelet: Kubelet, tmp_path: Path) -> None:
    api = kubelet.clientset
    flag = tmp_path / "ready-flag"
    await api.resource("pods").create(pod("probed", containers=[{
        "name": "c", "image": "x",
        "readinessProbe": {"exec": {"command": ["sh", "-c", f"test -f {flag}"]},
                           "periodSeconds": 5, "failureThreshold": 1}}]))
    status = await eventually(lambda: phase_is(api, "probed", "Running"), "Running")
    worker = kubelet.worker("default", "probed")
    assert worker is not None
    clock = clock_of(kubelet)

    async def ready() -> bool:
        st = await pod_status(api, "probed") or {}
        return bool(st.get("containerStatuses")) and st["containerStatuses"][0]["ready"]

    def probed(runs: int) -> bool:
        probers = worker.probers("c")
        return len(probers) == 1 and probers[0].runs == runs and not probers[0].busy

    await eventually(lambda: probed(1), "the first probe")  # no initial delay: failed at once
    assert not await ready()
    clock.advance(5)
    await eventually(lambda: probed(2), "the second probe")
    assert not await ready()
    flag.touch()
    clock.advance(5)
    await eventually(ready, "ready")
    status = await pod_status(api, "probed") or {}
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
    await eventually(lambda: probed(3), "the third probe")
    flag.unlink()
    clock.advance(5)
    await eventually(lambda: _not(ready), "not ready again")


async def _not(check: Any) -> bool:
    return not await check()


async def test_deletion_sends_sigterm_then_sigkill_and_leaves_nothing(
        kubelet: Kubelet, tmp_path: Path) -> None:
    api = kubelet.clientset
    stubborn = f"import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); " \
               f"print('up', flush=True); time.sleep(600)  # marker-{tmp_path.name}"
    child = f"import subprocess, time; subprocess.Popen(['sleep', '600']); " \
            f"print('up', flush=True); time.sleep(600)  # marker-{tmp_path.name}"
    await api.resource("pods").create(pod("doomed", grace=20, containers=[
        {"name": "stubborn", "image": "x", "command": [PY, "-c", stubborn]},
        {"name": "parent", "image": "x", "command": [PY, "-c", child]},
        {"name": "idle", "image": "x"}]))
    await eventually(lambda: phase_is(api, "doomed", "Running"), "Running")
    uid = (await api.resource("pods").get("doomed", "default"))["metadata"]["uid"]
    for name in ("stubborn", "parent"):
        log = container_log_path(kubelet.root_dir, "default", "doomed", uid, name)
        await eventually(lambda log=log: log.exists() and "up" in log.read_text(), name)
    marker = f"marker-{tmp_path.name}"
    assert len(processes_with(marker)) == 2
    worker = kubelet.worker("default", "doomed")
    assert worker is not None

    await api.resource("pods").delete("doomed", "default")
    # SIGTERM: the idle container and the parent's whole group stop; the stubborn one stays.
    await eventually(lambda: not worker.is_running("idle") and not worker.is_running("parent"),
                     "SIGTERM handled")
    assert worker.is_running("stubborn")
    assert len(processes_with(marker)) == 1
    clock_of(kubelet).advance(20)
    await eventually(lambda: _gone(api, "doomed"), "pod deleted")
    assert processes_with(marker) == []
    assert _descendants() == []  # the parent's forked sleep went with its group


def _descendants() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True)
            if p.status() != psutil.STATUS_ZOMBIE]


async def _gone(api: Clientset, name: str) -> bool:
    return await pod_status(api, name) is None


async def test_stopping_the_kubelet_stops_every_process(store: Node, tmp_path: Path) -> None:
    k = make_kubelet(store, tmp_path / "root", FakeClock(WALL_START), simulated=False)
    k.start()
    await asyncio.wait_for(k.wait_ready(), 10)
    api = k.clientset
    marker = f"stopmarker-{tmp_path.name}"
    await api.resource("pods").create(pod("busy", grace=1, containers=[
        {"name": "a", "image": "x", "command": ["sh", "-c", f"sleep 600 # {marker}"]},
        {"name": "b", "image": "x"}]))
    await eventually(lambda: phase_is(api, "busy", "Running"), "Running")
    await eventually(lambda: len(processes_with(marker)) >= 1, "started")
    await k.stop()
    assert processes_with(marker) == []
    assert _descendants() == []


async def test_a_restart_keeps_the_previous_log(kubelet: Kubelet, tmp_path: Path) -> None:
    api = kubelet.clientset
    counter = tmp_path / "attempts"
    script = (f"import pathlib; p = pathlib.Path({str(counter)!r}); "
              "n = int(p.read_text()) + 1 if p.exists() else 1; p.write_text(str(n)); "
              "print('attempt', n, flush=True); raise SystemExit(0 if n > 1 else 4)")
    await api.resource("pods").create(pod("again", restart="OnFailure", containers=[
        {"name": "c", "image": "x", "command": [PY, "-c", script]}]))
    worker = await eventually(lambda: kubelet.worker("default", "again"), "worker")
    await eventually(lambda: worker.app[0].state.get("waiting", {}).get("reason")
                     == "CrashLoopBackOff", "back-off")
    assert worker.app[0].last_state["terminated"]["exitCode"] == 4
    clock_of(kubelet).advance(10)
    status = await eventually(lambda: phase_is(api, "again", "Succeeded"), "Succeeded")
    assert status["containerStatuses"][0]["restartCount"] == 1
    base = f"http://127.0.0.1:{kubelet.log_port}/containerLogs/default/again/c"
    assert await get_text(base) == (200, "attempt 2\n")
    assert await get_text(base + "?previous=true") == (200, "attempt 1\n")


async def test_a_missing_command_is_a_start_error(kubelet: Kubelet) -> None:
    api = kubelet.clientset
    await api.resource("pods").create(pod("nocmd", restart="Never", containers=[
        {"name": "c", "image": "x", "command": ["/no/such/binary"]}]))
    status = await eventually(lambda: phase_is(api, "nocmd", "Failed"), "Failed")
    term = status["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 128 and term["reason"] == "StartError"
    assert "/no/such/binary" in term["message"]


async def test_a_vanished_pod_is_killed_at_once(kubelet: Kubelet, tmp_path: Path) -> None:
    api = kubelet.clientset
    marker = f"vanish-{tmp_path.name}"
    stubborn = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                f"print('up', flush=True); time.sleep(600)  # {marker}")
    await api.resource("pods").create(pod("ghost", grace=600, containers=[
        {"name": "c", "image": "x", "command": [PY, "-c", stubborn]}]))
    await eventually(lambda: phase_is(api, "ghost", "Running"), "Running")
    await eventually(lambda: len(processes_with(marker)) == 1, "started")
    worker = kubelet.worker("default", "ghost")
    assert worker is not None
    pod_dir = worker.pod_dir
    await api.resource("pods").delete("ghost", "default", grace_period_seconds=0)
    await eventually(lambda: processes_with(marker) == [], "killed without waiting the grace")
    await eventually(lambda: not pod_dir.exists(), "files removed")
