"""The CronJob controller's decisions, as pure functions of a CronJob, its Jobs and the time.

- ``missed_schedule`` finds the most recent start time in ``(earliest, now]``
  and how many start times there were, counting no further than
  ``MAX_MISSED + 1``; ``earliest_time`` is where that search starts (the
  last schedule time, else the creation time, but never before ``now -
  startingDeadlineSeconds``).
- ``job_for_cronjob`` makes the Job a CronJob starts (``job_name``:
  ``<cronjob>-<minutes since the epoch>``), and ``job_from_template`` the
  Job any caller makes from a CronJob's ``jobTemplate``.
- ``history_to_delete`` picks the finished Jobs beyond a history limit,
  oldest first.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from controllers.api.objects import Obj, parse_timestamp
from controllers.builtin.cronjob.schedule import Schedule
from controllers.builtin.podutil import owner_reference
from controllers.informers.store import thaw

__all__ = [
    "MAX_MISSED",
    "SCHEDULED_TIMESTAMP",
    "earliest_time",
    "format_scheduled",
    "history_to_delete",
    "job_for_cronjob",
    "job_from_template",
    "job_name",
    "missed_schedule",
]

MAX_MISSED = 100
"""More missed start times than this stop scheduling (``TooManyMissedTimes``)."""

SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
"""The Job annotation holding its scheduled time (RFC 3339, in the CronJob's time zone)."""

_UTC = datetime.UTC


def _time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def earliest_time(cronjob: Mapping[str, Any], now: float) -> float:
    """The time after which start times count as missed (see the module docstring)."""
    status = cronjob.get("status") or {}
    meta = cronjob.get("metadata") or {}
    earliest = _time(status.get("lastScheduleTime"))
    if earliest is None:
        earliest = _time(meta.get("creationTimestamp")) or now
    deadline = (cronjob.get("spec") or {}).get("startingDeadlineSeconds")
    if isinstance(deadline, int) and not isinstance(deadline, bool):
        earliest = max(earliest, now - deadline)
    return earliest


def missed_schedule(schedule: Schedule, earliest: float, now: float,
                    tz: datetime.tzinfo | None = None
                    ) -> tuple[datetime.datetime | None, int]:
    """The latest start time in ``(earliest, now]`` and the count (at most ``MAX_MISSED + 1``)."""
    start = datetime.datetime.fromtimestamp(earliest, _UTC)
    end = datetime.datetime.fromtimestamp(now, _UTC)
    times = schedule.times_between(start, end, tz, limit=MAX_MISSED + 1)
    if len(times) > MAX_MISSED:
        # Too many to count one by one: the latest is still the one just before ``now``.
        latest = _latest_before(schedule, end, tz, times[-1])
        return latest, len(times)
    return (times[-1] if times else None), len(times)


def _latest_before(schedule: Schedule, end: datetime.datetime, tz: datetime.tzinfo | None,
                   known: datetime.datetime) -> datetime.datetime:
    """The latest start time at or before ``end`` (``known`` is one), searching back."""
    step = datetime.timedelta(hours=1)
    probe = end - step
    while probe > known:
        found = schedule.times_between(probe, end, tz)
        if found:
            return found[-1]
        step *= 2
        probe = end - step
    found = schedule.times_between(known, end, tz)
    return found[-1] if found else known


def job_name(cronjob_name: str, scheduled: datetime.datetime) -> str:
    """``<cronjob>-<scheduled time in minutes since the epoch>``."""
    return f"{cronjob_name}-{int(scheduled.timestamp()) // 60}"


def format_scheduled(scheduled: datetime.datetime) -> str:
    """RFC 3339 with the offset of ``scheduled``'s zone (``Z`` for UTC)."""
    text = scheduled.replace(microsecond=0).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def job_from_template(cronjob: Mapping[str, Any], name: str,
                      annotations: Mapping[str, str], *,
                      block_owner_deletion: bool = True) -> Obj:
    """A Job named ``name`` from ``cronjob``'s ``jobTemplate``, controlled by the CronJob.

    Its labels and annotations are the template's, plus ``annotations``
    (which win over the template's).
    """
    template = (cronjob.get("spec") or {}).get("jobTemplate") or {}
    tmeta = template.get("metadata") or {}
    meta: Obj = {"name": name, "namespace": (cronjob.get("metadata") or {}).get("namespace",
                                                                                 "default"),
                 "ownerReferences": [owner_reference(
                     cronjob, block_owner_deletion=block_owner_deletion)]}
    labels = thaw(tmeta.get("labels") or {})
    if labels:
        meta["labels"] = labels
    notes: Obj = thaw(tmeta.get("annotations") or {})
    notes.update(annotations)
    if notes:
        meta["annotations"] = notes
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
            "spec": thaw(template.get("spec") or {})}


def job_for_cronjob(cronjob: Mapping[str, Any], scheduled: datetime.datetime) -> Obj:
    """The Job ``cronjob`` starts for the start time ``scheduled`` (aware, in its zone)."""
    name = str((cronjob.get("metadata") or {}).get("name", ""))
    return job_from_template(cronjob, job_name(name, scheduled),
                             {SCHEDULED_TIMESTAMP: format_scheduled(scheduled)})


def _started(job: Mapping[str, Any]) -> tuple[float, str]:
    status = job.get("status") or {}
    meta = job.get("metadata") or {}
    t = _time(status.get("startTime"))
    if t is None:
        t = _time(meta.get("creationTimestamp")) or 0.0
    return t, str(meta.get("name", ""))


def history_to_delete(jobs: Sequence[Mapping[str, Any]], limit: int) -> list[Mapping[str, Any]]:
    """The oldest ``jobs`` beyond the newest ``limit`` (by start time, then name)."""
    if len(jobs) <= limit:
        return []
    ordered = sorted(jobs, key=_started)
    return ordered[:len(jobs) - max(limit, 0)]

