"""The work queue contract: fair, stingy, many producers and workers, shutdown and drain."""

from __future__ import annotations

import asyncio
import itertools
import random

import pytest

from controllers.workqueue import Queue
from tests.controllers.workqueue.loop import finish, run_now, settle


def test_fair_items_come_out_in_the_order_added() -> None:
    q: Queue[str] = Queue()
    for item in ["c", "a", "b"]:
        q.add(item)
    assert q.len() == 3
    assert [run_now(q.get()) for _ in range(3)] == [("c", False), ("a", False), ("b", False)]
    assert q.len() == 0


def test_stingy_items_added_many_times_before_processing_come_out_once() -> None:
    q: Queue[str] = Queue()
    for item in ["a", "b", "a", "a", "b", "c"]:
        q.add(item)
    assert q.len() == 3
    assert [run_now(q.get())[0] for _ in range(3)] == ["a", "b", "c"]


def test_an_item_being_processed_is_not_handed_out_again_until_done() -> None:
    q: Queue[str] = Queue()
    q.add("a")
    q.add("b")
    assert run_now(q.get()) == ("a", False)
    q.add("a")  # re-added while in process: held back, not queued
    q.add("a")
    assert q.len() == 1
    assert run_now(q.get()) == ("b", False)
    assert q.len() == 0
    q.done("a")
    assert q.len() == 1  # handed out again after done, once
    assert run_now(q.get()) == ("a", False)
    q.done("a")
    q.done("b")
    assert q.len() == 0


def test_done_without_readd_does_not_requeue() -> None:
    q: Queue[str] = Queue()
    q.add("a")
    run_now(q.get())
    q.done("a")
    assert q.len() == 0


def test_done_of_an_item_not_in_process_is_refused() -> None:
    q: Queue[str] = Queue()
    q.add("a")
    with pytest.raises(ValueError):
        q.done("a")  # queued, not handed out
    assert q.len() == 1
    run_now(q.get())
    q.done("a")
    with pytest.raises(ValueError):
        q.done("a")  # twice
    assert q.len() == 0


async def test_get_waits_for_an_add() -> None:
    q: Queue[str] = Queue()
    task = asyncio.create_task(q.get())
    await settle()
    assert not task.done()
    q.add("x")
    assert await finish(task) == ("x", False)


async def test_waiting_workers_are_served_in_arrival_order() -> None:
    q: Queue[int] = Queue()
    tasks = []
    for _ in range(3):
        tasks.append(asyncio.create_task(q.get()))
        await settle()
    for item in (10, 20, 30):
        q.add(item)
    assert [await finish(t) for t in tasks] == [(10, False), (20, False), (30, False)]


async def test_a_woken_worker_that_loses_the_race_keeps_its_place() -> None:
    q: Queue[int] = Queue()
    first = asyncio.create_task(q.get())
    await settle()
    second = asyncio.create_task(q.get())
    await settle()
    q.add(1)
    assert run_now(q.get()) == (1, False)  # a caller already running takes it first
    await settle()
    assert not first.done() and not second.done()
    q.add(2)
    assert await finish(first) == (2, False)
    q.add(3)
    assert await finish(second) == (3, False)


async def test_cancelled_waiting_worker_takes_nothing() -> None:
    q: Queue[str] = Queue()
    task = asyncio.create_task(q.get())
    await settle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    q.add("x")
    assert q.len() == 1
    assert await finish(q.get()) == ("x", False)


async def test_worker_cancelled_after_its_wake_up_passes_it_on() -> None:
    q: Queue[str] = Queue()
    doomed = asyncio.create_task(q.get())
    await settle()
    heir = asyncio.create_task(q.get())
    await settle()
    q.add("x")  # wakes ``doomed``...
    doomed.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert await finish(heir) == ("x", False)


async def test_a_worker_requeuing_its_own_item_does_not_starve_the_loop() -> None:
    q: Queue[str] = Queue()
    q.add("hot")
    other_task_turns = 0
    stop = asyncio.Event()

    async def other_task() -> None:
        nonlocal other_task_turns
        while not stop.is_set():
            other_task_turns += 1
            await asyncio.sleep(0)

    async def worker() -> None:
        for _ in range(100):
            item, _ = await q.get()
            assert item is not None
            q.add(item)  # processing fails at once and asks to run again
            q.done(item)

    spinner = asyncio.create_task(other_task())
    await settle()
    turns_before = other_task_turns
    await finish(worker(), turns=1000)
    stop.set()
    await finish(spinner)
    assert other_task_turns - turns_before >= 90


def test_shut_down_ignores_adds_and_still_hands_out_queued_items() -> None:
    q: Queue[str] = Queue()
    q.add("a")
    q.add("b")
    assert not q.shutting_down()
    q.shut_down()
    assert q.shutting_down()
    q.add("c")
    assert q.len() == 2
    assert run_now(q.get()) == ("a", False)
    assert run_now(q.get()) == ("b", False)
    assert run_now(q.get()) == (None, True)
    assert run_now(q.get()) == (None, True)


def test_item_readded_before_shut_down_is_requeued_by_done() -> None:
    q: Queue[str] = Queue()
    q.add("a")
    run_now(q.get())
    q.add("a")
    q.shut_down()
    q.done("a")
    assert run_now(q.get()) == ("a", False)
    q.done("a")
    assert run_now(q.get()) == (None, True)


async def test_shut_down_releases_every_waiting_worker() -> None:
    q: Queue[str] = Queue()
    tasks = [asyncio.create_task(q.get()) for _ in range(4)]
    await settle()
    assert not any(t.done() for t in tasks)
    q.shut_down()
    assert await finish(asyncio.gather(*tasks)) == [(None, True)] * 4


async def test_drain_waits_until_every_handed_out_item_is_done() -> None:
    q: Queue[str] = Queue()
    for item in ("a", "b"):
        q.add(item)
    await finish(q.get())
    await finish(q.get())
    drain = asyncio.create_task(q.shut_down_with_drain())
    await settle()
    assert q.shutting_down()
    assert not drain.done()
    q.add("c")
    assert q.len() == 0
    q.done("a")
    await settle()
    assert not drain.done()
    q.done("b")
    await finish(drain)


async def test_drain_with_nothing_in_process_returns_at_once() -> None:
    q: Queue[str] = Queue()
    await finish(q.shut_down_with_drain())
    assert await finish(q.get()) == (None, True)


async def test_plain_shut_down_ends_a_drain_wait() -> None:
    q: Queue[str] = Queue()
    q.add("a")
    await finish(q.get())
    drain = asyncio.create_task(q.shut_down_with_drain())
    await settle()
    assert not drain.done()
    q.shut_down()
    await finish(drain)


async def test_drain_while_workers_run_lets_them_finish_and_exit() -> None:
    q: Queue[int] = Queue()
    for item in range(10):
        q.add(item)
    processed: list[int] = []
    release = asyncio.Event()

    async def worker() -> None:
        while True:
            item, shutdown = await q.get()
            if shutdown:
                return
            await release.wait()
            assert item is not None
            processed.append(item)
            q.done(item)

    workers = [asyncio.create_task(worker()) for _ in range(3)]
    await settle()
    drain = asyncio.create_task(q.shut_down_with_drain())
    await settle()
    assert not drain.done()
    release.set()
    await finish(drain)
    await finish(asyncio.gather(*workers))
    assert sorted(processed) == list(range(10))


async def test_many_producers_and_workers_keep_the_contract() -> None:
    """20 producers add overlapping items while 8 workers process them."""
    q: Queue[int] = Queue()
    clock = itertools.count()  # a logical clock ordering adds and processing starts
    last_add: dict[int, int] = {}
    last_start: dict[int, int] = {}
    in_process: set[int] = set()
    overlaps: list[int] = []
    counts = {"adds": 0, "processed": 0, "max_parallel": 0}

    async def producer(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(150):
            item = rng.randrange(25)
            q.add(item)
            last_add[item] = next(clock)
            counts["adds"] += 1
            for _ in range(rng.randrange(3)):
                await asyncio.sleep(0)

    async def worker(seed: int) -> None:
        rng = random.Random(1000 + seed)
        while True:
            item, shutdown = await q.get()
            if shutdown:
                return
            assert item is not None
            if item in in_process:
                overlaps.append(item)
            in_process.add(item)
            last_start[item] = next(clock)
            counts["max_parallel"] = max(counts["max_parallel"], len(in_process))
            for _ in range(rng.randrange(5)):
                await asyncio.sleep(0)
            in_process.discard(item)
            counts["processed"] += 1
            q.done(item)

    workers = [asyncio.create_task(worker(i)) for i in range(8)]
    await finish(asyncio.gather(*(producer(i) for i in range(20))), turns=100_000)
    await finish(q.shut_down_with_drain(), turns=100_000)
    await finish(asyncio.gather(*workers), turns=100_000)

    assert overlaps == []
    assert counts["max_parallel"] >= 2
    assert counts["processed"] < counts["adds"]  # adds were coalesced
    assert set(last_start) == set(last_add)
    stale = sorted(item for item, added in last_add.items() if last_start[item] < added)
    assert stale == []  # every add after an item's last start was processed again
    assert q.len() == 0
