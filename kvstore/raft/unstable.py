"""The unstable tail of the log: entries and a snapshot not yet on stable storage.

``entries[i]`` has index ``offset + i``. A snapshot, if present, precedes the
entries (its index is ``offset - 1``). Everything here is handed to the driver
in the next ready batch and becomes stable when that batch is acknowledged.
Invariant: ``offset - 1`` is the last index the driver has made durable, unless
a snapshot is pending.
"""

from __future__ import annotations

from collections.abc import Sequence

from kvstore.errors import InvariantError
from kvstore.raft.messages import Entry, Snapshot

__all__ = ["Unstable"]


class Unstable:
    """Entries and a snapshot waiting to be persisted."""

    __slots__ = ("snapshot", "entries", "offset")

    def __init__(self, offset: int) -> None:
        self.snapshot: Snapshot | None = None
        self.entries: list[Entry] = []
        self.offset = offset

    def maybe_first_index(self) -> int | None:
        """The first index of the log if a snapshot is pending."""
        if self.snapshot is not None:
            return self.snapshot.metadata.index + 1
        return None

    def maybe_last_index(self) -> int | None:
        """The last index held here, if any."""
        if self.entries:
            return self.offset + len(self.entries) - 1
        if self.snapshot is not None:
            return self.snapshot.metadata.index
        return None

    def maybe_term(self, index: int) -> int | None:
        """The term at ``index`` if this tail knows it."""
        if index < self.offset:
            if self.snapshot is not None and self.snapshot.metadata.index == index:
                return self.snapshot.metadata.term
            return None
        last = self.maybe_last_index()
        if last is None or index > last:
            return None
        return self.entries[index - self.offset].term

    def stable_to(self, index: int, term: int) -> None:
        """Entries up to ``index`` (of ``term``) are durable; forget them."""
        t = self.maybe_term(index)
        if t is None or t != term or index < self.offset:
            # The entry was replaced after the batch was handed out: the new
            # entries stay unstable and will be handed out again.
            return
        del self.entries[: index + 1 - self.offset]
        self.offset = index + 1

    def stable_snap_to(self, index: int) -> None:
        """The snapshot at ``index`` is durable."""
        if self.snapshot is not None and self.snapshot.metadata.index == index:
            self.snapshot = None

    def restore(self, snapshot: Snapshot) -> None:
        """Replace everything with ``snapshot``."""
        self.offset = snapshot.metadata.index + 1
        self.entries = []
        self.snapshot = snapshot

    def truncate_and_append(self, entries: Sequence[Entry]) -> None:
        """Append ``entries``, dropping any held entries from ``entries[0].index`` on."""
        after = entries[0].index
        if after == self.offset + len(self.entries):
            self.entries.extend(entries)
        elif after <= self.offset:
            # Replace the whole tail; the stable log is truncated by the
            # driver when it writes these entries.
            self.offset = after
            self.entries = list(entries)
        else:
            del self.entries[after - self.offset :]
            self.entries.extend(entries)

    def slice(self, lo: int, hi: int) -> list[Entry]:
        """Entries in ``[lo, hi)``; the range must lie within this tail."""
        upper = self.offset + len(self.entries)
        if lo > hi or lo < self.offset or hi > upper:
            raise InvariantError(f"unstable.slice[{lo},{hi}) out of bound [{self.offset},{upper}]")
        return self.entries[lo - self.offset : hi - self.offset]
