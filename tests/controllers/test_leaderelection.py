"""Leader election on an embedded store, with time on fake clocks."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import kvstore
from controllers.api import Clientset
from controllers.api.objects import parse_timestamp
from controllers.clock import FakeClock
from controllers.leaderelection import LeaderCallbacks, LeaderElector, LeaseRecord
from kvstore.clock import FakeClock as WallFakeClock
from kvstore.node import Node, NodeOptions
from tests.controllers.manager.support import GatedKV, settle, wait_for

FAST = NodeOptions(tick_interval=0.01, unsafe_no_fsync=True)
WALL_START = 1_700_000_000.0
LOCK = "controller-manager"
NS = "kube-system"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Node]:
    async with kvstore.open(str(tmp_path / "store"), options=FAST) as node:
        yield node


@dataclass
class Candidate:
    """An elector with its own store handle and a log of its callbacks."""

    elector: LeaderElector
    kv: GatedKV
    events: list[str] = field(default_factory=list)
    leaders_seen: list[str] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


def candidate(store: Node, identity: str, clock: FakeClock, *, release_on_cancel: bool = True,
              others: list[Candidate] | None = None) -> Candidate:
    kv = GatedKV(store)
    api = Clientset(kv, clock=WallFakeClock(WALL_START), rng=random.Random(identity))
    events: list[str] = []
    leaders: list[str] = []

    async def lead() -> None:
        # Nobody else may be leading while this work starts.
        busy = [c.elector.identity for c in others or [] if c.elector.is_leader()
                and c.elector.identity != identity]
        events.append(f"started others={busy}")
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            events.append("work cancelled")
            raise

    callbacks = LeaderCallbacks(lead, lambda: events.append("stopped"), leaders.append)
    elector = LeaderElector(api, LOCK, NS, identity, lease_duration=15, renew_deadline=10,
                            retry_period=2, callbacks=callbacks,
                            release_on_cancel=release_on_cancel, clock=clock)
    return Candidate(elector, kv, events, leaders)


async def stored_record(store: Node) -> LeaseRecord:
    api = Clientset(store, clock=WallFakeClock(WALL_START))
    lease = await api.resource("leases").get(LOCK, NS)
    return LeaseRecord.from_spec(lease["spec"])


def test_renew_deadline_must_be_shorter_than_the_lease() -> None:
    api = Clientset(GatedKV(None), clock=WallFakeClock(WALL_START))
    async def work() -> None:
        return None

    callbacks = LeaderCallbacks(work, lambda: None)
    with pytest.raises(ValueError, match="renew_deadline"):
        LeaderElector(api, LOCK, NS, "a", lease_duration=10, renew_deadline=10,
                      callbacks=callbacks)
    with pytest.raises(ValueError, match="retry_period"):
        LeaderElector(api, LOCK, NS, "a", lease_duration=15, renew_deadline=5, retry_period=5,
                      callbacks=callbacks)
    LeaderElector(api, LOCK, NS, "a", lease_duration=15, renew_deadline=10, retry_period=2,
                  callbacks=callbacks)


async def test_expiry_is_judged_on_the_observers_own_clock(store: Node) -> None:
    # The clocks disagree by hours: only the time B has seen pass matters.
    a = candidate(store, "a", FakeClock(50_000.0))
    b_clock = FakeClock(3.0)
    b = candidate(store, "b", b_clock)
    assert await a.elector.try_acquire_or_renew()
    record = await stored_record(store)
    assert (record.holder_identity, record.lease_duration_seconds, record.lease_transitions) == (
        "a", 15, 0)
    assert not await b.elector.try_acquire_or_renew()
    assert b.elector.get_leader() == "a"
    b_clock.advance(10)
    # A renews (its own clock frozen): B sees the record change and starts counting again.
    assert await a.elector.try_acquire_or_renew()
    renewed = await stored_record(store)
    assert parse_timestamp(renewed.renew_time) > parse_timestamp(record.renew_time)
    assert renewed.acquire_time == record.acquire_time
    assert not await b.elector.try_acquire_or_renew()
    b_clock.advance(14.9)
    assert not await b.elector.try_acquire_or_renew()
    b_clock.advance(0.2)
    assert await b.elector.try_acquire_or_renew()
    taken = await stored_record(store)
    assert (taken.holder_identity, taken.lease_transitions) == ("b", 1)
    # A lost the compare-and-swap race for good: the record changed under it.
    assert not await a.elector.try_acquire_or_renew()
    assert a.elector.get_leader() == "b"
    assert b.leaders_seen == ["a", "b"]
    assert a.leaders_seen == ["a", "b"]


async def start(*cands: Candidate) -> None:
    for c in cands:
        c.task = asyncio.ensure_future(c.elector.run())


async def stop(*cands: Candidate) -> None:
    for c in cands:
        if c.task is not None and not c.task.done():
            c.task.cancel()
            await asyncio.wait({c.task})


def leaders(*cands: Candidate) -> list[str]:
    return [c.elector.identity for c in cands if c.elector.is_leader()]


async def test_exactly_one_leads_and_keeps_leading(store: Node) -> None:
    clock = FakeClock()
    group: list[Candidate] = []
    group += [candidate(store, name, clock, others=group) for name in ("a", "b", "c")]
    kvs = [c.kv for c in group]
    await start(*group)
    try:
        await wait_for(lambda: len(leaders(*group)) == 1, *kvs)
        first = leaders(*group)
        for _ in range(12):
            clock.advance(1)
            await settle(*kvs)
            assert leaders(*group) == first
        leader = next(c for c in group if c.elector.identity == first[0])
        assert leader.events == ["started others=[]"]
        record = await stored_record(store)
        assert record.holder_identity == first[0]
        for c in group:
            assert c.leaders_seen == first
    finally:
        await stop(*group)


async def test_a_silent_leader_is_replaced_only_after_the_lease_duration(store: Node) -> None:
    clock = FakeClock()
    a = candidate(store, "a", clock, release_on_cancel=False)
    b = candidate(store, "b", clock)
    await start(a)
    await wait_for(lambda: a.elector.is_leader(), a.kv)
    await start(b)
    try:
        await settle(a.kv, b.kv)
        clock.advance(2)  # A renews, B looks again
        await settle(a.kv, b.kv)
        renewed_at = clock.now()
        await stop(a)  # gone without a word: no release
        assert a.events == ["started others=[]", "work cancelled", "stopped"]
        assert (await stored_record(store)).holder_identity == "a"
        while not b.elector.is_leader():
            clock.advance(1)
            await settle(b.kv)
            assert clock.now() < renewed_at + 15 + 2 + 2, "B never took over"
        assert clock.now() >= renewed_at + 15
        assert b.leaders_seen == ["a", "b"]
        assert (await stored_record(store)).lease_transitions == 1
    finally:
        await stop(a, b)


async def test_a_clean_release_hands_over_at_once(store: Node) -> None:
    clock = FakeClock()
    a = candidate(store, "a", clock)
    b = candidate(store, "b", clock)
    await start(a)
    await wait_for(lambda: a.elector.is_leader(), a.kv)
    await start(b)
    try:
        await settle(a.kv, b.kv)
        await stop(a)
        assert a.events == ["started others=[]", "work cancelled", "stopped"]
        released = await stored_record(store)
        assert (released.holder_identity, released.lease_duration_seconds) == ("", 1)
        assert not a.elector.is_leader()
        clock.advance(2)  # B's next attempt
        await wait_for(lambda: b.elector.is_leader(), b.kv)
        assert clock.now() < 15
    finally:
        await stop(a, b)


async def test_a_leader_that_cannot_renew_stops_before_anyone_takes_over(store: Node) -> None:
    clock = FakeClock()
    group: list[Candidate] = []
    a = candidate(store, "a", clock, others=group)
    b = candidate(store, "b", clock, others=group)
    group += [a, b]
    await start(a)
    await wait_for(lambda: a.elector.is_leader(), a.kv)
    await start(b)
    try:
        await settle(a.kv, b.kv)
        renewed_at = clock.now()
        a.kv.hang = True  # every store call of A hangs from now on
        stopped_at = None
        while not b.elector.is_leader():
            clock.advance(0.5)
            await settle(a.kv, b.kv)
            if stopped_at is None and "stopped" in a.events:
                stopped_at = clock.now()
            assert clock.now() < renewed_at + 15 + 4, "B never took over"
        assert stopped_at is not None and stopped_at <= renewed_at + 10
        assert a.events == ["started others=[]", "work cancelled", "stopped"]
        # B started its work only once A had stopped.
        assert b.events == ["started others=[]"]
        assert clock.now() >= renewed_at + 15
    finally:
        a.kv.hang = False
        await stop(a, b)


async def test_a_leader_that_loses_the_lease_tries_to_win_it_back(store: Node) -> None:
    clock = FakeClock()
    a = candidate(store, "a", clock)
    await start(a)
    try:
        await wait_for(lambda: a.elector.is_leader(), a.kv)
        a.kv.hang = True
        for _ in range(11):
            clock.advance(1)
            await settle(a.kv)
        assert not a.elector.is_leader()
        a.kv.hang = False
        # The attempt that hangs is abandoned after renew_deadline; the next one wins.
        stepped_down_at = clock.now()
        while not a.elector.is_leader():
            clock.advance(1)
            await settle(a.kv)
            assert clock.now() <= stepped_down_at + 10 + 2 + 1, "A never came back"
        assert a.events == ["started others=[]", "work cancelled", "stopped",
                            "started others=[]"]
    finally:
        await stop(a)


async def test_a_missing_namespace_is_a_logged_failure(store: Node,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    kv = GatedKV(store)
    api = Clientset(kv, clock=WallFakeClock(WALL_START))

    async def work() -> None:
        return None

    elector = LeaderElector(api, LOCK, "nowhere", "a", callbacks=LeaderCallbacks(work, lambda: None),
                            clock=FakeClock())
    assert not await elector.try_acquire_or_renew()
    assert "nowhere" in caplog.text and "failed" in caplog.text
    assert elector.get_leader() == ""


async def test_a_leader_that_finds_another_holder_stops_at_once(store: Node) -> None:
    clock = FakeClock()
    a = candidate(store, "a", clock)
    await start(a)
    try:
        await wait_for(lambda: a.elector.is_leader(), a.kv)
        leases = Clientset(store, clock=WallFakeClock(WALL_START)).resource("leases")
        lease = await leases.get(LOCK, NS)
        lease["spec"]["holderIdentity"] = "intruder"
        await leases.update(lease)
        clock.advance(2)
        await wait_for(lambda: "stopped" in a.events, a.kv)
        assert not a.elector.is_leader() and a.elector.get_leader() == "intruder"
        assert a.events == ["started others=[]", "work cancelled", "stopped"]
        assert clock.now() < 10
    finally:
        await stop(a)
