"""Fixtures for the recipe tests: an embedded store, and one whose leases run on a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import kvstore
from kvstore.clock import FakeClock
from kvstore.node import Node, NodeOptions
from tests.recipes.support import DEADLINE

FAST = NodeOptions(tick_interval=0.01, unsafe_no_fsync=True)


@pytest.fixture
async def kv(tmp_path: Path) -> AsyncIterator[Node]:
    """An embedded one-member store (``kvstore.open``)."""
    async with kvstore.open(str(tmp_path / "store"), options=FAST) as store:
        yield store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1000.0)


@pytest.fixture
async def clocked(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Node]:
    """An embedded member whose leases expire on ``clock`` (time moves only when a test says)."""
    node = await Node.start(data_dir=str(tmp_path / "clocked"), options=FAST, clock=clock)
    try:
        while not node.is_leader:
            await asyncio.wait_for(node.leader_changed.wait(), DEADLINE)
        yield node
    finally:
        await node.stop()
