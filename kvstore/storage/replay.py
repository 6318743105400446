"""Rebuilding the log's state from a write-ahead log's verified records.

``Replay`` is fed the records of every segment in order and keeps what a
reader of the log needs: the newest snapshot marker, the newest hard state,
and the entries after the snapshot, with Raft's overwrite rule applied
(appending entry ``i`` drops every stored entry ``>= i``).

Segments before the first one replayed may have been released (deleted once
a snapshot covered them). The first header therefore sets the starting point:
entries are known from its ``first_index`` on, and an entry below that point
but above the snapshot is a legitimate overwrite of a released tail. Every
later header must continue exactly where the previous segment ended.

Whatever the writer would never have produced is corruption and raises
``CorruptError`` naming the file and offset: an entry at or below the
snapshot, an entry past the end of the log (a gap), a snapshot marker that
goes backwards or past the log, a header that does not continue its
predecessor, and, at the end, entries that do not start right after the
snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass

from kvstore.errors import CorruptError
from kvstore.raft.messages import EMPTY_HARD_STATE, Entry, HardState
from kvstore.storage.segment import SegmentHeader, SnapshotMarker

__all__ = ["Recovered", "Replay"]


@dataclass(frozen=True, slots=True)
class Recovered:
    """What a write-ahead log held: enough to rebuild a Raft log in memory.

    ``entries`` are consecutive, starting at ``snapshot_index + 1``.
    """

    hard_state: HardState
    entries: list[Entry]
    snapshot_index: int
    snapshot_term: int


class Replay:
    """Applies verified records, in log order, to a picture of the log."""

    def __init__(self) -> None:
        self.snapshot_index = 0
        self.snapshot_term = 0
        self.hard_state = EMPTY_HARD_STATE
        self.crc = 0
        """The CRC chain value at the end of the last segment replayed."""
        self._started = False
        # Invariant: self._entries[k].index == self._start + k, and
        # self._start > self.snapshot_index.
        self._start = 1
        self._entries: list[Entry] = []

    @property
    def last_index(self) -> int:
        return self._start + len(self._entries) - 1

    def header(self, header: SegmentHeader, path: str, offset: int) -> None:
        """Begin a segment."""
        if not self._started:
            self._started = True
            if header.first_index <= header.snapshot_index:
                raise CorruptError(path, offset, "segment starts at or below its snapshot")
            self.snapshot_index = header.snapshot_index
            self.snapshot_term = header.snapshot_term
            self.hard_state = header.hard_state
            self._start = header.first_index
            return
        expected = (
            self.last_index + 1,
            self.crc,
            self.snapshot_index,
            self.snapshot_term,
            self.hard_state,
        )
        found = (
            header.first_index,
            header.prev_crc,
            header.snapshot_index,
            header.snapshot_term,
            header.hard_state,
        )
        if found != expected:
            raise CorruptError(
                path, offset, f"segment header {found} does not continue the log {expected}"
            )

    def entries(self, batch: list[Entry], path: str, offset: int) -> None:
        """Append a batch of consecutive entries, overwriting any tail from its first index."""
        first = batch[0].index
        if first <= self.snapshot_index:
            raise CorruptError(
                path, offset, f"entry {first} at or below the snapshot at {self.snapshot_index}"
            )
        if first < self._start:
            # Only reachable when the start came from the first header read, i.e.
            # the entries between the snapshot and it were released: the writer
            # overwrote part of that released tail.
            self._entries = []
            self._start = first
        elif first > self.last_index + 1:
            raise CorruptError(
                path, offset, f"gap in entry indexes: entry {first} after {self.last_index}"
            )
        else:
            del self._entries[first - self._start :]
        self._entries.extend(batch)

    def set_hard_state(self, hard_state: HardState) -> None:
        self.hard_state = hard_state

    def snapshot(self, marker: SnapshotMarker, path: str, offset: int) -> None:
        """Apply a snapshot marker: drop the entries it covers (or all, for a restore)."""
        if marker.index < self.snapshot_index:
            raise CorruptError(
                path,
                offset,
                f"snapshot marker at {marker.index} behind the one at {self.snapshot_index}",
            )
        if marker.restore:
            self._entries = []
            self._start = marker.index + 1
        else:
            if marker.index > self.last_index:
                raise CorruptError(
                    path, offset, f"snapshot marker at {marker.index} past the log's last entry"
                )
            if marker.index >= self._start:
                del self._entries[: marker.index - self._start + 1]
                self._start = marker.index + 1
        self.snapshot_index = marker.index
        self.snapshot_term = marker.term

    def finish(self, path: str) -> Recovered:
        """The recovered state; ``path`` names the log for the final consistency check."""
        if self._entries and self._start != self.snapshot_index + 1:
            raise CorruptError(
                path,
                0,
                f"entries {self.snapshot_index + 1}..{self._start - 1} are missing "
                f"after the snapshot at {self.snapshot_index}",
            )
        return Recovered(self.hard_state, self._entries, self.snapshot_index, self.snapshot_term)
