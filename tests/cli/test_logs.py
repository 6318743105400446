"""``logs`` against a stand-in kubelet: an aiohttp server serving ``/containerLogs``."""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import kvstore
from controllers.api import ApiError, Clientset
from kvstore.clock import FakeClock
from runtime.cli.logs import choose_container, kubelet_address, stream_logs
from runtime.cli.session import CommandError
from tests.kvstore.ports import free_port_block

from .conftest import OPTIONS, START, Env
from .samples import node, pod

LOG = ["starting\n", "listening on :80\n", "GET / 200\n"]
PREVIOUS = ["panic: out of memory\n"]
FOLLOWED = ["GET /health 200\n"]


class FakeKubelet:
    """Serves the logs of ``default/web-1``'s containers and records each request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.port = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        q = dict(request.query)
        self.requests.append((request.path, q))
        m = request.match_info
        if (m["ns"], m["pod"]) != ("default", "web-1") or m["container"] not in ("main", "side"):
            return web.Response(status=404, text=f'container "{m["container"]}" not found')
        lines = PREVIOUS if q.get("previous") == "true" else [f"{m['container']}: {x}"
                                                               for x in LOG]
        if "tailLines" in q:
            n = int(q["tailLines"])
            lines = lines[len(lines) - n:] if n else []
        resp = web.StreamResponse()
        await resp.prepare(request)
        for line in lines + (FOLLOWED if q.get("follow") == "true" else []):
            await resp.write(line.encode())
        await resp.write_eof()
        return resp

    @contextlib.asynccontextmanager
    async def serving(self, port: int = 0) -> AsyncIterator[FakeKubelet]:
        """Serve on ``port`` (0: any free one, then in ``self.port``) while in the block."""
        app = web.Application()
        app.router.add_get("/containerLogs/{ns}/{pod}/{container}", self.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        self.port = runner.addresses[0][1]
        try:
            yield self
        finally:
            await runner.cleanup()


async def _seed(api: Clientset, port: int) -> None:
    await api.resource("nodes").create(node("n1", port=port))
    await api.resource("pods").create(pod("web-1", node="n1", containers=("main", "side")))
    await api.resource("pods").create(pod("solo", node="n1"))
    await api.resource("pods").create(pod("pending"))


@pytest.fixture
async def api_and_kubelet(tmp_path: Path) -> AsyncIterator[tuple[Clientset, FakeKubelet]]:
    async with kvstore.open(str(tmp_path / "store"), options=OPTIONS) as kv:
        api = Clientset(kv, clock=FakeClock(START), rng=random.Random(1))
        async with FakeKubelet().serving() as kubelet:
            await _seed(api, kubelet.port)
            yield api, kubelet


async def _logs(api: Clientset, pod_name: str, **kw: Any) -> tuple[str, list[str]]:
    out: list[bytes] = []
    notes: list[str] = []
    args: dict[str, Any] = {"container": None, "follow": False, "tail": -1, "previous": False}
    args.update(kw)
    await stream_logs(api, pod_name, "default", write=out.append, note=notes.append, **args)
    return b"".join(out).decode(), notes


async def test_streams_the_containers_log(
        api_and_kubelet: tuple[Clientset, FakeKubelet]) -> None:
    api, kubelet = api_and_kubelet
    text, notes = await _logs(api, "web-1", container="side")
    assert text == "side: starting\nside: listening on :80\nside: GET / 200\n"
    assert notes == []
    assert kubelet.requests == [("/containerLogs/default/web-1/side", {})]


async def test_query_parameters(api_and_kubelet: tuple[Clientset, FakeKubelet]) -> None:
    api, kubelet = api_and_kubelet
    text, _ = await _logs(api, "web-1", container="main", tail=1, follow=True)
    assert text == "main: GET / 200\nGET /health 200\n"
    assert kubelet.requests[-1][1] == {"follow": "true", "tailLines": "1"}
    text, _ = await _logs(api, "web-1", container="main", previous=True)
    assert text == "panic: out of memory\n"
    assert kubelet.requests[-1][1] == {"previous": "true"}


async def test_default_container_is_noted(
        api_and_kubelet: tuple[Clientset, FakeKubelet]) -> None:
    api, _ = api_and_kubelet
    text, notes = await _logs(api, "web-1")
    assert text.startswith("main: starting")
    assert notes == ['Defaulted container "main" out of: main, side']


async def test_errors(api_and_kubelet: tuple[Clientset, FakeKubelet]) -> None:
    api, _ = api_and_kubelet
    with pytest.raises(CommandError, match="is waiting to start"):
        await _logs(api, "pending")
    with pytest.raises(CommandError, match="container nope is not valid for pod web-1"):
        await _logs(api, "web-1", container="nope")
    with pytest.raises(ApiError, match='container "main" not found') as info:
        await _logs(api, "solo")
    assert info.value.reason == "NotFound"


def test_choosing_a_container_and_the_kubelet_address() -> None:
    p = pod("p", containers=("a", "b"))
    p["metadata"]["annotations"] = {"kubectl.kubernetes.io/default-container": "b"}
    assert choose_container(p, None) == ("b", 'Defaulted container "b" out of: a, b')
    assert choose_container(pod("q"), None) == ("main", None)
    assert kubelet_address(node("n", address="10.0.0.3", port=10255)) == ("10.0.0.3", 10255)
    bare = {"metadata": {"name": "n"}, "status": {"addresses": [
        {"type": "Hostname", "address": "host-a"}]}}
    assert kubelet_address(bare) == ("host-a", 10250)
    with pytest.raises(CommandError):
        kubelet_address({"metadata": {"name": "n"}, "status": {}})


def test_logs_command(env: Env) -> None:
    port = free_port_block(1)
    kubelet = FakeKubelet()
    env.run(lambda api: _seed(api, port))
    env.around.append(lambda: kubelet.serving(port))
    r = env.invoke("logs", "web-1", "-c", "main", "--tail", "2")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "main: listening on :80\nmain: GET / 200\n"
    r = env.invoke("logs", "pod/web-1", "-f", "-p")
    assert r.stdout == "panic: out of memory\nGET /health 200\n"
    assert r.stderr == 'Defaulted container "main" out of: main, side\n'
    assert kubelet.requests[-1][1] == {"follow": "true", "previous": "true"}
    r = env.invoke("logs", "web-1", "-c", "side", "-n", "default", "--tail", "0")
    assert (r.exit_code, r.stdout) == (0, "")
    env.run(lambda api: api.resource("pods").create(pod("web-1", namespace="kube-system",
                                                        node="n1")))
    r = env.invoke("logs", "web-1", "-n", "kube-system")
    assert r.exit_code == 1
    assert r.stderr == 'Error from server (NotFound): container "main" not found\n'
    r = env.invoke("logs", "nope")
    assert r.exit_code == 1 and r.stderr == 'Error from server (NotFound): pods "nope" not found\n'
