"""Test helpers for the storage tests: a counting ``Disk`` wrapper and byte surgery on files."""

from __future__ import annotations

import errno

from kvstore.storage.disk import Disk, DiskFile
from kvstore.storage.record import RecordType, frame_into, scan


class CountingFile:
    """Wraps a ``DiskFile`` and counts its writes and syncs on the owning ``CountingDisk``."""

    def __init__(self, inner: DiskFile, counts: CountingDisk) -> None:
        self._inner = inner
        self._counts = counts

    def write(self, data: bytes) -> None:
        self._counts.writes += 1
        self._inner.write(data)

    def sync(self) -> None:
        self._counts.file_syncs += 1
        self._inner.sync()

    def preallocate(self, size: int) -> None:
        self._inner.preallocate(size)

    def close(self) -> None:
        self._inner.close()


class CountingDisk:
    """A ``Disk`` that forwards everything and counts writes, file syncs and directory syncs."""

    def __init__(self, inner: Disk) -> None:
        self.inner = inner
        self.writes = 0
        self.file_syncs = 0
        self.dir_syncs = 0

    def makedirs(self, path: str) -> None:
        self.inner.makedirs(path)

    def exists(self, path: str) -> bool:
        return self.inner.exists(path)

    def listdir(self, path: str) -> list[str]:
        return self.inner.listdir(path)

    def read(self, path: str) -> bytes:
        return self.inner.read(path)

    def size(self, path: str) -> int:
        return self.inner.size(path)

    def create(self, path: str) -> CountingFile:
        return CountingFile(self.inner.create(path), self)

    def open_append(self, path: str) -> CountingFile:
        return CountingFile(self.inner.open_append(path), self)

    def truncate(self, path: str, size: int) -> None:
        self.inner.truncate(path, size)

    def rename(self, src: str, dst: str) -> None:
        self.inner.rename(src, dst)

    def remove(self, path: str) -> None:
        self.inner.remove(path)

    def sync_dir(self, path: str) -> None:
        self.dir_syncs += 1
        self.inner.sync_dir(path)


def rewrite(disk: Disk, path: str, data: bytes) -> None:
    """Replace the content of ``path`` with ``data``, durably."""
    file = disk.create(path)
    file.write(data)
    file.sync()
    file.close()


def flip_bit(disk: Disk, path: str, offset: int, bit: int = 0) -> None:
    data = bytearray(disk.read(path))
    data[offset] ^= 1 << bit
    rewrite(disk, path, bytes(data))


def record_offsets(disk: Disk, path: str) -> list[int]:
    """The offsets of the verified records in a segment (header first)."""
    return [r.offset for r in scan(disk.read(path), path, tail_may_tear=True).records]


def append_record(disk: Disk, path: str, rtype: RecordType, payload: bytes) -> int:
    """Append a correctly framed and chained record to a segment; return its offset."""
    data = disk.read(path)
    found = scan(data, path, tail_may_tear=True)
    if found.end != len(data):
        raise ValueError("segment has a torn tail")
    parts: list[bytes] = []
    frame_into(parts, rtype, payload, found.crc)
    rewrite(disk, path, data + b"".join(parts))
    return len(data)


class FailingFile(CountingFile):
    """A ``CountingFile`` whose writes and syncs raise ``OSError`` when its disk says so."""

    def __init__(self, inner: DiskFile, disk: FailingDisk) -> None:
        super().__init__(inner, disk)
        self._disk = disk

    def write(self, data: bytes) -> None:
        if self._disk.fail_writes:
            # A short write: half the data reaches the file, then the error.
            self._inner.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "no space left on device")
        super().write(data)

    def sync(self) -> None:
        if self._disk.fail_syncs:
            raise OSError(errno.EIO, "input/output error")
        super().sync()


class FailingDisk(CountingDisk):
    """A ``CountingDisk`` whose files fail on demand."""

    def __init__(self, inner: Disk) -> None:
        super().__init__(inner)
        self.fail_writes = False
        self.fail_syncs = False

    def create(self, path: str) -> FailingFile:
        return FailingFile(self.inner.create(path), self)

    def open_append(self, path: str) -> FailingFile:
        return FailingFile(self.inner.open_append(path), self)
