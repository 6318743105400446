"""The built-in filter plugins, with Kubernetes' names and failure reasons.

In the default order (cheapest and most decisive first):

- ``NodeUnschedulable``: a cordoned node (``spec.unschedulable``) takes only
  pods tolerating ``node.kubernetes.io/unschedulable:NoSchedule``.
- ``NodeName``: a pod naming a node in ``spec.nodeName`` fits only there.
- ``TaintToleration``: every ``NoSchedule`` and ``NoExecute`` taint must be
  tolerated; the first one that is not is named in the reason.
- ``NodeReady``: a node whose ``Ready`` condition is not ``True`` takes only
  pods tolerating the taint the node lifecycle controller would put on it
  (``node.kubernetes.io/not-ready``, or ``unreachable`` when the status is
  ``Unknown``) with effect ``NoSchedule``.
- ``NodeAffinity``: ``nodeSelector`` and required node affinity.
- ``NodePorts``: no requested host port may already be bound on the node.
- ``NodeResourcesFit``: every requested resource must fit in what is left
  of the node's allocatable amounts, and one more pod must fit in ``pods``.
"""

from __future__ import annotations

from controllers.builtin.scheduler.framework import SUCCESS, NodeInfo, PodInfo, Status
from controllers.builtin.scheduler.resources import PODS
from controllers.builtin.scheduler.taints import (
    NO_SCHEDULE,
    TAINT_NODE_NOT_READY,
    TAINT_NODE_UNREACHABLE,
    TAINT_NODE_UNSCHEDULABLE,
    Taint,
    find_untolerated_taint,
    tolerates_any,
)

__all__ = [
    "ERR_NODE_AFFINITY",
    "ERR_NODE_NAME",
    "ERR_NODE_NOT_READY",
    "ERR_NODE_PORTS",
    "ERR_NODE_UNSCHEDULABLE",
    "ERR_TOO_MANY_PODS",
    "NodeAffinityFilter",
    "NodeNameFilter",
    "NodePortsFilter",
    "NodeReadyFilter",
    "NodeResourcesFitFilter",
    "NodeUnschedulableFilter",
    "TaintTolerationFilter",
]

ERR_NODE_UNSCHEDULABLE = "node(s) were unschedulable"
ERR_NODE_NAME = "node(s) didn't match the requested node name"
ERR_NODE_NOT_READY = "node(s) were not ready"
ERR_NODE_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
ERR_NODE_PORTS = "node(s) didn't have free ports for the requested pod ports"
ERR_TOO_MANY_PODS = "Too many pods"

_UNSCHEDULABLE_TAINT = Taint(TAINT_NODE_UNSCHEDULABLE, "", NO_SCHEDULE)
_NOT_READY_TAINT = Taint(TAINT_NODE_NOT_READY, "", NO_SCHEDULE)
_UNREACHABLE_TAINT = Taint(TAINT_NODE_UNREACHABLE, "", NO_SCHEDULE)


class NodeUnschedulableFilter:
    """Cordoned nodes take only pods that tolerate being cordoned."""

    name = "NodeUnschedulable"

    def filter(self, pod: PodInfo, node: NodeInfo) -> Status:
        if node.unschedulable and not tolerates_any(pod.tolerations, _UNSCHEDULABLE_TAINT):
            return Status.unschedulable(ERR_NODE_UNSCHEDULABLE)
        return SUCCESS


class NodeNameFilter:
    """A pod that names its node fits only there."""

    name = "NodeName"

    def skip_filter(self, pod: PodInfo) -> bool:
        """A pod that names no node passes everywhere."""
        return not pod.node_name

    def filter(self, pod: PodInfo, node: NodeInfo) -> Status:
        if pod.node_name and pod.node_name != node.name:
            return Status.unschedulable(ERR_NODE_NAME)
        return SUCCESS


class TaintTolerationFilter:
    """``NoSchedule`` and ``NoExecute`` taints must be tolerated."""

    name = "TaintToleration"

    def filter(self, pod: PodInfo, node: NodeInfo) -> Status:
        if not node.taints:
            return SUCCESS
        taint = find_untolerated_taint(node.taints, pod.tolerations)
        if taint is not None:
            return Status.unschedulable(f"node(s) had untolerated taint {taint.describe()}")
        return SUCCESS


class NodeReadyFilter:
    """Nodes that are not ready take only pods tolerating the matching taint."""

    name = "NodeReady"

    def filter(self, pod: PodInfo, node: NodeInfo) -> Status:
        if node.ready == "True":
            return SUCCESS
        taint = _UNREACHABLE_TAINT if node.ready == "Unknown" else _NOT_READY_TAINT
        if tolerates_any(pod.tolerations, taint):
            return SUCCESS
        return Status.unschedulable(ERR_NODE_NOT_READY)


class NodeAffinityFilter:
    """``nodeSelector`` and required node affinity."""

    name = "NodeAffinity"

    def skip_filter(self, pod: PodInfo) -> bool:
        """A pod with neither a node selector nor required affinity passes everywhere."""
        return not pod.affinity.node_selector and pod.affinity.required is None

    def filter(self, pod: PodInfo, node: NodeInfo) -> Status:
        if pod.affinity.matches(node.labels, node.name):
            return SUCCESS
        return Status.unschedulable(ERR_NODE_AFFINITY)


class NodePortsFilter:
    """Requested host ports must be free on the node."""

    name = "NodePorts"

    def skip_filter(self, pod: PodInfo) -> bool:
        """A pod without host ports passes everywhere."""
        return not pod.host_ports

    def filter(self, pod: PodInfo, node: NodeInfo) -> Status:
        for wanted in pod.host_ports:
            if node.port_conflicts(wanted):
                return Status.unschedulable(ERR_NODE_PORTS)
        return SUCCESS


class NodeResourcesFitFilter:
    """Requests must fit in what is left of the node; so must one more pod."""

    name = "NodeResourcesFit"

    def filter(self, pod: PodInfo, node: NodeInfo) -> Status:
        allocatable, requested = node.allocatable, node.requested
        fits = node.pod_count < allocatable.get(PODS, 0)
        if fits:
            for resource, wanted in pod.fit_requests:
                if wanted > allocatable.get(resource, 0) - requested.get(resource, 0):
                    fits = False
                    break
        if fits:
            return SUCCESS
        reasons: list[str] = []
        if node.pod_count + 1 > allocatable.get(PODS, 0):
            reasons.append(ERR_TOO_MANY_PODS)
        for resource, wanted in pod.fit_requests:
            if wanted > node.free(resource):
                reasons.append(f"Insufficient {resource}")
        return Status.unschedulable(*reasons)
