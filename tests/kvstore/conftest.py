"""Fixtures: the key-value API, embedded in this process or reached over TCP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

import kvstore
from tests.kvstore.members import InProcessCluster


@pytest.fixture
async def cluster(tmp_path: Any) -> AsyncIterator[InProcessCluster]:
    """Three members in this process, a leader elected."""
    c = InProcessCluster(str(tmp_path / "cluster"))
    try:
        await c.start()
        await c.wait_for_leader()
        yield c
    finally:
        await c.close()


@pytest.fixture(params=["embedded", "remote"])
async def kv(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Any]:
    """The same API two ways: ``kvstore.open`` and ``kvstore.connect`` to three members."""
    if request.param == "embedded":
        async with kvstore.open(str(tmp_path / "embedded")) as node:
            yield node
        return
    c = InProcessCluster(str(tmp_path / "cluster"))
    try:
        await c.start()
        await c.wait_for_leader()
        async with kvstore.connect(c.endpoints(), timeout=10) as client:
            yield client
    finally:
        await c.close()
