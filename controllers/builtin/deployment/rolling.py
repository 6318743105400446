"""The RollingUpdate strategy: grow the new ReplicaSet and shrink the old ones within bounds.

One step per sync, as Kubernetes takes it:

1. find or create the new ReplicaSet;
2. if the new ReplicaSet can grow (fewer than ``replicas + maxSurge`` pods
   in all), grow it, write the status and stop;
3. else, if old ReplicaSets can shrink, shrink them: first by their
   unavailable replicas (they add nothing to availability), then by
   available ones while ``replicas - maxUnavailable`` stay available,
   counting the new ReplicaSet's unavailable pods against the budget;
   write the status and stop;
4. else, once the rollout is complete, delete old ReplicaSets beyond the
   history limit; write the status (with the progress estimate).

So at no point are there more than ``replicas + maxSurge`` pods asked for,
nor are old pods removed while fewer than ``replicas - maxUnavailable``
would stay available.
"""

from __future__ import annotations

from controllers.api.objects import Obj
from controllers.builtin.deployment.progress import deployment_complete
from controllers.builtin.deployment.sizing import (
    filter_active,
    max_scaled_down,
    new_rs_new_replicas,
    plan_cleanup_unhealthy,
    plan_scale_down_old,
    replica_count,
    replicas_of,
)
from controllers.builtin.deployment.sync import DeploymentSync
from kvstore.errors import InvariantError

__all__ = [
    "cleanup_unhealthy_replicas",
    "reconcile_new_replicaset",
    "reconcile_old_replicasets",
    "rollout_rolling",
    "scale_down_old_replicasets",
]


async def rollout_rolling(sync: DeploymentSync, rss: list[Obj]) -> None:
    """One step of a rolling update (see the module docstring)."""
    new_rs, old = await sync.get_all_replicasets_and_sync_revision(rss, create=True)
    if new_rs is None:
        raise InvariantError("a rolling update needs its new replica set")
    all_rss = [*old, new_rs]
    if await reconcile_new_replicaset(sync, all_rss, new_rs):
        await sync.sync_rollout_status(all_rss, new_rs)
        return
    if await reconcile_old_replicasets(sync, all_rss, filter_active(old), new_rs):
        await sync.sync_rollout_status(all_rss, new_rs)
        return
    if deployment_complete(sync.d, sync.d.get("status")):
        await sync.cleanup_deployment(old)
    await sync.sync_rollout_status(all_rss, new_rs)


async def reconcile_new_replicaset(sync: DeploymentSync, all_rss: list[Obj],
                                   new_rs: Obj) -> bool:
    """Grow (or, past ``replicas``, shrink) the new ReplicaSet; whether it changed size."""
    if replicas_of(new_rs) == sync.replicas:
        return False
    if replicas_of(new_rs) > sync.replicas:
        return await sync.scale_replicaset_and_record_event(new_rs, sync.replicas)
    grown = new_rs_new_replicas(sync.d, all_rss, new_rs)
    return await sync.scale_replicaset_and_record_event(new_rs, grown)


async def reconcile_old_replicasets(sync: DeploymentSync, all_rss: list[Obj],
                                    old: list[Obj], new_rs: Obj) -> bool:
    """Shrink the old ReplicaSets as far as availability allows; whether any shrank."""
    if replica_count(old) == 0:
        return False
    budget = max_scaled_down(sync.d, all_rss, new_rs)
    if budget <= 0:
        return False
    cleaned = await cleanup_unhealthy_replicas(sync, old, budget)
    scaled = await scale_down_old_replicasets(sync, [*old, new_rs], old)
    return cleaned + scaled > 0


async def cleanup_unhealthy_replicas(sync: DeploymentSync, old: list[Obj],
                                     max_cleanup: int) -> int:
    """Remove up to ``max_cleanup`` unavailable replicas of old ReplicaSets; how many."""
    removed = 0
    for rs, size in plan_cleanup_unhealthy(old, max_cleanup):
        before = replicas_of(rs)
        await sync.scale_replicaset_and_record_event(rs, size)
        removed += before - size
    return removed


async def scale_down_old_replicasets(sync: DeploymentSync, all_rss: list[Obj],
                                     old: list[Obj]) -> int:
    """Remove available old replicas while availability allows; how many."""
    removed = 0
    for rs, size in plan_scale_down_old(sync.d, all_rss, old):
        before = replicas_of(rs)
        await sync.scale_replicaset_and_record_event(rs, size)
        removed += before - size
    return removed
