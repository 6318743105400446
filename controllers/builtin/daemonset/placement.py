"""Which nodes should run a DaemonSet's pod, and what to do with the pods found on one node.

Pure functions, as Kubernetes' DaemonSet controller decides:

- ``daemon_pod_template(template, hash)``: the template pods are created
  from: the ``controller-revision-hash`` label added, and the tolerations
  every daemon pod gets (``add_daemon_pod_tolerations``): ``not-ready`` and
  ``unreachable`` with ``NoExecute``; ``disk-pressure``, ``memory-pressure``,
  ``pid-pressure`` and ``unschedulable`` with ``NoSchedule``; and
  ``network-unavailable`` with ``NoSchedule`` for a ``hostNetwork`` pod.
- ``pin_to_node(template, node)``: the required node affinity of the pod
  becomes one term, ``matchFields metadata.name In [node]``; the scheduler
  binds it there (the controller never sets ``spec.nodeName``).
  ``target_node_name(pod)`` reads it back (``spec.nodeName`` first).
- ``should_run_daemon_pod(node, ds)``: a node should run the pod when the
  template's ``nodeName`` (if any) is the node, its ``nodeSelector`` and
  required node affinity accept the node, and every ``NoSchedule`` and
  ``NoExecute`` taint is tolerated (with the automatic tolerations). A pod
  already there may continue running unless the node fails the name or
  affinity test or has an untolerated ``NoExecute`` taint. A cordoned node
  is judged by its taints only, so it still gets daemon pods.
- ``pods_should_be_on_node``: the creation and deletions one node needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controllers.api.objects import Obj, parse_timestamp
from controllers.builtin.podutil import is_pod_available, is_pod_ready
from controllers.builtin.scheduler.nodeaffinity import parse_node_affinity
from controllers.builtin.scheduler.taints import (
    NO_EXECUTE,
    NO_SCHEDULE,
    TAINT_NODE_NOT_READY,
    TAINT_NODE_UNREACHABLE,
    TAINT_NODE_UNSCHEDULABLE,
    find_untolerated_taint,
    parse_taints,
    parse_tolerations,
)
from controllers.informers.store import object_labels, object_meta, object_name, thaw

__all__ = [
    "CONTROLLER_REVISION_HASH_LABEL",
    "TAINT_NODE_DISK_PRESSURE",
    "TAINT_NODE_MEMORY_PRESSURE",
    "TAINT_NODE_NETWORK_UNAVAILABLE",
    "TAINT_NODE_PID_PRESSURE",
    "NodeActions",
    "Placement",
    "add_daemon_pod_tolerations",
    "daemon_pod_template",
    "pin_to_node",
    "pod_order_key",
    "pods_should_be_on_node",
    "should_run_daemon_pod",
    "target_node_name",
]

CONTROLLER_REVISION_HASH_LABEL = "controller-revision-hash"
"""The label naming the ControllerRevision a pod (and a revision) belongs to."""

TAINT_NODE_DISK_PRESSURE = "node.kubernetes.io/disk-pressure"
TAINT_NODE_MEMORY_PRESSURE = "node.kubernetes.io/memory-pressure"
TAINT_NODE_PID_PRESSURE = "node.kubernetes.io/pid-pressure"
TAINT_NODE_NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"

_NODE_NAME_FIELD = "metadata.name"

_ALWAYS: tuple[tuple[str, str], ...] = (
    (TAINT_NODE_NOT_READY, NO_EXECUTE),
    (TAINT_NODE_UNREACHABLE, NO_EXECUTE),
    (TAINT_NODE_DISK_PRESSURE, NO_SCHEDULE),
    (TAINT_NODE_MEMORY_PRESSURE, NO_SCHEDULE),
    (TAINT_NODE_PID_PRESSURE, NO_SCHEDULE),
    (TAINT_NODE_UNSCHEDULABLE, NO_SCHEDULE),
)


def _same_toleration(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Kubernetes' ``MatchToleration``: same key, operator, value and effect."""
    return all((a.get(f) or "") == (b.get(f) or "") for f in ("key", "operator", "value", "effect"))


def add_daemon_pod_tolerations(spec: Obj) -> None:
    """Add (or update in place) the automatic daemon pod tolerations in the pod ``spec``."""
    wanted = list(_ALWAYS)
    if spec.get("hostNetwork") is True:
        wanted.append((TAINT_NODE_NETWORK_UNAVAILABLE, NO_SCHEDULE))
    tolerations = [t for t in spec.get("tolerations") or [] if isinstance(t, dict)]
    for key, effect in wanted:
        toleration: Obj = {"key": key, "operator": "Exists", "effect": effect}
        for i, existing in enumerate(tolerations):
            if _same_toleration(existing, toleration):
                tolerations[i] = toleration
                break
        else:
            tolerations.append(toleration)
    spec["tolerations"] = tolerations


def daemon_pod_template(template: Mapping[str, Any], hash_: str) -> Obj:
    """The pod template daemon pods of revision ``hash_`` are created from (a mutable copy)."""
    made: Obj = thaw(template)
    spec = made.setdefault("spec", {})
    add_daemon_pod_tolerations(spec)
    if hash_:
        metadata = made.setdefault("metadata", {})
        labels = metadata.setdefault("labels", {})
        labels[CONTROLLER_REVISION_HASH_LABEL] = hash_
    return made


def pin_to_node(template: Mapping[str, Any], node_name: str) -> Obj:
    """A copy of ``template`` whose required node affinity selects only ``node_name``."""
    pinned: Obj = thaw(template)
    spec = pinned.setdefault("spec", {})
    affinity = spec.get("affinity")
    if not isinstance(affinity, dict):
        affinity = spec["affinity"] = {}
    node_affinity = affinity.get("nodeAffinity")
    if not isinstance(node_affinity, dict):
        node_affinity = affinity["nodeAffinity"] = {}
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [
        {"matchFields": [{"key": _NODE_NAME_FIELD, "operator": "In", "values": [node_name]}]}]}
    return pinned


def target_node_name(pod: Mapping[str, Any]) -> str | None:
    """The node the daemon pod is for: ``spec.nodeName``, else its pinning term; None if neither."""
    spec = pod.get("spec") or {}
    node_name = spec.get("nodeName")
    if isinstance(node_name, str) and node_name:
        return node_name
    affinity = spec.get("affinity") or {}
    required = ((affinity.get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in required.get("nodeSelectorTerms") or ():
        for req in (term.get("matchFields") or ()) if isinstance(term, Mapping) else ():
            if not isinstance(req, Mapping):
                continue
            values: Sequence[Any] = req.get("values") or ()
            if (req.get("key") == _NODE_NAME_FIELD and req.get("operator") == "In"
                    and len(values) == 1 and isinstance(values[0], str)):
                return str(values[0])
    return None


@dataclass(frozen=True, slots=True)
class Placement:
    """Whether a node should get a daemon pod, and whether one there may stay."""

    should_run: bool
    should_continue_running: bool


def should_run_daemon_pod(node: Mapping[str, Any], ds: Mapping[str, Any]) -> Placement:
    """Kubernetes' ``NodeShouldRunDaemonPod`` (see the module docstring)."""
    template = (ds.get("spec") or {}).get("template") or {}
    wanted_name = (template.get("spec") or {}).get("nodeName")
    name = object_name(node)
    if wanted_name and wanted_name != name:
        return Placement(False, False)
    pod = daemon_pod_template(template, "")
    if not parse_node_affinity(pod).matches(object_labels(node), name):
        return Placement(False, False)
    taints, tolerations = parse_taints(node), parse_tolerations(pod)
    if find_untolerated_taint(taints, tolerations) is None:
        return Placement(True, True)
    return Placement(False, find_untolerated_taint(taints, tolerations, (NO_EXECUTE,)) is None)


def _created(pod: Mapping[str, Any]) -> float:
    raw = object_meta(pod).get("creationTimestamp")
    try:
        return parse_timestamp(raw) if isinstance(raw, str) else 0.0
    except ValueError:
        return 0.0


def pod_order_key(pod: Mapping[str, Any]) -> tuple[int, float, str]:
    """Kubernetes' ``podByCreationTimestampAndPhase``: scheduled first, then oldest, then name."""
    scheduled = bool((pod.get("spec") or {}).get("nodeName"))
    return (0 if scheduled else 1, _created(pod), object_name(pod))


@dataclass(frozen=True, slots=True)
class NodeActions:
    """What one node needs: a new pod, pods to delete, failed pods to delete (after back-off)."""

    create: bool = False
    delete: tuple[Mapping[str, Any], ...] = ()
    failed: tuple[Mapping[str, Any], ...] = ()


def pods_should_be_on_node(placement: Placement, pods: Sequence[Mapping[str, Any]],
                           hash_: str, *, allows_surge: bool, min_ready_seconds: float,
                           now: float) -> NodeActions:
    """Kubernetes' ``podsShouldBeOnNode`` for one node whose daemon pods are ``pods``.

    A node that should run the pod and has none needs one. While pods may
    continue running there: failed pods are to be deleted (the caller applies
    the back-off), succeeded ones deleted, and of the running ones only the
    oldest is kept -- or, when the DaemonSet surges, the oldest pod of the
    current revision ``hash_`` plus the oldest older one while the new one is
    not yet available and the old one is ready. A node that may not keep
    its pods loses every one not already being deleted.
    """
    if placement.should_run and not pods:
        return NodeActions(create=True)
    if not placement.should_continue_running:
        return NodeActions(delete=tuple(p for p in pods
                                        if not object_meta(p).get("deletionTimestamp")))
    delete: list[Mapping[str, Any]] = []
    failed: list[Mapping[str, Any]] = []
    running: list[Mapping[str, Any]] = []
    for pod in pods:
        if object_meta(pod).get("deletionTimestamp"):
            continue
        phase = (pod.get("status") or {}).get("phase")
        if phase == "Failed":
            failed.append(pod)
        elif phase == "Succeeded":
            delete.append(pod)
        else:
            running.append(pod)
    running.sort(key=pod_order_key)
    if not allows_surge:
        delete.extend(running[1:])
        return NodeActions(delete=tuple(delete), failed=tuple(failed))
    oldest_new: Mapping[str, Any] | None = None
    oldest_old: Mapping[str, Any] | None = None
    for pod in running:
        if object_labels(pod).get(CONTROLLER_REVISION_HASH_LABEL) == hash_:
            if oldest_new is None:
                oldest_new = pod
                continue
        elif oldest_old is None:
            oldest_old = pod
            continue
        delete.append(pod)
    if oldest_new is not None and oldest_old is not None and (
            not is_pod_ready(oldest_old)
            or is_pod_available(oldest_new, min_ready_seconds, now)):
        delete.append(oldest_old)
    return NodeActions(delete=tuple(delete), failed=tuple(failed))
