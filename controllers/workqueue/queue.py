"""The work queue: hands keys to workers under client-go's workqueue contract.

Guarantees:

- Fair: items are handed out in the order they were added.
- Stingy: one item is never processed by two workers at once. An item added
  several times before a worker takes it is handed out once. An item added
  again while a worker processes it is kept aside and handed out again after
  that worker calls ``done``.
- Many producers and many consumers: any number of tasks may ``add`` and
  ``get`` at the same time, and an item may be added again while in process.
- Shutdown: ``shut_down()`` makes ``add`` ignore new items; ``get`` keeps
  handing out what is already queued and, once the queue is empty, returns
  ``(None, True)`` at once, waking every task already waiting.
  ``shut_down_with_drain()`` does the same and then waits until no item is in
  process (every handed-out item has had its ``done``); a plain
  ``shut_down()`` meanwhile stops that wait.

Workers loop ``item, shutdown = await q.get()``; stop on ``shutdown``; else
process ``item`` and always call ``q.done(item)``. Items must be hashable;
``item`` is None exactly when ``shutdown`` is True.

The queue is asyncio-first: use it from one event loop's thread only.
``get`` yields to the loop at least once before it hands out an item, so a
worker that keeps requeuing its own item cannot starve other tasks. A task
cancelled inside ``get`` takes nothing and passes any wake-up on to the next
waiting task, so no item is lost to a cancelled worker.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

from controllers.clock import Clock, RealClock, Timer
from controllers.workqueue.metrics import MetricsProvider, QueueMetrics

__all__ = ["Queue"]

T = TypeVar("T", bound=Hashable)


class Queue(Generic[T]):
    """A fair, stingy FIFO of hashable items for many producers and workers."""

    def __init__(
        self,
        *,
        name: str = "",
        clock: Clock | None = None,
        metrics_provider: MetricsProvider | None = None,
        unfinished_work_update_period: float = 0.5,
    ) -> None:
        """Create an empty queue.

        Args:
            name: the queue's name in metrics.
            clock: where time is read and timers set (the real clock by default).
            metrics_provider: where metrics go; None reports none.
            unfinished_work_update_period: seconds between refreshes of the
                unfinished-work gauges while items are in process.

        Raises:
            ValueError: a metrics provider without a name, or a period that
                is not positive.
        """
        if metrics_provider is not None and not name:
            raise ValueError("a queue that reports metrics needs a name")
        if unfinished_work_update_period <= 0:
            raise ValueError("unfinished_work_update_period must be positive")
        self._name = name
        self._clock: Clock = clock if clock is not None else RealClock()
        # Items in the order they will be handed out. Invariant: an item is in
        # _queue iff it is in _dirty and not in _processing, and at most once.
        self._queue: deque[T] = deque()
        # Items that need processing (queued, or added again while in process).
        self._dirty: set[T] = set()
        # Items handed out whose done() has not come yet.
        self._processing: set[T] = set()
        self._shutting_down = False
        # True while a shut_down_with_drain() waits; a plain shut_down() clears it.
        self._drain = False
        # Tasks parked in get(), oldest first; each push into _queue wakes one.
        self._getters: deque[asyncio.Future[None]] = deque()
        # Tasks parked in shut_down_with_drain().
        self._drainers: list[asyncio.Future[None]] = []
        self._metrics = QueueMetrics(name, metrics_provider, self._clock) if metrics_provider is not None else None
        self._unfinished_period = unfinished_work_update_period
        self._unfinished_timer: Timer | None = None

    @property
    def name(self) -> str:
        """The queue's name in metrics ("" if it reports none)."""
        return self._name

    def add(self, item: T) -> None:
        """Mark ``item`` as needing processing; ignored once shutting down."""
        if self._shutting_down or item in self._dirty:
            return
        if self._metrics is not None:
            self._metrics.add(item)
        self._dirty.add(item)
        if item in self._processing:
            return
        self._queue.append(item)
        self._wake_getter()

    async def get(self) -> tuple[T | None, bool]:
        """Take the next item, waiting for one if the queue is empty.

        Returns:
            ``(item, False)``, after which the caller owes ``done(item)``; or
            ``(None, True)`` once the queue is shutting down and empty.
        """
        if self._queue:
            # Yield once even when an item is ready, so a worker that requeues
            # its own item without awaiting cannot starve the other tasks.
            await asyncio.sleep(0)
        rewait_first = False
        while not self._queue and not self._shutting_down:
            await self._wait_for_item(first=rewait_first)
            # Woken but beaten to the item: keep our place at the front.
            rewait_first = True
        if not self._queue:
            return None, True
        item = self._queue.popleft()
        self._processing.add(item)
        self._dirty.discard(item)
        if self._metrics is not None:
            self._metrics.get(item)
            self._maybe_start_unfinished_timer()
        return item, False

    def done(self, item: T) -> None:
        """Mark ``item``'s processing finished; queue it again if it was added meanwhile.

        Raises:
            ValueError: ``item`` is not being processed (``done`` without
                ``get``, or twice).
        """
        if item not in self._processing:
            raise ValueError(f"done({item!r}): the item is not being processed")
        if self._metrics is not None:
            self._metrics.done(item)
        self._processing.remove(item)
        if item in self._dirty:
            self._queue.append(item)
            self._wake_getter()
        if not self._processing:
            self._wake_drainers()

    def len(self) -> int:
        """How many items wait to be handed out (not counting those in process)."""
        return len(self._queue)

    def shutting_down(self) -> bool:
        """Whether ``shut_down`` or ``shut_down_with_drain`` was called."""
        return self._shutting_down

    def shut_down(self) -> None:
        """Ignore further adds, and release waiting ``get`` calls once the queue is empty."""
        self._drain = False
        self._begin_shut_down()

    async def shut_down_with_drain(self) -> None:
        """Shut down, then wait until every item handed out has had its ``done``.

        Workers must keep calling ``get`` and ``done`` until ``get`` reports
        shutdown, or this waits for ever. A concurrent ``shut_down()`` ends
        the wait early.
        """
        self._drain = True
        self._begin_shut_down()
        while self._processing and self._drain:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._drainers.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._drainers:
                    self._drainers.remove(waiter)

    def _begin_shut_down(self) -> None:
        """Stop accepting adds and release every waiter; subclasses extend it."""
        self._shutting_down = True
        if self._unfinished_timer is not None:
            self._unfinished_timer.cancel()
            self._unfinished_timer = None
        if self._metrics is not None:
            self._metrics.update_unfinished_work()
        while self._getters:
            self._wake_getter()
        self._wake_drainers()

    async def _wait_for_item(self, *, first: bool) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if first:
            self._getters.appendleft(waiter)
        else:
            self._getters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Woken, then cancelled before running: the wake-up belongs to someone else.
                self._wake_getter()
            elif waiter in self._getters:
                self._getters.remove(waiter)
            raise

    def _wake_getter(self) -> None:
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _wake_drainers(self) -> None:
        drainers, self._drainers = self._drainers, []
        for waiter in drainers:
            if not waiter.done():
                waiter.set_result(None)

    def _maybe_start_unfinished_timer(self) -> None:
        if self._unfinished_timer is None and not self._shutting_down:
            self._unfinished_timer = self._clock.call_at(
                self._clock.now() + self._unfinished_period, self._on_unfinished_tick
            )

    def _on_unfinished_tick(self) -> None:
        self._unfinished_timer = None
        if self._metrics is None or self._shutting_down:
            return
        self._metrics.update_unfinished_work()
        if self._processing:
            self._maybe_start_unfinished_timer()
