"""The Deployment controller: rolls pod templates out through ReplicaSets, as Kubernetes does.

A Deployment owns one ReplicaSet per pod template it has had (named
``<deployment>-<pod-template-hash>``). Its current template's ReplicaSet is
the *new* one; the others are *old*. Each sync of a Deployment (key
``namespace/name``):

1. claims the ReplicaSets of its namespace (``claim``) and lists its pods;
2. a Deployment being deleted gets its status written and nothing else;
3. sets Progressing to DeploymentPaused / DeploymentResumed when
   ``spec.paused`` flipped;
4. a paused Deployment, or one whose ``replicas`` changed (a ReplicaSet's
   ``desired-replicas`` annotation disagrees), is only resized
   (``DeploymentSync.scale``, proportional mid-rollout); a paused one also
   has its history cleaned;
5. otherwise takes one step of its strategy: ``rolling`` (RollingUpdate,
   the default) or ``recreate``.

Rolling back is setting the template back (as the CLI does, from an old
ReplicaSet): the ReplicaSet with that template becomes the new one again
and takes the next revision.

It watches Deployments; ReplicaSets (an owned one changing syncs its owner;
an orphan, or one whose labels changed, syncs every Deployment whose
selector matches it); and pod deletions (a Recreate Deployment whose last
old pod went away). Writes are compare-and-swap; a ``Conflict`` syncs again
(rate limited). After its writes a sync waits (at most ``cache_wait``
seconds) until the informers have seen them, so the next sync starts from
them. Progress deadlines are judged on the clientset's wall clock; a sync
that finds a rollout without progress asks to be run again when its
deadline passes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from controllers.api.errors import Conflict, NotFound
from controllers.api.objects import Obj, labels_of, meta, namespace_of, namespaced_name
from controllers.api.selectors import LabelSelector
from controllers.builtin.deployment.claim import (
    DEPLOYMENT_KIND,
    ReplicaSetClaimer,
    pods_by_replicaset,
)
from controllers.builtin.deployment.recreate import rollout_recreate
from controllers.builtin.deployment.rolling import rollout_rolling
from controllers.builtin.deployment.sizing import InvalidIntOrPercent
from controllers.builtin.deployment.sync import DeploymentSync, HashCollision, is_paused
from controllers.builtin.podutil import controller_ref
from controllers.controller import (
    DONE,
    REQUEUE,
    ControllerContext,
    PermanentError,
    Result,
    requeue_after,
)
from controllers.informers.fifo import DeletedFinalStateUnknown
from controllers.informers.shared_informer import (
    ResourceEventHandlerFuncs,
    SharedInformer,
)
from controllers.informers.store import thaw

__all__ = ["DeploymentController"]

_log = logging.getLogger(__name__)


def _own(obj: Any) -> Obj:
    """A mutable copy of an object (or of a tombstone's object) handed out by an informer.

    Informers may hand out read-only views, which the ``controllers.api.objects``
    helpers do not read; every object is copied before it is looked at.
    """
    found: Obj = thaw(obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj)
    return found


def _strategy_type(deployment: Mapping[str, Any]) -> str:
    strategy = (deployment.get("spec") or {}).get("strategy") or {}
    return str(strategy.get("type") or "RollingUpdate")


def _selector_is_empty(selector: Any) -> bool:
    return not isinstance(selector, Mapping) or not (
        selector.get("matchLabels") or selector.get("matchExpressions"))


class DeploymentController:
    """Reconciles Deployments (see the module docstring)."""

    name = "deployment"
    event_source = "deployment-controller"
    informers: Sequence[str] = ("deployments", "replicasets", "pods")

    def __init__(self, *, cache_wait: float = 5.0) -> None:
        self.cache_wait = cache_wait
        self._context: ControllerContext | None = None
        self._deployments: SharedInformer | None = None
        self._replicasets: SharedInformer | None = None
        self._pods: SharedInformer | None = None

    # -- handlers -------------------------------------------------------------------
    def setup(self, context: ControllerContext) -> None:
        self._context = context
        self._deployments = context.informer("deployments")
        self._replicasets = context.informer("replicasets")
        self._pods = context.informer("pods")
        self._deployments.add_event_handler(ResourceEventHandlerFuncs(
            add=lambda obj, _initial: self._enqueue(_own(obj)),
            update=lambda _old, new: self._enqueue(_own(new)),
            delete=lambda obj: self._enqueue(_own(obj))))
        self._replicasets.add_event_handler(ResourceEventHandlerFuncs(
            add=self._add_replicaset, update=self._update_replicaset,
            delete=self._delete_replicaset))
        self._pods.add_event_handler(ResourceEventHandlerFuncs(delete=self._delete_pod))

    def _enqueue(self, deployment: Mapping[str, Any]) -> None:
        if self._context is not None:
            self._context.enqueue(namespaced_name(deployment))

    def _resolve(self, namespace: str, ref: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """The Deployment ``ref`` names, if it is one and the cache holds that very one."""
        if ref is None or ref.get("kind") != DEPLOYMENT_KIND or self._deployments is None:
            return None
        try:
            found = _own(self._deployments.lister().get(namespace, str(ref.get("name", ""))))
        except NotFound:
            return None
        return found if meta(found).get("uid") == ref.get("uid") else None

    def _deployments_selecting(self, rs: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        if self._deployments is None:
            return []
        chosen: list[Mapping[str, Any]] = []
        for d in map(_own, self._deployments.lister().list(namespace=namespace_of(rs))):
            selector = (d.get("spec") or {}).get("selector")
            if _selector_is_empty(selector):
                continue
            if LabelSelector.from_dict(selector).matches(labels_of(rs)):
                chosen.append(d)
        return chosen

    def _add_replicaset(self, obj: Any, _initial: bool) -> None:
        rs = _own(obj)
        if meta(rs).get("deletionTimestamp"):
            self._delete_replicaset(rs)
            return
        ref = controller_ref(rs)
        if ref is not None:
            owner = self._resolve(namespace_of(rs), ref)
            if owner is not None:
                self._enqueue(owner)
            return
        for d in self._deployments_selecting(rs):
            self._enqueue(d)

    def _update_replicaset(self, old_obj: Any, new_obj: Any) -> None:
        old, new = _own(old_obj), _own(new_obj)
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return
        old_ref, new_ref = controller_ref(old), controller_ref(new)
        ref_changed = old_ref != new_ref
        if ref_changed and old_ref is not None:
            previous = self._resolve(namespace_of(old), old_ref)
            if previous is not None:
                self._enqueue(previous)
        if new_ref is not None:
            owner = self._resolve(namespace_of(new), new_ref)
            if owner is not None:
                self._enqueue(owner)
            return
        if ref_changed or labels_of(old) != labels_of(new):
            for d in self._deployments_selecting(new):
                self._enqueue(d)

    def _delete_replicaset(self, obj: Any) -> None:
        rs = _own(obj)
        owner = self._resolve(namespace_of(rs), controller_ref(rs))
        if owner is not None:
            self._enqueue(owner)

    def _delete_pod(self, obj: Any) -> None:
        pod = _own(obj)
        if self._replicasets is None or self._pods is None:
            return
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        try:
            rs = _own(self._replicasets.lister().get(namespace_of(pod), str(ref.get("name", ""))))
        except NotFound:
            return
        if meta(rs).get("uid") != ref.get("uid"):
            return
        d = self._resolve(namespace_of(rs), controller_ref(rs))
        if d is None or _strategy_type(d) != "Recreate":
            return
        uid = meta(d).get("uid")
        owned = [r for r in map(_own, self._replicasets.lister().list(namespace=namespace_of(d)))
                 if (controller_ref(r) or {}).get("uid") == uid]
        selector = LabelSelector.from_dict((d.get("spec") or {}).get("selector"))
        pods = [_own(p) for p in self._pods.lister().list(selector, namespace=namespace_of(d))]
        if not any(pods_by_replicaset(owned, pods).values()):
            self._enqueue(d)

    # -- reconcile ------------------------------------------------------------------
    async def reconcile(self, key: str) -> Result | None:
        context, deployments = self._context, self._deployments
        if context is None or deployments is None:
            raise RuntimeError("reconcile before setup")
        namespace, _, name = key.rpartition("/")
        try:
            cached = deployments.lister().get(namespace, name)
        except NotFound:
            return DONE
        sync = DeploymentSync(context.clientset, context.recorder, _own(cached),
                              now=context.clientset.clock.now())
        try:
            return await self._sync(sync)
        except (Conflict, HashCollision, NotFound) as e:
            _log.debug("deployment %s: %s; syncing again", key, e)
            return REQUEUE
        except InvalidIntOrPercent as e:
            raise PermanentError(f"deployment {key}: {e}") from e
        finally:
            await self._wait_for_caches(sync, cached)

    async def _sync(self, sync: DeploymentSync) -> Result:
        d = sync.d
        selector = sync.spec.get("selector")
        if _selector_is_empty(selector):
            sync.recorder.event(d, "Warning", "SelectingAll", "This deployment is selecting "
                                "all pods. A non-empty selector is required.")
            status = sync.status()
            generation = meta(d).get("generation") or 0
            if (status.get("observedGeneration") or 0) < generation:
                status["observedGeneration"] = generation
                await sync.write_deployment()
            return DONE
        if self._replicasets is None or self._pods is None:
            raise RuntimeError("reconcile before setup")
        label_selector = LabelSelector.from_dict(selector)
        claimer = ReplicaSetClaimer(sync.clientset, d, label_selector)
        try:
            rss = await claimer.claim(
                [_own(rs) for rs in self._replicasets.lister().list(namespace=namespace_of(d))])
        finally:
            sync.replicaset_versions += [str(meta(rs)["resourceVersion"])
                                         for rs in claimer.written]
        if meta(d).get("deletionTimestamp"):
            await sync.sync_status_only(rss)
            return DONE
        await sync.check_paused_conditions()
        if is_paused(d) or await sync.is_scaling_event(rss):
            await sync.sync(rss)
            return DONE
        if _strategy_type(d) == "Recreate":
            pods = [_own(p) for p in self._pods.lister().list(label_selector,
                                                              namespace=namespace_of(d))]
            await rollout_recreate(sync, rss, pods_by_replicaset(rss, pods))
        else:
            await rollout_rolling(sync, rss)
        if sync.requeue_after is None:
            return DONE
        return REQUEUE if sync.requeue_after <= 0 else requeue_after(sync.requeue_after)

    async def _wait_for_caches(self, sync: DeploymentSync, cached: Mapping[str, Any]) -> None:
        """Wait (bounded) until the informers have seen what this sync wrote."""
        waits = []
        if sync.replicaset_versions and self._replicasets is not None:
            newest = max(int(rv) for rv in sync.replicaset_versions)
            waits.append(self._replicasets.wait_for_resource_version(newest))
        written = meta(sync.d).get("resourceVersion")
        if written and written != (cached.get("metadata") or {}).get("resourceVersion") and \
                self._deployments is not None:
            waits.append(self._deployments.wait_for_resource_version(written))
        if not waits:
            return
        try:
            async with asyncio.timeout(self.cache_wait):
                await asyncio.gather(*waits)
        except TimeoutError:
            _log.info("%s: the caches have not caught up with our writes yet", self.name)
