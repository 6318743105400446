"""Each built-in score plugin, with Kubernetes' arithmetic, as pure functions."""

from __future__ import annotations

from typing import Any

import pytest

from controllers.builtin.scheduler.framework import NodeInfo, PodInfo
from controllers.builtin.scheduler.plugins import NodeAffinity, TaintToleration
from controllers.builtin.scheduler.scores import (
    LABEL_ZONE,
    BalancedAllocationScore,
    LeastAllocatedScore,
    SelectorSpreadScore,
    default_normalize,
)
from controllers.informers.store import freeze
from tests.controllers.builtin.scheduler_objects import make_node, make_pod


def info(pod: dict[str, Any]) -> PodInfo:
    return PodInfo.from_pod(freeze(pod))


def node_info(node: dict[str, Any], *pods: dict[str, Any]) -> NodeInfo:
    return NodeInfo.build(freeze(node), [info(p) for p in pods])


def scores(plugin: Any, pod: dict[str, Any], nodes: list[NodeInfo]) -> list[int]:
    p = info(pod)
    raw = [plugin.score(p, n) for n in nodes]
    if hasattr(plugin, "normalize_scores"):
        raw = plugin.normalize_scores(p, nodes, raw)
    return list(raw)


def test_least_allocated_prefers_the_emptier_node() -> None:
    plugin = LeastAllocatedScore()
    pod = make_pod("p", cpu="1", memory="1Gi")
    empty = node_info(make_node("a", cpu="4", memory="4Gi"))
    busy = node_info(make_node("b", cpu="4", memory="4Gi"), make_pod("x", cpu="2", memory="2Gi"))
    # cpu: (4000-1000)*100//4000 = 75, memory 75 -> 75; busy: (4000-3000)/4000 -> 25.
    assert scores(plugin, pod, [empty, busy]) == [75, 25]


def test_least_allocated_counts_pods_without_requests_at_the_non_zero_defaults() -> None:
    plugin = LeastAllocatedScore()
    node = node_info(make_node("a", cpu="1", memory="1000Mi"))
    # 100m of 1000m -> 90; 200Mi of 1000Mi -> 80; mean 85.
    assert scores(plugin, make_pod("p"), [node]) == [85]


def test_least_allocated_gives_zero_when_overcommitted_or_nothing_allocatable() -> None:
    plugin = LeastAllocatedScore()
    over = node_info(make_node("a", cpu="1", memory="1Gi"), make_pod("x", cpu="2", memory="512Mi"))
    nothing = node_info(make_node("b", cpu=None, memory=None))
    # cpu: 2100m of 1000m -> 0; memory: (1024Mi - 768Mi) * 100 // 1024Mi = 25; mean 12.
    assert scores(plugin, make_pod("p", cpu="100m", memory="256Mi"), [over, nothing]) == [12, 0]


@pytest.mark.parametrize("cpu, memory, expected", [
    ("2", "2Gi", 100),   # 50% and 50%: perfectly balanced
    ("4", "0", 50),      # 100% and 0% (an explicit 0 gets no default): std 0.5
    ("1", "3Gi", 75),    # 25% and 75%: std 0.25
])
def test_balanced_allocation_is_one_minus_the_std_of_the_fractions(
        cpu: str, memory: str, expected: int) -> None:
    node = node_info(make_node("a", cpu="4", memory="4Gi"))
    assert scores(BalancedAllocationScore(), make_pod("p", cpu=cpu, memory=memory),
                  [node]) == [expected]


def test_balanced_allocation_caps_fractions_at_one() -> None:
    plugin = BalancedAllocationScore()
    node = node_info(make_node("a", cpu="1", memory="4Gi"))
    # cpu 8000/1000 capped at 1, memory 2Gi/4Gi = 0.5 -> std 0.25 -> 75.
    assert scores(plugin, make_pod("p", cpu="8", memory="2Gi"), [node]) == [75]


def test_selector_spread_prefers_nodes_with_fewer_pods_of_the_same_owner() -> None:
    plugin = SelectorSpreadScore()
    a = node_info(make_node("a"), make_pod("x1", owner_uid="rs1"), make_pod("x2", owner_uid="rs1"))
    b = node_info(make_node("b"), make_pod("x3", owner_uid="rs1"),
                  make_pod("y1", owner_uid="other"))
    c = node_info(make_node("c"), make_pod("y2", owner_uid="other"))
    pod = make_pod("new", owner_uid="rs1")
    assert scores(plugin, pod, [a, b, c]) == [0, 50, 100]
    assert scores(plugin, make_pod("lonely"), [a, b, c]) == [0, 0, 0]  # no owner: no opinion


def test_selector_spread_ignores_pods_being_deleted() -> None:
    dying = make_pod("x1", owner_uid="rs1")
    dying["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    a = node_info(make_node("a"), dying)
    b = node_info(make_node("b"), make_pod("x2", owner_uid="rs1"))
    assert scores(SelectorSpreadScore(), make_pod("new", owner_uid="rs1"), [a, b]) == [100, 0]


def test_selector_spread_weighs_zones_two_thirds() -> None:
    plugin = SelectorSpreadScore()
    a1 = node_info(make_node("a1", labels={LABEL_ZONE: "a"}), make_pod("x1", owner_uid="rs"))
    a2 = node_info(make_node("a2", labels={LABEL_ZONE: "a"}))
    b1 = node_info(make_node("b1", labels={LABEL_ZONE: "b"}))
    got = scores(plugin, make_pod("new", owner_uid="rs"), [a1, a2, b1])
    # a1: node 0, zone 0 -> 0. a2: node 100, zone 0 -> 33. b1: node 100, zone 100 -> 100.
    assert got == [0, 33, 100]


def test_taint_toleration_score_prefers_fewer_untolerated_prefer_no_schedule_taints() -> None:
    plugin = TaintToleration()
    soft = {"key": "soft", "value": "1", "effect": "PreferNoSchedule"}
    softer = {"key": "softer", "value": "1", "effect": "PreferNoSchedule"}
    hard = {"key": "hard", "value": "1", "effect": "NoSchedule"}
    clean = node_info(make_node("a", taints=[hard]))  # NoSchedule is the filter's business
    one = node_info(make_node("b", taints=[soft]))
    two = node_info(make_node("c", taints=[soft, softer]))
    assert scores(plugin, make_pod("p"), [clean, one, two]) == [100, 50, 0]
    tolerant = make_pod("p", tolerations=[{"key": "soft", "operator": "Exists",
                                           "effect": "PreferNoSchedule"}])
    assert scores(plugin, tolerant, [clean, one, two]) == [100, 100, 0]
    wrong_effect = make_pod("p", tolerations=[{"key": "soft", "operator": "Exists",
                                               "effect": "NoSchedule"}])
    assert scores(plugin, wrong_effect, [clean, one, two]) == [100, 50, 0]
    assert scores(plugin, make_pod("p"), [clean]) == [100]


def test_node_affinity_score_sums_matching_preferences() -> None:
    plugin = NodeAffinity()
    prefs = {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 10, "preference": {"matchExpressions": [
            {"key": "disk", "operator": "In", "values": ["ssd"]}]}},
        {"weight": 30, "preference": {"matchExpressions": [
            {"key": "zone", "operator": "In", "values": ["a"]}]}},
    ]}
    nodes = [node_info(make_node("n1", labels={"disk": "ssd"})),
             node_info(make_node("n2", labels={"disk": "ssd", "zone": "a"})),
             node_info(make_node("n3"))]
    pod = make_pod("p", affinity=prefs)
    assert [plugin.score(info(pod), n) for n in nodes] == [10, 40, 0]
    assert scores(plugin, pod, nodes) == [25, 100, 0]
    assert scores(plugin, make_pod("q"), nodes) == [0, 0, 0]


def test_default_normalize() -> None:
    assert default_normalize([1, 2, 4]) == [25, 50, 100]
    assert default_normalize([1, 2, 4], reverse=True) == [75, 50, 0]
    assert default_normalize([0, 0]) == [0, 0]
    assert default_normalize([0, 0], reverse=True) == [100, 100]
    assert default_normalize([]) == []
