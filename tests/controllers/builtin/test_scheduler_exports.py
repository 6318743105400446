"""The public names of the scheduler package and its modules."""

from __future__ import annotations

import importlib

import pytest

MODULES = [
    "controllers.builtin.scheduler",
    "controllers.builtin.scheduler.algorithm",
    "controllers.builtin.scheduler.cache",
    "controllers.builtin.scheduler.controller",
    "controllers.builtin.scheduler.filters",
    "controllers.builtin.scheduler.framework",
    "controllers.builtin.scheduler.nodeaffinity",
    "controllers.builtin.scheduler.plugins",
    "controllers.builtin.scheduler.quantity",
    "controllers.builtin.scheduler.queue",
    "controllers.builtin.scheduler.resources",
    "controllers.builtin.scheduler.scores",
    "controllers.builtin.scheduler.taints",
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
    assert [n for n in exported if not hasattr(module, n)] == []


def test_the_scheduler_is_a_controller_with_a_no_argument_constructor() -> None:
    from controllers.builtin.scheduler import Scheduler
    from controllers.controller import Controller

    scheduler = Scheduler()
    assert isinstance(scheduler, Controller)
    assert scheduler.name == "scheduler" and tuple(scheduler.informers) == ("pods", "nodes")
    with pytest.raises(ValueError):
        Scheduler(initial_backoff_seconds=0)
    with pytest.raises(ValueError):
        Scheduler(bind_attempts=0)
