"""The node lifecycle controller's pure decisions: health, conditions, taints, evictions."""

from __future__ import annotations

import math
from typing import Any

import pytest

from controllers.api.objects import format_timestamp
from controllers.builtin.nodehealth import (
    NO_EXECUTE,
    NO_SCHEDULE,
    TAINT_NOT_READY,
    TAINT_UNREACHABLE,
    TAINT_UNSCHEDULABLE,
    EvictionDecision,
    NodeHealth,
    TokenBucket,
    Verdict,
    ZoneState,
    adds_no_execute,
    condition_of,
    decide_eviction,
    effective_tolerations,
    eviction_start,
    grace_for,
    is_expired,
    is_fully_disrupted,
    mark_pod_not_ready,
    mark_unknown,
    min_toleration_seconds,
    observe,
    pod_disruption_status,
    ready_status,
    reconcile_taints,
    tainting_rate,
    tolerates,
    zone_of,
    zone_state,
)
from controllers.informers.store import freeze, thaw

T0 = 1_700_000_000.0
Obj = dict[str, Any]


def node(ready: str | None = "True", heartbeat: str = "hb-1", *, taints: list[Obj] | None = None,
         extra: list[Obj] | None = None, unschedulable: bool = False) -> Any:
    conds: list[Obj] = []
    if ready is not None:
        conds.append({"type": "Ready", "status": ready, "reason": "KubeletReady",
                      "lastHeartbeatTime": heartbeat,
                      "lastTransitionTime": format_timestamp(T0 - 100)})
    conds += extra or []
    spec: Obj = {"taints": taints} if taints else {}
    if unschedulable:
        spec["unschedulable"] = True
    return freeze({"metadata": {"name": "n1", "creationTimestamp": format_timestamp(T0 - 500)},
                   "spec": spec, "status": {"conditions": conds}})


def lease(renew: str) -> Any:
    return freeze({"metadata": {"name": "n1", "namespace": "kube-node-lease"},
                   "spec": {"renewTime": renew, "leaseDurationSeconds": 40}})


def taint(key: str, effect: str, added: float | None = None) -> Obj:
    out: Obj = {"key": key, "effect": effect}
    if added is not None:
        out["timeAdded"] = format_timestamp(added)
    return out


def pod(tolerations: list[Obj] | None = None, created: float = T0 - 1000) -> Any:
    return freeze({"metadata": {"name": "p", "namespace": "default", "uid": "u",
                                "creationTimestamp": format_timestamp(created)},
                   "spec": {"nodeName": "n1", "tolerations": tolerations or []},
                   "status": {"phase": "Running", "conditions": [
                       {"type": "Ready", "status": "True",
                        "lastTransitionTime": format_timestamp(T0 - 900)}]}})


# -- health --------------------------------------------------------------------------------

def test_first_sight_gives_a_full_grace_and_a_node_without_ready_counts_from_creation() -> None:
    assert observe(None, node(), None, T0).probe_timestamp == T0
    assert observe(None, node(ready=None), None, T0).probe_timestamp == T0 - 500
    # ...unless its lease is there: a lease seen for the first time is a heartbeat.
    assert observe(None, node(ready=None), lease("r1"), T0).probe_timestamp == T0


def test_only_a_moving_heartbeat_or_lease_moves_the_probe() -> None:
    saved = observe(None, node(heartbeat="hb-1"), lease("r1"), T0)
    same = observe(saved, node(heartbeat="hb-1"), lease("r1"), T0 + 30)
    assert same.probe_timestamp == T0
    # Our own Unknown write keeps lastHeartbeatTime: not a heartbeat either.
    assert observe(saved, node("Unknown", "hb-1"), lease("r1"), T0 + 30).probe_timestamp == T0
    assert observe(saved, node(heartbeat="hb-2"), lease("r1"), T0 + 30).probe_timestamp == T0 + 30
    assert observe(saved, node(heartbeat="hb-1"), lease("r2"), T0 + 30).probe_timestamp == T0 + 30
    # A renew time going "backwards" (another clock) still counts: only change matters.
    assert observe(saved, node(), lease("r0"), T0 + 30).probe_timestamp == T0 + 30
    # A lease that disappears is no heartbeat, and its last renewal is remembered.
    gone = observe(saved, node(), None, T0 + 30)
    assert gone.probe_timestamp == T0 and gone.lease_renew_time == "r1"
    assert observe(gone, node(), lease("r1"), T0 + 31).probe_timestamp == T0
    # A Ready condition appearing or disappearing is news.
    bare = observe(None, node(ready=None), None, T0)
    assert observe(bare, node(), None, T0 + 5).probe_timestamp == T0 + 5
    assert observe(saved, node(ready=None), lease("r1"), T0 + 6).probe_timestamp == T0 + 6


def test_grace_and_expiry() -> None:
    assert grace_for(node(), 40, 60) == 40 and grace_for(node(ready=None), 40, 60) == 60
    health = NodeHealth(T0, True, "hb", "r")
    assert not is_expired(health, T0 + 39.999, 40)
    assert is_expired(health, T0 + 40, 40)


def test_mark_unknown_sets_every_kubelet_condition_and_adds_the_missing_ones() -> None:
    pressure = {"type": "MemoryPressure", "status": "False",
                "reason": "KubeletHasSufficientMemory", "lastHeartbeatTime": "hb-1",
                "lastTransitionTime": format_timestamp(T0 - 100)}
    network = {"type": "NetworkUnavailable", "status": "False"}
    before = node(extra=[pressure, network])
    snapshot = thaw(before)
    conditions = mark_unknown(before, T0)
    assert conditions is not None and thaw(before) == snapshot  # input untouched
    by_type = {c["type"]: c for c in conditions}
    for type_ in ("Ready", "MemoryPressure"):
        assert by_type[type_]["status"] == "Unknown"
        assert by_type[type_]["reason"] == "NodeStatusUnknown"
        assert by_type[type_]["message"] == "Kubelet stopped posting node status."
        assert by_type[type_]["lastHeartbeatTime"] == "hb-1"
        assert by_type[type_]["lastTransitionTime"] == format_timestamp(T0)
    for type_ in ("DiskPressure", "PIDPressure"):
        assert by_type[type_]["status"] == "Unknown"
        assert by_type[type_]["reason"] == "NodeStatusNeverUpdated"
        assert by_type[type_]["lastHeartbeatTime"] == format_timestamp(T0 - 500)
    assert by_type["NetworkUnavailable"] == network
    # Already unknown: nothing to write.
    again = freeze({**snapshot, "status": {"conditions": conditions}})
    assert mark_unknown(again, T0 + 10) is None


# -- taints --------------------------------------------------------------------------------

FOREIGN = {"key": "dedicated", "value": "gpu", "effect": NO_SCHEDULE}


@pytest.mark.parametrize(("ready", "want"), [
    ("True", []),
    ("False", [(TAINT_NOT_READY, NO_SCHEDULE), (TAINT_NOT_READY, NO_EXECUTE)]),
    ("Unknown", [(TAINT_UNREACHABLE, NO_SCHEDULE), (TAINT_UNREACHABLE, NO_EXECUTE)]),
    (None, []),
])
def test_taints_follow_the_ready_condition(ready: str | None,
                                           want: list[tuple[str, str]]) -> None:
    taints = reconcile_taints(node(ready, taints=[FOREIGN]), T0)
    if not want:
        assert taints is None
        return
    assert taints is not None and taints[0] == FOREIGN
    assert [(t["key"], t["effect"]) for t in taints[1:]] == want
    for t in taints[1:]:
        assert ("timeAdded" in t) == (t["effect"] == NO_EXECUTE)


def test_a_ready_node_loses_only_the_taints_this_controller_owns() -> None:
    mine = [taint(TAINT_UNREACHABLE, NO_SCHEDULE), taint(TAINT_UNREACHABLE, NO_EXECUTE, T0 - 5),
            taint(TAINT_NOT_READY, NO_EXECUTE, T0 - 9)]
    foreign_no_execute = {"key": TAINT_UNREACHABLE, "effect": "PreferNoSchedule"}
    assert reconcile_taints(node("True", taints=[*mine, FOREIGN, foreign_no_execute]),
                            T0) == [FOREIGN, foreign_no_execute]


def test_not_ready_swaps_for_unreachable_and_existing_taints_keep_their_time() -> None:
    old = [taint(TAINT_NOT_READY, NO_SCHEDULE), taint(TAINT_NOT_READY, NO_EXECUTE, T0 - 60)]
    swapped = reconcile_taints(node("Unknown", taints=old), T0)
    assert swapped == [taint(TAINT_UNREACHABLE, NO_SCHEDULE),
                       taint(TAINT_UNREACHABLE, NO_EXECUTE, T0)]
    kept = [taint(TAINT_UNREACHABLE, NO_EXECUTE, T0 - 60), taint(TAINT_UNREACHABLE, NO_SCHEDULE),
            taint(TAINT_UNREACHABLE, NO_EXECUTE, T0 - 1)]
    assert reconcile_taints(node("Unknown", taints=kept), T0) == kept[:2]  # duplicate dropped
    assert reconcile_taints(node("Unknown", taints=kept[:2]), T0) is None


@pytest.mark.parametrize(("statuses", "state"), [
    (["True"], ZoneState.NORMAL),
    ([None], ZoneState.FULL_DISRUPTION),
    (["Unknown", "False", None], ZoneState.FULL_DISRUPTION),
    (["Unknown", "Unknown", "True"], ZoneState.NORMAL),  # not more than two
    (["Unknown"] * 3 + ["True"] * 2, ZoneState.PARTIAL_DISRUPTION),  # 0.6
    (["Unknown"] * 3 + ["True"] * 3, ZoneState.NORMAL),  # 0.5
])
def test_zone_state(statuses: list[str | None], state: ZoneState) -> None:
    assert zone_state(statuses, 0.55) is state


def test_zones_and_rates() -> None:
    labelled = freeze({"metadata": {"name": "n", "labels": {
        "topology.kubernetes.io/region": "eu", "topology.kubernetes.io/zone": "eu-1a"}}})
    assert zone_of(labelled) == "eu:eu-1a" and zone_of(node()) == ""
    def rate(state: ZoneState, size: int) -> float:
        return tainting_rate(state, size, rate=0.1, secondary_rate=0.01,
                             large_cluster_threshold=50)
    assert rate(ZoneState.NORMAL, 3) == 0.1
    assert rate(ZoneState.FULL_DISRUPTION, 3) == 0.1
    assert rate(ZoneState.PARTIAL_DISRUPTION, 50) == 0.0
    assert rate(ZoneState.PARTIAL_DISRUPTION, 51) == 0.01


def test_token_bucket_holds_one_token() -> None:
    bucket = TokenBucket(0.1, 1.0, T0)
    bucket, wait = bucket.take(T0 + 100)  # idle time does not store more than one
    assert wait == 0
    bucket, wait = bucket.take(T0 + 100)
    assert wait == pytest.approx(10)
    bucket, wait = bucket.take(T0 + 104)
    assert wait == pytest.approx(6)
    bucket, wait = bucket.take(T0 + 110)
    assert wait == 0
    stopped, wait = TokenBucket(0.0, 1.0, T0).take(T0 + 10 ** 6)
    assert wait == math.inf and stopped.rate == 0.0


def test_only_a_new_no_execute_taint_is_rate_limited() -> None:
    unknown = node("Unknown")
    taints = reconcile_taints(unknown, T0)
    assert taints is not None and adds_no_execute(unknown, taints)
    not_ready = node("False", taints=[taint(TAINT_NOT_READY, NO_EXECUTE, T0)])
    swapped = reconcile_taints(node("Unknown", taints=not_ready["spec"]["taints"]), T0)
    assert swapped is not None and not adds_no_execute(not_ready, swapped)
    no_schedule_only = reconcile_taints(unknown, T0, no_execute=False)
    assert no_schedule_only is not None and not adds_no_execute(unknown, no_schedule_only)


def test_while_no_node_is_ready_no_execute_taints_are_neither_wanted_nor_kept() -> None:
    assert not is_fully_disrupted([])
    assert not is_fully_disrupted([ZoneState.FULL_DISRUPTION, ZoneState.PARTIAL_DISRUPTION])
    assert is_fully_disrupted([ZoneState.FULL_DISRUPTION, ZoneState.FULL_DISRUPTION])
    mine = [taint(TAINT_UNREACHABLE, NO_SCHEDULE), taint(TAINT_UNREACHABLE, NO_EXECUTE, T0 - 5)]
    assert reconcile_taints(node("Unknown", taints=mine), T0, no_execute=False) == mine[:1]
    assert reconcile_taints(node("Unknown", taints=mine[:1]), T0, no_execute=False) is None
    foreign = {"key": "evict-me", "effect": NO_EXECUTE}
    assert reconcile_taints(node("False", taints=[foreign]), T0, no_execute=False) == [
        foreign, taint(TAINT_NOT_READY, NO_SCHEDULE)]


def test_pressure_conditions_and_unschedulable_give_no_schedule_taints() -> None:
    extra = [{"type": "MemoryPressure", "status": "True"}, {"type": "DiskPressure",
                                                            "status": "False"},
             {"type": "PIDPressure", "status": "True"}, {"type": "NetworkUnavailable",
                                                         "status": "True"}]
    taints = reconcile_taints(node("True", extra=extra, unschedulable=True), T0)
    assert taints is not None
    assert [t["key"] for t in taints] == [
        "node.kubernetes.io/memory-pressure", "node.kubernetes.io/pid-pressure",
        "node.kubernetes.io/network-unavailable", TAINT_UNSCHEDULABLE]
    assert {t["effect"] for t in taints} == {NO_SCHEDULE}


# -- tolerations and eviction --------------------------------------------------------------

UNREACHABLE = {"key": TAINT_UNREACHABLE, "effect": NO_EXECUTE}


@pytest.mark.parametrize(("toleration", "expected"), [
    ({"key": TAINT_UNREACHABLE, "operator": "Exists"}, True),
    ({"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": NO_EXECUTE}, True),
    ({"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": NO_SCHEDULE}, False),
    ({"key": TAINT_NOT_READY, "operator": "Exists"}, False),
    ({"operator": "Exists"}, True),
    ({"key": TAINT_UNREACHABLE, "operator": "Equal", "value": ""}, True),
    ({"key": TAINT_UNREACHABLE, "value": ""}, True),
    ({"key": TAINT_UNREACHABLE, "operator": "Equal", "value": "x"}, False),
    ({"key": TAINT_UNREACHABLE, "operator": "Bogus"}, False),
])
def test_tolerates(toleration: Obj, expected: bool) -> None:
    assert tolerates(toleration, UNREACHABLE) is expected
    assert tolerates({"key": "k", "operator": "Equal", "value": "v"},
                     {"key": "k", "value": "v", "effect": NO_EXECUTE})


def test_default_tolerations_fill_only_what_the_pod_does_not_say() -> None:
    defaults = effective_tolerations(pod(), 300)
    assert [(t["key"], t["tolerationSeconds"]) for t in defaults] == [
        (TAINT_NOT_READY, 300), (TAINT_UNREACHABLE, 300)]
    own = {"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": NO_EXECUTE,
           "tolerationSeconds": 60}
    assert [t["key"] for t in effective_tolerations(pod([own]), 300)] == [
        TAINT_UNREACHABLE, TAINT_NOT_READY]
    everything = {"operator": "Exists"}
    assert effective_tolerations(pod([everything]), 300) == [everything]
    no_schedule_only = {"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": NO_SCHEDULE}
    assert len(effective_tolerations(pod([no_schedule_only]), 300)) == 3


def test_min_toleration_seconds() -> None:
    forever = {"key": TAINT_UNREACHABLE, "operator": "Exists"}
    sixty = {**forever, "tolerationSeconds": 60}
    ten = {"operator": "Exists", "tolerationSeconds": 10}
    assert min_toleration_seconds([], [UNREACHABLE]) == 0
    assert min_toleration_seconds([forever], [UNREACHABLE]) is None
    assert min_toleration_seconds([forever, sixty], [UNREACHABLE]) == 60
    assert min_toleration_seconds([sixty, ten], [UNREACHABLE]) == 10
    assert min_toleration_seconds([{**forever, "tolerationSeconds": -5}], [UNREACHABLE]) == 0
    other = {"key": "other", "effect": NO_EXECUTE}
    assert min_toleration_seconds([forever], [UNREACHABLE, other]) == 0
    assert min_toleration_seconds([], []) is None


def test_decide_eviction() -> None:
    tainted = node("Unknown", taints=[taint(TAINT_UNREACHABLE, NO_EXECUTE, T0)])
    assert decide_eviction(pod(), node(), default_seconds=300, start=T0,
                           now=T0) == EvictionDecision(Verdict.UNAFFECTED)
    assert decide_eviction(pod(), tainted, default_seconds=300, start=T0,
                           now=T0 + 299) == EvictionDecision(Verdict.WAIT, T0 + 300)
    assert decide_eviction(pod(), tainted, default_seconds=300, start=T0,
                           now=T0 + 300).verdict is Verdict.EVICT
    sixty = {"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": NO_EXECUTE,
             "tolerationSeconds": 60}
    assert decide_eviction(pod([sixty]), tainted, default_seconds=300, start=T0,
                           now=T0 + 1) == EvictionDecision(Verdict.WAIT, T0 + 60)
    forever = {"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": NO_EXECUTE}
    assert decide_eviction(pod([forever]), tainted, default_seconds=300, start=T0,
                           now=T0 + 10 ** 6).verdict is Verdict.KEEP
    foreign = node("True", taints=[{"key": "evict-me", "effect": NO_EXECUTE}])
    assert decide_eviction(pod([forever]), foreign, default_seconds=300, start=T0,
                           now=T0).verdict is Verdict.EVICT
    assert decide_eviction(pod(), tainted, default_seconds=0, start=T0,
                           now=T0).verdict is Verdict.EVICT


def test_eviction_start() -> None:
    taints = [taint(TAINT_UNREACHABLE, NO_SCHEDULE, T0 - 500),
              taint(TAINT_UNREACHABLE, NO_EXECUTE, T0 - 50), taint("x", NO_EXECUTE, T0 - 70)]
    tainted = node("Unknown", taints=taints)
    assert eviction_start(tainted, pod(), T0) == T0 - 70
    assert eviction_start(tainted, pod(created=T0 - 20), T0) == T0 - 20
    assert eviction_start(tainted, pod(created=T0 + 20), T0) == T0  # never after now
    untimed = node("Unknown", taints=[{"key": "x", "effect": NO_EXECUTE}])
    assert eviction_start(untimed, pod(), T0) == T0


# -- pod status ----------------------------------------------------------------------------

def test_pod_status_changes() -> None:
    p = pod()
    status = mark_pod_not_ready(p, T0)
    assert status is not None and ready_status({"status": status}) == "False"
    cond = condition_of({"status": status}, "Ready")
    assert cond is not None and cond["lastTransitionTime"] == format_timestamp(T0)
    assert condition_of(p, "Ready") is not None and ready_status(p) == "True"  # untouched
    assert mark_pod_not_ready(freeze({"status": status}), T0) is None
    disrupted = pod_disruption_status(p, T0)
    assert disrupted is not None
    target = condition_of({"status": disrupted}, "DisruptionTarget")
    assert target is not None and target["reason"] == "DeletionByTaintManager"
    assert target["status"] == "True"
    assert pod_disruption_status(freeze({"status": disrupted}), T0) is None
