"""SharedInformer over a scripted lister-watcher: handlers, ordering, resync, sync, freezing."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from controllers.api.errors import NotFound
from controllers.clock import FakeClock
from controllers.informers import (
    DeletedFinalStateUnknown,
    ResourceEventHandlerFuncs,
    SharedInformer,
    wait_for_cache_sync,
)
from tests.controllers.informers.fakes import (
    DEADLINE,
    FakeListerWatcher,
    bookmark,
    event,
    eventually,
    gone,
    obj,
)


class Recorder:
    """Records notifications as (kind, name, rv) tuples."""

    def __init__(self) -> None:
        self.seen: list[tuple[Any, ...]] = []

    def on_add(self, o: Any, is_in_initial_list: bool) -> None:
        self.seen.append(("add", o["metadata"]["name"], o["metadata"]["resourceVersion"],
                          is_in_initial_list))

    def on_update(self, old: Any, new: Any) -> None:
        self.seen.append(("update", new["metadata"]["name"], old["metadata"]["resourceVersion"],
                          new["metadata"]["resourceVersion"]))

    def on_delete(self, o: Any) -> None:
        if isinstance(o, DeletedFinalStateUnknown):
            self.seen.append(("tombstone", o.key))
        else:
            self.seen.append(("delete", o["metadata"]["name"], o["metadata"]["resourceVersion"]))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def lw() -> FakeListerWatcher:
    return FakeListerWatcher([obj("a", 1), obj("b", 2)], rv=2)


@pytest.fixture
async def informer(lw: FakeListerWatcher, clock: FakeClock) -> AsyncIterator[SharedInformer]:
    inf = SharedInformer(lw, clock=clock, rng=random.Random(0), resource="configmaps")
    try:
        yield inf
    finally:
        await inf.stop()


async def test_initial_list_then_events_in_order(
        informer: SharedInformer, lw: FakeListerWatcher) -> None:
    rec = Recorder()
    informer.add_event_handler(rec)
    assert not informer.has_synced()
    informer.start()
    await asyncio.wait_for(wait_for_cache_sync(informer), DEADLINE)
    assert informer.has_synced()
    await eventually(lambda: len(lw.watches) == 1, "the watch")
    lw.current.send(event("MODIFIED", obj("a", 3)))
    lw.current.send(event("ADDED", obj("c", 4)))
    lw.current.send(event("MODIFIED", obj("a", 5)))
    lw.current.send(event("DELETED", obj("a", 6)))
    await eventually(lambda: len(rec.seen) == 6, "six notifications")
    assert rec.seen[:2] == [("add", "a", "1", True), ("add", "b", "2", True)]
    # Each object's changes arrive in order (objects may interleave differently).
    assert [e for e in rec.seen[2:] if e[1] == "a"] == [
        ("update", "a", "1", "3"), ("update", "a", "3", "5"), ("delete", "a", "6")]
    assert [e for e in rec.seen[2:] if e[1] == "c"] == [("add", "c", "4", False)]
    lister = informer.lister()
    assert [o["metadata"]["name"] for o in lister.list()] == ["b", "c"]
    assert lister.get("default", "c")["metadata"]["resourceVersion"] == "4"
    with pytest.raises(NotFound):
        lister.get("default", "a")


async def test_cache_is_updated_before_handlers_are_told(informer: SharedInformer) -> None:
    cached: list[bool] = []

    def on_add(o: Any, initial: bool) -> None:
        cached.append(informer.indexer.get(o) is not None)

    informer.add_event_handler(ResourceEventHandlerFuncs(add=on_add))
    informer.start()
    await eventually(lambda: len(cached) == 2, "two adds")
    assert cached == [True, True]


async def test_a_slow_handler_does_not_block_another(
        informer: SharedInformer, lw: FakeListerWatcher) -> None:
    gate = asyncio.Event()
    slow: list[str] = []
    fast = Recorder()

    async def slow_add(o: Any, initial: bool) -> None:
        await gate.wait()
        slow.append(o["metadata"]["name"])

    informer.add_event_handler(ResourceEventHandlerFuncs(add=slow_add))
    informer.add_event_handler(fast)
    informer.start()
    await eventually(lambda: len(lw.watches) == 1, "the watch")
    lw.current.send(event("ADDED", obj("c", 3)))
    await eventually(lambda: len(fast.seen) == 3, "the fast handler")
    assert slow == []
    assert not informer.handlers_idle()
    gate.set()
    await eventually(lambda: slow == ["a", "b", "c"], "the slow handler")
    assert informer.handlers_idle()


async def test_a_failing_handler_carries_on(informer: SharedInformer) -> None:
    seen: list[str] = []

    def on_add(o: Any, initial: bool) -> None:
        seen.append(o["metadata"]["name"])
        if o["metadata"]["name"] == "a":
            raise RuntimeError("handler bug")

    informer.add_event_handler(ResourceEventHandlerFuncs(add=on_add))
    informer.start()
    await eventually(lambda: seen == ["a", "b"], "both adds")


async def test_relist_after_gone_tombstones_and_skips_unchanged(
        informer: SharedInformer, lw: FakeListerWatcher) -> None:
    rec = Recorder()
    informer.add_event_handler(rec)
    informer.start()
    await eventually(lambda: len(lw.watches) == 1, "the watch")
    lw.items = [obj("a", 1), obj("b", 7), obj("d", 8)]  # c never seen, a unchanged
    lw.rv = 9
    lw.current.send(gone())
    await eventually(lambda: len(rec.seen) == 4, "the relist notifications")
    assert rec.seen[2:] == [("update", "b", "2", "7"), ("add", "d", "8", False)]
    lw.items = [obj("d", 8)]
    lw.rv = 10
    lw.current.send(gone())
    await eventually(lambda: len(rec.seen) == 6, "the tombstones")
    assert rec.seen[4:] == [("tombstone", "default/a"), ("tombstone", "default/b")]
    assert informer.indexer.list_keys() == ["default/d"]


async def test_resync_redelivers_updates_on_the_handler_period(
        informer: SharedInformer, clock: FakeClock) -> None:
    every10 = Recorder()
    never = Recorder()
    informer.add_event_handler(every10, resync_period=10.0)
    informer.add_event_handler(never)
    informer.start()
    await eventually(lambda: len(every10.seen) == 2 and len(never.seen) == 2, "initial adds")
    clock.advance(9.0)
    await asyncio.sleep(0)
    assert len(every10.seen) == 2
    clock.advance(1.0)
    await eventually(lambda: len(every10.seen) == 4, "the resync")
    assert every10.seen[2:] == [("update", "a", "1", "1"), ("update", "b", "2", "2")]
    clock.advance(10.0)
    await eventually(lambda: len(every10.seen) == 6, "the second resync")
    assert never.seen == [("add", "a", "1", True), ("add", "b", "2", True)]


async def test_a_late_handler_gets_the_cache_as_initial_adds(
        informer: SharedInformer, lw: FakeListerWatcher) -> None:
    informer.start()
    await asyncio.wait_for(informer.wait_for_cache_sync(), DEADLINE)
    late = Recorder()
    reg = informer.add_event_handler(late)
    await eventually(lambda: len(late.seen) == 2, "the replayed adds")
    assert late.seen == [("add", "a", "1", True), ("add", "b", "2", True)]
    informer.remove_event_handler(reg)
    await eventually(lambda: len(lw.watches) == 1, "the watch")
    lw.current.send(event("ADDED", obj("c", 3)))
    await eventually(lambda: informer.indexer.get_by_key("default/c") is not None, "c cached")
    assert len(late.seen) == 2


async def test_wait_for_resource_version(informer: SharedInformer, lw: FakeListerWatcher) -> None:
    informer.start()
    await eventually(lambda: len(lw.watches) == 1, "the watch")
    waiter = asyncio.create_task(informer.wait_for_resource_version("5"))
    lw.current.send(event("ADDED", obj("c", 4)))
    await eventually(lambda: informer.indexer.get_by_key("default/c") is not None, "c cached")
    assert not waiter.done()
    lw.current.send(event("MODIFIED", obj("c", 5)))
    await asyncio.wait_for(waiter, DEADLINE)
    assert informer.lister().get("default", "c")["metadata"]["resourceVersion"] == "5"
    # A bookmark past the target counts too.
    waiter = asyncio.create_task(informer.wait_for_resource_version(9))
    await asyncio.sleep(0)
    assert not waiter.done()
    lw.current.send(bookmark(9))
    await asyncio.wait_for(waiter, DEADLINE)


async def test_frozen_objects_fail_loudly_on_mutation(
        lw: FakeListerWatcher, clock: FakeClock) -> None:
    inf = SharedInformer(lw, clock=clock, freeze_objects=True)
    errors: list[BaseException] = []

    def on_add(o: Any, initial: bool) -> None:
        try:
            o["metadata"]["labels"] = {"mutated": "yes"}
        except TypeError as e:
            errors.append(e)

    inf.add_event_handler(ResourceEventHandlerFuncs(add=on_add))
    inf.start()
    try:
        await eventually(lambda: len(errors) == 2, "two refused mutations")
        cached = inf.lister().get("default", "a")
        with pytest.raises(TypeError):
            cached["data"]["v"] = "x"
        assert "labels" not in cached["metadata"]
    finally:
        await inf.stop()


async def test_freezing_follows_the_environment(
        lw: FakeListerWatcher, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEERSMAN_INFORMER_FREEZE", "1")
    assert SharedInformer(lw, clock=FakeClock()).freeze_objects
    monkeypatch.delenv("STEERSMAN_INFORMER_FREEZE")
    assert not SharedInformer(lw, clock=FakeClock()).freeze_objects


async def test_run_twice_is_refused(informer: SharedInformer) -> None:
    informer.start()
    await asyncio.wait_for(informer.wait_for_cache_sync(), DEADLINE)
    with pytest.raises(RuntimeError):
        await informer.run()
