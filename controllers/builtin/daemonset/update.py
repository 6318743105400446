"""Updating daemon pods to a new template: RollingUpdate and OnDelete, as pure decisions.

A pod is updated when its ``controller-revision-hash`` label is the hash of
the DaemonSet's current revision. ``OnDelete`` replaces nothing by itself:
a pod is replaced by the current template only once someone deletes it.
``RollingUpdate`` (``rolling_update_plan``) works node by node, nodes in
name order, with ``maxUnavailable`` and ``maxSurge`` scaled against the
number of nodes that should run the pod (percentages round up; both zero
counts as ``maxUnavailable`` 1):

- without surge, an old pod is deleted (the manage step then creates its
  replacement) when it is not available anyway, or while fewer than
  ``maxUnavailable`` nodes are unavailable -- a node with no pod, with an
  unavailable new pod, or with both an old and a new pod counts as one;
- with surge, a new pod is created next to an old one that is unavailable
  (or where the old pod may no longer run, it is deleted), or next to an
  available one while fewer than ``maxSurge`` nodes are surging; the old
  pod is deleted once the new one is available. Old pods on nodes that no
  longer should run them are deleted only as long as more pods are
  available than nodes want one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controllers.builtin.daemonset.placement import (
    CONTROLLER_REVISION_HASH_LABEL,
    Placement,
)
from controllers.builtin.podutil import is_pod_available
from controllers.informers.store import object_labels, object_meta

__all__ = [
    "ON_DELETE",
    "ROLLING_UPDATE",
    "UpdatePlan",
    "allows_surge",
    "find_updated_pods_on_node",
    "is_pod_updated",
    "max_surge_and_unavailable",
    "rolling_update_plan",
    "scaled_value",
    "update_strategy",
]

ROLLING_UPDATE = "RollingUpdate"
ON_DELETE = "OnDelete"


def update_strategy(ds: Mapping[str, Any]) -> str:
    """``spec.updateStrategy.type`` (RollingUpdate when missing)."""
    strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
    kind = strategy.get("type")
    return kind if kind in (ROLLING_UPDATE, ON_DELETE) else ROLLING_UPDATE


def scaled_value(value: Any, total: int, *, default: int) -> int:
    """An int-or-percent against ``total``: ints as they are, ``"N%"`` rounded up.

    Raises:
        ValueError: ``value`` is neither an int nor a percentage.
    """
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%"):
            return math.ceil(int(text[:-1]) * total / 100)
        return int(text)
    raise ValueError(f"invalid int or percentage: {value!r}")


def _rolling(ds: Mapping[str, Any]) -> Mapping[str, Any]:
    if update_strategy(ds) != ROLLING_UPDATE:
        return {}
    strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
    found = strategy.get("rollingUpdate")
    return found if isinstance(found, Mapping) else {}


def allows_surge(ds: Mapping[str, Any]) -> bool:
    """Whether the DaemonSet may run a new pod next to an old one (``maxSurge`` above 0)."""
    try:
        return scaled_value(_rolling(ds).get("maxSurge"), 1, default=0) > 0
    except ValueError:
        return False


def max_surge_and_unavailable(ds: Mapping[str, Any], desired: int) -> tuple[int, int]:
    """``maxSurge`` and ``maxUnavailable`` for ``desired`` nodes (0 and 1 by default).

    Raises:
        ValueError: one of them is malformed.
    """
    if update_strategy(ds) != ROLLING_UPDATE:
        return 0, 0
    rolling = _rolling(ds)
    surge = scaled_value(rolling.get("maxSurge"), desired, default=0)
    unavailable = scaled_value(rolling.get("maxUnavailable"), desired, default=1)
    if desired > 0 and surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def is_pod_updated(pod: Mapping[str, Any], hash_: str) -> bool:
    """Whether ``pod`` belongs to the revision ``hash_``."""
    return bool(hash_) and object_labels(pod).get(CONTROLLER_REVISION_HASH_LABEL) == hash_


def find_updated_pods_on_node(
    pods: Sequence[Mapping[str, Any]], hash_: str,
) -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None, bool]:
    """The node's new and old pod (not being deleted); ``ok`` False if it has two of either."""
    new: Mapping[str, Any] | None = None
    old: Mapping[str, Any] | None = None
    for pod in pods:
        if object_meta(pod).get("deletionTimestamp"):
            continue
        if is_pod_updated(pod, hash_):
            if new is not None:
                return None, None, False
            new = pod
        else:
            if old is not None:
                return None, None, False
            old = pod
    return new, old, True


@dataclass(frozen=True, slots=True)
class UpdatePlan:
    """The old pods a rolling update step deletes and the nodes it creates new pods on."""

    delete: tuple[Mapping[str, Any], ...] = ()
    create: tuple[str, ...] = ()


def rolling_update_plan(ds: Mapping[str, Any], placements: Mapping[str, Placement],
                        node_pods: Mapping[str, Sequence[Mapping[str, Any]]], hash_: str,
                        now: float) -> UpdatePlan:
    """One rolling update step (see the module docstring).

    ``placements`` holds every node by name; ``node_pods`` the daemon pods by
    target node (failed and terminal pods being deleted left out).

    Raises:
        ValueError: ``maxSurge`` or ``maxUnavailable`` is malformed.
    """
    min_ready = float((ds.get("spec") or {}).get("minReadySeconds") or 0)
    wanting = sorted(name for name, p in placements.items() if p.should_run)
    by_node: dict[str, Sequence[Mapping[str, Any]]] = {name: () for name in wanting}
    by_node.update(node_pods)
    surge, unavailable_limit = max_surge_and_unavailable(ds, len(wanting))

    def available(pod: Mapping[str, Any]) -> bool:
        return is_pod_available(pod, min_ready, now)

    if surge == 0:
        unavailable = 0
        replace: list[Mapping[str, Any]] = []
        candidates: list[Mapping[str, Any]] = []
        for name in sorted(by_node):
            new, old, ok = find_updated_pods_on_node(by_node[name], hash_)
            if not ok or (new is None) == (old is None):
                unavailable += 1
            elif new is not None:
                if not available(new):
                    unavailable += 1
            elif old is not None:
                if not available(old):
                    replace.append(old)
                elif unavailable < unavailable_limit:
                    candidates.append(old)
        room = min(max(unavailable_limit - unavailable, 0), len(candidates))
        return UpdatePlan(delete=tuple(replace + candidates[:room]))

    delete: list[Mapping[str, Any]] = []
    not_wanted: list[Mapping[str, Any]] = []
    allowed: list[str] = []
    candidate_nodes: list[str] = []
    surging = available_count = 0
    for name in sorted(by_node):
        new, old, ok = find_updated_pods_on_node(by_node[name], hash_)
        if not ok:
            surging += 1
            continue
        counted = old if old is not None else new
        if counted is not None and available(counted):
            available_count += 1
        if old is None:
            continue
        placement = placements.get(name, Placement(False, False))
        if new is None:
            if not available(old):
                if not placement.should_run:
                    delete.append(old)
                else:
                    allowed.append(name)
            elif not placement.should_run:
                not_wanted.append(old)
            elif surging < surge:
                candidate_nodes.append(name)
        elif not available(new):
            surging += 1
        else:
            delete.append(old)
    deletable = min(max(available_count - len(wanting), 0), len(not_wanted))
    delete.extend(not_wanted[:deletable])
    room = min(max(surge - surging, 0), len(candidate_nodes))
    return UpdatePlan(delete=tuple(delete), create=tuple(allowed + candidate_nodes[:room]))

