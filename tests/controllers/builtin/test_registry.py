"""Every built-in controller is registered by name and can be made with no arguments."""

from __future__ import annotations

import pytest

from controllers.builtin import (
    BUILTIN,
    CONCURRENT_SYNCS,
    CONTROLLER_MANAGER,
    SCHEDULER,
    register_builtins,
)
from controllers.controller import Controller, ControllerRegistry


def test_every_builtin_is_registered_and_made_under_its_name() -> None:
    registry = ControllerRegistry()
    register_builtins(registry)
    assert registry.names() == sorted(BUILTIN)
    made = registry.create()
    assert [c.name for c in made] == sorted(BUILTIN)
    assert all(isinstance(c, Controller) for c in made)
    assert sorted(CONTROLLER_MANAGER + SCHEDULER) == sorted(BUILTIN)


def test_registering_twice_keeps_what_is_there() -> None:
    registry = ControllerRegistry()
    registry.register("scheduler", lambda: pytest.fail("not made"))  # type: ignore[arg-type,return-value]
    register_builtins(registry)
    register_builtins(registry)
    assert registry.names() == sorted(BUILTIN)


def test_worker_counts_name_controllers_of_the_controller_manager() -> None:
    assert set(CONCURRENT_SYNCS) <= set(CONTROLLER_MANAGER)
    assert CONCURRENT_SYNCS["garbage-collector"] == 20 and CONCURRENT_SYNCS["deployment"] == 5
