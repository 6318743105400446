"""The arithmetic of rollouts: fenceposts, growth, shrinking, proportional scaling."""

from __future__ import annotations

from typing import Any

import pytest

from controllers.api.objects import format_timestamp
from controllers.builtin.deployment.annotations import (
    DESIRED_REPLICAS_ANNOTATION,
    MAX_REPLICAS_ANNOTATION,
    REVISION_ANNOTATION,
)
from controllers.builtin.deployment.sizing import (
    InvalidIntOrPercent,
    find_active_or_latest,
    is_saturated,
    max_scaled_down,
    max_surge,
    max_unavailable,
    new_rs_new_replicas,
    plan_cleanup_unhealthy,
    plan_proportional_scale,
    plan_scale_down_old,
    resolve_fenceposts,
    scaled_value,
    sorted_by_revision,
    sorted_by_size_newer,
    sorted_by_size_older,
)

T0 = 1_700_000_000.0
Obj = dict[str, Any]


def deployment(replicas: int, surge: int | str = "25%", unavailable: int | str = "25%",
               strategy: str = "RollingUpdate", status_replicas: int | None = None) -> Obj:
    spec: Obj = {"replicas": replicas, "strategy": {"type": strategy}}
    if strategy == "RollingUpdate":
        spec["strategy"]["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    d: Obj = {"metadata": {"name": "web"}, "spec": spec}
    if status_replicas is not None:
        d["status"] = {"replicas": status_replicas}
    return d


def rs(name: str, replicas: int, available: int | None = None, age: int = 0,
       max_replicas: int | None = None, desired: int | None = None,
       revision: int | None = None) -> Obj:
    notes: dict[str, str] = {}
    if max_replicas is not None:
        notes[MAX_REPLICAS_ANNOTATION] = str(max_replicas)
    if desired is not None:
        notes[DESIRED_REPLICAS_ANNOTATION] = str(desired)
    if revision is not None:
        notes[REVISION_ANNOTATION] = str(revision)
    return {"metadata": {"name": name, "creationTimestamp": format_timestamp(T0 + age),
                         "annotations": notes},
            "spec": {"replicas": replicas},
            "status": {"replicas": replicas,
                       "availableReplicas": replicas if available is None else available}}


@pytest.mark.parametrize("value,total,up,want", [
    (3, 10, True, 3), ("25%", 10, True, 3), ("25%", 10, False, 2), ("10%", 5, True, 1),
    ("10%", 5, False, 0), ("100%", 7, False, 7), ("0%", 9, True, 0), (None, 4, True, 0),
    ("33%", 3, True, 1), ("33%", 3, False, 0), ("50%", 3, False, 1), ("50%", 3, True, 2),
])
def test_scaled_value_rounds_surge_up_and_unavailable_down(value: Any, total: int, up: bool,
                                                           want: int) -> None:
    assert scaled_value(value, total, round_up=up) == want


@pytest.mark.parametrize("bad", ["abc", "5", "-5%", "5.5%", True, 2.5])
def test_scaled_value_refuses_what_is_neither_int_nor_percent(bad: Any) -> None:
    with pytest.raises(InvalidIntOrPercent):
        scaled_value(bad, 10, round_up=True)


@pytest.mark.parametrize("surge,unavailable,desired,want", [
    ("25%", "25%", 10, (3, 2)),
    ("25%", "25%", 4, (1, 1)),
    ("25%", "25%", 1, (1, 0)),
    (0, 0, 10, (0, 1)),            # both zero: unavailable becomes 1
    ("0%", "20%", 4, (0, 1)),      # unavailable rounds down to 0, then becomes 1
    ("10%", "10%", 5, (1, 0)),     # surge rounds up, so no fix-up
    (2, 3, 10, (2, 3)),
    ("100%", "100%", 3, (3, 3)),
    (None, None, 5, (0, 1)),
])
def test_resolve_fenceposts(surge: Any, unavailable: Any, desired: int,
                            want: tuple[int, int]) -> None:
    assert resolve_fenceposts(surge, unavailable, desired) == want


def test_max_surge_and_unavailable_by_strategy() -> None:
    assert (max_surge(deployment(10)), max_unavailable(deployment(10))) == (3, 2)
    # Unavailability never exceeds replicas; none with no replicas or with Recreate.
    assert max_unavailable(deployment(3, 0, 5)) == 3
    assert max_unavailable(deployment(0, 1, 1)) == 0
    recreate = deployment(10, strategy="Recreate")
    assert (max_surge(recreate), max_unavailable(recreate)) == (0, 0)
    # Defaults (25%) when the strategy does not say.
    assert max_surge({"spec": {"replicas": 8}}) == 2


@pytest.mark.parametrize("d,old,new,want", [
    (deployment(10, 3, 2), [10], 0, 3),       # first step: the whole surge
    (deployment(10, 3, 2), [8], 3, 5),        # old shrank by 2: new grows by 2
    (deployment(10, 3, 2), [10], 3, 3),       # at replicas + surge: no growth
    (deployment(10, 0, 1), [10], 0, 0),       # no surge: wait for the old to shrink
    (deployment(10, 0, 1), [9], 0, 1),
    (deployment(3, 1, 0), [0], 2, 3),         # never past replicas
    (deployment(5, "100%", 0), [5], 0, 5),    # a 100% surge brings up everything at once
    (deployment(4, strategy="Recreate"), [4], 0, 4),
])
def test_new_rs_new_replicas(d: Obj, old: list[int], new: int, want: int) -> None:
    olds = [rs(f"old{i}", n) for i, n in enumerate(old)]
    new_rs = rs("new", new, age=10)
    assert new_rs_new_replicas(d, [*olds, new_rs], new_rs) == want


def test_max_scaled_down_counts_unavailable_new_pods_against_the_budget() -> None:
    d = deployment(10, 3, 2)
    old, new = rs("old", 10), rs("new", 3, available=0, age=1)
    assert max_scaled_down(d, [old, new], new) == 13 - 8 - 3
    new_ready = rs("new", 3, available=3, age=1)
    assert max_scaled_down(d, [old, new_ready], new_ready) == 5


def test_cleanup_unhealthy_shrinks_the_oldest_unavailable_first() -> None:
    a, b, c = rs("a", 5, available=3), rs("b", 2, available=0, age=1), rs("c", 4, age=2)
    plan = plan_cleanup_unhealthy([c, b, a], 3)
    assert [(x["metadata"]["name"], n) for x, n in plan] == [("a", 3), ("b", 1)]
    assert plan_cleanup_unhealthy([c], 3) == []          # everything available
    assert plan_cleanup_unhealthy([a, b], 0) == []       # no budget


def test_scale_down_old_keeps_the_minimum_available() -> None:
    d = deployment(10, 3, 2)                             # at least 8 available
    a, b = rs("a", 6, age=0), rs("b", 4, age=1)
    new = rs("new", 3, available=0, age=2)
    plan = plan_scale_down_old(d, [a, b, new], [b, a])
    assert [(x["metadata"]["name"], n) for x, n in plan] == [("a", 4)]
    # When the new pods are available, the oldest go first, the rest from the next.
    new_ready = rs("new", 3, available=3, age=2)
    plan = plan_scale_down_old(d, [a, b, new_ready], [a, b])
    assert [(x["metadata"]["name"], n) for x, n in plan] == [("a", 1)]
    full = plan_scale_down_old(d, [a, b, rs("new", 10, age=2)], [a, b])
    assert [(x["metadata"]["name"], n) for x, n in full] == [("a", 0), ("b", 0)]
    # At the minimum: nothing.
    assert plan_scale_down_old(d, [rs("a", 8), new], [rs("a", 8)]) == []


def test_budgets_never_count_more_available_pods_than_a_replicaset_asks_for() -> None:
    # "a" was just shrunk from 4 to 3; its status still counts 4 available pods.
    d = deployment(6, 2, 1)                              # at least 5 available
    a, b = rs("a", 3, available=4), rs("b", 1, available=2, age=1)
    new = rs("new", 4, available=0, age=2)
    assert plan_scale_down_old(d, [a, b, new], [a, b]) == []   # 3 + 1 + 0 available: none spare
    assert max_scaled_down(d, [a, b, rs("new", 1, available=3, age=2)],
                           rs("new", 1, available=3, age=2)) == 5 - 5 - 0
    # The stale extra pod is not an unhealthy one either.
    assert plan_cleanup_unhealthy([a], 3) == []


def sizes(plan: list[tuple[Obj, int]]) -> dict[str, int]:
    return {x["metadata"]["name"]: n for x, n in plan}


def test_proportional_scale_up_mid_rollout() -> None:
    # Kubernetes' documented example: 10 replicas, surge 3, unavailable 2, stuck at
    # old 8 + new 5; scaled to 15: the 5 new places go 3 to the old, 2 to the new.
    d = deployment(15, 3, 2)
    old, new = rs("old", 8, max_replicas=13), rs("new", 5, available=0, age=1, max_replicas=13)
    plan, operation = plan_proportional_scale(d, [old, new])
    assert operation == "up" and sizes(plan) == {"old": 11, "new": 7}


def test_proportional_scale_down_mid_rollout() -> None:
    d = deployment(10, 3, 2)
    old, new = rs("old", 11, max_replicas=18), rs("new", 7, age=1, max_replicas=18)
    plan, operation = plan_proportional_scale(d, [old, new])
    assert operation == "down" and sizes(plan) == {"old": 8, "new": 5}


def test_proportional_scale_to_zero_empties_everything() -> None:
    d = deployment(0, 3, 2)
    plan, _ = plan_proportional_scale(d, [rs("old", 11, max_replicas=18),
                                          rs("new", 7, age=1, max_replicas=18)])
    assert sizes(plan) == {"old": 0, "new": 0}


def test_proportional_scale_leftover_goes_to_the_first_in_order() -> None:
    # Three equal ReplicaSets sized for 3, scaled to 4 (no surge): each share rounds to
    # zero, the leftover goes to the largest, and among equals the newest.
    d = deployment(4, 0, 1)
    sets = [rs("a", 1, max_replicas=3), rs("b", 1, age=1, max_replicas=3),
            rs("c", 1, age=2, max_replicas=3)]
    plan, _ = plan_proportional_scale(d, sets)
    assert sizes(plan) == {"a": 1, "b": 1, "c": 2}
    # Scaling down, among equals the oldest loses first.
    d = deployment(2, 0, 1)
    plan, _ = plan_proportional_scale(d, sets)
    assert sizes(plan) == {"a": 0, "b": 1, "c": 1}


def test_proportional_scale_without_annotation_uses_status_replicas() -> None:
    d = deployment(20, 0, 1, status_replicas=10)
    plan, _ = plan_proportional_scale(d, [rs("old", 6), rs("new", 4, age=1)])
    assert sizes(plan) == {"old": 12, "new": 8}


def test_proportional_scale_ignores_inactive_sets() -> None:
    d = deployment(6, 0, 1)
    plan, operation = plan_proportional_scale(d, [rs("gone", 0, max_replicas=3),
                                                  rs("a", 2, max_replicas=3),
                                                  rs("b", 1, age=1, max_replicas=3)])
    assert operation == "up" and sizes(plan) == {"a": 4, "b": 2}


def test_orderings() -> None:
    a, b, c = rs("a", 2, age=0, revision=3), rs("b", 5, age=1, revision=1), \
        rs("c", 2, age=2, revision=2)

    def names(xs: list[Obj]) -> list[str]:
        return [x["metadata"]["name"] for x in xs]
    assert names(sorted_by_size_newer([a, b, c])) == ["b", "c", "a"]
    assert names(sorted_by_size_older([a, b, c])) == ["b", "a", "c"]
    assert names(sorted_by_revision([a, b, c])) == ["b", "c", "a"]


def test_find_active_or_latest() -> None:
    new0, new3 = rs("new", 0, age=5), rs("new", 3, age=5)
    older, newer = rs("older", 0, age=1), rs("newer", 0, age=2)
    assert find_active_or_latest(None, []) is None
    assert find_active_or_latest(new0, [older, newer]) is new0
    assert find_active_or_latest(None, [older, newer]) is newer
    assert find_active_or_latest(new3, [older]) is new3
    active_old = rs("old", 2)
    assert find_active_or_latest(new0, [active_old]) is active_old
    assert find_active_or_latest(new3, [active_old]) is None


def test_is_saturated() -> None:
    d = deployment(3)
    assert is_saturated(d, rs("new", 3, desired=3))
    assert not is_saturated(d, rs("new", 3, available=2, desired=3))
    assert not is_saturated(d, rs("new", 3, desired=2))
    assert not is_saturated(d, rs("new", 3))             # no annotation
    assert not is_saturated(d, None)
