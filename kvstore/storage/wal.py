"""A segmented write-ahead log for Raft's entries, hard state and snapshot markers.

The log is a directory of segment files (see ``kvstore.storage.segment`` for
names and payloads, ``kvstore.storage.record`` for framing and CRCs).

Writing:

- ``save(hard_state, entries)`` frames one entries record and/or one hard
  state record and hands them to the OS in a single ``write``; nothing is
  durable yet. ``sync()`` then makes everything saved so far durable with one
  ``fdatasync``, however many saves came before it (group commit).
- ``save_snapshot_marker(index, term)`` records that a snapshot at ``index``
  is saved, so entries up to it are no longer needed.
- When the current segment has reached ``segment_bytes``, the next save first
  syncs it and starts a new one, which restates the snapshot marker and hard
  state in its header. Each segment reserves disk ahead of its appends
  (``DiskFile.preallocate``), ``RESERVE_STEP`` bytes at a time up to
  ``segment_bytes``: appends then sync without the filesystem allocating
  blocks, which makes each ``fdatasync`` cheaper, and a small log does not
  hold a whole segment's worth of disk. ``release_to(index)`` deletes the segments every live
  entry of which a durable snapshot marker at ``index`` covers.

Recovery (``WAL.open``) verifies every record of every segment in order. A
torn tail in the last segment (see ``kvstore.storage.record`` for the exact
rule) is cut off, the file truncated to the last good record, and logged at
WARNING. Anything else that fails verification raises ``CorruptError``
naming the file and offset: nothing is ever skipped.

A ``WAL`` is not thread-safe: one call at a time.

A failed write or sync leaves the log refusing further use (``StorageError``)
until it is reopened, since what reached the disk is then unknown.

``unsafe_no_fsync=True`` turns every sync into a no-op, for benchmarks and
tests only; the log then says so at WARNING when it is created or opened. A
crash may then lose anything, and may leave a log that fails recovery.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

import msgpack  # type: ignore[import-untyped, unused-ignore]

from kvstore.errors import CorruptError, InvariantError, StorageError
from kvstore.raft.messages import Entry, HardState
from kvstore.storage.disk import Disk, DiskFile
from kvstore.storage.record import RecordType, frame_into, scan
from kvstore.storage.replay import Recovered, Replay
from kvstore.storage.segment import (
    SEGMENT_SUFFIX,
    TMP_SUFFIX,
    SegmentHeader,
    SnapshotMarker,
    decode_entries,
    decode_hard_state,
    decode_header,
    decode_snapshot_marker,
    encode_entries,
    encode_hard_state,
    encode_header,
    encode_snapshot_marker,
    entry_rows,
    parse_segment_name,
    segment_name,
)

__all__ = ["DEFAULT_SEGMENT_BYTES", "Recovered", "WAL"]

DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024

RESERVE_STEP = 8 * 1024 * 1024
"""Disk reserved ahead of a segment's appends at a time."""

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Segment:
    seq: int
    first_index: int
    path: str


class WAL:
    """A write-ahead log in one directory. Build it with ``create`` or ``open``."""

    def __init__(
        self, disk: Disk, directory: str, *, segment_bytes: int, unsafe_no_fsync: bool
    ) -> None:
        if segment_bytes <= 0:
            raise ValueError(f"segment_bytes must be positive, not {segment_bytes}")
        self._disk = disk
        self._dir = directory
        self._segment_bytes = segment_bytes
        self._unsafe = unsafe_no_fsync
        self._pack = msgpack.Packer().pack
        self._segments: list[_Segment] = []
        self._file: DiskFile | None = None
        self._size = 0  # bytes in the current segment
        self._reserved = 0  # bytes of the current segment with disk reserved
        self._crc = 0  # CRC chain value after the last record written
        self._dirty = False  # written since the last sync
        self._last_index = 0
        self._snapshot_index = 0
        self._snapshot_term = 0
        self._synced_snapshot_index = 0
        self._hard_state = HardState()
        self._failure: str | None = None

    # -- construction ------------------------------------------------------

    @staticmethod
    def exists(disk: Disk, directory: str) -> bool:
        """True if ``directory`` holds at least one segment."""
        if not disk.exists(directory):
            return False
        return any(parse_segment_name(name) for name in disk.listdir(directory))

    @classmethod
    def create(
        cls,
        disk: Disk,
        directory: str,
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        unsafe_no_fsync: bool = False,
    ) -> WAL:
        """Start an empty log in ``directory`` (created if missing).

        Raises:
            StorageError: the directory already holds a log.
        """
        disk.makedirs(directory)
        if cls.exists(disk, directory):
            raise StorageError(f"{directory} already holds a write-ahead log")
        wal = cls(disk, directory, segment_bytes=segment_bytes, unsafe_no_fsync=unsafe_no_fsync)
        wal._remove_leftovers()
        wal._warn_if_unsafe()
        wal._start_segment(0)
        return wal

    @classmethod
    def open(
        cls,
        disk: Disk,
        directory: str,
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        unsafe_no_fsync: bool = False,
    ) -> tuple[WAL, Recovered]:
        """Recover the log in ``directory`` and open it for appending.

        Raises:
            StorageError: the directory holds no log.
            CorruptError: a segment is missing or a record fails verification
                anywhere but in a torn tail of the last segment.
        """
        wal = cls(disk, directory, segment_bytes=segment_bytes, unsafe_no_fsync=unsafe_no_fsync)
        wal._warn_if_unsafe()
        wal._remove_leftovers()
        wal._segments = wal._list_segments()
        recovered = wal._recover()
        return wal, recovered

    # -- state -------------------------------------------------------------

    @property
    def directory(self) -> str:
        return self._dir

    @property
    def unsafe_no_fsync(self) -> bool:
        """True when syncs are skipped: a crash can lose anything written."""
        return self._unsafe

    @property
    def last_index(self) -> int:
        """The index of the last entry saved (the snapshot's index if none follow it)."""
        return self._last_index

    @property
    def snapshot_index(self) -> int:
        return self._snapshot_index

    @property
    def snapshot_term(self) -> int:
        return self._snapshot_term

    @property
    def hard_state(self) -> HardState:
        return self._hard_state

    @property
    def segment_paths(self) -> list[str]:
        """The paths of the live segments, oldest first."""
        return [segment.path for segment in self._segments]

    # -- writing -----------------------------------------------------------

    def save(self, hard_state: HardState | None, entries: Sequence[Entry]) -> None:
        """Append entries (overwriting any stored entries from ``entries[0].index`` on)
        and/or a hard state, in one write. Not durable until ``sync``.

        Raises:
            InvariantError: the entries are not consecutive, start at or below
                the snapshot, or leave a gap after the last entry.
        """
        if not entries and hard_state is None:
            return
        self._maybe_cut()
        parts: list[bytes] = []
        crc = self._crc
        if entries:
            first = entries[0].index
            if first <= self._snapshot_index or first > self._last_index + 1:
                raise InvariantError(
                    f"entries from {first} do not fit a log with snapshot at "
                    f"{self._snapshot_index} and last index {self._last_index}"
                )
            payload = encode_entries(self._pack, first, entry_rows(entries))
            crc = frame_into(parts, RecordType.ENTRIES, payload, crc)
        if hard_state is not None:
            crc = frame_into(
                parts, RecordType.HARD_STATE, encode_hard_state(self._pack, hard_state), crc
            )
        self._write(parts, crc)
        if hard_state is not None:
            self._hard_state = hard_state
        if entries:
            self._last_index = entries[-1].index

    def save_snapshot_marker(self, index: int, term: int, *, restore: bool = False) -> None:
        """Record that a snapshot at ``index``/``term`` is saved. Not durable until ``sync``.

        Entries up to ``index`` are dropped from the recovered log. With
        ``restore`` (the snapshot replaced the whole log, as when Raft installs
        a leader's snapshot) the entries after ``index`` are dropped as well.

        Raises:
            InvariantError: ``index`` is behind the current snapshot, or past
                the last entry when not restoring.
        """
        self.check_snapshot_marker(index, restore=restore)
        self._maybe_cut()
        parts: list[bytes] = []
        payload = encode_snapshot_marker(self._pack, SnapshotMarker(index, term, restore))
        crc = frame_into(parts, RecordType.SNAPSHOT, payload, self._crc)
        self._write(parts, crc)
        self._snapshot_index = index
        self._snapshot_term = term
        if restore:
            self._last_index = index

    def check_snapshot_marker(self, index: int, *, restore: bool) -> None:
        """Raise ``InvariantError`` unless ``save_snapshot_marker(index, restore=restore)`` fits."""
        if index < self._snapshot_index or (not restore and index > self._last_index):
            raise InvariantError(
                f"snapshot marker at {index} does not fit a log with snapshot at "
                f"{self._snapshot_index} and last index {self._last_index}"
            )

    def sync(self) -> None:
        """Make everything saved so far durable: one ``fdatasync``, none if nothing is new."""
        file = self._current()
        if not self._dirty:
            return
        if not self._unsafe:
            try:
                file.sync()
            except OSError as exc:
                # After a failed fdatasync the page cache may have dropped the
                # data: retrying could report success for lost writes.
                self._fail(exc)
                raise
        self._dirty = False
        self._synced_snapshot_index = self._snapshot_index

    def release_to(self, index: int) -> int:
        """Delete the segments whose live entries are all at or below ``index``.

        ``index`` may not pass the last *synced* snapshot marker. The newest
        segment is always kept. Returns how many segments were deleted.

        Raises:
            InvariantError: ``index`` is past the last synced snapshot marker.
        """
        if index > self._synced_snapshot_index:
            raise InvariantError(
                f"release_to({index}) passes the synced snapshot at {self._synced_snapshot_index}"
            )
        removed = 0
        # Every live entry of a segment precedes the next segment's first index.
        while len(self._segments) > 1 and self._segments[1].first_index - 1 <= index:
            segment = self._segments.pop(0)
            self._disk.remove(segment.path)
            if not self._unsafe:
                # One sync per file, oldest first, so a crash never leaves a gap.
                self._disk.sync_dir(self._dir)
            removed += 1
        return removed

    def close(self) -> None:
        """Close the current segment. Unsynced saves stay in the OS's hands."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> WAL:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals ---------------------------------------------------------

    def _current(self) -> DiskFile:
        if self._file is None:
            if self._failure is not None:
                raise StorageError(
                    f"write-ahead log in {self._dir} failed earlier ({self._failure}); reopen it"
                )
            raise InvariantError(f"write-ahead log in {self._dir} used after close")
        return self._file

    def _fail(self, exc: OSError) -> None:
        """Refuse all further use: what reached the disk is no longer known."""
        self._failure = f"{type(exc).__name__}: {exc}"
        self.close()

    def _write(self, parts: list[bytes], crc: int) -> None:
        data = b"".join(parts)
        file = self._current()
        self._reserve(file, self._size + len(data))
        try:
            file.write(data)
        except OSError as exc:
            # Part of the data may be in the file: appending after it would
            # bury a torn record in the middle of the log.
            self._fail(exc)
            raise
        self._size += len(data)
        self._crc = crc
        self._dirty = True

    def _reserve(self, file: DiskFile, size: int) -> None:
        """Reserve disk so the segment's first ``size`` bytes land in reserved space."""
        if size > self._reserved and self._reserved < self._segment_bytes:
            self._reserved = min(self._segment_bytes, size + RESERVE_STEP)
            file.preallocate(self._reserved)

    def _maybe_cut(self) -> None:
        if self._size < self._segment_bytes:
            return
        self.sync()
        self._current().close()
        self._file = None
        self._start_segment(self._segments[-1].seq + 1)

    def _start_segment(self, seq: int) -> None:
        """Write a new segment's header under a temporary name, then rename it into place."""
        first_index = self._last_index + 1
        path = os.path.join(self._dir, segment_name(seq, first_index))
        header = SegmentHeader(
            seq, first_index, self._crc, self._snapshot_index, self._snapshot_term, self._hard_state
        )
        parts: list[bytes] = []
        crc = frame_into(parts, RecordType.SEGMENT_HEADER, encode_header(self._pack, header), 0)
        data = b"".join(parts)
        tmp = path + TMP_SUFFIX
        file = self._disk.create(tmp)
        self._reserved = 0
        self._reserve(file, len(data))
        file.write(data)
        if not self._unsafe:
            file.sync()
        self._disk.rename(tmp, path)
        if not self._unsafe:
            self._disk.sync_dir(self._dir)
        self._file = file
        self._size = len(data)
        self._crc = crc
        self._segments.append(_Segment(seq, first_index, path))

    def _warn_if_unsafe(self) -> None:
        if self._unsafe:
            logger.warning(
                "write-ahead log in %s runs with unsafe_no_fsync: nothing is ever synced, "
                "a crash can lose acknowledged writes",
                self._dir,
            )

    def _remove_leftovers(self) -> None:
        removed = False
        for name in self._disk.listdir(self._dir):
            if name.endswith(SEGMENT_SUFFIX + TMP_SUFFIX):
                path = os.path.join(self._dir, name)
                logger.warning("removing %s, a segment left unfinished by a crash", path)
                self._disk.remove(path)
                removed = True
        if removed and not self._unsafe:
            self._disk.sync_dir(self._dir)

    def _list_segments(self) -> list[_Segment]:
        segments: list[_Segment] = []
        for name in self._disk.listdir(self._dir):
            path = os.path.join(self._dir, name)
            parsed = parse_segment_name(name)
            if parsed is None:
                if name.endswith(SEGMENT_SUFFIX):
                    raise CorruptError(path, 0, "not a valid segment file name")
                continue
            segments.append(_Segment(parsed[0], parsed[1], path))
        if not segments:
            raise StorageError(f"no write-ahead log in {self._dir}")
        segments.sort(key=lambda s: s.seq)
        for before, after in zip(segments, segments[1:]):
            if after.seq != before.seq + 1:
                raise CorruptError(
                    after.path, 0, f"missing segment {before.seq + 1:016x} before this one"
                )
        return segments

    def _recover(self) -> Recovered:
        replay = Replay()
        last = len(self._segments) - 1
        end = 0
        for position, segment in enumerate(self._segments):
            path = segment.path
            found = scan(self._disk.read(path), path, tail_may_tear=position == last)
            records = found.records
            if not records or records[0].type != RecordType.SEGMENT_HEADER:
                raise CorruptError(path, 0, "segment does not start with a header")
            header = decode_header(records[0].payload, path, 0)
            if (header.seq, header.first_index) != (segment.seq, segment.first_index):
                raise CorruptError(path, 0, "segment header does not match the file name")
            replay.header(header, path, 0)
            for record in records[1:]:
                offset = record.offset
                if record.type == RecordType.ENTRIES:
                    replay.entries(decode_entries(record.payload, path, offset), path, offset)
                elif record.type == RecordType.HARD_STATE:
                    replay.set_hard_state(decode_hard_state(record.payload, path, offset))
                elif record.type == RecordType.SNAPSHOT:
                    marker = decode_snapshot_marker(record.payload, path, offset)
                    replay.snapshot(marker, path, offset)
                else:
                    raise CorruptError(path, offset, "a second segment header")
            replay.crc = found.crc
            end = found.end
            if found.torn is not None:
                logger.warning(
                    "%s: cutting a torn tail at offset %d (%s); keeping every earlier record",
                    path,
                    end,
                    found.torn,
                )
                self._disk.truncate(path, end)
        recovered = replay.finish(self._dir)
        self._file = self._disk.open_append(self._segments[-1].path)
        self._reserved = 0
        self._reserve(self._file, end)
        if not self._unsafe:
            # What was read may still sit only in the page cache (an earlier
            # process saved it without syncing): make it durable before anyone
            # relies on it, and the truncation of a torn tail with it.
            self._file.sync()
        self._size = end
        self._crc = replay.crc
        self._last_index = replay.last_index
        self._snapshot_index = self._synced_snapshot_index = replay.snapshot_index
        self._snapshot_term = replay.snapshot_term
        self._hard_state = replay.hard_state
        return recovered
