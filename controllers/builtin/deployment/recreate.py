"""The Recreate strategy: every old pod is gone before any new pod is asked for.

One step per sync, as Kubernetes takes it:

1. find the new ReplicaSet, without creating it yet;
2. scale every active old ReplicaSet to 0; if any was, write the status
   and stop;
3. while any old ReplicaSet still reports replicas, or any pod of an old
   ReplicaSet is not finished (Succeeded or Failed), write the status and
   stop: the pods' deletion brings the Deployment back;
4. create the new ReplicaSet if needed and scale it to ``replicas``;
5. once the rollout is complete, delete old ReplicaSets beyond the history
   limit; write the status (with the progress estimate).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from controllers.api.objects import Obj, meta
from controllers.builtin.deployment.progress import deployment_complete
from controllers.builtin.deployment.sizing import actual_replica_count, filter_active
from controllers.builtin.deployment.sync import DeploymentSync
from kvstore.errors import InvariantError

__all__ = ["old_pods_running", "rollout_recreate"]


def old_pods_running(new_rs: Mapping[str, Any] | None, old: Sequence[Mapping[str, Any]],
                     pods_by_rs: Mapping[str, Sequence[Mapping[str, Any]]]) -> bool:
    """Whether an old ReplicaSet reports replicas or has a pod that has not finished."""
    if actual_replica_count(old) > 0:
        return True
    new_uid = meta(new_rs).get("uid") if new_rs is not None else None
    for uid, pods in pods_by_rs.items():
        if uid == new_uid:
            continue
        for pod in pods:
            if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                return True
    return False


async def rollout_recreate(sync: DeploymentSync, rss: list[Obj],
                           pods_by_rs: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
    """One step of a Recreate rollout (see the module docstring)."""
    new_rs, old = await sync.get_all_replicasets_and_sync_revision(rss, create=False)
    all_rss = [*old, *([new_rs] if new_rs is not None else [])]
    scaled_down = False
    for rs in filter_active(old):
        if await sync.scale_replicaset_and_record_event(rs, 0):
            scaled_down = True
    if scaled_down or old_pods_running(new_rs, old, pods_by_rs):
        await sync.sync_rollout_status(all_rss, new_rs)
        return
    if new_rs is None:
        new_rs, old = await sync.get_all_replicasets_and_sync_revision(rss, create=True)
        if new_rs is None:
            raise InvariantError("a recreate rollout needs its new replica set")
        all_rss = [*old, new_rs]
    await sync.scale_replicaset_and_record_event(new_rs, sync.replicas)
    if deployment_complete(sync.d, sync.d.get("status")):
        await sync.cleanup_deployment(old)
    await sync.sync_rollout_status(all_rss, new_rs)
