"""A FIFO queue in the store: many producers, many consumers, each item delivered once.

Items are the keys ``<prefix>/<20-digit number>``, ordered by creation:

- ``enqueue`` picks the number ``n = r + 1`` where ``r`` is the revision of a
  read it just made, and creates the key in a txn guarded by "no item key at
  or after ``n`` exists" (a compare over the range ``[key(n), end)``). If
  another producer got there first, the txn's answer carries a newer revision
  and the producer tries again. So every new item sorts after every item
  present, and ``n`` never exceeds the item's create revision: key order is
  creation order.
- ``dequeue`` reads the first item and deletes it in a txn guarded by its
  ``mod_revision``; of several consumers racing for one item exactly one
  wins, the others read again. On an empty queue it watches the item range
  (from the revision after its read) until something is enqueued.

The keys under the prefix that start with a digit belong to the queue; any
that is not a 20-digit number makes ``enqueue`` raise ``InvalidRequest``.
Keys starting with another character are outside the item range and ignored. A remote ``dequeue`` whose connection
breaks after its delete was sent cannot know whether it took the item (the
client reports the outcome as unknown).
"""

from __future__ import annotations

from kvstore.errors import InvalidRequest
from kvstore.mvcc.keys import to_bytes
from kvstore.mvcc.request import CompareTarget, RangeRequest, compare, op_delete, op_put, op_range
from kvstore.mvcc.types import EventType, RangeResult, SortOrder
from kvstore.kv import KV
from kvstore.recipes.kv import range_response
from kvstore.recipes.turn import wait_event

__all__ = ["Queue"]

_DIGITS = 20


class Queue:
    """A FIFO queue of byte strings under ``prefix`` (see the module docstring)."""

    def __init__(self, kv: KV, prefix: bytes | str) -> None:
        self.kv = kv
        self.prefix = to_bytes(prefix, "prefix") + b"/"
        # Every item key lies in [first, end): a digit right after the slash.
        self._first = self.prefix + b"0"
        self._end = self.prefix + b":"

    def item_key(self, number: int) -> bytes:
        """The key of item ``number``."""
        return self.prefix + b"%0*d" % (_DIGITS, number)

    async def enqueue(self, value: bytes | str) -> bytes:
        """Append ``value``; returns the item's key."""
        data = to_bytes(value, "value")
        number = self._next_number(await self._last_item())
        while True:
            key = self.item_key(number)
            res = await self.kv.txn(
                [compare(key, CompareTarget.CREATE, "=", 0, range_end=self._end)],
                [op_put(key, data)],
                [self._last_item_op()],
            )
            if res.succeeded:
                return key
            number = self._next_number(range_response(res.responses[0]))

    async def dequeue(self) -> bytes:
        """Remove and return the first item, waiting for one if the queue is empty."""
        while True:
            res = await self.kv.range(self._first, self._end, limit=1)
            if not res.kvs:
                await wait_event(
                    self.kv, self._first, self._end,
                    after_revision=res.header_revision, kind=EventType.PUT,
                )
                continue
            item = res.kvs[0]
            taken = await self.kv.txn(
                [compare(item.key, CompareTarget.MOD, "=", item.mod_revision)],
                [op_delete(item.key)],
                [],
            )
            if taken.succeeded:
                return item.value

    async def size(self) -> int:
        """How many items are queued now."""
        res = await self.kv.range(self._first, self._end, count_only=True)
        return res.count

    def _last_item_op(self) -> RangeRequest:
        return op_range(
            self._first, self._end, limit=1, keys_only=True, sort_order=SortOrder.DESCEND
        )

    async def _last_item(self) -> RangeResult:
        return await self.kv.range(
            self._first, self._end, limit=1, keys_only=True, sort_order=SortOrder.DESCEND
        )

    def _next_number(self, last: RangeResult) -> int:
        """A number above the read's revision and above the last item's number."""
        number = last.header_revision + 1
        if last.kvs:
            digits = last.kvs[0].key[len(self.prefix):]
            if len(digits) != _DIGITS or not digits.isdigit():
                raise InvalidRequest(
                    f"key {last.kvs[0].key!r} under the queue's prefix is not a queue item"
                )
            number = max(number, int(digits) + 1)
        return number
