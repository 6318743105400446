"""The node lifecycle controller: notices dead nodes, taints them, and evicts their pods.

Keys are node names. Each reconcile of a node, on its own wall clock
(``clientset.clock``):

1. records whether the node's heartbeats moved (its ``Ready`` condition's
   ``lastHeartbeatTime``, its Lease in ``kube-node-lease``), see
   ``nodehealth.observe``. Heartbeat timestamps are compared, never trusted
   as times: the grace runs from when this controller saw them change;
2. once no heartbeat has been seen for ``grace_period`` seconds
   (``startup_grace_period`` for a node that never posted ``Ready``), sets
   the node's conditions to ``Unknown`` (``NodeStatusUnknown``) and, if it
   was ready, records a ``NodeNotReady`` event and marks the ``Ready``
   condition of the node's pods ``False`` (Kubernetes' MarkPodsNotReady;
   retried until it succeeds or the node is ready again);
3. brings the taints it owns in line with the node (``nodehealth.
   reconcile_taints``): ``unreachable`` or ``not-ready`` with ``NoExecute``
   and ``NoSchedule`` while ``Ready`` is Unknown or False, none once it is
   True, plus the pressure and ``unschedulable`` ``NoSchedule`` taints.
   New ``NoExecute`` taints are rate limited per zone (``node_eviction_rate``,
   slower or stopped in a partially disrupted zone; see ``nodehealth``).
   While no node at all is ready, it suspects itself (cut off from the
   nodes) rather than all of them, as Kubernetes does in its full
   disruption mode: it puts no ``NoExecute`` taint on any node and takes
   its own off until some node is ready again;
4. evicts the node's pods that do not tolerate its ``NoExecute`` taints: at
   once without a toleration, after the smallest ``tolerationSeconds``
   otherwise (``eviction_timeout`` for a pod with no toleration of its own
   for ``not-ready``/``unreachable``), never when tolerated for ever. An
   eviction adds the ``DisruptionTarget`` condition, deletes the pod with
   grace 0 (its node cannot stop it) and records ``TaintManagerEviction``;
   a pending eviction called off records ``TaintManagerEviction`` too. A
   pod already forced, held only by its finalizers, is left alone;
5. asks to look again when the next thing is due: the end of the grace, the
   next eviction, and at the latest after ``monitor_period``, so every node
   is re-checked that often.

What it remembers (probe times, eviction start times) lives for one
leadership term: a new term observes every node afresh and gives it a full
grace, as Kubernetes does after a restart. Eviction start times come from
the ``timeAdded`` of the taints (written by this controller on its own
clock), so a new term does not restart the pods' tolerations.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from controllers.api.errors import Conflict, NotFound
from controllers.api.objects import Obj
from controllers.builtin.nodehealth import (
    NO_EXECUTE,
    NODE_LEASE_NAMESPACE,
    NodeHealth,
    TokenBucket,
    Verdict,
    adds_no_execute,
    decide_eviction,
    eviction_start,
    grace_for,
    is_expired,
    is_fully_disrupted,
    mark_pod_not_ready,
    mark_unknown,
    observe,
    pod_disruption_status,
    ready_status,
    reconcile_taints,
    tainting_rate,
    zone_of,
    zone_state,
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
from controllers.informers.store import object_meta, object_name, object_namespace, thaw

__all__ = ["NODE_NAME_INDEX", "NodeLifecycleController"]

_log = logging.getLogger(__name__)

NODE_NAME_INDEX = "spec.nodeName"
"""The pods informer's index of pods by the node they are bound to."""

_NODE_ATTEMPTS = 3


def _node_name_index(pod: Any) -> list[str]:
    spec = pod.get("spec") if isinstance(pod, Mapping) else None
    node = spec.get("nodeName") if isinstance(spec, Mapping) else None
    return [node] if isinstance(node, str) and node else []


class NodeLifecycleController:
    """Marks silent nodes unreachable, taints them and evicts their pods (see the module)."""

    name = "node-lifecycle"
    event_source = "node-controller"
    informers: Sequence[str] = ("nodes", "leases", "pods")

    def __init__(self, grace_period: float = 40.0, eviction_timeout: float = 300.0,
                 monitor_period: float = 5.0, *, startup_grace_period: float = 60.0,
                 node_eviction_rate: float = 0.1, secondary_node_eviction_rate: float = 0.01,
                 unhealthy_zone_threshold: float = 0.55,
                 large_cluster_size_threshold: int = 50) -> None:
        """Create the controller; times are in seconds, with Kubernetes' defaults.

        Args:
            grace_period: how long a node may go without a heartbeat.
            eviction_timeout: how long a pod without its own toleration for
                ``not-ready``/``unreachable`` stays on such a node.
            monitor_period: the longest time between two checks of a node.
            startup_grace_period: the grace of a node that never posted ``Ready``.
            node_eviction_rate: nodes per second per zone that may get a new
                ``NoExecute`` taint.
            secondary_node_eviction_rate: the same in a partially disrupted
                zone of more than ``large_cluster_size_threshold`` nodes (a
                smaller one gets none).
            unhealthy_zone_threshold: the share of not-ready nodes (more than
                two) that makes a zone partially disrupted.

        Raises:
            ValueError: a period or rate that is not positive, a negative
                timeout, or a threshold outside (0, 1].
        """
        if min(grace_period, monitor_period, startup_grace_period) <= 0:
            raise ValueError("grace and monitor periods must be positive")
        if eviction_timeout < 0:
            raise ValueError("eviction_timeout must not be negative")
        if min(node_eviction_rate, secondary_node_eviction_rate) <= 0:
            raise ValueError("eviction rates must be positive")
        if not 0 < unhealthy_zone_threshold <= 1:
            raise ValueError("unhealthy_zone_threshold must be in (0, 1]")
        self.grace_period = grace_period
        self.eviction_timeout = eviction_timeout
        self.monitor_period = monitor_period
        self.startup_grace_period = startup_grace_period
        self.node_eviction_rate = node_eviction_rate
        self.secondary_node_eviction_rate = secondary_node_eviction_rate
        self.unhealthy_zone_threshold = unhealthy_zone_threshold
        self.large_cluster_size_threshold = large_cluster_size_threshold
        self._context: ControllerContext | None = None
        self._nodes: SharedInformer | None = None
        self._leases: SharedInformer | None = None
        self._pods: SharedInformer | None = None
        self._health: dict[str, NodeHealth] = {}
        # Node name -> pod uid -> when the exposure of a pod waiting out its toleration began.
        self._pending: dict[str, dict[str, float]] = {}
        # Nodes whose pods still have to be marked not ready.
        self._mark_pods: dict[str, None] = {}
        # Whether no node was ready at the last look (see nodehealth.is_fully_disrupted).
        self._fully_disrupted = False
        # Each zone's limit on new NoExecute taints.
        self._buckets: dict[str, TokenBucket] = {}

    def setup(self, context: ControllerContext) -> None:
        self._context = context
        self._health, self._pending, self._mark_pods = {}, {}, {}
        self._fully_disrupted, self._buckets = False, {}
        self._nodes = context.informer("nodes")
        self._leases = context.informer("leases")
        self._pods = context.informer("pods")
        if NODE_NAME_INDEX not in self._pods.indexer.get_indexers():
            self._pods.indexer.add_indexers({NODE_NAME_INDEX: _node_name_index})

        def node_key(obj: Any, *_: Any) -> None:
            obj = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
            context.enqueue(object_name(obj))

        def lease_key(obj: Any, *_: Any) -> None:
            obj = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
            if object_namespace(obj) == NODE_LEASE_NAMESPACE:
                context.enqueue(object_name(obj))

        def pod_update(old: Any, new: Any) -> None:
            for node in dict.fromkeys(_node_name_index(old) + _node_name_index(new)):
                self._maybe_enqueue_for_pod(node)

        def pod_add(obj: Any, *_: Any) -> None:
            pod_update(obj, obj)

        self._nodes.add_event_handler(ResourceEventHandlerFuncs(
            add=node_key, update=lambda old, new: node_key(new), delete=node_key))
        self._leases.add_event_handler(ResourceEventHandlerFuncs(
            add=lease_key, update=lambda old, new: lease_key(new), delete=lease_key))
        self._pods.add_event_handler(ResourceEventHandlerFuncs(add=pod_add, update=pod_update))

    def health(self, node_name: str) -> NodeHealth | None:
        """What this term has seen of ``node_name``'s heartbeats (``None``: not seen yet)."""
        return self._health.get(node_name)

    def _maybe_enqueue_for_pod(self, node_name: str) -> None:
        """A pod changed on ``node_name``: look at the node if the pod may have to go."""
        if self._context is None or self._nodes is None:
            return
        try:
            node = self._nodes.lister().get("", node_name)
        except NotFound:
            return
        spec = node.get("spec")
        taints = spec.get("taints") if isinstance(spec, Mapping) else None
        if any(isinstance(t, Mapping) and t.get("effect") == NO_EXECUTE for t in taints or ()):
            self._context.enqueue(node_name)

    async def reconcile(self, key: str) -> Result | None:
        context, nodes = self._context, self._nodes
        if context is None or nodes is None:
            raise RuntimeError("reconcile before setup")
        client = context.clientset.resource("nodes")
        for attempt in range(_NODE_ATTEMPTS):
            try:
                node = (nodes.lister().get("", key) if attempt == 0
                        else await client.get(key))
            except NotFound:
                self._forget(key)
                return DONE
            try:
                return await self._sync(key, node)
            except NotFound:
                self._forget(key)
                return DONE
            except Conflict:
                _log.debug("%s: node %s changed under us; reading it again", self.name, key)
        return REQUEUE

    def _forget(self, key: str) -> None:
        self._health.pop(key, None)
        self._pending.pop(key, None)
        self._mark_pods.pop(key, None)

    async def _sync(self, key: str, node: Mapping[str, Any]) -> Result:
        """One pass over ``node``; raises ``Conflict`` if a node write lost a race."""
        context = self._context
        if context is None:
            raise RuntimeError("reconcile before setup")
        client = context.clientset.resource("nodes")
        now = context.clientset.clock.now()
        health = observe(self._health.get(key), node, self._lease(key), now)
        self._health[key] = health
        grace = grace_for(node, self.grace_period, self.startup_grace_period)
        expired = is_expired(health, now, grace)
        if expired:
            conditions = mark_unknown(node, now)
            if conditions is not None:
                was = ready_status(node)
                new = thaw(node)
                new.setdefault("status", {})["conditions"] = conditions
                node = await client.update_status(new)
                if was == "True":
                    context.recorder.event(node, "Normal", "NodeNotReady",
                                           f"Node {key} status is now: NodeNotReady")
                    self._mark_pods[key] = None
        if key in self._mark_pods and (ready_status(node) == "True"
                                       or await self._mark_pods_not_ready(key, now)):
            self._mark_pods.pop(key, None)
        disrupted = self._update_zones(key, node, now)
        taints = reconcile_taints(node, now, no_execute=not disrupted)
        due = [now + self.monitor_period]
        if taints is not None and adds_no_execute(node, taints):
            zone = zone_of(node)
            self._buckets[zone], wait = self._buckets[zone].take(now)
            if wait > 0:
                taints = reconcile_taints(node, now, no_execute=False)
                if not math.isinf(wait):
                    due.append(now + wait)
        if taints is not None:
            new = thaw(node)
            spec = new.setdefault("spec", {})
            if taints:
                spec["taints"] = taints
            else:
                spec.pop("taints", None)
            node = await client.update(new)
        if not expired:
            due.append(health.probe_timestamp + grace)
        due += await self._evict_pods(key, node, now)
        return requeue_after(max(min(due) - now, 1e-3))

    def _update_zones(self, key: str, node: Mapping[str, Any], now: float) -> bool:
        """Zone states and rate limits from every node (``node`` as just written).

        Returns whether every zone is fully disrupted. Entering or leaving that
        state makes every node be looked at again, to take off or put back its
        ``NoExecute`` taint. A zone whose rate changes gets a new, full bucket.
        """
        context, nodes = self._context, self._nodes
        if context is None or nodes is None:
            return False
        everyone: dict[str, Mapping[str, Any]] = {object_name(n): n
                                                   for n in nodes.lister().list()}
        everyone[key] = node
        zones: dict[str, list[str | None]] = {}
        for name in sorted(everyone):
            zones.setdefault(zone_of(everyone[name]), []).append(ready_status(everyone[name]))
        states = {zone: zone_state(statuses, self.unhealthy_zone_threshold)
                  for zone, statuses in zones.items()}
        buckets: dict[str, TokenBucket] = {}
        for zone, state in sorted(states.items()):
            rate = tainting_rate(state, len(zones[zone]), rate=self.node_eviction_rate,
                                 secondary_rate=self.secondary_node_eviction_rate,
                                 large_cluster_threshold=self.large_cluster_size_threshold)
            bucket = self._buckets.get(zone)
            buckets[zone] = (bucket if bucket is not None and bucket.rate == rate
                             else TokenBucket(rate, 1.0, now))
        self._buckets = buckets
        disrupted = is_fully_disrupted(list(states.values()))
        if disrupted == self._fully_disrupted:
            return disrupted
        self._fully_disrupted = disrupted
        if disrupted:
            _log.warning("%s: no node is ready; no NoExecute taints until one is", self.name)
        else:
            _log.info("%s: a node is ready again; NoExecute taints resume", self.name)
        for name in sorted(everyone):
            if name != key:
                context.enqueue(name)
        return disrupted

    def _lease(self, key: str) -> Mapping[str, Any] | None:
        if self._leases is None:
            return None
        try:
            return self._leases.lister().get(NODE_LEASE_NAMESPACE, key)
        except NotFound:
            return None

    def _pods_on(self, key: str) -> list[Mapping[str, Any]]:
        if self._pods is None:
            return []
        return list(self._pods.indexer.by_index(NODE_NAME_INDEX, key))

    async def _mark_pods_not_ready(self, key: str, now: float) -> bool:
        """Set ``Ready`` False on every pod of the node; whether all writes went through."""
        context = self._context
        if context is None:
            return False
        ok = True
        for pod in self._pods_on(key):
            try:
                written = await self._write_pod_status(pod, lambda p: mark_pod_not_ready(p, now))
            except Conflict:
                ok = False
                continue
            if written is not None:
                context.recorder.event(written, "Warning", "NodeNotReady", "Node is not ready")
        return ok

    async def _write_pod_status(
        self, pod: Mapping[str, Any],
        change: Callable[[Mapping[str, Any]], dict[str, Any] | None],
    ) -> Obj | None:
        """Write ``change(pod)`` as the pod's status, reading the pod again once on a conflict.

        Returns:
            The pod as written; ``None`` if there was nothing to write, or the
            pod is gone (or replaced by another of that name).

        Raises:
            Conflict: the pod changed again.
        """
        context = self._context
        if context is None:
            return None
        client = context.clientset.resource("pods")
        uid = object_meta(pod).get("uid")
        current = pod
        for attempt in range(2):
            status = change(current)
            if status is None:
                return None
            try:
                return await client.update_status({**thaw(current), "status": status})
            except NotFound:
                return None
            except Conflict:
                if attempt == 1:
                    raise
            try:
                current = await client.get(object_name(pod), object_namespace(pod))
            except NotFound:
                return None
            if object_meta(current).get("uid") != uid:
                return None
        return None

    async def _evict_pods(self, key: str, node: Mapping[str, Any], now: float) -> list[float]:
        """Evict what is due on the node; the deadlines of the evictions still pending."""
        context = self._context
        if context is None:
            return []
        before = self._pending.get(key, {})
        after: dict[str, float] = {}
        deadlines: list[float] = []
        for pod in self._pods_on(key):
            m = object_meta(pod)
            uid = str(m.get("uid", ""))
            pod_key = f"{object_namespace(pod)}/{object_name(pod)}"
            if m.get("deletionTimestamp") and not m.get("deletionGracePeriodSeconds"):
                continue  # already forced; only its finalizers hold it
            known = before.get(uid)
            start = eviction_start(node, pod, now)
            if known is not None:
                start = min(start, known)
            decision = decide_eviction(pod, node, default_seconds=self.eviction_timeout,
                                       start=start, now=now)
            if decision.verdict is Verdict.WAIT:
                after[uid] = start
                deadlines.append(decision.deadline)
            elif decision.verdict is Verdict.EVICT:
                await self._evict(pod, pod_key, now)
            elif known is not None:
                context.recorder.event(pod, "Normal", "TaintManagerEviction",
                                       f"Cancelling deletion of Pod {pod_key}")
        if after:
            self._pending[key] = after
        else:
            self._pending.pop(key, None)
        return deadlines

    async def _evict(self, pod: Mapping[str, Any], pod_key: str, now: float) -> None:
        """Say why the pod goes, then delete it at once (its node cannot stop it)."""
        context = self._context
        if context is None:
            return
        client = context.clientset.resource("pods")
        name, namespace = object_name(pod), object_namespace(pod)
        uid = str(object_meta(pod).get("uid", "")) or None
        try:
            await self._write_pod_status(pod, lambda p: pod_disruption_status(p, now))
        except Conflict:
            # The condition only informs; the deletion below is what counts.
            _log.debug("%s: could not mark pod %s as a disruption target", self.name, pod_key)
        try:
            gone = await client.delete(name, namespace, grace_period_seconds=0, uid=uid)
        except NotFound:
            return
        except Conflict:
            return  # another pod of that name now: not the one we judged
        context.recorder.event(gone, "Normal", "TaintManagerEviction",
                               f"Marking for deletion Pod {pod_key}")
