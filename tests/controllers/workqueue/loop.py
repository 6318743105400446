"""Loop helpers for work queue tests: count loop turns, never wall-clock time.

A broken queue must fail a test, not hang it, so every await that should end
goes through ``finish``, which gives up after a number of loop turns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

__all__ = ["finish", "run_now", "settle"]

R = TypeVar("R")


async def settle(turns: int = 5) -> None:
    """Let every ready task run for a few loop turns."""
    for _ in range(turns):
        await asyncio.sleep(0)


async def finish(awaitable: Awaitable[R], *, turns: int = 50) -> R:
    """Await ``awaitable``, failing if it has not ended within ``turns`` loop turns."""
    task = asyncio.ensure_future(awaitable)
    for _ in range(turns):
        if task.done():
            return task.result()
        await asyncio.sleep(0)
    if task.done():
        return task.result()
    task.cancel()
    raise AssertionError(f"still waiting after {turns} loop turns")


def run_now(coro: Coroutine[Any, Any, R]) -> R:
    """Run a coroutine that must end without waiting, with no event loop at all.

    Bare yields (``asyncio.sleep(0)``) are stepped through; waiting on a
    future fails the test.
    """
    while True:
        try:
            awaited = coro.send(None)
        except StopIteration as stop:
            result: R = stop.value
            return result
        if awaited is not None:
            coro.close()
            raise AssertionError("the coroutine waited although its answer was due at once")
