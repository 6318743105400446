"""Test doubles for the recipe tests: a driven sleep, wrappers of a store, waits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from kvstore.clock import FakeClock
from kvstore.errors import Unavailable
from kvstore.mvcc.types import EventType
from kvstore.kv import close_stream

# Safety net for awaits that must complete; a test that hits it has failed.
DEADLINE = 20.0


class ManualSleep:
    """An injected sleep that ends only when the test calls ``wake``, moving a FakeClock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self._requests: asyncio.Queue[tuple[float, asyncio.Future[None]]] = asyncio.Queue()
        self._held: tuple[float, asyncio.Future[None]] | None = None
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._requests.put_nowait((seconds, fut))
        await fut

    async def asleep(self) -> float:
        """Wait until the sleeper is asleep; returns how long it asked to sleep."""
        if self._held is None:
            self._held = await asyncio.wait_for(self._requests.get(), DEADLINE)
        return self._held[0]

    async def asleep_unless(self, ended: Awaitable[None]) -> bool:
        """Wait until the sleeper is asleep (True) or ``ended`` completes (False)."""
        sleeping = asyncio.ensure_future(self.asleep())
        ending = asyncio.ensure_future(ended)
        try:
            await asyncio.wait((sleeping, ending), timeout=DEADLINE, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeping.cancel()
            ending.cancel()
        if ending.done() and not ending.cancelled():
            return False
        if self._held is None:
            raise TimeoutError("neither asleep nor ended")
        return True

    async def wake(self) -> float:
        """Wait for the next sleep, advance the clock by its length, and end it."""
        seconds = await self.asleep()
        held = self._held
        assert held is not None
        self._held = None
        self.clock.advance(seconds)
        self.slept.append(seconds)
        held[1].set_result(None)
        return seconds


class FlakyKV:
    """Delegates to a store; ``lease_keepalive`` fails with ``Unavailable`` while ``failing``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.failing = False
        self.keepalives = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def lease_keepalive(self, lease_id: int) -> int:
        self.keepalives += 1
        if self.failing:
            raise Unavailable("injected: no leader")
        ttl: int = await self.inner.lease_keepalive(lease_id)
        return ttl


class RecordingKV:
    """Delegates to a store and records every watch: ``(key, range_end, prefix)``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.watches: list[tuple[bytes, bytes | None, bool]] = []
        self.watched = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def watch(self, key: Any, range_end: Any = None, **kwargs: Any) -> Any:
        self.watches.append((key, range_end, bool(kwargs.get("prefix", False))))
        stream = await self.inner.watch(key, range_end, **kwargs)
        self.watched.set()
        return stream


async def wait_for_count(kv: Any, prefix: bytes, count: int) -> None:
    """Return once exactly ``count`` keys exist under ``prefix`` (watching, not polling)."""
    while True:
        res = await kv.range(prefix, prefix=True, count_only=True)
        if res.count == count:
            return
        stream = await kv.watch(prefix, prefix=True, start_revision=res.header_revision + 1)
        try:
            async for resp in stream:
                if any(ev.type in (EventType.PUT, EventType.DELETE) for ev in resp.events):
                    break
        finally:
            await close_stream(stream)


async def within(aw: Any, seconds: float = DEADLINE) -> Any:
    """Await ``aw``; fail the test if it takes longer than ``seconds``."""
    return await asyncio.wait_for(aw, seconds)
