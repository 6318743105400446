"""The same client over TCP: a ``kvstore.connect`` client of a served member."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest

import kvstore
from controllers.api import Clientset, Gone, NotFound
from kvstore.clock import FakeClock
from kvstore.node import Node
from kvstore.transport.server import ClientServer
from tests.controllers.api.conftest import DEADLINE, START
from tests.controllers.api.samples import deployment


@pytest.fixture
async def remote(kv: Node) -> AsyncIterator[kvstore.Client]:
    server = ClientServer(kv)
    port = await server.start("127.0.0.1", 0)
    try:
        async with kvstore.connect([f"127.0.0.1:{port}"], timeout=5) as client:
            yield client
    finally:
        await server.close()


async def test_crud_list_and_watch_over_tcp(remote: kvstore.Client, kv: Node) -> None:
    api = Clientset(remote, clock=FakeClock(START), rng=random.Random(3))
    deps = api.resource("deploy")
    created = await deps.create(deployment("web"))
    w = await deps.watch(resource_version=created["metadata"]["resourceVersion"])
    created["spec"]["replicas"] = 2
    updated = await deps.update(created)
    await deps.delete("web")
    events = [await asyncio.wait_for(w.__anext__(), DEADLINE) for _ in range(2)]
    await w.aclose()
    assert [e.type.value for e in events] == ["MODIFIED", "DELETED"]
    assert events[1].object["spec"]["replicas"] == 2
    assert events[0].object == updated
    with pytest.raises(NotFound):
        await deps.get("web")
    await kv.compact((await kv.status()).revision)
    with pytest.raises(Gone):
        await deps.watch(resource_version=created["metadata"]["resourceVersion"])
    assert (await deps.list())["items"] == []
