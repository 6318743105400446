"""Managers under leader election on an embedded store: only the leader's workers run."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import kvstore
from controllers.api import Clientset
from controllers.clock import FakeClock
from controllers.manager import LeaderElectionConfig, Manager
from kvstore.clock import FakeClock as WallFakeClock
from kvstore.node import Node, NodeOptions
from tests.controllers.manager.support import GatedKV, settle, wait_for
from tests.controllers.manager.toy import ToyController

FAST = NodeOptions(tick_interval=0.01, unsafe_no_fsync=True)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Node]:
    async with kvstore.open(str(tmp_path / "store"), options=FAST) as node:
        yield node


def member(store: Node, identity: str, clock: FakeClock) -> tuple[Manager, ToyController, GatedKV]:
    kv = GatedKV(store)
    api = Clientset(kv, clock=WallFakeClock(1_700_000_000.0), rng=random.Random(identity))
    toy = ToyController(initial_keys=["default/web"], now=clock.now)
    election = LeaderElectionConfig("controller-manager", identity, lease_duration=15,
                                    renew_deadline=10, retry_period=2)
    return Manager(api, [toy], leader_election=election, clock=clock), toy, kv


async def test_only_the_leader_reconciles_and_a_clean_stop_hands_over(store: Node) -> None:
    clock = FakeClock()
    first, first_toy, first_kv = member(store, "one", clock)
    second, second_toy, second_kv = member(store, "two", clock)
    first_task = asyncio.ensure_future(first.run())
    await wait_for(first.is_leading, first_kv)
    await settle(first_kv)
    second_task = asyncio.ensure_future(second.run())
    try:
        for _ in range(5):
            clock.advance(1)
            await settle(first_kv, second_kv)
        assert first.is_leading() and not second.is_leading()
        assert first_toy.times("default/web") == [0.0]
        assert second_toy.calls == [] and second_toy.contexts == []
        assert second.elector is not None and second.elector.get_leader() == "one"
        first_task.cancel()
        await asyncio.wait({first_task})
        assert not first.is_leading()
        clock.advance(2)
        await wait_for(second.is_leading, second_kv)
        await settle(second_kv)
        assert clock.now() < 15  # released: no need to wait out the lease
        assert second_toy.times("default/web") == [clock.now()]
    finally:
        for task in (first_task, second_task):
            task.cancel()
            await asyncio.wait({task})


async def test_workers_stop_when_leadership_is_lost(store: Node) -> None:
    clock = FakeClock()
    manager, toy, kv = member(store, "one", clock)
    task = asyncio.ensure_future(manager.run())
    try:
        await wait_for(manager.is_leading, kv)
        await settle(kv)
        assert len(toy.contexts) == 1
        kv.hang = True  # the store stops answering this member
        for _ in range(10):
            clock.advance(1)
            await settle(kv)
        assert not manager.is_leading()
        # The term's queue is shut down: nothing enqueued now is reconciled.
        toy.contexts[0].enqueue("default/late")
        await settle()
        assert toy.times("default/late") == []
    finally:
        task.cancel()
        await asyncio.wait({task})
        kv.hang = False
