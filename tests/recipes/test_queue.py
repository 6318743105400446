"""Queue: creation order, exactly-once delivery to competing consumers, blocking dequeue."""

from __future__ import annotations

import asyncio

import pytest

from kvstore.errors import InvalidRequest
from kvstore.node import Node
from kvstore.recipes import Queue
from tests.recipes.support import RecordingKV, within


async def test_one_consumer_gets_items_in_enqueue_order(kv: Node) -> None:
    queue = Queue(kv, "/jobs")
    keys = [await queue.enqueue(f"job-{i}") for i in range(10)]
    assert keys == sorted(keys) and len(set(keys)) == 10
    assert await queue.size() == 10
    assert [await queue.dequeue() for _ in range(10)] == [f"job-{i}".encode() for i in range(10)]
    assert await queue.size() == 0


async def test_item_numbers_follow_revisions_and_never_exceed_the_create_revision(kv: Node) -> None:
    queue = Queue(kv, "/jobs")
    await kv.put("/unrelated", "moves the revision")
    for _ in range(3):
        key = await queue.enqueue("x")
        item = await kv.get(key)
        assert item is not None
        number = int(key.rsplit(b"/", 1)[1])
        assert len(key.rsplit(b"/", 1)[1]) == 20
        assert number <= item.create_revision
        assert number > item.create_revision - 2  # read at r, created at r + 1 when uncontended


async def test_dequeue_waits_for_an_item(kv: Node) -> None:
    recorder = RecordingKV(kv)
    queue = Queue(recorder, "/jobs")
    taking = asyncio.ensure_future(queue.dequeue())
    await within(recorder.watched.wait())  # the consumer is watching the empty queue
    assert not taking.done()
    await Queue(kv, "/jobs").enqueue("late")
    assert await within(taking) == b"late"


async def test_producers_and_consumers_deliver_every_item_exactly_once(kv: Node) -> None:
    producers, per_producer, consumers = 4, 25, 3
    total = producers * per_producer
    got: list[list[bytes]] = [[] for _ in range(consumers)]
    remaining = total

    async def produce(p: int) -> None:
        queue = Queue(kv, "/jobs")
        for i in range(per_producer):
            await queue.enqueue(f"{p}:{i:03d}")

    async def consume(c: int) -> None:
        nonlocal remaining
        queue = Queue(kv, "/jobs")
        while remaining > 0:
            remaining -= 1
            got[c].append(await queue.dequeue())

    consuming = [asyncio.ensure_future(consume(c)) for c in range(consumers)]
    await within(asyncio.gather(*(produce(p) for p in range(producers))), 60)
    await within(asyncio.gather(*consuming), 60)
    delivered = [item for items in got for item in items]
    assert len(delivered) == total
    assert sorted(delivered) == sorted(f"{p}:{i:03d}".encode() for p in range(producers) for i in range(per_producer))
    # Each consumer sees each producer's items in the order they were produced.
    for items in got:
        for p in range(producers):
            mine = [x for x in items if x.startswith(f"{p}:".encode())]
            assert mine == sorted(mine)
    assert await Queue(kv, "/jobs").size() == 0


async def test_concurrent_producers_then_one_consumer_get_global_creation_order(kv: Node) -> None:
    async def produce(p: int) -> list[bytes]:
        queue = Queue(kv, "/jobs")
        return [await queue.enqueue(f"{p}:{i}") for i in range(10)]

    await asyncio.gather(*(produce(p) for p in range(4)))
    by_creation = sorted((await kv.range(b"/jobs/", prefix=True)).kvs, key=lambda kv_: kv_.create_revision)
    queue = Queue(kv, "/jobs")
    assert [await queue.dequeue() for _ in range(40)] == [item.value for item in by_creation]


async def test_keys_outside_the_item_range_are_ignored(kv: Node) -> None:
    await kv.put("/jobs/meta", "not an item")
    queue = Queue(kv, "/jobs")
    await queue.enqueue("a")
    assert await queue.size() == 1
    assert await queue.dequeue() == b"a"
    assert await kv.get("/jobs/meta") is not None


async def test_a_foreign_key_in_the_item_range_is_reported(kv: Node) -> None:
    await kv.put("/jobs/9-not-a-number", "x")
    with pytest.raises(InvalidRequest):
        await Queue(kv, "/jobs").enqueue("a")
