"""Test support: a store wrapper that counts, hangs on demand, and lets tests settle.

Electors and managers run against a real embedded store while their timers
run on a ``FakeClock``. After moving the clock, a test calls ``settle`` to
let every woken task finish its store calls before it looks at the state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

from kvstore.mvcc.request import Compare, RequestOp
from kvstore.mvcc.types import KeyValue, RangeResult, TxnResult, WatchResponse

__all__ = ["DEADLINE", "GatedKV", "settle", "wait_for"]

# Safety net in real seconds for conditions that must come true; a test hitting it has failed.
DEADLINE = 10.0

R = TypeVar("R")


class GatedKV:
    """A ``KV`` that forwards to a store, counts calls in flight, and can hang every call."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls = 0
        # Calls running against the store (a hanging call is not counted).
        self.busy = 0
        self.hang = False

    async def _call(self, fn: Callable[..., Awaitable[R]], *args: Any, **kwargs: Any) -> R:
        self.calls += 1
        if self.hang:
            await asyncio.get_running_loop().create_future()
        self.busy += 1
        try:
            return await fn(*args, **kwargs)
        finally:
            self.busy -= 1

    async def get(self, key: bytes | str, **kwargs: Any) -> KeyValue | None:
        return await self._call(self._inner.get, key, **kwargs)

    async def range(self, key: bytes | str, range_end: bytes | str | None = None,
                    **kwargs: Any) -> RangeResult:
        return await self._call(self._inner.range, key, range_end, **kwargs)

    async def txn(self, compare: Sequence[Compare] = (), success: Sequence[RequestOp] = (),
                  failure: Sequence[RequestOp] = ()) -> TxnResult:
        return await self._call(self._inner.txn, compare, success, failure)

    async def watch(self, key: bytes | str, range_end: bytes | str | None = None,
                    **kwargs: Any) -> AsyncIterator[WatchResponse]:
        stream: AsyncIterator[WatchResponse] = await self._inner.watch(key, range_end, **kwargs)
        return stream


async def settle(*kvs: GatedKV, quiet_turns: int = 10) -> None:
    """Run the loop until no store call is running for ``quiet_turns`` turns in a row."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + DEADLINE
    quiet = 0
    while quiet < quiet_turns:
        await asyncio.sleep(0)
        quiet = 0 if any(kv.busy for kv in kvs) else quiet + 1
        if loop.time() > give_up:
            raise AssertionError("store calls still running after the deadline")


async def wait_for(condition: Callable[[], bool], *kvs: GatedKV) -> None:
    """Settle until ``condition()`` holds; fail after ``DEADLINE`` real seconds."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + DEADLINE
    while not condition():
        await settle(*kvs, quiet_turns=1)
        if loop.time() > give_up:
            raise AssertionError("the condition never came true")
