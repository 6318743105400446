"""Reflector: list then watch, relist on Gone, backoff with jitter, bookmarks, no going back."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest

from controllers.clock import FakeClock
from controllers.informers import Backoff, Indexer, Reflector
from tests.controllers.informers.fakes import (
    FakeListerWatcher,
    bookmark,
    event,
    eventually,
    gone,
    obj,
)

Running = tuple[FakeListerWatcher, Indexer, Reflector, FakeClock]


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    lw = FakeListerWatcher([obj("a", 3), obj("b", 4)], rv=5)
    store = Indexer()
    clock = FakeClock()
    r = Reflector(lw, store, clock=clock, rng=random.Random(1))
    task = asyncio.create_task(r.run())
    try:
        yield lw, store, r, clock
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_lists_then_watches_from_the_list_version(running: Running) -> None:
    lw, store, r, _ = running
    await eventually(lambda: len(lw.watches) == 1, "the watch")
    assert store.list_keys() == ["default/a", "default/b"]
    assert lw.watch_rvs == ["5"]
    lw.current.send(event("ADDED", obj("c", 6)))
    lw.current.send(event("MODIFIED", obj("a", 7)))
    lw.current.send(event("DELETED", obj("b", 8)))
    await eventually(lambda: r.last_sync_resource_version() == "8", "rv 8")
    assert store.list_keys() == ["default/a", "default/c"]
    a = store.get_by_key("default/a")
    assert a is not None and a["metadata"]["resourceVersion"] == "7"


async def test_bookmark_moves_the_resource_version_and_rewatch_uses_it(running: Running) -> None:
    lw, _, r, _ = running
    await eventually(lambda: len(lw.watches) == 1, "the watch")
    lw.current.send(bookmark(42))
    await eventually(lambda: r.last_sync_resource_version() == "42", "rv 42")
    lw.current.send(None)  # the watch ends cleanly: watch again, no relist
    await eventually(lambda: len(lw.watches) == 2, "a second watch")
    assert lw.watch_rvs == ["5", "42"]
    assert lw.list_calls == 1


async def test_gone_relists_at_once_and_watches_from_the_new_list(running: Running) -> None:
    lw, store, _, clock = running
    await eventually(lambda: len(lw.watches) == 1, "the watch")
    lw.items = [obj("a", 3), obj("z", 9)]
    lw.rv = 10
    lw.current.send(gone())
    await eventually(lambda: len(lw.watches) == 2, "a watch after the relist")
    assert lw.list_calls == 2
    assert lw.watch_rvs == ["5", "10"]
    assert store.list_keys() == ["default/a", "default/z"]
    assert clock.pending_timers() == 0  # no backoff for Gone


async def test_gone_when_opening_the_watch_relists(running: Running) -> None:
    lw, _, _, _ = running
    await eventually(lambda: len(lw.watches) == 1, "the watch")
    lw.watch_errors.append(gone())
    lw.rv = 12
    lw.current.send(None)
    await eventually(lambda: len(lw.watches) == 2, "a watch after the relist")
    assert lw.watch_rvs == ["5", "5", "12"]
    assert lw.list_calls == 2


async def test_a_list_older_than_what_was_seen_is_refused(running: Running) -> None:
    lw, store, r, clock = running
    await eventually(lambda: len(lw.watches) == 1, "the watch")
    lw.current.send(event("ADDED", obj("c", 20)))
    await eventually(lambda: r.last_sync_resource_version() == "20", "rv 20")
    lw.rv = 15  # a lagging endpoint
    lw.items = []
    lw.current.send(gone())
    await eventually(lambda: r.errors == 1, "the stale list to be refused")
    assert "default/c" in store.list_keys()
    assert r.last_sync_resource_version() == "20"
    lw.rv = 21
    deadline = clock.next_deadline()
    assert deadline is not None
    clock.advance(deadline - clock.now())
    await eventually(lambda: len(lw.watches) == 2, "a watch after the good list")
    assert store.list_keys() == []
    assert lw.watch_rvs[-1] == "21"


async def test_errors_back_off_with_growing_jittered_delays_on_the_clock() -> None:
    lw = FakeListerWatcher([], rv=1)
    lw.list_errors = [RuntimeError("down")] * 3
    clock = FakeClock()
    rng = random.Random(4)
    r = Reflector(lw, Indexer(), clock=clock,
                  backoff=Backoff(rng, initial=1.0, factor=2.0, cap=3.0, jitter=0.5))
    expected = random.Random(4)
    bases = [1.0, 2.0, 3.0]
    task = asyncio.create_task(r.run())
    try:
        for n, base in enumerate(bases, start=1):
            await eventually(lambda n=n: r.errors == n and clock.pending_timers() == 1,  # type: ignore[misc]
                             f"error {n}")
            delay = base * (1 + 0.5 * expected.random())
            clock.advance(delay - 1e-6)
            await asyncio.sleep(0)
            assert lw.list_calls == n  # not yet
            clock.advance(1e-6)
            await eventually(lambda n=n: lw.list_calls == n + 1, f"retry {n}")  # type: ignore[misc]
        await eventually(lambda: len(lw.watches) == 1, "the watch")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_backoff_caps_and_resets() -> None:
    b = Backoff(random.Random(0), initial=1.0, factor=10.0, cap=5.0, jitter=0.0)
    assert [b.next_delay() for _ in range(3)] == [1.0, 5.0, 5.0]
    b.reset()
    assert b.next_delay() == 1.0


async def test_an_event_without_a_key_is_skipped(running: Running) -> None:
    lw, store, r, _ = running
    await eventually(lambda: len(lw.watches) == 1, "the watch")
    lw.current.send(event("ADDED", {"metadata": {"resourceVersion": "6"}}))
    lw.current.send(event("ADDED", obj("c", 7)))
    await eventually(lambda: r.last_sync_resource_version() == "7", "rv 7")
    assert store.list_keys() == ["default/a", "default/b", "default/c"]
    assert r.errors == 0 and len(lw.watches) == 1
