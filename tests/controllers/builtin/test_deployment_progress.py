"""Status and conditions of a Deployment: counts, Available, Progressing and the deadline."""

from __future__ import annotations

from typing import Any

from controllers.api.objects import format_timestamp
from controllers.builtin.deployment.progress import (
    AVAILABLE,
    MIN_REPLICAS_AVAILABLE,
    MIN_REPLICAS_UNAVAILABLE,
    NEW_RS_AVAILABLE_REASON,
    NEW_RS_REASON,
    NO_DEADLINE,
    PROGRESSING,
    REPLICA_FAILURE,
    RS_UPDATED_REASON,
    TIMED_OUT_REASON,
    calculate_status,
    deployment_complete,
    deployment_progressing,
    deployment_timed_out,
    get_condition,
    new_condition,
    rollout_status,
    set_condition,
    stuck_requeue_seconds,
)

T0 = 1_700_000_000.0
Obj = dict[str, Any]


def deployment(replicas: int = 4, status: Obj | None = None, deadline: int = 600,
               generation: int = 2) -> Obj:
    return {"metadata": {"name": "web", "generation": generation},
            "spec": {"replicas": replicas, "progressDeadlineSeconds": deadline,
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}},
            "status": status or {}}


def rs(name: str, spec: int, replicas: int, ready: int, available: int,
       conditions: list[Obj] | None = None) -> Obj:
    status: Obj = {"replicas": replicas, "readyReplicas": ready, "availableReplicas": available}
    if conditions:
        status["conditions"] = conditions
    return {"metadata": {"name": name}, "spec": {"replicas": spec}, "status": status}


def test_set_condition_keeps_transition_time_while_status_holds() -> None:
    status: Obj = {}
    set_condition(status, new_condition(PROGRESSING, "True", NEW_RS_REASON, "m", T0))
    set_condition(status, new_condition(PROGRESSING, "True", RS_UPDATED_REASON, "m2", T0 + 5))
    cond = get_condition(status, PROGRESSING)
    assert cond is not None and cond["reason"] == RS_UPDATED_REASON
    assert cond["lastTransitionTime"] == format_timestamp(T0)
    assert cond["lastUpdateTime"] == format_timestamp(T0 + 5)
    # Same status and reason: nothing changes, not even the times.
    set_condition(status, new_condition(PROGRESSING, "True", RS_UPDATED_REASON, "m3", T0 + 9))
    assert get_condition(status, PROGRESSING) == cond
    # A flip moves the transition time.
    set_condition(status, new_condition(PROGRESSING, "False", TIMED_OUT_REASON, "m", T0 + 20))
    cond = get_condition(status, PROGRESSING)
    assert cond is not None and cond["lastTransitionTime"] == format_timestamp(T0 + 20)
    assert len(status["conditions"]) == 1


def test_calculate_status_counts_and_availability() -> None:
    old, new = rs("old", 2, 3, 3, 3), rs("new", 3, 2, 1, 1)
    d = deployment(4, {"collisionCount": 2})
    status = calculate_status([old, new], new, d, T0)
    assert {k: v for k, v in status.items() if k != "conditions"} == {
        "observedGeneration": 2, "replicas": 5, "updatedReplicas": 2, "readyReplicas": 4,
        "availableReplicas": 4, "unavailableReplicas": 1, "collisionCount": 2}
    cond = get_condition(status, AVAILABLE)
    assert cond is not None and (cond["status"], cond["reason"]) == ("True",
                                                                      MIN_REPLICAS_AVAILABLE)
    # 2 available < 4 - 1: unavailable.
    status = calculate_status([rs("new", 4, 4, 2, 2)], None, d, T0)
    cond = get_condition(status, AVAILABLE)
    assert cond is not None and (cond["status"], cond["reason"]) == ("False",
                                                                      MIN_REPLICAS_UNAVAILABLE)
    assert status["updatedReplicas"] == 0 and status["unavailableReplicas"] == 2


def test_complete_and_progressing() -> None:
    d = deployment(3, {"replicas": 4, "updatedReplicas": 2, "readyReplicas": 3,
                       "availableReplicas": 3})
    done = {"replicas": 3, "updatedReplicas": 3, "availableReplicas": 3,
            "observedGeneration": 2}
    assert deployment_complete(d, done)
    assert not deployment_complete(d, {**done, "observedGeneration": 1})
    assert not deployment_complete(d, {**done, "availableReplicas": 2})
    same = {"replicas": 4, "updatedReplicas": 2, "readyReplicas": 3, "availableReplicas": 3}
    assert not deployment_progressing(d, same)
    assert deployment_progressing(d, {**same, "updatedReplicas": 3, "replicas": 5})
    assert deployment_progressing(d, {**same, "replicas": 3})           # fewer old pods
    assert deployment_progressing(d, {**same, "readyReplicas": 4})
    assert deployment_progressing(d, {**same, "availableReplicas": 4})


def progressing(reason: str, at: float, status: str = "True") -> Obj:
    return {"conditions": [new_condition(PROGRESSING, status, reason, "m", at)]}


def test_timed_out_only_after_the_deadline_without_progress() -> None:
    d = deployment(deadline=600)
    assert not deployment_timed_out(d, progressing(RS_UPDATED_REASON, T0), T0 + 600)
    assert deployment_timed_out(d, progressing(RS_UPDATED_REASON, T0), T0 + 601)
    assert not deployment_timed_out(d, progressing(NEW_RS_AVAILABLE_REASON, T0), T0 + 9999)
    assert deployment_timed_out(d, progressing(TIMED_OUT_REASON, T0, "False"), T0)
    assert not deployment_timed_out(d, {}, T0 + 9999)
    assert not deployment_timed_out(deployment(deadline=NO_DEADLINE),
                                    progressing(RS_UPDATED_REASON, T0), T0 + 9999)


def test_rollout_status_progress_then_timeout() -> None:
    before = {"replicas": 4, "updatedReplicas": 1, "readyReplicas": 3, "availableReplicas": 3,
              "observedGeneration": 2, **progressing(NEW_RS_REASON, T0)}
    d = deployment(4, before)
    old, new = rs("old", 3, 3, 3, 3), rs("new", 2, 2, 1, 1)
    # One more updated pod: progress; the update time moves, the transition time stays.
    moved = rollout_status([old, new], new, d, T0 + 30)
    cond = get_condition(moved, PROGRESSING)
    assert cond is not None and cond["reason"] == RS_UPDATED_REASON
    assert cond["message"] == 'ReplicaSet "new" is progressing.'
    assert (cond["lastUpdateTime"], cond["lastTransitionTime"]) == (
        format_timestamp(T0 + 30), format_timestamp(T0))
    # No change for longer than the deadline: timed out.
    d = deployment(4, moved)
    stuck = rollout_status([old, new], new, d, T0 + 30 + 601)
    cond = get_condition(stuck, PROGRESSING)
    assert cond is not None and (cond["status"], cond["reason"]) == ("False", TIMED_OUT_REASON)
    assert cond["message"] == 'ReplicaSet "new" has timed out progressing.'
    # Not yet at the deadline: nothing changes, and the next look is at the deadline.
    assert rollout_status([old, new], new, d, T0 + 30 + 100) == moved
    assert stuck_requeue_seconds(d, moved, T0 + 30 + 100) == 500 + 1
    assert stuck_requeue_seconds(d, moved, T0 + 30 + 599.5) == 0.0


def test_rollout_status_complete_and_then_left_alone() -> None:
    d = deployment(2, {"replicas": 3, "updatedReplicas": 2, "readyReplicas": 2,
                       "availableReplicas": 2, **progressing(RS_UPDATED_REASON, T0)})
    new = rs("new", 2, 2, 2, 2)
    done = rollout_status([rs("old", 0, 0, 0, 0), new], new, d, T0 + 10)
    cond = get_condition(done, PROGRESSING)
    assert cond is not None and cond["reason"] == NEW_RS_AVAILABLE_REASON
    assert cond["message"] == 'ReplicaSet "new" has successfully progressed.'
    assert stuck_requeue_seconds(d, done, T0 + 10) is None
    # Complete stays complete even when pods later fail: no timeout is judged.
    later = deployment(2, done)
    sick = rs("new", 2, 2, 1, 1)
    after = rollout_status([sick], sick, later, T0 + 5000)
    cond = get_condition(after, PROGRESSING)
    assert cond is not None and cond["reason"] == NEW_RS_AVAILABLE_REASON


def test_without_deadline_there_is_no_progressing_condition() -> None:
    d = deployment(2, progressing(RS_UPDATED_REASON, T0), deadline=NO_DEADLINE)
    new = rs("new", 2, 2, 2, 2)
    status = rollout_status([new], new, d, T0 + 10)
    assert get_condition(status, PROGRESSING) is None
    assert get_condition(status, AVAILABLE) is not None
    assert stuck_requeue_seconds(d, status, T0) is None


def test_replica_failures_are_copied_new_replicaset_first() -> None:
    failure = {"type": REPLICA_FAILURE, "status": "True", "reason": "FailedCreate",
               "message": "quota", "lastTransitionTime": format_timestamp(T0)}
    other = {**failure, "message": "old one"}
    old, new = rs("old", 1, 1, 1, 1, [other]), rs("new", 1, 0, 0, 0, [failure])
    d = deployment(2)
    status = rollout_status([old, new], new, d, T0)
    cond = get_condition(status, REPLICA_FAILURE)
    assert cond is not None and cond["message"] == "quota"
    assert cond["lastUpdateTime"] == format_timestamp(T0)
    healthy = rs("new", 1, 0, 0, 0)
    status = rollout_status([rs("old", 1, 1, 1, 1, [other]), healthy], healthy, d, T0)
    cond = get_condition(status, REPLICA_FAILURE)
    assert cond is not None and cond["message"] == "old one"
    cleared = rollout_status([healthy], healthy, deployment(2, status), T0)
    assert get_condition(cleared, REPLICA_FAILURE) is None
