"""The scheduling queue (priority order, back-off, moves) and the node cache (assumed pods)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controllers.builtin.scheduler.cache import Cache
from controllers.builtin.scheduler.framework import PodInfo
from controllers.builtin.scheduler.queue import PodState, SchedulingQueue
from controllers.informers.store import freeze
from kvstore.clock import FakeClock
from tests.controllers.builtin.scheduler_objects import make_node, make_pod


def pod(name: str, priority: int | None = None, created: str = "2024-01-01T00:00:00Z"
        ) -> dict[str, Any]:
    p = make_pod(name, priority=priority)
    p["metadata"]["creationTimestamp"] = created
    return p


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(100.0)


@pytest.fixture
def queue(clock: FakeClock) -> SchedulingQueue:
    return SchedulingQueue(clock, initial_backoff_seconds=1.0, max_backoff_seconds=10.0,
                           max_unschedulable_seconds=60.0)


def drain(queue: SchedulingQueue) -> list[str]:
    keys = []
    while (entry := queue.pop()) is not None:
        keys.append(entry.key)
    return keys


def test_pop_takes_higher_priority_then_older_then_first_queued(queue: SchedulingQueue) -> None:
    assert queue.add(pod("low", 1)) == 0.0
    queue.add(pod("none"))
    queue.add(pod("high", 100))
    queue.add(pod("mid-new", 10, "2024-01-02T00:00:00Z"))
    queue.add(pod("mid-old", 10, "2023-12-31T00:00:00Z"))
    queue.add(pod("mid-same-b", 10, "2024-01-01T12:00:00Z"))
    queue.add(pod("mid-same-a", 10, "2024-01-01T12:00:00Z"))
    assert queue.active_keys() == ["default/high", "default/mid-old", "default/mid-same-b",
                                   "default/mid-same-a", "default/mid-new", "default/low",
                                   "default/none"]
    assert drain(queue) == ["default/high", "default/mid-old", "default/mid-same-b",
                            "default/mid-same-a", "default/mid-new", "default/low",
                            "default/none"]


@given(st.lists(st.tuples(st.integers(-5, 5), st.integers(0, 3)), max_size=30))
def test_pop_order_is_sorted_by_priority_then_creation(items: list[tuple[int, int]]) -> None:
    queue = SchedulingQueue(FakeClock())
    for i, (priority, day) in enumerate(items):
        queue.add(pod(f"p{i}", priority, f"2024-01-0{day + 1}T00:00:00Z"))
    popped = drain(queue)
    want = sorted(range(len(items)), key=lambda i: (-items[i][0], items[i][1], i))
    assert popped == [f"default/p{i}" for i in want]


def test_adding_a_queued_pod_again_updates_it_without_a_second_entry(
        queue: SchedulingQueue) -> None:
    queue.add(pod("a"))
    newer = pod("a")
    newer["spec"]["tolerations"] = [{"operator": "Exists"}]
    assert queue.add(newer) is None
    entry = queue.pop()
    assert entry is not None and entry.pod is newer
    assert queue.pop() is None


def test_unschedulable_pods_wait_for_a_move_then_their_back_off(
        queue: SchedulingQueue, clock: FakeClock) -> None:
    queue.add(pod("a"))
    assert queue.pop() is not None
    assert queue.unschedulable("default/a") == 60.0  # the flush deadline
    assert queue.state("default/a") is PodState.UNSCHEDULABLE
    clock.advance(2)
    assert queue.wake("default/a") == 58.0  # no event: still waiting
    assert queue.move_all() == [("default/a", 0.0)]  # back-off (1s) is over
    assert queue.state("default/a") is PodState.ACTIVE
    assert queue.pop() is not None
    assert queue.unschedulable("default/a") == 60.0  # second failure: back-off 2s
    clock.advance(0.5)
    assert queue.move_all() == [("default/a", 1.5)]
    assert queue.state("default/a") is PodState.BACKOFF
    assert queue.pop() is None
    clock.advance(1.0)
    assert queue.wake("default/a") is None  # not yet due
    clock.advance(0.5)
    assert queue.wake("default/a") == 0.0
    assert queue.pop() is not None


def test_back_off_doubles_up_to_the_maximum(queue: SchedulingQueue, clock: FakeClock) -> None:
    queue.add(pod("a"))
    delays = []
    for _ in range(6):
        assert queue.pop() is not None
        delay = queue.backoff("default/a")
        assert delay is not None
        delays.append(delay)
        clock.advance(delay)
        assert queue.wake("default/a") == 0.0
    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_unschedulable_pods_are_flushed_after_the_maximum_wait(
        queue: SchedulingQueue, clock: FakeClock) -> None:
    queue.add(pod("a"))
    queue.pop()
    queue.unschedulable("default/a")
    clock.advance(60)
    assert queue.wake("default/a") == 0.0
    assert queue.state("default/a") is PodState.ACTIVE


def test_a_move_during_an_attempt_is_not_lost(queue: SchedulingQueue, clock: FakeClock) -> None:
    queue.add(pod("a"))
    queue.add(pod("b"))
    queue.pop()
    queue.pop()
    assert queue.move_all() == []  # both in flight
    assert queue.unschedulable("default/a") == 1.0  # goes to back-off, not to wait for events
    assert queue.state("default/a") is PodState.BACKOFF
    queue.add(pod("b"))  # the pod itself changed while in flight
    assert queue.unschedulable("default/b") == 1.0


def test_an_update_releases_an_unschedulable_pod(queue: SchedulingQueue,
                                                 clock: FakeClock) -> None:
    queue.add(pod("a"))
    queue.pop()
    queue.unschedulable("default/a")
    clock.advance(5)
    assert queue.add(pod("a")) == 0.0
    assert queue.state("default/a") is PodState.ACTIVE


def test_done_and_delete_forget_pods(queue: SchedulingQueue) -> None:
    queue.add(pod("a"))
    queue.add(pod("b"))
    queue.delete("default/a")
    entry = queue.pop()
    assert entry is not None and entry.key == "default/b"
    queue.done("default/b")
    assert len(queue) == 0 and queue.pop() is None
    assert queue.unschedulable("default/b") is None and queue.wake("default/b") is None


def test_bad_settings_are_refused(clock: FakeClock) -> None:
    with pytest.raises(ValueError):
        SchedulingQueue(clock, initial_backoff_seconds=0)
    with pytest.raises(ValueError):
        SchedulingQueue(clock, initial_backoff_seconds=5, max_backoff_seconds=1)
    with pytest.raises(ValueError):
        SchedulingQueue(clock, max_unschedulable_seconds=0)


# -- the cache -------------------------------------------------------------------------------

def info(p: dict[str, Any]) -> PodInfo:
    return PodInfo.from_pod(freeze(p))


def test_assumed_pods_count_until_confirmed_or_forgotten() -> None:
    cache = Cache()
    cache.set_node(freeze(make_node("a")))
    pending = info(make_pod("p", cpu="1"))
    cache.assume(pending, "a")
    node = cache.get_node("a")
    assert node is not None and node.requested == {"cpu": 1000} and cache.is_assumed("default/p")
    cache.forget("default/p")
    assert node.requested == {} and not cache.is_assumed("default/p")
    cache.assume(pending, "a")
    cache.add_pod(info(make_pod("p", cpu="1", node_name="a")))  # the informer confirms it
    assert not cache.is_assumed("default/p") and node.requested == {"cpu": 1000}
    cache.forget("default/p")  # no longer an assumption: nothing happens
    assert node.requested == {"cpu": 1000} and cache.node_of("default/p") == "a"
    cache.remove_pod("default/p")
    assert node.requested == {} and node.pod_count == 0


def test_pods_on_unknown_nodes_wait_on_ghosts() -> None:
    cache = Cache()
    cache.add_pod(info(make_pod("p", cpu="1", node_name="later")))
    assert cache.node_infos() == [] and cache.get_node("later") is None
    cache.set_node(freeze(make_node("later")))
    node = cache.get_node("later")
    assert node is not None and node.requested == {"cpu": 1000}
    assert [n.name for n in cache.node_infos()] == ["later"]
    cache.remove_node("later")
    assert cache.node_infos() == []
    cache.set_node(freeze(make_node("later")))
    node = cache.get_node("later")
    assert node is not None and node.requested == {"cpu": 1000}  # still counted
    cache.remove_pod("default/p")
    cache.remove_node("later")
    cache.set_node(freeze(make_node("later")))
    node = cache.get_node("later")
    assert node is not None and node.requested == {}


def test_node_infos_are_sorted_by_name_and_nodes_update_in_place() -> None:
    cache = Cache()
    for name in ("c", "a", "b"):
        cache.set_node(freeze(make_node(name)))
    assert [n.name for n in cache.node_infos()] == ["a", "b", "c"]
    cache.add_pod(info(make_pod("p", cpu="1", node_name="b")))
    cache.set_node(freeze(make_node("b", cpu="2", labels={"x": "y"})))
    node = cache.get_node("b")
    assert node is not None and node.labels == {"x": "y"} and node.free("cpu") == 1000
