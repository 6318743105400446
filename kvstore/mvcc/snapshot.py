"""Streaming snapshots of the replicated state, in bounded chunks.

A snapshot is a stream of msgpack records, cut into chunks of about
``chunk_bytes`` (a record is never split across a chunk boundary unless it
is larger than a chunk; a section reused from the previous snapshot comes as
one chunk):

==========  ============================================================
``H``       ``["H", MAGIC, VERSION, applied_index, revision, compact_revision, next_lease_id]``
``L``       ``["L", [[lease_id, ttl], ...]]`` (any number of records)
``B``       ``["B", [key, [[value, create, mod, version, lease], ...], key, ...]]``:
            the versions at or below ``compact_revision`` that compaction
            kept, keys ascending (a long history continues under the same
            key, in the record or the next one)
``W``       ``["W", first_revision, [count, ...], [[key, value, create, mod, version, lease], ...]]``:
            every write after ``compact_revision`` up to ``revision``, in
            commit order: for each revision from ``first_revision`` on, how
            many writes it made, then the writes
``E``       ``["E", record_count, head_crc, history_crc, compact_revision]``:
            the CRC-32 of the ``H`` and ``L`` records, and of the ``B`` and
            ``W`` records, as packed
==========  ============================================================

Everything after the compact revision is the change log itself, which only
grows until the next compaction; so a member keeps the packed ``B`` and ``W``
records of its last snapshot (``SnapshotReuse``) and the next one packs only
the revisions written since, the way etcd's snapshots cost only what changed.

Version 1 streams are still read: there ``["K", key, versions]`` records hold
each key's whole retained history, ``["C", first_revision, [[key, ...], ...]]``
records the keys each revision wrote, and the trailer
``["E", record_count, crc32, compact_revision]`` one CRC of every record.

The writer reads the store lazily, so the store may keep applying writes
while a snapshot streams: everything after ``revision`` is left out. A
compaction during the stream is allowed too: the trailer carries the compact
revision at the end of the stream (no higher than ``revision``), and the
reader compacts what it loaded to it. A restore of the store during the stream is not (``InvariantError``).

The reader (``kvstore.mvcc.snapshot_reader``) checks every record and
raises ``CorruptError`` (path ``"<snapshot>"``, the byte offset) for anything
malformed, out of order, truncated or failing the CRC.
"""

from __future__ import annotations

import zlib
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Union

import msgpack

from kvstore.errors import InvalidRequest, InvariantError
from kvstore.mvcc.changelog import ChangeLog
from kvstore.mvcc.store import KVStore
from kvstore.mvcc.types import KeyValue

__all__ = ["MAGIC", "READABLE", "VERSION", "Chunk", "SnapshotImage", "SnapshotReuse", "write_snapshot"]

MAGIC = "steersman-mvcc-snapshot"
VERSION = 2
READABLE = (1, 2)  # the versions kvstore.mvcc.snapshot_reader reads
_LEASES_PER_RECORD = 4096
_WRITES_PER_RECORD = 1024
# W records may pass a small chunk size: a run of 1,024 small writes stays whole.
_WRITE_RECORD_BYTES = 512 << 10
_FIELDS = attrgetter("value", "create_revision", "mod_revision", "version", "lease")
_WRITE = attrgetter("key", "value", "create_revision", "mod_revision", "version", "lease")
_MOD = attrgetter("mod_revision")
_KEY = attrgetter("key")
_VALUE = attrgetter("value")

Chunk = Union[bytes, memoryview]
"""A piece of a snapshot stream."""


@dataclass(frozen=True, slots=True)
class SnapshotImage:
    """A decoded snapshot, ready for ``KVStore.install``."""

    applied_index: int
    revision: int
    compact_revision: int
    next_lease_id: int
    leases: list[tuple[int, int]]
    histories: dict[bytes, list[KeyValue]]
    log: list[KeyValue]
    counts: list[int]


@dataclass(frozen=True, slots=True)
class _Section:
    """The packed ``B`` and ``W`` records of a snapshot: where they lie in its stream, what they cover."""

    log: ChangeLog
    compact: int
    through: int  # the last revision of the ``W`` records
    start: int
    end: int
    crc: int
    records: int


class SnapshotReuse:
    """The packed history of a member's last snapshot, for its next one.

    ``write_snapshot`` takes it and notes what it packed; once the stream has
    been joined into the snapshot's data, ``keep(data)`` holds on to that
    part of it (a view: no copy). It is used only while the store's change
    log is the same object at the same compact revision: a compaction or a
    restore makes the next snapshot pack everything again.
    """

    __slots__ = ("_section", "_data", "_written")

    def __init__(self) -> None:
        self._section: _Section | None = None
        self._data: memoryview | None = None
        self._written: tuple[_Section, int] | None = None

    def keep(self, data: bytes) -> None:
        """``data`` is the whole stream last written with this object: keep its history part."""
        written, self._written = self._written, None
        if written is None:
            return
        section, total = written
        if len(data) != total:
            raise InvariantError(f"a snapshot of {total} bytes was kept as {len(data)} bytes")
        self._section = section
        self._data = memoryview(data)[section.start : section.end]

    def _usable(self, log: ChangeLog, compact: int, revision: int) -> tuple[_Section, memoryview] | None:
        section, data = self._section, self._data
        if (section is None or data is None or section.log is not log or section.compact != compact
                or section.through > revision):
            self._section = self._data = None
            return None
        return section, data


def write_snapshot(
    store: KVStore, applied_index: int, *, chunk_bytes: int = 1 << 20, reuse: SnapshotReuse | None = None
) -> Iterator[Chunk]:
    """Stream the store's state as of now (see the module docstring).

    The state is pinned when this is called, not when iteration starts. With
    ``reuse``, the history packed for the previous snapshot is reused if the
    store was not compacted or restored since.
    """
    if chunk_bytes < 1:
        raise InvalidRequest(f"chunk_bytes must be positive, not {chunk_bytes}")
    revision, compact = store.revision, store.compact_revision
    header = ["H", MAGIC, VERSION, applied_index, revision, compact, store.lessor.next_id]
    leases = store.lessor.table()
    log = store.change_log
    previous = None
    if reuse is not None:
        reuse._written = None  # a stream started earlier and never kept is forgotten
        previous = reuse._usable(log, compact, revision)
    histories = store.index.histories
    # Only versions at or below the compact revision go in B records: none
    # before the first compaction, and nothing to pack when reused.
    keys = store.index.all_keys() if previous is None and compact > 0 else []
    first = previous[0].through + 1 if previous is not None else max(compact, 1) + 1
    changes = store.change_spans(first, revision, _WRITES_PER_RECORD) if first <= revision else iter(())
    stream = _Stream(store, histories, chunk_bytes)
    return stream.run(header, leases, keys, changes, previous, log, compact, revision, reuse)


class _Stream:
    """Packs records into chunks, with the two running CRCs and the byte offset."""

    def __init__(self, store: KVStore, histories: dict[bytes, list[KeyValue]], chunk_bytes: int) -> None:
        self.store = store
        self.histories = histories
        self.chunk_bytes = chunk_bytes
        self.packer = msgpack.Packer(use_bin_type=True)
        self.out = bytearray()
        self.offset = 0  # bytes yielded so far
        self.count = 0

    def add(self, record: list[Any], crc: int) -> tuple[int, bytes | None]:
        """Pack ``record``; returns the CRC carried on and a chunk to yield, if one is full."""
        if self.store.index.histories is not self.histories:
            raise InvariantError("the store was restored while a snapshot of it was streamed")
        packed = self.packer.pack(record)
        self.count += 1
        full = None
        if self.out and len(self.out) + len(packed) > self.chunk_bytes:
            full = self.take()
        self.out += packed
        return zlib.crc32(packed, crc), full

    def take(self) -> bytes:
        chunk = bytes(self.out)
        self.out.clear()
        self.offset += len(chunk)
        return chunk

    def run(
        self,
        header: list[Any],
        leases: list[tuple[int, int]],
        keys: list[bytes],
        changes: Iterator[tuple[int, list[KeyValue], list[int]]],
        previous: tuple[_Section, memoryview] | None,
        log: ChangeLog,
        compact: int,
        revision: int,
        reuse: SnapshotReuse | None,
    ) -> Iterator[Chunk]:
        head_crc = history_crc = 0
        head = [header]
        head += (["L", [list(lease) for lease in leases[i : i + _LEASES_PER_RECORD]]]
                 for i in range(0, len(leases), _LEASES_PER_RECORD))
        for record in head:
            head_crc, full = self.add(record, head_crc)
            if full is not None:
                yield full
        yield self.take()  # the history section starts on a chunk of its own
        start = self.offset
        if previous is not None:
            section, data = previous
            history_crc = section.crc
            self.count += section.records
            self.offset += len(data)
            yield data
        else:
            for record in _base_records(keys, self.histories, compact, self.chunk_bytes):
                history_crc, full = self.add(record, history_crc)
                if full is not None:
                    yield full
        for record in _write_records(changes, max(self.chunk_bytes, _WRITE_RECORD_BYTES)):
            history_crc, full = self.add(record, history_crc)
            if full is not None:
                yield full
        if self.store.index.histories is not self.histories:
            raise InvariantError("the store was restored while a snapshot of it was streamed")
        end = self.offset + len(self.out)
        records = self.count - len(head)
        final_compact = self.store.compact_revision
        # A compaction proposed after the pin may pass ``revision``: the
        # snapshot then holds no history before it, nothing more.
        trailer = self.packer.pack(["E", self.count, head_crc, history_crc, min(final_compact, revision)])
        full = self.take() if self.out and len(self.out) + len(trailer) > self.chunk_bytes else None
        self.out += trailer
        last = self.take()
        if reuse is not None and final_compact == compact:
            section = _Section(log, compact, revision, start, end, history_crc, records)
            reuse._written = (section, self.offset)
        if full is not None:
            yield full
        yield last


def _write_records(
    changes: Iterator[tuple[int, list[KeyValue], list[int]]], record_bytes: int
) -> Iterator[list[Any]]:
    """``W`` records: runs of the change log, cut at revisions so each stays near ``record_bytes``."""
    for first, writes, counts in changes:
        size = sum(map(len, map(_VALUE, writes))) + sum(map(len, map(_KEY, writes))) + 16 * len(writes)
        if size <= record_bytes or len(counts) == 1:
            yield ["W", first, counts, list(map(_WRITE, writes))]
            continue
        # Big values: cut the run between revisions.
        start = i = 0
        run: list[int] = []
        run_size = 0
        rev = first
        for count in counts:
            part = sum(len(kv.key) + len(kv.value) + 16 for kv in writes[i : i + count])
            if run and run_size + part > record_bytes:
                yield ["W", rev - len(run), run, list(map(_WRITE, writes[start:i]))]
                start, run, run_size = i, [], 0
            run.append(count)
            run_size += part
            i += count
            rev += 1
        yield ["W", rev - len(run), run, list(map(_WRITE, writes[start:i]))]


def _base_records(
    keys: list[bytes], histories: dict[bytes, list[KeyValue]], compact: int, record_bytes: int
) -> Iterator[list[Any]]:
    """``B`` records: each key's versions at or below ``compact``."""
    batch: list[Any] = []
    size = 0
    for key in keys:
        history = histories.get(key)
        if history is None or history[0].mod_revision > compact:
            continue  # compacted away since the snapshot was pinned, or all newer
        kept = history[: bisect_right(history, compact, key=_MOD)]
        versions: list[tuple[Any, ...]] | None = None
        for kv in kept:
            if versions is None:
                versions = []
                batch.append(key)
                batch.append(versions)
                size += len(key)
            versions.append(_FIELDS(kv))
            size += len(kv.value) + 16
            if size >= record_bytes:
                yield ["B", batch]
                batch, size, versions = [], 0, None
    if batch:
        yield ["B", batch]
