"""Rate limiters: how long an item should wait before it is queued again.

A ``RateLimiter`` answers ``when(item)`` with a delay in seconds and counts
that answer as one more requeue of ``item``; ``forget(item)`` clears the
item's history once it was processed successfully (per-item limiters then
start again from their smallest delay); ``num_requeues(item)`` says how many
``when`` calls the limiter remembers for it.

- ``ItemExponentialFailureRateLimiter``: per item, ``base_delay * 2**n`` for
  the n-th requeue (n from 0), capped at ``max_delay``.
- ``BucketRateLimiter``: one token bucket shared by all items, ``burst``
  tokens deep, refilled at ``qps`` per second of the injected clock. Each
  ``when`` takes a token, and when the bucket is empty it reserves the next
  one, so delays grow by ``1/qps`` per call in a burst. It has no per-item
  state: ``forget`` does nothing and ``num_requeues`` is 0.
- ``ItemFastSlowRateLimiter``: ``fast_delay`` for an item's first
  ``max_fast_attempts`` requeues, ``slow_delay`` after.
- ``MaxOfRateLimiter``: asks every limiter (so each records the requeue) and
  answers with the longest delay; ``num_requeues`` is the largest count.

``default_controller_rate_limiter()`` combines the exponential limiter (5 ms
to 1000 s) with a 10 qps, burst-100 bucket, as controllers use by default.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

from controllers.clock import PassiveClock
from kvstore.clock import MonotonicClock

__all__ = [
    "BucketRateLimiter",
    "ItemExponentialFailureRateLimiter",
    "ItemFastSlowRateLimiter",
    "MaxOfRateLimiter",
    "RateLimiter",
    "default_controller_rate_limiter",
]

T = TypeVar("T", bound=Hashable)
T_contra = TypeVar("T_contra", bound=Hashable, contravariant=True)


class RateLimiter(Protocol[T_contra]):
    """Decides how long an item waits before it is queued again."""

    def when(self, item: T_contra) -> float:
        """The delay in seconds before ``item`` is queued again; counts one requeue."""
        ...

    def forget(self, item: T_contra) -> None:
        """Drop what is remembered about ``item`` (it was processed successfully)."""
        ...

    def num_requeues(self, item: T_contra) -> int:
        """How many requeues of ``item`` are remembered."""
        ...


class ItemExponentialFailureRateLimiter:
    """Per item: ``base_delay * 2**failures``, at most ``max_delay``."""

    def __init__(self, base_delay: float = 0.005, max_delay: float = 1000.0) -> None:
        """Create the limiter.

        Args:
            base_delay: the first delay, in seconds.
            max_delay: the cap, in seconds.

        Raises:
            ValueError: a negative delay, or ``max_delay < base_delay``.
        """
        if base_delay < 0 or max_delay < base_delay:
            raise ValueError(f"need 0 <= base_delay <= max_delay, got {base_delay}, {max_delay}")
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._failures: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        exponent = self._failures.get(item, 0)
        self._failures[item] = exponent + 1
        try:
            delay = math.ldexp(self._base_delay, exponent)
        except OverflowError:
            return self._max_delay
        return min(delay, self._max_delay)

    def forget(self, item: Hashable) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        return self._failures.get(item, 0)


class BucketRateLimiter:
    """One token bucket for every item: ``burst`` at once, then ``qps`` per second."""

    def __init__(self, qps: float = 10.0, burst: int = 100, *, clock: PassiveClock | None = None) -> None:
        """Create a full bucket.

        Args:
            qps: tokens added per second (``math.inf``: never wait).
            burst: the bucket's depth, and how full it starts.
            clock: where time is read (the real monotonic clock by default).

        Raises:
            ValueError: ``qps`` not positive or ``burst`` below 1.
        """
        if not qps > 0:
            raise ValueError(f"qps must be positive, got {qps}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        self._qps = qps
        self._burst = burst
        self._clock: PassiveClock = clock if clock is not None else MonotonicClock()
        # Tokens at time _last; negative when future tokens are already reserved.
        self._tokens = float(burst)
        self._last = self._clock.now()

    def when(self, item: object) -> float:
        if math.isinf(self._qps):
            return 0.0
        now = self._clock.now()
        elapsed = max(0.0, now - self._last)
        tokens = min(float(self._burst), self._tokens + elapsed * self._qps) - 1.0
        self._tokens = tokens
        self._last = max(now, self._last)
        return -tokens / self._qps if tokens < 0 else 0.0

    def forget(self, item: object) -> None:
        """Nothing to forget: the bucket keeps no per-item state."""

    def num_requeues(self, item: object) -> int:
        return 0


class ItemFastSlowRateLimiter:
    """Per item: ``fast_delay`` for the first ``max_fast_attempts`` requeues, then ``slow_delay``."""

    def __init__(self, fast_delay: float, slow_delay: float, max_fast_attempts: int) -> None:
        """Create the limiter.

        Args:
            fast_delay: seconds for each of an item's first ``max_fast_attempts`` requeues.
            slow_delay: seconds for each requeue after those.
            max_fast_attempts: how many requeues are fast.

        Raises:
            ValueError: a negative delay or attempt count.
        """
        if fast_delay < 0 or slow_delay < 0 or max_fast_attempts < 0:
            raise ValueError("delays and max_fast_attempts must not be negative")
        self._fast_delay = fast_delay
        self._slow_delay = slow_delay
        self._max_fast_attempts = max_fast_attempts
        self._attempts: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        attempts = self._attempts.get(item, 0) + 1
        self._attempts[item] = attempts
        return self._fast_delay if attempts <= self._max_fast_attempts else self._slow_delay

    def forget(self, item: Hashable) -> None:
        self._attempts.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        return self._attempts.get(item, 0)


class MaxOfRateLimiter(Generic[T]):
    """The longest delay of several limiters, each of which records every requeue."""

    def __init__(self, *limiters: RateLimiter[T]) -> None:
        """Combine ``limiters`` (at least one).

        Raises:
            ValueError: no limiter given.
        """
        if not limiters:
            raise ValueError("MaxOfRateLimiter needs at least one limiter")
        self._limiters = limiters

    def when(self, item: T) -> float:
        delays = [limiter.when(item) for limiter in self._limiters]
        return max(delays)

    def forget(self, item: T) -> None:
        for limiter in self._limiters:
            limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return max(limiter.num_requeues(item) for limiter in self._limiters)


def default_controller_rate_limiter(*, clock: PassiveClock | None = None) -> MaxOfRateLimiter[Hashable]:
    """Exponential per-item backoff from 5 ms to 1000 s, and 10 qps overall with bursts of 100.

    Args:
        clock: the bucket's clock (the real monotonic clock by default).
    """
    return MaxOfRateLimiter[Hashable](
        ItemExponentialFailureRateLimiter(0.005, 1000.0),
        BucketRateLimiter(qps=10.0, burst=100, clock=clock),
    )
