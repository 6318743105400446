"""The rate-limiting queue: delays come from its limiter, on the queue's clock."""

from __future__ import annotations

import asyncio

import pytest

from controllers.clock import FakeClock
from controllers.workqueue import (
    DelayingQueue,
    ItemExponentialFailureRateLimiter,
    ItemFastSlowRateLimiter,
    Queue,
    RateLimitingQueue,
)
from tests.controllers.workqueue.loop import finish


async def test_add_rate_limited_waits_the_limiter_delay() -> None:
    clock = FakeClock()
    q: RateLimitingQueue[str] = RateLimitingQueue(ItemExponentialFailureRateLimiter(1.0, 60.0), clock=clock)
    assert isinstance(q, DelayingQueue) and isinstance(q, Queue)
    q.add_rate_limited("a")
    clock.advance(0.99)
    assert q.len() == 0
    clock.advance(0.01)
    assert q.len() == 1
    item, _ = await finish(q.get())
    assert item == "a"
    q.add_rate_limited("a")  # a second failure: 2 s
    q.done("a")
    clock.advance(1.99)
    assert q.len() == 0
    clock.advance(0.01)
    assert q.len() == 1
    assert q.num_requeues("a") == 2


async def test_forget_resets_the_backoff_but_keeps_the_item() -> None:
    clock = FakeClock()
    q: RateLimitingQueue[str] = RateLimitingQueue(ItemFastSlowRateLimiter(1.0, 100.0, 1), clock=clock)
    q.add_rate_limited("a")  # fast: 1 s
    q.add_rate_limited("b")  # fast: 1 s
    clock.advance(1.0)
    assert q.len() == 2
    q.add_rate_limited("a")  # slow now, but "a" is already pending
    assert q.num_requeues("a") == 2
    q.forget("a")
    assert q.num_requeues("a") == 0
    assert q.num_requeues("b") == 1
    assert q.len() == 2
    assert [await finish(q.get()) for _ in range(2)] == [("a", False), ("b", False)]


async def test_default_limiter_runs_on_the_queue_clock() -> None:
    clock = FakeClock()
    q: RateLimitingQueue[str] = RateLimitingQueue(clock=clock)
    for expected in (0.005, 0.01, 0.02):
        q.add_rate_limited("a")
        assert clock.next_deadline() == pytest.approx(clock.now() + expected)
        clock.advance(expected)
        item, _ = await finish(q.get())
        assert item == "a"
        q.done("a")
    assert q.num_requeues("a") == 3
    q.forget("a")
    q.add_rate_limited("a")
    assert clock.next_deadline() == pytest.approx(clock.now() + 0.005)


async def test_worker_loop_retries_until_success() -> None:
    clock = FakeClock()
    q: RateLimitingQueue[str] = RateLimitingQueue(ItemExponentialFailureRateLimiter(1.0, 60.0), clock=clock)
    attempts: list[tuple[str, float]] = []

    async def worker() -> None:
        while True:
            item, shutdown = await q.get()
            if shutdown:
                return
            assert item is not None
            attempts.append((item, clock.now()))
            if len(attempts) < 3:
                q.add_rate_limited(item)
            else:
                q.forget(item)
            q.done(item)

    task = asyncio.create_task(worker())
    q.add("k")
    for _ in range(3):
        await asyncio.sleep(0)
    clock.advance(1.0)
    await asyncio.sleep(0)
    clock.advance(2.0)
    await asyncio.sleep(0)
    q.shut_down()
    await finish(task)
    assert attempts == [("k", 0.0), ("k", 1.0), ("k", 3.0)]
    assert q.num_requeues("k") == 0


def test_add_rate_limited_after_shut_down_is_ignored() -> None:
    clock = FakeClock()
    q: RateLimitingQueue[str] = RateLimitingQueue(clock=clock)
    q.shut_down()
    q.add_rate_limited("a")
    clock.advance(10.0)
    assert q.len() == 0
    assert clock.pending_timers() == 0
