"""The Raft log: stable storage plus the unstable tail (etcd-io/raft ``raftLog``).

Invariant: ``applied <= committed <= last_index()``; ``committed`` never
decreases. Entries at or below ``committed`` are never overwritten (Raft §5.3,
§5.4): an attempt to do so raises ``InvariantError``.
"""

from __future__ import annotations

from collections.abc import Sequence

from kvstore.errors import InvariantError
from kvstore.raft.messages import Entry, Snapshot
from kvstore.raft.storage import (
    LogCompactedError,
    LogStorage,
    LogUnavailableError,
    limit_size,
)
from kvstore.raft.unstable import Unstable

__all__ = ["RaftLog"]


class RaftLog:
    """The log as the core sees it."""

    def __init__(self, storage: LogStorage, max_applying_size: int) -> None:
        self.storage = storage
        first = storage.first_index()
        last = storage.last_index()
        self.unstable = Unstable(last + 1)
        # The highest index known to be on a quorum of stable storages.
        self.committed = first - 1
        # The highest index the application has applied.
        self.applied = first - 1
        self.max_applying_size = max_applying_size

    def __repr__(self) -> str:
        return (
            f"RaftLog(committed={self.committed}, applied={self.applied}, "
            f"unstable.offset={self.unstable.offset}, len(unstable)={len(self.unstable.entries)})"
        )

    # -- appending --------------------------------------------------------
    def maybe_append(
        self, index: int, log_term: int, committed: int, entries: Sequence[Entry]
    ) -> int | None:
        """Append a leader's entries that follow ``(index, log_term)``.

        Returns the last index of the new entries, or ``None`` when our log
        has no entry ``index`` of term ``log_term`` (the append is rejected).
        """
        if not self.match_term(index, log_term):
            return None
        last_new = index + len(entries)
        ci = self.find_conflict(entries)
        if ci != 0:
            if ci <= self.committed:
                raise InvariantError(
                    f"entry {ci} conflicts with committed entry (committed {self.committed})"
                )
            self.append(entries[ci - (index + 1) :])
        self.commit_to(min(committed, last_new))
        return last_new

    def append(self, entries: Sequence[Entry]) -> int:
        """Append ``entries`` (replacing a conflicting uncommitted tail); return the last index."""
        if not entries:
            return self.last_index()
        after = entries[0].index - 1
        if after < self.committed:
            raise InvariantError(f"after {after} is out of range [committed {self.committed}]")
        self.unstable.truncate_and_append(entries)
        return self.last_index()

    def find_conflict(self, entries: Sequence[Entry]) -> int:
        """Index of the first entry whose term differs from ours (or that we lack); 0 if none."""
        for e in entries:
            if not self.match_term(e.index, e.term):
                return e.index
        return 0

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """The largest index ``<= index`` whose term is ``<= term``, and that term.

        Used for fast backtracking of rejected appends: the leader can skip
        every entry of a term the follower's log does not share.
        """
        while index > 0:
            try:
                t = self.term(index)
            except (LogCompactedError, LogUnavailableError):
                return index, 0
            if t <= term:
                return index, t
            index -= 1
        return 0, 0

    # -- committing and applying -----------------------------------------
    def commit_to(self, to_commit: int) -> None:
        """Raise the commit index (never lower it)."""
        if self.committed < to_commit:
            if self.last_index() < to_commit:
                raise InvariantError(
                    f"to_commit {to_commit} is out of range [last index {self.last_index()}]"
                )
            self.committed = to_commit

    def maybe_commit(self, max_index: int, term: int) -> bool:
        """Commit up to ``max_index`` if that entry is of ``term`` (Raft §5.4.2)."""
        if max_index > self.committed and self.zero_term_on_err(max_index) == term:
            self.commit_to(max_index)
            return True
        return False

    def applied_to(self, index: int) -> None:
        if index == 0:
            return
        if self.committed < index or index < self.applied:
            raise InvariantError(
                f"applied {index} is out of range [prev applied {self.applied}, "
                f"committed {self.committed}]"
            )
        self.applied = index

    def has_next_committed_ents(self) -> bool:
        return self.committed > self.applied and self.unstable.snapshot is None

    def next_committed_ents(self) -> list[Entry]:
        """Committed entries not yet applied, at most ``max_applying_size`` bytes."""
        if not self.has_next_committed_ents():
            return []
        lo = max(self.applied + 1, self.first_index())
        return self.slice(lo, self.committed + 1, self.max_applying_size)

    # -- persistence ------------------------------------------------------
    def stable_to(self, index: int, term: int) -> None:
        self.unstable.stable_to(index, term)

    def stable_snap_to(self, index: int) -> None:
        self.unstable.stable_snap_to(index)

    def restore(self, snapshot: Snapshot) -> None:
        """Replace the log with a snapshot received from the leader."""
        self.committed = snapshot.metadata.index
        self.unstable.restore(snapshot)

    def stable_last_index(self) -> int:
        """The last index the driver has made durable (0 with a snapshot pending)."""
        if self.unstable.snapshot is not None:
            return 0
        return self.unstable.offset - 1

    # -- reading ----------------------------------------------------------
    def snapshot(self) -> Snapshot:
        if self.unstable.snapshot is not None:
            return self.unstable.snapshot
        return self.storage.snapshot()

    def first_index(self) -> int:
        i = self.unstable.maybe_first_index()
        return i if i is not None else self.storage.first_index()

    def last_index(self) -> int:
        i = self.unstable.maybe_last_index()
        return i if i is not None else self.storage.last_index()

    def last_term(self) -> int:
        return self.term(self.last_index())

    def term(self, index: int) -> int:
        """The term of entry ``index``; raises if it was compacted or does not exist."""
        t = self.unstable.maybe_term(index)
        if t is not None:
            return t
        dummy = self.first_index() - 1
        if index < dummy:
            raise LogCompactedError(f"index {index} is compacted")
        if index > self.last_index():
            raise LogUnavailableError(f"index {index} is past the last index")
        return self.storage.term(index)

    def zero_term_on_err(self, index: int) -> int:
        try:
            return self.term(index)
        except (LogCompactedError, LogUnavailableError):
            return 0

    def match_term(self, index: int, term: int) -> bool:
        try:
            return self.term(index) == term
        except (LogCompactedError, LogUnavailableError):
            return False

    def is_up_to_date(self, last_index: int, term: int) -> bool:
        """Whether a log ending at ``(last_index, term)`` is at least as up to date as ours (§5.4.1)."""
        last_term = self.last_term()
        return term > last_term or (term == last_term and last_index >= self.last_index())

    def entries(self, index: int, max_size: int) -> list[Entry]:
        """Entries from ``index`` to the end, at most ``max_size`` bytes (at least one)."""
        if index > self.last_index():
            return []
        return self.slice(index, self.last_index() + 1, max_size)

    def all_entries(self) -> list[Entry]:
        """Every available entry (for tests and checks)."""
        return self.entries(self.first_index(), 1 << 62)

    def slice(self, lo: int, hi: int, max_size: int) -> list[Entry]:
        """Entries in ``[lo, hi)`` from storage and the unstable tail."""
        self._check_bounds(lo, hi)
        if lo == hi:
            return []
        ents: list[Entry] = []
        offset = self.unstable.offset
        if lo < offset:
            stored = self.storage.entries(lo, min(hi, offset), max_size)
            if len(stored) < min(hi, offset) - lo:
                # Size-limited: return what storage gave.
                return stored
            ents = stored
        if hi > offset:
            ents = ents + self.unstable.slice(max(lo, offset), hi)
        return limit_size(ents, max_size)

    def _check_bounds(self, lo: int, hi: int) -> None:
        if lo > hi:
            raise InvariantError(f"invalid slice {lo} > {hi}")
        first = self.first_index()
        if lo < first:
            raise LogCompactedError(f"index {lo} is compacted (first index {first})")
        upper = self.last_index() + 1
        if hi > upper:
            raise InvariantError(f"slice[{lo},{hi}) out of bound [{first},{upper}]")
