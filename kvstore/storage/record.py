"""How a write-ahead log segment frames its records, and how it reads them back.

A record on disk is::

    length  u32 little-endian   bytes of payload
    type    u8                  a ``RecordType`` (0 is never valid)
    crc     u32 little-endian   CRC-32 of type + payload, chained (see below)
    payload length bytes        msgpack
    end     u8 = 0xA5           marks the record's last byte

The CRC of each record starts from the CRC of the record before it in the same
segment (the first record, the segment header, starts from 0), so a record
moved, dropped or replayed from elsewhere fails verification; the header
carries the previous segment's final CRC, which links segments together.

The end byte makes the last non-zero byte of a segment the end of the last
record that reached the disk whole. ``scan`` uses that to tell a torn tail
from corruption, in the last segment only:

- A failure is a *torn tail* when the failing record reaches past the last
  non-zero byte of the file, i.e. nothing was written after it and it was
  itself not written out whole (a crash mid-write, or a zero-filled tail),
  unless the bytes up to that point form a valid record whose length field
  alone is damaged: that is corruption.
- Any other failure is corruption: a complete record with a bad CRC or end
  byte (a flipped bit), or a failure followed by more written bytes. A synced
  record that is followed by other data is therefore never cut away silently.

A crash can only make writes that were never synced go missing, so cutting a
torn tail loses nothing that ``sync`` acknowledged. (A crash that lets the
disk write later pages of an unsynced write but not earlier ones leaves a hole
followed by data; that reads as corruption, which is safe if unwelcome.)
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass

from kvstore.errors import CorruptError

__all__ = [
    "END_BYTE",
    "HEADER",
    "MIN_RECORD_BYTES",
    "Record",
    "RecordType",
    "Scan",
    "frame_into",
    "scan",
]

HEADER = struct.Struct("<IBI")
END_BYTE = 0xA5
_END = bytes([END_BYTE])
MIN_RECORD_BYTES = HEADER.size + 1


class RecordType(enum.IntEnum):
    """What a record's payload holds."""

    SEGMENT_HEADER = 1
    """Segment metadata: sequence, first index, previous CRC, snapshot and hard state."""
    ENTRIES = 2
    """A batch of consecutive Raft entries."""
    HARD_STATE = 3
    """Raft's term, vote and commit."""
    SNAPSHOT = 4
    """A snapshot at (index, term) was saved."""


_TYPE_BYTES = {t: bytes([t]) for t in RecordType}
_VALID_TYPES = frozenset(int(t) for t in RecordType)


def frame_into(parts: list[bytes], rtype: RecordType, payload: bytes, crc: int) -> int:
    """Append the framed record to ``parts``; return the chained CRC after it."""
    crc = zlib.crc32(payload, zlib.crc32(_TYPE_BYTES[rtype], crc))
    parts.append(HEADER.pack(len(payload), rtype, crc))
    parts.append(payload)
    parts.append(_END)
    return crc


@dataclass(frozen=True, slots=True)
class Record:
    """One verified record: where it starts in its file, its type and payload."""

    offset: int
    type: RecordType
    payload: bytes


@dataclass(frozen=True, slots=True)
class Scan:
    """What ``scan`` found in one segment.

    ``end`` is the offset just past the last good record and ``crc`` the chain
    value there. ``torn`` is ``None`` when the data ended exactly at ``end``;
    otherwise it says why the bytes from ``end`` on are a torn tail to cut.
    """

    records: list[Record]
    end: int
    crc: int
    torn: str | None


def scan(data: bytes, path: str, *, tail_may_tear: bool) -> Scan:
    """Verify and split a segment's bytes into records.

    Args:
        data: the whole segment file.
        path: the file's path, for errors.
        tail_may_tear: True for the last segment, whose tail a crash may have torn.

    Raises:
        CorruptError: a record fails verification and is not a torn tail.
    """
    records: list[Record] = []
    crc = 0
    offset = 0
    size = len(data)
    unpack = HEADER.unpack_from
    view = memoryview(data)
    while offset < size:
        if size - offset >= MIN_RECORD_BYTES:
            length, rtype, stored = unpack(data, offset)
            start = offset + HEADER.size
            end = start + length
            if (
                end < size
                and data[end] == END_BYTE
                and rtype in _VALID_TYPES
                and zlib.crc32(view[start:end], zlib.crc32(_TYPE_BYTES[rtype], crc)) == stored
            ):
                crc = stored
                records.append(Record(offset, RecordType(rtype), data[start:end]))
                offset = end + 1
                continue
        torn = _classify_failure(data, path, offset, crc)
        if not tail_may_tear:
            raise CorruptError(path, offset, f"bad record in a segment before the last: {torn}")
        return Scan(records, offset, crc, torn)
    return Scan(records, offset, crc, None)


def _classify_failure(data: bytes, path: str, offset: int, crc: int) -> str:
    """Why the record at ``offset`` is a torn tail; raise if it is corruption instead."""
    written = len(data.rstrip(b"\0"))
    if offset >= written:
        return f"{len(data) - offset} zero bytes"
    if len(data) - offset < MIN_RECORD_BYTES:
        return f"a partial record header of {len(data) - offset} bytes"
    length, rtype, stored = HEADER.unpack_from(data, offset)
    start = offset + HEADER.size
    if start + length + 1 <= written:
        if rtype not in _VALID_TYPES:
            raise CorruptError(path, offset, f"unknown record type {rtype}")
        if data[start + length] != END_BYTE:
            raise CorruptError(path, offset, "record end byte missing")
        raise CorruptError(path, offset, "CRC mismatch")
    # The record reaches past the last byte written: torn, unless what was
    # written is a whole record with a damaged length field.
    if (
        written - start >= 1
        and data[written - 1] == END_BYTE
        and rtype in _VALID_TYPES
        and zlib.crc32(data[start : written - 1], zlib.crc32(_TYPE_BYTES[rtype], crc)) == stored
    ):
        raise CorruptError(path, offset, "record length field damaged")
    return f"a record cut short after {written - offset} of {length + MIN_RECORD_BYTES} bytes"
