"""The rate-limiting queue: a ``DelayingQueue`` that asks a ``RateLimiter`` for each delay.

A worker that fails on an item calls ``add_rate_limited(item)``: the limiter
says how long to wait (and counts one more requeue), and the item is added
after that delay through ``add_after``. A worker that succeeds calls
``forget(item)`` so the next failure starts again from the smallest delay,
and then ``done(item)`` as always. ``forget`` only clears the limiter's
history; it does not take the item out of the queue.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TypeVar

from controllers.clock import Clock, RealClock
from controllers.workqueue.delaying import DelayingQueue
from controllers.workqueue.metrics import MetricsProvider
from controllers.workqueue.rate_limiters import RateLimiter, default_controller_rate_limiter

__all__ = ["RateLimitingQueue"]

T = TypeVar("T", bound=Hashable)


class RateLimitingQueue(DelayingQueue[T]):
    """A work queue that requeues failed items after the limiter's delay."""

    def __init__(
        self,
        rate_limiter: RateLimiter[T] | None = None,
        *,
        name: str = "",
        clock: Clock | None = None,
        metrics_provider: MetricsProvider | None = None,
        unfinished_work_update_period: float = 0.5,
    ) -> None:
        """Create an empty queue.

        Args:
            rate_limiter: decides each delay; by default
                ``default_controller_rate_limiter`` on this queue's clock.
            name, clock, metrics_provider, unfinished_work_update_period: as
                for ``Queue``.
        """
        queue_clock: Clock = clock if clock is not None else RealClock()
        super().__init__(
            name=name,
            clock=queue_clock,
            metrics_provider=metrics_provider,
            unfinished_work_update_period=unfinished_work_update_period,
        )
        self._rate_limiter: RateLimiter[T] = (
            rate_limiter if rate_limiter is not None else default_controller_rate_limiter(clock=queue_clock)
        )

    def add_rate_limited(self, item: T) -> None:
        """Add ``item`` after the delay the rate limiter gives it now."""
        self.add_after(item, self._rate_limiter.when(item))

    def forget(self, item: T) -> None:
        """Clear the limiter's history of ``item`` (it was processed successfully)."""
        self._rate_limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        """How many times ``item`` was requeued through the limiter since its last ``forget``."""
        return self._rate_limiter.num_requeues(item)
