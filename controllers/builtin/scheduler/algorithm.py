"""The scheduling decision: filter every node, score the feasible ones, pick the best.

``schedule(pod, nodes, profile)`` is a pure function of its inputs (and of
``rng`` when ties are broken at random); it touches no store, so a
benchmark or a test can call it on thousands of ``NodeInfo``s. Its cost is
O(nodes x plugins) dictionary lookups: every sum a plugin needs is kept on
the ``NodeInfo``.

- Filter: nodes are tried in the order given; the first filter that fails
  a node ends that node's checks (as in Kubernetes) and its reasons are
  counted.
- Score: skipped when one node is feasible. Otherwise every score plugin
  scores every feasible node, normalizes if it can, and each score times
  the plugin's weight is summed per node.
- Select: the highest total; among equal totals the first node in the
  order given (callers pass nodes sorted by name), or a seeded ``rng``'s
  pick when one is given.

When no node fits, ``ScheduleResult.message`` reads as Kubernetes' FitError:
``0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated
taint {node.kubernetes.io/unreachable: }.`` (one "count reason" per reason,
sorted as strings).
"""

from __future__ import annotations

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
    "PluginScoreError",
    "Profile",
    "ScheduleResult",
    "fit_error_message",
    "schedule",
]

ERR_NO_NODES = "no nodes available to schedule pods"


class PluginScoreError(ValueError):
    """A score plugin returned a score outside 0..100 (or the wrong number of scores)."""


@dataclass(frozen=True, slots=True)
class Profile:
    """The enabled filters, in order, and the enabled score plugins with their weights."""

    filters: tuple[FilterPlugin, ...] = ()
    scores: tuple[tuple[ScorePlugin, int], ...] = ()


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


def _filter(pod: PodInfo, nodes: Sequence[NodeInfo], filters: Sequence[FilterPlugin],
            reasons: dict[str, int]) -> list[NodeInfo]:
    feasible: list[NodeInfo] = []
    for node in nodes:
        for plugin in filters:
            status = plugin.filter(pod, node)
            if status.code is not Code.SUCCESS:
                for reason in status.reasons or (f"node(s) were rejected by {plugin.name}",):
                    reasons[reason] = reasons.get(reason, 0) + 1
                break
        else:
            feasible.append(node)
    return feasible


def _score(pod: PodInfo, nodes: Sequence[NodeInfo], profile: Profile) -> list[int]:
    totals = [0] * len(nodes)
    for plugin, weight in profile.scores:
        if weight == 0:
            continue
        scores = [plugin.score(pod, node) for node in nodes]
        if isinstance(plugin, ScoreNormalizer):
            scores = plugin.normalize_scores(pod, nodes, scores)
        if len(scores) != len(nodes):
            raise PluginScoreError(f"score plugin {plugin.name} returned {len(scores)} scores "
                                   f"for {len(nodes)} nodes")
        for i, s in enumerate(scores):
            if not 0 <= s <= MAX_NODE_SCORE:
                raise PluginScoreError(f"score plugin {plugin.name} gave node {nodes[i].name} "
                                       f"{s}, outside 0..{MAX_NODE_SCORE}")
            totals[i] += s * weight
    return totals


def schedule(pod: PodInfo, nodes: Sequence[NodeInfo], profile: Profile,
             rng: random.Random | None = None) -> ScheduleResult:
    """Pick a node for ``pod`` among ``nodes`` (see the module docstring).

    Raises:
        PluginScoreError: a score plugin broke its contract.
        Exception: whatever a plugin raised.
    """
    reasons: dict[str, int] = {}
    feasible = _filter(pod, nodes, profile.filters, reasons)
    if not feasible:
        return ScheduleResult(None, len(nodes), 0, reasons)
    if len(feasible) == 1:
        return ScheduleResult(feasible[0].name, len(nodes), 1, reasons)
    totals = _score(pod, feasible, profile)
    best = max(totals)
    winners = [node for node, total in zip(feasible, totals) if total == best]
    chosen = winners[0] if rng is None or len(winners) == 1 else rng.choice(winners)
    return ScheduleResult(chosen.name, len(nodes), len(feasible), reasons,
                          {node.name: total for node, total in zip(feasible, totals)})
