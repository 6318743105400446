"""The kubelet's log server: container logs over HTTP, as the Kubernetes kubelet serves them.

``GET /containerLogs/{namespace}/{pod}/{container}`` answers with the log of
the container's current attempt as ``text/plain``. Query parameters:

- ``tailLines=N``: only the last N lines;
- ``previous=true``: the attempt before the current one (404 if none);
- ``follow=true``: after what is there, keep sending what the attempt
  writes until that attempt's process has exited and its output has all
  been sent, or the client goes away. The file stays open, so a restart
  that rotates the log does not disturb a follower.

``GET /healthz`` answers ``ok``. An unknown pod or container is a 404, a
malformed parameter a 400. A ``LogLocator`` (the kubelet) finds the files.

Following polls the file every ``poll_seconds`` of real time: the writer is
another process, whose pace no clock of ours sets.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from aiohttp import web

from runtime.kubelet.logs import read_tail

__all__ = ["LogLocator", "LogServer", "LogTarget"]

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class LogTarget:
    """A log file to serve, and whether the attempt writing it still runs."""

    path: Path
    alive: Callable[[], bool]


class LogLocator(Protocol):
    """Finds the log of a container."""

    def locate(self, namespace: str, pod: str, container: str, *,
               previous: bool) -> LogTarget | None:
        """The log to serve, or None if there is no such pod, container or attempt."""
        ...


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1", "yes")


class LogServer:
    """Serves container logs (see the module docstring)."""

    def __init__(self, locator: LogLocator, *, host: str = "127.0.0.1", port: int = 0,
                 poll_seconds: float = 0.05) -> None:
        self.locator = locator
        self.host = host
        self.requested_port = port
        self.poll_seconds = poll_seconds
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        """Listen; returns the port (a free one if 0 was asked for)."""
        app = web.Application()
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self._logs)
        app.router.add_get("/healthz", self._healthz)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.requested_port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        addresses = runner.addresses
        self.port = int(addresses[0][1]) if addresses else self.requested_port
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        ns = request.match_info["namespace"]
        pod = request.match_info["pod"]
        container = request.match_info["container"]
        follow = _flag(request.query.get("follow"))
        previous = _flag(request.query.get("previous"))
        tail: int | None = None
        if "tailLines" in request.query:
            try:
                tail = int(request.query["tailLines"])
            except ValueError:
                raise web.HTTPBadRequest(text="tailLines must be an integer\n") from None
            if tail < 0:
                raise web.HTTPBadRequest(text="tailLines must not be negative\n")
        target = self.locator.locate(ns, pod, container, previous=previous)
        if target is None:
            what = "previous terminated container" if previous else "container"
            raise web.HTTPNotFound(text=f'{what} "{container}" in pod "{pod}" not found\n')
        try:
            f = open(target.path, "rb")
        except FileNotFoundError:
            raise web.HTTPNotFound(text=f'no log of container "{container}" in pod "{pod}"\n'
                                   ) from None
        with f:
            resp = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
            await resp.prepare(request)
            data, offset = read_tail(f, tail)
            await resp.write(data)
            if follow and not previous:
                await self._follow(request, resp, f.fileno(), offset, target.alive)
            await resp.write_eof()
            return resp

    async def _follow(self, request: web.Request, resp: web.StreamResponse, fd: int,
                      offset: int, alive: Callable[[], bool]) -> None:
        while True:
            running = alive()
            chunk = os.pread(fd, _CHUNK, offset)
            if chunk:
                offset += len(chunk)
                await resp.write(chunk)
                continue
            if not running:
                return
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            await asyncio.sleep(self.poll_seconds)
