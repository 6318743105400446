"""DiskLogStorage: what a member persists per Ready, and what it gets back after a restart."""

from __future__ import annotations

import os

import pytest

from kvstore.errors import CorruptError
from kvstore.raft.messages import (
    EMPTY_SNAPSHOT,
    ConfState,
    Entry,
    HardState,
    NodeId,
    Snapshot,
    SnapshotMetadata,
)
from kvstore.storage.disk import Disk
from kvstore.storage.log_storage import DiskLogStorage, DiskState
from kvstore.storage.memory_disk import MemoryDisk
from kvstore.storage.wal import DEFAULT_SEGMENT_BYTES
from tests.storage.faults import CountingDisk

VOTERS = ConfState((NodeId(1), NodeId(2), NodeId(3)))


def ents(first: int, last: int, term: int = 1) -> list[Entry]:
    return [Entry(term, i, b"cmd-%d" % i) for i in range(first, last + 1)]


def snap(index: int, term: int, data: bytes) -> Snapshot:
    return Snapshot(SnapshotMetadata(index, term, VOTERS), data)


def reopen(
    disk: Disk, root: str, *, segment_bytes: int = DEFAULT_SEGMENT_BYTES
) -> tuple[DiskLogStorage, DiskState]:
    return DiskLogStorage.open(disk, root, segment_bytes=segment_bytes)


def test_a_fresh_directory_opens_empty(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    storage, state = DiskLogStorage.open(disk, root)
    assert state == DiskState(HardState(), EMPTY_SNAPSHOT, [])
    assert disk.listdir(root) == ["snap", "wal"]
    assert not storage.unsafe_no_fsync
    storage.close()
    _, state = reopen(disk, root)
    assert state == DiskState(HardState(), EMPTY_SNAPSHOT, [])


def test_persist_sync_reopen(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    storage, _ = DiskLogStorage.open(disk, root)
    storage.persist(HardState(1, NodeId(1), 0), ents(1, 3))
    storage.persist(HardState(1, NodeId(1), 3), ents(4, 5))
    storage.sync()
    storage.close()
    _, state = reopen(disk, root)
    assert state == DiskState(HardState(1, NodeId(1), 3), EMPTY_SNAPSHOT, ents(1, 5))


def test_compact_keeps_the_tail_and_drops_what_the_snapshot_covers(
    disk_dir: tuple[Disk, str],
) -> None:
    disk, root = disk_dir
    storage, _ = DiskLogStorage.open(disk, root, segment_bytes=120)
    for i in range(1, 31):
        storage.persist(HardState(1, NodeId(1), i - 1), ents(i, i))
    storage.sync()
    segments = len(storage.wal.segment_paths)
    storage.compact(snap(10, 1, b"state@10"))
    storage.compact(snap(20, 1, b"state@20"))
    storage.compact(snap(25, 1, b"state@25"))
    assert len(storage.wal.segment_paths) < segments
    assert storage.snapshots.list_snapshots() == [(20, 1), (25, 1)]  # retain=2
    storage.close()
    _, state = reopen(disk, root, segment_bytes=120)
    assert state.snapshot == snap(25, 1, b"state@25")
    assert state.entries == ents(26, 30)
    assert state.hard_state == HardState(1, NodeId(1), 29)


def test_an_installed_snapshot_replaces_the_log(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    storage, _ = DiskLogStorage.open(disk, root)
    storage.persist(HardState(1, NodeId(1), 2), ents(1, 8))
    storage.sync()
    big = bytes(range(256)) * 9000  # more than one chunk
    storage.persist(HardState(3, NodeId(2), 0), ents(101, 102, term=3), snap(100, 3, big))
    storage.sync()
    storage.close()
    _, state = reopen(disk, root)
    assert state.snapshot == snap(100, 3, big)
    assert state.entries == ents(101, 102, term=3)
    # A snapshot is committed: a commit below it is raised to it.
    assert state.hard_state == HardState(3, NodeId(2), 100)


def test_one_fdatasync_per_sync_for_any_number_of_persists() -> None:
    disk = CountingDisk(MemoryDisk())
    storage, _ = DiskLogStorage.open(disk, "/m")
    before = disk.file_syncs
    for i in range(1, 101):
        storage.persist(HardState(1, NodeId(1), i - 1), ents(i, i))
    storage.sync()
    assert disk.file_syncs == before + 1


def test_a_crash_loses_only_what_was_not_synced() -> None:
    disk = MemoryDisk()
    storage, _ = DiskLogStorage.open(disk, "/m")
    storage.persist(HardState(1, NodeId(1), 0), ents(1, 4))
    storage.sync()
    storage.persist(HardState(1, NodeId(1), 4), ents(5, 9))
    disk.crash()
    _, state = reopen(disk, "/m")
    assert state == DiskState(HardState(1, NodeId(1), 0), EMPTY_SNAPSHOT, ents(1, 4))


def test_a_snapshot_whose_marker_never_reached_the_log_is_dropped() -> None:
    disk = MemoryDisk()
    storage, _ = DiskLogStorage.open(disk, "/m")
    storage.persist(HardState(1, NodeId(1), 4), ents(1, 6))
    storage.sync()
    storage.persist(None, [], snap(50, 2, b"installed"))  # file durable, marker not
    disk.crash()
    storage, state = reopen(disk, "/m")
    assert state.snapshot == EMPTY_SNAPSHOT
    assert state.entries == ents(1, 6)
    assert storage.snapshots.list_snapshots() == []


def test_the_snapshot_the_log_names_must_exist(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    storage, _ = DiskLogStorage.open(disk, root)
    storage.persist(HardState(1, NodeId(1), 5), ents(1, 6))
    storage.compact(snap(5, 1, b"s"))
    storage.close()
    disk.remove(storage.snapshots.path(5, 1))
    with pytest.raises(CorruptError) as info:
        reopen(disk, root)
    assert "missing" in info.value.reason


def test_snapshots_without_a_log_are_refused(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    storage, _ = DiskLogStorage.open(disk, root)
    storage.persist(HardState(1, NodeId(1), 5), ents(1, 6))
    storage.compact(snap(5, 1, b"s"))
    storage.close()
    wal_dir = os.path.join(root, "wal")
    for name in disk.listdir(wal_dir):
        disk.remove(os.path.join(wal_dir, name))
    with pytest.raises(CorruptError):
        reopen(disk, root)


def test_unsafe_no_fsync_is_reported() -> None:
    storage, _ = DiskLogStorage.open(MemoryDisk(), "/m", unsafe_no_fsync=True)
    assert storage.unsafe_no_fsync
