"""The manager: routing of reconcile outcomes, workers, cache sync, shutdown, metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from controllers.api import Clientset
from controllers.clock import FakeClock
from controllers.controller import (
    DONE,
    REQUEUE,
    PermanentError,
    TemporaryError,
    requeue_after,
)
from controllers.manager import Manager
from controllers.workqueue.rate_limiters import ItemExponentialFailureRateLimiter, RateLimiter
from kvstore.clock import FakeClock as WallFakeClock
from tests.controllers.manager.support import GatedKV, settle
from tests.controllers.manager.toy import FakeInformer, Outcome, ToyController


def offline_clientset() -> Clientset:
    """A clientset whose store is never called by these tests."""
    return Clientset(GatedKV(None), clock=WallFakeClock(0.0))


def limiter() -> RateLimiter[str]:
    return ItemExponentialFailureRateLimiter(base_delay=1.0, max_delay=100.0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class Running:
    """A manager task that is always cancelled at the end of the test."""

    def __init__(self, manager: Manager) -> None:
        self.manager = manager
        self.task: asyncio.Task[None] = asyncio.ensure_future(manager.run())

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.wait({self.task})
        assert self.task.cancelled()


@pytest.fixture
async def running() -> AsyncIterator[Callable[[Manager], Running]]:
    started: list[Running] = []

    def run(manager: Manager) -> Running:
        r = Running(manager)
        started.append(r)
        return r

    yield run
    for r in started:
        if not r.task.done():
            await r.stop()


SCRIPTS: dict[str, tuple[list[Outcome], list[float]]] = {
    # key: (what each reconcile does, the times the reconciles happen)
    "done": ([DONE], [0.0]),
    "none": ([None], [0.0]),
    "requeue": ([REQUEUE, REQUEUE, DONE], [0.0, 1.0, 3.0]),
    "after": ([requeue_after(5), DONE], [0.0, 5.0]),
    "after-forgets": ([REQUEUE, requeue_after(2), REQUEUE, DONE], [0.0, 1.0, 3.0, 4.0]),
    "temporary": ([TemporaryError(delay=3), DONE], [0.0, 3.0]),
    "permanent": ([PermanentError("no such thing")], [0.0]),
    "crash": ([RuntimeError("bug"), KeyError("x"), DONE], [0.0, 1.0, 3.0]),
}


@pytest.mark.parametrize("key", sorted(SCRIPTS))
async def test_each_outcome_is_routed(key: str, clock: FakeClock,
                                      running: Callable[[Manager], Running]) -> None:
    script, expected = SCRIPTS[key]
    toy = ToyController(initial_keys=[key], scripts={key: list(script)}, now=clock.now)
    manager = Manager(offline_clientset(), [toy], rate_limiter_factory=limiter, clock=clock)
    running(manager)
    await settle()
    for _ in range(40):
        clock.advance(0.5)
        await settle()
    assert toy.times(key) == expected
    # Nothing is left waiting: the key is either done or dropped.
    assert manager.metrics()["toy"]["depth"] == 0


async def test_workers_never_share_a_key(clock: FakeClock,
                                         running: Callable[[Manager], Running]) -> None:
    gate = asyncio.Event()
    toy = ToyController(initial_keys=["a", "b", "c"], gate=gate, now=clock.now)
    manager = Manager(offline_clientset(), [toy], workers_per_controller=4, clock=clock)
    running(manager)
    await settle()
    assert sorted(toy.active) == ["a", "b", "c"]
    ctx = toy.contexts[0]
    for key in ["a", "a", "b", "d"]:
        ctx.enqueue(key)
    await settle()
    # "d" took the fourth worker; "a" and "b" wait for their own reconciles to end.
    assert sorted(toy.active) == ["a", "b", "c", "d"]
    gate.set()
    await settle(quiet_turns=30)
    assert toy.overlaps == []
    assert [k for k, _ in toy.calls].count("a") == 2
    assert [k for k, _ in toy.calls].count("b") == 2
    assert toy.max_active == 4


async def test_workers_wait_for_the_informers_to_sync(
        clock: FakeClock, running: Callable[[Manager], Running]) -> None:
    made: dict[str, FakeInformer] = {}

    def informer(resource: str) -> FakeInformer:
        made[resource] = FakeInformer(resource)
        return made[resource]

    pods = ToyController(name="pods-ctl", informers=["pods"], initial_keys=["p"], now=clock.now)
    both = ToyController(name="both-ctl", informers=["pods", "nodes"], initial_keys=["n"],
                         now=clock.now)
    manager = Manager(offline_clientset(), [pods, both], informer_factory=informer, clock=clock,
                      cache_sync_poll=0.1)
    r = running(manager)
    await settle()
    assert sorted(made) == ["nodes", "pods"]
    assert made["pods"].running and made["nodes"].running
    # One shared informer per resource, given to each controller that named it.
    assert pods.contexts[0].informers == {"pods": made["pods"]}
    assert both.contexts[0].informers == {"pods": made["pods"], "nodes": made["nodes"]}
    clock.advance(1)
    await settle()
    assert pods.calls == [] and both.calls == []
    made["pods"].synced = True
    clock.advance(0.1)
    await settle()
    assert pods.times("p") == pytest.approx([1.1])
    assert both.calls == []
    made["nodes"].synced = True
    clock.advance(0.1)
    await settle()
    assert both.times("n") == pytest.approx([1.2])
    await r.stop()
    assert made["pods"].stopped and made["nodes"].stopped
    assert not made["pods"].running


async def test_cancel_drains_the_queues_gracefully(clock: FakeClock,
                                                   running: Callable[[Manager], Running]) -> None:
    gate = asyncio.Event()
    keys = [f"k{i}" for i in range(5)]
    toy = ToyController(initial_keys=keys, gate=gate, now=clock.now,
                        scripts={key: [REQUEUE] for key in keys})
    manager = Manager(offline_clientset(), [toy], workers_per_controller=2, clock=clock)
    r = running(manager)
    await settle()
    assert sorted(toy.active) == ["k0", "k1"]
    r.task.cancel()
    await settle()
    # Still draining: the two reconciles in process hold the shutdown.
    assert not r.task.done()
    assert manager.is_leading()
    gate.set()
    await asyncio.wait({r.task}, timeout=5)
    assert r.task.cancelled()
    # Everything queued was reconciled once; the requeues asked for while draining were dropped.
    assert sorted(k for k, _ in toy.calls) == keys
    assert not manager.is_leading()
    metrics = manager.metrics()["toy"]
    assert metrics["adds_total"] == 5
    assert metrics["depth"] == 0
    work = metrics["work_duration_seconds"]
    assert isinstance(work, dict) and work["count"] == 5


async def test_a_manager_can_run_again_after_it_stopped(
        clock: FakeClock, running: Callable[[Manager], Running]) -> None:
    toy = ToyController(initial_keys=["x"], now=clock.now)
    manager = Manager(offline_clientset(), [toy], clock=clock)
    first = running(manager)
    await settle()
    with pytest.raises(RuntimeError, match="already running"):
        await manager.run()
    await first.stop()
    running(manager)
    await settle()
    # Each term has a new queue, and setup ran again for it.
    assert len(toy.contexts) == 2
    assert toy.times("x") == [0.0, 0.0]


def test_bad_configurations_are_refused(clock: FakeClock) -> None:
    api = offline_clientset()
    with pytest.raises(ValueError, match="unique"):
        Manager(api, [ToyController(), ToyController()], clock=clock)
    with pytest.raises(ValueError, match="at least one worker"):
        Manager(api, [ToyController()], workers_per_controller=0, clock=clock)
    with pytest.raises(ValueError, match="at least one worker"):
        Manager(api, [ToyController()], workers={"toy": 0}, clock=clock)


async def test_each_controller_gets_its_own_worker_count(
        clock: FakeClock, running: Callable[[Manager], Running]) -> None:
    gate = asyncio.Event()
    keys = [f"k{i}" for i in range(8)]
    wide = ToyController(name="wide", initial_keys=keys, gate=gate, now=clock.now)
    narrow = ToyController(name="narrow", initial_keys=keys, gate=gate, now=clock.now)
    manager = Manager(offline_clientset(), [wide, narrow], workers_per_controller=2,
                      workers={"wide": 5}, clock=clock)
    running(manager)
    await settle()
    assert (len(wide.active), len(narrow.active)) == (5, 2)
    gate.set()
    await settle(quiet_turns=30)
    assert (wide.max_active, narrow.max_active) == (5, 2)
    assert len(wide.calls) == len(narrow.calls) == 8


async def test_events_are_recorded_under_the_controllers_event_source(
        clock: FakeClock, running: Callable[[Manager], Running]) -> None:
    plain = ToyController(name="plain")
    named = ToyController(name="named")
    named.event_source = "named-controller"  # type: ignore[attr-defined]
    running(Manager(offline_clientset(), [plain, named], clock=clock))
    await settle()
    assert plain.contexts[0].recorder.component == "plain"
    assert named.contexts[0].recorder.component == "named-controller"
