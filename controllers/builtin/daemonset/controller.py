"""The DaemonSet controller: one daemon pod on every node that should run it.

As kube-controller-manager's. Keys are ``namespace/name`` of DaemonSets.
Pod and ControllerRevision events go to the DaemonSet their controller
reference names (orphans: to every DaemonSet of the namespace whose
selector matches them); a node added goes to every DaemonSet that should
run there, a node changed to those whose placement on it changed, a node
deleted to all. One ``reconcile`` of a DaemonSet not being deleted:

1. claims its pods and ControllerRevisions (``claim``) and brings its
   history up to date (``history.History.construct``): the current
   revision's hash labels new pods (``controller-revision-hash``);
2. unless its expectations are pending (then only the status is written):
   decides per node (``placement.pods_should_be_on_node``) and creates the
   missing pods -- pinned to their node by required node affinity on
   ``metadata.name``, with the automatic daemon tolerations, in slow-start
   batches, at most ``burst_replicas`` per sync -- and deletes the extra
   ones. Failed pods are deleted with a ``FailedDaemonPod`` event, backed
   off per node (1 s doubling to 15 min). Pods for nodes that no longer
   exist are deleted, at once (grace 0) when bound to the missing node;
3. with ``RollingUpdate`` and nothing pending, one rolling update step
   (``update.rolling_update_plan``); ``OnDelete`` replaces only pods that
   someone deleted;
4. trims old revisions to ``spec.revisionHistoryLimit`` and writes the
   status (``status.calculate_status``) when it changed.

Expectations (``UIDTrackingControllerExpectations``) keep a lagging cache
from creating a pod twice or deleting more than asked: until every create
and delete of the last sync is seen (or 5 minutes pass), a DaemonSet only
has its status written. A failed write makes the reconcile raise (after
the status is written), so the key is retried with back-off; otherwise it
asks to look again when a pod becomes available, a failed pod's back-off
ends, or pending expectations expire.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from controllers.api.errors import BadRequest, Conflict, Forbidden, NotFound
from controllers.api.objects import Obj
from controllers.api.selectors import LabelSelector
from controllers.builtin.daemonset.backoff import (
    FAILED_POD_BACKOFF_INITIAL,
    FAILED_POD_BACKOFF_MAX,
    Backoff,
)
from controllers.builtin.daemonset.claim import Claimer
from controllers.builtin.daemonset.handlers import (
    DaemonSetEventHandlers,
    min_ready_seconds,
)
from controllers.builtin.daemonset.history import History, revision_hash
from controllers.builtin.daemonset.placement import (
    Placement,
    daemon_pod_template,
    pin_to_node,
    pods_should_be_on_node,
    should_run_daemon_pod,
    target_node_name,
)
from controllers.builtin.daemonset.status import STATUS_COUNTS, calculate_status
from controllers.builtin.daemonset.update import (
    ROLLING_UPDATE,
    allows_surge,
    rolling_update_plan,
    update_strategy,
)
from controllers.builtin.expectations import (
    EXPECTATIONS_TIMEOUT,
    UIDTrackingControllerExpectations,
)
from controllers.builtin.pod_control import (
    SUCCESSFUL_DELETE,
    PodControl,
    RealPodControl,
)
from controllers.builtin.podutil import owner_reference
from controllers.builtin.replicaset import (
    SLOW_START_INITIAL_BATCH_SIZE,
    next_available_in,
    slow_start_batch,
)
from controllers.controller import DONE, ControllerContext, PermanentError, Result
from controllers.controller import requeue_after as requeue_after_result
from controllers.informers.shared_informer import (
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

__all__ = ["BURST_REPLICAS", "FAILED_DAEMON_POD", "DaemonSetController"]

_log = logging.getLogger(__name__)

BURST_REPLICAS = 250
"""The most pods one sync creates or deletes."""

FAILED_DAEMON_POD = "FailedDaemonPod"
"""The event reason for a failed daemon pod about to be deleted."""

PodControlFactory = Callable[[ControllerContext], PodControl]
NodePods = dict[str, list[Mapping[str, Any]]]


def _terminal(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


class DaemonSetController:
    """Runs one pod per eligible node for every DaemonSet (see the module docstring)."""

    name = "daemonset"
    event_source = "daemonset-controller"
    informers: Sequence[str] = ("daemonsets", "pods", "nodes", "controllerrevisions")

    def __init__(self, *, burst_replicas: int = BURST_REPLICAS,
                 expectations_ttl: float = EXPECTATIONS_TIMEOUT,
                 failed_pod_backoff: tuple[float, float] = (FAILED_POD_BACKOFF_INITIAL,
                                                            FAILED_POD_BACKOFF_MAX),
                 pod_control_factory: PodControlFactory | None = None) -> None:
        if burst_replicas < 1:
            raise ValueError("burst_replicas must be at least 1")
        self.burst_replicas = burst_replicas
        self.expectations_ttl = expectations_ttl
        self.failed_pod_backoff = failed_pod_backoff
        self._pod_control_factory = pod_control_factory
        self._context: ControllerContext | None = None
        self._informers: dict[str, SharedInformer] = {}
        self.pod_control: PodControl | None = None
        self.expectations: UIDTrackingControllerExpectations | None = None
        self.backoff: Backoff | None = None

    # -- setup -----------------------------------------------------------------------------
    def setup(self, context: ControllerContext) -> None:
        self._context = context
        self._informers = {name: context.informer(name) for name in self.informers}
        clock = context.clientset.clock
        self.expectations = UIDTrackingControllerExpectations(clock,
                                                              ttl_seconds=self.expectations_ttl)
        initial, maximum = self.failed_pod_backoff
        self.backoff = Backoff(clock, initial=initial, maximum=maximum)
        self.pod_control = (self._pod_control_factory(context) if self._pod_control_factory
                            else RealPodControl(context.clientset, context.recorder))
        DaemonSetEventHandlers(context, self.expectations, self._informers).register()

    def _parts(self) -> tuple[ControllerContext, UIDTrackingControllerExpectations, PodControl,
                              Backoff]:
        if (self._context is None or self.expectations is None or self.pod_control is None
                or self.backoff is None):
            raise RuntimeError("the DaemonSet controller is used before setup")
        return self._context, self.expectations, self.pod_control, self.backoff

    # -- reconcile ---------------------------------------------------------------------
    async def reconcile(self, key: str) -> Result | None:
        context, expectations, _, backoff = self._parts()
        namespace, name = split_meta_namespace_key(key)
        try:
            ds = self._informers["daemonsets"].lister().get(namespace, name)
        except NotFound:
            expectations.delete_expectations(key)
            return DONE
        if object_meta(ds).get("deletionTimestamp"):
            return DONE
        try:
            selector = LabelSelector.from_dict((ds.get("spec") or {}).get("selector"))
        except BadRequest as e:
            raise PermanentError(f"daemonset {key} has an invalid selector: {e}") from e
        if selector.is_empty():
            raise PermanentError(f"daemonset {key} selects every pod; a non-empty selector "
                                 "is required")
        backoff.gc()
        claimer = Claimer(context.clientset, ds, selector)
        pods = await claimer.claim(
            "pods", self._informers["pods"].lister().list(namespace=namespace))
        revisions = await claimer.claim(
            "controllerrevisions",
            self._informers["controllerrevisions"].lister().list(namespace=namespace))
        history = History(context.clientset, ds)
        current, old = await history.construct(revisions, pods)
        hash_ = revision_hash(current)
        nodes = {object_name(n): n for n in self._informers["nodes"].lister().list()}
        placements = {n: should_run_daemon_pod(node, ds) for n, node in sorted(nodes.items())}
        node_pods = self._group_by_node(pods)
        now = context.clientset.clock.now()
        if not expectations.satisfied(key):
            await self._write_status(ds, calculate_status(ds, placements, node_pods, hash_, now,
                                                          observed=False))
            wait = expectations.expires_in(key)
            return requeue_after_result(wait) if wait else DONE
        waits: list[float] = []
        error: Exception | None = None
        try:
            await self._manage(key, ds, placements, nodes, node_pods, hash_, waits)
            if expectations.satisfied(key) and update_strategy(ds) == ROLLING_UPDATE:
                plan = rolling_update_plan(ds, placements, node_pods, hash_, now)
                await self._sync_nodes(key, ds, plan.delete, plan.create, hash_)
            await history.cleanup(old, pods)
        except Exception as e:  # noqa: BLE001 - the status is written first, then it is retried
            error = e
        await self._write_status(ds, calculate_status(ds, placements, node_pods, hash_, now,
                                                      observed=True))
        if error is not None:
            raise error
        active = [p for group in node_pods.values() for p in group]
        waits.extend(w for w in (next_available_in(ds, active, now),
                                 None if expectations.satisfied(key)
                                 else expectations.expires_in(key)) if w is not None)
        waits = [w for w in waits if w > 0]
        return requeue_after_result(min(waits)) if waits else DONE

    @staticmethod
    def _group_by_node(pods: Sequence[Mapping[str, Any]]) -> NodePods:
        """Daemon pods by target node, leaving out finished pods already being deleted."""
        grouped: NodePods = {}
        for pod in pods:
            if _terminal(pod) and object_meta(pod).get("deletionTimestamp"):
                continue
            node = target_node_name(pod)
            if node is None:
                _log.warning("daemon pod %s has no target node", meta_namespace_key_func(pod))
                continue
            grouped.setdefault(node, []).append(pod)
        return grouped

    async def _manage(self, key: str, ds: Mapping[str, Any], placements: Mapping[str, Placement],
                      nodes: Mapping[str, Mapping[str, Any]], node_pods: NodePods, hash_: str,
                      waits: list[float]) -> None:
        """Create and delete pods so each node has what it should (see the module docstring)."""
        context, _, _, backoff = self._parts()
        surge = allows_surge(ds)
        min_ready = min_ready_seconds(ds)
        now = context.clientset.clock.now()
        create: list[str] = []
        delete: list[Mapping[str, Any]] = []
        for name, placement in placements.items():
            actions = pods_should_be_on_node(placement, node_pods.get(name, ()), hash_,
                                             allows_surge=surge, min_ready_seconds=min_ready,
                                             now=now)
            if actions.create:
                create.append(name)
            delete.extend(actions.delete)
            backoff_key = f"{object_meta(ds).get('uid')}/{name}"
            for pod in actions.failed:
                if backoff.in_backoff_since_update(backoff_key):
                    waits.append(backoff.remaining(backoff_key))
                    continue
                backoff.next(backoff_key)
                context.recorder.event(ds, "Warning", FAILED_DAEMON_POD,
                                       f"Found failed daemon pod {meta_namespace_key_func(pod)} "
                                       f"on node {name}, will try to kill it")
                delete.append(pod)
        for name in sorted(node_pods):
            if name not in nodes:
                delete.extend(p for p in node_pods[name]
                              if not object_meta(p).get("deletionTimestamp"))
        await self._sync_nodes(key, ds, delete, create, hash_)

    async def _sync_nodes(self, key: str, ds: Mapping[str, Any],
                          delete: Sequence[Mapping[str, Any]], create: Sequence[str],
                          hash_: str) -> None:
        """Create a pod on each node of ``create`` and delete ``delete``, burst-limited.

        Raises:
            Exception: the first create or delete that failed.
        """
        context, expectations, pod_control, _ = self._parts()
        create = list(create)[:self.burst_replicas]
        delete = list(delete)[:self.burst_replicas]
        if not create and not delete:
            return
        namespace = object_namespace(ds)
        expectations.expect_deletions(key, [meta_namespace_key_func(p) for p in delete])
        expectations.counts.raise_expectations(key, len(create), 0)
        template = daemon_pod_template((ds.get("spec") or {}).get("template") or {}, hash_)
        ref = owner_reference(ds)
        queue = list(create)

        async def create_one() -> None:
            node = queue.pop(0)
            try:
                await pod_control.create_pod(namespace, pin_to_node(template, node), ds, ref)
            except Forbidden:
                expectations.creation_observed(key)  # the namespace is going away
            except Exception:
                expectations.creation_observed(key)
                raise

        successes, create_error = await slow_start_batch(len(create),
                                                         SLOW_START_INITIAL_BATCH_SIZE,
                                                         create_one)
        for _ in queue:
            expectations.creation_observed(key)  # never attempted

        async def delete_one(pod: Mapping[str, Any]) -> None:
            pod_key = meta_namespace_key_func(pod)
            uid = str(object_meta(pod).get("uid") or "") or None
            try:
                node = (pod.get("spec") or {}).get("nodeName")
                if node and node not in self._node_names():
                    await context.clientset.resource("pods").delete(
                        object_name(pod), namespace, uid=uid, grace_period_seconds=0)
                    context.recorder.event(ds, "Normal", SUCCESSFUL_DELETE,
                                           f"Deleted pod: {object_name(pod)}")
                else:
                    await pod_control.delete_pod(namespace, object_name(pod), ds, uid=uid)
            except (NotFound, Conflict):
                expectations.deletion_observed(key, pod_key)
            except Exception:
                expectations.deletion_observed(key, pod_key)
                raise

        results = await asyncio.gather(*(delete_one(p) for p in delete), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result
        _log.debug("daemonset %s: created %d of %d, deleted %d", key, successes, len(create),
                   len(delete))
        if create_error is not None:
            raise create_error
        for result in results:
            if isinstance(result, Exception):
                raise result

    def _node_names(self) -> set[str]:
        return {object_name(n) for n in self._informers["nodes"].lister().list()}

    async def _write_status(self, ds: Mapping[str, Any], status: Obj) -> None:
        """Write ``status`` if it differs, reading the DaemonSet again once on a conflict."""
        if thaw(ds.get("status") or {}) == status:
            return
        client = self._parts()[0].clientset.resource("daemonsets")
        body: Obj = thaw(ds)
        for attempt in range(2):
            if attempt:  # keep what others wrote meanwhile (a bumped collision count)
                body["status"] = {**(body.get("status") or {}),
                                  **{k: status[k] for k in (*STATUS_COUNTS, "observedGeneration")
                                     if k in status}}
            else:
                body["status"] = status
            try:
                await client.update_status(body)
                return
            except NotFound:
                return
            except Conflict:
                if attempt:
                    raise
                body = await client.get(object_name(ds), object_namespace(ds))
