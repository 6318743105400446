"""``SharedPodSource``: one pod informer feeding many kubelets of one process.

Each kubelet normally watches the pods of its own node, and every watch
decodes every pod change of the whole cluster to apply its field selector:
with hundreds of simulated kubelets in one process that work is repeated
hundreds of times per change. A ``SharedPodSource`` watches all pods once
and hands each change to the kubelet of the pod's ``spec.nodeName`` only, a
dictionary lookup per change. It is shared only by the kubelets it is given
to (``Kubelet(..., pod_source=source)``); nothing is global.

Contract, as a ``SharedInformer`` handler's: each subscriber sees the pods
of its node in order, ``on_add(pod, is_in_initial_list)``, ``on_update(old,
new)``, ``on_delete(pod)`` (maybe a ``DeletedFinalStateUnknown``). A node
subscribed late first gets ``on_add(pod, True)`` for each cached pod of its
node; it may then see a few of those pods once more, so handlers must be
idempotent (the kubelet's are). Handlers are called from the informer's
handler task and must not block. ``start()`` is idempotent; the owner
calls ``stop()``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from typing import Any

from controllers.api.clientset import Clientset
from controllers.clock import Clock
from controllers.informers.fifo import DeletedFinalStateUnknown
from controllers.informers.reflector import ListWatch
from controllers.informers.shared_informer import (
    ResourceEventHandler,
    ResourceEventHandlerFuncs,
    SharedInformer,
)

__all__ = ["NODE_NAME_INDEX", "SharedPodSource"]

NODE_NAME_INDEX = "spec.nodeName"


def _node_of(obj: Any) -> str:
    if isinstance(obj, DeletedFinalStateUnknown):
        obj = obj.obj
    spec = obj.get("spec") if isinstance(obj, Mapping) else None
    node = spec.get("nodeName") if isinstance(spec, Mapping) else None
    return node if isinstance(node, str) else ""


def _node_index(obj: Mapping[str, Any]) -> list[str]:
    node = _node_of(obj)
    return [node] if node else []


class SharedPodSource:
    """All pods, watched once, dispatched by node (see the module docstring)."""

    def __init__(self, clientset: Clientset, *, clock: Clock,
                 rng: random.Random | None = None) -> None:
        self.informer = SharedInformer(
            ListWatch(clientset.resource("pods"), None), clock=clock,
            rng=rng if rng is not None else random.Random(0), resource="pods",
            indexers={NODE_NAME_INDEX: _node_index})
        self._subscribers: dict[str, ResourceEventHandler] = {}
        self.informer.add_event_handler(ResourceEventHandlerFuncs(
            add=self._on_add, update=self._on_update, delete=self._on_delete))
        self._task: asyncio.Task[None] | None = None

    def subscribe(self, node_name: str, handler: ResourceEventHandler) -> None:
        """Send the pods of ``node_name`` to ``handler`` (replacing any earlier one)."""
        self._subscribers[node_name] = handler
        if self.informer.is_started():
            for pod in self.informer.indexer.by_index(NODE_NAME_INDEX, node_name):
                handler.on_add(pod, True)

    def unsubscribe(self, node_name: str, handler: ResourceEventHandler | None = None) -> None:
        if handler is None or self._subscribers.get(node_name) is handler:
            self._subscribers.pop(node_name, None)

    def start(self) -> None:
        """Start watching (idempotent)."""
        if self._task is None:
            self._task = self.informer.start()

    async def stop(self) -> None:
        await self.informer.stop()

    async def wait_for_cache_sync(self) -> None:
        await self.informer.wait_for_cache_sync()

    def _on_add(self, obj: Any, is_in_initial_list: bool) -> None:
        handler = self._subscribers.get(_node_of(obj))
        if handler is not None:
            handler.on_add(obj, is_in_initial_list)

    def _on_update(self, old: Any, new: Any) -> None:
        handler = self._subscribers.get(_node_of(new))
        if handler is not None:
            handler.on_update(old, new)

    def _on_delete(self, obj: Any) -> None:
        handler = self._subscribers.get(_node_of(obj))
        if handler is not None:
            handler.on_delete(obj)
