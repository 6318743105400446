"""Peer transport over loopback: handshake, batching, snapshots, bad input."""

from __future__ import annotations

import asyncio
import logging
import os

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
from kvstore.transport.codec import encode_frame
from kvstore.transport.peer import PeerTransport


class Member:
    def __init__(self, cluster: str, mid: int, peers: dict[NodeId, tuple[str, int]]) -> None:
        self.received: list[Message] = []
        self.unreachable: list[NodeId] = []
        self.snapshots: list[tuple[NodeId, bool]] = []
        self.arrived = asyncio.Event()
        self.t = PeerTransport(
            cluster_id=cluster,
            member_id=NodeId(mid),
            peers=peers,
            deliver=self._deliver,
            report_unreachable=self.unreachable.append,
            report_snapshot=lambda p, ok: self.snapshots.append((p, ok)),
        )

    def _deliver(self, msgs: list[Message]) -> None:
        self.received.extend(msgs)
        self.arrived.set()

    async def wait_for(self, n: int) -> None:
        while len(self.received) < n:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), 5)


def free_ports(n: int) -> list[int]:
    import socket

    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


async def pair(cluster_b: str = "c1") -> tuple[Member, Member]:
    p1, p2 = free_ports(2)
    peers = {NodeId(1): ("127.0.0.1", p1), NodeId(2): ("127.0.0.1", p2)}
    a, b = Member("c1", 1, peers), Member(cluster_b, 2, peers)
    await a.t.listen("127.0.0.1", p1)
    await b.t.listen("127.0.0.1", p2)
    if cluster_b == "c1":
        for _ in range(500):
            if a.t.connected(NodeId(2)):
                break
            await asyncio.sleep(0.01)
        assert a.t.connected(NodeId(2))
    return a, b


def app(i: int) -> Message:
    return Message(
        MessageType.APP, NodeId(2), NodeId(1), 1, 1, i, (Entry(1, i + 1, b"v%d" % i),), i
    )


async def test_messages_arrive_in_order() -> None:
    a, b = await pair()
    try:
        a.t.send(app(i) for i in range(500))
        await b.wait_for(500)
        assert [m.index for m in b.received] == list(range(500))
        assert b.received[7] == app(7)
    finally:
        await a.t.close()
        await b.t.close()


async def test_snapshot_streams_in_chunks_and_is_reported() -> None:
    a, b = await pair()
    data = os.urandom(3 * (1 << 20) + 123)
    snap = Snapshot(SnapshotMetadata(10, 2, ConfState((NodeId(1), NodeId(2)))), data)
    try:
        a.t.send([Message(MessageType.SNAP, NodeId(2), NodeId(1), 2, snapshot=snap), app(11)])
        await b.wait_for(2)
        got = b.received[0]
        assert got.snapshot is not None and got.snapshot.data == data
        assert got.snapshot.metadata == snap.metadata
        assert b.received[1] == app(11)
        assert a.snapshots == [(NodeId(2), True)]
    finally:
        await a.t.close()
        await b.t.close()


async def test_other_cluster_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="kvstore")
    a, b = await pair(cluster_b="other")
    try:
        a.t.send([app(1)])
        for _ in range(100):
            if b.t.refused_connections:
                break
            await asyncio.sleep(0.01)
        assert b.t.refused_connections >= 1
        assert b.received == []
        assert any("cluster id" in r.getMessage() for r in caplog.records)
    finally:
        await a.t.close()
        await b.t.close()


@pytest.mark.parametrize(
    "garbage",
    [
        b"\xff\xff\xff\xff" + b"x" * 10,  # announces a 4 GiB frame
        b"\x00\x00\x00\x03abc",  # not msgpack
        encode_frame(["steersman-peer/1", "c1", 99, 2]),  # unknown member
        encode_frame(["hello"]),
        os.urandom(64),
    ],
)
async def test_bad_input_closes_connection_and_member_keeps_serving(garbage: bytes) -> None:
    a, b = await pair()
    try:
        port = b.t._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(garbage)
        await writer.drain()
        rest = await asyncio.wait_for(reader.read(), 6)  # the member closes the connection
        assert isinstance(rest, bytes)
        writer.close()
        a.t.send([app(3)])
        await b.wait_for(1)
        assert b.received == [app(3)]
    finally:
        await a.t.close()
        await b.t.close()


async def test_unreachable_peer_is_reported_and_recovers() -> None:
    p1, p2 = free_ports(2)
    peers = {NodeId(1): ("127.0.0.1", p1), NodeId(2): ("127.0.0.1", p2)}
    a = Member("c1", 1, peers)
    await a.t.listen("127.0.0.1", p1)
    try:
        a.t.send([app(1)])
        for _ in range(200):
            if a.unreachable:
                break
            await asyncio.sleep(0.01)
        assert a.unreachable and a.unreachable[0] == NodeId(2)
        b = Member("c1", 2, peers)
        await b.t.listen("127.0.0.1", p2)
        try:
            for _ in range(300):
                a.t.send([app(2)])
                if b.received:
                    break
                await asyncio.sleep(0.02)
            assert b.received and b.received[0] == app(2)
        finally:
            await b.t.close()
    finally:
        await a.t.close()
