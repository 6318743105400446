"""Controllers found through the ``steersman.controllers`` entry point group, or registered in code."""

from __future__ import annotations

import asyncio
import logging
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from controllers.api import Clientset
from controllers.clock import FakeClock
from controllers.controller import (
    ENTRY_POINT_GROUP,
    Controller,
    ControllerRegistry,
    register_controller,
)
from controllers.manager import Manager
from kvstore.clock import FakeClock as WallFakeClock
from tests.controllers.manager.support import GatedKV, settle
from tests.controllers.manager.toy import ToyController

PLUGIN_MODULE = "steersman_toy_plugin"

PLUGIN_SOURCE = textwrap.dedent('''
    """A third-party controller, installed as a distribution with an entry point."""

    from controllers.controller import DONE

    RECONCILED = []


    class GreeterController:
        name = "greeter"
        informers = ()

        def setup(self, context):
            context.enqueue("default/hello")

        async def reconcile(self, key):
            RECONCILED.append(key)
            return DONE
''')


@pytest.fixture
def plugin_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A distribution on ``sys.path`` declaring one good and one broken entry point."""
    site = tmp_path / "site"
    info = site / "steersman_toy_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: steersman-toy-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n"
        f"greeter = {PLUGIN_MODULE}:GreeterController\n"
        "missing = steersman_no_such_module:Nothing\n")
    (site / f"{PLUGIN_MODULE}.py").write_text(PLUGIN_SOURCE)
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop(PLUGIN_MODULE, None)


async def test_the_manager_discovers_and_runs_an_entry_point_plugin(
        plugin_dist: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    registry = ControllerRegistry()
    with caplog.at_level(logging.ERROR, logger="controllers.controller"):
        manager = Manager(Clientset(GatedKV(None), clock=WallFakeClock(0.0)),
                          registry=registry, clock=clock)
    assert [c.name for c in manager.controllers] == ["greeter"]
    assert registry.names() == ["greeter"]
    assert "missing" in caplog.text  # the broken plugin was reported and skipped
    task = asyncio.ensure_future(manager.run())
    try:
        await settle()
        plugin = sys.modules[PLUGIN_MODULE]
        assert plugin.RECONCILED == ["default/hello"]
    finally:
        task.cancel()
        await asyncio.wait({task})


def test_discovery_keeps_controllers_registered_in_code(plugin_dist: Path) -> None:
    registry = ControllerRegistry()

    @register_controller("greeter", registry)
    def greeter() -> Controller:
        return ToyController(name="greeter")

    assert registry.discover() == []  # the name is taken: the code registration wins
    assert registry.create() and registry.create()[0].__class__ is ToyController


def test_enabled_limits_the_controllers() -> None:
    registry = ControllerRegistry()
    register_controller("b", registry)(lambda: ToyController(name="b"))
    register_controller("a", registry)(lambda: ToyController(name="a"))
    api = Clientset(GatedKV(None), clock=WallFakeClock(0.0))
    everything = Manager(api, registry=registry, clock=FakeClock())
    assert [c.name for c in everything.controllers] == ["a", "b"]
    only_b = Manager(api, registry=registry, enabled=["b"], clock=FakeClock())
    assert [c.name for c in only_b.controllers] == ["b"]
    with pytest.raises(KeyError):
        Manager(api, registry=registry, enabled=["nope"], clock=FakeClock())
    with pytest.raises(ValueError, match="already registered"):
        registry.register("a", lambda: ToyController(name="a"))


def test_a_factory_must_make_a_controller() -> None:
    registry = ControllerRegistry()
    registry.register("odd", lambda: object())  # type: ignore[arg-type, return-value]
    with pytest.raises(TypeError, match="not a Controller"):
        registry.create()
