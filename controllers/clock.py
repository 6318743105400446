"""Time for controllers: a passive ``kvstore.clock.Clock`` plus timers and ``sleep``.

Everything in ``controllers`` that waits (delaying queues, rate limiters,
metrics that age, backoffs) asks a ``Clock`` from this module, never
``asyncio.sleep`` or ``time`` directly, so tests drive time by hand.

Two implementations:

- ``RealClock`` reads the monotonic clock and schedules timers on the running
  asyncio loop. ``call_at`` and ``sleep`` need a running loop; ``now`` does not.
- ``FakeClock`` extends ``kvstore.clock.FakeClock``: time moves only in
  ``advance(seconds)``, which fires every timer that falls due, earliest
  deadline first and in scheduling order among equal deadlines, with ``now()``
  reading each timer's deadline while it fires. A timer scheduled by a
  callback inside the advanced window fires in the same ``advance``. Tasks
  parked in ``sleep`` have their futures resolved by ``advance`` and resume
  the next time the test yields to the loop. The fake needs no loop except for
  ``sleep``.

Callbacks run on the loop's thread and must not block.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from kvstore.clock import Clock as PassiveClock
from kvstore.clock import FakeClock as PassiveFakeClock
from kvstore.clock import MonotonicClock

__all__ = ["Clock", "FakeClock", "PassiveClock", "RealClock", "Timer"]


class Timer(Protocol):
    """A scheduled callback that can still be called off."""

    def cancel(self) -> None:
        """Stop the callback from running; harmless if it already ran."""
        ...


class Clock(PassiveClock, Protocol):
    """Monotonic time in seconds, with timers and an awaitable sleep."""

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` once ``now()`` reaches ``when`` (at once-ish if already past)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return after ``seconds`` of this clock's time (yield once if not positive)."""
        ...


class RealClock(MonotonicClock):
    """The monotonic clock, with timers on the running asyncio loop."""

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        loop = asyncio.get_running_loop()
        return loop.call_later(max(0.0, when - self.now()), callback)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


@dataclass(slots=True, eq=False)
class _FakeTimer:
    """One pending callback of a ``FakeClock``."""

    when: float
    callback: Callable[[], None]
    cancelled: bool = field(default=False)

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock(PassiveFakeClock):
    """A clock that moves only in ``advance``, firing due timers as it goes."""

    def __init__(self, start: float = 0.0) -> None:
        super().__init__(start)
        # Heap of (deadline, sequence, timer); the sequence keeps equal deadlines
        # in scheduling order. Cancelled timers stay until popped.
        self._timers: list[tuple[float, int, _FakeTimer]] = []
        self._seq = 0

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        timer = _FakeTimer(when, callback)
        self._seq += 1
        heapq.heappush(self._timers, (when, self._seq, timer))
        return timer

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not woken.done():
                woken.set_result(None)

        timer = self.call_at(self.now() + seconds, wake)
        try:
            await woken
        finally:
            timer.cancel()

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, firing each timer that falls due on the way.

        Raises:
            ValueError: ``seconds`` is negative.
        """
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        target = self.now() + seconds
        while self._timers and self._timers[0][0] <= target:
            when, _, timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            if when > self._now:
                self._now = when
            timer.cancelled = True
            timer.callback()
        self._now = target

    def next_deadline(self) -> float | None:
        """The earliest deadline among timers not cancelled, or None."""
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    def pending_timers(self) -> int:
        """How many timers are scheduled and not yet fired or cancelled."""
        return sum(1 for _, _, timer in self._timers if not timer.cancelled)
