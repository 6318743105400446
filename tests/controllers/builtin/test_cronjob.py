"""The CronJob controller under a Manager, on an embedded store, with fake clocks.

No Job controller runs: the tests finish Jobs by hand (a ``Complete`` or
``Failed`` condition). T0 is 2023-11-14T22:13:20Z, so ``*/5 * * * *``
first fires 100 s later, at 22:15:00Z (Job ``<name>-28333335``).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import kvstore
from controllers.api import Clientset, Invalid
from controllers.api.objects import Obj, format_timestamp
from controllers.builtin.cronjob import CronJobController
from controllers.builtin.cronjob.decision import SCHEDULED_TIMESTAMP
from kvstore.clock import FakeClock as WallFakeClock
from kvstore.node import NodeOptions

from .test_job import T0, Env, eventually, settle

FIRST = 28333335  # minutes since the epoch of 22:15:00Z


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with kvstore.open(str(tmp_path / "s"),
                            options=NodeOptions(tick_interval=0.01, unsafe_no_fsync=True)) as n:
        wall = WallFakeClock(T0)
        api = Clientset(n, clock=wall, rng=random.Random(5))
        await api.ensure_default_namespaces()
        e = Env(api, wall)
        try:
            yield e
        finally:
            await e.stop()


def cronjob(name: str = "hello", schedule: str = "*/5 * * * *", **spec: object) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"schedule": schedule,
                     "jobTemplate": {"metadata": {"labels": {"team": "a"}},
                                     "spec": {"template": {"spec": {
                                         "restartPolicy": "Never",
                                         "containers": [{"name": "c", "image": "busybox"}]}}}},
                     **spec}}


async def jobs(env: Env, *, live: bool = True) -> list[str]:
    items = (await env.api.resource("jobs").list("default"))["items"]
    if live:
        items = [j for j in items if not j["metadata"].get("deletionTimestamp")]
    return sorted(j["metadata"]["name"] for j in items)


async def cj_status(env: Env, name: str = "hello") -> Obj:
    return dict((await env.get("cronjobs", name)).get("status") or {})


async def finish_job(env: Env, name: str, outcome: str = "Complete") -> None:
    body = await env.get("jobs", name)
    now = format_timestamp(env.wall.now())
    body["status"] = {"startTime": body["metadata"]["creationTimestamp"],
                      "conditions": [{"type": outcome, "status": "True",
                                      "lastTransitionTime": now}]}
    if outcome == "Complete":
        body["status"]["completionTime"] = now
    await env.api.resource("jobs").update_status(body)


async def have_jobs(env: Env, expected: list[str]) -> None:
    async def check() -> bool:
        return await jobs(env) == expected
    await eventually(check, f"jobs {expected}")


async def active_names(env: Env) -> list[str]:
    return sorted(r["name"] for r in (await cj_status(env)).get("active") or ())


async def test_creates_jobs_on_schedule(env: Env) -> None:
    await env.start(CronJobController())
    cj = await env.api.resource("cronjobs").create(cronjob())
    await settle()
    assert await jobs(env) == []
    env.advance(99)
    await settle()
    assert await jobs(env) == []
    env.advance(1.2)
    await have_jobs(env, [f"hello-{FIRST}"])
    job = await env.get("jobs", f"hello-{FIRST}")
    m = job["metadata"]
    assert m["annotations"] == {SCHEDULED_TIMESTAMP: "2023-11-14T22:15:00Z"}
    assert m["labels"]["team"] == "a"
    assert m["ownerReferences"] == [{"apiVersion": "batch/v1", "kind": "CronJob",
                                     "name": "hello", "uid": cj["metadata"]["uid"],
                                     "controller": True, "blockOwnerDeletion": True}]

    async def recorded() -> bool:
        st = await cj_status(env)
        return st.get("lastScheduleTime") == "2023-11-14T22:15:00Z" and \
            await active_names(env) == [f"hello-{FIRST}"]
    await eventually(recorded, "status.active and lastScheduleTime")
    ref = (await cj_status(env))["active"][0]
    assert (ref["kind"], ref["uid"]) == ("Job", m["uid"])

    async def created_event() -> bool:
        return [e["message"] for e in await env.events("SuccessfulCreate")] == [
            f"Created job hello-{FIRST}"]
    await eventually(created_event, "SuccessfulCreate event")
    # Allow (the default): the next run starts while the first still runs.
    env.advance(300)
    await have_jobs(env, [f"hello-{FIRST}", f"hello-{FIRST + 5}"])


async def test_forbid_skips_while_a_job_runs_and_records_success(env: Env) -> None:
    await env.start(CronJobController())
    await env.api.resource("cronjobs").create(cronjob(concurrencyPolicy="Forbid"))
    env.advance(100.5)
    await have_jobs(env, [f"hello-{FIRST}"])
    env.advance(300)

    async def skipped() -> bool:
        return len(await env.events("JobAlreadyActive")) == 1
    await eventually(skipped, "JobAlreadyActive")
    assert await jobs(env) == [f"hello-{FIRST}"]
    await finish_job(env, f"hello-{FIRST}")

    # The skipped 22:20 run is still the latest missed start time (no deadline): it starts
    # as soon as the running Job is seen finished, as in Kubernetes.
    async def seen() -> bool:
        st = await cj_status(env)
        return await active_names(env) == [f"hello-{FIRST + 5}"] and st.get(
            "lastSuccessfulTime") == format_timestamp(T0 + 400.5)
    await eventually(seen, "completion seen, the skipped run started")
    assert [e["message"] for e in await env.events("SawCompletedJob")] == [
        f"Saw completed job: hello-{FIRST}, status: Complete"]
    assert await jobs(env) == [f"hello-{FIRST}", f"hello-{FIRST + 5}"]
    assert (await cj_status(env))["lastScheduleTime"] == "2023-11-14T22:20:00Z"


async def test_replace_deletes_the_running_job(env: Env) -> None:
    await env.start(CronJobController())
    await env.api.resource("cronjobs").create(cronjob(concurrencyPolicy="Replace"))
    env.advance(100.5)
    await have_jobs(env, [f"hello-{FIRST}"])
    env.advance(300)
    await have_jobs(env, [f"hello-{FIRST + 5}"])

    async def replaced() -> bool:
        return await active_names(env) == [f"hello-{FIRST + 5}"]
    await eventually(replaced, "only the new job active")
    assert [e["message"] for e in await env.events("SuccessfulDelete")] == [
        f"Deleted job hello-{FIRST}"]


async def test_history_limits_delete_the_oldest_finished_jobs(env: Env) -> None:
    await env.start(CronJobController())
    await env.api.resource("cronjobs").create(
        cronjob(successfulJobsHistoryLimit=2, failedJobsHistoryLimit=1))
    env.advance(100.5)
    for i, outcome in enumerate(["Complete", "Failed", "Complete", "Failed", "Complete"]):
        name = f"hello-{FIRST + 5 * i}"
        await _wait_for(env, name)
        await finish_job(env, name, outcome)
        env.advance(300)
    succeeded = [f"hello-{FIRST + 10}", f"hello-{FIRST + 20}"]
    failed = [f"hello-{FIRST + 15}"]
    running = [f"hello-{FIRST + 25}"]
    await have_jobs(env, sorted(succeeded + failed + running))


async def _wait_for(env: Env, name: str) -> None:
    async def there() -> bool:
        return name in await jobs(env)
    await eventually(there, f"job {name}")


async def test_suspend_starts_nothing(env: Env) -> None:
    await env.start(CronJobController())
    await env.api.resource("cronjobs").create(cronjob(suspend=True))
    env.advance(1000)
    await settle()
    assert await jobs(env) == []
    await env.api.resource("cronjobs").patch("hello", "default", {"spec": {"suspend": False}})
    # On resume the most recent missed time (22:30) starts at once.
    await have_jobs(env, [f"hello-{FIRST + 15}"])


async def test_missed_times_start_only_the_most_recent(env: Env) -> None:
    await env.api.resource("cronjobs").create(cronjob())
    env.wall.advance(3600)  # the controller was down for an hour: 12 start times missed
    await env.start(CronJobController())
    await have_jobs(env, [f"hello-{FIRST + 55}"])
    await settle()
    assert await jobs(env) == [f"hello-{FIRST + 55}"]


async def test_too_many_missed_times_stop_scheduling(env: Env) -> None:
    await env.api.resource("cronjobs").create(cronjob(schedule="* * * * *"))
    env.wall.advance(200 * 60)
    await env.start(CronJobController())

    async def warned() -> bool:
        return len(await env.events("TooManyMissedTimes")) == 1
    await eventually(warned, "TooManyMissedTimes")
    assert await jobs(env) == []


async def test_starting_deadline_limits_what_counts_as_missed(env: Env) -> None:
    await env.api.resource("cronjobs").create(
        cronjob(name="late", schedule="* * * * *", startingDeadlineSeconds=120))
    await env.api.resource("cronjobs").create(
        cronjob(name="hourly", schedule="0 * * * *", startingDeadlineSeconds=60))
    env.wall.advance(200 * 60)  # 2023-11-15T01:33:20Z
    await env.start(CronJobController())
    # Within the deadline: only the last 2 minutes count, the latest starts.
    minute = int(T0 + 200 * 60) // 60
    await have_jobs(env, [f"late-{minute}"])
    await settle()
    # The hourly one's last start (01:00) is past its 60 s deadline: nothing starts...
    assert await jobs(env) == [f"late-{minute}"]
    assert await env.events("TooManyMissedTimes") == []
    # ...until the next hour.
    env.advance(26 * 60 + 41)
    await _wait_for(env, f"hourly-{int(T0 + 200 * 60 + 26 * 60 + 40) // 60}")


async def test_time_zone_and_invalid_zone(env: Env) -> None:
    await env.start(CronJobController())
    await env.api.resource("cronjobs").create(
        cronjob(name="ny", schedule="20 17 * * *", timeZone="America/New_York"))
    await env.api.resource("cronjobs").create(
        cronjob(name="bad", schedule="* * * * *", timeZone="Mars/Olympus"))
    # A schedule the parser cannot read never gets stored.
    with pytest.raises(Invalid, match="unknown macro"):
        await env.api.resource("cronjobs").create(cronjob(name="every", schedule="@every 5m"))

    async def warned() -> bool:
        return len(await env.events("UnknownTimeZone")) == 1
    await eventually(warned, "UnknownTimeZone")
    env.advance(400.5)  # 17:20 in New York is 22:20Z
    await have_jobs(env, [f"ny-{FIRST + 5}"])
    job = await env.get("jobs", f"ny-{FIRST + 5}")
    assert job["metadata"]["annotations"][SCHEDULED_TIMESTAMP] == "2023-11-14T17:20:00-05:00"
    assert await jobs(env) == [f"ny-{FIRST + 5}"]


async def test_missing_active_job_is_dropped(env: Env) -> None:
    await env.start(CronJobController())
    await env.api.resource("cronjobs").create(cronjob(concurrencyPolicy="Forbid"))
    env.advance(100.5)
    await have_jobs(env, [f"hello-{FIRST}"])

    async def active() -> bool:
        return await active_names(env) == [f"hello-{FIRST}"]
    await eventually(active, "active")
    await env.api.resource("jobs").delete(f"hello-{FIRST}", "default")

    async def dropped() -> bool:
        return await active_names(env) == []
    await eventually(dropped, "gone from status.active")
    env.advance(300)
    await have_jobs(env, [f"hello-{FIRST + 5}"])
