"""A fresh three-member cluster of real processes, with its control plane, per test."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.cluster import LocalCluster
from tests.e2e.support import MEMBER_ARGS
from tests.kvstore.ports import free_port_block


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    c = LocalCluster(str(tmp_path / ".steer"))
    try:
        c.up(3, free_port_block(6), extra_args=MEMBER_ARGS)
        assert asyncio.run(c.wait_for_leader(timeout=30)) is not None
        yield c
    finally:
        c.down()
