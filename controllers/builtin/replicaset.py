"""The ReplicaSet controller: keeps ``spec.replicas`` active pods running for every ReplicaSet.

As kube-controller-manager's. Keys are ``namespace/name`` of ReplicaSets.
Pod events go to the ReplicaSet named by the pod's controller reference;
an orphan's events go to every ReplicaSet of its namespace whose selector
matches it (a candidate for adoption). One ``reconcile``:

1. reads from the cache the active pods (``is_pod_active``: terminating and
   finished pods do not count) it might claim -- those whose controller
   reference names it and the orphans of its namespace, found through the
   pods informer's ``POD_CONTROLLER_UID_INDEX`` -- and claims them (giving
   the event loop a turn every ``YIELD_EVERY`` pods): pods it
   controls stay while its selector matches them and are released (their
   controller reference removed) once it does not; matching orphans are
   adopted, after a fresh read of the ReplicaSet confirms it is still the
   same object and not being deleted. A ReplicaSet being deleted neither
   adopts nor releases;
2. if its expectations are satisfied and it is not being deleted, creates
   or deletes the difference, at most ``burst_replicas`` (500) per sync.
   Creates run in slow-start batches of 1, 2, 4, ... and stop after the
   first batch with a failure; creates that failed or never ran are taken
   back from the expectations. Deletes take the pods first in
   ``rank_pods_for_deletion`` order (Kubernetes' ``ActivePodsWithRanks``);
3. writes the status when it changed: ``replicas``,
   ``fullyLabeledReplicas`` (pods carrying every label of the template),
   ``readyReplicas``, ``availableReplicas`` (ready for ``minReadySeconds``
   on the clientset's wall clock), ``observedGeneration``, and the
   ``ReplicaFailure`` condition while creating or deleting fails.

A failed create or delete makes the reconcile return ``REQUEUE`` (after the
status is written). Otherwise it asks to look again when the first ready
pod becomes available, or when pending expectations expire.

Expectations (``UIDTrackingControllerExpectations``) make a lagging cache
safe: before creating ``n`` pods the controller expects ``n`` adds, before
deleting it expects those pods' deletions; the pod handlers observe them;
until all are observed (or 5 minutes pass) the controller only writes
status. Expectations live for one leadership term.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from controllers.api.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
)
from controllers.api.objects import Obj, format_timestamp, parse_timestamp
from controllers.api.selectors import LabelSelector
from controllers.builtin.expectations import (
    EXPECTATIONS_TIMEOUT,
    UIDTrackingControllerExpectations,
)
from controllers.builtin.pod_control import (
    PodControl,
    RealPodControl,
    adoption_patch,
    release_patch,
)
from controllers.builtin.podutil import (
    POD_CONTROLLER_UID_INDEX,
    controller_ref,
    is_pod_active,
    is_pod_available,
    is_pod_ready,
    orphan_pod_index_key,
    owner_reference,
    pod_controller_uid_index,
)
from controllers.controller import (
    DONE,
    REQUEUE,
    ControllerContext,
    PermanentError,
    Result,
)
from controllers.controller import requeue_after as requeue_after_result
from controllers.informers.fifo import DeletedFinalStateUnknown
from controllers.informers.shared_informer import (
    ResourceEventHandlerFuncs,
    SharedInformer,
)
from controllers.informers.store import (
    meta_namespace_key_func,
    object_labels,
    object_meta,
    object_name,
    object_namespace,
    object_resource_version,
    split_meta_namespace_key,
    thaw,
)

__all__ = [
    "BURST_REPLICAS",
    "POD_DELETION_COST",
    "REPLICA_FAILURE",
    "SLOW_START_INITIAL_BATCH_SIZE",
    "YIELD_EVERY",
    "ClaimAction",
    "ReplicaSetController",
    "calculate_status",
    "claim_action",
    "deletion_rank_key",
    "next_available_in",
    "pods_to_delete",
    "rank_pods_for_deletion",
    "slow_start_batch",
]

_log = logging.getLogger(__name__)

BURST_REPLICAS = 500
"""The most pods one sync creates or deletes."""

SLOW_START_INITIAL_BATCH_SIZE = 1
"""The size of the first batch of creates; each next batch doubles."""

REPLICA_FAILURE = "ReplicaFailure"
"""The condition type set while pods cannot be created or deleted."""

YIELD_EVERY = 256
"""Long loops over pods give the event loop a turn after this many pods."""

POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
"""The pod annotation ranking pods for deletion (lower cost goes first)."""

_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


# -- slow start ------------------------------------------------------------------------
async def slow_start_batch(count: int, initial_batch_size: int,
                           fn: Callable[[], Awaitable[None]]) -> tuple[int, Exception | None]:
    """Call ``fn`` ``count`` times in concurrent batches of ``initial_batch_size``, doubling.

    A batch runs only if every call of the batch before it succeeded.

    Returns:
        How many calls succeeded, and the first error of the failed batch (or None).
    """
    remaining, successes = count, 0
    batch = min(remaining, initial_batch_size)
    while batch > 0:
        results = await asyncio.gather(*(fn() for _ in range(batch)), return_exceptions=True)
        errors: list[Exception] = []
        for result in results:
            if isinstance(result, Exception):
                errors.append(result)
            elif isinstance(result, BaseException):
                raise result
        successes += batch - len(errors)
        if errors:
            return successes, errors[0]
        remaining -= batch
        batch = min(2 * batch, remaining)
    return successes, None


# -- ranking pods for deletion -------------------------------------------------------------
def _timestamp(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def _node_name(pod: Mapping[str, Any]) -> str:
    node = (pod.get("spec") or {}).get("nodeName")
    return node if isinstance(node, str) else ""


def _ready_time(pod: Mapping[str, Any]) -> float | None:
    for cond in (pod.get("status") or {}).get("conditions") or ():
        if isinstance(cond, Mapping) and cond.get("type") == "Ready":
            if cond.get("status") != "True":
                return None
            return _timestamp(cond.get("lastTransitionTime"))
    return None


def _max_restarts(pod: Mapping[str, Any]) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or ()
    counts = [s.get("restartCount") for s in statuses if isinstance(s, Mapping)]
    return max([c for c in counts if isinstance(c, int)], default=0)


def _deletion_cost(pod: Mapping[str, Any]) -> int:
    raw = (object_meta(pod).get("annotations") or {}).get(POD_DELETION_COST)
    try:
        return int(raw) if isinstance(raw, str) else 0
    except ValueError:
        return 0


def _zero_first_newest_next(moment: float | None) -> tuple[int, float]:
    """Sorts a missing time first, then later times before earlier ones."""
    return (0, 0.0) if moment is None else (1, -moment)


def deletion_rank_key(pod: Mapping[str, Any], rank: int = 0) -> tuple[Any, ...]:
    """The sort key putting the pods to delete first, as Kubernetes' ``ActivePodsWithRanks``.

    In order: unscheduled before scheduled; Pending, then Unknown, then
    Running; not ready before ready; lower ``pod-deletion-cost`` first; higher
    ``rank`` (more sibling pods on the same node) first; ready for less time
    before longer; more container restarts before fewer; newer before older.
    """
    ready = is_pod_ready(pod)
    return (
        1 if _node_name(pod) else 0,
        _PHASE_ORDINAL.get(str((pod.get("status") or {}).get("phase")), 0),
        1 if ready else 0,
        _deletion_cost(pod),
        -rank,
        _zero_first_newest_next(_ready_time(pod)) if ready else (0, 0.0),
        -_max_restarts(pod),
        _zero_first_newest_next(_timestamp(object_meta(pod).get("creationTimestamp"))),
    )


def rank_pods_for_deletion(pods: Sequence[Mapping[str, Any]],
                           related: Sequence[Mapping[str, Any]] = ()) -> list[Mapping[str, Any]]:
    """``pods`` sorted by ``deletion_rank_key``, the pods to delete first at the front.

    A pod's rank is the number of active ``related`` pods (the pods of every
    ReplicaSet with the same controller) on its node. Ties keep input order.
    """
    on_node: dict[str, int] = {}
    for pod in related:
        if is_pod_active(pod):
            on_node[_node_name(pod)] = on_node.get(_node_name(pod), 0) + 1
    keyed = [(deletion_rank_key(pod, on_node.get(_node_name(pod), 0)), i)
             for i, pod in enumerate(pods)]
    return [pods[i] for _, i in sorted(keyed)]


def pods_to_delete(pods: Sequence[Mapping[str, Any]], related: Sequence[Mapping[str, Any]],
                   count: int) -> list[Mapping[str, Any]]:
    """The ``count`` pods to delete first (see ``rank_pods_for_deletion``)."""
    if count >= len(pods):
        return list(pods)
    return rank_pods_for_deletion(pods, related)[:max(count, 0)]


# -- claiming ------------------------------------------------------------------------------
class ClaimAction(enum.Enum):
    """What a ReplicaSet does with one active pod of its namespace."""

    KEEP = "keep"          # ours and matching
    ADOPT = "adopt"        # a matching orphan
    RELEASE = "release"    # ours but no longer matching
    IGNORE = "ignore"      # someone else's, or not for us now


def claim_action(pod: Mapping[str, Any], rs: Mapping[str, Any],
                 selector: LabelSelector) -> ClaimAction:
    """Kubernetes' ``ClaimObject`` decision for ``pod`` and the ReplicaSet ``rs``."""
    ref = controller_ref(pod)
    rs_meta = object_meta(rs)
    if ref is not None:
        if ref.get("uid") != rs_meta.get("uid"):
            return ClaimAction.IGNORE
        if selector.matches(object_labels(pod)):
            return ClaimAction.KEEP
        return ClaimAction.IGNORE if rs_meta.get("deletionTimestamp") else ClaimAction.RELEASE
    if (rs_meta.get("deletionTimestamp") or object_meta(pod).get("deletionTimestamp")
            or not selector.matches(object_labels(pod))):
        return ClaimAction.IGNORE
    return ClaimAction.ADOPT


# -- status --------------------------------------------------------------------------------
def _min_ready_seconds(rs: Mapping[str, Any]) -> int:
    value = (rs.get("spec") or {}).get("minReadySeconds") or 0
    return value if isinstance(value, int) else 0


def _replicas(rs: Mapping[str, Any]) -> int:
    value = (rs.get("spec") or {}).get("replicas")
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def calculate_status(rs: Mapping[str, Any], pods: Sequence[Mapping[str, Any]],
                     manage_error: str | None, now: float) -> Obj:
    """The status ``rs`` should have, given its claimed active ``pods`` at wall time ``now``.

    ``manage_error`` is the message of a failed create or delete in this sync:
    it sets ``ReplicaFailure`` (reason ``FailedCreate`` when pods were
    missing, ``FailedDelete`` when there were too many) unless already set;
    a sync without error removes it.
    """
    status: Obj = thaw(rs.get("status") or {})
    template_meta = ((rs.get("spec") or {}).get("template") or {}).get("metadata") or {}
    template_labels = tuple((template_meta.get("labels") or {}).items())
    min_ready = _min_ready_seconds(rs)
    fully_labeled = ready = available = 0
    for pod in pods:
        labels = object_labels(pod)
        if all(labels.get(k) == v for k, v in template_labels):
            fully_labeled += 1
        if is_pod_ready(pod):
            ready += 1
            if min_ready <= 0 or is_pod_available(pod, min_ready, now):
                available += 1
    conditions = [c for c in status.get("conditions") or () if isinstance(c, dict)]
    failing = any(c.get("type") == REPLICA_FAILURE for c in conditions)
    if manage_error is not None and not failing:
        diff = len(pods) - _replicas(rs)
        cond: Obj = {"type": REPLICA_FAILURE, "status": "True",
                     "lastTransitionTime": format_timestamp(now), "message": manage_error}
        if diff:
            cond["reason"] = "FailedCreate" if diff < 0 else "FailedDelete"
        conditions.append(cond)
    elif manage_error is None and failing:
        conditions = [c for c in conditions if c.get("type") != REPLICA_FAILURE]
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)
    status.update(replicas=len(pods), fullyLabeledReplicas=fully_labeled,
                  readyReplicas=ready, availableReplicas=available,
                  observedGeneration=int(object_meta(rs).get("generation") or 0))
    return status


def next_available_in(rs: Mapping[str, Any], pods: Sequence[Mapping[str, Any]],
                      now: float) -> float | None:
    """Seconds until the first ready but not yet available pod becomes available, if any."""
    min_ready = _min_ready_seconds(rs)
    if min_ready <= 0:
        return None
    waits = []
    for pod in pods:
        since = _ready_time(pod) if is_pod_ready(pod) else None
        if since is not None and since + min_ready > now:
            waits.append(since + min_ready - now)
    return min(waits) if waits else None


# -- the controller ------------------------------------------------------------------------
PodControlFactory = Callable[[ControllerContext], PodControl]


class ReplicaSetController:
    """Keeps each ReplicaSet's pods in number (see the module docstring)."""

    name = "replicaset"
    event_source = "replicaset-controller"
    informers: Sequence[str] = ("replicasets", "pods")

    def __init__(self, *, burst_replicas: int = BURST_REPLICAS,
                 expectations_ttl: float = EXPECTATIONS_TIMEOUT,
                 pod_control_factory: PodControlFactory | None = None) -> None:
        if burst_replicas < 1:
            raise ValueError("burst_replicas must be at least 1")
        self.burst_replicas = burst_replicas
        self.expectations_ttl = expectations_ttl
        self._pod_control_factory = pod_control_factory
        self._context: ControllerContext | None = None
        self._rs_informer: SharedInformer | None = None
        self._pod_informer: SharedInformer | None = None
        self.pod_control: PodControl | None = None
        self.expectations: UIDTrackingControllerExpectations | None = None

    # -- handlers ----------------------------------------------------------------------
    def setup(self, context: ControllerContext) -> None:
        self._context = context
        self._rs_informer = context.informer("replicasets")
        self._pod_informer = context.informer("pods")
        if POD_CONTROLLER_UID_INDEX not in self._pod_informer.indexer.get_indexers():
            self._pod_informer.indexer.add_indexers(
                {POD_CONTROLLER_UID_INDEX: pod_controller_uid_index})
        self.expectations = UIDTrackingControllerExpectations(
            context.clientset.clock, ttl_seconds=self.expectations_ttl)
        self.pod_control = (self._pod_control_factory(context) if self._pod_control_factory
                            else RealPodControl(context.clientset, context.recorder))
        self._rs_informer.add_event_handler(ResourceEventHandlerFuncs(
            add=lambda obj, _initial: context.enqueue(meta_namespace_key_func(obj)),
            update=self._update_rs, delete=self._delete_rs))
        self._pod_informer.add_event_handler(ResourceEventHandlerFuncs(
            add=lambda obj, _initial: self._add_pod(obj), update=self._update_pod,
            delete=self._delete_pod))

    def _parts(self) -> tuple[ControllerContext, SharedInformer, SharedInformer,
                              UIDTrackingControllerExpectations, PodControl]:
        if (self._context is None or self._rs_informer is None or self._pod_informer is None
                or self.expectations is None or self.pod_control is None):
            raise RuntimeError("the ReplicaSet controller is used before setup")
        return (self._context, self._rs_informer, self._pod_informer, self.expectations,
                self.pod_control)

    def _update_rs(self, old: Any, new: Any) -> None:
        if object_meta(old).get("uid") != object_meta(new).get("uid"):
            # Deleted and created again under the same name, unseen in between.
            self._delete_rs(DeletedFinalStateUnknown(meta_namespace_key_func(old), old))
        self._parts()[0].enqueue(meta_namespace_key_func(new))

    def _delete_rs(self, obj: Any) -> None:
        context, _, _, expectations, _ = self._parts()
        if isinstance(obj, DeletedFinalStateUnknown):
            key = obj.key
        else:
            key = meta_namespace_key_func(obj)
        expectations.delete_expectations(key)
        context.enqueue(key)

    def _resolve(self, namespace: str, ref: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """The cached ReplicaSet a controller reference names, if it is one and still exists."""
        if ref is None or ref.get("kind") != "ReplicaSet":
            return None
        try:
            rs = self._parts()[1].lister().get(namespace, str(ref.get("name", "")))
        except NotFound:
            return None
        return rs if object_meta(rs).get("uid") == ref.get("uid") else None

    def _matching_replica_sets(self, pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """ReplicaSets of the pod's namespace whose selector matches the (orphan) pod."""
        labels = object_labels(pod)
        if not labels:
            return []
        found: list[Mapping[str, Any]] = []
        for rs in self._parts()[1].lister().list(namespace=object_namespace(pod)):
            try:
                selector = LabelSelector.from_dict((rs.get("spec") or {}).get("selector"))
            except BadRequest:
                continue
            if not selector.is_empty() and selector.matches(labels):
                found.append(rs)
        return found

    def _add_pod(self, pod: Any) -> None:
        context, _, _, expectations, _ = self._parts()
        if object_meta(pod).get("deletionTimestamp"):
            # Seen for the first time already terminating (e.g. after a relist).
            self._delete_pod(pod)
            return
        ref = controller_ref(pod)
        if ref is not None:
            rs = self._resolve(object_namespace(pod), ref)
            if rs is not None:
                key = meta_namespace_key_func(rs)
                expectations.creation_observed(key)
                context.enqueue(key)
            return
        for rs in self._matching_replica_sets(pod):
            context.enqueue(meta_namespace_key_func(rs))

    def _update_pod(self, old: Any, cur: Any) -> None:
        context = self._parts()[0]
        if object_resource_version(old) == object_resource_version(cur):
            return  # a resync: nothing changed
        labels_changed = object_labels(old) != object_labels(cur)
        if object_meta(cur).get("deletionTimestamp"):
            # Graceful deletion shows as an update; count it as the deletion it is.
            self._delete_pod(cur)
            if labels_changed:
                self._delete_pod(old)
            return
        cur_ref, old_ref = controller_ref(cur), controller_ref(old)
        ref_changed = cur_ref != old_ref
        namespace = object_namespace(cur)
        if ref_changed and old_ref is not None:
            previous = self._resolve(namespace, old_ref)
            if previous is not None:
                context.enqueue(meta_namespace_key_func(previous))
        if cur_ref is not None:
            rs = self._resolve(namespace, cur_ref)
            if rs is None:
                return
            key = meta_namespace_key_func(rs)
            context.enqueue(key)
            min_ready = _min_ready_seconds(rs)
            if min_ready > 0 and not is_pod_ready(old) and is_pod_ready(cur):
                context.enqueue_after(key, min_ready + 1.0)
            return
        if labels_changed or ref_changed:
            for rs in self._matching_replica_sets(cur):
                context.enqueue(meta_namespace_key_func(rs))

    def _delete_pod(self, obj: Any) -> None:
        context, _, _, expectations, _ = self._parts()
        pod = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        if not isinstance(pod, Mapping):
            return
        rs = self._resolve(object_namespace(pod), controller_ref(pod))
        if rs is None:
            return
        key = meta_namespace_key_func(rs)
        expectations.deletion_observed(key, meta_namespace_key_func(pod))
        context.enqueue(key)

    # -- reconcile ---------------------------------------------------------------------
    async def reconcile(self, key: str) -> Result | None:
        context, rs_informer, _, expectations, _ = self._parts()
        namespace, name = split_meta_namespace_key(key)
        try:
            rs = rs_informer.lister().get(namespace, name)
        except NotFound:
            expectations.delete_expectations(key)
            return DONE
        needs_sync = expectations.satisfied(key)
        try:
            selector = LabelSelector.from_dict((rs.get("spec") or {}).get("selector"))
        except BadRequest as e:
            raise PermanentError(f"replicaset {key} has an invalid selector: {e}") from e
        pods = await self._claim_pods(rs, selector, self._candidate_pods(rs))
        manage_error: Exception | None = None
        if needs_sync and not object_meta(rs).get("deletionTimestamp"):
            try:
                await self._manage_replicas(key, rs, pods)
            except Exception as e:  # noqa: BLE001 - recorded in the status, then retried
                manage_error = e
        now = context.clientset.clock.now()
        status = calculate_status(rs, pods, None if manage_error is None else str(manage_error),
                                  now)
        await self._update_status(rs, status)
        if manage_error is not None:
            _log.info("replicaset %s: %s; retrying", key, manage_error)
            return REQUEUE
        waits = [w for w in (next_available_in(rs, pods, now),
                             None if expectations.satisfied(key) else expectations.expires_in(key))
                 if w is not None and w > 0]
        return requeue_after_result(min(waits)) if waits else DONE

    def _candidate_pods(self, rs: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """The active cached pods ``rs`` may claim, in key order.

        Those are its own pods and its namespace's orphans: every other pod of
        the namespace is controlled by someone else, which ``claim_action``
        ignores.
        """
        indexer = self._parts()[2].indexer
        namespace = object_namespace(rs)
        prefix = f"{namespace}/"
        uid = object_meta(rs).get("uid")
        keys = indexer.index_keys(POD_CONTROLLER_UID_INDEX, orphan_pod_index_key(namespace))
        if isinstance(uid, str) and uid:
            keys += indexer.index_keys(POD_CONTROLLER_UID_INDEX, uid)
            keys.sort()
        candidates: list[Mapping[str, Any]] = []
        for key in keys:
            # A key is "namespace/name", or just "name" when the namespace is "".
            if key.startswith(prefix) if namespace else "/" not in key:
                pod = indexer.get_by_key(key)
                if pod is not None and is_pod_active(pod):
                    candidates.append(pod)
        return candidates

    async def _claim_pods(self, rs: Mapping[str, Any], selector: LabelSelector,
                          pods: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """The pods ``rs`` controls after adopting and releasing (see the module docstring).

        Raises:
            ApiError: an adoption or release failed (or ``rs`` may no longer adopt).
        """
        _, _, _, _, pod_control = self._parts()
        claimed: list[Mapping[str, Any]] = []
        errors: list[ApiError] = []
        may_adopt: bool | None = None
        rs_uid = str(object_meta(rs).get("uid", ""))
        for i, pod in enumerate(pods, 1):
            if i % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # let the other controllers of the process run
            action = claim_action(pod, rs, selector)
            if action is ClaimAction.KEEP:
                claimed.append(pod)
                continue
            if action is ClaimAction.IGNORE:
                continue
            namespace, name = object_namespace(pod), object_name(pod)
            pod_uid = str(object_meta(pod).get("uid", ""))
            if action is ClaimAction.ADOPT:
                if may_adopt is None:
                    try:
                        await self._recheck_can_adopt(rs)
                        may_adopt = True
                    except ApiError as e:
                        errors.append(e)
                        may_adopt = False
                if not may_adopt:
                    continue
                try:
                    await pod_control.patch_pod(namespace, name,
                                                adoption_patch(pod_uid, owner_reference(rs)))
                except NotFound:
                    continue
                except ApiError as e:
                    errors.append(e)
                    continue
                claimed.append(pod)
            elif action is ClaimAction.RELEASE:
                try:
                    await pod_control.patch_pod(namespace, name, release_patch(pod_uid, rs_uid))
                except (NotFound, Invalid, Conflict):
                    pass  # gone, recreated, or already released
                except ApiError as e:
                    errors.append(e)
        if errors:
            raise errors[0]
        return claimed

    async def _recheck_can_adopt(self, rs: Mapping[str, Any]) -> None:
        """Read ``rs`` from the store (not the cache): it must be the same and not deleting."""
        context = self._parts()[0]
        name, namespace = object_name(rs), object_namespace(rs)
        fresh = await context.clientset.resource("replicasets").get(name, namespace)
        fresh_meta, uid = fresh["metadata"], object_meta(rs).get("uid")
        if fresh_meta.get("uid") != uid:
            raise Conflict("replicasets", name, f"original ReplicaSet {namespace}/{name} is "
                           f"gone: got uid {fresh_meta.get('uid')}, wanted {uid}")
        if fresh_meta.get("deletionTimestamp"):
            raise Conflict("replicasets", name, f"{namespace}/{name} has just been deleted at "
                           f"{fresh_meta['deletionTimestamp']}")

    async def _manage_replicas(self, key: str, rs: Mapping[str, Any],
                               pods: Sequence[Mapping[str, Any]]) -> None:
        """Create or delete the difference between ``pods`` and ``spec.replicas``.

        Raises:
            Exception: the first create or delete that failed.
        """
        _, _, _, expectations, pod_control = self._parts()
        namespace = object_namespace(rs)
        diff = len(pods) - _replicas(rs)
        if diff < 0:
            count = min(-diff, self.burst_replicas)
            expectations.expect_creations(key, count)
            _log.debug("replicaset %s: too few replicas, need %d, creating %d", key,
                       _replicas(rs), count)
            template = (rs.get("spec") or {}).get("template") or {}
            ref = owner_reference(rs)

            async def create() -> None:
                try:
                    await pod_control.create_pod(namespace, template, rs, ref)
                except Forbidden:
                    # The namespace is being terminated: nothing can be created, and no
                    # event will ever come for this pod.
                    expectations.creation_observed(key)

            successes, error = await slow_start_batch(count, SLOW_START_INITIAL_BATCH_SIZE,
                                                      create)
            for _ in range(count - successes):
                expectations.creation_observed(key)
            if error is not None:
                raise error
        elif diff > 0:
            count = min(diff, self.burst_replicas)
            doomed = pods_to_delete(pods, self._related_pods(rs), count)
            expectations.expect_deletions(key, [meta_namespace_key_func(p) for p in doomed])
            _log.debug("replicaset %s: too many replicas, need %d, deleting %d", key,
                       _replicas(rs), count)

            async def delete(pod: Mapping[str, Any]) -> None:
                pod_key = meta_namespace_key_func(pod)
                try:
                    await pod_control.delete_pod(namespace, object_name(pod), rs,
                                                 uid=str(object_meta(pod).get("uid") or "") or None)
                except (NotFound, Conflict):
                    expectations.deletion_observed(key, pod_key)  # already gone
                except Exception:
                    expectations.deletion_observed(key, pod_key)
                    raise

            results = await asyncio.gather(*(delete(p) for p in doomed), return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException) and not isinstance(result, Exception):
                    raise result
            for result in results:
                if isinstance(result, Exception):
                    raise result

    def _related_pods(self, rs: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """The pods of every ReplicaSet sharing ``rs``'s controller (none if it has none)."""
        _, rs_informer, pod_informer, _, _ = self._parts()
        ref = controller_ref(rs)
        if ref is None:
            return []
        namespace = object_namespace(rs)
        seen: dict[str, None] = {}
        related: list[Mapping[str, Any]] = []
        for sibling in rs_informer.lister().list(namespace=namespace):
            sibling_ref = controller_ref(sibling)
            if sibling_ref is None or sibling_ref.get("uid") != ref.get("uid"):
                continue
            try:
                selector = LabelSelector.from_dict((sibling.get("spec") or {}).get("selector"))
            except BadRequest:
                continue
            for pod in pod_informer.lister().list(selector, namespace=namespace):
                uid = str(object_meta(pod).get("uid", ""))
                if uid not in seen:
                    seen[uid] = None
                    related.append(pod)
        return related

    async def _update_status(self, rs: Mapping[str, Any], status: Obj) -> None:
        """Write ``status`` if it differs from ``rs``'s, reading ``rs`` again once on a conflict."""
        if thaw(rs.get("status") or {}) == status:
            return
        context = self._parts()[0]
        client = context.clientset.resource("replicasets")
        body: Obj = thaw(rs)
        for attempt in range(2):
            body["status"] = status
            try:
                await client.update_status(body)
                return
            except NotFound:
                return  # deleted meanwhile; nothing to report on
            except Conflict:
                if attempt:
                    raise
                body = await client.get(object_name(rs), object_namespace(rs))
