"""The wire codec: round trips, and nothing but ProtocolError on garbage."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvstore.errors import ProtocolError, TooLarge
from kvstore.raft.messages import (
    ConfState,
    Entry,
    Message,
    MessageType,
    NodeId,
    Snapshot,
    SnapshotMetadata,
)
from kvstore.transport.codec import (
    FRAME_HEADER,
    decode_message,
    decode_payload,
    encode_frame,
    encode_message,
    frame_length,
)

u32 = st.integers(min_value=0, max_value=2**32)
entries = st.lists(st.builds(Entry, u32, u32, st.binary(max_size=64)), max_size=5).map(tuple)
snapshots = st.none() | st.builds(
    Snapshot,
    st.builds(SnapshotMetadata, u32, u32, st.builds(ConfState, st.lists(u32, max_size=5).map(tuple))),
    st.binary(max_size=64),
)
messages = st.builds(
    Message,
    st.sampled_from(list(MessageType)),
    u32, u32, u32, u32, u32, entries, u32, snapshots, st.booleans(), u32, st.binary(max_size=16),
)


@given(messages)
def test_message_round_trip(m: Message) -> None:
    frame = encode_frame(encode_message(m))
    n = frame_length(frame[: FRAME_HEADER.size])
    assert decode_message(decode_payload(frame[FRAME_HEADER.size :][:n])) == m


@given(st.binary(max_size=200))
def test_garbage_raises_only_protocol_error(data: bytes) -> None:
    try:
        decode_message(decode_payload(data))
    except ProtocolError:
        pass


@given(st.recursive(st.none() | st.integers(-(2**63), 2**64 - 1) | st.binary() | st.text() | st.booleans(),
                    lambda c: st.lists(c, max_size=13), max_leaves=30))
def test_wrong_shapes_raise_protocol_error(v: object) -> None:
    try:
        decode_message(decode_payload(msgpack.packb(v)))
    except ProtocolError:
        pass


def test_oversized_frames_are_refused() -> None:
    with pytest.raises(TooLarge):
        encode_frame(b"x" * 100, max_frame=50)
    with pytest.raises(ProtocolError):
        frame_length(FRAME_HEADER.pack(1 << 30), max_frame=1 << 20)


def test_bad_fields_are_named() -> None:
    v = encode_message(Message(MessageType.APP, NodeId(1), NodeId(2), 1))
    v[3] = -1
    with pytest.raises(ProtocolError, match="term"):
        decode_message(v)
    v[3] = 1
    v[0] = 99
    with pytest.raises(ProtocolError, match="message type"):
        decode_message(v)
