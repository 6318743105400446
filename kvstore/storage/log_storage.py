"""A member's durable Raft state: a write-ahead log plus a snapshot store.

``DiskLogStorage`` is what the node driver (and the simulator) persists each
Ready into. Its directory holds ``wal/`` (``kvstore.storage.wal``) and
``snap/`` (``kvstore.storage.snapshot``).

Per Ready: ``persist(hard_state, entries, snapshot)``, then ``sync()``; once
``sync`` returns, all of it is durable. A snapshot passed to ``persist`` is
one Raft installed from a leader and replaces the whole log. When the
application compacts its own log it calls ``compact(snapshot)`` instead,
which keeps the entries after the snapshot.

A snapshot becomes part of the state only when its marker in the WAL is
durable: its file is always synced first, and a file no marker refers to (a
crash came between the two) is deleted at ``open``. Old snapshot files and
WAL segments are deleted only after the marker that supersedes them is
synced.

Not thread-safe: calls must not overlap (running ``sync`` or ``compact`` in
a worker thread is fine while nothing else touches the storage meanwhile).

``open`` returns what a restarted member needs to rebuild its in-memory
Raft log: the hard state, the snapshot (empty if none) and the entries after
it. The hard state's commit is raised to the snapshot's index if it lags (a
crash can keep a snapshot marker and lose the hard state saved with it; a
snapshot is always committed).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from kvstore.errors import CorruptError
from kvstore.raft.messages import EMPTY_SNAPSHOT, Entry, HardState, Snapshot
from kvstore.storage.disk import Disk
from kvstore.storage.snapshot import SnapshotStore
from kvstore.storage.wal import DEFAULT_SEGMENT_BYTES, WAL

__all__ = ["DiskLogStorage", "DiskState"]

WAL_DIR = "wal"
SNAP_DIR = "snap"
SNAPSHOT_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class DiskState:
    """What a member had durably stored; ``entries`` start at ``snapshot.metadata.index + 1``."""

    hard_state: HardState
    snapshot: Snapshot
    entries: list[Entry]


def _chunks(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), SNAPSHOT_CHUNK_BYTES):
        yield data[start : start + SNAPSHOT_CHUNK_BYTES]


class DiskLogStorage:
    """WAL + snapshots in one directory. Build it with ``open``."""

    def __init__(self, wal: WAL, snapshots: SnapshotStore) -> None:
        self._wal = wal
        self._snapshots = snapshots
        self._release_pending = False

    @classmethod
    def open(
        cls,
        disk: Disk,
        directory: str,
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        unsafe_no_fsync: bool = False,
        retain_snapshots: int = 2,
    ) -> tuple[DiskLogStorage, DiskState]:
        """Open (or create, if ``directory`` holds no log) a member's storage.

        Raises:
            CorruptError: the WAL fails recovery, the snapshot it names is
                missing or corrupt, or snapshots exist without a WAL.
        """
        snapshots = SnapshotStore.open(
            disk, os.path.join(directory, SNAP_DIR), retain=retain_snapshots
        )
        wal_dir = os.path.join(directory, WAL_DIR)
        if not WAL.exists(disk, wal_dir):
            if snapshots.list_snapshots():
                raise CorruptError(wal_dir, 0, "snapshots exist but the write-ahead log is missing")
            wal = WAL.create(
                disk, wal_dir, segment_bytes=segment_bytes, unsafe_no_fsync=unsafe_no_fsync
            )
            return cls(wal, snapshots), DiskState(wal.hard_state, EMPTY_SNAPSHOT, [])
        wal, recovered = WAL.open(
            disk, wal_dir, segment_bytes=segment_bytes, unsafe_no_fsync=unsafe_no_fsync
        )
        snapshots.remove_newer_than(recovered.snapshot_index)
        snapshot = EMPTY_SNAPSHOT
        hard_state = recovered.hard_state
        if recovered.snapshot_index > 0:
            metadata, chunks = snapshots.load(recovered.snapshot_index, recovered.snapshot_term)
            snapshot = Snapshot(metadata, b"".join(chunks))
            if hard_state.commit < metadata.index:
                hard_state = replace(hard_state, commit=metadata.index)
        return cls(wal, snapshots), DiskState(hard_state, snapshot, recovered.entries)

    @property
    def wal(self) -> WAL:
        return self._wal

    @property
    def snapshots(self) -> SnapshotStore:
        return self._snapshots

    @property
    def unsafe_no_fsync(self) -> bool:
        """True when the WAL never syncs (benchmarks and tests only)."""
        return self._wal.unsafe_no_fsync

    def persist(
        self,
        hard_state: HardState | None,
        entries: Sequence[Entry],
        snapshot: Snapshot | None = None,
    ) -> None:
        """Hand a Ready's snapshot, entries and hard state to the disk; ``sync`` makes them durable.

        ``snapshot`` (if not empty) replaces the whole log; its file is written
        and synced here, before the WAL records that refer to it.
        """
        if snapshot is not None and not snapshot.is_empty():
            self._save_snapshot(snapshot, restore=True)
        self._wal.save(hard_state, entries)

    def sync(self) -> None:
        """Make everything persisted so far durable; then drop what a new snapshot made stale."""
        self._wal.sync()
        if self._release_pending:
            self._release_pending = False
            self._snapshots.prune()
            self._wal.release_to(self._wal.snapshot_index)

    def compact(self, snapshot: Snapshot) -> None:
        """Durably save an application snapshot and drop the entries it covers.

        ``snapshot.metadata.index`` must be an index the log holds (at most
        its last index); entries after it are kept. Syncs before returning.
        """
        self._save_snapshot(snapshot, restore=False)
        self.sync()

    def save_snapshot_file(self, snapshot: Snapshot) -> None:
        """Write and sync an application snapshot's file, without touching the WAL.

        This is the slow half of ``compact`` and may run in another thread
        while the WAL keeps being written; ``compact_saved`` then records it.
        A file that no WAL marker refers to is deleted at ``open``.
        """
        self._snapshots.save(snapshot.metadata, _chunks(snapshot.data))

    def compact_saved(self, snapshot: Snapshot) -> None:
        """Record a snapshot saved by ``save_snapshot_file`` in the WAL and drop what it covers.

        Syncs before returning.
        """
        metadata = snapshot.metadata
        self._wal.check_snapshot_marker(metadata.index, restore=False)
        self._wal.save_snapshot_marker(metadata.index, metadata.term, restore=False)
        self._release_pending = True
        self.sync()

    def close(self) -> None:
        self._wal.close()

    def _save_snapshot(self, snapshot: Snapshot, *, restore: bool) -> None:
        metadata = snapshot.metadata
        self._wal.check_snapshot_marker(metadata.index, restore=restore)
        self._snapshots.save(metadata, _chunks(snapshot.data))
        self._wal.save_snapshot_marker(metadata.index, metadata.term, restore=restore)
        self._release_pending = True
