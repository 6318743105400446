"""Segments reserve their disk space up front; what they hold and their size do not change."""

from __future__ import annotations

import os
from typing import Any

import pytest

from kvstore.raft.messages import Entry, HardState
from kvstore.storage import disk as disk_module
from kvstore.storage.disk import OsDisk
from kvstore.storage.memory_disk import MemoryDisk
from kvstore.storage.wal import RESERVE_STEP, WAL

needs_fallocate = pytest.mark.skipif(
    disk_module._fallocate is None, reason="no fallocate(2) on this platform"
)
SEGMENT = 1 << 20


def _reserved(path: str) -> int:
    return os.stat(path).st_blocks * 512


@needs_fallocate
def test_preallocate_reserves_blocks_and_keeps_size_and_content(tmp_path: Any) -> None:
    path = str(tmp_path / "f")
    f = OsDisk().create(path)
    f.write(b"abc")
    f.preallocate(SEGMENT)
    f.write(b"def")
    f.sync()
    f.close()
    assert os.path.getsize(path) == 6
    assert _reserved(path) >= SEGMENT
    with open(path, "rb") as r:
        assert r.read() == b"abcdef"


@needs_fallocate
def test_wal_segments_are_preallocated_and_recover_as_written(tmp_path: Any) -> None:
    root = str(tmp_path / "wal")
    disk = OsDisk()
    wal = WAL.create(disk, root, segment_bytes=SEGMENT)
    entries = [Entry(1, i, b"x" * 100) for i in range(1, 51)]
    wal.save(HardState(term=1, commit=50), entries)
    wal.sync()
    (segment,) = wal.segment_paths
    written = os.path.getsize(segment)
    assert written < SEGMENT // 4
    assert _reserved(segment) >= SEGMENT
    wal.close()
    # Reopened: the same records, no torn tail to cut, and the space reserved again.
    wal, recovered = WAL.open(disk, root, segment_bytes=SEGMENT)
    assert recovered.entries == entries
    assert os.path.getsize(segment) == written
    assert _reserved(segment) >= SEGMENT
    wal.save(None, [Entry(1, 51, b"y")])
    wal.sync()
    wal.close()
    _, recovered = WAL.open(disk, root, segment_bytes=SEGMENT)
    assert recovered.entries == entries + [Entry(1, 51, b"y")]


@needs_fallocate
def test_big_segments_reserve_ahead_of_their_appends_a_step_at_a_time(tmp_path: Any) -> None:
    root = str(tmp_path / "wal")
    segment_bytes = 4 * RESERVE_STEP
    wal = WAL.create(OsDisk(), root, segment_bytes=segment_bytes)
    (segment,) = wal.segment_paths
    # A new segment holds one step of disk, not the whole segment.
    assert RESERVE_STEP <= _reserved(segment) < 2 * RESERVE_STEP
    value = b"v" * (64 * 1024)
    count = RESERVE_STEP // len(value) + 8  # just past the first step
    wal.save(HardState(term=1, commit=count),
             [Entry(1, i, value) for i in range(1, count + 1)])
    wal.sync()
    written = os.path.getsize(segment)
    assert RESERVE_STEP < written < segment_bytes
    assert written + RESERVE_STEP <= _reserved(segment) < segment_bytes
    wal.close()
    _, recovered = WAL.open(OsDisk(), root, segment_bytes=segment_bytes)
    assert len(recovered.entries) == count


def test_memory_disk_preallocate_changes_nothing_visible() -> None:
    disk = MemoryDisk()
    disk.makedirs("/d")
    f = disk.create("/d/f")
    f.write(b"abc")
    f.preallocate(SEGMENT)
    f.sync()
    assert disk.read("/d/f") == b"abc"
    assert disk.size("/d/f") == 3
