"""A controller that keeps one ConfigMap in every Namespace, in sync with it.

For each Namespace that is not terminating, the ConfigMap ``namespace-info``
in that namespace holds ``namespace`` (its name), ``uid`` and one
``label.<key>`` entry per label of the Namespace. Label changes are copied
over; a ConfigMap deleted or edited by someone else is put back. The
ConfigMap's ``steersman.io/written-by`` annotation names the manager that
last wrote it, which shows which manager is active.

It is the shape of most controllers: two informers, handlers that map
events to keys (a namespace name), and a ``reconcile`` that compares the
cache with what is wanted and writes the difference. After its own write it
waits for the informer to reach that write's resourceVersion, so the next
reconcile of the key never acts on a cache older than its own write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from controllers.api.errors import AlreadyExists, Conflict, NotFound
from controllers.api.objects import Obj
from controllers.controller import DONE, REQUEUE, ControllerContext, Result
from controllers.events import EventRecorder
from controllers.informers.fifo import DeletedFinalStateUnknown
from controllers.informers.shared_informer import ResourceEventHandlerFuncs, SharedInformer

__all__ = ["CONFIGMAP_NAME", "WRITTEN_BY", "NamespaceConfigMapController", "desired_data"]

_log = logging.getLogger(__name__)

CONFIGMAP_NAME = "namespace-info"
WRITTEN_BY = "steersman.io/written-by"


def desired_data(namespace: Obj) -> dict[str, str]:
    """What the ConfigMap of ``namespace`` should hold."""
    meta = namespace.get("metadata") or {}
    data = {"namespace": str(meta.get("name", "")), "uid": str(meta.get("uid", ""))}
    for key, value in sorted((meta.get("labels") or {}).items()):
        data[f"label.{key}"] = str(value)
    return data


class NamespaceConfigMapController:
    """Keeps ``namespace-info`` in every namespace (see the module docstring)."""

    name = "namespace-configmap"
    informers: Sequence[str] = ("namespaces", "configmaps")

    def __init__(self, identity: str = "", *, cache_wait: float = 5.0) -> None:
        self.identity = identity
        self.cache_wait = cache_wait
        self._namespaces: SharedInformer | None = None
        self._configmaps: SharedInformer | None = None
        self._context: ControllerContext | None = None

    def setup(self, context: ControllerContext) -> None:
        self._context = context
        self._namespaces = context.informer("namespaces")
        self._configmaps = context.informer("configmaps")

        def namespace_key(obj: Any, *_: Any) -> None:
            obj = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
            context.enqueue(obj["metadata"]["name"])

        def configmap_key(obj: Any, *_: Any) -> None:
            obj = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
            if obj["metadata"]["name"] == CONFIGMAP_NAME:
                context.enqueue(obj["metadata"]["namespace"])

        self._namespaces.add_event_handler(ResourceEventHandlerFuncs(
            add=namespace_key, update=lambda old, new: namespace_key(new), delete=namespace_key))
        self._configmaps.add_event_handler(ResourceEventHandlerFuncs(
            add=configmap_key, update=lambda old, new: configmap_key(new),
            delete=configmap_key))

    async def reconcile(self, key: str) -> Result | None:
        context, namespaces, configmaps = self._context, self._namespaces, self._configmaps
        if context is None or namespaces is None or configmaps is None:
            raise RuntimeError("reconcile before setup")
        try:
            namespace = namespaces.lister().get("", key)
        except NotFound:
            return DONE  # gone: its objects go with it
        if namespace.get("metadata", {}).get("deletionTimestamp") or \
                namespace.get("status", {}).get("phase") == "Terminating":
            return DONE
        want = desired_data(namespace)
        client = context.clientset.resource("configmaps")
        try:
            current = configmaps.lister().get(key, CONFIGMAP_NAME)
        except NotFound:
            body = {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": CONFIGMAP_NAME, "namespace": key,
                                 "annotations": {WRITTEN_BY: self.identity}},
                    "data": want}
            try:
                written = await client.create(body)
            except AlreadyExists:
                return REQUEUE  # the cache is behind; look again once it has caught up
            _record(context.recorder, namespace, "Created", key)
            await self._wait_for_cache(configmaps, written)
            return DONE
        if current.get("data") == want:
            return DONE
        new = {**current, "data": want,
               "metadata": {**current["metadata"],
                            "annotations": {**(current["metadata"].get("annotations") or {}),
                                            WRITTEN_BY: self.identity}}}
        try:
            written = await client.update(new)
        except (Conflict, NotFound):
            return REQUEUE
        _record(context.recorder, namespace, "Updated", key)
        await self._wait_for_cache(configmaps, written)
        return DONE

    async def _wait_for_cache(self, informer: SharedInformer, written: Obj) -> None:
        try:
            async with asyncio.timeout(self.cache_wait):
                await informer.wait_for_resource_version(written["metadata"]["resourceVersion"])
        except TimeoutError:
            _log.info("%s: the cache has not caught up with our write yet", self.name)


def _record(recorder: EventRecorder, namespace: Obj, verb: str, key: str) -> None:
    recorder.event(namespace, "Normal", f"ConfigMap{verb}",
                   f"{verb.lower()} configmap {key}/{CONFIGMAP_NAME}")
