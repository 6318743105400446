"""The store-free decision (filter, score, select), its message, and plugin profiles."""

from __future__ import annotations

import random
from typing import Any

import pytest

from controllers.builtin.scheduler import (
    DEFAULT_FILTERS,
    DEFAULT_SCORES,
    NodeInfo,
    PluginRegistry,
    PodInfo,
    Profile,
    Status,
    builtin_registry,
    fit_error_message,
    make_profile,
    register_plugin,
    schedule,
)
from controllers.builtin.scheduler.algorithm import PluginScoreError
from controllers.builtin.scheduler.cache import Cache
from controllers.informers.store import freeze
from tests.controllers.builtin.scheduler_objects import make_node, make_pod


def info(pod: dict[str, Any]) -> PodInfo:
    return PodInfo.from_pod(freeze(pod))


def nodes(*objs: dict[str, Any]) -> list[NodeInfo]:
    return [NodeInfo.build(freeze(o)) for o in objs]


@pytest.fixture
def profile() -> Profile:
    return make_profile(registry=builtin_registry())


def test_the_message_counts_reasons_like_kubernetes(profile: Profile) -> None:
    unreachable = [{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}]
    cluster = nodes(make_node("a", cpu="1"),
                    make_node("b", taints=unreachable, ready="Unknown"),
                    make_node("c", taints=unreachable, ready="Unknown"))
    result = schedule(info(make_pod("p", cpu="2")), cluster, profile)
    assert result.node is None and result.feasible == 0
    assert result.message == ("0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had "
                              "untolerated taint {node.kubernetes.io/unreachable: }.")


def test_reasons_are_sorted_as_strings_and_no_nodes_has_its_own_message() -> None:
    assert fit_error_message(12, {"b": 10, "a": 2}) == "0/12 nodes are available: 10 b, 2 a."
    assert fit_error_message(0, {}) == "no nodes available to schedule pods"
    result = schedule(info(make_pod("p")), [], make_profile(registry=builtin_registry()))
    assert result.node is None and result.message == "no nodes available to schedule pods"


def test_the_first_failing_filter_decides_a_nodes_reason(profile: Profile) -> None:
    # Cordoned and too small: NodeUnschedulable runs first, so only its reason counts.
    cluster = nodes(make_node("a", cpu="1", unschedulable=True))
    result = schedule(info(make_pod("p", cpu="2")), cluster, profile)
    assert result.reasons == {"node(s) were unschedulable": 1}


def test_the_highest_total_wins_and_ties_go_to_the_first_node(profile: Profile) -> None:
    cluster = nodes(make_node("a"), make_node("b"), make_node("c"))
    assert schedule(info(make_pod("p")), cluster, profile).node == "a"
    cluster[0].add_pod(info(make_pod("x", cpu="2", memory="4Gi")))
    result = schedule(info(make_pod("p", cpu="1", memory="1Gi")), cluster, profile)
    assert result.node == "b"
    assert result.totals["b"] == result.totals["c"] > result.totals["a"]


def test_a_seeded_rng_breaks_ties_reproducibly(profile: Profile) -> None:
    cluster = nodes(*(make_node(f"n{i}") for i in range(8)))
    picks = [schedule(info(make_pod("p")), cluster, profile, random.Random(seed)).node
             for seed in range(20)]
    again = [schedule(info(make_pod("p")), cluster, profile, random.Random(seed)).node
             for seed in range(20)]
    assert picks == again and len(set(picks)) > 1


def test_one_feasible_node_is_chosen_without_scoring() -> None:
    class Exploding:
        name = "Exploding"

        def score(self, pod: PodInfo, node: NodeInfo) -> int:
            raise AssertionError("scored a lone node")

    base = make_profile(registry=builtin_registry())
    profile = Profile(base.filters, ((Exploding(), 1),))
    cluster = nodes(make_node("a", cpu="1"), make_node("b", cpu="8"))
    assert schedule(info(make_pod("p", cpu="2")), cluster, profile).node == "b"


def test_a_score_out_of_range_is_an_error() -> None:
    class Greedy:
        name = "Greedy"

        def score(self, pod: PodInfo, node: NodeInfo) -> int:
            return 1000

    profile = Profile((), ((Greedy(), 1),))
    with pytest.raises(PluginScoreError, match="Greedy"):
        schedule(info(make_pod("p")), nodes(make_node("a"), make_node("b")), profile)


def test_weights_multiply_scores() -> None:
    class Prefers:
        def __init__(self, name: str, favourite: str) -> None:
            self.name, self.favourite = name, favourite

        def score(self, pod: PodInfo, node: NodeInfo) -> int:
            return 100 if node.name == self.favourite else 0

    cluster = nodes(make_node("a"), make_node("b"))
    light = (Prefers("likes-a", "a"), 1)
    heavy = (Prefers("likes-b", "b"), 2)
    result = schedule(info(make_pod("p")), cluster, Profile((), (light, heavy)))
    assert result.node == "b" and result.totals == {"a": 100, "b": 200}
    off = (Prefers("likes-b", "b"), 0)
    assert schedule(info(make_pod("p")), cluster, Profile((), (light, off))).node == "a"


def test_spreading_through_the_cache_places_an_owners_pods_evenly(profile: Profile) -> None:
    cache = Cache()
    for name in ("a", "b", "c"):
        cache.set_node(freeze(make_node(name)))
    placed: list[str] = []
    for i in range(6):
        pod = info(make_pod(f"p{i}", owner_uid="rs"))
        node = schedule(pod, cache.node_infos(), profile).node
        assert node is not None
        cache.assume(pod, node)
        placed.append(node)
    assert sorted(placed) == ["a", "a", "b", "b", "c", "c"]


# -- profiles and the registry ---------------------------------------------------------

def test_the_default_profile_has_every_builtin_in_kubernetes_order(profile: Profile) -> None:
    assert [p.name for p in profile.filters] == list(DEFAULT_FILTERS)
    assert [p.name for p, _ in profile.scores] == list(DEFAULT_SCORES)
    assert {p.name: w for p, w in profile.scores} == {
        "NodeResourcesLeastAllocated": 1, "NodeResourcesBalancedAllocation": 1,
        "SelectorSpread": 2, "TaintToleration": 3, "NodeAffinity": 2}
    # A plugin that filters and scores is one instance.
    taint_filter: object = next(p for p in profile.filters if p.name == "TaintToleration")
    assert any(p is taint_filter for p, _ in profile.scores)


def test_profiles_enable_plugins_by_name_with_weights() -> None:
    profile = make_profile(["NodeResourcesFit"], ["SelectorSpread"], {"SelectorSpread": 7},
                           registry=builtin_registry())
    assert [p.name for p in profile.filters] == ["NodeResourcesFit"]
    assert [(p.name, w) for p, w in profile.scores] == [("SelectorSpread", 7)]
    with pytest.raises(KeyError):
        make_profile(["NoSuchPlugin"], registry=builtin_registry())
    with pytest.raises(TypeError, match="not a filter"):
        make_profile(["SelectorSpread"], registry=builtin_registry())
    with pytest.raises(TypeError, match="not a score"):
        make_profile(scores=["NodePorts"], registry=builtin_registry())
    with pytest.raises(ValueError, match="non-negative"):
        make_profile(scores=["SelectorSpread"], weights={"SelectorSpread": -1},
                     registry=builtin_registry())
    with pytest.raises(ValueError, match="not enabled"):
        make_profile(scores=["SelectorSpread"], weights={"NodeAffinity": 1},
                     registry=builtin_registry())
    with pytest.raises(ValueError, match="twice"):
        make_profile(["NodePorts", "NodePorts"], registry=builtin_registry())


def test_plugins_registered_in_code_join_the_default_profile() -> None:
    registry = builtin_registry()

    @register_plugin("OddNodesOnly", registry)
    class OddNodesOnly:
        name = "OddNodesOnly"
        weight = 5

        def filter(self, pod: PodInfo, node: NodeInfo) -> Status:
            if int(node.name[1:]) % 2:
                return Status()
            return Status.unschedulable("node(s) were even")

        def score(self, pod: PodInfo, node: NodeInfo) -> int:
            return int(node.name[1:])

    profile = make_profile(registry=registry)
    assert [p.name for p in profile.filters][-1] == "OddNodesOnly"
    assert [(p.name, w) for p, w in profile.scores][-1] == ("OddNodesOnly", 5)
    cluster = nodes(*(make_node(f"n{i}") for i in range(1, 6)))
    result = schedule(info(make_pod("p")), cluster, profile)
    assert result.node == "n5" and result.reasons == {"node(s) were even": 2}
    with pytest.raises(ValueError, match="already registered"):
        registry.register("OddNodesOnly", OddNodesOnly)


def test_a_factory_must_make_a_plugin() -> None:
    registry = PluginRegistry()
    registry.register("odd", lambda: object())
    with pytest.raises(TypeError, match="neither filters nor scores"):
        registry.create("odd")
    assert registry.filter_names() == [] and registry.score_names() == []
