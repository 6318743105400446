"""Revision bookkeeping in annotations, as Kubernetes keeps it on Deployments and ReplicaSets.

- ``deployment.kubernetes.io/revision`` on a ReplicaSet numbers its
  template in the Deployment's history; the newest ReplicaSet holds the
  highest number, and the Deployment mirrors it. A ReplicaSet that becomes
  the new one again (a rollback by template) takes the next number and
  keeps its earlier numbers in ``deployment.kubernetes.io/revision-history``
  (comma-separated, oldest first, at most ``REVISION_HISTORY_CHARS`` long).
- ``deployment.kubernetes.io/desired-replicas`` and ``max-replicas`` record
  the Deployment's ``replicas`` and ``replicas + maxSurge`` when the
  ReplicaSet was last sized: the base of proportional scaling.
- Every other annotation of the Deployment is copied to its new
  ReplicaSet, except those in ``ANNOTATIONS_TO_SKIP``.

Functions that change an object mutate it and return whether they did.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from controllers.api.objects import Obj, annotations_of

__all__ = [
    "ANNOTATIONS_TO_SKIP",
    "DEPRECATED_ROLLBACK_TO",
    "DESIRED_REPLICAS_ANNOTATION",
    "LAST_APPLIED_ANNOTATION",
    "MAX_REPLICAS_ANNOTATION",
    "REVISION_ANNOTATION",
    "REVISION_HISTORY_ANNOTATION",
    "REVISION_HISTORY_CHARS",
    "copy_deployment_annotations",
    "desired_replicas_annotation",
    "max_replicas_annotation",
    "max_revision",
    "replicas_annotations_need_update",
    "revision",
    "set_deployment_revision",
    "set_new_replicaset_annotations",
    "set_replicas_annotations",
]

_log = logging.getLogger(__name__)

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
REVISION_HISTORY_ANNOTATION = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS_ANNOTATION = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS_ANNOTATION = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
DEPRECATED_ROLLBACK_TO = "deprecated.deployment.rollback.to"

ANNOTATIONS_TO_SKIP = frozenset({
    LAST_APPLIED_ANNOTATION, REVISION_ANNOTATION, REVISION_HISTORY_ANNOTATION,
    DESIRED_REPLICAS_ANNOTATION, MAX_REPLICAS_ANNOTATION, DEPRECATED_ROLLBACK_TO,
})
"""Deployment annotations never copied to a ReplicaSet."""

REVISION_HISTORY_CHARS = 2000
"""The longest ``revision-history`` kept (Kubernetes' default)."""


def _annotations(obj: Obj) -> dict[str, str]:
    meta = obj.setdefault("metadata", {})
    notes = meta.get("annotations")
    if not isinstance(notes, dict):
        notes = meta["annotations"] = {}
    found: dict[str, str] = notes
    return found


def revision(obj: Mapping[str, Any]) -> int:
    """The object's revision annotation (0 when absent).

    Raises:
        ValueError: the annotation is not an integer.
    """
    value = annotations_of(obj).get(REVISION_ANNOTATION)
    return 0 if value is None else int(value)


def max_revision(replicasets: Iterable[Mapping[str, Any]]) -> int:
    """The highest revision among ``replicasets`` (unreadable ones are skipped)."""
    highest = 0
    for rs in replicasets:
        try:
            highest = max(highest, revision(rs))
        except ValueError:
            _log.info("replica set %s has a revision that is not a number",
                      rs.get("metadata", {}).get("name"))
    return highest


def copy_deployment_annotations(deployment: Mapping[str, Any], rs: Obj) -> bool:
    """Copy the Deployment's annotations (but the skipped ones) onto ``rs``."""
    notes = _annotations(rs)
    changed = False
    for key, value in sorted(annotations_of(deployment).items()):
        if key in ANNOTATIONS_TO_SKIP or notes.get(key) == value:
            continue
        notes[key] = value
        changed = True
    return changed


def _int_annotation(rs: Mapping[str, Any], key: str) -> int | None:
    value = annotations_of(rs).get(key)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        _log.info("replica set %s: annotation %s=%r is not a number",
                  rs.get("metadata", {}).get("name"), key, value)
        return None


def desired_replicas_annotation(rs: Mapping[str, Any]) -> int | None:
    """The ``desired-replicas`` annotation, if set and a number."""
    return _int_annotation(rs, DESIRED_REPLICAS_ANNOTATION)


def max_replicas_annotation(rs: Mapping[str, Any]) -> int | None:
    """The ``max-replicas`` annotation, if set and a number."""
    return _int_annotation(rs, MAX_REPLICAS_ANNOTATION)


def replicas_annotations_need_update(rs: Mapping[str, Any], desired: int, maximum: int) -> bool:
    """Whether ``desired-replicas`` / ``max-replicas`` differ from the values given."""
    notes = annotations_of(rs)
    return (notes.get(DESIRED_REPLICAS_ANNOTATION) != str(desired)
            or notes.get(MAX_REPLICAS_ANNOTATION) != str(maximum))


def set_replicas_annotations(rs: Obj, desired: int, maximum: int) -> bool:
    """Record ``desired`` and ``maximum`` in the replica annotations of ``rs``."""
    notes = _annotations(rs)
    changed = False
    for key, value in ((DESIRED_REPLICAS_ANNOTATION, str(desired)),
                       (MAX_REPLICAS_ANNOTATION, str(maximum))):
        if notes.get(key) != value:
            notes[key] = value
            changed = True
    return changed


def set_new_replicaset_annotations(
    deployment: Mapping[str, Any],
    rs: Obj,
    new_revision: int,
    *,
    exists: bool,
    desired: int,
    maximum: int,
    history_chars: int = REVISION_HISTORY_CHARS,
) -> bool:
    """Bring the annotations of the Deployment's new ReplicaSet up to date.

    Copies the Deployment's annotations, raises the revision to
    ``new_revision`` if it is lower (appending the old number to the
    revision history when there was one), and, for a ReplicaSet about to
    be created (``exists`` false), records ``desired`` and ``maximum``.
    """
    changed = copy_deployment_annotations(deployment, rs)
    notes = _annotations(rs)
    had_revision = REVISION_ANNOTATION in notes
    old_text = notes.get(REVISION_ANNOTATION, "")
    try:
        old_revision = int(old_text) if old_text else 0
    except ValueError:
        _log.info("replica set %s: revision %r is not a number; left alone",
                  rs.get("metadata", {}).get("name"), old_text)
        return False
    if old_revision < new_revision:
        notes[REVISION_ANNOTATION] = str(new_revision)
        changed = True
        if had_revision:
            _append_history(notes, old_text, history_chars)
    if not exists and set_replicas_annotations(rs, desired, maximum):
        changed = True
    return changed


def _append_history(notes: dict[str, str], old_revision: str, limit: int) -> None:
    history = notes.get(REVISION_HISTORY_ANNOTATION, "")
    if not history:
        notes[REVISION_HISTORY_ANNOTATION] = old_revision
        return
    kept = history.split(",")
    total = len(history) + len(old_revision) + 1
    start = 0
    while total > limit and start < len(kept):
        total -= len(kept[start]) + 1
        start += 1
    if total <= limit:
        notes[REVISION_HISTORY_ANNOTATION] = ",".join([*kept[start:], old_revision])
    else:
        _log.info("revision history is full (%d characters); %s not recorded", limit,
                  old_revision)


def set_deployment_revision(deployment: Obj, revision_text: str) -> bool:
    """Make the Deployment's revision annotation ``revision_text``."""
    notes = _annotations(deployment)
    if notes.get(REVISION_ANNOTATION) == revision_text:
        return False
    notes[REVISION_ANNOTATION] = revision_text
    return True
