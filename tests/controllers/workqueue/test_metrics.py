"""Queue metrics on a fake clock, read through the in-memory provider."""

from __future__ import annotations

from typing import Any

import pytest

from controllers.clock import FakeClock
from controllers.workqueue import InMemoryMetricsProvider, Queue, RateLimitingQueue
from controllers.workqueue.metrics import DURATION_BUCKETS_SECONDS
from tests.controllers.workqueue.loop import finish


def series(provider: InMemoryMetricsProvider, name: str = "q") -> dict[str, Any]:
    return provider.snapshot()[name]


def test_a_provider_needs_a_queue_name() -> None:
    with pytest.raises(ValueError):
        Queue[str](metrics_provider=InMemoryMetricsProvider())
    with pytest.raises(ValueError):
        Queue[str](unfinished_work_update_period=0)


async def test_depth_adds_latency_and_work_duration() -> None:
    clock = FakeClock()
    provider = InMemoryMetricsProvider()
    q: Queue[str] = Queue(name="q", clock=clock, metrics_provider=provider)
    q.add("a")
    q.add("b")
    q.add("a")  # coalesced: not an add
    assert series(provider)["depth"] == 2
    assert series(provider)["adds_total"] == 2

    clock.advance(1.0)
    await finish(q.get())  # "a" waited 1 s
    clock.advance(2.0)
    await finish(q.get())  # "b" waited 3 s
    assert series(provider)["depth"] == 0
    latency = series(provider)["queue_duration_seconds"]
    assert latency["count"] == 2
    assert latency["sum"] == pytest.approx(4.0)

    q.add("a")  # re-added while in process: pending again, counted in depth
    assert series(provider)["depth"] == 1
    assert series(provider)["adds_total"] == 3
    clock.advance(0.5)
    q.done("a")  # processed for 2.5 s; goes back into the queue
    q.done("b")  # processed for 0.5 s
    work = series(provider)["work_duration_seconds"]
    assert work["count"] == 2
    assert work["sum"] == pytest.approx(3.0)
    assert series(provider)["depth"] == 1

    clock.advance(4.0)
    await finish(q.get())  # the re-add waited 4.5 s since it was made
    latency = series(provider)["queue_duration_seconds"]
    assert latency["count"] == 3
    assert latency["sum"] == pytest.approx(8.5)
    assert series(provider)["depth"] == 0


async def test_histogram_buckets_are_cumulative() -> None:
    clock = FakeClock()
    provider = InMemoryMetricsProvider()
    q: Queue[str] = Queue(name="q", clock=clock, metrics_provider=provider)
    for item, wait in [("fast", 0.0), ("mid", 0.05), ("slow", 100.0)]:
        q.add(item)
        clock.advance(wait)
        await finish(q.get())
    buckets = series(provider)["queue_duration_seconds"]["buckets"]
    assert list(buckets) == list(DURATION_BUCKETS_SECONDS)
    # 0 s falls in the first bucket, 50 ms in the 100 ms one, 100 s above the last bound.
    assert list(buckets.values()) == [1] * 7 + [2] * 3
    assert series(provider)["queue_duration_seconds"]["count"] == 3


async def test_unfinished_work_is_refreshed_while_items_are_in_process() -> None:
    clock = FakeClock()
    provider = InMemoryMetricsProvider()
    q: Queue[str] = Queue(name="q", clock=clock, metrics_provider=provider, unfinished_work_update_period=0.5)
    q.add("a")
    q.add("b")
    await finish(q.get())
    clock.advance(1.0)  # refreshed at 0.5 and 1.0
    await finish(q.get())
    assert series(provider)["unfinished_work_seconds"] == pytest.approx(1.0)
    assert series(provider)["longest_running_processor_seconds"] == pytest.approx(1.0)
    clock.advance(1.0)  # "a" for 2 s, "b" for 1 s
    assert series(provider)["unfinished_work_seconds"] == pytest.approx(3.0)
    assert series(provider)["longest_running_processor_seconds"] == pytest.approx(2.0)
    q.done("a")
    q.done("b")
    clock.advance(0.5)  # one more refresh sees nothing in process, then the timer stops
    assert series(provider)["unfinished_work_seconds"] == 0.0
    assert series(provider)["longest_running_processor_seconds"] == 0.0
    assert clock.pending_timers() == 0


async def test_shut_down_stops_the_refresh_timer() -> None:
    clock = FakeClock()
    provider = InMemoryMetricsProvider()
    q: Queue[str] = Queue(name="q", clock=clock, metrics_provider=provider)
    q.add("a")
    await finish(q.get())
    assert clock.pending_timers() == 1
    clock.advance(0.2)
    q.shut_down()
    assert clock.pending_timers() == 0
    assert series(provider)["unfinished_work_seconds"] == pytest.approx(0.2)


def test_retries_count_add_after_calls_on_a_live_queue() -> None:
    clock = FakeClock()
    provider = InMemoryMetricsProvider()
    q: RateLimitingQueue[str] = RateLimitingQueue(name="q", clock=clock, metrics_provider=provider)
    q.add_rate_limited("a")
    q.add_rate_limited("a")
    q.add_after("b", 0)
    assert series(provider)["retries_total"] == 3
    assert series(provider)["adds_total"] == 1  # only "b" so far
    clock.advance(1.0)
    assert series(provider)["adds_total"] == 2
    q.shut_down()
    q.add_rate_limited("a")
    assert series(provider)["retries_total"] == 3


def test_queues_report_under_their_own_names() -> None:
    clock = FakeClock()
    provider = InMemoryMetricsProvider()
    first: Queue[str] = Queue(name="first", clock=clock, metrics_provider=provider)
    second: Queue[str] = Queue(name="second", clock=clock, metrics_provider=provider)
    first.add("a")
    second.add("a")
    second.add("b")
    assert (first.name, second.name) == ("first", "second")
    snap = provider.snapshot()
    assert list(snap) == ["first", "second"]
    assert snap["first"]["depth"] == 1
    assert snap["second"]["depth"] == 2
    assert set(snap["first"]) == {
        "depth",
        "adds_total",
        "queue_duration_seconds",
        "work_duration_seconds",
        "unfinished_work_seconds",
        "longest_running_processor_seconds",
        "retries_total",
    }
