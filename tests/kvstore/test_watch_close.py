"""Closing a watch from another task ends the task iterating it, embedded and remote."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import kvstore
from kvstore.node import Node
from kvstore.transport.server import ClientServer


async def _iterate(stream: object) -> str:
    async for _ in stream:  # type: ignore[attr-defined]
        pass
    return "ended"


async def test_closing_a_watch_ends_its_reader(tmp_path: Path) -> None:
    node = await Node.start(data_dir=str(tmp_path))
    server = ClientServer(node)
    port = await server.start("127.0.0.1", 0)
    try:
        local = await node.watch("/x", prefix=True)
        reader = asyncio.ensure_future(_iterate(local))
        await asyncio.sleep(0)
        await local.aclose()
        assert await asyncio.wait_for(reader, 5) == "ended"
        assert len(node.machine.hub) == 0

        async with kvstore.connect([f"127.0.0.1:{port}"]) as client:
            remote = await client.watch("/x", prefix=True)
            reader = asyncio.ensure_future(_iterate(remote))
            await asyncio.sleep(0.01)
            await remote.aclose()
            assert await asyncio.wait_for(reader, 5) == "ended"
            # The connection is still good for everything else.
            assert (await client.put("/y", "1")).header_revision > 1
    finally:
        await server.close()
        await node.stop()


async def test_closing_a_watch_leaves_no_answer_waiting(tmp_path: Path) -> None:
    """The cancel is sent without a future: a connection lost before its answer fails nothing."""
    node = await Node.start(data_dir=str(tmp_path))
    server = ClientServer(node)
    port = await server.start("127.0.0.1", 0)
    loop = asyncio.get_running_loop()
    unretrieved: list[object] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, ctx: unretrieved.append(ctx.get("exception")))
    try:
        async with kvstore.connect([f"127.0.0.1:{port}"]) as client:
            await client.put("/x/1", "a")
            conn = client._conn
            assert conn is not None
            remote = await client.watch("/x", prefix=True)
            await remote.aclose()
            assert not conn.pending  # nothing left to fail when the connection goes
            conn.close()
            await asyncio.sleep(0.05)
        gc.collect()
        await asyncio.sleep(0)
        assert unretrieved == []
    finally:
        loop.set_exception_handler(previous)
        await server.close()
        await node.stop()
