"""WAL behaviour on real files and on MemoryDisk: round trips, rotation, release, group commit."""

from __future__ import annotations

import logging
import os

import pytest

from kvstore.errors import InvariantError, StorageError
from kvstore.raft.messages import Entry, HardState, NodeId
from kvstore.storage.disk import Disk
from kvstore.storage.memory_disk import MemoryDisk
from kvstore.storage.record import scan
from kvstore.storage.segment import decode_header, parse_segment_name, segment_name
from kvstore.storage.wal import DEFAULT_SEGMENT_BYTES, WAL
from tests.storage.faults import CountingDisk, FailingDisk


def ents(first: int, last: int, term: int = 1, tag: bytes = b"") -> list[Entry]:
    return [Entry(term, i, tag + b"entry-%d" % i) for i in range(first, last + 1)]


def reopen(
    disk: Disk, path: str, *, segment_bytes: int = DEFAULT_SEGMENT_BYTES
) -> tuple[WAL, list[Entry], HardState, int, int]:
    wal, rec = WAL.open(disk, path, segment_bytes=segment_bytes)
    return wal, rec.entries, rec.hard_state, rec.snapshot_index, rec.snapshot_term


def test_round_trip(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    wal = WAL.create(disk, root)
    hs = HardState(term=3, vote=NodeId(2), commit=5)
    wal.save(hs, ents(1, 10, term=3))
    wal.save(None, [Entry(3, 11, b"")])
    wal.sync()
    wal.close()
    wal, entries, got_hs, snap_index, snap_term = reopen(disk, root)
    assert entries == ents(1, 10, term=3) + [Entry(3, 11, b"")]
    assert got_hs == hs
    assert (snap_index, snap_term) == (0, 0)
    assert wal.last_index == 11
    # Appending after a reopen continues the same log.
    wal.save(HardState(4, NodeId(1), 11), ents(12, 12, term=4))
    wal.sync()
    wal.close()
    _, entries, got_hs, _, _ = reopen(disk, root)
    assert [e.index for e in entries] == list(range(1, 13))
    assert got_hs == HardState(4, NodeId(1), 11)


def test_empty_log_round_trip(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    WAL.create(disk, root).close()
    _, entries, hs, snap_index, _ = reopen(disk, root)
    assert entries == [] and hs == HardState() and snap_index == 0


def test_later_writes_overwrite_the_tail(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    wal = WAL.create(disk, root)
    wal.save(None, ents(1, 10, term=1))
    wal.save(None, ents(6, 7, term=2, tag=b"new"))  # conflict: drops 6..10
    wal.save(None, ents(8, 8, term=2, tag=b"newer"))
    wal.sync()
    wal.close()
    _, entries, _, _, _ = reopen(disk, root)
    assert entries == ents(1, 5) + ents(6, 7, term=2, tag=b"new") + ents(8, 8, 2, b"newer")


def test_save_refuses_what_the_log_cannot_hold(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    wal = WAL.create(disk, root)
    wal.save(None, ents(1, 5))
    with pytest.raises(InvariantError):
        wal.save(None, ents(7, 8))  # gap after 5
    with pytest.raises(InvariantError):
        wal.save(None, [Entry(1, 6), Entry(1, 8)])  # not consecutive
    wal.save_snapshot_marker(3, 1)
    with pytest.raises(InvariantError):
        wal.save(None, ents(3, 4))  # at or below the snapshot
    with pytest.raises(InvariantError):
        wal.save_snapshot_marker(2, 1)  # behind the snapshot
    with pytest.raises(InvariantError):
        wal.save_snapshot_marker(9, 1)  # past the log without restore
    with pytest.raises(InvariantError):
        wal.release_to(3)  # the marker is not synced yet
    wal.close()


def test_snapshot_marker_keeps_the_entries_after_it(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    wal = WAL.create(disk, root)
    wal.save(HardState(1, NodeId(1), 8), ents(1, 10))
    wal.save_snapshot_marker(8, 1)
    wal.sync()
    wal.close()
    _, entries, hs, snap_index, snap_term = reopen(disk, root)
    assert (snap_index, snap_term) == (8, 1)
    assert entries == ents(9, 10)
    assert hs.commit == 8


def test_restore_marker_replaces_the_whole_log(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    wal = WAL.create(disk, root)
    wal.save(None, ents(1, 10))
    wal.save_snapshot_marker(7, 3, restore=True)
    assert wal.last_index == 7
    wal.save(None, ents(8, 9, term=3))
    wal.save_snapshot_marker(50, 4, restore=True)  # past the log: fine when restoring
    wal.sync()
    wal.close()
    wal, entries, _, snap_index, snap_term = reopen(disk, root)
    assert (snap_index, snap_term, entries) == (50, 4, [])
    assert wal.last_index == 50
    wal.save(None, ents(51, 52, term=4))
    wal.sync()
    wal.close()
    _, entries, _, _, _ = reopen(disk, root)
    assert entries == ents(51, 52, term=4)


def test_rotation_names_segments_by_sequence_and_first_index(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    wal = WAL.create(disk, root, segment_bytes=300)
    hs = HardState(2, NodeId(3), 0)
    for i in range(1, 41):
        wal.save(hs if i == 1 else None, ents(i, i, term=2))
    wal.sync()
    paths = wal.segment_paths
    wal.close()
    names = disk.listdir(root)
    assert names == [os.path.basename(p) for p in paths]
    assert len(names) > 3
    parsed = [parse_segment_name(n) for n in names]
    assert [p[0] for p in parsed if p] == list(range(len(names)))
    assert names[0] == segment_name(0, 1)
    for path, (seq, first) in zip(paths, [p for p in parsed if p]):
        first_record = scan(disk.read(path), path, tail_may_tear=False).records[0]
        header = decode_header(first_record.payload, path, 0)
        assert (header.seq, header.first_index) == (seq, first)
        assert header.hard_state == (HardState() if seq == 0 else hs)
    # Every segment but the newest stopped once it reached the limit.
    assert all(disk.size(p) < 300 + 100 for p in paths[:-1])
    _, entries, got_hs, _, _ = reopen(disk, root, segment_bytes=300)
    assert entries == ents(1, 40, term=2)
    assert got_hs == hs


def test_release_deletes_only_wholly_covered_segments(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    wal = WAL.create(disk, root, segment_bytes=250)
    for i in range(1, 31):
        wal.save(HardState(1, NodeId(1), i), ents(i, i))
    firsts = [parse_segment_name(os.path.basename(p)) for p in wal.segment_paths]
    starts = [f[1] for f in firsts if f]
    assert len(starts) >= 4
    # A snapshot just short of the third segment's first index covers the
    # first segment only, not the second.
    index = starts[2] - 2
    wal.save_snapshot_marker(index + 1, 1)
    wal.sync()
    before = wal.segment_paths
    assert wal.release_to(index) == 1
    assert wal.segment_paths == before[1:]
    assert not disk.exists(before[0])
    assert wal.release_to(index + 1) == 1  # now the second is covered as well
    wal.save_snapshot_marker(30, 1)
    wal.sync()
    wal.release_to(30)
    assert len(wal.segment_paths) == 1  # the newest segment always stays
    wal.save(None, ents(31, 33))
    wal.sync()
    wal.close()
    _, entries, hs, snap_index, _ = reopen(disk, root, segment_bytes=250)
    assert snap_index == 30
    assert entries == ents(31, 33)
    assert hs == HardState(1, NodeId(1), 30)


def test_release_then_overwrite_below_the_first_kept_segment(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    wal = WAL.create(disk, root, segment_bytes=200)
    for i in range(1, 21):
        wal.save(None, ents(i, i))
    wal.save_snapshot_marker(12, 1)
    wal.sync()
    kept_first = [parse_segment_name(os.path.basename(p)) for p in wal.segment_paths]
    wal.release_to(12)
    first_kept = parse_segment_name(os.path.basename(wal.segment_paths[0]))
    assert first_kept is not None and first_kept[1] <= 13 and len(kept_first) > 1
    # Entries 13.. are rewritten by a new leader (conflict), across segment starts.
    wal.save(None, ents(13, 15, term=2, tag=b"v2"))
    wal.sync()
    wal.close()
    _, entries, _, _, _ = reopen(disk, root, segment_bytes=200)
    assert entries == ents(13, 15, term=2, tag=b"v2")


def test_sync_is_one_fdatasync_whatever_the_batch_size() -> None:
    for batches in (1, 5, 200):
        disk = CountingDisk(MemoryDisk())
        wal = WAL.create(disk, "/w")
        syncs, writes = disk.file_syncs, disk.writes
        index = 1
        for _ in range(batches):
            wal.save(HardState(1, NodeId(1), index - 1), ents(index, index + 2))
            index += 3
        assert disk.writes - writes == batches  # one write per save
        assert disk.file_syncs == syncs  # save never syncs
        wal.sync()
        assert disk.file_syncs == syncs + 1
        wal.sync()  # nothing new: no fdatasync at all
        assert disk.file_syncs == syncs + 1


def test_create_refuses_an_existing_log_and_open_needs_one(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    assert not WAL.exists(disk, root)
    WAL.create(disk, root).close()
    assert WAL.exists(disk, root)
    with pytest.raises(StorageError):
        WAL.create(disk, root)
    other = os.path.join(os.path.dirname(root), "empty")
    disk.makedirs(other)
    with pytest.raises(StorageError):
        WAL.open(disk, other)


def test_stale_segment_tmp_is_removed_at_open(
    disk_dir: tuple[Disk, str], caplog: pytest.LogCaptureFixture
) -> None:
    disk, root = disk_dir
    wal = WAL.create(disk, root)
    wal.save(None, ents(1, 3))
    wal.sync()
    wal.close()
    leftover = os.path.join(root, segment_name(1, 4) + ".tmp")
    f = disk.create(leftover)
    f.write(b"half a header")
    f.close()
    with caplog.at_level(logging.WARNING, logger="kvstore.storage.wal"):
        _, entries, _, _, _ = reopen(disk, root)
    assert not disk.exists(leftover)
    assert entries == ents(1, 3)
    assert any("left unfinished" in r.message for r in caplog.records)


def test_unsafe_no_fsync_never_syncs_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    disk = CountingDisk(MemoryDisk())
    with caplog.at_level(logging.WARNING, logger="kvstore.storage.wal"):
        wal = WAL.create(disk, "/w", unsafe_no_fsync=True, segment_bytes=200)
    assert wal.unsafe_no_fsync
    warnings = [r for r in caplog.records if "unsafe_no_fsync" in r.message]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    for i in range(1, 30):
        wal.save(None, ents(i, i))
        wal.sync()
    assert len(wal.segment_paths) > 1
    assert disk.file_syncs == 0 and disk.dir_syncs == 0
    safe = WAL.create(CountingDisk(MemoryDisk()), "/w")
    assert not safe.unsafe_no_fsync


def test_synced_entries_survive_a_crash_and_unsynced_ones_do_not() -> None:
    disk = MemoryDisk()
    wal = WAL.create(disk, "/w", segment_bytes=300)
    for i in range(1, 21):
        wal.save(HardState(1, NodeId(1), i - 1), ents(i, i))
    wal.sync()
    wal.save(HardState(1, NodeId(1), 20), ents(21, 25))
    disk.crash()
    _, entries, hs, _, _ = reopen(disk, "/w", segment_bytes=300)
    assert entries == ents(1, 20)
    assert hs.commit == 19


def test_use_after_close_raises(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    wal = WAL.create(disk, root)
    wal.close()
    with pytest.raises(InvariantError):
        wal.save(None, ents(1, 1))


def test_overwrite_reaching_below_the_first_kept_segment(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    wal = WAL.create(disk, root, segment_bytes=1)  # every save starts a segment
    wal.save(None, ents(1, 10))
    wal.save(None, ents(11, 20))
    wal.save(None, ents(8, 12, term=2, tag=b"v2"))  # a new leader rewrites 8..
    wal.save_snapshot_marker(12, 2)
    wal.sync()
    assert wal.release_to(12) == 2  # the segment holding 11..20 stays
    wal.save(None, ents(13, 14, term=2))
    wal.sync()
    wal.close()
    _, entries, _, snap_index, snap_term = reopen(disk, root, segment_bytes=1)
    assert (snap_index, snap_term) == (12, 2)
    assert entries == ents(13, 14, term=2)


@pytest.mark.parametrize("fault", ["write", "sync"])
def test_a_failed_write_or_sync_stops_the_log_until_reopened(fault: str) -> None:
    disk = FailingDisk(MemoryDisk())
    wal = WAL.create(disk, "/w")
    wal.save(None, ents(1, 2))
    wal.sync()
    if fault == "write":
        disk.fail_writes = True
        with pytest.raises(OSError):
            wal.save(None, ents(3, 4))
    else:
        wal.save(None, ents(3, 4))
        disk.fail_syncs = True
        with pytest.raises(OSError):
            wal.sync()
    disk.fail_writes = disk.fail_syncs = False
    with pytest.raises(StorageError, match="failed earlier"):
        wal.save(None, ents(3, 3))
    with pytest.raises(StorageError):
        wal.sync()
    # Reopening recovers what is verifiably there; a half-written record is a torn tail.
    wal, rec = WAL.open(disk, "/w")
    assert rec.entries[:2] == ents(1, 2)
    wal.save(None, ents(rec.entries[-1].index + 1, 6))
    wal.sync()
    wal.close()
    _, rec = WAL.open(disk, "/w")
    assert [e.index for e in rec.entries] == list(range(1, 7))
