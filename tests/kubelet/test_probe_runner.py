"""Probe handlers: httpGet and tcpSocket against local servers, named ports, and the Prober's
events. Timeouts run on a fake clock."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from controllers.clock import FakeClock
from runtime.kubelet.containers import ContainerLaunch, build_launch
from runtime.kubelet.probe_runner import LocalProbeRunner
from runtime.kubelet.probes import (
    ProbeError,
    ProbeKind,
    Prober,
    ProbeResult,
    ProbeSpec,
    resolve_port,
)


@dataclass
class Server:
    """A local HTTP server: what it was asked, and a gate holding ``/slow``."""

    port: int
    requests: list[web.Request] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server(0)

    async def handle(request: web.Request) -> web.StreamResponse:
        state.requests.append(request)
        path = request.path
        if path == "/healthz":
            return web.Response(text="ok")
        if path == "/moved":
            raise web.HTTPFound("/healthz")
        if path == "/away":
            raise web.HTTPFound("http://elsewhere.invalid/")
        if path == "/loop":
            raise web.HTTPFound("/loop")
        if path == "/needs-header":
            good = request.headers.get("X-Probe") == "yes"
            return web.Response(status=200 if good else 401)
        if path == "/slow":
            state.arrived.set()
            await state.release.wait()
            return web.Response(text="late")
        return web.Response(status=int(path.strip("/") or 500))

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.port = runner.addresses[0][1]
    try:
        yield state
    finally:
        state.release.set()
        await runner.cleanup()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def launch(tmp_path: Path) -> ContainerLaunch:
    return build_launch({"metadata": {"name": "p", "namespace": "ns"}}, {"name": "c"},
                        is_init=False, log_path=tmp_path / "c.log", pod_dir=tmp_path,
                        pod_ip="", host_ip="")


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port nothing listens on."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    yield port


def http(port: int, path: str = "/healthz", **probe: object) -> ProbeSpec:
    return ProbeSpec.parse({"httpGet": {"port": port, "path": path, **probe}},
                           ProbeKind.READINESS)


def tcp(port: int) -> ProbeSpec:
    return ProbeSpec.parse({"tcpSocket": {"port": port}}, ProbeKind.LIVENESS)


async def run(clock: FakeClock, launch: ContainerLaunch, spec: ProbeSpec) -> ProbeResult:
    return await LocalProbeRunner(clock).run(ProbeKind.READINESS, launch, spec)


def test_parse_reads_each_handler_with_its_defaults() -> None:
    ports = [{"name": "metrics", "containerPort": 9090}, {"name": "web", "containerPort": 8080}]
    spec = ProbeSpec.parse({"httpGet": {"port": "web", "path": "healthz", "scheme": "https",
                                        "httpHeaders": [{"name": "X-A", "value": "1"}]},
                            "timeoutSeconds": 3}, ProbeKind.LIVENESS, ports)
    assert (spec.handler, spec.host, spec.port, spec.scheme) == ("httpGet", "127.0.0.1",
                                                                 8080, "HTTPS")
    assert spec.http_headers == (("X-A", "1"),) and spec.timeout_seconds == 3
    tcp_spec = ProbeSpec.parse({"tcpSocket": {"port": 25, "host": "::1"}}, ProbeKind.LIVENESS)
    assert (tcp_spec.handler, tcp_spec.host, tcp_spec.port) == ("tcpSocket", "::1", 25)
    missing = ProbeSpec.parse({"tcpSocket": {"port": "nope"}}, ProbeKind.LIVENESS, ports)
    assert "nope" in missing.invalid


@pytest.mark.parametrize("port, want", [(80, 80), ("web", 8080), ("8081", 8081)])
def test_resolve_port(port: object, want: int) -> None:
    assert resolve_port(port, [{"name": "web", "containerPort": 8080}]) == want


@pytest.mark.parametrize("port", ["nope", 0, 70000, True, None])
def test_resolve_port_refuses(port: object) -> None:
    with pytest.raises(ProbeError):
        resolve_port(port, [{"name": "web", "containerPort": 8080}])


async def test_http_get_success_and_status_codes(server: Server, clock: FakeClock,
                                                 launch: ContainerLaunch) -> None:
    ok = await run(clock, launch, http(server.port))
    assert ok == ProbeResult(True, "ok")
    request = server.requests[-1]
    assert request.headers["User-Agent"].startswith("kube-probe/")
    assert request.headers["Accept"] == "*/*"
    assert (await run(clock, launch, http(server.port, "/399"))).success is True
    assert (await run(clock, launch, http(server.port, "/204"))).success is True
    bad = await run(clock, launch, http(server.port, "/500"))
    assert bad == ProbeResult(False, "HTTP probe failed with statuscode: 500")
    assert (await run(clock, launch, http(server.port, "/404"))).success is False


async def test_http_get_sends_the_probe_headers(server: Server, clock: FakeClock,
                                                launch: ContainerLaunch) -> None:
    path = "/needs-header"
    assert (await run(clock, launch, http(server.port, path))).success is False
    headers = [{"name": "X-Probe", "value": "yes"}, {"name": "User-Agent", "value": "mine"}]
    assert (await run(clock, launch, http(server.port, path, httpHeaders=headers))).success
    assert server.requests[-1].headers["User-Agent"] == "mine"


async def test_http_get_follows_local_redirects_only(server: Server, clock: FakeClock,
                                                     launch: ContainerLaunch) -> None:
    assert await run(clock, launch, http(server.port, "/moved")) == ProbeResult(True, "ok")
    assert [r.path for r in server.requests] == ["/moved", "/healthz"]
    away = await run(clock, launch, http(server.port, "/away"))
    assert away.success and away.output.startswith("Probe terminated redirects")
    looping = await run(clock, launch, http(server.port, "/loop"))
    assert not looping.success and "stopped after 10 redirects" in looping.output


async def test_http_get_connection_refused(closed_port: int, clock: FakeClock,
                                           launch: ContainerLaunch) -> None:
    result = await run(clock, launch, http(closed_port))
    assert result == ProbeResult(
        False, f'Get "http://127.0.0.1:{closed_port}/healthz": '
               f"dial tcp 127.0.0.1:{closed_port}: connect: connection refused")


async def test_http_get_times_out_on_the_clock(server: Server, clock: FakeClock,
                                               launch: ContainerLaunch) -> None:
    spec = ProbeSpec.parse({"httpGet": {"port": server.port, "path": "/slow"},
                            "timeoutSeconds": 2}, ProbeKind.READINESS)
    task = asyncio.create_task(run(clock, launch, spec))
    await asyncio.wait_for(server.arrived.wait(), 10)
    clock.advance(1.5)
    await asyncio.sleep(0.01)
    assert not task.done()
    clock.advance(0.5)
    result = await asyncio.wait_for(task, 10)
    assert not result.success
    assert result.output.startswith(f'Get "http://127.0.0.1:{server.port}/slow": '
                                    "context deadline exceeded")


async def test_tcp_socket_success_and_refused(server: Server, closed_port: int,
                                              clock: FakeClock,
                                              launch: ContainerLaunch) -> None:
    assert await run(clock, launch, tcp(server.port)) == ProbeResult(True)
    assert await run(clock, launch, tcp(closed_port)) == ProbeResult(
        False, f"dial tcp 127.0.0.1:{closed_port}: connect: connection refused")


async def test_tcp_socket_times_out_on_the_clock(clock: FakeClock,
                                                 launch: ContainerLaunch) -> None:
    # A listener whose backlog is full: the kernel drops new connection attempts.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):  # a non-blocking connect is in progress
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    try:
        task = asyncio.create_task(run(clock, launch, tcp(port)))
        while clock.pending_timers() == 0:
            await asyncio.sleep(0)
        clock.advance(1)
        result = await asyncio.wait_for(task, 10)
        assert result == ProbeResult(False, f"dial tcp 127.0.0.1:{port}: i/o timeout")
    finally:
        for s in (*fillers, listener):
            s.close()


async def test_an_unknown_named_port_errors(clock: FakeClock,
                                            launch: ContainerLaunch) -> None:
    spec = ProbeSpec.parse({"httpGet": {"port": "web"}}, ProbeKind.READINESS)
    with pytest.raises(ProbeError, match="web"):
        await run(clock, launch, spec)


class Answers:
    """A runner answering from a list (then succeeding), or raising ``ProbeError``."""

    def __init__(self, *answers: ProbeResult | ProbeError) -> None:
        self.answers = list(answers)

    async def run(self, kind: ProbeKind, launch: ContainerLaunch,
                  probe: ProbeSpec) -> ProbeResult:
        answer = self.answers.pop(0) if self.answers else ProbeResult(True)
        if isinstance(answer, ProbeError):
            raise answer
        return answer


async def probed(prober: Prober, runs: int) -> None:
    """Wait until the prober has finished ``runs`` probes."""
    for _ in range(100):
        await asyncio.sleep(0)
        if prober.runs >= runs and not prober.busy:
            return
    raise AssertionError(f"probe {runs} never ran")


async def test_the_prober_reports_each_failure_and_drops_errors(
        clock: FakeClock, launch: ContainerLaunch) -> None:
    spec = ProbeSpec.parse({"tcpSocket": {"port": 1}, "failureThreshold": 2,
                            "periodSeconds": 5}, ProbeKind.LIVENESS)
    runner = Answers(ProbeResult(False, "refused"), ProbeError("no route"),
                     ProbeResult(False, "refused again"))
    results: list[bool] = []
    unhealthy: list[str] = []
    prober = Prober(ProbeKind.LIVENESS, spec, runner, launch, clock, results.append,
                    unhealthy.append)
    task = asyncio.create_task(prober.run())
    try:
        await probed(prober, 1)  # the first probe runs at once (no initial delay)
        assert unhealthy == ["Liveness probe failed: refused"] and results == []
        clock.advance(5)
        await probed(prober, 2)  # errored: reported, but not a second failure
        assert unhealthy[-1] == "Liveness probe errored: no route" and results == []
        clock.advance(5)
        await probed(prober, 3)
        assert unhealthy[-1] == "Liveness probe failed: refused again"
        assert results == [False]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_grpc_probes_are_not_run_and_succeed(
        clock: FakeClock, launch: ContainerLaunch, caplog: pytest.LogCaptureFixture) -> None:
    spec = ProbeSpec.parse({"grpc": {"port": 9000}}, ProbeKind.READINESS)
    results: list[bool] = []
    runner = Answers(ProbeResult(False, "never asked"))
    prober = Prober(ProbeKind.READINESS, spec, runner, launch, clock, results.append)
    task = asyncio.create_task(prober.run())
    try:
        for _ in range(20):
            await asyncio.sleep(0)
        assert results == [True] and prober.runs == 0 and len(runner.answers) == 1
        assert [r.getMessage() for r in caplog.records
                if "not supported" in r.getMessage()] == [
            "readiness probe of ns/p c: grpc probes are not supported; treated as succeeding"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
