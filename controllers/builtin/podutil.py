"""Facts about pods and owners that every workload controller needs, as pure functions.

- Readiness and availability: a pod is ready when its ``Ready`` condition is
  ``True``; it is available once it has been ready for ``minReadySeconds``
  (judged on the wall-clock time given, against the condition's
  ``lastTransitionTime``).
- Activity: a pod is active while it is neither finished (phase Succeeded or
  Failed) nor being deleted.
- Ownership: ``owner_reference`` builds the reference a controller puts on
  what it creates (``controller: true``, ``blockOwnerDeletion: true``);
  ``controller_ref`` finds the controlling one on an object.
- Indexing: ``pod_controller_uid_index`` files each pod under its
  controller's uid, or under ``orphan_pod_index_key(namespace)`` when it has
  no controller, so a controller reads only its own pods and the orphans it
  might adopt (index ``POD_CONTROLLER_UID_INDEX``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controllers.api.objects import parse_timestamp

__all__ = [
    "ORPHAN_POD_INDEX_KEY",
    "POD_CONTROLLER_UID_INDEX",
    "condition",
    "controller_ref",
    "is_controlled_by",
    "is_pod_active",
    "is_pod_available",
    "is_pod_ready",
    "orphan_pod_index_key",
    "owner_reference",
    "pod_controller_uid_index",
]

POD_CONTROLLER_UID_INDEX = "controllerUID"
"""The name of the pod index by controller uid (see ``pod_controller_uid_index``)."""

ORPHAN_POD_INDEX_KEY = "_ORPHAN_POD"
"""The prefix of the index value under which a namespace's orphan pods are filed."""


def condition(obj: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    """The ``status.conditions`` entry of ``type_``, if any."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, Mapping) and cond.get("type") == type_:
            return cond
    return None


def is_pod_ready(pod: Mapping[str, Any]) -> bool:
    """Whether the pod's ``Ready`` condition is ``True``."""
    cond = condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def is_pod_available(pod: Mapping[str, Any], min_ready_seconds: float, now: float) -> bool:
    """Whether the pod has been ready for at least ``min_ready_seconds`` at ``now``."""
    cond = condition(pod, "Ready")
    if cond is None or cond.get("status") != "True":
        return False
    if min_ready_seconds <= 0:
        return True
    since = cond.get("lastTransitionTime")
    if not isinstance(since, str):
        return False
    try:
        return parse_timestamp(since) + min_ready_seconds <= now
    except ValueError:
        return False


def is_pod_active(pod: Mapping[str, Any]) -> bool:
    """Neither finished nor being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    deleting = (pod.get("metadata") or {}).get("deletionTimestamp")
    return phase not in ("Succeeded", "Failed") and not deleting


def owner_reference(owner: Mapping[str, Any], *, controller: bool = True,
                    block_owner_deletion: bool = True) -> dict[str, Any]:
    """The ``ownerReferences`` entry naming ``owner`` (which must have a uid)."""
    meta = owner.get("metadata") or {}
    uid = meta.get("uid")
    if not uid:
        raise ValueError("an owner needs metadata.uid")
    return {"apiVersion": owner.get("apiVersion", ""), "kind": owner.get("kind", ""),
            "name": meta.get("name", ""), "uid": uid, "controller": controller,
            "blockOwnerDeletion": block_owner_deletion}


def controller_ref(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The owner reference with ``controller: true``, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, Mapping) and ref.get("controller"):
            return ref
    return None


def is_controlled_by(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    """Whether ``obj``'s controller reference names ``owner`` (by uid)."""
    ref = controller_ref(obj)
    return ref is not None and ref.get("uid") == (owner.get("metadata") or {}).get("uid")


def orphan_pod_index_key(namespace: str) -> str:
    """The ``POD_CONTROLLER_UID_INDEX`` value of the orphan pods of ``namespace``."""
    return f"{ORPHAN_POD_INDEX_KEY}/{namespace}"


def pod_controller_uid_index(pod: Mapping[str, Any]) -> list[str]:
    """The pod's controller uid, or its namespace's orphan key if it has no controller."""
    ref = controller_ref(pod)
    if ref is not None:
        uid = ref.get("uid")
        return [uid] if isinstance(uid, str) and uid else []
    namespace = (pod.get("metadata") or {}).get("namespace")
    return [orphan_pod_index_key(namespace if isinstance(namespace, str) else "")]
