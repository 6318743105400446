"""The receiving end of a peer connection, fed bytes directly: framing, batching, refusal."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from kvstore.raft.messages import (
    ConfState,
    Entry,
    Message,
    MessageType,
    NodeId,
    Snapshot,
    SnapshotMetadata,
)
from kvstore.transport.codec import decode_payload, encode_frame, encode_message
from kvstore.transport.inbound import PROTOCOL, Inbound


class _Transport:
    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1)


@dataclasses.dataclass
class _Host:
    cluster_id: str = "c1"
    member_id: NodeId = NodeId(2)
    peers: dict[NodeId, tuple[str, int]] = dataclasses.field(
        default_factory=lambda: {NodeId(1): ("127.0.0.1", 1)})
    max_frame: int = 1 << 20
    refused_connections: int = 0
    calls: list[list[Message]] = dataclasses.field(default_factory=list)
    connections: set[Inbound] = dataclasses.field(default_factory=set)

    def deliver(self, msgs: list[Message]) -> None:
        self.calls.append(msgs)


def _app(i: int) -> Message:
    return Message(MessageType.APP, NodeId(2), NodeId(1), 1, 1, i, (Entry(1, i + 1, b"v%d" % i),), i)


def _open(host: _Host) -> tuple[Inbound, _Transport]:
    conn = Inbound(host)
    transport = _Transport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, transport


HELLO = encode_frame([PROTOCOL, "c1", 1, 2])


async def test_frames_split_anywhere_arrive_whole_and_in_order() -> None:
    host = _Host()
    conn, transport = _open(host)
    stream = HELLO + b"".join(encode_frame(["msgs", [encode_message(_app(i))]]) for i in range(5))
    for i in range(len(stream)):
        conn.data_received(stream[i : i + 1])
    assert decode_payload(bytes(transport.written[4:])) == ["ok"]
    assert [m for call in host.calls for m in call] == [_app(i) for i in range(5)]
    assert not transport.closed
    conn.connection_lost(None)


async def test_all_messages_of_one_read_are_delivered_in_one_call() -> None:
    host = _Host()
    conn, _ = _open(host)
    snap = Snapshot(SnapshotMetadata(10, 1, ConfState((NodeId(1), NodeId(2)))), b"")
    header = Message(MessageType.SNAP, NodeId(2), NodeId(1), 1, snapshot=snap)
    data = b"snapshot-bytes"
    conn.data_received(
        HELLO
        + encode_frame(["msgs", [encode_message(_app(1)), encode_message(_app(2))]])
        + encode_frame(["snap", encode_message(header), len(data)])
        + encode_frame(["chunk", data[:5]]) + encode_frame(["chunk", data[5:]])
        + encode_frame(["end"])
        + encode_frame(["msgs", [encode_message(_app(3))]])
    )
    assert len(host.calls) == 1
    got = host.calls[0]
    assert got[:2] == [_app(1), _app(2)] and got[3] == _app(3)
    assert got[2].snapshot is not None and got[2].snapshot.data == data
    conn.connection_lost(None)


@pytest.mark.parametrize(
    "hello, reason",
    [
        (encode_frame([PROTOCOL, "other", 1, 2]), "cluster id"),
        (encode_frame([PROTOCOL, "c1", 9, 2]), "not a member"),
        (encode_frame([PROTOCOL, "c1", 1, 3]), "this is member 2"),
    ],
)
async def test_a_wrong_handshake_is_refused_and_closed(hello: bytes, reason: str) -> None:
    host = _Host()
    conn, transport = _open(host)
    conn.data_received(hello + encode_frame(["msgs", [encode_message(_app(1))]]))
    answer = decode_payload(bytes(transport.written[4:]))
    assert answer[0] == "refused" and reason in answer[1]
    assert transport.closed and host.refused_connections == 1 and host.calls == []
    conn.connection_lost(None)


async def test_a_message_for_another_member_closes_the_connection() -> None:
    host = _Host()
    conn, transport = _open(host)
    stray = dataclasses.replace(_app(1), to=NodeId(3))
    conn.data_received(HELLO + encode_frame(["msgs", [encode_message(stray)]]))
    assert transport.closed and host.calls == []
    conn.connection_lost(None)
    assert conn not in host.connections
