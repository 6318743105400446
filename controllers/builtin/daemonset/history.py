"""A DaemonSet's ControllerRevisions: one per pod template it has had, as Kubernetes keeps them.

A revision is named ``<daemonset>-<hash>`` (the hash of the template and
``status.collisionCount``, as a Deployment's pod-template-hash), labelled
with the template's labels plus ``controller-revision-hash: <hash>``,
controlled by the DaemonSet, with ``data`` the strategic merge patch that
restores the template (``{"spec": {"template": {..., "$patch": "replace"}}}``)
and ``revision`` a number growing with every new template.

``History.construct`` runs every sync, on the revisions the DaemonSet
claimed: it labels revisions lacking the hash label (with their name), finds
the revision(s) matching the current template, and

- creates one (revision = highest old revision + 1) if none matches. A name
  taken by a revision of another template is a hash collision: the
  DaemonSet's ``status.collisionCount`` is bumped (only if the count used
  was not stale) and the sync fails, to be retried with the new hash;
- keeps the highest of several matching ones, relabelling the pods of the
  others before deleting them;
- renumbers the current revision when an old one has a higher number
  (a rollback to an earlier template).

``History.cleanup`` deletes the oldest old revisions beyond
``spec.revisionHistoryLimit`` (10), never one a live pod still belongs to.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from controllers.api.clientset import Clientset
from controllers.api.errors import AlreadyExists, Conflict, NotFound
from controllers.api.objects import Obj
from controllers.builtin.daemonset.placement import CONTROLLER_REVISION_HASH_LABEL
from controllers.builtin.deployment.hashing import compute_hash
from controllers.builtin.podutil import owner_reference
from controllers.informers.store import (
    object_labels,
    object_meta,
    object_name,
    object_namespace,
    thaw,
)

__all__ = [
    "DEFAULT_REVISION_HISTORY_LIMIT",
    "History",
    "matches_template",
    "new_revision",
    "revision_hash",
    "revision_number",
    "revision_patch",
    "revisions_to_trim",
    "template_hash",
]

DEFAULT_REVISION_HISTORY_LIMIT = 10


def revision_patch(ds: Mapping[str, Any]) -> Obj:
    """The patch restoring ``ds``'s pod template: what a revision stores as ``data``."""
    template: Obj = thaw((ds.get("spec") or {}).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def _canonical(value: Any) -> str:
    return json.dumps(thaw(value), sort_keys=True, separators=(",", ":"))


def matches_template(ds: Mapping[str, Any], revision: Mapping[str, Any]) -> bool:
    """Whether ``revision`` stores ``ds``'s current pod template."""
    return _canonical(revision.get("data")) == _canonical(revision_patch(ds))


def _collision_count(ds: Mapping[str, Any]) -> int | None:
    count = (ds.get("status") or {}).get("collisionCount")
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def template_hash(ds: Mapping[str, Any]) -> str:
    """The hash of ``ds``'s pod template and collision count."""
    return compute_hash((ds.get("spec") or {}).get("template") or {}, _collision_count(ds))


def revision_number(revision: Mapping[str, Any]) -> int:
    """A revision's ``revision`` (0 if missing)."""
    value = revision.get("revision")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def revision_hash(revision: Mapping[str, Any]) -> str:
    """A revision's ``controller-revision-hash`` label (its name if unlabelled)."""
    return object_labels(revision).get(CONTROLLER_REVISION_HASH_LABEL) or object_name(revision)


def new_revision(ds: Mapping[str, Any], number: int) -> Obj:
    """The ControllerRevision recording ``ds``'s current template as revision ``number``."""
    hash_ = template_hash(ds)
    template = (ds.get("spec") or {}).get("template") or {}
    labels = dict(thaw((template.get("metadata") or {}).get("labels") or {}))
    labels[CONTROLLER_REVISION_HASH_LABEL] = hash_
    metadata: Obj = {"name": f"{object_name(ds)}-{hash_}", "namespace": object_namespace(ds),
                     "labels": labels, "ownerReferences": [owner_reference(ds)]}
    annotations = object_meta(ds).get("annotations")
    if annotations:
        metadata["annotations"] = thaw(annotations)
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": metadata,
            "data": revision_patch(ds), "revision": number}


def revisions_to_trim(old: Sequence[Mapping[str, Any]], limit: int,
                      live_hashes: set[str]) -> list[Mapping[str, Any]]:
    """The old revisions to delete: the lowest numbered beyond ``limit``, none still live."""
    to_kill = len(old) - max(limit, 0)
    doomed: list[Mapping[str, Any]] = []
    for revision in sorted(old, key=lambda r: (revision_number(r), object_name(r))):
        if to_kill <= 0:
            break
        if revision_hash(revision) in live_hashes:
            continue
        doomed.append(revision)
        to_kill -= 1
    return doomed


class History:
    """Keeps one DaemonSet's revisions during one sync (see the module docstring)."""

    def __init__(self, clientset: Clientset, ds: Mapping[str, Any]) -> None:
        self.clientset = clientset
        self.ds = ds
        self._client = clientset.resource("controllerrevisions")

    async def construct(self, revisions: Sequence[Mapping[str, Any]],
                        pods: Sequence[Mapping[str, Any]],
                        ) -> tuple[Mapping[str, Any], list[Mapping[str, Any]]]:
        """The current revision (created if needed) and the old ones.

        Raises:
            ApiError: a write failed, or the hash collided (after bumping the count).
        """
        current: list[Mapping[str, Any]] = []
        old: list[Mapping[str, Any]] = []
        for revision in revisions:
            if CONTROLLER_REVISION_HASH_LABEL not in object_labels(revision):
                body: Obj = thaw(revision)
                body["metadata"].setdefault("labels", {})[CONTROLLER_REVISION_HASH_LABEL] = \
                    object_name(revision)
                revision = await self._client.update(body)
            (current if matches_template(self.ds, revision) else old).append(revision)
        next_number = max((revision_number(r) for r in old), default=0) + 1
        if not current:
            return await self._snapshot(next_number), old
        keep = await self._dedup(current, pods)
        if revision_number(keep) < next_number:
            body = thaw(keep)
            body["revision"] = next_number
            keep = await self._client.update(body)
        return keep, old

    async def _dedup(self, current: Sequence[Mapping[str, Any]],
                     pods: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
        keep = current[0]
        for revision in current[1:]:
            if revision_number(revision) >= revision_number(keep):
                keep = revision
        keep_hash = revision_hash(keep)
        pod_client = self.clientset.resource("pods")
        for revision in current:
            if object_name(revision) == object_name(keep):
                continue
            for pod in pods:
                if object_labels(pod).get(CONTROLLER_REVISION_HASH_LABEL) != keep_hash:
                    await pod_client.patch(object_name(pod), object_namespace(pod), {
                        "metadata": {"labels": {CONTROLLER_REVISION_HASH_LABEL: keep_hash}}},
                        "strategic")
            try:
                await self._client.delete(object_name(revision), object_namespace(revision))
            except NotFound:
                pass  # deleted meanwhile
        return keep

    async def _snapshot(self, number: int) -> Mapping[str, Any]:
        revision = new_revision(self.ds, number)
        name, namespace = revision["metadata"]["name"], object_namespace(self.ds)
        try:
            return await self._client.create(revision)
        except AlreadyExists:
            existing = await self._client.get(name, namespace)
            if matches_template(self.ds, existing):
                return existing
            ds_client = self.clientset.resource("daemonsets")
            fresh = await ds_client.get(object_name(self.ds), namespace)
            if _collision_count(fresh) != _collision_count(self.ds):
                raise Conflict("daemonsets", object_name(self.ds),
                               f"found a stale collision count ({_collision_count(self.ds)}, "
                               f"expected {_collision_count(fresh)}); will retry") from None
            fresh.setdefault("status", {})["collisionCount"] = \
                (_collision_count(fresh) or 0) + 1
            await ds_client.update_status(fresh)
            raise

    async def cleanup(self, old: Sequence[Mapping[str, Any]],
                      pods: Sequence[Mapping[str, Any]]) -> list[str]:
        """Delete the old revisions beyond the history limit; their names.

        ``pods`` are the DaemonSet's pods, terminal and terminating ones included.
        """
        raw_limit = (self.ds.get("spec") or {}).get("revisionHistoryLimit")
        limit = raw_limit if isinstance(raw_limit, int) else DEFAULT_REVISION_HISTORY_LIMIT
        live = {h for h in (object_labels(p).get(CONTROLLER_REVISION_HASH_LABEL) for p in pods)
                if h}
        deleted: list[str] = []
        for revision in revisions_to_trim(old, limit, live):
            try:
                await self._client.delete(object_name(revision), object_namespace(revision))
            except NotFound:
                continue
            deleted.append(object_name(revision))
        return deleted
