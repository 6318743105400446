"""Rolling update decisions, status counting and the failed-pod back-off: pure unit tests."""

from __future__ import annotations

from typing import Any

import pytest

from controllers.api.objects import Obj, format_timestamp
from controllers.builtin.daemonset.backoff import Backoff
from controllers.builtin.daemonset.placement import (
    CONTROLLER_REVISION_HASH_LABEL,
    Placement,
)
from controllers.builtin.daemonset.status import calculate_status
from controllers.builtin.daemonset.update import (
    ON_DELETE,
    ROLLING_UPDATE,
    allows_surge,
    find_updated_pods_on_node,
    max_surge_and_unavailable,
    rolling_update_plan,
    scaled_value,
    update_strategy,
)
from controllers.informers.store import freeze
from kvstore.clock import FakeClock

T0 = 1_700_000_000.0
NOW = T0 + 100
RUN, STAY, NEVER = Placement(True, True), Placement(False, True), Placement(False, False)


def ds(*, surge: Any = None, unavailable: Any = None, strategy: str = ROLLING_UPDATE,
       min_ready: int = 0) -> Obj:
    update: Obj = {"type": strategy}
    rolling = {k: v for k, v in (("maxSurge", surge), ("maxUnavailable", unavailable))
               if v is not None}
    if rolling:
        update["rollingUpdate"] = rolling
    return {"metadata": {"name": "agent", "namespace": "default", "generation": 4},
            "spec": {"updateStrategy": update, "minReadySeconds": min_ready},
            "status": {"collisionCount": 1}}


def pod(name: str, hash_: str, *, ready: bool = True, since: float = T0,
        deleting: bool = False, created: float = T0) -> Obj:
    meta: Obj = {"name": name, "labels": {CONTROLLER_REVISION_HASH_LABEL: hash_},
                 "creationTimestamp": format_timestamp(created)}
    if deleting:
        meta["deletionTimestamp"] = format_timestamp(T0)
    status: Obj = {"phase": "Running"}
    if ready:
        status["conditions"] = [{"type": "Ready", "status": "True",
                                 "lastTransitionTime": format_timestamp(since)}]
    return {"metadata": meta, "spec": {"nodeName": name.split("-")[0]}, "status": status}


def plan(the_ds: Obj, layout: dict[str, tuple[Placement, list[Obj]]],
         now: float = NOW) -> tuple[list[str], list[str]]:
    placements = {n: p for n, (p, _) in layout.items()}
    node_pods = {n: [freeze(x) for x in pods] for n, (_, pods) in layout.items() if pods}
    got = rolling_update_plan(freeze(the_ds), placements, node_pods, "new", now)
    return [p["metadata"]["name"] for p in got.delete], list(got.create)


# -- parameters -----------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "total", "want"), [
    (None, 10, 7), (3, 10, 3), ("3", 10, 3), ("25%", 10, 3), ("10%", 10, 1),
    ("1%", 3, 1), ("0%", 10, 0), ("100%", 7, 7),
])
def test_scaled_value_rounds_percentages_up(value: Any, total: int, want: int) -> None:
    assert scaled_value(value, total, default=7) == want


def test_scaled_value_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        scaled_value("many", 3, default=1)
    with pytest.raises(ValueError):
        scaled_value(1.5, 3, default=1)


def test_limits_default_and_fall_back_to_one_unavailable() -> None:
    assert max_surge_and_unavailable(ds(), 5) == (0, 1)
    assert max_surge_and_unavailable(ds(unavailable="40%", surge=2), 5) == (2, 2)
    assert max_surge_and_unavailable(ds(unavailable=0, surge=0), 5) == (0, 1)
    assert max_surge_and_unavailable(ds(unavailable=0, surge=0), 0) == (0, 0)
    assert max_surge_and_unavailable(ds(strategy=ON_DELETE), 5) == (0, 0)
    assert update_strategy(ds(strategy=ON_DELETE)) == ON_DELETE
    assert update_strategy({"spec": {}}) == ROLLING_UPDATE
    assert allows_surge(ds(surge="10%")) and not allows_surge(ds(unavailable=2))
    assert not allows_surge(ds(strategy=ON_DELETE, surge=1))


def test_find_updated_pods_refuses_nodes_with_two_of_a_kind() -> None:
    new, old = pod("a-1", "new"), pod("a-2", "old")
    assert find_updated_pods_on_node([new, old, pod("a-3", "old", deleting=True)],
                                     "new") == (new, old, True)
    assert find_updated_pods_on_node([new, pod("a-4", "new")], "new") == (None, None, False)
    assert find_updated_pods_on_node([], "new") == (None, None, True)


# -- without surge ------------------------------------------------------------------------------
def test_one_old_pod_at_a_time_by_default() -> None:
    layout = {n: (RUN, [pod(f"{n}-old", "old")]) for n in ("a", "b", "c")}
    assert plan(ds(), layout) == (["a-old"], [])
    assert plan(ds(unavailable="50%"), layout) == (["a-old", "b-old"], [])


def test_unavailable_nodes_use_up_the_budget() -> None:
    for busy in ([pod("a-new", "new", ready=False)], [],
                 [pod("a-new", "new"), pod("a-old", "old")],
                 [pod("a-new", "new"), pod("a-new2", "new")]):
        layout = {"a": (RUN, busy), "b": (RUN, [pod("b-old", "old")]),
                  "c": (RUN, [pod("c-old", "old")])}
        assert plan(ds(), layout) == ([], []), busy
        assert plan(ds(unavailable=2), layout) == (["b-old"], [])


def test_new_pods_count_once_available_for_min_ready_seconds() -> None:
    layout = {"a": (RUN, [pod("a-new", "new", since=NOW - 5)]),
              "b": (RUN, [pod("b-old", "old")])}
    assert plan(ds(min_ready=10), layout) == ([], [])
    assert plan(ds(min_ready=10), layout, now=NOW + 5) == (["b-old"], [])


def test_unavailable_old_pods_are_replaced_without_waiting() -> None:
    layout = {"a": (RUN, [pod("a-old", "old", ready=False)]),
              "b": (RUN, [pod("b-old", "old")]), "c": (RUN, [pod("c-new", "new")])}
    assert plan(ds(), layout) == (["a-old", "b-old"], [])


def test_nothing_left_to_update() -> None:
    layout = {n: (RUN, [pod(f"{n}-new", "new")]) for n in ("a", "b")}
    assert plan(ds(), layout) == ([], [])
    assert plan(ds(surge=1), layout) == ([], [])


# -- with surge -----------------------------------------------------------------------------------
def test_surge_creates_next_to_old_pods_up_to_max_surge() -> None:
    layout = {n: (RUN, [pod(f"{n}-old", "old")]) for n in ("a", "b", "c")}
    assert plan(ds(surge=1, unavailable=0), layout) == ([], ["a"])
    assert plan(ds(surge="60%", unavailable=0), layout) == ([], ["a", "b"])


def test_surge_waits_for_the_new_pod_then_deletes_the_old_one() -> None:
    waiting = {"a": (RUN, [pod("a-old", "old"), pod("a-new", "new", ready=False)]),
               "b": (RUN, [pod("b-old", "old")])}
    assert plan(ds(surge=1, unavailable=0), waiting) == ([], [])
    done = {"a": (RUN, [pod("a-old", "old"), pod("a-new", "new")]),
            "b": (RUN, [pod("b-old", "old")])}
    assert plan(ds(surge=1, unavailable=0), done) == (["a-old"], ["b"])


def test_surge_replaces_unavailable_old_pods_at_once() -> None:
    layout = {"a": (RUN, [pod("a-old", "old")]), "b": (RUN, [pod("b-old", "old", ready=False)]),
              "c": (RUN, [pod("c-old", "old", ready=False)])}
    assert plan(ds(surge=1, unavailable=0), layout) == ([], ["b", "c", "a"])


def test_surge_removes_old_pods_from_unwanted_nodes_only_when_covered() -> None:
    unwanted_ready = {"a": (RUN, [pod("a-new", "new", ready=False)]),
                      "x": (STAY, [pod("x-old", "old")])}
    assert plan(ds(surge=1, unavailable=0), unwanted_ready) == ([], [])
    covered = {"a": (RUN, [pod("a-new", "new")]), "x": (STAY, [pod("x-old", "old")])}
    assert plan(ds(surge=1, unavailable=0), covered) == (["x-old"], [])
    unwanted_unready = {"a": (RUN, [pod("a-new", "new", ready=False)]),
                        "x": (STAY, [pod("x-old", "old", ready=False)])}
    assert plan(ds(surge=1, unavailable=0), unwanted_unready) == (["x-old"], [])


# -- status ----------------------------------------------------------------------------------------
def test_status_counts_nodes_as_kubernetes_does() -> None:
    placements = {"a": RUN, "b": RUN, "c": RUN, "d": RUN, "x": NEVER, "y": STAY}
    node_pods = {
        "a": [freeze(pod("a-new", "new", since=NOW - 50))],
        "b": [freeze(pod("b-old", "old", since=NOW - 1))],
        "c": [freeze(pod("c-new", "new", ready=False, created=T0 + 1)),
              freeze(pod("c-old", "old", created=T0 + 2))],
        "x": [freeze(pod("x-old", "old"))],
        "y": [freeze(pod("y-old", "old"))],
        "gone": [freeze(pod("gone-old", "old"))],
    }
    status = calculate_status(freeze(ds(min_ready=10)), placements, node_pods, "new", NOW,
                              observed=True)
    assert status == {"collisionCount": 1, "desiredNumberScheduled": 4,
                      "currentNumberScheduled": 3, "numberMisscheduled": 2,
                      "numberReady": 2, "numberAvailable": 1, "numberUnavailable": 3,
                      "updatedNumberScheduled": 2, "observedGeneration": 4}
    partial = calculate_status(freeze(ds()), placements, node_pods, "new", NOW, observed=False)
    assert "observedGeneration" not in partial and partial["numberAvailable"] == 2


# -- back-off -----------------------------------------------------------------------------------------
def test_backoff_doubles_caps_and_starts_over_when_idle() -> None:
    clock = FakeClock(T0)
    backoff = Backoff(clock, initial=1, maximum=4)
    assert not backoff.in_backoff_since_update("k") and backoff.get("k") == 0
    assert [backoff.next("k") for _ in range(4)] == [1, 2, 4, 4]
    assert backoff.in_backoff_since_update("k") and backoff.remaining("k") == 4
    clock.advance(3)
    assert backoff.in_backoff_since_update("k") and backoff.remaining("k") == 1
    clock.advance(1)
    assert not backoff.in_backoff_since_update("k") and backoff.remaining("k") == 0
    clock.advance(5)
    assert backoff.next("k") == 1
    clock.advance(9)
    backoff.gc()
    assert backoff.get("k") == 0
    with pytest.raises(ValueError):
        Backoff(clock, initial=2, maximum=1)
