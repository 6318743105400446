"""The scheduler: binds pending pods to nodes through filter and score plugins.

General layout (imports point down only):

- ``controller``: ``Scheduler``, the controller plugin (informers, the
  attempt, binding, conditions and events).
- ``queue``: ``SchedulingQueue``, pending pods by priority with back-off.
- ``cache``: ``Cache``, a ``NodeInfo`` per node, with assumed pods.
- ``plugins``: the built-in plugins by name, default order and weights,
  ``make_profile``, ``register_plugin``.
- ``algorithm``: ``schedule``, the store-free decision (filter, score, select).
- ``filters``, ``scores``: the built-in plugins.
- ``framework``: the plugin protocols, ``Status``, ``PodInfo``, ``NodeInfo``,
  ``PluginRegistry`` and the ``steersman.scheduler_plugins`` entry points.
- ``taints``, ``nodeaffinity``, ``resources``, ``quantity``: Kubernetes'
  matching rules and resource arithmetic, as pure functions.

A third-party plugin is a class (or a no-argument factory) with a ``name``
and ``filter(pod, node) -> Status`` and/or ``score(pod, node) -> int``
(optionally ``normalize_scores``, and the shortcuts ``skip_filter``,
``skip_score`` and ``score_nodes``: see ``framework``), registered with
``register_plugin`` or declared under the ``steersman.scheduler_plugins``
entry point group.
"""

from __future__ import annotations

from controllers.builtin.scheduler.algorithm import (
    Profile,
    ScheduleResult,
    fit_error_message,
    schedule,
)
from controllers.builtin.scheduler.cache import Cache
from controllers.builtin.scheduler.controller import DEFAULT_SCHEDULER_NAME, Scheduler
from controllers.builtin.scheduler.framework import (
    ENTRY_POINT_GROUP,
    MAX_NODE_SCORE,
    Code,
    FilterPlugin,
    HostPort,
    NodeInfo,
    PluginFactory,
    PluginRegistry,
    PodInfo,
    ScoreNormalizer,
    ScorePlugin,
    Status,
)
from controllers.builtin.scheduler.plugins import (
    DEFAULT_FILTERS,
    DEFAULT_SCORES,
    DEFAULT_WEIGHTS,
    REGISTRY,
    builtin_registry,
    make_profile,
    register_plugin,
)
from controllers.builtin.scheduler.queue import SchedulingQueue

__all__ = [
    "DEFAULT_FILTERS",
    "DEFAULT_SCHEDULER_NAME",
    "DEFAULT_SCORES",
    "DEFAULT_WEIGHTS",
    "ENTRY_POINT_GROUP",
    "MAX_NODE_SCORE",
    "REGISTRY",
    "Cache",
    "Code",
    "FilterPlugin",
    "HostPort",
    "NodeInfo",
    "PluginFactory",
    "PluginRegistry",
    "PodInfo",
    "Profile",
    "ScheduleResult",
    "Scheduler",
    "SchedulingQueue",
    "ScoreNormalizer",
    "ScorePlugin",
    "Status",
    "builtin_registry",
    "fit_error_message",
    "make_profile",
    "register_plugin",
    "schedule",
]
