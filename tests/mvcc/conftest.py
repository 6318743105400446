"""Shared fixtures for the MVCC tests."""

from __future__ import annotations

import pytest

from kvstore.clock import FakeClock
from kvstore.mvcc import KVStateMachine, KVStore


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1000.0)


@pytest.fixture
def machine(clock: FakeClock) -> KVStateMachine:
    return KVStateMachine(clock)


@pytest.fixture
def store(machine: KVStateMachine) -> KVStore:
    return machine.store
