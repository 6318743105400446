"""Many pods decided in one reconcile and bound together, on an embedded store."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import pytest

from controllers.api import Clientset
from controllers.builtin.scheduler import Scheduler, builtin_registry
from tests.controllers.builtin.scheduler_objects import make_node, make_pod
from tests.controllers.builtin.test_scheduler_store import (  # noqa: F401 - fixtures
    RS_UID,
    Running,
    api,
    events,
    eventually,
    frozen_informers,
    unschedulable_message,
)


@pytest.fixture
async def running(api: Clientset) -> AsyncIterator[Running]:  # noqa: F811 - the fixture
    r = Running(api, Scheduler(registry=builtin_registry(), parallel_binds=16))
    yield r
    await r.stop()


async def test_a_batch_never_overfills_a_node_and_binds_each_pod_once(
        api: Clientset, running: Running) -> None:  # noqa: F811 - the fixture
    for name in ("node-a", "node-b", "node-c"):
        await api.resource("nodes").create(make_node(name, pods=5))
    for i in range(20):
        await api.resource("pods").create(make_pod(f"web-{i:02d}", owner_uid=RS_UID))
    await running.start()

    async def settled() -> bool:
        pods = (await api.resource("pods").list("default"))["items"]
        bound = [p for p in pods if p["spec"].get("nodeName")]
        waiting = [p for p in pods if await unschedulable_message(api, p["metadata"]["name"])]
        return len(bound) == 15 and len(waiting) == 5

    await eventually(settled, "15 pods bound and 5 left out")
    pods = (await api.resource("pods").list("default"))["items"]
    per_node = Counter(p["spec"]["nodeName"] for p in pods if p["spec"].get("nodeName"))
    assert per_node == {"node-a": 5, "node-b": 5, "node-c": 5}
    # Queue order is creation order: the last five are the ones left out.
    left_out = sorted(p["metadata"]["name"] for p in pods if not p["spec"].get("nodeName"))
    assert left_out == [f"web-{i:02d}" for i in range(15, 20)]
    assert await unschedulable_message(api, "web-19") == \
        "0/3 nodes are available: 3 Too many pods."

    async def all_events() -> bool:
        return len(await events(api, "Scheduled")) == 15

    await eventually(all_events, "one Scheduled event per bound pod")
    assigned = Counter(e["message"].split()[2] for e in await events(api, "Scheduled"))
    assert set(assigned.values()) == {1}
    assert running.scheduler.attempts == 20
