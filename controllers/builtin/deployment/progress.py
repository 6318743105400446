"""A Deployment's status and conditions, computed from its ReplicaSets: pure functions.

Status counts come from the ReplicaSets: ``replicas``, ``readyReplicas``
and ``availableReplicas`` sum their status, ``updatedReplicas`` is the new
ReplicaSet's ``status.replicas``, ``unavailableReplicas`` is the wanted
pods (their ``spec.replicas``) minus the available ones, never negative.

Conditions, as Kubernetes sets them:

- ``Available``: True (MinimumReplicasAvailable) while at least
  ``replicas - maxUnavailable`` pods are available, else False
  (MinimumReplicasUnavailable).
- ``Progressing`` (only with a ``progressDeadlineSeconds``): True with
  NewReplicaSetCreated / FoundNewReplicaSet / ReplicaSetUpdated while a
  rollout moves (``lastUpdateTime`` is bumped on each sign of progress,
  ``lastTransitionTime`` only when the status flips), True with
  NewReplicaSetAvailable once it is complete, False with
  ProgressDeadlineExceeded when ``lastUpdateTime`` is older than the
  deadline, and Unknown with DeploymentPaused / DeploymentResumed.
- ``ReplicaFailure``: copied from the ReplicaSets (the new one first).

Times are wall-clock seconds since the epoch; conditions hold RFC 3339.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from controllers.api.objects import Obj, format_timestamp, name_of, parse_timestamp
from controllers.builtin.deployment.sizing import (
    actual_replica_count,
    available_replica_count,
    max_unavailable,
    ready_replica_count,
    replica_count,
    replicas_of,
)
from controllers.informers.store import thaw

__all__ = [
    "AVAILABLE",
    "FAILED_RS_CREATE_REASON",
    "FOUND_NEW_RS_REASON",
    "MIN_REPLICAS_AVAILABLE",
    "MIN_REPLICAS_UNAVAILABLE",
    "NEW_RS_AVAILABLE_REASON",
    "NEW_RS_REASON",
    "NO_DEADLINE",
    "PAUSED_REASON",
    "PROGRESSING",
    "REPLICA_FAILURE",
    "RESUMED_REASON",
    "RS_UPDATED_REASON",
    "TIMED_OUT_REASON",
    "calculate_status",
    "deployment_complete",
    "deployment_progressing",
    "deployment_timed_out",
    "get_condition",
    "has_progress_deadline",
    "new_condition",
    "remove_condition",
    "replica_failures",
    "rollout_status",
    "set_condition",
    "stuck_requeue_seconds",
]

AVAILABLE = "Available"
PROGRESSING = "Progressing"
REPLICA_FAILURE = "ReplicaFailure"

MIN_REPLICAS_AVAILABLE = "MinimumReplicasAvailable"
MIN_REPLICAS_UNAVAILABLE = "MinimumReplicasUnavailable"
NEW_RS_REASON = "NewReplicaSetCreated"
FOUND_NEW_RS_REASON = "FoundNewReplicaSet"
RS_UPDATED_REASON = "ReplicaSetUpdated"
NEW_RS_AVAILABLE_REASON = "NewReplicaSetAvailable"
TIMED_OUT_REASON = "ProgressDeadlineExceeded"
PAUSED_REASON = "DeploymentPaused"
RESUMED_REASON = "DeploymentResumed"
FAILED_RS_CREATE_REASON = "ReplicaSetCreateError"

NO_DEADLINE = 2**31 - 1
"""A ``progressDeadlineSeconds`` meaning "no deadline" (Kubernetes' MaxInt32)."""


def new_condition(type_: str, status: str, reason: str, message: str, now: float) -> Obj:
    """A condition whose update and transition times are both ``now``."""
    stamp = format_timestamp(now)
    return {"type": type_, "status": status, "lastUpdateTime": stamp,
            "lastTransitionTime": stamp, "reason": reason, "message": message}


def _conditions(status: Mapping[str, Any]) -> list[Any]:
    found = status.get("conditions")
    return list(found) if isinstance(found, (list, tuple)) else []


def get_condition(status: Mapping[str, Any] | None, type_: str) -> Mapping[str, Any] | None:
    """The condition of ``type_`` in ``status``, if any."""
    for cond in _conditions(status or {}):
        if isinstance(cond, Mapping) and cond.get("type") == type_:
            return cond
    return None


def set_condition(status: Obj, condition: Obj) -> None:
    """Put ``condition`` in ``status``, unless one with its status and reason is there.

    A condition whose status does not change keeps its ``lastTransitionTime``.
    """
    current = get_condition(status, condition["type"])
    if current is not None and current.get("status") == condition["status"] and \
            current.get("reason") == condition["reason"]:
        return
    if current is not None and current.get("status") == condition["status"]:
        condition = {**condition, "lastTransitionTime": current.get("lastTransitionTime")}
    kept = [c for c in _conditions(status)
            if not (isinstance(c, Mapping) and c.get("type") == condition["type"])]
    status["conditions"] = [*kept, condition]


def remove_condition(status: Obj, type_: str) -> None:
    """Drop the condition of ``type_`` from ``status``."""
    if "conditions" in status:
        status["conditions"] = [c for c in _conditions(status)
                                if not (isinstance(c, Mapping) and c.get("type") == type_)]


def has_progress_deadline(deployment: Mapping[str, Any]) -> bool:
    deadline = (deployment.get("spec") or {}).get("progressDeadlineSeconds")
    return isinstance(deadline, int) and deadline != NO_DEADLINE


def _generation(deployment: Mapping[str, Any]) -> int:
    value = (deployment.get("metadata") or {}).get("generation")
    return value if isinstance(value, int) else 0


def _int(status: Mapping[str, Any] | None, field: str) -> int:
    value = (status or {}).get(field)
    return value if isinstance(value, int) else 0


def deployment_complete(deployment: Mapping[str, Any], status: Mapping[str, Any] | None) -> bool:
    """Whether every wanted pod is updated and available, and the spec has been seen."""
    want = replicas_of(deployment)
    return (_int(status, "updatedReplicas") == want and _int(status, "replicas") == want
            and _int(status, "availableReplicas") == want
            and _int(status, "observedGeneration") >= _generation(deployment))


def deployment_progressing(deployment: Mapping[str, Any], new_status: Mapping[str, Any]) -> bool:
    """Whether ``new_status`` shows progress over the Deployment's current status."""
    old = deployment.get("status") or {}
    old_old = _int(old, "replicas") - _int(old, "updatedReplicas")
    new_old = _int(new_status, "replicas") - _int(new_status, "updatedReplicas")
    return (_int(new_status, "updatedReplicas") > _int(old, "updatedReplicas")
            or new_old < old_old
            or _int(new_status, "readyReplicas") > _int(old, "readyReplicas")
            or _int(new_status, "availableReplicas") > _int(old, "availableReplicas"))


def _deadline_passes_at(deployment: Mapping[str, Any], cond: Mapping[str, Any]) -> float | None:
    stamp = cond.get("lastUpdateTime")
    try:
        since = parse_timestamp(stamp) if isinstance(stamp, str) else None
    except ValueError:
        since = None
    if since is None:
        return None
    return since + float((deployment.get("spec") or {}).get("progressDeadlineSeconds") or 0)


def deployment_timed_out(deployment: Mapping[str, Any], new_status: Mapping[str, Any],
                         now: float) -> bool:
    """Whether the Progressing condition of ``new_status`` has not moved for the deadline."""
    if not has_progress_deadline(deployment):
        return False
    cond = get_condition(new_status, PROGRESSING)
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE_REASON:
        return False
    if cond.get("reason") == TIMED_OUT_REASON:
        return True
    deadline = _deadline_passes_at(deployment, cond)
    return deadline is not None and deadline < now


def calculate_status(all_rss: Sequence[Mapping[str, Any]], new_rs: Mapping[str, Any] | None,
                     deployment: Mapping[str, Any], now: float) -> Obj:
    """The Deployment's status from its ReplicaSets, with Available set (see the module)."""
    old: Mapping[str, Any] = deployment.get("status") or {}
    available = available_replica_count(all_rss)
    status: Obj = {
        "observedGeneration": _generation(deployment),
        "replicas": actual_replica_count(all_rss),
        "updatedReplicas": actual_replica_count([new_rs]),
        "readyReplicas": ready_replica_count(all_rss),
        "availableReplicas": available,
        "unavailableReplicas": max(0, replica_count(all_rss) - available),
    }
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    conditions = thaw(_conditions(old))
    if conditions:
        status["conditions"] = conditions
    if available >= replicas_of(deployment) - max_unavailable(deployment):
        set_condition(status, new_condition(AVAILABLE, "True", MIN_REPLICAS_AVAILABLE,
                                            "Deployment has minimum availability.", now))
    else:
        set_condition(status, new_condition(AVAILABLE, "False", MIN_REPLICAS_UNAVAILABLE,
                                            "Deployment does not have minimum availability.",
                                            now))
    return status


def replica_failures(all_rss: Sequence[Mapping[str, Any]],
                     new_rs: Mapping[str, Any] | None) -> list[Obj]:
    """ReplicaFailure conditions of the new ReplicaSet, else of any, as Deployment conditions."""
    def failures(rs: Mapping[str, Any]) -> list[Obj]:
        out = []
        for cond in _conditions(rs.get("status") or {}):
            if isinstance(cond, Mapping) and cond.get("type") == REPLICA_FAILURE:
                out.append({"type": REPLICA_FAILURE, "status": cond.get("status"),
                            "lastUpdateTime": cond.get("lastTransitionTime"),
                            "lastTransitionTime": cond.get("lastTransitionTime"),
                            "reason": cond.get("reason"), "message": cond.get("message")})
        return out
    if new_rs is not None:
        found = failures(new_rs)
        if found:
            return found
    return [cond for rs in all_rss for cond in failures(rs)]


def rollout_status(all_rss: Sequence[Mapping[str, Any]], new_rs: Mapping[str, Any] | None,
                   deployment: Mapping[str, Any], now: float) -> Obj:
    """The status of a Deployment being rolled out: counts plus the progress estimate."""
    status = calculate_status(all_rss, new_rs, deployment, now)
    if not has_progress_deadline(deployment):
        remove_condition(status, PROGRESSING)
    current = get_condition(deployment.get("status"), PROGRESSING)
    complete_before = (status["replicas"] == status["updatedReplicas"] and current is not None
                       and current.get("reason") == NEW_RS_AVAILABLE_REASON)
    if has_progress_deadline(deployment) and not complete_before:
        subject = (f'ReplicaSet "{name_of(new_rs)}"' if new_rs is not None
                   else f'Deployment "{name_of(deployment)}"')
        if deployment_complete(deployment, status):
            set_condition(status, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE_REASON,
                                                f"{subject} has successfully progressed.", now))
        elif deployment_progressing(deployment, status):
            cond = new_condition(PROGRESSING, "True", RS_UPDATED_REASON,
                                 f"{subject} is progressing.", now)
            if current is not None:
                if current.get("status") == "True":
                    cond["lastTransitionTime"] = current.get("lastTransitionTime")
                remove_condition(status, PROGRESSING)
            set_condition(status, cond)
        elif deployment_timed_out(deployment, status, now):
            set_condition(status, new_condition(PROGRESSING, "False", TIMED_OUT_REASON,
                                                f"{subject} has timed out progressing.", now))
    failures = replica_failures(all_rss, new_rs)
    if failures:
        set_condition(status, failures[0])
    else:
        remove_condition(status, REPLICA_FAILURE)
    if status.get("conditions") == []:
        del status["conditions"]
    return status


def stuck_requeue_seconds(deployment: Mapping[str, Any], new_status: Mapping[str, Any],
                          now: float) -> float | None:
    """When to look again for a progress deadline, if the rollout may be stuck.

    ``None``: no need (no deadline, complete, or already timed out); 0: at
    once (less than a second left); else the seconds until the deadline,
    plus one.
    """
    current = get_condition(deployment.get("status"), PROGRESSING)
    if not has_progress_deadline(deployment) or current is None:
        return None
    if deployment_complete(deployment, new_status) or current.get("reason") == TIMED_OUT_REASON:
        return None
    deadline = _deadline_passes_at(deployment, current)
    if deadline is None:
        return None
    after = deadline - now
    return 0.0 if after < 1.0 else after + 1.0
