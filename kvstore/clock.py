"""Time as a seam: everything above the Raft core that waits or expires asks a ``Clock``.

``MonotonicClock`` reads the real monotonic clock; ``FakeClock`` only moves
when a test calls ``advance``, so lease and watch tests never sleep.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "FakeClock", "MonotonicClock"]


class Clock(Protocol):
    """A source of monotonic time in seconds."""

    def now(self) -> float:
        """Seconds since an arbitrary, fixed origin; never goes backwards."""
        ...


class MonotonicClock:
    """The real monotonic clock."""

    def now(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (must not be negative)."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += seconds
