"""Wire encoding of Raft messages and the length-prefixed frames they travel in.

A frame is a 4-byte big-endian length followed by that many bytes of msgpack.
Frames above the configured maximum are refused before they are read, so a
peer cannot make us buffer without bound. Anything that does not decode into
a well-formed value raises ``ProtocolError``: the connection is closed and the
member keeps serving.
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack

from kvstore.errors import ProtocolError, TooLarge
from kvstore.raft.messages import (
    ConfState,
    Entry,
    EntryType,
    Message,
    MessageType,
    NodeId,
    Snapshot,
    SnapshotMetadata,
)

__all__ = [
    "DEFAULT_MAX_FRAME",
    "FRAME_HEADER",
    "decode_message",
    "decode_payload",
    "encode_frame",
    "encode_message",
    "frame_length",
]

DEFAULT_MAX_FRAME = 16 << 20
FRAME_HEADER = struct.Struct(">I")

_MESSAGE_TYPES = {int(t): t for t in MessageType}


def encode_frame(payload: Any, *, max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    """Pack ``payload`` with msgpack behind a length prefix."""
    body: bytes = msgpack.packb(payload, use_bin_type=True)
    if len(body) > max_frame:
        raise TooLarge("frame", len(body), max_frame)
    return FRAME_HEADER.pack(len(body)) + body


def frame_length(header: bytes, *, max_frame: int = DEFAULT_MAX_FRAME) -> int:
    """The body length announced by a frame header; refuses oversized frames."""
    (n,) = FRAME_HEADER.unpack(header)
    if n > max_frame:
        raise ProtocolError(f"frame of {n} bytes exceeds the limit of {max_frame}")
    return int(n)


def decode_payload(body: bytes) -> Any:
    """Unpack one frame body."""
    try:
        return msgpack.unpackb(body, raw=False, strict_map_key=False)
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, ValueError,
            TypeError) as e:  # TypeError: a map keyed by a list or a map
        raise ProtocolError(f"undecodable frame: {e}") from e


def encode_message(m: Message) -> list[Any]:
    """A Raft message as a msgpack-ready list."""
    snap = None
    if m.snapshot is not None:
        meta = m.snapshot.metadata
        snap = [meta.index, meta.term, list(meta.conf_state.voters), m.snapshot.data]
    return [
        int(m.type),
        m.to,
        m.from_,
        m.term,
        m.log_term,
        m.index,
        [[e.term, e.index, e.data] for e in m.entries],
        m.commit,
        snap,
        m.reject,
        m.reject_hint,
        m.context,
    ]


def _int(v: Any, what: str) -> int:
    if type(v) is not int or v < 0:
        raise ProtocolError(f"bad {what}: {v!r}")
    return v


def _bytes(v: Any, what: str) -> bytes:
    if not isinstance(v, bytes):
        raise ProtocolError(f"bad {what}: expected bytes")
    return v


def decode_message(v: Any) -> Message:
    """The inverse of ``encode_message``; raises ``ProtocolError`` on anything malformed."""
    if not isinstance(v, list) or len(v) != 12:
        raise ProtocolError("malformed raft message")
    t = _MESSAGE_TYPES.get(v[0]) if type(v[0]) is int else None
    if t is None:
        raise ProtocolError(f"unknown message type {v[0]!r}")
    raw_entries = v[6]
    if not isinstance(raw_entries, list):
        raise ProtocolError("malformed entries")
    entries = []
    normal = EntryType.NORMAL
    for e in raw_entries:
        # One check per entry, not one call per field: appends carry thousands.
        if type(e) is not list or len(e) != 3:
            raise ProtocolError("malformed entry")
        term, index, data = e
        if (type(term) is not int or type(index) is not int or type(data) is not bytes
                or term < 0 or index < 0):
            raise ProtocolError(f"malformed entry: {e!r:.80}")
        entries.append(Entry(term, index, data, normal))
    snapshot = None
    if v[8] is not None:
        s = v[8]
        if not isinstance(s, list) or len(s) != 4 or not isinstance(s[2], list):
            raise ProtocolError("malformed snapshot")
        voters = tuple(NodeId(_int(x, "voter")) for x in s[2])
        snapshot = Snapshot(
            SnapshotMetadata(_int(s[0], "snapshot index"), _int(s[1], "snapshot term"),
                             ConfState(voters)),
            _bytes(s[3], "snapshot data"),
        )
    if type(v[9]) is not bool:
        raise ProtocolError("bad reject flag")
    return Message(
        t,
        NodeId(_int(v[1], "to")),
        NodeId(_int(v[2], "from")),
        _int(v[3], "term"),
        _int(v[4], "log term"),
        _int(v[5], "index"),
        tuple(entries),
        _int(v[7], "commit"),
        snapshot,
        v[9],
        _int(v[10], "reject hint"),
        _bytes(v[11], "context"),
    )
