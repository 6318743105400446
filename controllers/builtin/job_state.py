"""The Job controller's decisions, as pure functions of a Job, its pods and the time.

- Completion indexes: ``parse_index_ranges`` / ``format_index_ranges`` read
  and write ``status.completedIndexes`` (``"0-2,5"``); ``pod_index`` reads
  a pod's ``batch.kubernetes.io/job-completion-index``.
- Failures: ``finished_time`` is when a pod finished (its containers' latest
  ``finishedAt``, else its ``Ready`` condition's last transition, else its
  deletion time); ``backoff_delay`` is Kubernetes' pod-failure back-off,
  10 s doubling per consecutive failure, capped at 6 minutes, counted from
  the last failure after the last success.
- Status: ``conditions_with`` sets or replaces one condition,
  ``finish_time`` reads when a finished Job finished, ``is_finished`` says
  whether a Job has a true ``Complete`` or ``Failed`` condition.
- Outcome: ``failure_reason`` says whether a Job has failed
  (``BackoffLimitExceeded``: more failed pods than ``backoffLimit``, or
  with ``OnFailure`` container restarts reaching it; ``DeadlineExceeded``:
  active for longer than ``activeDeadlineSeconds``); ``is_complete``
  whether it has succeeded.
- Work: ``want_active`` is how many pods a NonIndexed Job should run;
  ``pending_indexes`` which indexes an Indexed Job still has to start.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controllers.api.objects import Obj, format_timestamp, parse_timestamp
from controllers.informers.store import thaw

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_LIMIT_EXCEEDED",
    "BACKOFF_MAX",
    "COMPLETE",
    "COMPLETION_INDEX",
    "DEADLINE_EXCEEDED",
    "FAILED",
    "SUSPENDED",
    "Failure",
    "backoff_delay",
    "conditions_with",
    "failure_reason",
    "failures_after_last_success",
    "finish_time",
    "finished_time",
    "format_index_ranges",
    "has_condition",
    "is_complete",
    "is_finished",
    "parse_index_ranges",
    "pending_indexes",
    "pod_index",
    "want_active",
]

COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
"""The annotation (and label) carrying an Indexed Job pod's completion index."""

COMPLETE = "Complete"
FAILED = "Failed"
SUSPENDED = "Suspended"

BACKOFF_BASE = 10.0
"""Seconds before recreating a pod after the first failure; doubles per failure."""

BACKOFF_MAX = 360.0
"""The longest back-off, in seconds."""


# -- completion indexes -------------------------------------------------------------------
def parse_index_ranges(text: str | None, completions: int | None = None) -> list[int]:
    """The sorted indexes in ``"0-2,5"`` (below ``completions`` if given); bad parts skipped."""
    found: set[int] = set()
    for part in (text or "").split(","):
        first, dash, last = part.strip().partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            continue
        low = int(first)
        high = int(last) if dash else low
        if completions is not None:
            high = min(high, completions - 1)
        found.update(range(low, high + 1))
    return sorted(found)


def format_index_ranges(indexes: Iterable[int]) -> str:
    """``[0, 1, 2, 5]`` as ``"0-2,5"`` (sorted, duplicates dropped)."""
    ordered = sorted(set(indexes))
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def pod_index(pod: Mapping[str, Any]) -> int | None:
    """The completion index of an Indexed Job's pod (annotation, then label), if valid."""
    meta = pod.get("metadata") or {}
    for field in ("annotations", "labels"):
        value = (meta.get(field) or {}).get(COMPLETION_INDEX)
        if isinstance(value, str) and value.isdigit():
            return int(value)
    return None


def pending_indexes(completions: int, completed: Iterable[int],
                    active_indexes: Iterable[int]) -> list[int]:
    """Indexes below ``completions`` neither completed nor held by an active pod, ascending."""
    taken = set(completed) | set(active_indexes)
    return [i for i in range(completions) if i not in taken]


def want_active(parallelism: int, completions: int | None, succeeded: int, active: int) -> int:
    """How many pods a NonIndexed Job with ``active`` pods running should have running.

    With ``completions`` set: the parallelism, but no more than the
    completions still missing. Without (a work queue): the parallelism until
    the first pod succeeds; after that, whatever is still running.
    """
    if completions is None:
        return min(active, parallelism) if succeeded > 0 else parallelism
    return max(0, min(parallelism, completions - succeeded))


# -- outcome ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Failure:
    """Why a Job failed: the ``Failed`` condition's reason and message (also its event)."""

    reason: str
    message: str


BACKOFF_LIMIT_EXCEEDED = Failure("BackoffLimitExceeded",
                                 "Job has reached the specified backoff limit")
DEADLINE_EXCEEDED = Failure("DeadlineExceeded", "Job was active longer than specified deadline")


def failure_reason(*, failed: int, restarts: int | None, backoff_limit: int,
                   deadline_in: float | None) -> Failure | None:
    """Whether a Job has failed, and why (see the module docstring).

    Args:
        failed: the failed pods counted so far.
        restarts: container restarts of the active pods with ``OnFailure``; None otherwise.
        backoff_limit: ``spec.backoffLimit``.
        deadline_in: seconds left of ``activeDeadlineSeconds`` (None: no deadline running).
    """
    if failed > backoff_limit:
        return BACKOFF_LIMIT_EXCEEDED
    if restarts is not None and (restarts > 0 if backoff_limit == 0
                                 else restarts >= backoff_limit):
        return BACKOFF_LIMIT_EXCEEDED
    if deadline_in is not None and deadline_in <= 0:
        return DEADLINE_EXCEEDED
    return None


def is_complete(completions: int | None, succeeded: int, active: int) -> bool:
    """Whether enough pods succeeded: ``completions`` of them, or for a work queue one and none
    still active (an Indexed Job's ``succeeded`` counts its completed indexes)."""
    if completions is not None:
        return succeeded >= completions
    return succeeded > 0 and active == 0


# -- failures -----------------------------------------------------------------------------
def _time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def finished_time(pod: Mapping[str, Any]) -> float | None:
    """When the finished ``pod`` finished, from its status (see the module docstring)."""
    status = pod.get("status") or {}
    latest: float | None = None
    for cs in status.get("containerStatuses") or ():
        if not isinstance(cs, Mapping):
            continue
        terminated = (cs.get("state") or {}).get("terminated") or {}
        t = _time(terminated.get("finishedAt"))
        if t is not None and (latest is None or t > latest):
            latest = t
    if latest is not None:
        return latest
    for cond in status.get("conditions") or ():
        if isinstance(cond, Mapping) and cond.get("type") == "Ready":
            t = _time(cond.get("lastTransitionTime"))
            if t is not None:
                return t
    return _time((pod.get("metadata") or {}).get("deletionTimestamp"))


def failures_after_last_success(succeeded: Sequence[float], failed: Sequence[float]
                                ) -> tuple[int, float | None]:
    """Failures finished after the latest success, and the latest failure time.

    ``succeeded`` and ``failed`` are finish times.
    """
    last_success: float | None = max(succeeded, default=None)
    later = [t for t in failed if last_success is None or t > last_success]
    latest: float | None = max(later, default=None)
    return len(later), latest


def backoff_delay(failures: int, last_failure: float | None, now: float) -> float:
    """Seconds still to wait before creating pods after ``failures`` consecutive failures.

    The back-off is ``BACKOFF_BASE * 2**(failures-1)`` capped at
    ``BACKOFF_MAX``, counted from ``last_failure``; 0 when nothing failed.
    """
    if failures <= 0 or last_failure is None:
        return 0.0
    backoff = min(BACKOFF_BASE * float(2 ** min(failures - 1, 30)), BACKOFF_MAX)
    return max(0.0, last_failure + backoff - now)


# -- conditions ---------------------------------------------------------------------------
def has_condition(job: Mapping[str, Any], type_: str) -> bool:
    """Whether the Job has the condition ``type_`` with status ``True``."""
    for cond in (job.get("status") or {}).get("conditions") or ():
        if isinstance(cond, Mapping) and cond.get("type") == type_:
            return bool(cond.get("status") == "True")
    return False


def is_finished(job: Mapping[str, Any]) -> bool:
    """Whether the Job is ``Complete`` or ``Failed``."""
    return has_condition(job, COMPLETE) or has_condition(job, FAILED)


def finish_time(job: Mapping[str, Any]) -> float | None:
    """When a finished Job finished: ``completionTime``, else its finishing condition's time."""
    status = job.get("status") or {}
    t = _time(status.get("completionTime"))
    if t is not None:
        return t
    for cond in status.get("conditions") or ():
        if (isinstance(cond, Mapping) and cond.get("type") in (COMPLETE, FAILED)
                and cond.get("status") == "True"):
            return _time(cond.get("lastTransitionTime"))
    return None


def conditions_with(conditions: Sequence[Mapping[str, Any]], type_: str, status: str,
                    reason: str, message: str, now: float) -> list[Obj]:
    """``conditions`` with ``type_`` set: replaced if it changed, appended if missing.

    ``lastTransitionTime`` moves only when the status changes;
    ``lastProbeTime`` is ``now`` whenever anything about it changed.
    """
    out: list[Obj] = []
    found = False
    for cond in conditions:
        item: Obj = thaw(cond)
        if item.get("type") == type_:
            found = True
            if (item.get("status"), item.get("reason"), item.get("message")) != (
                    status, reason, message):
                if item.get("status") != status:
                    item["lastTransitionTime"] = format_timestamp(now)
                item.update(status=status, reason=reason, message=message,
                            lastProbeTime=format_timestamp(now))
        out.append(item)
    if not found:
        out.append({"type": type_, "status": status, "reason": reason, "message": message,
                    "lastProbeTime": format_timestamp(now),
                    "lastTransitionTime": format_timestamp(now)})
    return out
