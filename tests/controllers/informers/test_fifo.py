"""DeltaFIFO: deltas per key, tombstones on replace, dedup of deletes, pop, has_synced."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from controllers.informers import (
    DeletedFinalStateUnknown,
    Delta,
    DeltaFIFO,
    DeltaType,
    FIFOClosedError,
    Indexer,
)
from tests.controllers.informers.fakes import DEADLINE, obj


def check_invariant(fifo: DeltaFIFO) -> None:
    """A key is in the queue iff it has deltas, at most once, with at least one delta."""
    keys = fifo.list_keys()
    assert len(keys) == len(set(keys))
    assert sorted(keys) == sorted(fifo._items)
    assert all(fifo._items[k] for k in keys)


async def pop_all(fifo: DeltaFIFO) -> list[tuple[str, list[DeltaType], bool]]:
    out: list[tuple[str, list[DeltaType], bool]] = []

    def process(deltas: list[Delta], initial: bool) -> None:
        out.append((fifo.key_of(deltas), [d.type for d in deltas], initial))

    while len(fifo):
        await fifo.pop(process)
        check_invariant(fifo)
    return out


async def test_deltas_accumulate_per_key_in_fifo_order() -> None:
    fifo = DeltaFIFO()
    fifo.add(obj("a", 1))
    fifo.add(obj("b", 2))
    fifo.update(obj("a", 3))
    fifo.delete(obj("a", 4))
    check_invariant(fifo)
    assert fifo.list_keys() == ["default/a", "default/b"]
    popped = await pop_all(fifo)
    assert popped == [
        ("default/a", [DeltaType.ADDED, DeltaType.UPDATED, DeltaType.DELETED], False),
        ("default/b", [DeltaType.ADDED], False),
    ]


async def test_consecutive_deletes_collapse_keeping_the_real_object() -> None:
    known = Indexer()
    known.add(obj("a", 1))
    fifo = DeltaFIFO(known_objects=known)
    fifo.replace([], "5")  # tombstone for a
    fifo.delete(obj("a", 6))  # the real deletion
    deltas = fifo.get_by_key("default/a")
    assert deltas is not None and len(deltas) == 1
    assert deltas[0].type == DeltaType.DELETED
    assert deltas[0].object["metadata"]["resourceVersion"] == "6"
    check_invariant(fifo)


async def test_delete_of_unknown_object_queues_nothing() -> None:
    fifo = DeltaFIFO(known_objects=Indexer())
    fifo.delete(obj("ghost", 3))
    assert len(fifo) == 0


async def test_replace_tombstones_known_objects_missing_from_the_list() -> None:
    known = Indexer()
    known.add(obj("a", 1))
    known.add(obj("b", 1))
    fifo = DeltaFIFO(known_objects=known)
    fifo.replace([obj("a", 7), obj("c", 7)], "7")
    check_invariant(fifo)
    b = fifo.get_by_key("default/b")
    assert b is not None and b[0].type == DeltaType.DELETED
    tomb = b[0].object
    assert isinstance(tomb, DeletedFinalStateUnknown)
    assert tomb.key == "default/b" and tomb.obj["metadata"]["resourceVersion"] == "1"
    a = fifo.get_by_key("default/a")
    assert a is not None and [d.type for d in a] == [DeltaType.REPLACED]


async def test_replace_without_known_objects_tombstones_queued_ones() -> None:
    fifo = DeltaFIFO()
    fifo.add(obj("a", 1))
    fifo.replace([obj("b", 2)], "2")
    a = fifo.get_by_key("default/a")
    assert a is not None and [d.type for d in a] == [DeltaType.ADDED, DeltaType.DELETED]
    assert isinstance(a[-1].object, DeletedFinalStateUnknown)


async def test_has_synced_after_the_initial_replace_is_popped() -> None:
    fifo = DeltaFIFO(known_objects=Indexer())
    assert not fifo.has_synced()
    fifo.replace([obj("a", 1), obj("b", 1)], "1")
    assert not fifo.has_synced()
    fifo.add(obj("c", 2))  # after the list: not part of the initial population
    seen: list[bool] = []
    await fifo.pop(lambda d, initial: seen.append(initial))
    assert not fifo.has_synced()
    await fifo.pop(lambda d, initial: seen.append(initial))
    assert fifo.has_synced()
    await fifo.pop(lambda d, initial: seen.append(initial))
    assert seen == [True, True, False]


async def test_has_synced_with_an_empty_initial_list() -> None:
    fifo = DeltaFIFO(known_objects=Indexer())
    fifo.replace([], "1")
    assert fifo.has_synced()


async def test_resync_queues_sync_only_for_keys_without_pending_deltas() -> None:
    known = Indexer()
    known.add(obj("a", 1))
    known.add(obj("b", 1))
    fifo = DeltaFIFO(known_objects=known)
    fifo.update(obj("a", 2))
    fifo.resync()
    a = fifo.get_by_key("default/a")
    b = fifo.get_by_key("default/b")
    assert a is not None and [d.type for d in a] == [DeltaType.UPDATED]
    assert b is not None and [d.type for d in b] == [DeltaType.SYNC]


async def test_pop_waits_for_an_item_and_requeues_nothing_on_error() -> None:
    fifo = DeltaFIFO()
    got: list[Any] = []
    waiter = asyncio.create_task(fifo.pop(lambda d, i: got.append(d)))
    await asyncio.sleep(0)
    assert not waiter.done()
    fifo.add(obj("a", 1))
    await asyncio.wait_for(waiter, DEADLINE)
    assert len(got) == 1

    def boom(deltas: list[Delta], initial: bool) -> None:
        raise RuntimeError("processing failed")

    fifo.add(obj("b", 1))
    with pytest.raises(RuntimeError):
        await fifo.pop(boom)
    assert len(fifo) == 0
    check_invariant(fifo)


async def test_new_deltas_during_processing_come_out_in_a_later_pop() -> None:
    fifo = DeltaFIFO()
    fifo.add(obj("a", 1))

    async def process(deltas: list[Delta], initial: bool) -> None:
        fifo.update(obj("a", 2))
        await asyncio.sleep(0)

    await fifo.pop(process)
    later = fifo.get_by_key("default/a")
    assert later is not None and [d.type for d in later] == [DeltaType.UPDATED]
    check_invariant(fifo)


async def test_close_wakes_pop() -> None:
    fifo = DeltaFIFO()
    waiter = asyncio.create_task(fifo.pop(lambda d, i: None))
    await asyncio.sleep(0)
    fifo.close()
    with pytest.raises(FIFOClosedError):
        await asyncio.wait_for(waiter, DEADLINE)
