"""A fresh three-member cluster of real processes per test, always stopped afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.procs.harness import ProcCluster


@pytest.fixture
def procs(tmp_path: Any) -> Iterator[ProcCluster]:
    """Not started: a test calls ``await procs.up()`` (with its own options, if any)."""
    c = ProcCluster(str(tmp_path))
    try:
        yield c
    finally:
        c.down()
