"""SnapshotStore: atomic saves, verified loads, leftovers, retention."""

from __future__ import annotations

import logging
import os

import pytest

from kvstore.errors import CorruptError
from kvstore.raft.messages import ConfState, NodeId, SnapshotMetadata
from kvstore.storage.disk import Disk
from kvstore.storage.memory_disk import MemoryDisk
from kvstore.storage.snapshot import SnapshotStore, snapshot_name
from tests.storage.faults import flip_bit, rewrite


def meta(index: int, term: int = 2, voters: tuple[int, ...] = (1, 2, 3)) -> SnapshotMetadata:
    return SnapshotMetadata(index, term, ConfState(tuple(NodeId(v) for v in voters)))


def test_round_trip_with_chunks_and_voters(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    store = SnapshotStore.open(disk, root)
    chunks = [b"first chunk", b"", b"\x00" * 1000, bytes(range(256))]
    path = store.save(meta(42, 7, (1, 3, 5)), iter(chunks))
    assert os.path.basename(path) == snapshot_name(42, 7) == f"{7:016x}-{42:016x}.snap"
    loaded = store.load_newest()
    assert loaded is not None
    metadata, reader = loaded
    assert metadata == meta(42, 7, (1, 3, 5))
    assert list(reader) == [c for c in chunks if c]  # empty chunks are not stored
    assert store.load(42, 7)[0] == metadata


def test_empty_store_and_empty_snapshot(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    store = SnapshotStore.open(disk, root)
    assert store.load_newest() is None
    store.save(meta(1), [])
    loaded = store.load_newest()
    assert loaded is not None and list(loaded[1]) == []


def test_newest_is_by_index_and_prune_keeps_the_newest(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    store = SnapshotStore.open(disk, root, retain=2)
    for index, term in [(10, 1), (30, 2), (20, 2), (300, 3)]:
        store.save(meta(index, term), [b"data-%d" % index])
    assert store.list_snapshots() == [(10, 1), (20, 2), (30, 2), (300, 3)]
    loaded = store.load_newest()
    assert loaded is not None and loaded[0].index == 300
    assert store.prune() == 2
    assert store.list_snapshots() == [(30, 2), (300, 3)]
    assert store.prune() == 0


def test_a_leftover_temporary_file_is_removed_at_open(
    disk_dir: tuple[Disk, str], caplog: pytest.LogCaptureFixture
) -> None:
    disk, root = disk_dir
    store = SnapshotStore.open(disk, root)
    store.save(meta(5), [b"ok"])
    tmp = os.path.join(root, snapshot_name(9, 2) + ".tmp")
    f = disk.create(tmp)
    f.write(b"half a snapshot")
    f.close()
    with caplog.at_level(logging.WARNING, logger="kvstore.storage.snapshot"):
        store = SnapshotStore.open(disk, root)
    assert not disk.exists(tmp)
    assert any("left unfinished" in r.message for r in caplog.records)
    loaded = store.load_newest()
    assert loaded is not None and loaded[0].index == 5


def test_every_damage_to_the_newest_snapshot_raises(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    store = SnapshotStore.open(disk, root)
    store.save(meta(5), [b"older and fine"])
    path = store.save(meta(9), [b"chunk one", b"chunk two"])
    full = disk.read(path)
    for offset in range(len(full)):
        rewrite(disk, path, full)
        flip_bit(disk, path, offset)
        with pytest.raises(CorruptError) as info:
            store.load_newest()  # never falls back to the older one silently
        assert info.value.path == path
    for cut in range(len(full)):
        rewrite(disk, path, full[:cut])
        with pytest.raises(CorruptError):
            store.load_newest()
    rewrite(disk, path, full + b"extra")
    with pytest.raises(CorruptError):
        store.load_newest()


def test_a_missing_or_misnamed_snapshot_raises(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    store = SnapshotStore.open(disk, root)
    with pytest.raises(CorruptError):
        store.load(3, 1)
    path = store.save(meta(3, 1), [b"x"])
    disk.rename(path, store.path(4, 1))
    with pytest.raises(CorruptError) as info:
        store.load(4, 1)
    assert "file name" in info.value.reason


def test_a_crash_mid_save_leaves_no_partial_snapshot() -> None:
    disk = MemoryDisk()
    store = SnapshotStore.open(disk, "/s")
    store.save(meta(1), [b"durable"])
    # A crash while the temporary file is being written: it is cleaned up at open.
    tmp_file = disk.create(store.path(2, 2) + ".tmp")
    tmp_file.write(b"STEERSNP partial")
    disk.sync_dir("/s")
    disk.crash()
    store = SnapshotStore.open(disk, "/s")
    assert disk.listdir("/s") == [snapshot_name(1, 2)]
    # A file whose directory entry never became durable is gone after a crash.
    f = disk.create(store.path(2, 2))
    f.write(disk.read(store.path(1, 2)))
    f.sync()
    disk.crash()
    assert store.list_snapshots() == [(1, 2)]
    # Once save() returns, the snapshot survives a crash.
    store.save(meta(3), [b"a" * 100])
    disk.crash()
    assert store.list_snapshots() == [(1, 2), (3, 2)]
    loaded = store.load_newest()
    assert loaded is not None and list(loaded[1]) == [b"a" * 100]


def test_remove_newer_than(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    store = SnapshotStore.open(disk, root, retain=5)
    for index in (4, 8, 12):
        store.save(meta(index), [b"x"])
    assert store.remove_newer_than(8) == 1
    assert store.list_snapshots() == [(4, 2), (8, 2)]


def test_retain_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SnapshotStore.open(MemoryDisk(), "/s", retain=0)
