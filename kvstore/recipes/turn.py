"""Waiting one's turn: keys under a prefix are served in create-revision order.

A lock or an election is a prefix under which every contender creates one key
(bound to its session's lease): ``join`` creates it (only if absent) and reads
who is first, ``leave`` deletes it (only if it is still the same key). The key
with the smallest create revision is the holder; the others wait in line, each
for the key created just before its own (``wait_turn``), never for the whole
prefix, so one deletion wakes one waiter, not all of them (no herd effect). A
contender that dies loses its key with its lease, and the one behind it moves
up.

Waits never miss a change: each watch starts at the revision right after the
read it follows. A watch that ends early (compaction overtook it, or its
start revision is already compacted) just makes the caller look again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kvstore.errors import Compacted, InvariantError, KvError, LeaseNotFound
from kvstore.mvcc.request import CompareTarget, compare, op_delete, op_put, op_range
from kvstore.mvcc.types import EventType, KeyValue, SortOrder, SortTarget
from kvstore.recipes.errors import SessionExpired
from kvstore.kv import KV, close_stream
from kvstore.recipes.kv import range_response

__all__ = [
    "Place",
    "first_created",
    "is_still_mine",
    "join",
    "last_created_before",
    "leave",
    "wait_event",
    "wait_turn",
    "withdraw",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Place:
    """A contender's place in line, as ``join`` found it.

    ``revision`` is the create revision of our key (our rank in line);
    ``created`` says this call created the key (rather than finding it from an
    earlier call with the same lease); ``value`` is our key's value; ``holder``
    is the first key in line at that moment.
    """

    key: bytes
    revision: int
    created: bool
    value: bytes
    holder: KeyValue | None

    @property
    def is_first(self) -> bool:
        """True if our key was first in line when we joined."""
        return self.holder is not None and self.holder.create_revision == self.revision


async def join(kv: KV, prefix: bytes, key: bytes, value: bytes, lease: int) -> Place:
    """Create ``key`` (under ``prefix``, bound to ``lease``) unless it exists, and read the line.

    Raises:
        SessionExpired: the lease no longer exists.
    """
    holder = op_range(
        prefix, prefix=True, limit=1, sort_order=SortOrder.ASCEND, sort_target=SortTarget.CREATE
    )
    try:
        res = await kv.txn(
            [compare(key, CompareTarget.CREATE, "=", 0)],
            [op_put(key, value, lease=lease), holder],
            [op_range(key), holder],
        )
    except LeaseNotFound:
        raise SessionExpired(lease) from None
    first = range_response(res.responses[1]).kvs
    head = first[0] if first else None
    if res.succeeded:
        return Place(key, res.header_revision, True, value, head)
    mine = range_response(res.responses[0]).kvs
    if not mine:
        raise InvariantError(f"the txn found {key!r} both present and absent")
    return Place(key, mine[0].create_revision, False, mine[0].value, head)


async def leave(kv: KV, key: bytes, revision: int) -> bool:
    """Delete ``key`` if it is still the one created at ``revision``; True if it was."""
    res = await kv.txn([compare(key, CompareTarget.CREATE, "=", revision)], [op_delete(key)], [])
    return res.succeeded


async def withdraw(kv: KV, place: Place) -> None:
    """Leave the line after a failed wait; if even that fails, the lease will remove the key."""
    try:
        await leave(kv, place.key, place.revision)
    except KvError as e:
        logger.warning("could not withdraw %r from its line: %s", place.key, e)


async def is_still_mine(kv: KV, key: bytes, revision: int) -> bool:
    """True if ``key`` exists and was created at ``revision`` (our lease has not lost it)."""
    current = await kv.get(key)
    return current is not None and current.create_revision == revision


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

