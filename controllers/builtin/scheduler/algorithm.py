"""The scheduling decision: filter nodes, score the feasible ones, pick the best.

``schedule(pod, nodes, profile)`` is a pure function of its inputs (and of
``rng`` when ties are broken at random); it touches no store, so a
benchmark or a test can call it on thousands of ``NodeInfo``s. Its cost is
O(nodes x plugins) dictionary lookups: every sum a plugin needs is kept on
the ``NodeInfo``.

- Filter: nodes are tried in the order given, starting at index ``start``
  and wrapping around; the first filter that fails a node ends that node's
  checks (as in Kubernetes) and its reasons are counted. A filter plugin
  that has ``skip_filter(pod)`` returning True is left out for that pod (as
  a Kubernetes PreFilter returning Skip). Filtering stops once
  ``num_feasible_nodes_to_find`` nodes are feasible (Kubernetes'
  ``percentageOfNodesToScore``: all nodes below 100; else the profile's
  percentage, or when it is 0 an adaptive ``50 - nodes/125`` percent, at
  least 5%, and never fewer than 100 nodes). ``ScheduleResult.next_start``
  is where the next pod should start, so successive pods look at every
  node in turn.
- Score: skipped when one node is feasible. Otherwise every score plugin
  (except those whose ``skip_score(pod)`` is True) scores every feasible
  node (in one ``score_nodes(pod, nodes)`` call when the plugin has it,
  else ``score`` per node), normalizes if it can, and each score times the
  plugin's weight is summed per node.
- Select: the highest total; among equal totals the node that comes first
  in the order given (callers pass nodes sorted by name), or a seeded
  ``rng``'s pick among them when one is given.

When no node fits, ``ScheduleResult.message`` reads as Kubernetes' FitError:
``0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated
taint {node.kubernetes.io/unreachable: }.`` (one "count reason" per reason,
sorted as strings).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from controllers.builtin.scheduler.framework import (
    MAX_NODE_SCORE,
    Code,
    FilterPlugin,
    NodeInfo,
    PodInfo,
    ScoreNormalizer,
    ScorePlugin,
)

__all__ = [
    "ERR_NO_NODES",
    "MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND",
    "MIN_FEASIBLE_NODES_TO_FIND",
    "PluginScoreError",
    "Profile",
    "ScheduleResult",
    "fit_error_message",
    "num_feasible_nodes_to_find",
    "schedule",
]

ERR_NO_NODES = "no nodes available to schedule pods"

MIN_FEASIBLE_NODES_TO_FIND = 100
"""Below this many nodes every node is filtered; above it, at least this many are found."""

MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5
"""The adaptive percentage of nodes to find never drops below this."""


class PluginScoreError(ValueError):
    """A score plugin returned a score outside 0..100 (or the wrong number of scores)."""


@dataclass(frozen=True, slots=True)
class Profile:
    """The enabled filters, in order, and the enabled score plugins with their weights."""

    filters: tuple[FilterPlugin, ...] = ()
    scores: tuple[tuple[ScorePlugin, int], ...] = ()
    # Kubernetes' percentageOfNodesToScore: 1..100, or 0 for the adaptive default.
    percentage_of_nodes_to_score: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.percentage_of_nodes_to_score <= 100:
            raise ValueError(f"percentage_of_nodes_to_score must be in 0..100, "
                             f"not {self.percentage_of_nodes_to_score}")


@dataclass(frozen=True, slots=True)
class ScheduleResult:
    """Where the pod goes (``node`` None: nowhere), and why not elsewhere."""

    node: str | None
    evaluated: int
    feasible: int
    # Reason -> how many nodes failed a filter for it.
    reasons: Mapping[str, int] = field(default_factory=dict)
    # Node name -> total weighted score, for the feasible nodes that were scored.
    totals: Mapping[str, int] = field(default_factory=dict)
    # Where the next pod's filtering should start (an index into the nodes given).
    next_start: int = 0

    @property
    def message(self) -> str:
        """Kubernetes' FitError text when no node fits, else ``""``."""
        if self.node is not None:
            return ""
        return fit_error_message(self.evaluated, self.reasons)


def fit_error_message(nodes: int, reasons: Mapping[str, int]) -> str:
    """``0/<nodes> nodes are available: <count> <reason>, ....``"""
    if nodes == 0:
        return ERR_NO_NODES
    parts = sorted(f"{count} {reason}" for reason, count in reasons.items())
    if not parts:
        return f"0/{nodes} nodes are available."
    return f"0/{nodes} nodes are available: {', '.join(parts)}."


def num_feasible_nodes_to_find(all_nodes: int, percentage: int = 0) -> int:
    """How many feasible nodes are enough (see the module docstring); 0 is adaptive."""
    if all_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return all_nodes
    if percentage <= 0:
        percentage = max(50 - all_nodes // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    return max(all_nodes * min(percentage, 100) // 100, MIN_FEASIBLE_NODES_TO_FIND)


def _filter(pod: PodInfo, nodes: Sequence[NodeInfo], filters: Sequence[FilterPlugin],
            reasons: dict[str, int], start: int, wanted: int) -> tuple[list[int], int]:
    """The indices of feasible nodes (at most ``wanted``) and how many nodes were tried."""
    active = [p for p in filters if not _skips(p, "skip_filter", pod)]
    checks = [p.filter for p in active]
    success = Code.SUCCESS
    feasible: list[int] = []
    tried = 0
    for i in itertools.chain(range(start, len(nodes)), range(start)):
        tried += 1
        node = nodes[i]
        for n, check in enumerate(checks):
            status = check(pod, node)
            if status.code is not success:
                for reason in status.reasons or (
                        f"node(s) were rejected by {active[n].name}",):
                    reasons[reason] = reasons.get(reason, 0) + 1
                break
        else:
            feasible.append(i)
            if len(feasible) >= wanted:
                break
    return feasible, tried


def _skips(plugin: object, hook: str, pod: PodInfo) -> bool:
    skip = getattr(plugin, hook, None)
    return callable(skip) and skip(pod) is True


def _score(pod: PodInfo, nodes: Sequence[NodeInfo], profile: Profile) -> list[int]:
    totals = [0] * len(nodes)
    for plugin, weight in profile.scores:
        if weight == 0 or _skips(plugin, "skip_score", pod):
            continue
        many = getattr(plugin, "score_nodes", None)
        scores = many(pod, nodes) if callable(many) else [plugin.score(pod, node)
                                                          for node in nodes]
        if isinstance(plugin, ScoreNormalizer):
            scores = plugin.normalize_scores(pod, nodes, scores)
        if len(scores) != len(nodes):
            raise PluginScoreError(f"score plugin {plugin.name} returned {len(scores)} scores "
                                   f"for {len(nodes)} nodes")
        if min(scores) < 0 or max(scores) > MAX_NODE_SCORE:
            i, s = next((i, s) for i, s in enumerate(scores) if not 0 <= s <= MAX_NODE_SCORE)
            raise PluginScoreError(f"score plugin {plugin.name} gave node {nodes[i].name} "
                                   f"{s}, outside 0..{MAX_NODE_SCORE}")
        totals = [t + s * weight for t, s in zip(totals, scores)]
    return totals


def schedule(pod: PodInfo, nodes: Sequence[NodeInfo], profile: Profile,
             rng: random.Random | None = None, *, start: int = 0) -> ScheduleResult:
    """Pick a node for ``pod`` among ``nodes``, filtering from index ``start`` on.

    See the module docstring.

    Raises:
        PluginScoreError: a score plugin broke its contract.
        Exception: whatever a plugin raised.
    """
    reasons: dict[str, int] = {}
    count = len(nodes)
    if count == 0:
        return ScheduleResult(None, 0, 0, reasons)
    start %= count
    wanted = num_feasible_nodes_to_find(count, profile.percentage_of_nodes_to_score)
    indices, tried = _filter(pod, nodes, profile.filters, reasons, start, wanted)
    next_start = (start + tried) % count
    if not indices:
        return ScheduleResult(None, tried, 0, reasons, next_start=next_start)
    if len(indices) == 1:
        return ScheduleResult(nodes[indices[0]].name, tried, 1, reasons, next_start=next_start)
    feasible = [nodes[i] for i in indices]
    totals = _score(pod, feasible, profile)
    best = max(totals)
    winners = sorted(i for i, total in zip(indices, totals) if total == best)
    chosen = winners[0] if rng is None or len(winners) == 1 else rng.choice(winners)
    return ScheduleResult(nodes[chosen].name, tried, len(indices), reasons,
                          {node.name: total for node, total in zip(feasible, totals)},
                          next_start)
