"""The CronJob controller: starts Jobs on a cron schedule, as kube-controller-manager's does.

Keys are ``namespace/name`` of CronJobs; a Job's events go to the CronJob
named by its controller reference. One ``reconcile``, on the clientset's
wall clock:

1. brings ``status.active`` up to date: Jobs that finished leave it (a
   ``SawCompletedJob`` event; a completed one moves ``lastSuccessfulTime``),
   Jobs that are gone leave it (``MissingJob``), running Jobs it controls
   join it;
2. deletes the oldest finished Jobs beyond ``successfulJobsHistoryLimit``
   (3) and ``failedJobsHistoryLimit`` (1), with ``Background`` propagation;
3. stops there if the CronJob is being deleted, is suspended, has an
   unknown ``spec.timeZone`` (``UnknownTimeZone``) or a schedule that does
   not parse (``UnparseableSchedule``);
4. finds the most recent start time missed since ``lastScheduleTime`` (or
   creation), within ``startingDeadlineSeconds`` when set. More than 100
   missed start times stop scheduling (``TooManyMissedTimes``). With
   ``concurrencyPolicy`` Forbid a running Job skips the start
   (``JobAlreadyActive``); with Replace the running Jobs are deleted first;
5. creates the Job ``<cronjob>-<scheduled minutes since the epoch>`` from
   ``jobTemplate``, annotated ``batch.kubernetes.io/cronjob-scheduled-timestamp``
   and controlled by the CronJob, adds it to ``status.active`` and sets
   ``lastScheduleTime``. A Job of that name already there is not created
   again.

It then asks to look again at the next start time (never sleeping). The
schedule is read in ``spec.timeZone`` (UTC when unset).
"""

from __future__ import annotations

import datetime
import logging
import zoneinfo
from collections.abc import Mapping, Sequence
from typing import Any

from controllers.api.errors import AlreadyExists, ApiError, Conflict, NotFound
from controllers.api.objects import Obj, format_timestamp, parse_timestamp
from controllers.builtin.cronjob.decision import (
    MAX_MISSED,
    earliest_time,
    history_to_delete,
    job_for_cronjob,
    job_name,
    missed_schedule,
)
from controllers.builtin.cronjob.schedule import ScheduleError, parse_schedule
from controllers.builtin.job_state import COMPLETE, FAILED, has_condition, is_finished
from controllers.builtin.podutil import controller_ref
from controllers.controller import DONE, ControllerContext, Result, requeue_after
from controllers.informers.fifo import DeletedFinalStateUnknown
from controllers.informers.shared_informer import (
    ResourceEventHandlerFuncs,
    SharedInformer,
)
from controllers.informers.store import (
    meta_namespace_key_func,
    object_meta,
    object_name,
    object_namespace,
    split_meta_namespace_key,
    thaw,
)

__all__ = ["NEXT_SCHEDULE_DELTA", "CronJobController", "job_reference"]

_log = logging.getLogger(__name__)

NEXT_SCHEDULE_DELTA = 0.1
"""Seconds added to the wait for the next start time, so the clock has surely passed it."""

_UTC = datetime.UTC


def job_reference(job: Mapping[str, Any]) -> Obj:
    """The object reference to ``job`` that ``status.active`` holds."""
    meta = object_meta(job)
    return {"apiVersion": "batch/v1", "kind": "Job", "name": str(meta.get("name", "")),
            "namespace": str(meta.get("namespace", "")), "uid": str(meta.get("uid", "")),
            "resourceVersion": str(meta.get("resourceVersion", ""))}


def _time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


class CronJobController:
    """Starts Jobs on schedule (see the module docstring)."""

    name = "cronjob"
    event_source = "cronjob-controller"
    informers: Sequence[str] = ("cronjobs", "jobs")

    def __init__(self) -> None:
        self._context: ControllerContext | None = None
        self._cronjobs: SharedInformer | None = None
        self._jobs: SharedInformer | None = None

    def setup(self, context: ControllerContext) -> None:
        self._context = context
        self._cronjobs = context.informer("cronjobs")
        self._jobs = context.informer("jobs")

        def enqueue(obj: Any) -> None:
            if isinstance(obj, DeletedFinalStateUnknown):
                context.enqueue(obj.key)
            else:
                context.enqueue(meta_namespace_key_func(obj))

        self._cronjobs.add_event_handler(ResourceEventHandlerFuncs(
            add=lambda obj, _initial: enqueue(obj), update=lambda _old, new: enqueue(new),
            delete=enqueue))
        self._jobs.add_event_handler(ResourceEventHandlerFuncs(
            add=lambda obj, _initial: self._job_changed(obj),
            update=self._job_updated, delete=self._job_changed))

    def _parts(self) -> tuple[ControllerContext, SharedInformer, SharedInformer]:
        if self._context is None or self._cronjobs is None or self._jobs is None:
            raise RuntimeError("the CronJob controller is used before setup")
        return self._context, self._cronjobs, self._jobs

    def _job_updated(self, old: Any, new: Any) -> None:
        if controller_ref(old) != controller_ref(new):
            self._job_changed(old)
        self._job_changed(new)

    def _job_changed(self, obj: Any) -> None:
        job = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        if not isinstance(job, Mapping):
            return
        ref = controller_ref(job)
        if ref is not None and ref.get("kind") == "CronJob":
            self._parts()[0].enqueue(f"{object_namespace(job)}/{ref.get('name', '')}")

    # -- reconcile ---------------------------------------------------------------------
    async def reconcile(self, key: str) -> Result | None:
        context, cronjobs, jobs_informer = self._parts()
        namespace, name = split_meta_namespace_key(key)
        try:
            cj = cronjobs.lister().get(namespace, name)
        except NotFound:
            return DONE
        now = context.clientset.clock.now()
        uid = object_meta(cj).get("uid")
        jobs = sorted((j for j in jobs_informer.lister().list(namespace=namespace)
                       if (controller_ref(j) or {}).get("uid") == uid), key=object_name)
        status: Obj = thaw(cj.get("status") or {})
        old_status: Obj = thaw(status)
        active = await self._sync_active(cj, jobs, status)
        await self._clean_history(cj, jobs)
        try:
            return await self._schedule(cj, status, active, now)
        finally:
            status["active"] = active
            if not active:
                status.pop("active")
            if status != old_status:
                await self._update_status(cj, status)

    async def _sync_active(self, cj: Mapping[str, Any], jobs: Sequence[Mapping[str, Any]],
                           status: Obj) -> list[Obj]:
        """The new ``status.active``; records completions in ``status`` (see step 1)."""
        context = self._parts()[0]
        by_uid = {str(object_meta(j).get("uid")): j for j in jobs}
        refs = [r for r in status.get("active") or () if isinstance(r, Mapping)]
        listed = {str(r.get("uid")) for r in refs}
        active: list[Obj] = []
        for ref in refs:
            job = by_uid.get(str(ref.get("uid")))
            if job is None:
                try:
                    fresh = await context.clientset.resource("jobs").get(
                        str(ref.get("name", "")), object_namespace(cj))
                except NotFound:
                    fresh = None
                if fresh is None or fresh["metadata"].get("uid") != ref.get("uid"):
                    context.recorder.event(cj, "Normal", "MissingJob",
                                           f"Active job went missing: {ref.get('name')}")
                    continue
                job = fresh
            if is_finished(job):
                outcome = COMPLETE if has_condition(job, COMPLETE) else FAILED
                context.recorder.event(cj, "Normal", "SawCompletedJob",
                                       f"Saw completed job: {object_name(job)}, "
                                       f"status: {outcome}")
                continue
            active.append(thaw(ref))
        for job in jobs:
            job_uid = str(object_meta(job).get("uid"))
            if not is_finished(job) and job_uid not in listed:
                active.append(job_reference(job))
            if has_condition(job, COMPLETE):
                done = _time((job.get("status") or {}).get("completionTime"))
                last = _time(status.get("lastSuccessfulTime"))
                if done is not None and (last is None or done > last):
                    status["lastSuccessfulTime"] = format_timestamp(done)
        return active

    async def _clean_history(self, cj: Mapping[str, Any],
                             jobs: Sequence[Mapping[str, Any]]) -> None:
        """Delete finished Jobs beyond the history limits (step 2)."""
        spec = cj.get("spec") or {}
        succeeded = [j for j in jobs if has_condition(j, COMPLETE)]
        failed = [j for j in jobs if has_condition(j, FAILED) and not has_condition(j, COMPLETE)]
        doomed: list[Mapping[str, Any]] = []
        for group, field, default in ((succeeded, "successfulJobsHistoryLimit", 3),
                                      (failed, "failedJobsHistoryLimit", 1)):
            limit = spec.get(field)
            if not isinstance(limit, int) or isinstance(limit, bool):
                limit = default
            doomed += history_to_delete([j for j in group
                                         if not object_meta(j).get("deletionTimestamp")], limit)
        for job in doomed:
            await self._delete_job(cj, job)

    async def _delete_job(self, cj: Mapping[str, Any], job: Mapping[str, Any]) -> bool:
        context = self._parts()[0]
        name = object_name(job)
        try:
            await context.clientset.resource("jobs").delete(
                name, object_namespace(job), propagation_policy="Background",
                uid=str(object_meta(job).get("uid", "")) or None)
        except (NotFound, Conflict):
            return False
        except ApiError as e:
            context.recorder.event(cj, "Warning", "FailedDelete", f"Error deleting job: {e}")
            raise
        context.recorder.event(cj, "Normal", "SuccessfulDelete", f"Deleted job {name}")
        return True

    async def _schedule(self, cj: Mapping[str, Any], status: Obj, active: list[Obj],
                        now: float) -> Result:
        """Steps 3 to 5: maybe start a Job; say when to look again."""
        context = self._parts()[0]
        spec = cj.get("spec") or {}
        if object_meta(cj).get("deletionTimestamp"):
            return DONE
        zone_name = spec.get("timeZone")
        tz: datetime.tzinfo = _UTC
        if zone_name:
            try:
                tz = zoneinfo.ZoneInfo(str(zone_name))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError) as e:
                context.recorder.event(cj, "Warning", "UnknownTimeZone",
                                       f"invalid timeZone: {zone_name!r}: {e}")
                return DONE
        text = str(spec.get("schedule", ""))
        try:
            schedule = parse_schedule(text)
        except ScheduleError as e:
            context.recorder.event(cj, "Warning", "UnparseableSchedule",
                                   f"unparseable schedule: {text!r} : {e}")
            return DONE
        if spec.get("suspend") is True:
            return DONE
        now_dt = datetime.datetime.fromtimestamp(now, _UTC)
        next_time = schedule.next_after(now_dt, tz)
        wait = (None if next_time is None
                else requeue_after(next_time.timestamp() - now + NEXT_SCHEDULE_DELTA))
        scheduled, missed = missed_schedule(schedule, earliest_time(cj, now), now, tz)
        if missed > MAX_MISSED:
            context.recorder.event(cj, "Warning", "TooManyMissedTimes",
                                   f"too many missed start times (> {MAX_MISSED}). Set or "
                                   "decrease .spec.startingDeadlineSeconds or check clock skew")
            return DONE
        if scheduled is None:
            return wait or DONE
        deadline = spec.get("startingDeadlineSeconds")
        if isinstance(deadline, int) and scheduled.timestamp() + deadline < now:
            context.recorder.event(cj, "Warning", "MissSchedule",
                                   "Missed scheduled time to start a job: "
                                   f"{format_timestamp(scheduled.timestamp())}")
            return wait or DONE
        name = job_name(object_name(cj), scheduled)
        if any(r.get("name") == name for r in active):
            return wait or DONE
        policy = spec.get("concurrencyPolicy", "Allow")
        if policy == "Forbid" and active:
            context.recorder.event(cj, "Normal", "JobAlreadyActive",
                                   "Not starting job because prior execution is running and "
                                   "concurrency policy is Forbid")
            return wait or DONE
        if policy == "Replace" and active:
            for ref in list(active):
                await self._delete_job(cj, {"metadata": {"name": ref.get("name"),
                                                         "namespace": object_namespace(cj),
                                                         "uid": ref.get("uid")}})
                active.remove(ref)
        created = await self._create_job(cj, scheduled)
        if created is not None:
            if not is_finished(created) and all(r.get("uid") != object_meta(created).get("uid")
                                                for r in active):
                active.append(job_reference(created))
            status["lastScheduleTime"] = format_timestamp(scheduled.timestamp())
        return wait or DONE

    async def _create_job(self, cj: Mapping[str, Any],
                          scheduled: datetime.datetime) -> Mapping[str, Any] | None:
        """Create the Job for ``scheduled``; the one already there if it is ours."""
        context = self._parts()[0]
        client = context.clientset.resource("jobs")
        body = job_for_cronjob(cj, scheduled)
        name = body["metadata"]["name"]
        try:
            created = await client.create(body)
        except AlreadyExists:
            try:
                existing = await client.get(name, object_namespace(cj))
            except NotFound:
                return None
            if (controller_ref(existing) or {}).get("uid") == object_meta(cj).get("uid"):
                return existing
            context.recorder.event(cj, "Warning", "FailedCreate",
                                   f"Error creating job: a job named {name} already exists "
                                   "and is not controlled by this cronjob")
            return None
        except ApiError as e:
            context.recorder.event(cj, "Warning", "FailedCreate", f"Error creating job: {e}")
            raise
        context.recorder.event(cj, "Normal", "SuccessfulCreate", f"Created job {name}")
        return created

    async def _update_status(self, cj: Mapping[str, Any], status: Obj) -> None:
        """Write ``status``, reading the CronJob again once on a conflict."""
        client = self._parts()[0].clientset.resource("cronjobs")
        body: Obj = thaw(cj)
        for attempt in range(2):
            body["status"] = status
            try:
                await client.update_status(body)
                return
            except NotFound:
                return
            except Conflict:
                if attempt:
                    raise
                body = await client.get(object_name(cj), object_namespace(cj))
