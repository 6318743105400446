"""The node lifecycle controller's decisions, as pure functions over plain or frozen objects.

Health. A node proves it is alive by moving its ``Ready`` condition's
``lastHeartbeatTime`` or its Lease's ``spec.renewTime``. The controller never
trusts the absolute value of either (they come from the node's clock); it
only notices that they changed, and records *its own* wall-clock time of
that observation as the node's probe time (``observe``). A node first seen
gets a full grace period from that moment; a node that never posted a
``Ready`` condition is measured from its creation with the (longer) startup
grace. Once ``now - probe >= grace`` the node is unreachable:
``mark_unknown`` sets ``Ready``, ``MemoryPressure``, ``DiskPressure`` and
``PIDPressure`` to ``Unknown`` (``NodeStatusUnknown``, "Kubelet stopped
posting node status."), adding those never posted (``NodeStatusNeverUpdated``).

Taints. ``reconcile_taints`` derives the taints this controller owns from
the node: ``NoSchedule`` taints from conditions (``Ready`` False/Unknown ->
``not-ready``/``unreachable``; ``MemoryPressure``, ``DiskPressure``,
``PIDPressure``, ``NetworkUnavailable`` True -> their taints) and from
``spec.unschedulable``; one ``NoExecute`` taint from ``Ready`` (False ->
``not-ready``, Unknown -> ``unreachable``, True -> none), stamped with
``timeAdded``. Taints it does not own are left alone.

Disruption. Nodes are grouped in zones (``topology.kubernetes.io/region``
and ``zone`` labels), each ``Normal``, ``PartialDisruption`` (more than two
nodes and at least the unhealthy threshold of them not ready) or
``FullDisruption`` (none ready). New ``NoExecute`` taints are rate limited
per zone (``tainting_rate``, ``TokenBucket``): at the normal rate, slower in
a partially disrupted large zone, not at all in a partially disrupted small
one. When every zone is fully disrupted (``is_fully_disrupted``), the
controller is more likely cut off than every node dead: no ``NoExecute``
taint is wanted anywhere.

Eviction. A pod on a node with ``NoExecute`` taints is evicted at once if
some taint has no matching toleration, kept for ever if every matching
toleration lacks ``tolerationSeconds``, and otherwise evicted once the
smallest ``tolerationSeconds`` has passed since the start of its exposure
(``eviction_start``). A pod with no toleration of its own for the
``not-ready`` or ``unreachable`` taint is treated as tolerating it for the
default seconds, as Kubernetes' DefaultTolerationSeconds admission does.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controllers.api.objects import format_timestamp, parse_timestamp
from controllers.informers.store import thaw

__all__ = [
    "CONDITION_TAINTS",
    "DISRUPTION_TARGET",
    "NODE_LEASE_NAMESPACE",
    "NO_EXECUTE",
    "NO_SCHEDULE",
    "REGION_LABEL",
    "TAINT_NOT_READY",
    "TAINT_UNREACHABLE",
    "TAINT_UNSCHEDULABLE",
    "UNKNOWN_CONDITION_TYPES",
    "ZONE_LABEL",
    "EvictionDecision",
    "NodeHealth",
    "TokenBucket",
    "Verdict",
    "ZoneState",
    "adds_no_execute",
    "condition_of",
    "decide_eviction",
    "effective_tolerations",
    "eviction_start",
    "grace_for",
    "is_expired",
    "is_fully_disrupted",
    "mark_pod_not_ready",
    "mark_unknown",
    "min_toleration_seconds",
    "observe",
    "pod_disruption_status",
    "ready_status",
    "reconcile_taints",
    "tainting_rate",
    "tolerates",
    "zone_of",
    "zone_state",
]

NODE_LEASE_NAMESPACE = "kube-node-lease"
"""Where each node's heartbeat Lease (named after the node) lives."""

REGION_LABEL = "topology.kubernetes.io/region"
ZONE_LABEL = "topology.kubernetes.io/zone"
NO_EXECUTE = "NoExecute"
NO_SCHEDULE = "NoSchedule"
TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"

CONDITION_TAINTS: Mapping[str, Mapping[str, str]] = {
    "Ready": {"False": TAINT_NOT_READY, "Unknown": TAINT_UNREACHABLE},
    "MemoryPressure": {"True": "node.kubernetes.io/memory-pressure"},
    "DiskPressure": {"True": "node.kubernetes.io/disk-pressure"},
    "NetworkUnavailable": {"True": "node.kubernetes.io/network-unavailable"},
    "PIDPressure": {"True": "node.kubernetes.io/pid-pressure"},
}
"""The ``NoSchedule`` taint key of each (condition type, status)."""

UNKNOWN_CONDITION_TYPES = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
"""The conditions set to ``Unknown`` when a node stops posting its status."""

DISRUPTION_TARGET = "DisruptionTarget"
"""The pod condition saying why a pod is about to be deleted."""

_OWNED_NO_SCHEDULE = frozenset(
    [TAINT_UNSCHEDULABLE] + [key for keys in CONDITION_TAINTS.values() for key in keys.values()])
_OWNED_NO_EXECUTE = frozenset([TAINT_NOT_READY, TAINT_UNREACHABLE])


# -- health --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class NodeHealth:
    """What the controller last saw of a node's heartbeats, on its own clock."""

    # The controller's wall-clock time when it last saw a heartbeat move.
    probe_timestamp: float
    # Whether the node had a Ready condition, and its lastHeartbeatTime.
    has_ready: bool
    ready_heartbeat: str | None
    # The Lease's spec.renewTime when last seen (None: no Lease seen yet).
    lease_renew_time: str | None


def condition_of(obj: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    """The ``status.conditions`` entry of ``type_`` (plain or frozen), if any."""
    status = obj.get("status")
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    for cond in conditions if isinstance(conditions, (list, tuple)) else ():
        if isinstance(cond, Mapping) and cond.get("type") == type_:
            return cond
    return None


def ready_status(node: Mapping[str, Any]) -> str | None:
    """The status of the node's ``Ready`` condition (``None`` if it has none)."""
    cond = condition_of(node, "Ready")
    status = cond.get("status") if cond is not None else None
    return status if isinstance(status, str) else None


def _timestamp(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def _creation(obj: Mapping[str, Any]) -> float | None:
    m = obj.get("metadata")
    return _timestamp(m.get("creationTimestamp")) if isinstance(m, Mapping) else None


def _renew_time(lease: Mapping[str, Any] | None) -> str | None:
    if lease is None:
        return None
    spec = lease.get("spec")
    renew = spec.get("renewTime") if isinstance(spec, Mapping) else None
    return renew if isinstance(renew, str) else ""


def observe(saved: NodeHealth | None, node: Mapping[str, Any],
            lease: Mapping[str, Any] | None, now: float) -> NodeHealth:
    """The node's health after looking at ``node`` and its ``lease`` at ``now``."""
    cond = condition_of(node, "Ready")
    has_ready = cond is not None
    heartbeat = cond.get("lastHeartbeatTime") if cond is not None else None
    heartbeat = heartbeat if isinstance(heartbeat, str) else None
    if saved is None:
        if has_ready:
            probe = now
        else:
            created = _creation(node)
            probe = now if created is None else min(created, now)
    elif saved.has_ready != has_ready or (has_ready and saved.ready_heartbeat != heartbeat):
        probe = now
    else:
        probe = saved.probe_timestamp
    renew = _renew_time(lease)
    if renew is not None and (saved is None or saved.lease_renew_time != renew):
        probe = now
    if renew is None and saved is not None:
        renew = saved.lease_renew_time  # a lease that disappears is not a heartbeat
    return NodeHealth(probe, has_ready, heartbeat, renew)


def grace_for(node: Mapping[str, Any], grace_period: float, startup_grace_period: float
              ) -> float:
    """The grace of a node: the startup grace until it has posted a ``Ready`` condition."""
    return grace_period if condition_of(node, "Ready") is not None else startup_grace_period


def is_expired(health: NodeHealth, now: float, grace: float) -> bool:
    """Whether no heartbeat has been seen for ``grace`` seconds."""
    return now - health.probe_timestamp >= grace


def mark_unknown(node: Mapping[str, Any], now: float) -> list[dict[str, Any]] | None:
    """The conditions of an unreachable node, or ``None`` if they already say so."""
    status = node.get("status")
    current = status.get("conditions") if isinstance(status, Mapping) else None
    conditions = [thaw(c) for c in current or () if isinstance(c, Mapping)]
    stamp = format_timestamp(now)
    m = node.get("metadata")
    created = m.get("creationTimestamp") if isinstance(m, Mapping) else None
    changed = False
    for type_ in UNKNOWN_CONDITION_TYPES:
        cond = next((c for c in conditions if c.get("type") == type_), None)
        if cond is None:
            conditions.append({"type": type_, "status": "Unknown",
                               "reason": "NodeStatusNeverUpdated",
                               "message": "Kubelet never posted node status.",
                               "lastHeartbeatTime": created or stamp,
                               "lastTransitionTime": stamp})
            changed = True
        elif cond.get("status") != "Unknown":
            cond.update(status="Unknown", reason="NodeStatusUnknown",
                        message="Kubelet stopped posting node status.",
                        lastTransitionTime=stamp)
            changed = True
    return conditions if changed else None


# -- disruption ----------------------------------------------------------------------------

class ZoneState(enum.Enum):
    """How much of a zone is not ready (Kubernetes' zone states)."""

    NORMAL = "Normal"
    PARTIAL_DISRUPTION = "PartialDisruption"
    FULL_DISRUPTION = "FullDisruption"


def zone_of(node: Mapping[str, Any]) -> str:
    """The node's zone: ``region:zone`` from its topology labels ("" without either)."""
    m = node.get("metadata")
    labels = m.get("labels") if isinstance(m, Mapping) else None
    labels = labels if isinstance(labels, Mapping) else {}
    region, zone = labels.get(REGION_LABEL) or "", labels.get(ZONE_LABEL) or ""
    return f"{region}:{zone}" if region or zone else ""


def zone_state(ready_statuses: Sequence[str | None], unhealthy_threshold: float) -> ZoneState:
    """The state of a zone whose nodes' ``Ready`` statuses are ``ready_statuses``.

    Full disruption: no node ready. Partial: more than two not ready, and at
    least ``unhealthy_threshold`` of them.
    """
    ready = sum(1 for status in ready_statuses if status == "True")
    not_ready = len(ready_statuses) - ready
    if ready == 0 and not_ready > 0:
        return ZoneState.FULL_DISRUPTION
    if not_ready > 2 and not_ready / len(ready_statuses) >= unhealthy_threshold:
        return ZoneState.PARTIAL_DISRUPTION
    return ZoneState.NORMAL


def is_fully_disrupted(states: Sequence[ZoneState]) -> bool:
    """Whether every zone is fully disrupted: no node at all is ready.

    Kubernetes then suspects itself rather than every node: it stops adding
    ``NoExecute`` taints and takes its own off, so nothing is evicted.
    """
    return bool(states) and all(state is ZoneState.FULL_DISRUPTION for state in states)


def tainting_rate(state: ZoneState, zone_size: int, *, rate: float, secondary_rate: float,
                  large_cluster_threshold: int) -> float:
    """Nodes per second that may get a new ``NoExecute`` taint in a zone in ``state``.

    A partially disrupted zone slows to ``secondary_rate`` if it has more than
    ``large_cluster_threshold`` nodes, and stops if it is smaller.
    """
    if state is ZoneState.PARTIAL_DISRUPTION:
        return secondary_rate if zone_size > large_cluster_threshold else 0.0
    return rate


@dataclass(frozen=True, slots=True)
class TokenBucket:
    """A token bucket holding at most one token, refilled at ``rate`` per second."""

    rate: float
    tokens: float
    updated: float

    def take(self, now: float) -> tuple[TokenBucket, float]:
        """Take a token at ``now``: the bucket after, and 0 if granted, else seconds to wait.

        A bucket of ``rate`` 0 grants nothing: the wait is ``math.inf``.
        """
        if self.rate <= 0:
            return self, math.inf
        tokens = min(1.0, self.tokens + max(0.0, now - self.updated) * self.rate)
        if tokens >= 1.0:
            return TokenBucket(self.rate, tokens - 1.0, now), 0.0
        return TokenBucket(self.rate, tokens, now), (1.0 - tokens) / self.rate


# -- taints --------------------------------------------------------------------------------

def _taints(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    spec = node.get("spec")
    taints = spec.get("taints") if isinstance(spec, Mapping) else None
    return [t for t in taints or () if isinstance(t, Mapping)]


def _wanted(node: Mapping[str, Any], no_execute: bool) -> list[tuple[str, str]]:
    """The (key, effect) pairs of the taints this controller wants on ``node``."""
    wanted: list[tuple[str, str]] = []
    status = node.get("status")
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    for cond in conditions or ():
        if isinstance(cond, Mapping):
            key = CONDITION_TAINTS.get(str(cond.get("type")), {}).get(str(cond.get("status")))
            if key is not None and (key, NO_SCHEDULE) not in wanted:
                wanted.append((key, NO_SCHEDULE))
    spec = node.get("spec")
    if isinstance(spec, Mapping) and spec.get("unschedulable") is True:
        wanted.append((TAINT_UNSCHEDULABLE, NO_SCHEDULE))
    ready = ready_status(node) if no_execute else None
    if ready == "False":
        wanted.append((TAINT_NOT_READY, NO_EXECUTE))
    elif ready == "Unknown":
        wanted.append((TAINT_UNREACHABLE, NO_EXECUTE))
    return wanted


def _owned(taint: Mapping[str, Any]) -> bool:
    effect, key = taint.get("effect"), taint.get("key")
    return (effect == NO_SCHEDULE and key in _OWNED_NO_SCHEDULE) or (
        effect == NO_EXECUTE and key in _OWNED_NO_EXECUTE)


def adds_no_execute(node: Mapping[str, Any], taints: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the new ``taints`` give an owned ``NoExecute`` taint to a node without one.

    That is rate limited per zone; swapping one owned taint for the other is not.
    """
    had = any(t.get("effect") == NO_EXECUTE and _owned(t) for t in _taints(node))
    has = any(t.get("effect") == NO_EXECUTE and _owned(t) for t in taints)
    return has and not had


def reconcile_taints(node: Mapping[str, Any], now: float, *, no_execute: bool = True
                     ) -> list[dict[str, Any]] | None:
    """The node's new ``spec.taints``, or ``None`` if they are already right.

    Taints this controller does not own keep their place; owned taints that
    are still wanted keep theirs (and their ``timeAdded``); new ones go last.
    A node without a ``Ready`` condition gets no ``NoExecute`` taint, nor
    does any node when ``no_execute`` is False (see ``is_fully_disrupted``).
    """
    current = _taints(node)
    wanted = _wanted(node, no_execute)
    kept: list[dict[str, Any]] = []
    have: list[tuple[str, str]] = []
    for taint in current:
        pair = (str(taint.get("key")), str(taint.get("effect")))
        if _owned(taint) and (pair not in wanted or pair in have):
            continue
        if _owned(taint):
            have.append(pair)
        kept.append(thaw(taint))
    for key, effect in wanted:
        if (key, effect) not in have:
            added: dict[str, Any] = {"key": key, "effect": effect}
            if effect == NO_EXECUTE:
                added["timeAdded"] = format_timestamp(now)
            kept.append(added)
    return None if kept == [thaw(t) for t in current] else kept


# -- eviction ------------------------------------------------------------------------------

def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """Whether ``toleration`` matches ``taint`` (Kubernetes' ToleratesTaint)."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def effective_tolerations(pod: Mapping[str, Any], default_seconds: float
                          ) -> list[Mapping[str, Any]]:
    """The pod's tolerations plus the default ones for ``not-ready`` and ``unreachable``."""
    spec = pod.get("spec")
    given = spec.get("tolerations") if isinstance(spec, Mapping) else None
    tolerations = [t for t in given or () if isinstance(t, Mapping)]
    out = list(tolerations)
    for key in (TAINT_NOT_READY, TAINT_UNREACHABLE):
        if not any((t.get("key") or "") in ("", key)
                   and (t.get("effect") or "") in ("", NO_EXECUTE) for t in tolerations):
            out.append({"key": key, "operator": "Exists", "effect": NO_EXECUTE,
                        "tolerationSeconds": default_seconds})
    return out


def min_toleration_seconds(tolerations: Sequence[Mapping[str, Any]],
                           taints: Sequence[Mapping[str, Any]]) -> float | None:
    """How long a pod with ``tolerations`` may stay under ``taints``; ``None``: for ever.

    0 when some taint is not tolerated at all, or a matching toleration has
    ``tolerationSeconds`` of 0 or less.
    """
    used: list[Mapping[str, Any]] = []
    for taint in taints:
        matching = [t for t in tolerations if tolerates(t, taint)]
        if not matching:
            return 0.0
        used += matching
    least: float | None = None
    for toleration in used:
        seconds = toleration.get("tolerationSeconds")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            continue
        if seconds <= 0:
            return 0.0
        least = float(seconds) if least is None else min(least, float(seconds))
    return least


class Verdict(enum.Enum):
    """What taint-based eviction does to a pod."""

    UNAFFECTED = "Unaffected"  # no NoExecute taint on its node
    KEEP = "Keep"  # tolerates every NoExecute taint for ever
    WAIT = "Wait"  # tolerated until ``deadline``
    EVICT = "Evict"  # delete it now


@dataclass(frozen=True, slots=True)
class EvictionDecision:
    """A ``Verdict``, and for ``WAIT`` the moment the pod is to be evicted."""

    verdict: Verdict
    deadline: float = 0.0


def eviction_start(node: Mapping[str, Any], pod: Mapping[str, Any], now: float) -> float:
    """When the pod's exposure to the node's ``NoExecute`` taints began, as best known.

    The earliest ``timeAdded`` of those taints (``now`` for a taint without
    one), but not before the pod was created, and never after ``now``.
    """
    start = now
    for taint in _taints(node):
        if taint.get("effect") == NO_EXECUTE:
            added = _timestamp(taint.get("timeAdded"))
            start = min(start, now if added is None else added)
    created = _creation(pod)
    if created is not None:
        start = max(start, created)
    return min(start, now)


def decide_eviction(pod: Mapping[str, Any], node: Mapping[str, Any], *,
                    default_seconds: float, start: float, now: float) -> EvictionDecision:
    """What to do with ``pod`` on ``node`` at ``now``, its exposure having begun at ``start``."""
    taints = [t for t in _taints(node) if t.get("effect") == NO_EXECUTE]
    if not taints:
        return EvictionDecision(Verdict.UNAFFECTED)
    seconds = min_toleration_seconds(effective_tolerations(pod, default_seconds), taints)
    if seconds is None:
        return EvictionDecision(Verdict.KEEP)
    deadline = start + seconds
    if now >= deadline:
        return EvictionDecision(Verdict.EVICT)
    return EvictionDecision(Verdict.WAIT, deadline)


# -- pod status ----------------------------------------------------------------------------

def _pod_conditions(pod: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    status = pod.get("status")
    new_status = thaw(status) if isinstance(status, Mapping) else {}
    conditions = [c for c in new_status.get("conditions") or () if isinstance(c, dict)]
    return new_status, conditions


def mark_pod_not_ready(pod: Mapping[str, Any], now: float) -> dict[str, Any] | None:
    """The pod's status with ``Ready`` False, or ``None`` if it is not ``Ready`` True."""
    status, conditions = _pod_conditions(pod)
    for cond in conditions:
        if cond.get("type") == "Ready" and cond.get("status") == "True":
            cond.update(status="False", lastTransitionTime=format_timestamp(now))
            status["conditions"] = conditions
            return status
    return None


def pod_disruption_status(pod: Mapping[str, Any], now: float) -> dict[str, Any] | None:
    """The pod's status saying the taint manager deletes it, or ``None`` if it says so."""
    status, conditions = _pod_conditions(pod)
    want = {"type": DISRUPTION_TARGET, "status": "True", "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint"}
    for cond in conditions:
        if cond.get("type") == DISRUPTION_TARGET:
            if all(cond.get(k) == v for k, v in want.items()):
                return None
            cond.update(want, lastTransitionTime=format_timestamp(now))
            break
    else:
        conditions.append({**want, "lastTransitionTime": format_timestamp(now)})
    status["conditions"] = conditions
    return status

