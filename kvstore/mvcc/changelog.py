"""The change log: every write after the compact revision, in commit order, sliced by revision.

This is what watchers replay from and what compaction walks: etcd reads its
backend by revision range for both; here it is a flat list of the written
``KeyValue``s (tombstones included) plus, per revision, where its writes
start. Revisions are dense: each revision after ``base`` has at least one
write, so revision ``r`` is slot ``r - base - 1``.

Readers get a consistent view: ``read`` binds the containers as they are
when it is called, and ``truncate`` builds new containers instead of
deleting in place, so a reader that is still iterating (a snapshot being
streamed, say) never sees entries shift under it.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from operator import sub

from kvstore.errors import InvariantError
from kvstore.mvcc.types import KeyValue

__all__ = ["ChangeLog"]


class ChangeLog:
    """Writes of revisions ``base + 1 .. base + revisions``, in order (see the module docstring)."""

    __slots__ = ("_entries", "_starts", "_base", "_dropped")

    def __init__(self, base: int = 1) -> None:
        self._entries: list[KeyValue] = []
        # _starts[i] - _dropped is the first slot of revision base + 1 + i.
        self._starts = array("q")
        self._base = base
        self._dropped = 0

    @property
    def base(self) -> int:
        """The log holds the revisions after this one."""
        return self._base

    @property
    def last_revision(self) -> int:
        """The newest revision logged (``base`` if none)."""
        return self._base + len(self._starts)

    def __len__(self) -> int:
        return len(self._entries)

    def append_one(self, kv: KeyValue) -> None:
        """Log a revision with a single write."""
        self._starts.append(len(self._entries) + self._dropped)
        self._entries.append(kv)

    def append(self, kvs: Sequence[KeyValue]) -> None:
        """Log a revision with the writes ``kvs`` (at least one), in sub-revision order."""
        self._starts.append(len(self._entries) + self._dropped)
        self._entries.extend(kvs)

    def read(self, first: int, last: int) -> Iterator[tuple[int, list[KeyValue]]]:
        """``(revision, writes)`` for each revision in ``[first, last]``, clipped to the log."""
        first = max(first, self._base + 1)
        last = min(last, self.last_revision)
        return _read(self._entries, self._starts, self._base, self._dropped, first, last)

    def spans(self, first: int, last: int, max_writes: int) -> Iterator[tuple[int, list[KeyValue], list[int]]]:
        """The revisions in ``[first, last]`` (clipped to the log) in runs of about ``max_writes`` writes.

        Yields ``(first revision of the run, its writes, writes per revision)``;
        a run holds one revision at least, however many writes it has. Like
        ``read``, it binds the containers as they are now.
        """
        first = max(first, self._base + 1)
        last = min(last, self.last_revision)
        if first > last:
            return iter(())
        # Where ``last`` ends, as of now: later appends must not run into it.
        count = len(self._starts)
        final = self._starts[last - self._base] if last - self._base < count else len(self._entries) + self._dropped
        return _spans(self._entries, self._starts, self._base, self._dropped, first, last, final, max_writes)

    def truncate(self, revision: int) -> list[KeyValue]:
        """Drop the revisions up to ``revision`` and return their writes."""
        if revision <= self._base:
            return []
        slots = min(revision, self.last_revision) - self._base
        end = self._starts[slots] - self._dropped if slots < len(self._starts) else len(self._entries)
        dropped = self._entries[:end]
        self._entries = self._entries[end:]
        self._starts = self._starts[slots:]
        self._dropped += end
        self._base = revision
        return dropped

    @classmethod
    def rebuild(cls, base: int, entries: list[KeyValue], counts: Sequence[int]) -> ChangeLog:
        """A log of ``entries``, ``counts[i]`` of them for revision ``base + 1 + i``.

        Raises:
            InvariantError: the counts do not cover the entries, or an entry's
                ``mod_revision`` is not its revision.
        """
        log = cls(base)
        slot = 0
        for rev, count in enumerate(counts, base + 1):
            if count < 1 or any(kv.mod_revision != rev for kv in entries[slot : slot + count]):
                raise InvariantError(f"revision {rev} has no writes or writes of another revision")
            log._starts.append(slot)
            slot += count
        if slot != len(entries):
            raise InvariantError(f"{len(entries)} logged writes, {slot} counted")
        log._entries = entries
        return log


def _read(
    entries: list[KeyValue], starts: array[int], base: int, dropped: int, first: int, last: int
) -> Iterator[tuple[int, list[KeyValue]]]:
    for revision in range(first, last + 1):
        slot = revision - base
        i = starts[slot - 1] - dropped
        j = starts[slot] - dropped if slot < len(starts) else len(entries)
        yield revision, entries[i:j]


def _spans(
    entries: list[KeyValue], starts: array[int], base: int, dropped: int, first: int, last: int,
    final: int, max_writes: int,
) -> Iterator[tuple[int, list[KeyValue], list[int]]]:
    stop = last - base  # one past the slot of ``last``
    lo = first - base - 1  # the slot of ``first``
    while lo < stop:
        limit = starts[lo] + max_writes
        # Slots lo .. hi-1 start within the limit; the last of them may run past it.
        hi = bisect_right(starts, limit, lo + 1, stop)
        end = starts[hi] if hi < stop else final
        if end > limit and hi > lo + 1:
            hi -= 1
            end = starts[hi]
        bounds = list(starts[lo:hi])
        bounds.append(end)
        counts = list(map(sub, bounds[1:], bounds[:-1]))
        yield lo + base + 1, entries[bounds[0] - dropped : end - dropped], counts
        lo = hi
