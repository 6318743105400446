"""The remote client's deadlines: one timer per connection, not one per call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgpack
import pytest

import kvstore
from kvstore.client import Client
from kvstore.errors import Timeout
from kvstore.transport.server import OK


class _FakeMember(asyncio.Protocol):
    """Answers every put at once, except puts of keys under ``/slow``: never."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport
        self.unpacker = msgpack.Unpacker(raw=False)

    def data_received(self, data: bytes) -> None:
        self.unpacker.feed(data)
        for req_id, method, args in self.unpacker:
            if method == "put" and not args[0].startswith(b"/slow"):
                self.transport.write(msgpack.packb([req_id, OK, ["put", 7, None]]))


@pytest.fixture
async def endpoint() -> AsyncIterator[str]:
    server = await asyncio.get_running_loop().create_server(_FakeMember, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.close()


async def test_a_call_with_no_answer_times_out(endpoint: str) -> None:
    async with kvstore.connect([endpoint], timeout=0.2, follow_leader=False) as kv:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(Timeout):
            await kv.put("/slow/1", b"v")
        assert loop.time() - start >= 0.2
        # Answered calls around it are unaffected.
        assert (await kv.put("/fast", b"v")).header_revision == 7


async def test_answered_calls_leave_no_deadlines_behind(endpoint: str) -> None:
    async with kvstore.connect([endpoint], timeout=5, follow_leader=False) as kv:
        assert isinstance(kv, Client)
        for _ in range(3):
            await asyncio.gather(*(kv.put(f"/k{i}", b"v") for i in range(200)))
        conn = kv._conn
        assert conn is not None
        await kv.put("/last", b"v")
        assert len(conn.deadlines) <= 1
        assert not conn.pending


async def test_an_earlier_deadline_behind_a_later_one_still_fires(endpoint: str) -> None:
    async with kvstore.connect([endpoint], timeout=30, follow_leader=False) as kv:
        assert isinstance(kv, Client)
        conn = kv._conn
        assert conn is not None
        loop = asyncio.get_running_loop()
        _, late = conn.send("put", [b"/slow/late", b"v", 0, False], loop.time() + 30)
        _, early = conn.send("put", [b"/slow/early", b"v", 0, False], loop.time() + 0.1)
        with pytest.raises(Exception) as info:
            await asyncio.wait_for(early, 5)
        assert type(info.value).__name__ == "_Overdue"
        assert not late.done()
        late.cancel()
