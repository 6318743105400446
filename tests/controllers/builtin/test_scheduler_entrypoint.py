"""Scheduler plugins found through the ``steersman.scheduler_plugins`` entry point group."""

from __future__ import annotations

import logging
import sys
import textwrap
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from controllers.api import Clientset
from controllers.builtin.scheduler import (
    DEFAULT_FILTERS,
    ENTRY_POINT_GROUP,
    Scheduler,
    builtin_registry,
)
from tests.controllers.builtin.scheduler_objects import make_node, make_pod
from tests.controllers.builtin.test_scheduler_store import (  # noqa: F401 - fixtures
    Running,
    api,
    create,
    eventually,
    frozen_informers,
    node_of,
    run,
)

PLUGIN_MODULE = "steersman_zone_plugin"

PLUGIN_SOURCE = textwrap.dedent('''
    """A third-party scheduler plugin, installed as a distribution with an entry point."""

    from controllers.builtin.scheduler import Status


    class ZoneB:
        name = "ZoneB"
        weight = 4

        def filter(self, pod, node):
            if pod.pod["metadata"].get("labels", {}).get("zone-b-only") != "true":
                return Status()
            if node.labels.get("zone") == "b":
                return Status()
            return Status.unschedulable("node(s) were not in zone b")

        def score(self, pod, node):
            return 100 if node.labels.get("zone") == "b" else 0
''')


@pytest.fixture
def plugin_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A distribution on ``sys.path`` declaring one good and one broken scheduler plugin."""
    site = tmp_path / "site"
    info = site / "steersman_zone_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: steersman-zone-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n"
        f"ZoneB = {PLUGIN_MODULE}:ZoneB\n"
        "Missing = steersman_no_such_module:Nothing\n")
    (site / f"{PLUGIN_MODULE}.py").write_text(PLUGIN_SOURCE)
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop(PLUGIN_MODULE, None)


def test_discovered_plugins_join_the_default_profile(
        plugin_dist: Path, caplog: pytest.LogCaptureFixture) -> None:
    registry = builtin_registry()
    with caplog.at_level(logging.ERROR, logger="controllers.builtin.scheduler.framework"):
        scheduler = Scheduler(registry=registry)
    assert "Missing" in caplog.text  # the broken plugin was reported and skipped
    assert [p.name for p in scheduler.profile.filters] == [*DEFAULT_FILTERS, "ZoneB"]
    assert ("ZoneB", 4) in [(p.name, w) for p, w in scheduler.profile.scores]
    # Named lists still pick exactly what runs.
    only = Scheduler(filters=["ZoneB"], scores=[], registry=registry)
    assert [p.name for p in only.profile.filters] == ["ZoneB"] and only.profile.scores == ()


async def test_a_discovered_plugin_decides_where_pods_go(
        plugin_dist: Path, api: Clientset,  # noqa: F811 - the imported fixtures
        run: Callable[..., Awaitable[Running]]) -> None:  # noqa: F811
    await create(api, make_node("a-1", labels={"zone": "a"}))
    await create(api, make_node("b-1", labels={"zone": "b"}, cpu="1"))
    await create(api, make_pod("picky", labels={"zone-b-only": "true"}, cpu="2"))
    await create(api, make_pod("easy"))
    await run(Scheduler(registry=builtin_registry()))

    async def placed() -> bool:
        # "easy" lands on b-1 by the plugin's score despite a-1 coming first and being emptier.
        return await node_of(api, "easy") == "b-1"

    await eventually(placed, "the plugin's score placing a pod")

    async def refused() -> bool:
        pod = await api.resource("pods").get("picky", "default")
        conds = [c for c in pod["status"].get("conditions") or []
                 if c["type"] == "PodScheduled"]
        return bool(conds) and conds[0]["message"] == (
            "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) were not in zone b.")

    await eventually(refused, "the plugin's filter refusing a pod")
