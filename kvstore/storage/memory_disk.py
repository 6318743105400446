"""A deterministic in-memory ``Disk`` that can crash.

``MemoryDisk`` keeps, for every file, the bytes a crash would leave (the
*durable* content) apart from the page cache the running program sees, and
for every directory, the names a crash would leave apart from the current
ones. It follows the contract in ``kvstore.storage.disk``:

- ``write`` changes only the page cache; ``DiskFile.sync`` makes the file's
  current content durable.
- ``create``, ``rename`` and ``remove`` change only the current names of a
  directory; ``sync_dir`` makes them durable. A file that was synced but whose
  name never reached a synced directory is gone after a crash.
- ``truncate`` is durable once the file is synced.
- ``makedirs`` is durable at once.

``crash(rng)`` throws the page cache away: every file goes back to its durable
content and every directory to its durable names. Given a ``random.Random``,
a file that was only appended to since its last sync keeps a random prefix of
the unsynced bytes (possibly none, possibly all), as a write torn by a power
cut would. Nothing depends on set order, hashing or time: the same calls with
the same seed give the same bytes.
"""

from __future__ import annotations

import errno
import posixpath
import random

from kvstore.errors import InvariantError

__all__ = ["MemoryDisk", "MemoryFile"]


class _Inode:
    """One file's bytes: what the program sees and what would survive a crash."""

    __slots__ = ("data", "durable", "append_only")

    def __init__(self) -> None:
        self.data = bytearray()
        self.durable = b""
        # True while ``data`` is ``durable`` plus appended bytes, so a crash
        # may keep a prefix of those bytes; a truncate clears it until the next sync.
        self.append_only = True

    def sync(self) -> None:
        self.durable = bytes(self.data)
        self.append_only = True

    def crash(self, rng: random.Random | None) -> None:
        content = self.durable
        unsynced = len(self.data) - len(content)
        if rng is not None and self.append_only and unsynced > 0:
            keep = rng.randint(0, unsynced)
            content = content + bytes(self.data[len(content) : len(content) + keep])
        self.durable = content
        self.data = bytearray(content)
        self.append_only = True


class _Dir:
    """A directory's current names and the names a crash would leave."""

    __slots__ = ("names", "durable")

    def __init__(self) -> None:
        self.names: dict[str, _Inode] = {}
        self.durable: dict[str, _Inode] = {}


class MemoryFile:
    """An append handle on a ``MemoryDisk`` file; dead after ``close`` or a crash."""

    __slots__ = ("_disk", "_inode", "_generation", "path")

    def __init__(self, disk: MemoryDisk, inode: _Inode, path: str) -> None:
        self._disk = disk
        self._inode: _Inode | None = inode
        self._generation = disk.generation
        self.path = path

    def _live(self) -> _Inode:
        if self._inode is None:
            raise InvariantError(f"{self.path}: file used after close")
        if self._generation != self._disk.generation:
            raise InvariantError(f"{self.path}: file opened before a crash used after it")
        return self._inode

    def write(self, data: bytes) -> None:
        self._live().data += data

    def sync(self) -> None:
        self._live().sync()

    def preallocate(self, size: int) -> None:
        """Reserving space changes nothing a reader or a crash can see."""
        self._live()

    def close(self) -> None:
        self._inode = None


class MemoryDisk:
    """An in-memory filesystem with POSIX durability rules and a ``crash()``."""

    def __init__(self) -> None:
        self._dirs: dict[str, _Dir] = {}
        self.generation = 0
        """Bumped by every crash; handles from an earlier generation refuse to work."""

    # -- Disk --------------------------------------------------------------

    def makedirs(self, path: str) -> None:
        path = posixpath.normpath(path)
        while path not in self._dirs:
            if self._lookup_file(path) is not None:
                raise FileExistsError(errno.EEXIST, "file exists", path)
            self._dirs[path] = _Dir()
            parent = posixpath.dirname(path)
            if parent == path or not parent:
                break
            path = parent

    def exists(self, path: str) -> bool:
        path = posixpath.normpath(path)
        return path in self._dirs or self._lookup_file(path) is not None

    def listdir(self, path: str) -> list[str]:
        path = posixpath.normpath(path)
        names = list(self._dir(path).names)
        prefix = "" if path == "." else path.rstrip("/") + "/"
        start = len(prefix)
        for sub in self._dirs:
            if sub != path and sub.startswith(prefix) and "/" not in sub[start:]:
                names.append(sub[start:])
        return sorted(names)

    def read(self, path: str) -> bytes:
        return bytes(self._file(path).data)

    def size(self, path: str) -> int:
        return len(self._file(path).data)

    def create(self, path: str) -> MemoryFile:
        directory, name = self._split(path)
        inode = directory.names.get(name)
        if inode is None:
            inode = _Inode()
            directory.names[name] = inode
        else:
            del inode.data[:]
            inode.append_only = False
        return MemoryFile(self, inode, path)

    def open_append(self, path: str) -> MemoryFile:
        return MemoryFile(self, self._file(path), path)

    def truncate(self, path: str, size: int) -> None:
        inode = self._file(path)
        if size < len(inode.data):
            del inode.data[size:]
            inode.append_only = False
        else:
            inode.data += bytes(size - len(inode.data))

    def rename(self, src: str, dst: str) -> None:
        src_dir, src_name = self._split(src)
        dst_dir, dst_name = self._split(dst)
        inode = src_dir.names.pop(src_name, None)
        if inode is None:
            raise FileNotFoundError(errno.ENOENT, "no such file", src)
        dst_dir.names[dst_name] = inode

    def remove(self, path: str) -> None:
        directory, name = self._split(path)
        if directory.names.pop(name, None) is None:
            raise FileNotFoundError(errno.ENOENT, "no such file", path)

    def sync_dir(self, path: str) -> None:
        directory = self._dir(posixpath.normpath(path))
        directory.durable = dict(directory.names)

    # -- faults ------------------------------------------------------------

    def crash(self, rng: random.Random | None = None) -> None:
        """Lose everything not durable; with ``rng``, keep torn prefixes of unsynced appends.

        Files are visited in sorted path order, so a seeded ``rng`` always
        tears the same files the same way.
        """
        self.generation += 1
        seen: dict[int, _Inode] = {}
        for dir_path in sorted(self._dirs):
            directory = self._dirs[dir_path]
            directory.names = dict(directory.durable)
            for name in sorted(directory.names):
                inode = directory.names[name]
                seen.setdefault(id(inode), inode)
        for inode in seen.values():
            inode.crash(rng)

    # -- internals ---------------------------------------------------------

    def _dir(self, path: str) -> _Dir:
        directory = self._dirs.get(path)
        if directory is None:
            raise FileNotFoundError(errno.ENOENT, "no such directory", path)
        return directory

    def _split(self, path: str) -> tuple[_Dir, str]:
        path = posixpath.normpath(path)
        parent, name = posixpath.split(path)
        if path in self._dirs:
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        return self._dir(parent or "."), name

    def _lookup_file(self, path: str) -> _Inode | None:
        parent, name = posixpath.split(path)
        directory = self._dirs.get(parent or ".")
        if directory is None:
            return None
        return directory.names.get(name)

    def _file(self, path: str) -> _Inode:
        inode = self._lookup_file(posixpath.normpath(path))
        if inode is None:
            raise FileNotFoundError(errno.ENOENT, "no such file", path)
        return inode
