"""The scheduler's cache: a ``NodeInfo`` per node, fed by the informers and by its own bindings.

- Nodes come from the node informer (``set_node`` / ``remove_node``).
- Assigned pods come from the pod informer (``add_pod`` / ``remove_pod``):
  pods with ``spec.nodeName`` that are not finished (Succeeded or Failed
  pods hold no resources). A pod whose node is not known yet, or was
  removed, is kept on a "ghost" ``NodeInfo`` so its resources count again if
  the node comes back; ghosts are never offered to plugins.
- A pod the scheduler binds is ``assume``d on its node at once, before the
  informer shows the binding, so the next decision already counts it. The
  informer's view of the bound pod later replaces the assumed one
  (``add_pod`` confirms it); ``forget`` drops an assumption whose binding
  failed.

``node_infos()`` lists the real nodes sorted by name (the order the
decision breaks ties in), rebuilt only when a node comes or goes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controllers.builtin.scheduler.framework import NodeInfo, PodInfo

__all__ = ["Cache"]


class Cache:
    """Nodes and the pods on them (see the module docstring)."""

    def __init__(self) -> None:
        self._nodes: dict[str, NodeInfo] = {}
        # Pod key -> the node it is counted on.
        self._pod_node: dict[str, str] = {}
        # Keys of pods assumed by the scheduler and not yet confirmed by the informer.
        self._assumed: dict[str, None] = {}
        self._sorted: list[NodeInfo] | None = None

    # -- nodes -----------------------------------------------------------------------
    def set_node(self, node: Mapping[str, Any]) -> NodeInfo:
        """Add or update a node from its object."""
        meta = node.get("metadata")
        name = str(meta.get("name") or "") if isinstance(meta, Mapping) else ""
        info = self._nodes.get(name)
        if info is None:
            info = self._nodes[name] = NodeInfo(name)
        if info.node is None:
            self._sorted = None
        info.set_node(node)
        return info

    def remove_node(self, name: str) -> None:
        """Forget a node; pods still counted on it stay on a ghost."""
        info = self._nodes.get(name)
        if info is None or info.node is None:
            return
        self._sorted = None
        if info.pods:
            ghost = NodeInfo(name)
            for pod in info.pods.values():
                ghost.add_pod(pod)
            self._nodes[name] = ghost
        else:
            del self._nodes[name]

    def node_infos(self) -> list[NodeInfo]:
        """The known nodes, sorted by name (the caller must not change the list)."""
        if self._sorted is None:
            self._sorted = [self._nodes[n] for n in sorted(self._nodes)
                            if self._nodes[n].node is not None]
        return self._sorted

    def get_node(self, name: str) -> NodeInfo | None:
        """The node ``name`` if it is known (not a ghost)."""
        info = self._nodes.get(name)
        return info if info is not None and info.node is not None else None

    # -- pods ------------------------------------------------------------------------
    def _place(self, pod: PodInfo, node_name: str) -> None:
        current = self._pod_node.get(pod.key)
        if current is not None and current != node_name:
            self._unplace(pod.key)
        info = self._nodes.get(node_name)
        if info is None:
            info = self._nodes[node_name] = NodeInfo(node_name)
        info.add_pod(pod)
        self._pod_node[pod.key] = node_name

    def _unplace(self, key: str) -> None:
        node_name = self._pod_node.pop(key, None)
        if node_name is None:
            return
        info = self._nodes.get(node_name)
        if info is None:
            return
        info.remove_pod(key)
        if info.node is None and not info.pods:
            del self._nodes[node_name]

    def add_pod(self, pod: PodInfo) -> None:
        """Count an assigned pod the informer shows (confirming it if it was assumed)."""
        self._assumed.pop(pod.key, None)
        self._place(pod, pod.node_name)

    def remove_pod(self, key: str) -> None:
        """Stop counting a pod: deleted, finished, or no longer assigned."""
        self._assumed.pop(key, None)
        self._unplace(key)

    def assume(self, pod: PodInfo, node_name: str) -> None:
        """Count ``pod`` on ``node_name`` now, ahead of the informer."""
        self._place(pod, node_name)
        self._assumed[pod.key] = None

    def forget(self, key: str) -> None:
        """Drop an assumption (its binding failed); harmless if the pod is not assumed."""
        if key in self._assumed:
            del self._assumed[key]
            self._unplace(key)

    def is_assumed(self, key: str) -> bool:
        return key in self._assumed

    def node_of(self, key: str) -> str | None:
        """The node a pod is counted on, if any."""
        return self._pod_node.get(key)
