"""Snapshot files: written whole or not at all, verified when read.

A store is a directory of ``%016x-%016x.snap`` files named from the
snapshot's term and index. ``save`` writes ``<name>.tmp``, syncs it, renames
it into place and syncs the directory, so a crash leaves either the complete
new file or none (plus, perhaps, a ``.tmp`` leftover, which ``open`` removes
and logs). ``prune`` keeps only the newest ``retain`` snapshots.

File layout (integers little-endian)::

    magic     8 bytes  b"STEERSNP"
    metadata  frame    msgpack [index, term, [voter, ...]]
    chunk     frame    application data, as many as were given (none empty)
    end       u32 0, u32 crc   the CRC chain's final value

    frame     u32 length, u32 crc, length bytes

Each frame's CRC-32 starts from the previous frame's (the metadata's from 0),
so a missing, reordered or truncated chunk fails verification, and the end
frame proves the file is complete. ``load`` verifies the whole file before
returning; any failure raises ``CorruptError`` naming the file and offset:
a corrupt snapshot is never replaced silently by an older one.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import zlib
from collections.abc import Iterable, Iterator

import msgpack  # type: ignore[import-untyped, unused-ignore]

from kvstore.errors import CorruptError
from kvstore.raft.messages import ConfState, NodeId, SnapshotMetadata
from kvstore.storage.disk import Disk

__all__ = ["SnapshotStore", "snapshot_name"]

logger = logging.getLogger(__name__)

_MAGIC = b"STEERSNP"
_FRAME = struct.Struct("<II")
_SUFFIX = ".snap"
_TMP_SUFFIX = ".tmp"
_NAME = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.snap$")


def snapshot_name(index: int, term: int) -> str:
    """The file name of the snapshot at ``index``/``term``."""
    return f"{term:016x}-{index:016x}{_SUFFIX}"


def _frame(data: bytes, crc: int) -> tuple[bytes, int]:
    crc = zlib.crc32(data, crc)
    return _FRAME.pack(len(data), crc) + data, crc


class SnapshotStore:
    """A directory of snapshot files. Build it with ``open``."""

    def __init__(self, disk: Disk, directory: str, *, retain: int = 2) -> None:
        if retain < 1:
            raise ValueError(f"retain must be at least 1, not {retain}")
        self._disk = disk
        self._dir = directory
        self._retain = retain

    @classmethod
    def open(cls, disk: Disk, directory: str, *, retain: int = 2) -> SnapshotStore:
        """Open (creating if missing) the store in ``directory``; remove crash leftovers."""
        disk.makedirs(directory)
        store = cls(disk, directory, retain=retain)
        leftovers = [n for n in disk.listdir(directory) if n.endswith(_SUFFIX + _TMP_SUFFIX)]
        for name in leftovers:
            path = os.path.join(directory, name)
            logger.warning("removing %s, a snapshot left unfinished by a crash", path)
            disk.remove(path)
        if leftovers:
            disk.sync_dir(directory)
        return store

    @property
    def directory(self) -> str:
        return self._dir

    def path(self, index: int, term: int) -> str:
        return os.path.join(self._dir, snapshot_name(index, term))

    def list_snapshots(self) -> list[tuple[int, int]]:
        """``(index, term)`` of every snapshot file, oldest first."""
        found: list[tuple[int, int]] = []
        for name in self._disk.listdir(self._dir):
            match = _NAME.match(name)
            if match is not None:
                found.append((int(match.group(2), 16), int(match.group(1), 16)))
        found.sort()
        return found

    def save(self, metadata: SnapshotMetadata, chunks: Iterable[bytes]) -> str:
        """Durably write a snapshot from ``chunks``; return its path.

        When this returns, the file is complete, synced and its name durable.
        """
        path = self.path(metadata.index, metadata.term)
        tmp = path + _TMP_SUFFIX
        meta = msgpack.packb(
            (metadata.index, metadata.term, [int(v) for v in metadata.conf_state.voters])
        )
        file = self._disk.create(tmp)
        try:
            frame, crc = _frame(meta, 0)
            file.write(_MAGIC + frame)
            for chunk in chunks:
                if chunk:
                    frame, crc = _frame(chunk, crc)
                    file.write(frame)
            file.write(_FRAME.pack(0, crc))
            file.sync()
        finally:
            file.close()
        self._disk.rename(tmp, path)
        self._disk.sync_dir(self._dir)
        return path

    def load(self, index: int, term: int) -> tuple[SnapshotMetadata, Iterator[bytes]]:
        """Read and verify the snapshot at ``index``/``term``.

        Returns the metadata and an iterator over the data chunks, all verified.

        Raises:
            CorruptError: the file is missing, incomplete or fails verification.
        """
        path = self.path(index, term)
        if not self._disk.exists(path):
            raise CorruptError(path, 0, "snapshot file is missing")
        metadata, chunks = _verify(self._disk.read(path), path)
        if (metadata.index, metadata.term) != (index, term):
            raise CorruptError(path, 0, "snapshot metadata does not match the file name")
        return metadata, iter(chunks)

    def load_newest(self) -> tuple[SnapshotMetadata, Iterator[bytes]] | None:
        """The newest snapshot, verified; ``None`` if there is none.

        Raises:
            CorruptError: the newest snapshot fails verification (older ones
                are not tried in its place).
        """
        found = self.list_snapshots()
        if not found:
            return None
        return self.load(*found[-1])

    def prune(self) -> int:
        """Delete all but the newest ``retain`` snapshots; return how many were deleted."""
        doomed = self.list_snapshots()[: -self._retain]
        for index, term in doomed:
            self._disk.remove(self.path(index, term))
        if doomed:
            self._disk.sync_dir(self._dir)
        return len(doomed)

    def remove_newer_than(self, index: int) -> int:
        """Delete every snapshot past ``index``; return how many were deleted."""
        doomed = [(i, t) for i, t in self.list_snapshots() if i > index]
        for i, t in doomed:
            path = self.path(i, t)
            logger.warning("removing %s: no write-ahead log record refers to it", path)
            self._disk.remove(path)
        if doomed:
            self._disk.sync_dir(self._dir)
        return len(doomed)


def _verify(data: bytes, path: str) -> tuple[SnapshotMetadata, list[bytes]]:
    if not data.startswith(_MAGIC):
        raise CorruptError(path, 0, "not a snapshot file (bad magic)")
    offset = len(_MAGIC)
    crc = 0
    frames: list[bytes] = []
    while True:
        if len(data) - offset < _FRAME.size:
            raise CorruptError(path, offset, "snapshot ends before its end frame")
        length, stored = _FRAME.unpack_from(data, offset)
        start = offset + _FRAME.size
        if length == 0:
            if stored != crc:
                raise CorruptError(path, offset, "end frame CRC mismatch")
            if start != len(data):
                raise CorruptError(path, start, "bytes after the end frame")
            break
        end = start + length
        if end > len(data):
            raise CorruptError(path, offset, "frame runs past the end of the file")
        body = data[start:end]
        crc = zlib.crc32(body, crc)
        if crc != stored:
            raise CorruptError(path, offset, "CRC mismatch")
        frames.append(body)
        offset = end
    if not frames:
        raise CorruptError(path, len(_MAGIC), "snapshot has no metadata frame")
    try:
        index, term, voters = msgpack.unpackb(frames[0], use_list=False)
        metadata = SnapshotMetadata(
            int(index), int(term), ConfState(tuple(NodeId(int(v)) for v in voters))
        )
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise CorruptError(path, len(_MAGIC), f"malformed snapshot metadata: {exc}") from exc
    return metadata, frames[1:]
