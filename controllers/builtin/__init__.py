"""The built-in controllers of Kubernetes, each a plugin for ``controllers.manager.Manager``.

``CONTROLLER_MANAGER`` names the controllers kube-controller-manager runs
(here: ReplicaSet, Deployment, DaemonSet, Job, CronJob, Endpoints, garbage
collector, namespace, node lifecycle); the scheduler runs under a manager and a lock of its own.
``register_builtins`` puts every one of them in a ``ControllerRegistry``.
Modules are imported only when a controller is made.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from controllers.controller import REGISTRY, Controller, ControllerRegistry

__all__ = [
    "BUILTIN",
    "CONCURRENT_SYNCS",
    "CONTROLLER_MANAGER",
    "SCHEDULER",
    "builtin_factory",
    "register_builtins",
]

BUILTIN: dict[str, str] = {
    "cronjob": "controllers.builtin.cronjob:CronJobController",
    "daemonset": "controllers.builtin.daemonset:DaemonSetController",
    "deployment": "controllers.builtin.deployment:DeploymentController",
    "endpoints": "controllers.builtin.endpoints:EndpointsController",
    "garbage-collector": "controllers.builtin.garbagecollector:GarbageCollector",
    "job": "controllers.builtin.job:JobController",
    "namespace": "controllers.builtin.namespace:NamespaceController",
    "node-lifecycle": "controllers.builtin.nodelifecycle:NodeLifecycleController",
    "replicaset": "controllers.builtin.replicaset:ReplicaSetController",
    "scheduler": "controllers.builtin.scheduler:Scheduler",
}
"""Every built-in controller: name -> ``module:class``."""

CONTROLLER_MANAGER = ("cronjob", "daemonset", "deployment", "endpoints", "garbage-collector",
                      "job", "namespace", "node-lifecycle", "replicaset")
SCHEDULER = ("scheduler",)

CONCURRENT_SYNCS: dict[str, int] = {
    "cronjob": 5,
    "daemonset": 2,
    "deployment": 5,
    "endpoints": 5,
    "garbage-collector": 20,
    "job": 5,
    "namespace": 10,
    "replicaset": 5,
}
"""Workers per controller: kube-controller-manager's ``--concurrent-*-syncs`` defaults."""


def builtin_factory(name: str) -> Callable[[], Controller]:
    """The factory of the built-in controller ``name``; raises ``KeyError``."""
    module_name, _, attribute = BUILTIN[name].partition(":")

    def make() -> Controller:
        made: Controller = getattr(importlib.import_module(module_name), attribute)()
        return made

    return make


def register_builtins(registry: ControllerRegistry | None = None) -> None:
    """Register every built-in controller not registered yet in ``registry`` (``REGISTRY``)."""
    target = registry if registry is not None else REGISTRY
    taken = set(target.names())
    for name in sorted(BUILTIN):
        if name not in taken:
            target.register(name, builtin_factory(name))
