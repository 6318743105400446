"""What a write does to an object before it is stored (Kubernetes' "REST strategy").

Pure functions, one per write, each returning a new object and raising
``Invalid`` (listing every bad field) if the result breaks a rule:

- ``prepare_for_create``: drops fields only the server sets, then sets
  ``uid``, ``creationTimestamp`` and ``generation`` 1, applies the kind's
  defaults and validates. A status given on create is kept (Kubernetes
  resets it for most kinds; keeping it lets a node agent or a test create
  an object in a known state).
- ``prepare_for_update``: keeps from the stored object what the caller may not
  change (``uid``, ``creationTimestamp``, ``generation``, the deletion
  fields, and ``status`` when the kind has one), applies defaults, validates
  (including the kind's immutable fields and "no new finalizer while
  deleting") and bumps ``generation`` when ``spec`` changed.
- ``prepare_for_status_update``: the stored object with the caller's
  ``status`` and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controllers.api import deletion
from controllers.api.errors import Conflict
from controllers.api.kinds import Kind
from controllers.api.objects import Obj, deep_copy, format_timestamp, meta
from controllers.api.validation import ErrorList, raise_if_invalid, validate_object_meta

__all__ = [
    "SERVER_FIELDS",
    "prepare_for_create",
    "prepare_for_status_update",
    "prepare_for_update",
    "validate",
]

SERVER_FIELDS = ("uid", "creationTimestamp", "generation", "deletionTimestamp",
                 "deletionGracePeriodSeconds")
"""Metadata only the server sets."""


def validate(kind: Kind, new: Obj, old: Obj | None) -> None:
    """Raise ``Invalid`` listing every rule ``new`` breaks (``old``: the stored object on update)."""
    errs = ErrorList()
    validate_object_meta(errs, new, namespaced=kind.namespaced, name_syntax=kind.name_syntax)
    if kind.validator is not None:
        kind.validator(new, errs)
    if old is not None:
        deletion.validate_finalizers_update(new, old, errs)
        if kind.update_validator is not None:
            kind.update_validator(new, old, errs)
    raise_if_invalid(errs, kind.qualified_kind, str(meta(new).get("name", "")))


def prepare_for_create(kind: Kind, obj: Obj, *, uid: str, now: float) -> Obj:
    """The object to store for a create at ``now`` (seconds since the epoch)."""
    new = deep_copy(obj)
    m = new.setdefault("metadata", {})
    for key in SERVER_FIELDS:
        m.pop(key, None)
    m.pop("resourceVersion", None)
    m["uid"] = uid
    m["creationTimestamp"] = format_timestamp(now)
    m["generation"] = 1
    if kind.defaulter is not None:
        kind.defaulter(new)
    validate(kind, new, None)
    return new


def prepare_for_update(kind: Kind, obj: Obj, old: Obj) -> Obj:
    """The object to store when ``obj`` replaces the stored ``old``.

    Raises:
        Conflict: ``obj`` names a different uid than the stored object.
        Invalid: the result breaks a rule.
    """
    new = deep_copy(obj)
    m, old_m = new.setdefault("metadata", {}), meta(old)
    if m.get("uid") and m["uid"] != old_m.get("uid"):
        raise Conflict(kind.resource, str(old_m.get("name", "")),
                       f"Precondition failed: UID in precondition: {m['uid']}, "
                       f"UID in object meta: {old_m.get('uid')}")
    for field in SERVER_FIELDS:
        _copy(old_m, m, field)
    if kind.has_status:
        _copy(old, new, "status")
    if kind.defaulter is not None:
        kind.defaulter(new)
        if kind.has_status:
            _copy(old, new, "status")
    validate(kind, new, old)
    if new.get("spec") != old.get("spec"):
        m["generation"] = int(old_m.get("generation") or 0) + 1
    return new


def prepare_for_status_update(kind: Kind, obj: Obj, old: Obj) -> Obj:
    """The stored ``old`` with ``obj``'s status."""
    new = deep_copy(old)
    _copy(obj, new, "status")
    validate(kind, new, old)
    return new


def _copy(src: Mapping[str, Any], dst: dict[str, Any], field: str) -> None:
    """Make ``dst[field]`` a copy of ``src[field]``, or absent if ``src`` lacks it."""
    if src.get(field) is not None:
        dst[field] = deep_copy({"v": src[field]})["v"]
    else:
        dst.pop(field, None)
