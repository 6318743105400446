"""The default plugin set: built-ins registered by name, their order and weights, and profiles.

Names follow Kubernetes. ``TaintToleration`` and ``NodeAffinity`` are one
plugin each that both filters and scores, as there. Default weights are
Kubernetes': ``TaintToleration`` 3, ``NodeAffinity`` and ``SelectorSpread``
2 (the weight of its successor, PodTopologySpread), the resource scores 1.

``make_profile`` turns names into a ``Profile``: ``filters=None`` enables
every registered filter and ``scores=None`` every registered score plugin
(built-ins first, in the default order, then plugins found through the
``steersman.scheduler_plugins`` entry points, by name). A third-party score
plugin's weight is ``weights[name]``, else its ``weight`` attribute, else 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from controllers.builtin.scheduler.algorithm import Profile
from controllers.builtin.scheduler.filters import (
    NodeAffinityFilter,
    NodeNameFilter,
    NodePortsFilter,
    NodeReadyFilter,
    NodeResourcesFitFilter,
    NodeUnschedulableFilter,
    TaintTolerationFilter,
)
from controllers.builtin.scheduler.framework import (
    FilterPlugin,
    PluginFactory,
    PluginRegistry,
    ScorePlugin,
)
from controllers.builtin.scheduler.scores import (
    BalancedAllocationScore,
    LeastAllocatedScore,
    NodeAffinityScore,
    SelectorSpreadScore,
    TaintTolerationScore,
)

__all__ = [
    "DEFAULT_FILTERS",
    "DEFAULT_SCORES",
    "DEFAULT_WEIGHTS",
    "REGISTRY",
    "NodeAffinity",
    "TaintToleration",
    "builtin_registry",
    "make_profile",
    "register_plugin",
]


class TaintToleration(TaintTolerationFilter, TaintTolerationScore):
    """Filters on ``NoSchedule``/``NoExecute`` taints; scores on ``PreferNoSchedule`` ones."""

    name = "TaintToleration"


class NodeAffinity(NodeAffinityFilter, NodeAffinityScore):
    """Filters on the node selector and required affinity; scores on preferred affinity."""

    name = "NodeAffinity"


DEFAULT_FILTERS = ("NodeUnschedulable", "NodeName", "TaintToleration", "NodeReady",
                   "NodeAffinity", "NodePorts", "NodeResourcesFit")
DEFAULT_SCORES = ("NodeResourcesLeastAllocated", "NodeResourcesBalancedAllocation",
                  "SelectorSpread", "TaintToleration", "NodeAffinity")
DEFAULT_WEIGHTS: Mapping[str, int] = {
    "NodeResourcesLeastAllocated": 1,
    "NodeResourcesBalancedAllocation": 1,
    "SelectorSpread": 2,
    "TaintToleration": 3,
    "NodeAffinity": 2,
}

_BUILTINS: tuple[tuple[str, PluginFactory], ...] = (
    ("NodeUnschedulable", NodeUnschedulableFilter),
    ("NodeName", NodeNameFilter),
    ("TaintToleration", TaintToleration),
    ("NodeReady", NodeReadyFilter),
    ("NodeAffinity", NodeAffinity),
    ("NodePorts", NodePortsFilter),
    ("NodeResourcesFit", NodeResourcesFitFilter),
    ("NodeResourcesLeastAllocated", LeastAllocatedScore),
    ("NodeResourcesBalancedAllocation", BalancedAllocationScore),
    ("SelectorSpread", SelectorSpreadScore),
)


def builtin_registry() -> PluginRegistry:
    """A new registry holding the built-in plugins only."""
    registry = PluginRegistry()
    for name, factory in _BUILTINS:
        registry.register(name, factory)
    return registry


REGISTRY = builtin_registry()
"""The registry ``Scheduler`` uses by default."""


def register_plugin(name: str, registry: PluginRegistry | None = None
                    ) -> Callable[[PluginFactory], PluginFactory]:
    """A decorator registering a plugin class (or factory) under ``name``."""

    def decorate(factory: PluginFactory) -> PluginFactory:
        (registry if registry is not None else REGISTRY).register(name, factory)
        return factory

    return decorate


def _weight(name: str, plugin: Any, weights: Mapping[str, int]) -> int:
    if name in weights:
        weight: Any = weights[name]
    elif name in DEFAULT_WEIGHTS:
        weight = DEFAULT_WEIGHTS[name]
    else:
        weight = getattr(plugin, "weight", 1)
    if not isinstance(weight, int) or isinstance(weight, bool) or weight < 0:
        raise ValueError(f"the weight of score plugin {name!r} must be a non-negative int, "
                         f"not {weight!r}")
    return weight


def _in_default_order(names: list[str], defaults: Sequence[str]) -> list[str]:
    return [n for n in defaults if n in names] + [n for n in names if n not in defaults]


def make_profile(filters: Sequence[str] | None = None, scores: Sequence[str] | None = None,
                 weights: Mapping[str, int] | None = None,
                 registry: PluginRegistry | None = None) -> Profile:
    """The plugins named (see the module docstring), one instance per name.

    Raises:
        KeyError: a name is not registered.
        TypeError: a name in ``filters`` does not filter, or one in ``scores`` does not score.
        ValueError: a weight is negative or not an int; a name is listed twice.
    """
    source = registry if registry is not None else REGISTRY
    source.discover()
    filter_names = (_in_default_order(source.filter_names(), DEFAULT_FILTERS)
                    if filters is None else list(filters))
    score_names = (_in_default_order(source.score_names(), DEFAULT_SCORES)
                   if scores is None else list(scores))
    for names in (filter_names, score_names):
        if len(set(names)) != len(names):
            raise ValueError(f"a scheduler plugin is listed twice: {names}")
    made: dict[str, Any] = {}
    for name in [*filter_names, *score_names]:
        if name not in made:
            made[name] = source.create(name)
    for name in filter_names:
        if not isinstance(made[name], FilterPlugin):
            raise TypeError(f"scheduler plugin {name!r} is not a filter plugin")
    for name in score_names:
        if not isinstance(made[name], ScorePlugin):
            raise TypeError(f"scheduler plugin {name!r} is not a score plugin")
    given = weights or {}
    unknown = sorted(set(given) - set(score_names))
    if unknown:
        raise ValueError(f"weights given for score plugins that are not enabled: {unknown}")
    return Profile(
        filters=tuple(made[n] for n in filter_names),
        scores=tuple((made[n], _weight(n, made[n], given)) for n in score_names))
