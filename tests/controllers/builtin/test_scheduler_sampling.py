"""How much of a big cluster one decision looks at, and the fast paths of the built-in plugins.

Covers ``percentageOfNodesToScore`` (adaptive and fixed), filtering that
starts where the previous pod stopped, ties with a rotated start, plugins
skipped per pod (``skip_filter`` / ``skip_score``), batch scoring
(``score_nodes``), ``PodInfo.fit_requests``, cached quantity parsing and the
queue's ``move_all`` after pods came and went.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from controllers.builtin.scheduler import (
    NodeInfo,
    PodInfo,
    Profile,
    Scheduler,
    SchedulingQueue,
    Status,
    builtin_registry,
    make_profile,
    schedule,
)
from controllers.builtin.scheduler.algorithm import (
    MIN_FEASIBLE_NODES_TO_FIND,
    num_feasible_nodes_to_find,
)
from controllers.builtin.scheduler.filters import (
    NodeAffinityFilter,
    NodeNameFilter,
    NodePortsFilter,
)
from controllers.builtin.scheduler.framework import SUCCESS
from controllers.builtin.scheduler.queue import PodState
from controllers.builtin.scheduler.resources import amount
from controllers.builtin.scheduler.scores import (
    BalancedAllocationScore,
    LeastAllocatedScore,
    NodeAffinityScore,
    SelectorSpreadScore,
    TaintTolerationScore,
)
from controllers.informers.store import freeze
from kvstore.clock import FakeClock
from tests.controllers.builtin.scheduler_objects import make_node, make_pod


def info(pod: dict[str, Any]) -> PodInfo:
    return PodInfo.from_pod(freeze(pod))


def cluster(count: int, **kwargs: Any) -> list[NodeInfo]:
    return [NodeInfo.build(freeze(make_node(f"n{i:05d}", **kwargs))) for i in range(count)]


class Recording:
    """A filter that passes every node except those named in ``reject``, noting each call."""

    name = "Recording"

    def __init__(self, reject: set[str] | None = None) -> None:
        self.seen: list[str] = []
        self.reject = reject or set()

    def filter(self, pod: PodInfo, node: NodeInfo) -> Status:
        self.seen.append(node.name)
        return Status.unschedulable("rejected") if node.name in self.reject else SUCCESS


class Flat:
    """Scores every node the same."""

    name = "Flat"

    def score(self, pod: PodInfo, node: NodeInfo) -> int:
        return 50


# -- how many nodes ---------------------------------------------------------------------
@pytest.mark.parametrize(("nodes", "percentage", "wanted"), [
    (0, 0, 0), (1, 0, 1), (99, 0, 99), (100, 0, 100), (150, 0, 100), (250, 0, 120),
    (1000, 0, 420), (5000, 0, 500), (6000, 0, 300), (100_000, 0, 5000),
    (1000, 10, 100), (1000, 5, 100), (1000, 30, 300), (1000, 100, 1000), (50, 10, 50),
])
def test_the_number_of_feasible_nodes_to_find_follows_kubernetes(
        nodes: int, percentage: int, wanted: int) -> None:
    assert num_feasible_nodes_to_find(nodes, percentage) == wanted


def test_filtering_stops_once_enough_nodes_fit_and_the_next_pod_starts_there() -> None:
    nodes = cluster(1000)
    recorder = Recording()
    profile = Profile(filters=(recorder,), scores=((Flat(), 1),))
    first = schedule(info(make_pod("a")), nodes, profile)
    assert (first.evaluated, first.feasible, first.next_start) == (420, 420, 420)
    assert recorder.seen == [n.name for n in nodes[:420]]
    assert len(first.totals) == 420
    recorder.seen.clear()
    second = schedule(info(make_pod("b")), nodes, profile, start=first.next_start)
    assert recorder.seen == [n.name for n in nodes[420:840]]
    recorder.seen.clear()
    # The third wraps around the end of the list.
    third = schedule(info(make_pod("c")), nodes, profile, start=second.next_start)
    assert recorder.seen == [n.name for n in nodes[840:]] + [n.name for n in nodes[:260]]
    assert third.next_start == 260


def test_nodes_that_do_not_fit_are_evaluated_but_do_not_count_towards_the_target() -> None:
    nodes = cluster(400)
    rejected = {n.name for n in nodes[::2]}
    recorder = Recording(rejected)
    # 400 nodes: 50 - 3 = 47%, 188 nodes wanted; every other node fails.
    result = schedule(info(make_pod("p")), nodes, Profile(filters=(recorder,),
                                                          scores=((Flat(), 1),)))
    assert result.feasible == 188 and result.evaluated == 376 and result.next_start == 376
    assert result.reasons == {"rejected": 188}
    assert set(result.totals).isdisjoint(rejected)


def test_when_nothing_fits_every_node_is_evaluated_and_counted_in_the_message() -> None:
    nodes = cluster(300, cpu="1")
    profile = make_profile(registry=builtin_registry())
    result = schedule(info(make_pod("big", cpu="2")), nodes, profile, start=123)
    assert result.node is None and result.evaluated == 300 and result.next_start == 123
    assert result.message == "0/300 nodes are available: 300 Insufficient cpu."


def test_a_fixed_percentage_and_the_scheduler_option() -> None:
    nodes = cluster(1000)
    recorder = Recording()
    everything = Profile(filters=(recorder,), scores=((Flat(), 1),),
                         percentage_of_nodes_to_score=100)
    assert schedule(info(make_pod("p")), nodes, everything).feasible == 1000
    tenth = Profile(filters=(recorder,), percentage_of_nodes_to_score=10)
    assert schedule(info(make_pod("p")), nodes, tenth).feasible == MIN_FEASIBLE_NODES_TO_FIND
    for bad in (-1, 101):
        with pytest.raises(ValueError, match="percentage_of_nodes_to_score"):
            Profile(percentage_of_nodes_to_score=bad)
        with pytest.raises(ValueError):
            Scheduler(registry=builtin_registry(), percentage_of_nodes_to_score=bad)
    assert Scheduler(registry=builtin_registry(), percentage_of_nodes_to_score=30
                     ).profile.percentage_of_nodes_to_score == 30
    with pytest.raises(ValueError, match="parallel_binds"):
        Scheduler(registry=builtin_registry(), parallel_binds=0)


def test_ties_go_to_the_first_node_in_the_order_given_wherever_filtering_started() -> None:
    nodes = cluster(150)
    profile = Profile(filters=(Recording(),), scores=((Flat(), 1),),
                      percentage_of_nodes_to_score=100)
    result = schedule(info(make_pod("p")), nodes, profile, start=120)
    assert result.node == "n00000" and result.next_start == 120
    seeded = [schedule(info(make_pod("p")), nodes, profile, random.Random(7), start=s).node
              for s in (0, 120)]
    assert seeded[0] == seeded[1]  # the rng picks among the winners in the order given


def test_successive_pods_spread_over_a_big_cluster_through_the_built_in_profile() -> None:
    nodes = cluster(500)
    by_name = {n.name: n for n in nodes}
    profile = make_profile(registry=builtin_registry())
    start = 0
    for i in range(60):
        pod = info(make_pod(f"p{i}", cpu="100m", memory="128Mi", owner_uid="rs-1"))
        result = schedule(pod, nodes, profile, start=start)
        assert result.node is not None
        start = result.next_start
        by_name[result.node].add_pod(pod)
    assert max(n.pod_count for n in nodes) == 1  # SelectorSpread and LeastAllocated agree


# -- plugins skipped for a pod ----------------------------------------------------------
class Skipping:
    name = "Skipping"

    def __init__(self, skip: bool) -> None:
        self.skip = skip
        self.calls = 0

    def skip_filter(self, pod: PodInfo) -> bool:
        return self.skip

    def filter(self, pod: PodInfo, node: NodeInfo) -> Status:
        self.calls += 1
        return Status.unschedulable("no")

    def skip_score(self, pod: PodInfo) -> bool:
        return self.skip

    def score(self, pod: PodInfo, node: NodeInfo) -> int:
        self.calls += 1
        return 100 if node.name == "n00001" else 0


def test_a_plugin_that_skips_a_pod_is_not_called_for_it() -> None:
    nodes = cluster(3)
    skipped = Skipping(True)
    result = schedule(info(make_pod("p")), nodes, Profile((skipped,), ((skipped, 1),)))
    assert skipped.calls == 0 and result.node == "n00000" and result.totals["n00001"] == 0
    applied = Skipping(False)
    assert schedule(info(make_pod("p")), nodes, Profile((applied,))).message == \
        "0/3 nodes are available: 3 no."
    assert applied.calls == 3
    scored = Skipping(False)
    assert schedule(info(make_pod("p")), nodes, Profile((), ((scored, 1),))).node == "n00001"


def test_the_built_in_plugins_skip_only_pods_they_cannot_affect() -> None:
    plain = info(make_pod("plain"))
    assert NodeNameFilter().skip_filter(plain)
    assert not NodeNameFilter().skip_filter(info(make_pod("named", node_name="n1")))
    assert NodePortsFilter().skip_filter(plain)
    assert not NodePortsFilter().skip_filter(info(make_pod("ports", host_ports=[80])))
    assert NodeAffinityFilter().skip_filter(plain)
    assert not NodeAffinityFilter().skip_filter(
        info(make_pod("selector", node_selector={"disk": "ssd"})))
    required = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}]}}
    assert not NodeAffinityFilter().skip_filter(info(make_pod("req", affinity=required)))
    preferred = {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 5, "preference": {
        "matchExpressions": [{"key": "disk", "operator": "Exists"}]}}]}
    assert NodeAffinityScore().skip_score(plain)
    assert not NodeAffinityScore().skip_score(info(make_pod("pref", affinity=preferred)))
    assert SelectorSpreadScore().skip_score(plain)
    assert not SelectorSpreadScore().skip_score(info(make_pod("owned", owner_uid="u")))


# -- batch scoring ----------------------------------------------------------------------
def _random_node(rng: random.Random, i: int) -> NodeInfo:
    taints = [{"key": "k", "value": "v", "effect": "PreferNoSchedule"}] if rng.random() < 0.3 \
        else None
    node = NodeInfo.build(freeze(make_node(
        f"n{i}", cpu=rng.choice([None, "0", "1", "4", "32"]),
        memory=rng.choice([None, "0", "1Gi", "8Gi"]), taints=taints)))
    for j in range(rng.randrange(4)):
        node.add_pod(info(make_pod(f"p{i}-{j}", cpu=rng.choice([None, "100m", "3"]),
                                   memory=rng.choice([None, "128Mi", "6Gi"]),
                                   owner_uid=rng.choice(["a", "b"]))))
    return node


def test_score_nodes_gives_the_same_scores_as_score_one_node_at_a_time() -> None:
    rng = random.Random(11)
    plugins: list[Any] = [LeastAllocatedScore(), BalancedAllocationScore(),
                          SelectorSpreadScore(), TaintTolerationScore()]
    for round_ in range(30):
        nodes = [_random_node(rng, i) for i in range(rng.randrange(1, 8))]
        pod = info(make_pod(f"x{round_}", cpu=rng.choice([None, "250m", "2"]),
                            memory=rng.choice([None, "64Mi", "2Gi"]),
                            owner_uid=rng.choice([None, "a"])))
        for plugin in plugins:
            assert plugin.score_nodes(pod, nodes) == [plugin.score(pod, n) for n in nodes]
    # The rules themselves, on one node: half of cpu and a quarter of memory used.
    node = NodeInfo.build(freeze(make_node("n", cpu="4", memory="8Gi")))
    node.add_pod(info(make_pod("used", cpu="1900m", memory="1848Mi")))
    pod = info(make_pod("p", cpu="100m", memory="200Mi"))
    assert LeastAllocatedScore().score_nodes(pod, [node]) == [(50 + 75) // 2]
    assert BalancedAllocationScore().score_nodes(pod, [node]) == [87]


class BatchOnly:
    name = "BatchOnly"

    def score(self, pod: PodInfo, node: NodeInfo) -> int:
        raise AssertionError("score_nodes should have been used")

    def score_nodes(self, pod: PodInfo, nodes: Any) -> list[int]:
        return [10 * i for i in range(len(nodes))]


def test_the_decision_uses_score_nodes_when_a_plugin_has_it() -> None:
    result = schedule(info(make_pod("p")), cluster(3), Profile((), ((BatchOnly(), 2),)))
    assert result.node == "n00002" and result.totals == {"n00000": 0, "n00001": 20,
                                                         "n00002": 40}


# -- parsed once ------------------------------------------------------------------------
def test_fit_requests_keep_positive_non_pod_requests_sorted() -> None:
    pod = PodInfo(key="ns/p", pod={}, requests={"pods": 1, "memory": 5, "cpu": 0, "a/b": 2})
    assert pod.fit_requests == (("a/b", 2), ("memory", 5))
    assert info(make_pod("p", cpu="250m", memory="1Ki")).fit_requests == (
        ("cpu", 250), ("memory", 1024))


def test_quantity_strings_are_remembered_but_bad_ones_still_fail_every_time() -> None:
    assert amount("cpu", "1500m") == 1500 == amount("cpu", "1500m")
    assert amount("memory", "1500m") == 2  # whole units, rounded up
    assert amount("memory", 3) == 3 and amount("cpu", 0.25) == 250
    for _ in range(2):
        with pytest.raises(ValueError):
            amount("cpu", "lots")


# -- the queue ---------------------------------------------------------------------------
def test_move_all_releases_only_unschedulable_pods_even_after_keys_come_back() -> None:
    queue = SchedulingQueue(FakeClock(100.0))
    for name in ("a", "b", "c", "d"):
        queue.add(freeze(make_pod(name)))
    popped = [queue.pop() for _ in range(3)]
    assert [e.key for e in popped if e is not None] == ["default/a", "default/b", "default/c"]
    queue.unschedulable("default/a")
    queue.done("default/b")  # bound
    queue.add(freeze(make_pod("b")))  # a new pod with the same name: active, not released
    # c is in flight: flagged, not released.
    assert queue.move_all() == [("default/a", 1.0)]
    assert queue.state("default/a") is PodState.BACKOFF
    in_flight = queue.get("default/c")
    assert in_flight is not None and in_flight.moved_in_flight
    assert queue.state("default/b") is PodState.ACTIVE
    # Found unschedulable after a move while in flight: it backs off instead of waiting.
    assert queue.unschedulable("default/c") == 1.0
    assert queue.state("default/c") is PodState.BACKOFF
    assert queue.move_all() == []
    # A pod popped again after waiting can be found unschedulable and released again.
    queue.clock.advance(10)  # type: ignore[attr-defined]
    queue.wake("default/a")
    entry = queue.pop()
    while entry is not None and entry.key != "default/a":
        entry = queue.pop()
    assert entry is not None
    queue.unschedulable("default/a")
    assert [k for k, _ in queue.move_all()] == ["default/a"]
