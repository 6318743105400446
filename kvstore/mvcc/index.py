"""The key index: every key's retained history, and the keys in sorted order.

For each key the index holds its *history*: the list of its versions in
``mod_revision`` order, at most one per revision. A tombstone (``version ==
0``) ends a generation, and the next put starts a new one with a fresh
``create_revision``; this flat list is etcd's ``keyIndex`` generations laid
end to end, with the values inline.

Invariants (checked by the tests, relied on by ``KVStore``):

- ``histories[key]`` is never empty and strictly increasing in ``mod_revision``;
- a key is in ``histories`` iff it is in the sorted order (after ``flush``);
- a key is in the *dead* set iff its latest entry is a tombstone, so the live
  keys of a range are counted with four bisections instead of a walk;
- after ``compact_key(key, rev)`` the history holds no entry ``<= rev``
  except the latest one, and that one only if it is live.

Sorted order is kept lazily: a new key is appended to a pending list (a dict
insert and a list append, ~0.3 us) and merged into the ``SortedList`` when
the next range needs order. A ``SortedList.add`` into a million random keys
costs 4-7 us on this class of machine, so write bursts of new keys pay it
once per batch instead of once per put, and members that never serve range
reads never pay it at all.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from operator import attrgetter

from sortedcontainers import SortedList  # type: ignore[import-untyped]

from kvstore.mvcc.keys import ALL_KEYS
from kvstore.mvcc.types import KeyValue

__all__ = ["TreeIndex", "entry_before", "live_at"]

_MOD = attrgetter("mod_revision")


def live_at(history: list[KeyValue], revision: int) -> KeyValue | None:
    """The live version of a key at ``revision`` (``None`` if absent or deleted then)."""
    kv = history[-1]
    if kv.mod_revision > revision:
        i = bisect_right(history, revision, key=_MOD)
        if i == 0:
            return None
        kv = history[i - 1]
    return kv if kv.version else None


def entry_before(history: list[KeyValue], revision: int) -> KeyValue | None:
    """The version of a key written last before ``revision`` (live or tombstone)."""
    i = bisect_right(history, revision - 1, key=_MOD)
    return history[i - 1] if i else None


class TreeIndex:
    """Key -> history map with a lazily sorted key order (see the module docstring).

    ``histories`` is public for the store's write path to read and append to;
    new keys must go through ``insert`` and removals through ``compact_key``.
    """

    __slots__ = ("histories", "_sorted", "_pending", "_dead")

    def __init__(self) -> None:
        self.histories: dict[bytes, list[KeyValue]] = {}
        self._sorted: SortedList = SortedList()
        self._pending: list[bytes] = []
        self._dead: SortedList = SortedList()

    def __len__(self) -> int:
        return len(self.histories)

    def insert(self, kv: KeyValue) -> None:
        """Start the history of a key the index does not hold."""
        self.histories[kv.key] = [kv]
        self._pending.append(kv.key)

    def mark_dead(self, key: bytes) -> None:
        """The latest entry of ``key`` is now a tombstone."""
        self._dead.add(key)

    def mark_live(self, key: bytes) -> None:
        """``key``, dead until now, has a live latest entry again."""
        self._dead.remove(key)

    def count(self, start: bytes, end: bytes | None) -> int:
        """The number of live keys (at the latest revision) in ``(start, end)``."""
        if end is None:
            history = self.histories.get(start)
            return 1 if history is not None and history[-1].version else 0
        self.flush()
        if end != ALL_KEYS and end <= start:
            return 0
        return _span(self._sorted, start, end) - _span(self._dead, start, end)

    @property
    def pending(self) -> int:
        """New keys not yet merged into the sorted order."""
        return len(self._pending)

    def flush(self) -> None:
        """Merge pending keys into the sorted order."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        histories = self.histories
        # A pending key may have been removed (and even re-inserted) since.
        fresh = sorted({key for key in pending if key in histories})
        self._sorted.update(fresh)

    def keys(self, start: bytes, end: bytes | None, *, reverse: bool = False) -> Iterator[bytes]:
        """Keys in ``(start, end)`` (see ``kvstore.mvcc.keys``), tombstoned ones included.

        The index must not gain or lose keys while the iterator is in use.
        """
        if end is None:
            if start in self.histories:
                yield start
            return
        self.flush()
        if end == ALL_KEYS:
            yield from self._sorted.irange(start, None, (True, False), reverse)
        elif start < end:
            yield from self._sorted.irange(start, end, (True, False), reverse)

    def all_keys(self) -> list[bytes]:
        """Every key (tombstoned ones included), ascending, as a list the index will not change."""
        self.flush()
        return list(self._sorted)

    def compact_key(self, key: bytes, revision: int) -> None:
        """Drop the history of ``key`` at or below ``revision`` except its latest live version."""
        history = self.histories.get(key)
        if history is None or history[0].mod_revision > revision:
            return
        i = bisect_right(history, revision, key=_MOD)
        keep_from = i - 1 if history[i - 1].version else i
        if keep_from == len(history):
            del self.histories[key]
            self._sorted.discard(key)
            self._dead.discard(key)
        elif keep_from:
            # A new list, not an in-place delete: a snapshot being streamed may
            # still be reading the old one.
            self.histories[key] = history[keep_from:]

    def load(self, histories: dict[bytes, list[KeyValue]]) -> None:
        """Replace the whole index (keys in any order)."""
        self.histories = histories
        self._sorted = SortedList(histories)
        self._pending = []
        self._dead = SortedList(key for key, history in histories.items() if not history[-1].version)


def _span(keys: SortedList, start: bytes, end: bytes) -> int:
    """How many of ``keys`` lie in ``[start, end)`` (``end`` may be ``ALL_KEYS``)."""
    hi = len(keys) if end == ALL_KEYS else keys.bisect_left(end)
    return int(hi - keys.bisect_left(start))
