"""Deletion: finalizers, propagation policies and graceful termination, as pure functions.

An object goes away at once when nothing holds it. Otherwise deletion only
marks it: ``metadata.deletionTimestamp`` and ``deletionGracePeriodSeconds``
are set, ``generation`` is bumped, and the object stays, readable and
watchable, until whatever holds it lets go; the write that lets go (an
update removing the last finalizer, or a delete with grace 0) removes it.
What holds an object:

- ``metadata.finalizers``. The propagation policy is recorded there for the
  garbage collector, as Kubernetes does: ``Orphan`` adds ``orphan``,
  ``Foreground`` adds ``foregroundDeletion``; an explicit ``Background``
  removes both; no policy keeps what the object already has. The policy
  applies on the first delete only; a later delete of a terminating object
  does not change its finalizers;
- for a Namespace, also ``spec.finalizers`` (``kubernetes`` by default), which
  the namespace controller clears once the namespace is empty; deletion sets
  ``status.phase`` to Terminating;
- for a Pod, a grace period: a scheduled, non-terminal pod is given
  ``grace_period_seconds`` (default ``spec.terminationGracePeriodSeconds``)
  to stop. ``deletionTimestamp`` is then the moment the grace runs out. The
  node's agent removes the pod with a delete of grace 0 once its processes
  have stopped. A later delete may shorten the grace, never lengthen it. An
  unscheduled or finished pod has no grace. Other kinds ignore the grace.

A new finalizer may not be added to an object being deleted (``Invalid``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from controllers.api.kinds import Kind
from controllers.api.objects import Obj, deep_copy, format_timestamp, meta
from controllers.api.validation import ErrorList

__all__ = [
    "FINALIZER_FOREGROUND",
    "FINALIZER_ORPHAN",
    "DeletePlan",
    "PropagationPolicy",
    "is_ready_to_remove",
    "pending_finalizers",
    "plan_delete",
    "validate_finalizers_update",
]

FINALIZER_ORPHAN = "orphan"
FINALIZER_FOREGROUND = "foregroundDeletion"


class PropagationPolicy(str, enum.Enum):
    """What happens to the dependents of a deleted object (see ``ownerReferences``)."""

    BACKGROUND = "Background"
    FOREGROUND = "Foreground"
    ORPHAN = "Orphan"


@dataclass(frozen=True, slots=True)
class DeletePlan:
    """What a delete does: ``remove`` the key now, or write ``obj`` if ``changed``."""

    remove: bool
    changed: bool
    obj: Obj


def _is_pod(kind: Kind) -> bool:
    return kind.group == "" and kind.kind == "Pod"


def _is_namespace(kind: Kind) -> bool:
    return kind.group == "" and kind.kind == "Namespace"


def pending_finalizers(kind: Kind, obj: Obj) -> list[str]:
    """Every finalizer still holding ``obj``: ``metadata.finalizers`` (+ a Namespace's spec's)."""
    out = [f for f in meta(obj).get("finalizers") or [] if isinstance(f, str)]
    if _is_namespace(kind):
        spec = obj.get("spec")
        if isinstance(spec, dict):
            out += [f for f in spec.get("finalizers") or [] if isinstance(f, str)]
    return out


def is_ready_to_remove(kind: Kind, obj: Obj) -> bool:
    """True if ``obj`` is being deleted and nothing holds it any more."""
    m = meta(obj)
    if not m.get("deletionTimestamp"):
        return False
    return not pending_finalizers(kind, obj) and not m.get("deletionGracePeriodSeconds")


def _grace(kind: Kind, obj: Obj, grace_period_seconds: int | None) -> int:
    if not _is_pod(kind):
        return 0
    spec = obj.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    status = obj.get("status")
    status = status if isinstance(status, dict) else {}
    if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
        return 0
    if grace_period_seconds is not None:
        return max(0, grace_period_seconds)
    grace = spec.get("terminationGracePeriodSeconds", 30)
    return grace if isinstance(grace, int) and not isinstance(grace, bool) and grace > 0 else 0


def _apply_policy(finalizers: list[str], policy: PropagationPolicy | None) -> list[str]:
    if policy is None:
        return finalizers
    out = [f for f in finalizers if f not in (FINALIZER_ORPHAN, FINALIZER_FOREGROUND)]
    if policy is PropagationPolicy.ORPHAN:
        out.append(FINALIZER_ORPHAN)
    elif policy is PropagationPolicy.FOREGROUND:
        out.append(FINALIZER_FOREGROUND)
    return out


def plan_delete(
    kind: Kind,
    obj: Obj,
    *,
    policy: PropagationPolicy | None,
    grace_period_seconds: int | None,
    now: float,
) -> DeletePlan:
    """What deleting ``obj`` at ``now`` (seconds since the epoch) does; ``obj`` is not modified."""
    new = deep_copy(obj)
    m = new.setdefault("metadata", {})
    grace = _grace(kind, obj, grace_period_seconds)
    if m.get("deletionTimestamp"):
        old_grace = m.get("deletionGracePeriodSeconds") or 0
        changed = grace < old_grace
        if changed:
            m["deletionTimestamp"] = format_timestamp(now + grace)
            m["deletionGracePeriodSeconds"] = grace
        return DeletePlan(is_ready_to_remove(kind, new), changed, new)
    finalizers = _apply_policy(list(m.get("finalizers") or []), policy)
    if finalizers:
        m["finalizers"] = finalizers
    else:
        m.pop("finalizers", None)
    if not pending_finalizers(kind, new) and grace == 0:
        return DeletePlan(True, False, new)
    m["deletionTimestamp"] = format_timestamp(now + grace)
    m["deletionGracePeriodSeconds"] = grace
    generation = m.get("generation")
    if isinstance(generation, int) and generation > 0:
        m["generation"] = generation + 1
    if _is_namespace(kind):
        status = new.setdefault("status", {})
        if isinstance(status, dict):
            status["phase"] = "Terminating"
    return DeletePlan(False, True, new)


def validate_finalizers_update(new: dict[str, Any], old: dict[str, Any], errs: ErrorList) -> None:
    """No finalizer may be added to an object that is being deleted."""
    if not meta(old).get("deletionTimestamp"):
        return
    before = set(meta(old).get("finalizers") or [])
    for i, fin in enumerate(meta(new).get("finalizers") or []):
        if isinstance(fin, str) and fin not in before:
            errs.forbidden(f"metadata.finalizers[{i}]",
                           "no new finalizers can be added if the object is being deleted")
