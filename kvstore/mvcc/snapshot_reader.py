"""Reading snapshot streams back, checking every record (the format is in ``kvstore.mvcc.snapshot``)."""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any

import msgpack

from kvstore.errors import CorruptError
from kvstore.mvcc.index import entry_before
from kvstore.mvcc.snapshot import MAGIC, READABLE, Chunk, SnapshotImage
from kvstore.mvcc.types import KeyValue, new_key_value

__all__ = ["read_snapshot"]

_PATH = "<snapshot>"


def read_snapshot(chunks: Iterable[Chunk]) -> SnapshotImage:
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
        self.head_crc = 0
        self.history_crc = 0
        self.all_crc = 0  # version 1: one CRC over every record
        self.count = 0
        self.version = 0
        self.revision = 0
        self.compact = 0
        self.order = "H"
        self.header: list[Any] | None = None
        self.trailer: list[Any] | None = None
        self.stage = "H"
        self.leases: list[tuple[int, int]] = []
        self.histories: dict[bytes, list[KeyValue]] = {}
        self.last_key: bytes | None = None
        # The change log: its first revision, writes per revision, and the
        # writes (version 2) or their keys (version 1).
        self.first_change = 0
        self.change_counts: list[int] = []
        self.change_keys: list[bytes] = []
        self.log: list[KeyValue] = []

    def fail(self, reason: str) -> CorruptError:
        return CorruptError(_PATH, self.offset, reason)

    def take(self, record: Any) -> None:
        if self.trailer is not None:
            raise self.fail("data after the trailer")
        if type(record) is not list or not record or type(record[0]) is not str or len(record[0]) != 1:
            raise self.fail("not a snapshot record")
        kind = record[0]
        if kind not in ("H", "E") and kind not in self.order:
            raise self.fail("not a snapshot record")
        if kind != "E":
            packed = msgpack.packb(record, use_bin_type=True)
            self.all_crc = zlib.crc32(packed, self.all_crc)
            if kind in "HL":
                self.head_crc = zlib.crc32(packed, self.head_crc)
            else:
                self.history_crc = zlib.crc32(packed, self.history_crc)
            self.count += 1
        order = self.order + "E" if self.header is not None else "H"
        if kind not in order or (self.stage == "H") != (kind == "H") or order.index(kind) < order.index(self.stage):
            raise self.fail(f"record {kind!r} out of order")
        self.stage = kind
        getattr(self, "_take_" + kind)(record)

    def _take_H(self, record: list[Any]) -> None:
        if len(record) != 7 or record[1] != MAGIC or record[2] not in READABLE:
            raise self.fail(f"not a store snapshot of version {' or '.join(map(str, READABLE))}")
        _, _, version, index, revision, compact, next_lease = record
        if not all(type(v) is int and v >= 0 for v in (index, revision, compact, next_lease)):
            raise self.fail("bad header fields")
        if not compact <= revision or revision < 1:
            raise self.fail("bad revisions in header")
        self.header = record
        self.version = version
        self.revision = revision
        self.compact = compact
        self.order = "HLKC" if version == 1 else "HLBW"
        self.first_change = max(compact, 1) + 1
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
        if len(record) != 3:
            raise self.fail("bad key record")
        self._take_history(record[1], record[2], self.revision)

    def _take_B(self, record: list[Any]) -> None:
        if len(record) != 2 or type(record[1]) is not list or not record[1] or len(record[1]) % 2:
            raise self.fail("bad base record")
        items = record[1]
        for i in range(0, len(items), 2):
            self._take_history(items[i], items[i + 1], self.compact)

    def _take_history(self, key: Any, versions: Any, newest: int) -> None:
        """A key's versions, none above ``newest``."""
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
        for item in versions:
            if type(item) is not list or len(item) != 5:
                raise self.fail("bad version")
            value, create, mod, version, lease = item
            if type(value) is not bytes or not all(type(v) is int and v >= 0 for v in (create, mod, version, lease)):
                raise self.fail("bad version fields")
            if mod > newest or (history and mod <= history[-1].mod_revision):
                raise self.fail(f"versions of {key!r} out of order")
            history.append(new_key_value(key, value, create, mod, version, lease))
        self.last_key = key

    def _take_C(self, record: list[Any]) -> None:
        if len(record) != 3 or type(record[1]) is not int or type(record[2]) is not list:
            raise self.fail("bad change record")
        groups = record[2]
        if not all(type(keys) is list and keys and all(type(k) is bytes for k in keys) for keys in groups):
            raise self.fail("bad change keys")
        if self.change_counts and record[1] != self.first_change + len(self.change_counts):
            raise self.fail("change log has a gap")
        if not self.change_counts:
            self.first_change = record[1]
        self.change_counts += [len(keys) for keys in groups]
        self.change_keys += [k for keys in groups for k in keys]

    def _take_W(self, record: list[Any]) -> None:
        if len(record) != 4 or type(record[2]) is not list or type(record[3]) is not list:
            raise self.fail("bad write record")
        _, first, counts, writes = record
        if type(first) is not int or first != self.first_change + len(self.change_counts):
            raise self.fail("change log has a gap")
        if not all(type(c) is int and c > 0 for c in counts) or sum(counts) != len(writes):
            raise self.fail("bad write counts")
        histories = self.histories
        log = self.log
        i = 0
        for rev, count in enumerate(counts, first):
            for item in writes[i : i + count]:
                if type(item) is not list or len(item) != 6:
                    raise self.fail("bad write")
                key, value, create, mod, version, lease = item
                if (type(key) is not bytes or type(value) is not bytes
                        or not all(type(v) is int and v >= 0 for v in (create, mod, version, lease))):
                    raise self.fail("bad write fields")
                if mod != rev:
                    raise self.fail(f"a write of {key!r} at {mod} is logged at {rev}")
                history = histories.get(key)
                if history is None:
                    history = histories[key] = []
                elif history[-1].mod_revision >= rev:
                    raise self.fail(f"versions of {key!r} out of order")
                else:
                    key = history[0].key
                kv = new_key_value(key, value, create, mod, version, lease)
                history.append(kv)
                log.append(kv)
            i += count
        self.change_counts += counts

    def _take_E(self, record: list[Any]) -> None:
        size = 4 if self.version == 1 else 5
        if len(record) != size or not all(type(v) is int for v in record[1:]):
            raise self.fail("bad trailer")
        if self.version == 1:
            ok = record[2] == self.all_crc
        else:
            ok = record[2] == self.head_crc and record[3] == self.history_crc
        if record[1] != self.count or not ok:
            raise self.fail("checksum mismatch")
        self.trailer = record

    def finish(self) -> SnapshotImage:
        if self.header is None or self.trailer is None:
            raise self.fail("truncated snapshot")
        index, revision, compact, next_lease = self.header[3:7]
        final_compact: int = self.trailer[-1]
        if not compact <= final_compact <= revision:
            raise self.fail("compact revision outside the snapshot")
        histories = self.histories
        if final_compact > compact:
            _compact_loaded(histories, final_compact)
        base = max(final_compact, 1)
        if self.version == 1:
            log, counts = self._v1_log(base)
        else:
            log, counts = self._log_after(base)
        if len(counts) != revision - base:
            raise self.fail("change log does not cover the snapshot's revisions")
        lease_ids = {lease_id for lease_id, _ in self.leases}
        for key, history in histories.items():
            kv = history[-1]
            if kv.version and kv.lease and kv.lease not in lease_ids:
                raise self.fail(f"key {key!r} is attached to missing lease {kv.lease}")
        return SnapshotImage(index, revision, final_compact, next_lease, self.leases, histories, log, counts)

    def _log_after(self, base: int) -> tuple[list[KeyValue], list[int]]:
        """The loaded writes of the revisions after ``base``, and their counts."""
        skip = max(0, base + 1 - self.first_change)
        dropped = sum(self.change_counts[:skip])
        return self.log[dropped:], self.change_counts[skip:]

    def _v1_log(self, base: int) -> tuple[list[KeyValue], list[int]]:
        log: list[KeyValue] = []
        counts: list[int] = []
        keys = self.change_keys
        histories = self.histories
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
        return log, counts


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
