"""One sync of one Deployment: finding or creating its new ReplicaSet, scaling, clean-up, status.

``DeploymentSync`` holds a mutable copy of the Deployment and the moment
(wall clock) of the sync. Its methods are the steps Kubernetes' deployment
controller takes; the strategies (``rolling``, ``recreate``) compose them:

- ``get_all_replicasets_and_sync_revision``: splits the owned ReplicaSets
  into the new one (the oldest whose template equals the Deployment's,
  ignoring the hash label) and the old ones; brings the new one's
  annotations and ``minReadySeconds`` up to date, or creates it (sized by
  ``sizing.new_rs_new_replicas``) when asked to; mirrors its revision on
  the Deployment and records Progressing (NewReplicaSetCreated /
  FoundNewReplicaSet). A name taken by a ReplicaSet that is not this
  Deployment's bumps ``status.collisionCount`` and raises ``HashCollision``.
- ``scale``: a resize outside a rollout step (one active ReplicaSet takes
  the new size; a saturated new one makes the old ones 0; else the
  proportional plan).
- ``cleanup_deployment``: deletes the oldest old ReplicaSets beyond
  ``revisionHistoryLimit`` that have no replicas left.
- ``sync_deployment_status`` / ``sync_rollout_status``: write the status
  (``progress``) when it changed; the latter also notes when to look again
  for a progress deadline (``requeue_after``).

Every write is compare-and-swap on the object as read: ``Conflict`` means
the caller must sync again. Objects written are updated in place, so later
steps of the same sync see what was written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from controllers.api.clientset import Clientset
from controllers.api.errors import AlreadyExists, ApiError, Forbidden, NotFound
from controllers.api.objects import Obj, annotations_of, meta, name_of, namespace_of
from controllers.builtin.deployment.annotations import (
    REVISION_ANNOTATION,
    desired_replicas_annotation,
    max_revision,
    replicas_annotations_need_update,
    set_deployment_revision,
    set_new_replicaset_annotations,
    set_replicas_annotations,
)
from controllers.builtin.deployment.hashing import (
    POD_TEMPLATE_HASH_LABEL,
    compute_hash,
    equal_ignore_hash,
)
from controllers.builtin.deployment.progress import (
    FAILED_RS_CREATE_REASON,
    FOUND_NEW_RS_REASON,
    NEW_RS_REASON,
    NO_DEADLINE,
    PAUSED_REASON,
    PROGRESSING,
    RESUMED_REASON,
    TIMED_OUT_REASON,
    calculate_status,
    get_condition,
    has_progress_deadline,
    new_condition,
    rollout_status,
    set_condition,
    stuck_requeue_seconds,
)
from controllers.builtin.deployment.sizing import (
    by_creation,
    filter_active,
    find_active_or_latest,
    is_rolling_update,
    is_saturated,
    max_surge,
    new_rs_new_replicas,
    plan_proportional_scale,
    replicas_of,
    sorted_by_revision,
)
from controllers.builtin.podutil import controller_ref, owner_reference
from controllers.events import EventRecorder
from controllers.informers.store import thaw

__all__ = ["DeploymentSync", "HashCollision", "find_new_replicaset", "is_paused"]


class HashCollision(Exception):
    """The new ReplicaSet's name is taken by another object; ``collisionCount`` was bumped."""


def find_new_replicaset(deployment: Mapping[str, Any], rss: Sequence[Obj]) -> Obj | None:
    """The oldest ReplicaSet whose template is the Deployment's (ignoring the hash label)."""
    template = (deployment.get("spec") or {}).get("template") or {}
    for rs in sorted(rss, key=by_creation):
        if equal_ignore_hash((rs.get("spec") or {}).get("template") or {}, template):
            return rs
    return None


def is_paused(deployment: Mapping[str, Any]) -> bool:
    return bool((deployment.get("spec") or {}).get("paused"))


def _replace(target: Obj, source: Obj) -> None:
    target.clear()
    target.update(source)


class DeploymentSync:
    """The steps of one Deployment's sync (see the module docstring)."""

    def __init__(self, clientset: Clientset, recorder: EventRecorder, deployment: Obj, *,
                 now: float) -> None:
        self.clientset = clientset
        self.recorder = recorder
        self.d = deployment
        self.now = now
        self.requeue_after: float | None = None
        """Seconds after which to sync again for a progress deadline (None: no need)."""
        self.replicaset_versions: list[str] = []
        """The resourceVersions of the ReplicaSet writes (and deletions), in order."""
        self._replicasets = clientset.resource("replicasets")
        self._deployments = clientset.resource("deployments")

    # -- small reads ----------------------------------------------------------------
    @property
    def replicas(self) -> int:
        return replicas_of(self.d)

    @property
    def max_replicas(self) -> int:
        return self.replicas + max_surge(self.d)

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.d.get("spec")
        return spec if isinstance(spec, dict) else {}

    def status(self) -> dict[str, Any]:
        status = self.d.get("status")
        if not isinstance(status, dict):
            status = self.d["status"] = {}
        return status

    def _min_ready_seconds(self) -> int:
        value = self.spec.get("minReadySeconds")
        return value if isinstance(value, int) else 0

    # -- writes ---------------------------------------------------------------------
    async def _update_replicaset(self, rs: Obj) -> None:
        written = await self._replicasets.update(rs)
        _replace(rs, written)
        self.replicaset_versions.append(str(written["metadata"]["resourceVersion"]))

    async def write_deployment(self, *, metadata_changed: bool = False) -> None:
        """Store the Deployment's status, then (if ``metadata_changed``) its annotations.

        The status goes first: a reader between the two writes sees the new
        status under the old revision, never the old status under the new one.
        """
        notes = thaw(meta(self.d).get("annotations") or {})
        _replace(self.d, await self._deployments.update_status(self.d))
        if metadata_changed:
            self.d["metadata"]["annotations"] = notes
            _replace(self.d, await self._deployments.update(self.d))

    def _event(self, type_: str, reason: str, message: str) -> None:
        self.recorder.event(self.d, type_, reason, message)

    async def scale_replicaset_and_record_event(self, rs: Obj, new_scale: int) -> bool:
        """Resize ``rs`` to ``new_scale``; whether its size changed."""
        if replicas_of(rs) == new_scale:
            return False
        operation = "up" if replicas_of(rs) < new_scale else "down"
        return await self.scale_replicaset(rs, new_scale, operation)

    async def scale_replicaset(self, rs: Obj, new_scale: int, operation: str) -> bool:
        """Resize ``rs`` and refresh its replica annotations; whether its size changed."""
        resize = replicas_of(rs) != new_scale
        if not resize and not replicas_annotations_need_update(rs, self.replicas,
                                                               self.max_replicas):
            return False
        rs.setdefault("spec", {})["replicas"] = new_scale
        set_replicas_annotations(rs, self.replicas, self.max_replicas)
        await self._update_replicaset(rs)
        if resize:
            self._event("Normal", "ScalingReplicaSet",
                        f"Scaled {operation} replica set {name_of(rs)} to {new_scale}")
        return resize

    # -- the new ReplicaSet ---------------------------------------------------------
    async def get_all_replicasets_and_sync_revision(
        self, rss: list[Obj], *, create: bool
    ) -> tuple[Obj | None, list[Obj]]:
        """The new ReplicaSet (created if ``create`` and missing) and the old ones."""
        existing = find_new_replicaset(self.d, rss)
        old = [rs for rs in rss if rs is not existing]
        return await self._get_new_replicaset(old, existing, create=create), old

    async def _get_new_replicaset(self, old: list[Obj], existing: Obj | None, *,
                                  create: bool) -> Obj | None:
        new_revision = max_revision(old) + 1
        status = self.status()
        if existing is not None:
            changed = set_new_replicaset_annotations(
                self.d, existing, new_revision, exists=True, desired=self.replicas,
                maximum=self.max_replicas)
            rs_spec = existing.setdefault("spec", {})
            if changed or rs_spec.get("minReadySeconds", 0) != self._min_ready_seconds():
                rs_spec["minReadySeconds"] = self._min_ready_seconds()
                await self._update_replicaset(existing)
            revised = set_deployment_revision(
                self.d, annotations_of(existing).get(REVISION_ANNOTATION, ""))
            noted = False
            if has_progress_deadline(self.d) and get_condition(status, PROGRESSING) is None:
                set_condition(status, new_condition(
                    PROGRESSING, "True", FOUND_NEW_RS_REASON,
                    f'Found new replica set "{name_of(existing)}"', self.now))
                noted = True
            if revised or noted:
                await self.write_deployment(metadata_changed=revised)
            return existing
        if not create:
            return None
        return await self._create_new_replicaset(old, new_revision)

    def _new_replicaset_body(self, old: list[Obj], new_revision: int) -> Obj:
        collision = self.status().get("collisionCount")
        template: Obj = thaw(self.spec.get("template") or {})
        pod_hash = compute_hash(template, collision if isinstance(collision, int) else None)
        template_meta = template.setdefault("metadata", {})
        labels = {**(template_meta.get("labels") or {}), POD_TEMPLATE_HASH_LABEL: pod_hash}
        template_meta["labels"] = labels
        selector: Obj = thaw(self.spec.get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}),
                                   POD_TEMPLATE_HASH_LABEL: pod_hash}
        rs: Obj = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": f"{name_of(self.d)}-{pod_hash}",
                         "namespace": namespace_of(self.d),
                         "ownerReferences": [owner_reference(self.d)], "labels": dict(labels)},
            "spec": {"replicas": 0, "minReadySeconds": self._min_ready_seconds(),
                     "selector": selector, "template": template},
        }
        rs["spec"]["replicas"] = new_rs_new_replicas(self.d, [*old, rs], rs)
        set_new_replicaset_annotations(self.d, rs, new_revision, exists=False,
                                       desired=self.replicas, maximum=self.max_replicas)
        return rs

    async def _create_new_replicaset(self, old: list[Obj], new_revision: int) -> Obj:
        body = self._new_replicaset_body(old, new_revision)
        name, count = name_of(body), replicas_of(body)
        status = self.status()
        found_ours = False
        try:
            created = await self._replicasets.create(body)
        except AlreadyExists:
            created = await self._ours_or_collision(name)
            found_ours = True
        except Forbidden:
            raise  # the namespace is going away: not a failure of the rollout
        except ApiError as e:
            message = f'Failed to create new replica set "{name}": {e}'
            if has_progress_deadline(self.d):
                set_condition(status, new_condition(PROGRESSING, "False",
                                                    FAILED_RS_CREATE_REASON, message, self.now))
                try:
                    await self.write_deployment()
                except ApiError:
                    pass  # the create error is what the caller must see
            self._event("Warning", FAILED_RS_CREATE_REASON, message)
            raise
        self.replicaset_versions.append(str(created["metadata"]["resourceVersion"]))
        if not found_ours and count > 0:
            self._event("Normal", "ScalingReplicaSet",
                        f"Scaled up replica set {name} to {count}")
        revised = set_deployment_revision(self.d, str(new_revision))
        noted = False
        if not found_ours and has_progress_deadline(self.d):
            set_condition(status, new_condition(PROGRESSING, "True", NEW_RS_REASON,
                                                f'Created new replica set "{name}"', self.now))
            noted = True
        if revised or noted:
            await self.write_deployment(metadata_changed=revised)
        return created

    async def _ours_or_collision(self, name: str) -> Obj:
        """The ReplicaSet ``name`` if it is this Deployment's new one; else a collision."""
        try:
            found = await self._replicasets.get(name, namespace_of(self.d))
        except NotFound:
            raise HashCollision(f"replica set {name} exists and does not") from None
        ref = controller_ref(found)
        template = self.spec.get("template") or {}
        if ref is not None and ref.get("uid") == meta(self.d).get("uid") and \
                equal_ignore_hash(template, (found.get("spec") or {}).get("template") or {}):
            return found
        status = self.status()
        previous = status.get("collisionCount")
        status["collisionCount"] = (previous if isinstance(previous, int) else 0) + 1
        await self.write_deployment()
        raise HashCollision(f"replica set {name} exists and is not this deployment's; "
                            f"collisionCount is now {status['collisionCount']}")

    # -- scaling and clean-up -------------------------------------------------------
    async def scale(self, new_rs: Obj | None, old: list[Obj]) -> None:
        """Resize the ReplicaSets to the Deployment's ``replicas`` (see the module docstring)."""
        only = find_active_or_latest(new_rs, old)
        if only is not None:
            await self.scale_replicaset_and_record_event(only, self.replicas)
            return
        if is_saturated(self.d, new_rs):
            for rs in filter_active(old):
                await self.scale_replicaset_and_record_event(rs, 0)
            return
        if is_rolling_update(self.d):
            plan, operation = plan_proportional_scale(self.d, [*old, new_rs])
            for rs, size in plan:
                await self.scale_replicaset(rs, size, operation)

    async def is_scaling_event(self, rss: list[Obj]) -> bool:
        """Whether an active ReplicaSet was sized for a different ``replicas``."""
        new_rs, old = await self.get_all_replicasets_and_sync_revision(rss, create=False)
        for rs in filter_active([*old, new_rs]):
            desired = desired_replicas_annotation(rs)
            if desired is not None and desired != self.replicas:
                return True
        return False

    async def cleanup_deployment(self, old: list[Obj]) -> None:
        """Delete the oldest old ReplicaSets beyond the history limit that run nothing."""
        limit = self.spec.get("revisionHistoryLimit")
        if not isinstance(limit, int) or limit == NO_DEADLINE:
            return
        alive = [rs for rs in old if not meta(rs).get("deletionTimestamp")]
        excess = len(alive) - limit
        if excess <= 0:
            return
        for rs in sorted_by_revision(alive)[:excess]:
            status = rs.get("status") or {}
            generation = meta(rs).get("generation") or 0
            if status.get("replicas", 0) != 0 or replicas_of(rs) != 0 or \
                    generation > status.get("observedGeneration", 0):
                continue
            try:
                gone = await self._replicasets.delete(name_of(rs), namespace_of(rs))
            except NotFound:
                continue
            self.replicaset_versions.append(str(gone["metadata"]["resourceVersion"]))

    # -- whole-sync steps -------------------------------------------------------------
    async def sync(self, rss: list[Obj]) -> None:
        """Resize only (a scaling event, or a paused Deployment), then write the status."""
        new_rs, old = await self.get_all_replicasets_and_sync_revision(rss, create=False)
        await self.scale(new_rs, old)
        if is_paused(self.d):
            await self.cleanup_deployment(old)
        await self.sync_deployment_status([*old, *([new_rs] if new_rs else [])], new_rs)

    async def sync_status_only(self, rss: list[Obj]) -> None:
        """Write the status and nothing else (a Deployment being deleted)."""
        new_rs, old = await self.get_all_replicasets_and_sync_revision(rss, create=False)
        await self.sync_deployment_status([*old, *([new_rs] if new_rs else [])], new_rs)

    async def check_paused_conditions(self) -> None:
        """Set Progressing to DeploymentPaused / DeploymentResumed when ``paused`` flipped."""
        if not has_progress_deadline(self.d):
            return
        status = self.status()
        cond = get_condition(status, PROGRESSING)
        if cond is not None and cond.get("reason") == TIMED_OUT_REASON:
            return
        paused_noted = cond is not None and cond.get("reason") == PAUSED_REASON
        if is_paused(self.d) and not paused_noted:
            set_condition(status, new_condition(PROGRESSING, "Unknown", PAUSED_REASON,
                                                "Deployment is paused", self.now))
        elif not is_paused(self.d) and paused_noted:
            set_condition(status, new_condition(PROGRESSING, "Unknown", RESUMED_REASON,
                                                "Deployment is resumed", self.now))
        else:
            return
        await self.write_deployment()

    async def sync_deployment_status(self, all_rss: list[Obj], new_rs: Obj | None) -> None:
        """Write the counts and Available, if they changed."""
        status = calculate_status(all_rss, new_rs, self.d, self.now)
        if self.d.get("status") != status:
            self.d["status"] = status
            await self.write_deployment()

    async def sync_rollout_status(self, all_rss: list[Obj], new_rs: Obj | None) -> None:
        """Write the status with the progress estimate; if unchanged, note when to look again."""
        status = rollout_status(all_rss, new_rs, self.d, self.now)
        if self.d.get("status") == status:
            self.requeue_after = stuck_requeue_seconds(self.d, status, self.now)
            return
        self.d["status"] = status
        await self.write_deployment()
