"""Raft scenarios (paper §5, dissertation §3-§6, §9) as data-driven trace files.

Each ``testdata/*.txt`` file drives a scripted cluster (``tests.support.
interaction``) and holds the expected trace. ``pytest --rewrite`` regenerates
the traces; review them with ``git diff``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.datadriven import run_file
from tests.support.interaction import InteractionEnv

TESTDATA = Path(__file__).parent / "testdata"
FILES = sorted(TESTDATA.glob("*.txt"))


def test_there_are_scenarios() -> None:
    assert len(FILES) >= 12


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario(path: Path, rewrite: bool) -> None:
    env = InteractionEnv()
    run_file(path, env.handle, rewrite=rewrite)
