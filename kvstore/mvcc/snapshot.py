"""Streaming snapshots of the replicated state, in bounded chunks.

A snapshot is a stream of msgpack records, cut into chunks of about
``chunk_bytes`` (a record is never split across a chunk boundary unless it
is larger than a chunk):

==========  ============================================================
``H``       ``["H", MAGIC, VERSION, applied_index, revision, compact_revision, next_lease_id]``
``L``       ``["L", [[lease_id, ttl], ...]]`` (any number of records)
``K``       ``["K", [key, [[value, create, mod, version, lease], ...], key, ...]]``:
            keys with their retained history up to ``revision``, keys
            ascending, as many as fit in about a chunk; a long history
            continues under the same key (in the record or the next one)
``C``       ``["C", first_revision, [count, ...], [key, ...]]``: for each
            revision from ``first_revision`` on, how many writes it made,
            then the keys of those writes in commit order
``E``       ``["E", record_count, crc32, compact_revision]``: the CRC-32 of
            every record before it, as packed
==========  ============================================================

Records hold many keys and revisions each, so that building a snapshot of
a large store costs little more than packing it. Version 1 streams, with one
key per ``K`` record (``["K", key, versions]``) and a list of keys per
revision in ``C`` (``["C", first_revision, [[key, ...], ...]]``), are still
read.

The writer reads the store lazily, so the store may keep applying writes
while a snapshot streams: everything after ``revision`` is left out. A
compaction during the stream is allowed too: the trailer carries the compact
revision at the end of the stream, and the reader compacts what it loaded to
it. A restore of the store during the stream is not (``InvariantError``).

The reader checks every record and raises ``CorruptError`` (path
``"<snapshot>"``, the byte offset) for anything malformed, out of order,
truncated or failing the CRC.
"""

from __future__ import annotations

import zlib
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import msgpack

from kvstore.errors import CorruptError, InvalidRequest, InvariantError
from kvstore.mvcc.index import entry_before
from kvstore.mvcc.store import KVStore
from kvstore.mvcc.types import KeyValue, new_key_value

__all__ = ["MAGIC", "VERSION", "SnapshotImage", "read_snapshot", "write_snapshot"]

MAGIC = "steersman-mvcc-snapshot"
VERSION = 2
_READABLE = (1, 2)
_LEASES_PER_RECORD = 4096
_WRITES_PER_RECORD = 1024
_PATH = "<snapshot>"
_FIELDS = attrgetter("value", "create_revision", "mod_revision", "version", "lease")
_KEY = attrgetter("key")
_MOD = attrgetter("mod_revision")


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


def write_snapshot(store: KVStore, applied_index: int, *, chunk_bytes: int = 1 << 20) -> Iterator[bytes]:
    """Stream the store's state as of now (see the module docstring).

    The state is pinned when this is called, not when iteration starts.
    """
    if chunk_bytes < 1:
        raise InvalidRequest(f"chunk_bytes must be positive, not {chunk_bytes}")
    revision, compact = store.revision, store.compact_revision
    header = ["H", MAGIC, VERSION, applied_index, revision, compact, store.lessor.next_id]
    leases = store.lessor.table()
    keys = store.index.all_keys()
    histories = store.index.histories
    changes = store.change_spans(compact + 1, revision, _WRITES_PER_RECORD)
    records = _records(header, leases, keys, histories, changes, revision, chunk_bytes)
    return _chunks(store, histories, records, chunk_bytes)


def _records(
    header: list[Any],
    leases: list[tuple[int, int]],
    keys: list[bytes],
    histories: dict[bytes, list[KeyValue]],
    changes: Iterator[tuple[int, list[KeyValue], list[int]]],
    revision: int,
    record_bytes: int,
) -> Iterator[list[Any]]:
    yield header
    for i in range(0, len(leases), _LEASES_PER_RECORD):
        yield ["L", [list(lease) for lease in leases[i : i + _LEASES_PER_RECORD]]]
    yield from _key_records(keys, histories, revision, record_bytes)
    for first, writes, counts in changes:
        yield ["C", first, counts, list(map(_KEY, writes))]


def _key_records(
    keys: list[bytes], histories: dict[bytes, list[KeyValue]], revision: int, record_bytes: int
) -> Iterator[list[Any]]:
    batch: list[Any] = []
    size = 0
    for key in keys:
        history = histories.get(key)
        if history is None:
            continue  # compacted away since the snapshot was pinned
        if history[-1].mod_revision > revision:
            history = history[: bisect_right(history, revision, key=_MOD)]
            if not history:
                continue
        if len(history) == 1:
            kv = history[0]
            batch.append(key)
            batch.append([_FIELDS(kv)])
            size += len(key) + len(kv.value) + 16
        else:
            # Pinned: a long history may span records, and writes go on meanwhile.
            versions: list[tuple[Any, ...]] | None = None
            for kv in history[:]:
                if versions is None:
                    versions = []
                    batch.append(key)
                    batch.append(versions)
                    size += len(key)
                versions.append(_FIELDS(kv))
                size += len(kv.value) + 16
                if size >= record_bytes:
                    yield ["K", batch]
                    batch, size, versions = [], 0, None
        if size >= record_bytes:
            yield ["K", batch]
            batch, size = [], 0
    if batch:
        yield ["K", batch]


def _chunks(
    store: KVStore, histories: dict[bytes, list[KeyValue]], records: Iterator[list[Any]], chunk_bytes: int
) -> Iterator[bytes]:
    packer = msgpack.Packer(use_bin_type=True)
    out = bytearray()
    crc = 0
    count = 0
    for record in records:
        if store.index.histories is not histories:
            raise InvariantError("the store was restored while a snapshot of it was streamed")
        packed = packer.pack(record)
        crc = zlib.crc32(packed, crc)
        count += 1
        if out and len(out) + len(packed) > chunk_bytes:
            yield bytes(out)
            out.clear()
        out += packed
    if store.index.histories is not histories:
        raise InvariantError("the store was restored while a snapshot of it was streamed")
    trailer = packer.pack(["E", count, crc, store.compact_revision])
    if out and len(out) + len(trailer) > chunk_bytes:
        yield bytes(out)
        out.clear()
    yield bytes(out + trailer)


def read_snapshot(chunks: Iterable[bytes]) -> SnapshotImage:
    """Decode and check a snapshot stream.

    Raises:
        CorruptError: the stream is malformed, truncated, or fails its CRC.
    """
    reader = _Reader()
    unpacker = msgpack.Unpacker(raw=False, use_list=True, strict_map_key=True, max_buffer_size=1 << 30)
    for chunk in chunks:
        unpacker.feed(chunk)
        while True:
            try:
                record = unpacker.unpack()
            except msgpack.OutOfData:
                break
            except (ValueError, TypeError) as err:
                raise CorruptError(_PATH, unpacker.tell(), f"undecodable record: {err}") from None
            reader.offset = unpacker.tell()
            reader.take(record)
    return reader.finish()


class _Reader:
    """Checks records one by one and accumulates the image."""

    def __init__(self) -> None:
        self.offset = 0
        self.crc = 0
        self.count = 0
        self.version = 0
        self.revision = 0
        self.header: list[Any] | None = None
        self.trailer: list[Any] | None = None
        self.stage = "H"
        self.leases: list[tuple[int, int]] = []
        self.histories: dict[bytes, list[KeyValue]] = {}
        self.last_key: bytes | None = None
        # The change log: the first revision, writes per revision, their keys.
        self.first_change = 0
        self.change_counts: list[int] = []
        self.change_keys: list[bytes] = []

    def fail(self, reason: str) -> CorruptError:
        return CorruptError(_PATH, self.offset, reason)

    def take(self, record: Any) -> None:
        if self.trailer is not None:
            raise self.fail("data after the trailer")
        if type(record) is not list or not record or record[0] not in ("H", "L", "K", "C", "E"):
            raise self.fail("not a snapshot record")
        kind = record[0]
        if kind != "E":
            self.crc = zlib.crc32(msgpack.packb(record, use_bin_type=True), self.crc)
            self.count += 1
        order = "HLKCE"
        if (self.stage == "H") != (kind == "H") or order.index(kind) < order.index(self.stage):
            raise self.fail(f"record {kind!r} out of order")
        self.stage = kind
        getattr(self, "_take_" + kind)(record)

    def _take_H(self, record: list[Any]) -> None:
        if len(record) != 7 or record[1] != MAGIC or record[2] not in _READABLE:
            raise self.fail(f"not a store snapshot of version {' or '.join(map(str, _READABLE))}")
        _, _, version, index, revision, compact, next_lease = record
        if not all(type(v) is int and v >= 0 for v in (index, revision, compact, next_lease)):
            raise self.fail("bad header fields")
        if not compact <= revision or revision < 1:
            raise self.fail("bad revisions in header")
        self.header = record
        self.version = version
        self.revision = revision
        self.stage = "L"

    def _take_L(self, record: list[Any]) -> None:
        if len(record) != 2 or type(record[1]) is not list:
            raise self.fail("bad lease record")
        for item in record[1]:
            if type(item) is not list or len(item) != 2 or not all(type(v) is int and v > 0 for v in item):
                raise self.fail("bad lease")
            if self.leases and item[0] <= self.leases[-1][0]:
                raise self.fail("leases out of order")
            self.leases.append((item[0], item[1]))

    def _take_K(self, record: list[Any]) -> None:
        if self.version == 1:
            if len(record) != 3:
                raise self.fail("bad key record")
            self._take_history(record[1], record[2])
            return
        if len(record) != 2 or type(record[1]) is not list or not record[1] or len(record[1]) % 2:
            raise self.fail("bad key record")
        items = record[1]
        for i in range(0, len(items), 2):
            self._take_history(items[i], items[i + 1])

    def _take_history(self, key: Any, versions: Any) -> None:
        if type(key) is not bytes or type(versions) is not list or not versions:
            raise self.fail("bad key record")
        if self.last_key is not None and key < self.last_key:
            raise self.fail("keys out of order")
        history = self.histories.get(key)
        if history is None:
            history = self.histories[key] = []
        elif key != self.last_key:
            raise self.fail("key repeated")
        key = history[0].key if history else key
        revision = self.revision
        for item in versions:
            if type(item) is not list or len(item) != 5:
                raise self.fail("bad version")
            value, create, mod, version, lease = item
            if type(value) is not bytes or not all(type(v) is int and v >= 0 for v in (create, mod, version, lease)):
                raise self.fail("bad version fields")
            if mod > revision or (history and mod <= history[-1].mod_revision):
                raise self.fail(f"versions of {key!r} out of order")
            history.append(new_key_value(key, value, create, mod, version, lease))
        self.last_key = key

    def _take_C(self, record: list[Any]) -> None:
        if self.version == 1:
            if len(record) != 3 or type(record[2]) is not list:
                raise self.fail("bad change record")
            groups = record[2]
            if not all(type(keys) is list and keys for keys in groups):
                raise self.fail("bad change keys")
            counts = [len(keys) for keys in groups]
            keys = [k for group in groups for k in group]
        else:
            if len(record) != 4 or type(record[2]) is not list or type(record[3]) is not list:
                raise self.fail("bad change record")
            counts, keys = record[2], record[3]
            if not all(type(c) is int and c > 0 for c in counts) or sum(counts) != len(keys):
                raise self.fail("bad change counts")
        first = record[1]
        if type(first) is not int:
            raise self.fail("bad change record")
        if not all(type(k) is bytes for k in keys):
            raise self.fail("bad change keys")
        if not self.change_counts:
            self.first_change = first
        elif first != self.first_change + len(self.change_counts):
            raise self.fail("change log has a gap")
        self.change_counts += counts
        self.change_keys += keys

    def _take_E(self, record: list[Any]) -> None:
        if len(record) != 4 or not all(type(v) is int for v in record[1:]):
            raise self.fail("bad trailer")
        if record[1] != self.count or record[2] != self.crc:
            raise self.fail("checksum mismatch")
        self.trailer = record

    def finish(self) -> SnapshotImage:
        if self.header is None or self.trailer is None:
            raise self.fail("truncated snapshot")
        index, revision, compact, next_lease = self.header[3:7]
        final_compact: int = self.trailer[3]
        if not compact <= final_compact <= revision:
            raise self.fail("compact revision outside the snapshot")
        histories = self.histories
        if final_compact > compact:
            _compact_loaded(histories, final_compact)
        base = max(final_compact, 1)
        log: list[KeyValue] = []
        counts: list[int] = []
        keys = self.change_keys
        rev = self.first_change
        i = 0
        for count in self.change_counts:
            if rev > base:
                for k in keys[i : i + count]:
                    history = histories.get(k)
                    if history and history[-1].mod_revision == rev:
                        entry: KeyValue | None = history[-1]
                    else:
                        entry = entry_before(history, rev + 1) if history else None
                    if entry is None or entry.mod_revision != rev:
                        raise self.fail(f"change log names {k!r} at {rev}, which its history lacks")
                    log.append(entry)
                counts.append(count)
            i += count
            rev += 1
        if len(counts) != revision - base:
            raise self.fail("change log does not cover the snapshot's revisions")
        lease_ids = {lease_id for lease_id, _ in self.leases}
        for key, history in histories.items():
            kv = history[-1]
            if kv.version and kv.lease and kv.lease not in lease_ids:
                raise self.fail(f"key {key!r} is attached to missing lease {kv.lease}")
        return SnapshotImage(index, revision, final_compact, next_lease, self.leases, histories, log, counts)


def _compact_loaded(histories: dict[bytes, list[KeyValue]], revision: int) -> None:
    """Apply the compaction rule of ``TreeIndex.compact_key`` to every loaded history."""
    for key in list(histories):
        history = histories[key]
        keep = [kv for kv in history if kv.mod_revision > revision]
        older = [kv for kv in history if kv.mod_revision <= revision]
        if older and older[-1].version:
            keep.insert(0, older[-1])
        if keep:
            histories[key] = keep
        else:
            del histories[key]
