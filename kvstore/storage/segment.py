"""Write-ahead log segment names and the msgpack payload of each record type.

A segment file is named ``%016x-%016x.wal`` from its sequence number and the
index of the first entry it was opened for (the log's last index + 1 at the
time), so names sort in log order. It is written under the same name plus
``.tmp`` and renamed into place once its header is durable; a ``.tmp`` found
at open is a crash's leftover.

Payloads (msgpack arrays; ``decode_*`` raise ``CorruptError`` on any shape
other than these):

- segment header: ``[version, seq, first_index, prev_crc, snapshot_index,
  snapshot_term, term, vote, commit]``. Each segment restates the snapshot
  marker and hard state current when it was cut, so the log stays readable
  after older segments are released.
- entries: ``[first_index, [[term, data, type], ...]]`` for consecutive indexes.
- hard state: ``[term, vote, commit]``.
- snapshot marker: ``[index, term, restore]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack  # type: ignore[import-untyped, unused-ignore]

from kvstore.errors import CorruptError, InvariantError
from kvstore.raft.messages import Entry, EntryType, HardState, NodeId

__all__ = [
    "EntryRow",
    "FORMAT_VERSION",
    "SEGMENT_SUFFIX",
    "SegmentHeader",
    "SnapshotMarker",
    "TMP_SUFFIX",
    "decode_entries",
    "decode_hard_state",
    "decode_header",
    "decode_snapshot_marker",
    "encode_entries",
    "encode_hard_state",
    "encode_header",
    "encode_snapshot_marker",
    "entry_rows",
    "parse_segment_name",
    "segment_name",
]

FORMAT_VERSION = 1
SEGMENT_SUFFIX = ".wal"
TMP_SUFFIX = ".tmp"
_NAME = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.wal$")
_ENTRY_TYPES = tuple(EntryType)
_DECODE_ERRORS = (ValueError, TypeError, IndexError, KeyError, msgpack.UnpackException)

Pack = Callable[[Any], bytes]


def segment_name(seq: int, first_index: int) -> str:
    """The file name of segment ``seq`` whose first entry is ``first_index``."""
    return f"{seq:016x}-{first_index:016x}{SEGMENT_SUFFIX}"


def parse_segment_name(name: str) -> tuple[int, int] | None:
    """``(seq, first_index)`` for a segment file name, ``None`` for any other name."""
    match = _NAME.match(name)
    if match is None:
        return None
    return int(match.group(1), 16), int(match.group(2), 16)


@dataclass(frozen=True, slots=True)
class SegmentHeader:
    """The first record of every segment."""

    seq: int
    first_index: int
    prev_crc: int
    snapshot_index: int
    snapshot_term: int
    hard_state: HardState


@dataclass(frozen=True, slots=True)
class SnapshotMarker:
    """A snapshot at ``index``/``term`` was saved.

    ``restore`` marks a snapshot that replaced the whole log (Raft installing a
    leader's snapshot): entries after ``index`` written before it are dropped
    too. Otherwise (the application compacting its own log) they are kept.
    """

    index: int
    term: int
    restore: bool


def _unpack(payload: bytes, path: str, offset: int) -> Any:
    try:
        return msgpack.unpackb(payload, use_list=False)
    except _DECODE_ERRORS as exc:
        raise CorruptError(path, offset, f"undecodable record payload: {exc}") from exc


def _ints(value: Any, count: int, path: str, offset: int, what: str) -> tuple[int, ...]:
    if (
        not isinstance(value, tuple)
        or len(value) != count
        or not all(type(v) is int and v >= 0 for v in value)
    ):
        raise CorruptError(path, offset, f"malformed {what} record")
    return value


def encode_header(pack: Pack, header: SegmentHeader) -> bytes:
    hs = header.hard_state
    return pack(
        (
            FORMAT_VERSION,
            header.seq,
            header.first_index,
            header.prev_crc,
            header.snapshot_index,
            header.snapshot_term,
            hs.term,
            int(hs.vote),
            hs.commit,
        )
    )


def decode_header(payload: bytes, path: str, offset: int) -> SegmentHeader:
    values = _ints(_unpack(payload, path, offset), 9, path, offset, "segment header")
    version, seq, first, prev_crc, snap_index, snap_term, term, vote, commit = values
    if version != FORMAT_VERSION:
        raise CorruptError(path, offset, f"unsupported segment format version {version}")
    return SegmentHeader(
        seq, first, prev_crc, snap_index, snap_term, HardState(term, NodeId(vote), commit)
    )


EntryRow = tuple[int, bytes, EntryType]
"""An entry without its index: ``(term, data, type)``."""


def entry_rows(entries: Sequence[Entry]) -> list[EntryRow]:
    """The rows of consecutive ``entries``, checked in the same pass.

    Raises:
        InvariantError: the indexes are not consecutive.
    """
    rows: list[EntryRow] = []
    append = rows.append
    expected = entries[0].index
    for entry in entries:
        if entry.index != expected:
            raise InvariantError(f"entry {entry.index} where {expected} was due")
        append((entry.term, entry.data, entry.type))
        expected += 1
    return rows


def encode_entries(pack: Pack, first_index: int, rows: list[EntryRow]) -> bytes:
    """Encode a batch of consecutive entries from ``first_index`` on."""
    return pack((first_index, rows))


def decode_entries(payload: bytes, path: str, offset: int) -> list[Entry]:
    value = _unpack(payload, path, offset)
    try:
        first, rows = value
        if type(first) is not int or first < 1 or not rows:
            raise ValueError("bad first index or empty batch")
        entries = [
            Entry(term, index, data, _ENTRY_TYPES[etype])
            for index, (term, data, etype) in enumerate(rows, first)
        ]
    except _DECODE_ERRORS as exc:
        raise CorruptError(path, offset, f"malformed entries record: {exc}") from exc
    return entries


def encode_hard_state(pack: Pack, hs: HardState) -> bytes:
    return pack((hs.term, int(hs.vote), hs.commit))


def decode_hard_state(payload: bytes, path: str, offset: int) -> HardState:
    term, vote, commit = _ints(_unpack(payload, path, offset), 3, path, offset, "hard state")
    return HardState(term, NodeId(vote), commit)


def encode_snapshot_marker(pack: Pack, marker: SnapshotMarker) -> bytes:
    return pack((marker.index, marker.term, marker.restore))


def decode_snapshot_marker(payload: bytes, path: str, offset: int) -> SnapshotMarker:
    value = _unpack(payload, path, offset)
    if not isinstance(value, tuple) or len(value) != 3 or type(value[2]) is not bool:
        raise CorruptError(path, offset, "malformed snapshot marker record")
    index, term = _ints(value[:2], 2, path, offset, "snapshot marker")
    return SnapshotMarker(index, term, value[2])
