"""Waiting one's turn: keys under a prefix are served in create-revision order.

A lock or an election is a prefix under which every contender creates one key
(bound to its session's lease). The key with the smallest create revision is
the holder; the others wait in line, each for the key created just before its
own (``wait_turn``), never for the whole prefix, so one deletion wakes one
waiter, not all of them (no herd effect). A contender that dies loses its key
with its lease, and the one behind it moves up.

Waits never miss a change: each watch starts at the revision right after the
read it follows. A watch that ends early (compaction overtook it, or its
start revision is already compacted) just makes the caller look again.
"""

from __future__ import annotations

from kvstore.errors import Compacted
from kvstore.mvcc.types import EventType, KeyValue, SortOrder, SortTarget
from kvstore.recipes.kv import KV, close_stream

__all__ = ["first_created", "last_created_before", "wait_event", "wait_turn"]


async def first_created(kv: KV, prefix: bytes) -> tuple[KeyValue | None, int]:
    """The oldest live key under ``prefix`` (the holder) and the read's revision."""
    res = await kv.range(
        prefix, prefix=True, limit=1, sort_order=SortOrder.ASCEND, sort_target=SortTarget.CREATE
    )
    return (res.kvs[0] if res.kvs else None), res.header_revision


async def last_created_before(kv: KV, prefix: bytes, revision: int) -> tuple[KeyValue | None, int]:
    """The newest key under ``prefix`` created before ``revision``, and the read's revision.

    The store has no "created before" filter, so this reads the keys (not the
    values) of the whole line; lines are as long as the number of contenders.
    """
    res = await kv.range(
        prefix, prefix=True, keys_only=True,
        sort_order=SortOrder.DESCEND, sort_target=SortTarget.CREATE,
    )
    for kv_ in res.kvs:
        if kv_.create_revision < revision:
            return kv_, res.header_revision
    return None, res.header_revision


async def wait_event(
    kv: KV,
    key: bytes,
    range_end: bytes | None = None,
    *,
    after_revision: int,
    kind: EventType,
) -> bool:
    """Wait for an event of ``kind`` on ``key`` (or ``[key, range_end)``) after ``after_revision``.

    Returns:
        True when such an event happened; False when the watch ended first
        (compaction), so the caller must read the state again.
    """
    try:
        stream = await kv.watch(key, range_end, start_revision=after_revision + 1)
    except Compacted:
        return False
    try:
        async for resp in stream:
            if any(ev.type == kind for ev in resp.events):
                return True
            if resp.canceled:
                return False
    except Compacted:
        return False
    finally:
        await close_stream(stream)
    return False


async def wait_turn(kv: KV, prefix: bytes, revision: int) -> None:
    """Return once no key under ``prefix`` was created before ``revision``.

    ``revision`` is the create revision of the caller's own key. Each round
    waits for the deletion of the key just ahead in line only.
    """
    while True:
        ahead, read_revision = await last_created_before(kv, prefix, revision)
        if ahead is None:
            return
        await wait_event(kv, ahead.key, after_revision=read_revision, kind=EventType.DELETE)

