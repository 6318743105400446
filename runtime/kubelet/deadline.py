"""``within``: await something for at most so many seconds of an injected clock.

``asyncio.wait_for`` counts the loop's real time; the kubelet's waits (probe
timeouts, flushing events on the way out) count its ``Clock``'s, so tests
move them with a fake clock. When time is up the awaited task is cancelled,
and waited for, before ``TimeoutError`` is raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from controllers.clock import Clock

__all__ = ["within"]

T = TypeVar("T")


async def within(clock: Clock, seconds: float, awaitable: Awaitable[T]) -> T:
    """The result of ``awaitable`` if it ends within ``seconds`` on ``clock``.

    Raises:
        TimeoutError: it did not; it was cancelled.
    """
    task = asyncio.ensure_future(awaitable)
    expired: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    both: list[asyncio.Future[Any]] = [task, expired]
    timer = clock.call_at(clock.now() + seconds,
                          lambda: None if expired.done() else expired.set_result(None))
    timed_out = True
    try:
        await asyncio.wait(both, return_when=asyncio.FIRST_COMPLETED)
        timed_out = not task.done()
    finally:
        timer.cancel()
        expired.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    if timed_out:
        raise TimeoutError(f"not done within {seconds:g}s")
    return task.result()
