"""Fixtures: an embedded store, a fake wall clock, a seeded random source, and a Clientset."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import kvstore
from controllers.api import Clientset
from kvstore.clock import FakeClock
from kvstore.node import Node, NodeOptions

# Ticks of 10 ms: the store sends progress notifications (bookmarks) every 10 ticks.
FAST = NodeOptions(tick_interval=0.01, unsafe_no_fsync=True)
START = 1_700_000_000.0  # 2023-11-14T22:13:20Z
# Safety net for awaits that must complete; a test that hits it has failed.
DEADLINE = 10.0


@pytest.fixture
async def kv(tmp_path: Path) -> AsyncIterator[Node]:
    """An embedded one-member store (``kvstore.open``)."""
    async with kvstore.open(str(tmp_path / "store"), options=FAST) as store:
        yield store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def api(kv: Node, clock: FakeClock) -> Clientset:
    return Clientset(kv, clock=clock, rng=random.Random(7))
