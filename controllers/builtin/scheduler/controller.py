"""``Scheduler``: kube-scheduler as a controller plugin, binding pending pods to nodes.

Its keys are pods (``namespace/name``) that have no ``spec.nodeName``, are
not being deleted or finished, and name this scheduler in
``spec.schedulerName`` (``default-scheduler``, or none).

Order: the manager's work queue is FIFO, so the scheduler keeps its own
``SchedulingQueue`` (highest ``spec.priority`` first, then the oldest). A
key handed to ``reconcile`` only says "a pod may be ready": ``reconcile``
takes the best active pods, whichever they are (up to ``parallel_binds``),
and puts the key back if its own pod is still waiting its turn. It decides
for them one after the other, in queue order, each decision counting the
pods placed by the ones before, and then waits for their bindings (store
writes) together, as kube-scheduler's binding cycles run next to its
scheduling cycle. One worker (the manager's default) gives strict priority
order; more workers are safe (each attempt counts the pods the others have
just placed) but only roughly ordered.

One attempt, on the cache (no store reads):

1. ``schedule`` filters and scores the nodes (``algorithm``), with the
   plugins the constructor enabled (``plugins.make_profile``). On a big
   cluster it stops filtering once enough nodes fit
   (``percentage_of_nodes_to_score``), and each attempt starts where the
   previous one stopped, so every node gets its turn.
2. Fit: the pod is assumed on the node in the cache, then bound through
   the ``pods/binding`` subresource (``ResourceClient.bind``, with the pod's
   uid as precondition, as kube-scheduler's DefaultBinder does): one store
   write sets ``spec.nodeName`` and ``PodScheduled=True``, and a
   ``Scheduled`` event says "Successfully assigned ns/pod to node". A
   ``Conflict`` (someone bound it first, it is being deleted, or it was
   replaced by a pod of the same name) reads it again: if still pending it
   is scheduled again from scratch, else it is dropped.
3. No fit: ``PodScheduled`` becomes ``False`` with reason
   ``Unschedulable`` and Kubernetes' message ("0/3 nodes are available: 1
   Insufficient cpu, ..."), a ``FailedScheduling`` warning is recorded, and
   the pod waits (see ``queue``) until a node is added or changes, an
   assigned pod goes away or finishes, or the pod itself changes; then
   after its back-off. Without such an event it is tried again after
   ``max_unschedulable_seconds``.
4. An error (the store, a plugin): the pod backs off and is tried again.

Back-off timers are the manager's ``enqueue_after`` (its clock, which the
queue also reads through the pod informer), so tests drive them with a
``FakeClock``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Mapping, Sequence
from typing import Any

from controllers.api.errors import Conflict, NotFound
from controllers.api.objects import format_timestamp
from controllers.builtin.scheduler.algorithm import schedule
from controllers.builtin.scheduler.cache import Cache
from controllers.builtin.scheduler.framework import PluginRegistry, PodInfo
from controllers.builtin.scheduler.plugins import make_profile
from controllers.builtin.scheduler.queue import (
    PodState,
    QueuedPod,
    SchedulingQueue,
    check_backoffs,
)
from controllers.controller import DONE, ControllerContext, Result, requeue_after
from controllers.informers.fifo import DeletedFinalStateUnknown
from controllers.informers.shared_informer import ResourceEventHandlerFuncs
from controllers.informers.store import thaw

__all__ = ["DEFAULT_SCHEDULER_NAME", "Scheduler", "is_assigned", "pod_key"]

_log = logging.getLogger(__name__)

DEFAULT_SCHEDULER_NAME = "default-scheduler"
_POD_SCHEDULED = "PodScheduled"


def pod_key(pod: Mapping[str, Any]) -> str:
    """``namespace/name`` of a pod object (frozen or not)."""
    meta = pod.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


def is_assigned(pod: Mapping[str, Any]) -> bool:
    spec = pod.get("spec")
    return isinstance(spec, Mapping) and bool(spec.get("nodeName"))


def _is_finished(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status")
    return isinstance(status, Mapping) and status.get("phase") in ("Succeeded", "Failed")


def _is_deleting(pod: Mapping[str, Any]) -> bool:
    meta = pod.get("metadata")
    return isinstance(meta, Mapping) and bool(meta.get("deletionTimestamp"))


def _scheduled_condition(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    status = pod.get("status")
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    for cond in conditions if isinstance(conditions, (list, tuple)) else ():
        if isinstance(cond, Mapping) and cond.get("type") == _POD_SCHEDULED:
            return cond
    return None


def _node_facts(node: Mapping[str, Any]) -> tuple[Any, ...]:
    """What of a node can change a scheduling decision (heartbeats are left out)."""
    meta = node.get("metadata")
    spec = node.get("spec")
    status = node.get("status")
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    spec = spec if isinstance(spec, Mapping) else {}
    status = status if isinstance(status, Mapping) else {}
    ready = [c.get("status") for c in status.get("conditions") or ()
             if isinstance(c, Mapping) and c.get("type") == "Ready"]
    return (thaw(labels), thaw(spec.get("taints")), spec.get("unschedulable"), ready,
            thaw(status.get("allocatable")), thaw(status.get("capacity")))


def _decision_inputs(pod: Mapping[str, Any]) -> tuple[Any, Any]:
    """What of a pending pod can change a decision: its spec and metadata, not its status."""
    meta = pod.get("metadata")
    meta = {k: v for k, v in meta.items() if k not in ("resourceVersion", "generation")} \
        if isinstance(meta, Mapping) else {}
    return thaw(meta), thaw(pod.get("spec"))


def _unwrap(obj: Any) -> Any:
    return obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj


class Scheduler:
    """Binds pending pods to nodes (see the module docstring)."""

    name = "scheduler"
    event_source = "default-scheduler"
    informers: Sequence[str] = ("pods", "nodes")

    def __init__(self, filters: Sequence[str] | None = None,
                 scores: Sequence[str] | None = None,
                 weights: Mapping[str, int] | None = None, *,
                 scheduler_name: str = DEFAULT_SCHEDULER_NAME,
                 registry: PluginRegistry | None = None,
                 rng: random.Random | None = None,
                 initial_backoff_seconds: float = 1.0,
                 max_backoff_seconds: float = 10.0,
                 max_unschedulable_seconds: float = 300.0,
                 bind_attempts: int = 3,
                 percentage_of_nodes_to_score: int = 0,
                 parallel_binds: int = 16) -> None:
        """Create a scheduler running the plugins named (all registered ones when None).

        Args:
            filters: filter plugin names, in the order they run.
            scores: score plugin names.
            weights: score plugin weights by name (defaults: Kubernetes').
            scheduler_name: the ``spec.schedulerName`` this scheduler serves.
            registry: where plugin names are looked up (``plugins.REGISTRY``).
            rng: breaks ties between equally scored nodes; None: by node name.
            bind_attempts: how often a pod that keeps changing under a bind is retried.
            percentage_of_nodes_to_score: Kubernetes' ``percentageOfNodesToScore``
                (1..100; 0, the default, adapts to the cluster size; see ``algorithm``).
            parallel_binds: how many pods one ``reconcile`` takes from the queue, decides
                one after the other, and then binds concurrently (1: one pod at a time).

        Raises:
            KeyError, TypeError, ValueError: see ``plugins.make_profile``.
            ValueError: also for a percentage outside 0..100, or ``parallel_binds`` below 1.
        """
        if bind_attempts < 1:
            raise ValueError("bind_attempts must be at least 1")
        if parallel_binds < 1:
            raise ValueError("parallel_binds must be at least 1")
        self.parallel_binds = parallel_binds
        self.profile = dataclasses.replace(
            make_profile(filters, scores, weights, registry),
            percentage_of_nodes_to_score=percentage_of_nodes_to_score)
        self.scheduler_name = scheduler_name
        self.rng = rng
        self.bind_attempts = bind_attempts
        self._backoffs = (initial_backoff_seconds, max_backoff_seconds,
                          max_unschedulable_seconds)
        check_backoffs(initial_backoff_seconds, max_backoff_seconds, max_unschedulable_seconds)
        self._context: ControllerContext | None = None
        self.cache = Cache()
        self.queue: SchedulingQueue | None = None
        # Scheduling attempts made, for tests and metrics.
        self.attempts = 0
        # Where the next attempt starts filtering (Kubernetes' nextStartNodeIndex).
        self._next_start = 0

    # -- setup and event handlers ----------------------------------------------------
    def setup(self, context: ControllerContext) -> None:
        self._context = context
        pods, nodes = context.informer("pods"), context.informer("nodes")
        initial, maximum, unschedulable = self._backoffs
        self.cache = Cache()
        self.queue = SchedulingQueue(pods.clock, initial_backoff_seconds=initial,
                                     max_backoff_seconds=maximum,
                                     max_unschedulable_seconds=unschedulable)
        pods.add_event_handler(ResourceEventHandlerFuncs(
            add=lambda obj, _initial: self._on_pod(obj),
            update=lambda old, new: self._on_pod(new, old),
            delete=self._on_pod_delete))
        nodes.add_event_handler(ResourceEventHandlerFuncs(
            add=self._on_node_add, update=self._on_node_update, delete=self._on_node_delete))

    def _is_ours(self, pod: Mapping[str, Any]) -> bool:
        """Whether ``pod`` is pending and waiting for this scheduler."""
        spec = pod.get("spec")
        spec = spec if isinstance(spec, Mapping) else {}
        return (not spec.get("nodeName") and not _is_deleting(pod) and not _is_finished(pod)
                and (spec.get("schedulerName") or DEFAULT_SCHEDULER_NAME) == self.scheduler_name)

    def _trigger(self, key: str, delay: float | None) -> None:
        if self._context is None or delay is None:
            return
        if delay <= 0:
            self._context.enqueue(key)
        else:
            self._context.enqueue_after(key, delay)

    def _move_all(self) -> None:
        if self.queue is not None:
            for key, delay in self.queue.move_all():
                self._trigger(key, delay)

    def _on_pod(self, pod: Mapping[str, Any], old: Mapping[str, Any] | None = None) -> None:
        queue, key = self.queue, pod_key(pod)
        if queue is None:
            return
        if is_assigned(pod):
            queue.delete(key)
            if _is_finished(pod):
                if self.cache.node_of(key) is not None:
                    self.cache.remove_pod(key)
                    self._move_all()
                return
            self.cache.add_pod(_assigned_info(pod))
            return
        if self.cache.is_assumed(key):
            return  # an older view of a pod this scheduler has just bound
        if not self._is_ours(pod):
            queue.delete(key)
            return
        may_help = old is None or _decision_inputs(old) != _decision_inputs(pod)
        self._trigger(key, queue.add(pod, may_help=may_help))

    def _on_pod_delete(self, obj: Any) -> None:
        pod, queue = _unwrap(obj), self.queue
        key = pod_key(pod)
        if queue is not None:
            queue.delete(key)
        if self.cache.node_of(key) is not None:
            self.cache.remove_pod(key)
            self._move_all()

    def _on_node_add(self, node: Mapping[str, Any], _initial: bool) -> None:
        self.cache.set_node(node)
        self._move_all()

    def _on_node_update(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        self.cache.set_node(new)
        if _node_facts(old) != _node_facts(new):
            self._move_all()

    def _on_node_delete(self, obj: Any) -> None:
        node = _unwrap(obj)
        meta = node.get("metadata")
        if isinstance(meta, Mapping):
            self.cache.remove_node(str(meta.get("name") or ""))

    # -- scheduling --------------------------------------------------------------------
    async def reconcile(self, key: str) -> Result | None:
        context, queue = self._context, self.queue
        if context is None or queue is None:
            raise RuntimeError("reconcile before setup")
        own_wait = queue.wake(key)
        entries: list[QueuedPod] = []
        while len(entries) < self.parallel_binds:
            entry = queue.pop()
            if entry is None:
                break
            entries.append(entry)
        # Each attempt decides and assumes before its first await, so in the order
        # popped: every decision counts the pods placed by the ones before it.
        outcomes = await asyncio.gather(*(self._attempt(e.key, e.pod) for e in entries),
                                        return_exceptions=True)
        failure: BaseException | None = None
        for entry, outcome in zip(entries, outcomes):
            popped_wait: float | None = None
            if isinstance(outcome, BaseException):
                self.cache.forget(entry.key)
                popped_wait = queue.backoff(entry.key)
                failure = failure or outcome
            else:
                popped_wait = outcome
            if entry.key != key:
                self._trigger(entry.key, popped_wait)
            else:
                own_wait = popped_wait
        if failure is not None:
            raise failure
        if queue.state(key) is PodState.ACTIVE:
            context.enqueue(key)  # still waiting its turn: come back for it
            return DONE
        if own_wait is not None and own_wait > 0:
            return requeue_after(own_wait)
        return DONE

    async def _attempt(self, key: str, pod: Mapping[str, Any]) -> float | None:
        """Schedule one pod; returns when to wake it again (None: it left the queue)."""
        queue = self.queue
        if queue is None:
            raise RuntimeError("reconcile before setup")
        for _ in range(self.bind_attempts):
            self.attempts += 1
            try:
                info = PodInfo.from_pod(pod)
            except ValueError as e:
                await self._record_unschedulable(pod, f"invalid resource request: {e}")
                return queue.unschedulable(key)
            result = schedule(info, self.cache.node_infos(), self.profile, self.rng,
                              start=self._next_start)
            self._next_start = result.next_start
            if result.node is None:
                await self._record_unschedulable(pod, result.message)
                return queue.unschedulable(key)
            fresh = await self._bind(info, result.node)
            if fresh is None:
                queue.done(key)
                return None
            pod = fresh
            entry = queue.get(key)
            if entry is not None:
                entry.pod = fresh
        return queue.backoff(key)

    async def _bind(self, info: PodInfo, node_name: str) -> Mapping[str, Any] | None:
        """Bind the pod; returns None when done with it, or its newer version to try again."""
        context = self._context
        if context is None:
            raise RuntimeError("reconcile before setup")
        client = context.clientset.resource("pods")
        self.cache.assume(info, node_name)
        metadata = info.pod.get("metadata")
        uid = metadata.get("uid") if isinstance(metadata, Mapping) else None
        try:
            bound = await client.bind(info.name, info.namespace, node_name,
                                      uid=str(uid) if uid else None)
        except Conflict:
            self.cache.forget(info.key)
            try:
                fresh = await client.get(info.name, info.namespace)
            except NotFound:
                return None
            return fresh if self._is_ours(fresh) else None
        except NotFound:
            self.cache.forget(info.key)
            return None
        context.recorder.event(bound, "Normal", "Scheduled",
                               f"Successfully assigned {info.key} to {node_name}")
        return None

    def _condition(self, pod: Mapping[str, Any], status: str, reason: str = "",
                   message: str = "") -> dict[str, Any]:
        if self._context is None:
            raise RuntimeError("reconcile before setup")
        old = _scheduled_condition(pod)
        since = old.get("lastTransitionTime") if old is not None and \
            old.get("status") == status else None
        cond: dict[str, Any] = {"type": _POD_SCHEDULED, "status": status,
                                "lastTransitionTime": since or format_timestamp(
                                    self._context.clientset.clock.now())}
        if reason:
            cond["reason"] = reason
        if message:
            cond["message"] = message
        return cond

    async def _write_condition(self, pod: Mapping[str, Any], cond: dict[str, Any]) -> None:
        """Replace the pod's ``PodScheduled`` condition by ``cond`` (CAS, re-read on Conflict)."""
        if self._context is None:
            raise RuntimeError("reconcile before setup")
        client = self._context.clientset.resource("pods")
        body = thaw(pod)
        for attempt in range(self.bind_attempts):
            status = body.setdefault("status", {})
            status["conditions"] = [c for c in status.get("conditions") or ()
                                    if c.get("type") != _POD_SCHEDULED] + [cond]
            try:
                await client.update_status(body)
                return
            except Conflict:
                if attempt + 1 == self.bind_attempts:
                    raise
                body = await client.get(body["metadata"]["name"], body["metadata"]["namespace"])
                if is_assigned(body) != (cond["status"] == "True"):
                    return  # bound (or not) by someone else meanwhile: not ours to say

    async def _record_unschedulable(self, pod: Mapping[str, Any], message: str) -> None:
        """``PodScheduled=False``/``Unschedulable`` with ``message``, and a ``FailedScheduling`` event."""
        if self._context is None:
            raise RuntimeError("reconcile before setup")
        self._context.recorder.event(pod, "Warning", "FailedScheduling", message)
        old = _scheduled_condition(pod)
        if old is not None and old.get("status") == "False" and \
                old.get("reason") == "Unschedulable" and old.get("message") == message:
            return
        try:
            await self._write_condition(pod, self._condition(pod, "False", "Unschedulable",
                                                             message))
        except NotFound:
            return


def _assigned_info(pod: Mapping[str, Any]) -> PodInfo:
    """The ``PodInfo`` of an assigned pod; one with unreadable requests counts as asking nothing."""
    try:
        return PodInfo.from_pod(pod)
    except ValueError:
        spec = pod.get("spec")
        node = str(spec.get("nodeName") or "") if isinstance(spec, Mapping) else ""
        _log.warning("scheduler: pod %s has unreadable resource requests", pod_key(pod))
        return PodInfo(key=pod_key(pod), pod=pod, node_name=node)

