"""The Job controller: runs a Job's pods to completion, as kube-controller-manager's does.

Keys are ``namespace/name`` of Jobs; a pod's events go to the Job named by
its controller reference. The Job's selector and pod labels
(``controller-uid``, ``job-name`` and their ``batch.kubernetes.io/`` twins)
are set when the Job is created (``controllers.api.defaults``); the pods
this controller counts are those the Job controls. One ``reconcile``:

1. a finished Job (condition ``Complete`` or ``Failed``) only waits for
   ``ttlSecondsAfterFinished``: once it has passed since the Job finished
   (on the clientset's wall clock), the Job is deleted with ``Background``
   propagation and the garbage collector removes its pods;
2. counts the pods: ``succeeded`` and ``failed`` never go down (a finished
   pod deleted by someone else stays counted), an Indexed Job's
   ``completedIndexes`` is the union of what was recorded and the indexes
   of succeeded pods;
3. fails the Job when it has more failed pods than ``backoffLimit``
   (``OnFailure``: container restarts reach it) -- reason
   ``BackoffLimitExceeded`` -- or when it has been active (since
   ``startTime``, not suspended) longer than ``activeDeadlineSeconds`` --
   ``DeadlineExceeded``; its active pods are deleted;
4. completes it once enough pods succeeded (NonIndexed with
   ``completions``: that many; a work queue without: one, and no pod
   active; Indexed: every index), deleting pods still active;
5. with ``suspend`` deletes every active pod and sets ``Suspended``; on
   resume ``Suspended`` turns False and ``startTime`` restarts;
6. otherwise, when its expectations are met, starts or stops pods:
   NonIndexed up to ``min(parallelism, completions - succeeded)``; Indexed
   one pod per pending index, at most ``parallelism`` at once, each pod
   labelled and annotated ``batch.kubernetes.io/job-completion-index``,
   with ``JOB_COMPLETION_INDEX`` in every container's environment and
   hostname ``<job>-<index>``. After a failure new pods wait out an
   exponential back-off (10 s doubling, at most 6 minutes, from the last
   failure since the last success);
7. writes ``active``, ``ready``, ``succeeded``, ``failed``,
   ``startTime``, ``completionTime``, ``completedIndexes`` and the
   conditions when they changed.

It asks to look again when the deadline, the back-off, the TTL or pending
expectations run out. Events: ``SuccessfulCreate``/``SuccessfulDelete``
(pods), ``Completed``, ``BackoffLimitExceeded``, ``DeadlineExceeded``,
``Suspended``, ``Resumed``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controllers.api.errors import Conflict, Forbidden, NotFound
from controllers.api.objects import Obj, format_timestamp, parse_timestamp
from controllers.builtin.expectations import (
    EXPECTATIONS_TIMEOUT,
    UIDTrackingControllerExpectations,
)
from controllers.builtin.job_state import (
    COMPLETE,
    COMPLETION_INDEX,
    FAILED,
    SUSPENDED,
    backoff_delay,
    conditions_with,
    failure_reason,
    failures_after_last_success,
    finish_time,
    finished_time,
    format_index_ranges,
    has_condition,
    is_complete,
    is_finished,
    parse_index_ranges,
    pending_indexes,
    pod_index,
    want_active,
)
from controllers.builtin.pod_control import PodControl, RealPodControl
from controllers.builtin.podutil import (
    controller_ref,
    is_pod_active,
    is_pod_ready,
    owner_reference,
)
from controllers.builtin.replicaset import (
    BURST_REPLICAS,
    pods_to_delete,
    slow_start_batch,
)
from controllers.controller import (
    DONE,
    REQUEUE,
    ControllerContext,
    Result,
    requeue_after,
)
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
    object_resource_version,
    split_meta_namespace_key,
    thaw,
)

__all__ = [
    "COMPLETION_INDEX_ENV",
    "JobController",
    "indexed_pod_generate_name",
    "indexed_pod_template",
]

_log = logging.getLogger(__name__)

COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
"""The environment variable giving an Indexed Job's pod its index."""

PodControlFactory = Callable[[ControllerContext], PodControl]


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What one round of starting or stopping pods did."""

    created: int = 0
    deleted: int = 0
    wait: float = 0.0      # seconds of back-off left before pods may be created
    failed: bool = False   # a create failed


GENERATE_NAME_PREFIX_MAX = 63 - 5
"""The longest ``generateName`` whose generated names fit a DNS-1123 label."""


def indexed_pod_generate_name(job_name: str, index: int) -> str:
    """The ``generateName`` of index ``index``'s pods: ``<job>-<index>-``, as Kubernetes names them.

    The job name is cut short so that the prefix plus the five-character
    random suffix still fits a 63-character label.
    """
    tail = f"-{index}-"
    return job_name[:GENERATE_NAME_PREFIX_MAX - len(tail)] + tail


def indexed_pod_template(template: Mapping[str, Any], job_name: str, index: int) -> Obj:
    """The pod template of index ``index`` of the Indexed Job ``job_name`` (a mutable copy)."""
    out: Obj = thaw(template)
    meta = out.setdefault("metadata", {})
    meta.setdefault("annotations", {})[COMPLETION_INDEX] = str(index)
    meta.setdefault("labels", {})[COMPLETION_INDEX] = str(index)
    spec = out.setdefault("spec", {})
    spec["hostname"] = f"{job_name}-{index}"
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or ():
            env = [e for e in container.get("env") or () if e.get("name") != COMPLETION_INDEX_ENV]
            env.append({"name": COMPLETION_INDEX_ENV, "value": str(index)})
            container["env"] = env
    return out


def _int(value: Any, default: int | None) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _restarts(pods: Sequence[Mapping[str, Any]]) -> int:
    total = 0
    for pod in pods:
        status = pod.get("status") or {}
        for key in ("initContainerStatuses", "containerStatuses"):
            for cs in status.get(key) or ():
                total += _int(cs.get("restartCount"), 0) or 0
    return total


class JobController:
    """Runs Jobs' pods to completion (see the module docstring)."""

    name = "job"
    event_source = "job-controller"
    informers: Sequence[str] = ("jobs", "pods")

    def __init__(self, *, burst_pods: int = BURST_REPLICAS,
                 expectations_ttl: float = EXPECTATIONS_TIMEOUT,
                 pod_control_factory: PodControlFactory | None = None) -> None:
        if burst_pods < 1:
            raise ValueError("burst_pods must be at least 1")
        self.burst_pods = burst_pods
        self.expectations_ttl = expectations_ttl
        self._pod_control_factory = pod_control_factory
        self._context: ControllerContext | None = None
        self._jobs: SharedInformer | None = None
        self._pods: SharedInformer | None = None
        self.pod_control: PodControl | None = None
        self.expectations: UIDTrackingControllerExpectations | None = None
        # When this controller first saw each finished pod without a finish time, per Job key.
        self._seen_finished: dict[str, dict[str, float]] = {}

    # -- handlers ----------------------------------------------------------------------
    def setup(self, context: ControllerContext) -> None:
        self._context = context
        self._jobs = context.informer("jobs")
        self._pods = context.informer("pods")
        self.expectations = UIDTrackingControllerExpectations(
            context.clientset.clock, ttl_seconds=self.expectations_ttl)
        self.pod_control = (self._pod_control_factory(context) if self._pod_control_factory
                            else RealPodControl(context.clientset, context.recorder))
        self._seen_finished = {}
        self._jobs.add_event_handler(ResourceEventHandlerFuncs(
            add=lambda obj, _initial: context.enqueue(meta_namespace_key_func(obj)),
            update=self._update_job, delete=self._delete_job))
        self._pods.add_event_handler(ResourceEventHandlerFuncs(
            add=lambda obj, _initial: self._add_pod(obj), update=self._update_pod,
            delete=self._delete_pod))

    def _parts(self) -> tuple[ControllerContext, SharedInformer, SharedInformer,
                              UIDTrackingControllerExpectations, PodControl]:
        if (self._context is None or self._jobs is None or self._pods is None
                or self.expectations is None or self.pod_control is None):
            raise RuntimeError("the Job controller is used before setup")
        return self._context, self._jobs, self._pods, self.expectations, self.pod_control

    def _update_job(self, old: Any, new: Any) -> None:
        if object_meta(old).get("uid") != object_meta(new).get("uid"):
            self._delete_job(DeletedFinalStateUnknown(meta_namespace_key_func(old), old))
        self._parts()[0].enqueue(meta_namespace_key_func(new))

    def _delete_job(self, obj: Any) -> None:
        context, _, _, expectations, _ = self._parts()
        key = obj.key if isinstance(obj, DeletedFinalStateUnknown) else meta_namespace_key_func(obj)
        expectations.delete_expectations(key)
        self._seen_finished.pop(key, None)
        context.enqueue(key)

    def _job_key_of(self, pod: Mapping[str, Any]) -> str | None:
        """The key of the cached Job controlling ``pod``, if it exists."""
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "Job":
            return None
        namespace = object_namespace(pod)
        try:
            job = self._parts()[1].lister().get(namespace, str(ref.get("name", "")))
        except NotFound:
            return None
        if object_meta(job).get("uid") != ref.get("uid"):
            return None
        return meta_namespace_key_func(job)

    def _add_pod(self, pod: Any) -> None:
        if object_meta(pod).get("deletionTimestamp"):
            self._delete_pod(pod)
            return
        key = self._job_key_of(pod)
        if key is not None:
            context, _, _, expectations, _ = self._parts()
            expectations.creation_observed(key)
            context.enqueue(key)

    def _update_pod(self, old: Any, cur: Any) -> None:
        if object_resource_version(old) == object_resource_version(cur):
            return
        if object_meta(cur).get("deletionTimestamp"):
            self._delete_pod(cur)
            return
        context = self._parts()[0]
        for pod in (old, cur) if controller_ref(old) != controller_ref(cur) else (cur,):
            key = self._job_key_of(pod)
            if key is not None:
                context.enqueue(key)

    def _delete_pod(self, obj: Any) -> None:
        pod = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        if not isinstance(pod, Mapping):
            return
        key = self._job_key_of(pod)
        if key is not None:
            context, _, _, expectations, _ = self._parts()
            expectations.deletion_observed(key, meta_namespace_key_func(pod))
            context.enqueue(key)

    # -- reconcile ---------------------------------------------------------------------
    async def reconcile(self, key: str) -> Result | None:
        context, jobs, pods_informer, expectations, _ = self._parts()
        namespace, name = split_meta_namespace_key(key)
        try:
            job = jobs.lister().get(namespace, name)
        except NotFound:
            expectations.delete_expectations(key)
            self._seen_finished.pop(key, None)
            return DONE
        now = context.clientset.clock.now()
        needs_sync = expectations.satisfied(key)
        uid = object_meta(job).get("uid")
        pods = [p for p in pods_informer.lister().list(namespace=namespace)
                if (controller_ref(p) or {}).get("uid") == uid]
        if is_finished(job):
            leftover = [p for p in pods if is_pod_active(p)]
            if leftover and needs_sync:
                # An earlier delete failed: a finished Job keeps no pods running.
                await self._delete_pods(key, job, leftover)
            return await self._maybe_expire(job, now)
        if object_meta(job).get("deletionTimestamp"):
            return DONE
        spec = job.get("spec") or {}
        status: Obj = thaw(job.get("status") or {})
        old_status: Obj = thaw(status)
        template = spec.get("template") or {}
        parallelism = _int(spec.get("parallelism"), 1) or 0
        completions = _int(spec.get("completions"), None)
        backoff_limit = _int(spec.get("backoffLimit"), 6) or 0
        deadline = _int(spec.get("activeDeadlineSeconds"), None)
        indexed = spec.get("completionMode") == "Indexed"
        suspended = spec.get("suspend") is True
        on_failure = (template.get("spec") or {}).get("restartPolicy") == "OnFailure"

        active = [p for p in pods if is_pod_active(p)]
        succeeded_pods = [p for p in pods if (p.get("status") or {}).get("phase") == "Succeeded"]
        failed_pods = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
        completed: list[int] = []
        if indexed and completions is not None:
            completed = sorted(set(parse_index_ranges(status.get("completedIndexes"),
                                                      completions))
                               | {i for p in succeeded_pods
                                  if (i := pod_index(p)) is not None and i < completions})
            succeeded = len(completed)
        else:
            succeeded = max(_int(status.get("succeeded"), 0) or 0, len(succeeded_pods))
        failed = max(_int(status.get("failed"), 0) or 0, len(failed_pods))

        conditions = [c for c in status.get("conditions") or () if isinstance(c, dict)]
        if not suspended and not status.get("startTime"):
            status["startTime"] = format_timestamp(now)
        if suspended:
            if not has_condition(job, SUSPENDED):
                conditions = conditions_with(conditions, SUSPENDED, "True", "JobSuspended",
                                             "Job suspended", now)
                context.recorder.event(job, "Normal", "Suspended", "Job suspended")
        elif has_condition(job, SUSPENDED):
            conditions = conditions_with(conditions, SUSPENDED, "False", "JobResumed",
                                         "Job resumed", now)
            status["startTime"] = format_timestamp(now)
            context.recorder.event(job, "Normal", "Resumed", "Job resumed")

        start = _timestamp(status.get("startTime"))
        deadline_in = (None if deadline is None or suspended or start is None
                       else start + deadline - now)
        failure = failure_reason(failed=failed, restarts=_restarts(active) if on_failure else None,
                                 backoff_limit=backoff_limit, deadline_in=deadline_in)
        complete = failure is None and is_complete(completions, succeeded, len(active))

        waits: list[float] = []
        deleted = created = 0
        create_failed = False
        if failure is not None or complete or suspended:
            if active:
                deleted = await self._delete_pods(key, job, active)
            if failure is not None:
                conditions = conditions_with(conditions, FAILED, "True", failure.reason,
                                             failure.message, now)
                context.recorder.event(job, "Warning", failure.reason, failure.message)
            elif complete:
                conditions = conditions_with(conditions, COMPLETE, "True", "CompletionsReached",
                                             "Reached expected number of succeeded pods", now)
                status["completionTime"] = format_timestamp(now)
                context.recorder.event(job, "Normal", "Completed", "Job completed")
        elif needs_sync:
            delay = self._backoff(key, succeeded_pods, failed_pods, now)
            if indexed and completions is not None:
                outcome = await self._manage_indexed(key, job, active, completed, completions,
                                                     parallelism, delay)
            else:
                want = want_active(parallelism, completions, succeeded, len(active))
                outcome = await self._manage(key, job, active, want, delay)
            created, deleted, create_failed = outcome.created, outcome.deleted, outcome.failed
            if outcome.wait > 0:
                waits.append(outcome.wait)
        if deadline_in is not None and deadline_in > 0 and failure is None and not complete:
            waits.append(deadline_in)

        status.update(active=max(0, len(active) + created - deleted),
                      ready=sum(1 for p in active if is_pod_ready(p)),
                      succeeded=succeeded, failed=failed)
        if indexed and completed:
            status["completedIndexes"] = format_index_ranges(completed)
        if conditions:
            status["conditions"] = conditions
        if status != old_status:
            await self._update_status(job, status)
        if failure is not None or complete:
            finished = thaw(job)
            finished["status"] = status
            return await self._maybe_expire(finished, now)
        if not expectations.satisfied(key):
            expires = expectations.expires_in(key)
            if expires is not None and expires > 0:
                waits.append(expires)
        if create_failed:
            return REQUEUE
        return requeue_after(min(waits)) if waits else DONE

    def _backoff(self, key: str, succeeded: Sequence[Mapping[str, Any]],
                 failed: Sequence[Mapping[str, Any]], now: float) -> float:
        """Seconds new pods must still wait after the Job's recent failures."""
        seen = self._seen_finished.setdefault(key, {})

        def when(pod: Mapping[str, Any]) -> float:
            t = finished_time(pod)
            if t is not None:
                return t
            return seen.setdefault(str(object_meta(pod).get("uid", "")), now)

        failures, last = failures_after_last_success([when(p) for p in succeeded],
                                                     [when(p) for p in failed])
        return backoff_delay(failures, last, now)

    async def _manage(self, key: str, job: Mapping[str, Any],
                      active: Sequence[Mapping[str, Any]], want: int,
                      delay: float) -> _Outcome:
        """Start or stop NonIndexed pods."""
        diff = len(active) - want
        if diff > 0:
            doomed = pods_to_delete(active, (), min(diff, self.burst_pods))
            return _Outcome(deleted=await self._delete_pods(key, job, doomed))
        if diff < 0:
            if delay > 0:
                return _Outcome(wait=delay)
            template = (job.get("spec") or {}).get("template") or {}
            count = min(-diff, self.burst_pods)
            return await self._create_pods(key, job, [(template, None)] * count)
        return _Outcome()

    async def _manage_indexed(self, key: str, job: Mapping[str, Any],
                              active: Sequence[Mapping[str, Any]], completed: Sequence[int],
                              completions: int, parallelism: int,
                              delay: float) -> _Outcome:
        """Start or stop Indexed pods."""
        done = set(completed)
        keep: dict[int, Mapping[str, Any]] = {}
        doomed: list[Mapping[str, Any]] = []
        for pod in active:
            index = pod_index(pod)
            if index is None or index >= completions or index in done or index in keep:
                doomed.append(pod)
            else:
                keep[index] = pod
        extra = len(keep) - parallelism
        if extra > 0:
            for index in sorted(keep, reverse=True)[:extra]:
                doomed.append(keep.pop(index))
        if doomed:
            return _Outcome(deleted=await self._delete_pods(key, job, doomed[:self.burst_pods]))
        pending = pending_indexes(completions, done, keep)
        count = min(parallelism - len(keep), len(pending), self.burst_pods)
        if count <= 0:
            return _Outcome()
        if delay > 0:
            return _Outcome(wait=delay)
        template = (job.get("spec") or {}).get("template") or {}
        name = object_name(job)
        templates = [(indexed_pod_template(template, name, i), indexed_pod_generate_name(name, i))
                     for i in pending[:count]]
        return await self._create_pods(key, job, templates)

    async def _create_pods(self, key: str, job: Mapping[str, Any],
                           templates: Sequence[tuple[Mapping[str, Any], str | None]],
                           ) -> _Outcome:
        """Create one pod per ``(template, generateName)`` in slow-start batches.

        A failed batch stops the rest.
        """
        _, _, _, expectations, pod_control = self._parts()
        namespace = object_namespace(job)
        ref = owner_reference(job)
        expectations.expect_creations(key, len(templates))
        queue = list(templates)

        async def create() -> None:
            template, generate_name = queue.pop(0)
            try:
                await pod_control.create_pod(namespace, template, job, ref,
                                             generate_name=generate_name)
            except Forbidden:
                expectations.creation_observed(key)  # a terminating namespace: no event comes

        successes, error = await slow_start_batch(len(templates), 1, create)
        for _ in range(len(templates) - successes):
            expectations.creation_observed(key)
        if error is not None:
            _log.info("job %s: creating pods failed: %s", key, error)
        return _Outcome(created=successes, failed=error is not None)

    async def _delete_pods(self, key: str, job: Mapping[str, Any],
                           pods: Sequence[Mapping[str, Any]]) -> int:
        """Delete ``pods``; returns how many deletes succeeded."""
        _, _, _, expectations, pod_control = self._parts()
        expectations.expect_deletions(key, [meta_namespace_key_func(p) for p in pods])

        async def delete(pod: Mapping[str, Any]) -> bool:
            pod_key = meta_namespace_key_func(pod)
            try:
                await pod_control.delete_pod(object_namespace(pod), object_name(pod), job,
                                             uid=str(object_meta(pod).get("uid") or "") or None)
                return True
            except (NotFound, Conflict):
                expectations.deletion_observed(key, pod_key)
                return False
            except Exception as e:  # noqa: BLE001 - counted, retried on the next sync
                expectations.deletion_observed(key, pod_key)
                _log.info("job %s: deleting pod %s failed: %s", key, pod_key, e)
                return False

        results = await asyncio.gather(*(delete(p) for p in pods))
        return sum(1 for r in results if r)

    async def _maybe_expire(self, job: Mapping[str, Any], now: float) -> Result:
        """Delete the finished ``job`` once its TTL has passed; else say when to look again."""
        ttl = _int((job.get("spec") or {}).get("ttlSecondsAfterFinished"), None)
        if ttl is None:
            return DONE
        finished = finish_time(job)
        if finished is None:
            return DONE
        remaining = finished + ttl - now
        if remaining > 0:
            return requeue_after(remaining)
        client = self._parts()[0].clientset.resource("jobs")
        try:
            fresh = await client.get(object_name(job), object_namespace(job))
            uid = object_meta(job).get("uid")
            if fresh["metadata"].get("uid") != uid or fresh["metadata"].get("deletionTimestamp"):
                return DONE
            fresh_finished = finish_time(fresh)
            if fresh_finished is not None and fresh_finished + ttl > now:
                return requeue_after(fresh_finished + ttl - now)
            await client.delete(object_name(job), object_namespace(job),
                                propagation_policy="Background", uid=str(uid))
        except (NotFound, Conflict):
            return DONE
        return DONE

    async def _update_status(self, job: Mapping[str, Any], status: Obj) -> None:
        """Write ``status``, reading the Job again once on a conflict."""
        client = self._parts()[0].clientset.resource("jobs")
        body: Obj = thaw(job)
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
                body = await client.get(object_name(job), object_namespace(job))


def _timestamp(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None
