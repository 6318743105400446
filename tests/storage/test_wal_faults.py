"""WAL recovery under damage: torn tails are cut, everything else is a CorruptError."""

from __future__ import annotations

import logging
import os

import msgpack  # type: ignore[import-untyped, unused-ignore]
import pytest

from kvstore.errors import CorruptError
from kvstore.raft.messages import Entry, HardState, NodeId
from kvstore.storage.disk import Disk
from kvstore.storage.memory_disk import MemoryDisk
from kvstore.storage.record import HEADER, RecordType
from kvstore.storage.wal import DEFAULT_SEGMENT_BYTES, WAL
from tests.storage.faults import append_record, flip_bit, record_offsets, rewrite


def ents(first: int, last: int, term: int = 1) -> list[Entry]:
    return [Entry(term, i, b"payload-%d" % i) for i in range(first, last + 1)]


def build(disk: Disk, root: str, *, segment_bytes: int = 1 << 20) -> list[str]:
    """A synced log of entries 1..12 in four batches, each followed by a hard state."""
    wal = WAL.create(disk, root, segment_bytes=segment_bytes)
    for first in (1, 4, 7, 10):
        wal.save(HardState(1, NodeId(1), first - 1), ents(first, first + 2))
    wal.sync()
    paths = wal.segment_paths
    wal.close()
    return paths


def recover(
    disk: Disk, root: str, *, segment_bytes: int = DEFAULT_SEGMENT_BYTES
) -> tuple[list[Entry], HardState]:
    wal, rec = WAL.open(disk, root, segment_bytes=segment_bytes)
    wal.close()
    return rec.entries, rec.hard_state


def test_a_tail_cut_at_every_byte_recovers_every_earlier_record(
    disk_dir: tuple[Disk, str], caplog: pytest.LogCaptureFixture
) -> None:
    disk, root = disk_dir
    wal = WAL.create(disk, root)
    wal.save(HardState(1, NodeId(1), 0), ents(1, 3))
    wal.save(None, ents(4, 6))  # the last record: an entries batch
    wal.sync()
    (path,) = wal.segment_paths
    wal.close()
    full = disk.read(path)
    last = record_offsets(disk, path)[-1]
    for cut in range(last, len(full)):
        rewrite(disk, path, full[:cut])
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="kvstore.storage.wal"):
            wal, rec = WAL.open(disk, root)
        assert rec.entries == ents(1, 3), cut
        assert rec.hard_state == HardState(1, NodeId(1), 0)
        assert disk.size(path) == last  # truncated to the last good record
        assert bool(caplog.records) == (cut > last)
        # The log goes on from the cut.
        wal.save(None, ents(4, 4, term=2))
        wal.sync()
        wal.close()
        entries, _ = recover(disk, root)
        assert entries == ents(1, 3) + ents(4, 4, term=2)


def test_a_tail_zeroed_at_every_byte_recovers_every_earlier_record(
    disk_dir: tuple[Disk, str],
) -> None:
    disk, root = disk_dir
    paths = build(disk, root)
    full = disk.read(paths[-1])
    offsets = record_offsets(disk, paths[-1])
    last = offsets[-1]  # the final hard state record
    for cut in range(last, len(full)):
        # What a write cut short over zero-filled space leaves: the same
        # length of file, zeros from the cut on, plus trailing zeros.
        rewrite(disk, paths[-1], full[:cut] + bytes(len(full) - cut + 64))
        entries, hs = recover(disk, root)
        assert entries == ents(1, 12), cut
        assert hs == HardState(1, NodeId(1), 6)  # the hard state before the torn one


def test_torn_tail_in_the_last_of_several_segments(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    paths = build(disk, root, segment_bytes=60)
    assert len(paths) == 4
    full = disk.read(paths[-1])
    offsets = record_offsets(disk, paths[-1])
    for cut in range(offsets[1], len(full)):
        rewrite(disk, paths[-1], full[:cut])
        entries, _ = recover(disk, root, segment_bytes=60)
        # Segments before the last are whole; the last keeps what was not cut.
        assert entries == ents(1, 9 if cut < offsets[2] else 12), cut


def test_a_flipped_bit_anywhere_in_the_last_record_is_corruption(
    disk_dir: tuple[Disk, str],
) -> None:
    disk, root = disk_dir
    paths = build(disk, root)
    path = paths[-1]
    full = disk.read(path)
    last = record_offsets(disk, path)[-1]
    for offset in range(last, len(full)):
        for bit in (0, 7):
            rewrite(disk, path, full)
            flip_bit(disk, path, offset, bit)
            with pytest.raises(CorruptError) as info:
                WAL.open(disk, root)
            assert info.value.path == path
            assert info.value.offset == last, (offset, bit)


def test_a_flipped_bit_in_an_earlier_record_names_file_and_offset(
    disk_dir: tuple[Disk, str],
) -> None:
    disk, root = disk_dir
    paths = build(disk, root)
    offsets = record_offsets(disk, paths[0])
    target = offsets[3]  # the second entries batch; good records follow it
    flip_bit(disk, paths[0], target + HEADER.size + 5)
    with pytest.raises(CorruptError) as info:
        WAL.open(disk, root)
    assert (info.value.path, info.value.offset) == (paths[0], target)
    assert "CRC" in info.value.reason
    assert paths[0] in str(info.value)


def test_corruption_in_a_segment_that_is_not_the_last(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    paths = build(disk, root, segment_bytes=60)
    data = disk.read(paths[1])
    rewrite(disk, paths[1], data[:-3])  # a torn tail is only allowed in the last segment
    with pytest.raises(CorruptError) as info:
        WAL.open(disk, root, segment_bytes=60)
    assert info.value.path == paths[1]
    rewrite(disk, paths[1], data + bytes(10))  # so are zeros
    with pytest.raises(CorruptError):
        WAL.open(disk, root, segment_bytes=60)


def test_a_missing_middle_segment_is_corruption(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    paths = build(disk, root, segment_bytes=60)
    assert len(paths) >= 3
    disk.remove(paths[1])
    with pytest.raises(CorruptError) as info:
        WAL.open(disk, root, segment_bytes=60)
    assert info.value.path == paths[2]
    assert "missing segment" in info.value.reason


def test_a_gap_in_entry_indexes_is_corruption(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    paths = build(disk, root)
    payload = msgpack.packb((14, [(1, b"x", 0)]))  # 13 is missing
    offset = append_record(disk, paths[-1], RecordType.ENTRIES, payload)
    with pytest.raises(CorruptError) as info:
        WAL.open(disk, root)
    assert (info.value.path, info.value.offset) == (paths[-1], offset)
    assert "gap" in info.value.reason


@pytest.mark.parametrize(
    ("rtype", "payload", "reason"),
    [
        (RecordType.ENTRIES, b"\xc1", "undecodable"),
        (RecordType.ENTRIES, msgpack.packb((13, [(1, b"x")])), "malformed entries"),
        (RecordType.HARD_STATE, msgpack.packb((1, 2)), "malformed hard state"),
        (RecordType.SNAPSHOT, msgpack.packb((40, 1, False)), "past the log"),
        (RecordType.SEGMENT_HEADER, msgpack.packb((1,) * 9), "second segment header"),
    ],
)
def test_well_framed_records_the_writer_never_makes_are_corruption(
    disk_dir: tuple[Disk, str], rtype: RecordType, payload: bytes, reason: str
) -> None:
    disk, root = disk_dir
    paths = build(disk, root)
    offset = append_record(disk, paths[-1], rtype, payload)
    with pytest.raises(CorruptError) as info:
        WAL.open(disk, root)
    assert info.value.offset == offset
    assert reason in info.value.reason


def test_entries_below_the_snapshot_are_corruption(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    wal = WAL.create(disk, root)
    wal.save(None, ents(1, 6))
    wal.save_snapshot_marker(5, 1)
    wal.sync()
    (path,) = wal.segment_paths
    wal.close()
    offset = append_record(disk, path, RecordType.ENTRIES, msgpack.packb((4, [(1, b"x", 0)])))
    with pytest.raises(CorruptError) as info:
        WAL.open(disk, root)
    assert info.value.offset == offset


def test_a_damaged_length_field_in_the_last_record_is_corruption(
    disk_dir: tuple[Disk, str],
) -> None:
    disk, root = disk_dir
    paths = build(disk, root)
    last = record_offsets(disk, paths[-1])[-1]
    flip_bit(disk, paths[-1], last + 2, 3)  # the length grows past the end of the file
    with pytest.raises(CorruptError) as info:
        WAL.open(disk, root)
    assert info.value.offset == last
    assert "length" in info.value.reason


def test_data_after_a_hole_is_corruption_not_a_torn_tail(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    paths = build(disk, root)
    full = disk.read(paths[-1])
    rewrite(disk, paths[-1], full + bytes(40) + b"\x07late data")
    with pytest.raises(CorruptError) as info:
        WAL.open(disk, root)
    assert info.value.offset == len(full)


def test_a_damaged_or_foreign_header_is_corruption(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    paths = build(disk, root, segment_bytes=60)
    flip_bit(disk, paths[-1], HEADER.size + 3)  # inside the last segment's header
    with pytest.raises(CorruptError) as info:
        WAL.open(disk, root, segment_bytes=60)
    assert (info.value.path, info.value.offset) == (paths[-1], 0)


def test_a_segment_from_another_log_breaks_the_chain() -> None:
    disk = MemoryDisk()
    paths_a = build(disk, "/a", segment_bytes=60)
    wal = WAL.create(disk, "/b", segment_bytes=60)
    for first in (1, 4, 7, 10):  # same shape, different bytes
        batch = [Entry(1, i, b"other") for i in range(first, first + 3)]
        wal.save(HardState(1, NodeId(1), first - 1), batch)
    wal.sync()
    paths_b = wal.segment_paths
    wal.close()
    assert [os.path.basename(p) for p in paths_a] == [os.path.basename(p) for p in paths_b]
    rewrite(disk, paths_a[1], disk.read(paths_b[1]))
    with pytest.raises(CorruptError) as info:
        WAL.open(disk, "/a", segment_bytes=60)
    assert info.value.path == paths_a[1]
    assert "does not continue" in info.value.reason


def test_a_renamed_segment_is_corruption(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    (path,) = build(disk, root)
    disk.rename(path, os.path.join(root, "0000000000000000-0000000000000009.wal"))
    with pytest.raises(CorruptError) as info:
        WAL.open(disk, root)
    assert "file name" in info.value.reason
    disk.rename(os.path.join(root, "0000000000000000-0000000000000009.wal"), path)
    disk.create(os.path.join(root, "junk.wal")).close()
    with pytest.raises(CorruptError):
        WAL.open(disk, root)


def test_a_snapshot_marker_going_backwards_is_corruption(disk_dir: tuple[Disk, str]) -> None:
    disk, root = disk_dir
    wal = WAL.create(disk, root)
    wal.save(None, ents(1, 6))
    wal.save_snapshot_marker(5, 1)
    wal.sync()
    (path,) = wal.segment_paths
    wal.close()
    offset = append_record(disk, path, RecordType.SNAPSHOT, msgpack.packb((2, 1, False)))
    with pytest.raises(CorruptError) as info:
        WAL.open(disk, root)
    assert info.value.offset == offset
    assert "behind" in info.value.reason


def test_a_missing_oldest_segment_is_corruption(disk_dir: tuple[Disk, str]) -> None:
    # Unlike a release, nothing covers the entries the deleted segment held.
    disk, root = disk_dir
    paths = build(disk, root, segment_bytes=60)
    disk.remove(paths[0])
    with pytest.raises(CorruptError) as info:
        WAL.open(disk, root, segment_bytes=60)
    assert "missing" in info.value.reason
