"""The public names of the workqueue package and the controllers' clock."""

from __future__ import annotations

import importlib

import pytest

MODULES = [
    "controllers.clock",
    "controllers.workqueue",
    "controllers.workqueue.delaying",
    "controllers.workqueue.metrics",
    "controllers.workqueue.queue",
    "controllers.workqueue.rate_limiters",
    "controllers.workqueue.rate_limiting",
]


def isort_key(name: str) -> tuple[int, str]:
    """Constants first, then classes, then functions, each alphabetically."""
    if name.isupper():
        return (0, name)
    return (1, name) if name[0].isupper() else (2, name)


@pytest.mark.parametrize("name", MODULES)
def test_all_is_sorted_and_every_name_exists(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported, key=isort_key)
    assert len(set(exported)) == len(exported)
    missing = [n for n in exported if not hasattr(module, n)]
    assert missing == []


def test_package_exports_the_layers_and_limiters() -> None:
    package = importlib.import_module("controllers.workqueue")
    for module_name in MODULES[2:]:
        module = importlib.import_module(module_name)
        for public in module.__all__:
            if public.isupper():
                continue  # constants stay in their module
            if public.endswith("Metric") or public == "QueueMetrics":
                continue  # metric seams are read from the metrics module
            assert getattr(package, public, None) is getattr(module, public), public
