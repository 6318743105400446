"""Options shared by the whole test suite."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--rewrite",
        action="store_true",
        default=False,
        help="rewrite the expected output of data-driven test files from the actual output",
    )
    parser.addoption(
        "--seed",
        type=int,
        default=None,
        help="replay one simulator seed (tests/sim) instead of the CI seed set",
    )


@pytest.fixture
def rewrite(request: pytest.FixtureRequest) -> bool:
    """Whether data-driven tests should rewrite their files instead of comparing."""
    return bool(request.config.getoption("--rewrite"))


@pytest.fixture
def sim_seed(request: pytest.FixtureRequest) -> int | None:
    """The simulator seed given with ``--seed``, if any."""
    seed = request.config.getoption("--seed")
    return None if seed is None else int(seed)
