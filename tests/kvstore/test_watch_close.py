"""Closing a watch from another task ends the task iterating it, embedded and remote."""

from __future__ import annotations

import asyncio
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
