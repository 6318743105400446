"""The delaying queue: a ``Queue`` that can also add an item after a delay.

``add_after(item, delay_seconds)`` adds ``item`` once the injected clock has
moved ``delay_seconds`` on; a delay that is not positive adds at once. Until
then the item waits outside the queue (``len()`` does not count it). An item
waits at most once: a second ``add_after`` for a waiting item keeps the
earlier ready time. A plain ``add`` of a waiting item adds it now and leaves
the wait in place, so the item is added again when the wait ends (and
coalesced if it is still pending then).

Items whose ready times are equal are added in the order of their
``add_after`` calls. Waiting costs no task: one clock timer is set for the
earliest ready time. ``add_after`` while shutting down is ignored, and
shutdown drops every item still waiting. With the real clock, call
``add_after`` from within the running event loop.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from typing import TypeVar

from controllers.clock import Clock, Timer
from controllers.workqueue.metrics import MetricsProvider
from controllers.workqueue.queue import Queue

__all__ = ["DelayingQueue"]

T = TypeVar("T", bound=Hashable)


class DelayingQueue(Queue[T]):
    """A work queue whose items can be scheduled for later."""

    def __init__(
        self,
        *,
        name: str = "",
        clock: Clock | None = None,
        metrics_provider: MetricsProvider | None = None,
        unfinished_work_update_period: float = 0.5,
    ) -> None:
        """Create an empty queue; the arguments are those of ``Queue``."""
        super().__init__(
            name=name,
            clock=clock,
            metrics_provider=metrics_provider,
            unfinished_work_update_period=unfinished_work_update_period,
        )
        # Each waiting item's (ready time, sequence number); the entry in
        # _heap with the same pair is the live one, older entries are stale.
        self._waiting: dict[T, tuple[float, int]] = {}
        # (ready time, sequence number, item), earliest first.
        self._heap: list[tuple[float, int, T]] = []
        self._seq = 0
        # The one timer, set for _timer_deadline (at or before the earliest ready time).
        self._timer: Timer | None = None
        self._timer_deadline = 0.0

    def add_after(self, item: T, delay_seconds: float) -> None:
        """Add ``item`` once ``delay_seconds`` have passed (at once if not positive)."""
        if self._shutting_down:
            return
        if self._metrics is not None:
            self._metrics.retry()
        if delay_seconds <= 0:
            self.add(item)
            return
        ready_at = self._clock.now() + delay_seconds
        current = self._waiting.get(item)
        if current is not None and current[0] <= ready_at:
            return
        self._seq += 1
        self._waiting[item] = (ready_at, self._seq)
        heapq.heappush(self._heap, (ready_at, self._seq, item))
        self._arm_timer()

    def _begin_shut_down(self) -> None:
        super()._begin_shut_down()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._waiting.clear()
        self._heap.clear()

    def _arm_timer(self) -> None:
        if not self._heap:
            return
        deadline = self._heap[0][0]
        if self._timer is not None:
            if self._timer_deadline <= deadline:
                return
            self._timer.cancel()
        self._timer_deadline = deadline
        self._timer = self._clock.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        # A real timer may fire a hair before its deadline; the deadline is due.
        now = max(self._clock.now(), self._timer_deadline)
        while self._heap and self._heap[0][0] <= now:
            ready_at, seq, item = heapq.heappop(self._heap)
            if self._waiting.get(item) != (ready_at, seq):
                continue
            del self._waiting[item]
            self.add(item)
        self._arm_timer()
