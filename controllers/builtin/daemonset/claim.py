"""Claiming pods and ControllerRevisions for a DaemonSet by controller reference.

As Kubernetes' ``ControllerRefManager`` (the decision is the ReplicaSet
controller's ``claim_action``): what the DaemonSet controls and its selector
matches is kept; what it controls and no longer matches is released (its
reference removed); a matching orphan not being deleted is adopted (a
controller reference added); whatever someone else controls is ignored. A
DaemonSet being deleted neither adopts nor releases. Before the first
adoption of a sync the DaemonSet is read again from the store: if it was
replaced (another uid) or is being deleted, nothing is adopted.

Adoptions and releases are strategic merge patches carrying the object's
uid, so an object deleted and recreated under the same name is never
touched by mistake. An object gone meanwhile is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from controllers.api.clientset import Clientset
from controllers.api.errors import ApiError, Conflict, Invalid, NotFound
from controllers.api.selectors import LabelSelector
from controllers.builtin.pod_control import adoption_patch, release_patch
from controllers.builtin.podutil import owner_reference
from controllers.builtin.replicaset import ClaimAction, claim_action
from controllers.informers.store import object_meta, object_name, object_namespace

__all__ = ["Claimer"]


class Claimer:
    """Claims objects of any namespaced resource for one DaemonSet during one sync."""

    def __init__(self, clientset: Clientset, ds: Mapping[str, Any],
                 selector: LabelSelector) -> None:
        self.clientset = clientset
        self.ds = ds
        self.selector = selector
        self._may_adopt: bool | None = None

    async def claim(self, resource: str,
                    objs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """The objects of ``resource`` the DaemonSet controls after adopting and releasing.

        Raises:
            ApiError: an adoption or release failed (the first such error,
                after trying every object).
        """
        claimed: list[Mapping[str, Any]] = []
        errors: list[ApiError] = []
        client = self.clientset.resource(resource)
        ds_uid = str(object_meta(self.ds).get("uid", ""))
        for obj in objs:
            if object_namespace(obj) != object_namespace(self.ds):
                continue
            action = claim_action(obj, self.ds, self.selector)
            name, namespace = object_name(obj), object_namespace(obj)
            uid = str(object_meta(obj).get("uid", ""))
            if action is ClaimAction.KEEP:
                claimed.append(obj)
            elif action is ClaimAction.ADOPT:
                if not await self._can_adopt(errors):
                    continue
                try:
                    adopted = await client.patch(
                        name, namespace, adoption_patch(uid, owner_reference(self.ds)),
                        "strategic")
                except NotFound:
                    continue
                except ApiError as e:
                    errors.append(e)
                    continue
                claimed.append(adopted)
            elif action is ClaimAction.RELEASE:
                try:
                    await client.patch(name, namespace, release_patch(uid, ds_uid), "strategic")
                except (NotFound, Invalid, Conflict):
                    pass  # gone, recreated, or already released
                except ApiError as e:
                    errors.append(e)
        if errors:
            raise errors[0]
        return claimed

    async def _can_adopt(self, errors: list[ApiError]) -> bool:
        if self._may_adopt is None:
            try:
                await self._recheck()
                self._may_adopt = True
            except ApiError as e:
                errors.append(e)
                self._may_adopt = False
        return self._may_adopt

    async def _recheck(self) -> None:
        """Read the DaemonSet from the store: it must be the same one, not being deleted."""
        name, namespace = object_name(self.ds), object_namespace(self.ds)
        fresh = await self.clientset.resource("daemonsets").get(name, namespace)
        uid = object_meta(self.ds).get("uid")
        if fresh["metadata"].get("uid") != uid:
            raise Conflict("daemonsets", name, f"original DaemonSet {namespace}/{name} is gone: "
                           f"got uid {fresh['metadata'].get('uid')}, wanted {uid}")
        if fresh["metadata"].get("deletionTimestamp"):
            raise Conflict("daemonsets", name, f"{namespace}/{name} has just been deleted at "
                           f"{fresh['metadata']['deletionTimestamp']}")
