"""Shared test support for the built-in controllers: polling with a deadline, a lagging watch."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from controllers.api.objects import Obj
from controllers.api.watch import WatchEvent
from controllers.informers.reflector import ListWatch, WatchStream

__all__ = ["DEADLINE", "GatedListWatch", "GatedStream", "eventually"]

# Safety net in real seconds for conditions that must come true; a test hitting it has failed.
DEADLINE = 10.0


async def eventually(check: Callable[[], Any], what: str) -> None:
    """Poll ``check`` (a function or coroutine function) until true; real-time deadline."""
    deadline = time.monotonic() + DEADLINE
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.01)


class GatedStream:
    """A watch stream that holds every event while its gate is closed."""

    def __init__(self, inner: WatchStream, gate: asyncio.Event) -> None:
        self.inner = inner.__aiter__()
        self.closer = inner
        self.gate = gate

    def __aiter__(self) -> GatedStream:
        return self

    async def __anext__(self) -> WatchEvent:
        event = await self.inner.__anext__()
        await self.gate.wait()
        return event

    async def aclose(self) -> None:
        await self.closer.aclose()


class GatedListWatch:
    """A ``ListWatch`` whose watch events can be held back: a lagging informer."""

    def __init__(self, inner: ListWatch) -> None:
        self.inner = inner
        self.gate = asyncio.Event()
        self.gate.set()

    async def list(self, *, resource_version: str = "") -> Obj:
        return await self.inner.list(resource_version=resource_version)

    async def watch(self, *, resource_version: str) -> WatchStream:
        return GatedStream(await self.inner.watch(resource_version=resource_version), self.gate)
