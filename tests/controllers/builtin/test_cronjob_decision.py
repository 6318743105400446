"""The CronJob controller's pure decisions: missed start times, Job names and bodies, history."""

from __future__ import annotations

import datetime
import zoneinfo
from typing import Any

from controllers.api.objects import format_timestamp
from controllers.builtin.cronjob.decision import (
    MAX_MISSED,
    SCHEDULED_TIMESTAMP,
    earliest_time,
    format_scheduled,
    history_to_delete,
    job_for_cronjob,
    job_name,
    missed_schedule,
)
from controllers.builtin.cronjob.schedule import parse_schedule
from controllers.informers.store import freeze

UTC = datetime.UTC
T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def cronjob(**spec: object) -> dict[str, object]:
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "hello", "namespace": "ns", "uid": "u-1",
                         "creationTimestamp": format_timestamp(T0)},
            "spec": {"schedule": "*/5 * * * *",
                     "jobTemplate": {"metadata": {"labels": {"team": "a"},
                                                  "annotations": {"note": "x"}},
                                     "spec": {"template": {"spec": {"containers": []}}}},
                     **spec}}


def test_job_name_is_minutes_since_epoch() -> None:
    scheduled = datetime.datetime(2023, 11, 14, 22, 15, tzinfo=UTC)
    assert job_name("hello", scheduled) == "hello-28333335"
    ny = scheduled.astimezone(zoneinfo.ZoneInfo("America/New_York"))
    assert job_name("hello", ny) == "hello-28333335"


def test_format_scheduled() -> None:
    scheduled = datetime.datetime(2023, 11, 14, 22, 15, tzinfo=UTC)
    assert format_scheduled(scheduled) == "2023-11-14T22:15:00Z"
    ny = scheduled.astimezone(zoneinfo.ZoneInfo("America/New_York"))
    assert format_scheduled(ny) == "2023-11-14T17:15:00-05:00"


def test_earliest_time() -> None:
    assert earliest_time(cronjob(), T0 + 1000) == T0
    with_last = {**cronjob(), "status": {"lastScheduleTime": format_timestamp(T0 + 600)}}
    assert earliest_time(with_last, T0 + 1000) == T0 + 600
    assert earliest_time(cronjob(startingDeadlineSeconds=100), T0 + 1000) == T0 + 900
    assert earliest_time(cronjob(startingDeadlineSeconds=5000), T0 + 1000) == T0


def test_missed_schedule_counts_and_picks_the_latest() -> None:
    s = parse_schedule("*/5 * * * *")
    latest, count = missed_schedule(s, T0, T0 + 99)
    assert (latest, count) == (None, 0)
    latest, count = missed_schedule(s, T0, T0 + 100)
    assert latest is not None and latest.timestamp() == T0 + 100 and count == 1
    latest, count = missed_schedule(s, T0, T0 + 100 + 3600)
    assert latest is not None and latest.timestamp() == T0 + 100 + 3600 and count == 13


def test_missed_schedule_stops_counting_past_the_limit() -> None:
    s = parse_schedule("* * * * *")
    now = T0 + 500 * 60
    latest, count = missed_schedule(s, T0, now)
    assert count == MAX_MISSED + 1
    assert latest is not None and latest.timestamp() == (now // 60) * 60
    sparse = parse_schedule("0 0 1 1 *")
    latest, count = missed_schedule(sparse, T0 - 200 * 366 * 86400, T0)
    assert count == MAX_MISSED + 1
    assert latest is not None and latest.isoformat() == "2023-01-01T00:00:00+00:00"


def test_job_for_cronjob() -> None:
    scheduled = datetime.datetime(2023, 11, 14, 22, 15, tzinfo=UTC)
    body = job_for_cronjob(freeze(cronjob()), scheduled)
    assert body == {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "hello-28333335", "namespace": "ns",
                     "labels": {"team": "a"},
                     "annotations": {"note": "x", SCHEDULED_TIMESTAMP: "2023-11-14T22:15:00Z"},
                     "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob",
                                          "name": "hello", "uid": "u-1", "controller": True,
                                          "blockOwnerDeletion": True}]},
        "spec": {"template": {"spec": {"containers": []}}}}


def finished_job(name: str, start: float) -> dict[str, Any]:
    return {"metadata": {"name": name, "creationTimestamp": format_timestamp(0)},
            "status": {"startTime": format_timestamp(start)}}


def test_history_to_delete_takes_the_oldest() -> None:
    jobs: list[dict[str, Any]] = [finished_job("c", T0 + 30), finished_job("a", T0 + 10), finished_job("b", T0 + 20),
            {"metadata": {"name": "d", "creationTimestamp": format_timestamp(T0 + 5)}}]
    assert [j["metadata"]["name"] for j in history_to_delete(jobs, 2)] == ["d", "a"]
    assert history_to_delete(jobs, 4) == []
    assert len(history_to_delete(jobs, 0)) == 4
