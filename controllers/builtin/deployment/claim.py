"""Which ReplicaSets and pods belong to a Deployment: claiming by controller reference.

A ReplicaSet belongs to the Deployment its controller reference names (by
uid). The Deployment claims ReplicaSets as the ReplicaSet controller claims
pods, and as Kubernetes' ``ControllerRefManager`` does:

- one it controls whose labels still match its selector: kept;
- one it controls that no longer matches: released (the reference is
  removed), unless the Deployment is being deleted;
- an orphan (no controller) in its namespace that matches and is not being
  deleted: adopted (a controller reference is added), unless the
  Deployment is being deleted. Before the first adoption the Deployment is
  read again from the store: if it was replaced (another uid) or is being
  deleted since the cache saw it, nothing is adopted;
- one controlled by someone else: ignored.

Writes are compare-and-swap on the cached ReplicaSet: if it changed since
the cache saw it, ``Conflict`` propagates and the Deployment is synced again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from controllers.api.clientset import Clientset
from controllers.api.errors import NotFound
from controllers.api.objects import Obj, labels_of, meta, name_of, namespace_of
from controllers.api.selectors import LabelSelector
from controllers.builtin.podutil import controller_ref, owner_reference
from controllers.informers.store import thaw

__all__ = ["DEPLOYMENT_KIND", "ReplicaSetClaimer", "pods_by_replicaset"]

DEPLOYMENT_KIND = "Deployment"


class ReplicaSetClaimer:
    """Claims ReplicaSets for one Deployment during one sync (see the module docstring)."""

    def __init__(self, clientset: Clientset, deployment: Mapping[str, Any],
                 selector: LabelSelector) -> None:
        self.clientset = clientset
        self.deployment = deployment
        self.selector = selector
        self._uid = meta(deployment).get("uid")
        self._can_adopt: bool | None = None
        self.written: list[Obj] = []

    def _deleting(self) -> bool:
        return bool(meta(self.deployment).get("deletionTimestamp"))

    async def claim(self, replicasets: Sequence[Mapping[str, Any]]) -> list[Obj]:
        """The ReplicaSets the Deployment owns after adopting and releasing; mutable copies."""
        owned: list[Obj] = []
        for rs in replicasets:
            claimed = await self._claim_one(rs)
            if claimed is not None:
                owned.append(claimed)
        return owned

    async def _claim_one(self, rs: Mapping[str, Any]) -> Obj | None:
        ref = controller_ref(rs)
        matches = self.selector.matches(labels_of(rs))
        if ref is not None:
            if ref.get("uid") != self._uid:
                return None
            if matches:
                return thaw(rs)  # type: ignore[no-any-return]
            if not self._deleting():
                await self._release(rs)
            return None
        if self._deleting() or not matches or meta(rs).get("deletionTimestamp"):
            return None
        if namespace_of(rs) != namespace_of(self.deployment):
            return None
        if not await self._may_adopt():
            return None
        return await self._adopt(rs)

    async def _may_adopt(self) -> bool:
        if self._can_adopt is None:
            try:
                fresh = await self.clientset.resource("deployments").get(
                    name_of(self.deployment), namespace_of(self.deployment))
            except NotFound:
                self._can_adopt = False
            else:
                self._can_adopt = (meta(fresh).get("uid") == self._uid
                                   and not meta(fresh).get("deletionTimestamp"))
        return self._can_adopt

    async def _adopt(self, rs: Mapping[str, Any]) -> Obj | None:
        copy: Obj = thaw(rs)
        refs = [r for r in meta(copy).get("ownerReferences") or []
                if isinstance(r, dict) and r.get("uid") != self._uid]
        copy["metadata"]["ownerReferences"] = [*refs, owner_reference(self.deployment)]
        try:
            written = await self.clientset.resource("replicasets").update(copy)
        except NotFound:
            return None
        self.written.append(written)
        return written

    async def _release(self, rs: Mapping[str, Any]) -> None:
        copy: Obj = thaw(rs)
        copy["metadata"]["ownerReferences"] = [
            r for r in meta(copy).get("ownerReferences") or []
            if not (isinstance(r, dict) and r.get("uid") == self._uid)]
        try:
            self.written.append(await self.clientset.resource("replicasets").update(copy))
        except NotFound:
            return


def pods_by_replicaset(replicasets: Sequence[Mapping[str, Any]],
                       pods: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """The pods controlled by each of ``replicasets``, by ReplicaSet uid (every uid present)."""
    found: dict[str, list[Mapping[str, Any]]] = {}
    for rs in replicasets:
        uid = meta(rs).get("uid")
        if isinstance(uid, str):
            found[uid] = []
    for pod in pods:
        ref = controller_ref(pod)
        if ref is not None and ref.get("uid") in found:
            found[ref["uid"]].append(pod)
    return found
