"""The built-in score plugins, computed as Kubernetes computes them (integer 0..100).

CPU and memory requests count with the non-zero defaults (100m, 200Mi per
container that asks for none), for the node's pods and for the pod placed.

- ``NodeResourcesLeastAllocated``: per resource ``(allocatable - requested)
  * 100 // allocatable`` (0 when nothing is allocatable or it is
  overcommitted), averaged over CPU and memory. Emptier nodes win.
- ``NodeResourcesBalancedAllocation``: ``(1 - std) * 100`` where ``std`` is
  the standard deviation of the CPU and memory fractions requested (each
  capped at 1). Nodes whose CPU and memory fill evenly win.
- ``SelectorSpread``: pods controlled by the same owner (controller
  reference uid) already on the node, not being deleted. Normalized so the
  node with the most such pods scores 0 and a node with none 100; when nodes
  carry ``topology.kubernetes.io/zone`` labels, two thirds of the score come
  from the same count per zone.
- ``TaintToleration``: ``PreferNoSchedule`` taints the pod does not
  tolerate, normalized in reverse: the node with the most scores 0, one
  with none 100.
- ``NodeAffinity``: the sum of the weights of the preferred node affinity
  terms the node matches, normalized so the best node scores 100.

The plugins scored on every feasible node also have ``score_nodes(pod,
nodes)``, the same scores for many nodes in one call (``score`` is its
one-node case).
"""

from __future__ import annotations

from collections.abc import Sequence

from controllers.builtin.scheduler.framework import MAX_NODE_SCORE, NodeInfo, PodInfo
from controllers.builtin.scheduler.resources import CPU, MEMORY
from controllers.builtin.scheduler.taints import PREFER_NO_SCHEDULE, tolerates_any

__all__ = [
    "LABEL_REGION",
    "LABEL_ZONE",
    "ZONE_WEIGHTING",
    "BalancedAllocationScore",
    "LeastAllocatedScore",
    "NodeAffinityScore",
    "SelectorSpreadScore",
    "TaintTolerationScore",
    "default_normalize",
]

LABEL_ZONE = "topology.kubernetes.io/zone"
LABEL_REGION = "topology.kubernetes.io/region"
ZONE_WEIGHTING = 2.0 / 3.0
"""The share of ``SelectorSpread``'s score that comes from spreading over zones."""

_RESOURCES = (CPU, MEMORY)


def default_normalize(scores: list[int], *, reverse: bool = False) -> list[int]:
    """Scale ``scores`` so the largest becomes 100 (or, reversed, 0 with the others above)."""
    top = max(scores, default=0)
    if top == 0:
        return [MAX_NODE_SCORE if reverse else 0 for _ in scores]
    scaled = [MAX_NODE_SCORE * s // top for s in scores]
    return [MAX_NODE_SCORE - s for s in scaled] if reverse else scaled


class LeastAllocatedScore:
    """Prefers nodes with more of their CPU and memory left."""

    name = "NodeResourcesLeastAllocated"

    def score(self, pod: PodInfo, node: NodeInfo) -> int:
        return self.score_nodes(pod, (node,))[0]

    def score_nodes(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        wanted_cpu = pod.non_zero_requests.get(CPU, 0)
        wanted_memory = pod.non_zero_requests.get(MEMORY, 0)
        scores: list[int] = []
        for node in nodes:
            allocatable, used = node.allocatable, node.non_zero_requested
            total = 0
            capacity = allocatable.get(CPU, 0)
            requested = used.get(CPU, 0) + wanted_cpu
            if 0 < capacity and requested <= capacity:
                total += (capacity - requested) * MAX_NODE_SCORE // capacity
            capacity = allocatable.get(MEMORY, 0)
            requested = used.get(MEMORY, 0) + wanted_memory
            if 0 < capacity and requested <= capacity:
                total += (capacity - requested) * MAX_NODE_SCORE // capacity
            scores.append(total // len(_RESOURCES))
        return scores


class BalancedAllocationScore:
    """Prefers nodes whose CPU and memory would be used in the same proportion."""

    name = "NodeResourcesBalancedAllocation"

    def score(self, pod: PodInfo, node: NodeInfo) -> int:
        return self.score_nodes(pod, (node,))[0]

    def score_nodes(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        wanted_cpu = pod.non_zero_requests.get(CPU, 0)
        wanted_memory = pod.non_zero_requests.get(MEMORY, 0)
        scores: list[int] = []
        for node in nodes:
            allocatable, used = node.allocatable, node.non_zero_requested
            cpu, memory = allocatable.get(CPU, 0), allocatable.get(MEMORY, 0)
            if cpu <= 0 or memory <= 0:
                # Fewer than two fractions: nothing to balance.
                scores.append(MAX_NODE_SCORE)
                continue
            cpu_fraction = (used.get(CPU, 0) + wanted_cpu) / cpu
            memory_fraction = (used.get(MEMORY, 0) + wanted_memory) / memory
            # Each fraction is capped at 1.
            cpu_fraction = min(1.0, cpu_fraction)
            memory_fraction = min(1.0, memory_fraction)
            # The standard deviation of two values is half their distance.
            scores.append(int((1.0 - abs(cpu_fraction - memory_fraction) / 2) * MAX_NODE_SCORE))
        return scores


def _zone(node: NodeInfo) -> str:
    zone = node.labels.get(LABEL_ZONE, "")
    if not zone:
        return ""
    return f"{node.labels.get(LABEL_REGION, '')}:{zone}"


class SelectorSpreadScore:
    """Spreads the pods of one owner over nodes (and zones)."""

    name = "SelectorSpread"

    def skip_score(self, pod: PodInfo) -> bool:
        """A pod without a controller is not spread: every node would score 0."""
        return not pod.owner_uid

    def score(self, pod: PodInfo, node: NodeInfo) -> int:
        return self.score_nodes(pod, (node,))[0]

    def score_nodes(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        uid = pod.owner_uid
        if not uid:
            return [0] * len(nodes)
        return [node.owner_counts.get(uid, 0) for node in nodes]

    def normalize_scores(self, pod: PodInfo, nodes: Sequence[NodeInfo],
                         scores: list[int]) -> list[int]:
        if not pod.owner_uid:
            return [0 for _ in scores]
        by_zone: dict[str, int] = {}
        zones = [_zone(n) if LABEL_ZONE in n.labels else "" for n in nodes]
        for zone, count in zip(zones, scores):
            if zone:
                by_zone[zone] = by_zone.get(zone, 0) + count
        top_node = max(scores, default=0)
        top_zone = max(by_zone.values(), default=0)
        result: list[int] = []
        for zone, count in zip(zones, scores):
            value = float(MAX_NODE_SCORE)
            if top_node > 0:
                value = MAX_NODE_SCORE * (top_node - count) / top_node
            if by_zone and zone:
                zone_value = float(MAX_NODE_SCORE)
                if top_zone > 0:
                    zone_value = MAX_NODE_SCORE * (top_zone - by_zone[zone]) / top_zone
                value = value * (1.0 - ZONE_WEIGHTING) + ZONE_WEIGHTING * zone_value
            result.append(int(value))
        return result


class TaintTolerationScore:
    """Prefers nodes with fewer ``PreferNoSchedule`` taints the pod does not tolerate."""

    name = "TaintToleration"

    def score_nodes(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        return [self.score(pod, node) if node.taints else 0 for node in nodes]

    def score(self, pod: PodInfo, node: NodeInfo) -> int:
        if not node.taints:
            return 0
        tolerations = [t for t in pod.tolerations if t.effect in ("", PREFER_NO_SCHEDULE)]
        return sum(1 for taint in node.taints
                   if taint.effect == PREFER_NO_SCHEDULE and not tolerates_any(tolerations, taint))

    def normalize_scores(self, pod: PodInfo, nodes: Sequence[NodeInfo],
                         scores: list[int]) -> list[int]:
        return default_normalize(scores, reverse=True)


class NodeAffinityScore:
    """Prefers nodes matching more (and heavier) preferred node affinity terms."""

    name = "NodeAffinity"

    def skip_score(self, pod: PodInfo) -> bool:
        """A pod without preferred terms: every node would score 0."""
        return not pod.affinity.preferred

    def score(self, pod: PodInfo, node: NodeInfo) -> int:
        if not pod.affinity.preferred:
            return 0
        return pod.affinity.preferred_score(node.labels, node.name)

    def normalize_scores(self, pod: PodInfo, nodes: Sequence[NodeInfo],
                         scores: list[int]) -> list[int]:
        return default_normalize(scores)
