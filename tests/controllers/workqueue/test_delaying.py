"""The delaying queue on a fake clock: ready times, order, duplicates and shutdown."""

from __future__ import annotations

import asyncio

from controllers.clock import FakeClock
from controllers.workqueue import DelayingQueue
from tests.controllers.workqueue.loop import finish, run_now


def drain_now(q: DelayingQueue[str]) -> list[str]:
    """Take every queued item (each ``get`` answers at once), marking each done."""
    taken: list[str] = []
    for _ in range(100):
        if not q.len():
            return taken
        item, shutdown = run_now(q.get())
        assert not shutdown and item is not None
        taken.append(item)
        q.done(item)
    raise AssertionError(f"the queue never emptied: {taken[:10]}...")


def test_item_is_added_only_once_its_delay_has_passed() -> None:
    clock = FakeClock()
    q: DelayingQueue[str] = DelayingQueue(clock=clock)
    q.add_after("a", 1.0)
    assert q.len() == 0
    clock.advance(0.999)
    assert q.len() == 0
    clock.advance(0.001)
    assert drain_now(q) == ["a"]
    assert clock.pending_timers() == 0


def test_items_come_out_by_ready_time_then_by_call_order() -> None:
    clock = FakeClock()
    q: DelayingQueue[str] = DelayingQueue(clock=clock)
    q.add_after("late", 3.0)
    q.add_after("first", 1.0)
    q.add_after("tie1", 2.0)
    q.add_after("tie2", 2.0)
    q.add("now")
    clock.advance(10.0)
    assert drain_now(q) == ["now", "first", "tie1", "tie2", "late"]


def test_ready_items_are_added_step_by_step() -> None:
    clock = FakeClock()
    q: DelayingQueue[str] = DelayingQueue(clock=clock)
    for name, delay in [("c", 3.0), ("a", 1.0), ("b", 2.0)]:
        q.add_after(name, delay)
    seen: list[list[str]] = []
    for _ in range(3):
        clock.advance(1.0)
        seen.append(drain_now(q))
    assert seen == [["a"], ["b"], ["c"]]


def test_earliest_ready_time_wins_for_a_waiting_item() -> None:
    clock = FakeClock()
    q: DelayingQueue[str] = DelayingQueue(clock=clock)
    q.add_after("x", 5.0)
    q.add_after("x", 1.0)  # earlier: moves the item forward
    q.add_after("x", 3.0)  # later than the wait in place: ignored
    clock.advance(1.0)
    assert drain_now(q) == ["x"]
    clock.advance(10.0)
    assert drain_now(q) == []  # the superseded 5 s and 3 s waits add nothing
    assert clock.pending_timers() == 0


def test_non_positive_delay_adds_at_once() -> None:
    clock = FakeClock()
    q: DelayingQueue[str] = DelayingQueue(clock=clock)
    q.add_after("zero", 0)
    q.add_after("negative", -2.0)
    assert drain_now(q) == ["zero", "negative"]
    assert clock.pending_timers() == 0


def test_plain_add_of_a_waiting_item_leaves_the_wait_in_place() -> None:
    clock = FakeClock()
    q: DelayingQueue[str] = DelayingQueue(clock=clock)
    q.add_after("x", 2.0)
    q.add("x")
    assert drain_now(q) == ["x"]
    clock.advance(2.0)
    assert drain_now(q) == ["x"]


def test_delayed_add_of_a_pending_item_is_coalesced() -> None:
    clock = FakeClock()
    q: DelayingQueue[str] = DelayingQueue(clock=clock)
    q.add("x")
    q.add_after("x", 1.0)
    clock.advance(1.0)
    assert q.len() == 1
    assert drain_now(q) == ["x"]


def test_shut_down_drops_waiting_items_and_ignores_new_ones() -> None:
    clock = FakeClock()
    q: DelayingQueue[str] = DelayingQueue(clock=clock)
    q.add_after("a", 1.0)
    q.add_after("b", 2.0)
    q.shut_down()
    assert clock.pending_timers() == 0
    q.add_after("c", 1.0)
    q.add_after("d", 0)
    clock.advance(5.0)
    assert q.len() == 0
    assert clock.pending_timers() == 0


async def test_waiting_worker_wakes_when_the_delay_ends() -> None:
    clock = FakeClock()
    q: DelayingQueue[str] = DelayingQueue(clock=clock)
    worker = asyncio.create_task(q.get())
    q.add_after("x", 30.0)
    for _ in range(3):
        await asyncio.sleep(0)
    assert not worker.done()
    clock.advance(30.0)
    assert await finish(worker) == ("x", False)


async def test_item_requeued_after_a_delay_while_in_process_waits_for_done() -> None:
    clock = FakeClock()
    q: DelayingQueue[str] = DelayingQueue(clock=clock)
    q.add("x")
    assert await finish(q.get()) == ("x", False)
    q.add_after("x", 1.0)
    clock.advance(1.0)
    assert q.len() == 0  # still in process
    q.done("x")
    assert await finish(q.get()) == ("x", False)


async def test_real_clock_zero_delay_is_immediate() -> None:
    q: DelayingQueue[str] = DelayingQueue()
    q.add_after("x", 0)
    assert await finish(q.get()) == ("x", False)
