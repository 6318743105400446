"""Pod control: how workload controllers create, delete and patch the pods they manage.

``PodControl`` is the seam (client-go's ``PodControlInterface``):

- ``create_pod(namespace, template, owner, controller_ref)`` creates a pod
  from a pod template: ``generateName`` ``<owner name>-``, the template's
  labels, annotations, finalizers and spec, and ``controller_ref`` as its
  only owner reference (``pod_from_template``). A template without labels is
  refused (``ValueError``): the controller could never find such a pod again.
- ``delete_pod(namespace, name, owner, uid=)`` deletes one pod (with the
  pod's uid as a precondition when given).
- ``patch_pod(namespace, name, patch)`` applies a strategic merge patch, as
  adoption and release do (``adoption_patch`` / ``release_patch``: both carry
  the pod's uid, so a pod deleted and recreated under the same name is never
  touched by mistake).

``RealPodControl`` does this through a ``Clientset`` and records events on the
owner with Kubernetes' reasons: ``SuccessfulCreate`` ("Created pod: NAME"),
``FailedCreate`` ("Error creating: ERR"; none when the namespace is being
terminated), ``SuccessfulDelete`` ("Deleted pod: NAME") and ``FailedDelete``
("Error deleting: ERR"; none when the pod was already gone).
``FakePodControl`` records calls in memory and fails on demand, for tests.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Protocol

from controllers.api.clientset import Clientset
from controllers.api.errors import ApiError, Forbidden, NotFound
from controllers.api.objects import Obj
from controllers.events import EventSink
from controllers.informers.store import thaw

__all__ = [
    "FAILED_CREATE",
    "FAILED_DELETE",
    "SUCCESSFUL_CREATE",
    "SUCCESSFUL_DELETE",
    "EventSink",
    "FakePodControl",
    "PodControl",
    "RealPodControl",
    "adoption_patch",
    "pod_from_template",
    "release_patch",
]

SUCCESSFUL_CREATE = "SuccessfulCreate"
FAILED_CREATE = "FailedCreate"
SUCCESSFUL_DELETE = "SuccessfulDelete"
FAILED_DELETE = "FailedDelete"


class PodControl(Protocol):
    """Creates, deletes and patches pods on behalf of an owner (see the module docstring)."""

    async def create_pod(self, namespace: str, template: Mapping[str, Any],
                         owner: Mapping[str, Any], controller_ref: Mapping[str, Any], *,
                         generate_name: str | None = None) -> Obj:
        """Create a pod from ``template`` owned by ``owner``; returns the pod as stored.

        Its name is ``generate_name`` (default ``<owner name>-``) plus a random suffix.
        """
        ...

    async def delete_pod(self, namespace: str, name: str, owner: Mapping[str, Any], *,
                         uid: str | None = None) -> None:
        """Delete the pod ``namespace/name`` (only if its uid is ``uid``, when given)."""
        ...

    async def patch_pod(self, namespace: str, name: str, patch: Obj) -> Obj:
        """Apply the strategic merge ``patch`` to the pod; returns the pod as stored."""
        ...


def pod_from_template(template: Mapping[str, Any], owner: Mapping[str, Any],
                      controller_ref: Mapping[str, Any] | None, *,
                      generate_name: str | None = None) -> Obj:
    """The pod ``owner`` creates from ``template`` (a mutable copy; no namespace set).

    It is named by ``generate_name``, ``<owner name>-`` unless given.
    """
    tmeta = template.get("metadata") or {}
    owner_name = str((owner.get("metadata") or {}).get("name", ""))
    metadata: Obj = {"generateName": generate_name or f"{owner_name}-"}
    for field in ("labels", "annotations", "finalizers"):
        value = tmeta.get(field)
        if value:
            metadata[field] = thaw(value)
    if controller_ref is not None:
        metadata["ownerReferences"] = [thaw(controller_ref)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": thaw(template.get("spec") or {})}


def adoption_patch(pod_uid: str, controller_ref: Mapping[str, Any]) -> Obj:
    """The strategic merge patch making ``controller_ref`` the controller of the pod ``pod_uid``."""
    return {"metadata": {"ownerReferences": [thaw(controller_ref)], "uid": pod_uid}}


def release_patch(pod_uid: str, owner_uid: str) -> Obj:
    """The strategic merge patch removing the owner ``owner_uid`` from the pod ``pod_uid``."""
    return {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": owner_uid}],
                         "uid": pod_uid}}


def _check_labels(pod: Obj) -> None:
    if not pod["metadata"].get("labels"):
        raise ValueError("unable to create pods, no labels")


class RealPodControl:
    """``PodControl`` over a ``Clientset``, recording events on the owner."""

    def __init__(self, clientset: Clientset, recorder: EventSink) -> None:
        self.clientset = clientset
        self.recorder = recorder

    async def create_pod(self, namespace: str, template: Mapping[str, Any],
                         owner: Mapping[str, Any], controller_ref: Mapping[str, Any], *,
                         generate_name: str | None = None) -> Obj:
        pod = pod_from_template(template, owner, controller_ref, generate_name=generate_name)
        _check_labels(pod)
        pod["metadata"]["namespace"] = namespace
        try:
            created = await self.clientset.resource("pods").create(pod)
        except ApiError as e:
            if not isinstance(e, Forbidden):
                self.recorder.event(owner, "Warning", FAILED_CREATE, f"Error creating: {e}")
            raise
        self.recorder.event(owner, "Normal", SUCCESSFUL_CREATE,
                            f"Created pod: {created['metadata']['name']}")
        return created

    async def delete_pod(self, namespace: str, name: str, owner: Mapping[str, Any], *,
                         uid: str | None = None) -> None:
        try:
            await self.clientset.resource("pods").delete(name, namespace, uid=uid)
        except NotFound:
            raise
        except ApiError as e:
            self.recorder.event(owner, "Warning", FAILED_DELETE, f"Error deleting: {e}")
            raise
        self.recorder.event(owner, "Normal", SUCCESSFUL_DELETE, f"Deleted pod: {name}")

    async def patch_pod(self, namespace: str, name: str, patch: Obj) -> Obj:
        return await self.clientset.resource("pods").patch(name, namespace, patch, "strategic")


class FakePodControl:
    """A ``PodControl`` that writes nothing: it records calls and fails when told to.

    ``create_error`` / ``delete_error`` / ``patch_error``, when set, are raised
    by every such call; once ``create_limit`` pods were created, every further
    create raises ``ApiError``. Created pods are named ``<generateName><n>``
    with a running ``n``.
    """

    def __init__(self, *, create_limit: int | None = None) -> None:
        self.create_limit = create_limit
        self.create_error: Exception | None = None
        self.delete_error: Exception | None = None
        self.patch_error: Exception | None = None
        self.created: list[Obj] = []
        self.create_calls = 0
        self.deleted: list[str] = []
        self.patches: list[tuple[str, Obj]] = []

    async def create_pod(self, namespace: str, template: Mapping[str, Any],
                         owner: Mapping[str, Any], controller_ref: Mapping[str, Any], *,
                         generate_name: str | None = None) -> Obj:
        self.create_calls += 1
        if self.create_error is not None:
            raise self.create_error
        if self.create_limit is not None and len(self.created) >= self.create_limit:
            raise ApiError(f"not creating more than {self.create_limit} pods")
        pod = pod_from_template(template, owner, controller_ref, generate_name=generate_name)
        _check_labels(pod)
        pod["metadata"]["namespace"] = namespace
        pod["metadata"]["name"] = f"{pod['metadata']['generateName']}{len(self.created)}"
        self.created.append(pod)
        return copy.deepcopy(pod)

    async def delete_pod(self, namespace: str, name: str, owner: Mapping[str, Any], *,
                         uid: str | None = None) -> None:
        if self.delete_error is not None:
            raise self.delete_error
        self.deleted.append(f"{namespace}/{name}")

    async def patch_pod(self, namespace: str, name: str, patch: Obj) -> Obj:
        if self.patch_error is not None:
            raise self.patch_error
        self.patches.append((f"{namespace}/{name}", copy.deepcopy(patch)))
        return {"metadata": {"name": name, "namespace": namespace}}
