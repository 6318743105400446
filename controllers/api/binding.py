"""Binding a pod to a node (Kubernetes' ``pods/binding`` subresource), as pure functions.

A binding is one write that sets ``spec.nodeName`` and makes the pod's
``PodScheduled`` condition ``True`` together, so no reader ever sees a pod
placed on a node but still marked unscheduled. As in Kubernetes:

- ``validate_binding``: the target node's name is required and must be a
  DNS-1123 subdomain (``Invalid`` of kind ``Binding``).
- ``check_preconditions``: an optional ``uid`` and ``resourceVersion`` the
  pod must still have (``Conflict`` if not).
- ``prepare_for_bind``: refuses a pod that already has a node ("pod web is
  already assigned to node ...") or is being deleted, both ``Conflict`` on
  ``pods/binding``; otherwise returns the pod with ``spec.nodeName`` set and
  ``PodScheduled=True``. The condition replaces any earlier one in place,
  dropping its reason and message; ``lastTransitionTime`` is now, or kept if
  the condition was ``True`` already. ``generation`` is not bumped: the
  binding is not a change of the pod's desired state.
"""

from __future__ import annotations

from typing import Any

from controllers.api.errors import Conflict
from controllers.api.objects import Obj, deep_copy, format_timestamp, meta
from controllers.api.validation import ErrorList, check_name, dns1123_subdomain, raise_if_invalid

__all__ = [
    "BINDING_RESOURCE",
    "POD_SCHEDULED",
    "check_preconditions",
    "prepare_for_bind",
    "validate_binding",
]

BINDING_RESOURCE = "pods/binding"
"""The resource named in the errors of a binding."""

POD_SCHEDULED = "PodScheduled"
"""The condition a binding makes ``True``."""


def validate_binding(name: str, node_name: str) -> None:
    """Raise ``Invalid`` (kind ``Binding``) unless ``node_name`` can name a node."""
    errs = ErrorList()
    if not isinstance(node_name, str) or not node_name:
        errs.required("target.name")
    else:
        check_name(errs, node_name, "target.name", dns1123_subdomain)
    raise_if_invalid(errs, "Binding", name)


def check_preconditions(pod: Obj, uid: str | None, resource_version: str | None) -> None:
    """Raise ``Conflict`` if the stored ``pod`` lacks the ``uid`` or ``resource_version`` given."""
    m = meta(pod)
    name = str(m.get("name", ""))
    if uid is not None and m.get("uid") != uid:
        raise Conflict("pods", name, f"Precondition failed: UID in precondition: {uid}, "
                       f"UID in object meta: {m.get('uid')}")
    if resource_version is not None and m.get("resourceVersion") != resource_version:
        raise Conflict("pods", name, f"Precondition failed: ResourceVersion in precondition: "
                       f"{resource_version}, ResourceVersion in object meta: "
                       f"{m.get('resourceVersion')}")


def prepare_for_bind(pod: Obj, node_name: str, *, now: float) -> Obj:
    """The stored ``pod`` bound to ``node_name`` at ``now`` (seconds since the epoch).

    Raises:
        Conflict: the pod is being deleted or already has a node.
    """
    m = meta(pod)
    name = str(m.get("name", ""))
    if m.get("deletionTimestamp"):
        raise Conflict(BINDING_RESOURCE, name,
                       f"pod {name} is being deleted, cannot be assigned to a host")
    spec = pod.get("spec")
    current = spec.get("nodeName") if isinstance(spec, dict) else None
    if current:
        raise Conflict(BINDING_RESOURCE, name,
                       f'pod {name} is already assigned to node "{current}"')
    new = deep_copy(pod)
    new.setdefault("spec", {})["nodeName"] = node_name
    status = new.get("status")
    if not isinstance(status, dict):
        status = new["status"] = {}
    conditions = status.get("conditions")
    if not isinstance(conditions, list):
        conditions = status["conditions"] = []
    cond: dict[str, Any] = {"type": POD_SCHEDULED, "status": "True",
                            "lastTransitionTime": format_timestamp(now)}
    for i, old in enumerate(conditions):
        if isinstance(old, dict) and old.get("type") == POD_SCHEDULED:
            if old.get("status") == "True" and old.get("lastTransitionTime"):
                cond["lastTransitionTime"] = old["lastTransitionTime"]
            conditions[i] = cond
            break
    else:
        conditions.append(cond)
    return new
