"""A peer that dies with unread data resets its connections: the sender must reconnect.

This is what ``kill -9`` of a busy member does to the others' connections to
it (the kernel answers the unread bytes with a reset). Run on uvloop, the
loop ``runtime.host`` uses, where a write to the reset connection raises
rather than being dropped.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

import pytest

from kvstore.raft.messages import Message, MessageType, NodeId
from kvstore.transport.codec import encode_frame
from kvstore.transport.peer import PeerTransport, read_frame
from tests.kvstore.ports import free_port_block

uvloop = pytest.importorskip("uvloop")


async def _sender_reconnects_after_a_reset() -> None:
    base = free_port_block(2)
    handshakes: asyncio.Queue[tuple[Any, asyncio.StreamWriter]] = asyncio.Queue()

    async def fake_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hello = await read_frame(reader)
        writer.write(encode_frame(["ok"]))
        await writer.drain()
        await handshakes.put((hello, writer))

    server = await asyncio.start_server(fake_peer, "127.0.0.1", base + 1)
    unreachable: list[NodeId] = []
    t = PeerTransport(
        cluster_id="c", member_id=NodeId(1), peers={NodeId(2): ("127.0.0.1", base + 1)},
        deliver=lambda msgs: None, report_unreachable=unreachable.append,
        report_snapshot=lambda peer, ok: None,
    )
    await t.listen("127.0.0.1", base)
    heartbeat = Message(MessageType.HEARTBEAT, to=NodeId(2), from_=NodeId(1), term=1)
    try:
        hello, first = await asyncio.wait_for(handshakes.get(), 10)
        assert hello[1:] == ["c", 1, 2]
        # Die abruptly: with a zero linger time the kernel resets the connection.
        sock = first.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        first.transport.abort()
        # Let the loop run (no wall-clock wait) until the sender has seen the
        # reset and its transport is closed, before anything is sent on it.
        for _ in range(50):
            await asyncio.sleep(0)

        async def reconnected() -> tuple[Any, asyncio.StreamWriter]:
            # Keep the sender busy, as a leader's heartbeats would.
            while handshakes.empty():
                t.send([heartbeat])
                await asyncio.sleep(0.01)
            return await handshakes.get()

        hello, second = await asyncio.wait_for(reconnected(), 10)
        assert hello[1:] == ["c", 1, 2]
        assert unreachable and unreachable[0] == 2
        second.close()
    finally:
        await t.close()
        server.close()
        await server.wait_closed()


def test_sender_reconnects_after_its_connection_is_reset() -> None:
    uvloop.run(_sender_reconnects_after_a_reset())
