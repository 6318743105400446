"""The controllers' clocks: FakeClock fires timers in order as it advances; RealClock uses the loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from controllers.clock import Clock, FakeClock, RealClock
from kvstore.clock import FakeClock as PassiveFakeClock
from tests.controllers.workqueue.loop import finish


def test_fake_clock_is_a_passive_fake_clock() -> None:
    clock = FakeClock(start=10.0)
    assert isinstance(clock, PassiveFakeClock)
    assert clock.now() == 10.0
    clock.advance(2.5)
    assert clock.now() == 12.5
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_timers_fire_in_deadline_order_then_scheduling_order() -> None:
    clock = FakeClock()
    fired: list[tuple[str, float]] = []

    def recorder(name: str) -> Callable[[], None]:
        return lambda: fired.append((name, clock.now()))

    for name, when in [("c", 3.0), ("a", 1.0), ("b1", 2.0), ("b2", 2.0), ("late", 9.0)]:
        clock.call_at(when, recorder(name))
    clock.advance(1.0)
    assert fired == [("a", 1.0)]
    clock.advance(2.5)
    assert fired == [("a", 1.0), ("b1", 2.0), ("b2", 2.0), ("c", 3.0)]
    assert clock.now() == 3.5
    assert clock.next_deadline() == 9.0
    assert clock.pending_timers() == 1


def test_cancelled_timer_does_not_fire() -> None:
    clock = FakeClock()
    fired: list[str] = []
    keep = clock.call_at(1.0, lambda: fired.append("keep"))
    drop = clock.call_at(0.5, lambda: fired.append("drop"))
    drop.cancel()
    assert clock.next_deadline() == 1.0
    assert clock.pending_timers() == 1
    clock.advance(5)
    assert fired == ["keep"]
    keep.cancel()  # after firing: harmless
    assert clock.next_deadline() is None
    assert clock.pending_timers() == 0


def test_timer_scheduled_by_a_callback_fires_within_the_same_advance() -> None:
    clock = FakeClock()
    fired: list[float] = []

    def first() -> None:
        fired.append(clock.now())
        clock.call_at(clock.now() + 1.0, lambda: fired.append(clock.now()))
        clock.call_at(clock.now() + 10.0, lambda: fired.append(clock.now()))

    clock.call_at(1.0, first)
    clock.advance(3.0)
    assert fired == [1.0, 2.0]
    assert clock.now() == 3.0
    assert clock.next_deadline() == 11.0


def test_past_deadline_fires_on_next_advance() -> None:
    clock = FakeClock(start=5.0)
    fired: list[float] = []
    clock.call_at(1.0, lambda: fired.append(clock.now()))
    clock.advance(0)
    assert fired == [5.0]


async def test_fake_sleep_wakes_when_time_is_advanced() -> None:
    clock = FakeClock()
    woke: list[float] = []

    async def sleeper(seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(clock.now())

    tasks = [asyncio.create_task(sleeper(s)) for s in (2.0, 1.0)]
    await asyncio.sleep(0)
    assert clock.pending_timers() == 2
    clock.advance(1.5)
    await asyncio.sleep(0)
    assert woke == [1.5]
    assert not tasks[0].done()
    clock.advance(0.5)
    await finish(asyncio.gather(*tasks))
    assert woke == [1.5, 2.0]


async def test_fake_sleep_cancelled_drops_its_timer() -> None:
    clock = FakeClock()
    task = asyncio.create_task(clock.sleep(1.0))
    await asyncio.sleep(0)
    assert clock.pending_timers() == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.pending_timers() == 0


async def test_fake_sleep_of_zero_just_yields() -> None:
    clock = FakeClock()
    await clock.sleep(0)
    await clock.sleep(-1)
    assert clock.pending_timers() == 0
    assert clock.now() == 0.0


async def test_real_clock_fires_a_due_timer_on_the_loop() -> None:
    clock: Clock = RealClock()
    fired: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    clock.call_at(clock.now() - 1.0, lambda: fired.set_result(clock.now()))
    assert not fired.done()
    assert await finish(fired) > 0


async def test_real_clock_cancelled_timer_does_not_fire() -> None:
    clock = RealClock()
    fired: list[int] = []
    clock.call_at(clock.now() - 1.0, lambda: fired.append(1)).cancel()
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    clock.call_at(clock.now() - 1.0, lambda: done.set_result(None))
    await finish(done)
    assert fired == []
    await clock.sleep(0)
    await clock.sleep(-3)


def test_real_clock_timers_need_a_running_loop() -> None:
    with pytest.raises(RuntimeError):
        RealClock().call_at(0.0, lambda: None)
