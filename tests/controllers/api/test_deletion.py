"""Deletion: finalizers, propagation policies, pod grace periods, preconditions, namespaces."""

from __future__ import annotations

import pytest

from controllers.api import (
    FINALIZER_FOREGROUND,
    FINALIZER_ORPHAN,
    BadRequest,
    Clientset,
    Conflict,
    Invalid,
    NotFound,
)
from kvstore.clock import FakeClock
from kvstore.node import Node
from tests.controllers.api.samples import deployment, pod


async def test_delete_without_finalizers_is_immediate(api: Clientset, kv: Node) -> None:
    cms = api.resource("cm")
    created = await cms.create({"metadata": {"name": "c"}, "data": {"k": "v"}})
    gone = await cms.delete("c")
    assert gone["data"] == {"k": "v"}
    assert int(gone["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    assert gone["metadata"]["resourceVersion"] == str((await kv.status()).revision)
    with pytest.raises(NotFound):
        await cms.get("c")
    with pytest.raises(NotFound):
        await cms.delete("c")


async def test_finalizers_hold_the_object_until_removed(api: Clientset, clock: FakeClock) -> None:
    deps = api.resource("deploy")
    d = deployment("web")
    d["metadata"]["finalizers"] = ["example.com/cleanup"]
    await deps.create(d)
    clock.advance(60)
    marked = await deps.delete("web")
    m = marked["metadata"]
    assert m["deletionTimestamp"] == "2023-11-14T22:14:20Z"
    assert m["deletionGracePeriodSeconds"] == 0
    assert m["generation"] == 2
    assert await deps.get("web") == marked
    # A second delete changes nothing; adding a finalizer now is refused.
    assert await deps.delete("web", propagation_policy="Orphan") == marked
    more = await deps.get("web")
    more["metadata"]["finalizers"].append("example.com/more")
    with pytest.raises(Invalid, match="no new finalizers"):
        await deps.update(more)
    # Other updates still work while the object is terminating.
    current = await deps.get("web")
    current["metadata"]["labels"]["x"] = "y"
    current = await deps.update(current)
    assert current["metadata"]["deletionTimestamp"] == m["deletionTimestamp"]
    # Removing the last finalizer deletes it.
    current["metadata"]["finalizers"] = []
    await deps.update(current)
    with pytest.raises(NotFound):
        await deps.get("web")


@pytest.mark.parametrize("policy,finalizers", [
    ("Foreground", [FINALIZER_FOREGROUND]),
    ("Orphan", [FINALIZER_ORPHAN]),
])
async def test_propagation_policy_is_recorded_as_a_finalizer(
        api: Clientset, policy: str, finalizers: list[str]) -> None:
    rs = api.resource("deploy")
    await rs.create(deployment("web"))
    marked = await rs.delete("web", propagation_policy=policy)
    assert marked["metadata"]["finalizers"] == finalizers
    assert "deletionTimestamp" in marked["metadata"]
    # The garbage collector removes its finalizer when done, which deletes the object.
    marked["metadata"]["finalizers"] = []
    await rs.update(marked)
    with pytest.raises(NotFound):
        await rs.get("web")


async def test_explicit_background_clears_gc_finalizers(api: Clientset) -> None:
    cms = api.resource("cm")
    await cms.create({"metadata": {"name": "a", "finalizers": [FINALIZER_ORPHAN]}})
    await cms.delete("a", propagation_policy="Background")
    with pytest.raises(NotFound):
        await cms.get("a")
    await cms.create({"metadata": {"name": "b", "finalizers": [FINALIZER_ORPHAN, "x.io/keep"]}})
    kept = await cms.delete("b", propagation_policy="Foreground")
    assert kept["metadata"]["finalizers"] == ["x.io/keep", FINALIZER_FOREGROUND]
    with pytest.raises(BadRequest):
        await cms.delete("b", propagation_policy="Sideways")


async def test_preconditions(api: Clientset) -> None:
    cms = api.resource("cm")
    c = await cms.create({"metadata": {"name": "c"}})
    with pytest.raises(Conflict, match="UID"):
        await cms.delete("c", uid="someone-else")
    with pytest.raises(Conflict):
        await cms.delete("c", resource_version="1")
    await cms.delete("c", uid=c["metadata"]["uid"], resource_version=c["metadata"]["resourceVersion"])
    with pytest.raises(NotFound):
        await cms.get("c")


async def test_pod_grace_period(api: Clientset, clock: FakeClock) -> None:
    pods = api.resource("pods")
    await pods.create(pod("p", nodeName="n1", terminationGracePeriodSeconds=20))
    marked = await pods.delete("p")
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 20
    assert marked["metadata"]["deletionTimestamp"] == "2023-11-14T22:13:40Z"
    # A longer grace is ignored, a shorter one shortens it.
    assert await pods.delete("p", grace_period_seconds=60) == marked
    shorter = await pods.delete("p", grace_period_seconds=5)
    assert shorter["metadata"]["deletionGracePeriodSeconds"] == 5
    assert shorter["metadata"]["deletionTimestamp"] == "2023-11-14T22:13:25Z"
    assert (await pods.get("p"))["metadata"]["deletionGracePeriodSeconds"] == 5
    # The node's agent confirms with grace 0.
    await pods.delete("p", grace_period_seconds=0)
    with pytest.raises(NotFound):
        await pods.get("p")


async def test_pods_without_grace(api: Clientset) -> None:
    pods = api.resource("pods")
    await pods.create(pod("unscheduled"))
    await pods.delete("unscheduled")
    done = await pods.create(pod("done", nodeName="n1"))
    done["status"] = {"phase": "Succeeded"}
    await pods.update_status(done)
    await pods.delete("done")
    await pods.create(pod("forced", nodeName="n1"))
    await pods.delete("forced", grace_period_seconds=0)
    assert (await pods.list())["items"] == []


async def test_pod_with_finalizer_and_grace_needs_both(api: Clientset) -> None:
    pods = api.resource("pods")
    p = pod("p", nodeName="n1")
    p["metadata"]["finalizers"] = ["x.io/hold"]
    await pods.create(p)
    await pods.delete("p", grace_period_seconds=0)
    held = await pods.get("p")
    assert held["metadata"]["deletionGracePeriodSeconds"] == 0
    held["metadata"]["finalizers"] = []
    await pods.update(held)
    with pytest.raises(NotFound):
        await pods.get("p")


async def test_namespace_waits_for_its_spec_finalizers(api: Clientset) -> None:
    namespaces = api.resource("namespaces")
    await namespaces.create({"metadata": {"name": "team"}})
    marked = await namespaces.delete("team")
    assert marked["status"]["phase"] == "Terminating"
    assert marked["spec"]["finalizers"] == ["kubernetes"]
    marked["spec"]["finalizers"] = []
    await namespaces.update(marked)
    with pytest.raises(NotFound):
        await namespaces.get("team")
