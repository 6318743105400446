"""The I/O seam between the storage layer and a filesystem.

Everything in ``kvstore.storage`` touches the disk only through a ``Disk``, so
the same write-ahead log and snapshot code runs on real files (``OsDisk``) and
on the deterministic fake the simulator crashes at will
(``kvstore.storage.memory_disk.MemoryDisk``).

The contract is POSIX's, stated plainly so both implementations keep it:

- ``DiskFile.write`` appends to the file's page cache; nothing written is
  durable until ``DiskFile.sync`` (one ``fdatasync``) returns.
- ``DiskFile.preallocate`` only reserves space: what the file holds, and its
  size, do not change (on Linux, ``fallocate`` with ``FALLOC_FL_KEEP_SIZE``;
  elsewhere nothing). Appends into reserved space sync faster: the
  filesystem allocates no blocks while the data is synced.
- ``create``, ``rename`` and ``remove`` change a directory; the change is
  durable only once ``sync_dir`` on that directory returns.
- ``truncate`` is durable once the file is synced.
- ``makedirs`` is durable when it returns (it syncs the parents it changed).
- ``listdir`` returns names sorted, so callers never depend on the order a
  filesystem happens to list them in.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable
from typing import Protocol, cast

__all__ = ["Disk", "DiskFile", "OsDisk", "OsFile"]


class DiskFile(Protocol):
    """A file opened for appending."""

    def write(self, data: bytes) -> None:
        """Append all of ``data`` (to the page cache; not yet durable)."""
        ...

    def sync(self) -> None:
        """Make every byte written so far durable (``fdatasync``)."""
        ...

    def preallocate(self, size: int) -> None:
        """Reserve space for the first ``size`` bytes; content and size stay as they are."""
        ...

    def close(self) -> None:
        """Release the handle; unsynced data stays in the page cache."""
        ...


class Disk(Protocol):
    """A filesystem: paths are ``str``, joined with ``os.path.join``."""

    def makedirs(self, path: str) -> None:
        """Create ``path`` and its missing parents, durably; no error if it exists."""
        ...

    def exists(self, path: str) -> bool:
        """True if a file or directory is at ``path``."""
        ...

    def listdir(self, path: str) -> list[str]:
        """The names in directory ``path``, sorted."""
        ...

    def read(self, path: str) -> bytes:
        """The whole content of file ``path`` as the page cache holds it."""
        ...

    def size(self, path: str) -> int:
        """The length of file ``path`` in bytes."""
        ...

    def create(self, path: str) -> DiskFile:
        """Create (or empty) file ``path`` and open it for appending."""
        ...

    def open_append(self, path: str) -> DiskFile:
        """Open the existing file ``path`` for appending at its end."""
        ...

    def truncate(self, path: str, size: int) -> None:
        """Cut file ``path`` to ``size`` bytes (durable once the file is synced)."""
        ...

    def rename(self, src: str, dst: str) -> None:
        """Atomically move ``src`` to ``dst``, replacing ``dst`` if it exists."""
        ...

    def remove(self, path: str) -> None:
        """Delete file ``path``."""
        ...

    def sync_dir(self, path: str) -> None:
        """Make every create, rename and remove in directory ``path`` durable."""
        ...


_fdatasync = getattr(os, "fdatasync", os.fsync)
_FALLOC_FL_KEEP_SIZE = 1


def _load_fallocate() -> Callable[[int, int, int, int], int] | None:
    """Linux's ``fallocate(2)`` (which takes flags, unlike ``os.posix_fallocate``), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fallocate = ctypes.CDLL(None, use_errno=True).fallocate
    except (OSError, AttributeError):
        return None
    fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    fallocate.restype = ctypes.c_int
    return cast(Callable[[int, int, int, int], int], fallocate)


_fallocate = _load_fallocate()


class OsFile:
    """An append-only file descriptor on the real filesystem."""

    __slots__ = ("_fd", "path")

    def __init__(self, fd: int, path: str) -> None:
        self._fd = fd
        self.path = path

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def sync(self) -> None:
        _fdatasync(self._fd)

    def preallocate(self, size: int) -> None:
        # Best effort: a filesystem without fallocate just allocates as it goes.
        if _fallocate is not None and self._fd >= 0 and size > 0:
            _fallocate(self._fd, _FALLOC_FL_KEEP_SIZE, 0, size)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class OsDisk:
    """The real filesystem, through ``os`` calls (``fdatasync`` where the OS has it)."""

    def makedirs(self, path: str) -> None:
        missing: list[str] = []
        head = os.path.abspath(path)
        while not os.path.isdir(head):
            missing.append(head)
            head = os.path.dirname(head)
        for directory in reversed(missing):
            try:
                os.mkdir(directory)
            except FileExistsError:
                if not os.path.isdir(directory):
                    raise
                continue
            self.sync_dir(os.path.dirname(directory))

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def listdir(self, path: str) -> list[str]:
        return sorted(os.listdir(path))

    def read(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def size(self, path: str) -> int:
        return os.stat(path).st_size

    def create(self, path: str) -> OsFile:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        return OsFile(fd, path)

    def open_append(self, path: str) -> OsFile:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        return OsFile(fd, path)

    def truncate(self, path: str, size: int) -> None:
        os.truncate(path, size)

    def rename(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def remove(self, path: str) -> None:
        os.remove(path)

    def sync_dir(self, path: str) -> None:
        fd = os.open(path or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
