"""The read side of the log that the core consults, and an in-memory implementation.

The core never writes to storage: the driver appends the entries and hard
state a ready batch hands out, then acknowledges it. ``LogStorage`` is what the
core reads back (etcd-io/raft ``Storage``). Index ranges are half open,
``[lo, hi)``. ``first_index()`` is the first entry still available (the one
after the snapshot); ``term(first_index() - 1)`` is the snapshot's term.

``MemoryLogStorage`` keeps the entries in a list whose element 0 is a dummy
entry standing for the snapshot (its index and term), as etcd's MemoryStorage.
"""

from __future__ import annotations

from typing import Protocol, Sequence

from kvstore.errors import InvariantError, KvError
from kvstore.raft.messages import (
    ConfState,
    Entry,
    HardState,
    Snapshot,
    SnapshotMetadata,
)

__all__ = [
    "LogCompactedError",
    "LogStorage",
    "LogUnavailableError",
    "MemoryLogStorage",
    "SnapshotOutOfDateError",
    "SnapshotTemporarilyUnavailableError",
    "limit_size",
]


class LogCompactedError(KvError):
    """The requested index is at or below the snapshot: it was compacted away."""


class LogUnavailableError(KvError):
    """The requested index is past the last entry."""


class SnapshotOutOfDateError(KvError):
    """A snapshot older than the current one was offered."""


class SnapshotTemporarilyUnavailableError(KvError):
    """The snapshot is being prepared; the leader should try again later."""


class LogStorage(Protocol):
    """The stable log as the core sees it."""

    def initial_state(self) -> tuple[HardState, ConfState]:
        """The persisted hard state and membership at start."""
        ...

    def entries(self, lo: int, hi: int, max_size: int) -> list[Entry]:
        """Entries in ``[lo, hi)``, at least one, at most ``max_size`` bytes.

        Raises ``LogCompactedError`` when ``lo`` is at or below the snapshot.
        """
        ...

    def term(self, index: int) -> int:
        """The term of the entry at ``index`` (``first_index() - 1`` included)."""
        ...

    def last_index(self) -> int:
        """The index of the last entry."""
        ...

    def first_index(self) -> int:
        """The index of the first available entry."""
        ...

    def snapshot(self) -> Snapshot:
        """The most recent snapshot."""
        ...


def limit_size(entries: list[Entry], max_size: int) -> list[Entry]:
    """The longest prefix of ``entries`` within ``max_size`` bytes, never empty."""
    if not entries:
        return entries
    size = entries[0].size()
    for i in range(1, len(entries)):
        size += entries[i].size()
        if size > max_size:
            return entries[:i]
    return entries


class MemoryLogStorage:
    """An in-memory ``LogStorage`` the driver writes to (etcd's MemoryStorage)."""

    def __init__(self, conf_state: ConfState | None = None) -> None:
        self._hard_state = HardState()
        self._snapshot = Snapshot(SnapshotMetadata(conf_state=conf_state or ConfState()))
        # _ents[0] is a dummy standing for the snapshot: its index and term.
        self._ents: list[Entry] = [Entry(term=0, index=0)]

    # -- LogStorage -------------------------------------------------------
    def initial_state(self) -> tuple[HardState, ConfState]:
        return self._hard_state, self._snapshot.metadata.conf_state

    def entries(self, lo: int, hi: int, max_size: int) -> list[Entry]:
        offset = self._ents[0].index
        if lo <= offset:
            raise LogCompactedError(f"index {lo} is compacted (snapshot at {offset})")
        if hi > self.last_index() + 1:
            raise InvariantError(f"entries hi {hi} is out of bound, last index {self.last_index()}")
        if len(self._ents) == 1:
            raise LogUnavailableError("no entries")
        return limit_size(self._ents[lo - offset : hi - offset], max_size)

    def term(self, index: int) -> int:
        offset = self._ents[0].index
        if index < offset:
            raise LogCompactedError(f"index {index} is compacted (snapshot at {offset})")
        if index - offset >= len(self._ents):
            raise LogUnavailableError(f"index {index} is past the last index {self.last_index()}")
        return self._ents[index - offset].term

    def last_index(self) -> int:
        return self._ents[0].index + len(self._ents) - 1

    def first_index(self) -> int:
        return self._ents[0].index + 1

    def snapshot(self) -> Snapshot:
        return self._snapshot

    # -- writes, made by the driver --------------------------------------
    @property
    def hard_state(self) -> HardState:
        return self._hard_state

    def set_hard_state(self, hard_state: HardState) -> None:
        """Record the hard state of a ready batch."""
        self._hard_state = hard_state

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        """Replace the whole log with ``snapshot`` (a follower installing one)."""
        meta = snapshot.metadata
        if meta.index <= self._snapshot.metadata.index:
            raise SnapshotOutOfDateError(
                f"snapshot at {meta.index} is not newer than {self._snapshot.metadata.index}"
            )
        self._snapshot = snapshot
        self._ents = [Entry(term=meta.term, index=meta.index)]

    def create_snapshot(
        self, index: int, data: bytes, conf_state: ConfState | None = None
    ) -> Snapshot:
        """Record the application's snapshot at ``index`` (<= its applied index)."""
        if index <= self._snapshot.metadata.index:
            raise SnapshotOutOfDateError(
                f"snapshot at {index} is not newer than {self._snapshot.metadata.index}"
            )
        if index > self.last_index():
            raise InvariantError(f"snapshot {index} is out of bound, last index {self.last_index()}")
        cs = conf_state if conf_state is not None else self._snapshot.metadata.conf_state
        meta = SnapshotMetadata(index=index, term=self.term(index), conf_state=cs)
        self._snapshot = Snapshot(metadata=meta, data=data)
        return self._snapshot

    def compact(self, compact_index: int) -> None:
        """Drop every entry up to and including ``compact_index``."""
        offset = self._ents[0].index
        if compact_index <= offset:
            raise LogCompactedError(f"index {compact_index} is already compacted")
        if compact_index > self.last_index():
            raise InvariantError(
                f"compact {compact_index} is out of bound, last index {self.last_index()}"
            )
        i = compact_index - offset
        head = self._ents[i]
        self._ents = [Entry(term=head.term, index=head.index)] + self._ents[i + 1 :]

    def append(self, entries: Sequence[Entry]) -> None:
        """Append ``entries``, replacing any conflicting tail from ``entries[0].index`` on."""
        if not entries:
            return
        first = self.first_index()
        last = entries[-1].index
        if last < first:
            return
        ents = list(entries)
        if first > ents[0].index:
            ents = ents[first - ents[0].index :]
        offset = ents[0].index - self._ents[0].index
        if len(self._ents) > offset:
            del self._ents[offset:]
            self._ents.extend(ents)
        elif len(self._ents) == offset:
            self._ents.extend(ents)
        else:
            raise InvariantError(
                f"missing log entry [last: {self.last_index()}, append at: {ents[0].index}]"
            )
