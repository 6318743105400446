"""``ResourceClient.bind`` (the pods/binding subresource) against an embedded store."""

from __future__ import annotations

import pytest

from controllers.api import BadRequest, Clientset, Conflict, Invalid, NotFound, ResourceClient
from controllers.api.objects import decode
from kvstore.clock import FakeClock
from kvstore.node import Node
from tests.controllers.api.samples import deployment, pod
from tests.controllers.api.test_client import RacingKV

KEY = "/registry/pods/default/p"


async def revision(kv: Node) -> int:
    return (await kv.range(KEY, count_only=True)).header_revision


def scheduled(obj: dict[str, object]) -> list[dict[str, str]]:
    status = obj["status"]
    assert isinstance(status, dict)
    return [c for c in status.get("conditions") or [] if c["type"] == "PodScheduled"]


async def test_bind_sets_node_and_condition_in_one_write(
        api: Clientset, kv: Node, clock: FakeClock) -> None:
    pods = api.resource("pods")
    created = await pods.create(pod("p"))
    # What the scheduler wrote when the pod fitted nowhere, next to another condition.
    created["status"]["conditions"] = [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
         "message": "0/1 nodes are available: 1 Too many pods.",
         "lastTransitionTime": "2023-11-14T22:13:20Z"},
        {"type": "example.com/Gate", "status": "True"}]
    stored = await pods.update_status(created)
    clock.advance(60)
    before = await revision(kv)
    bound = await pods.bind("p", "default", "node-a")
    assert await revision(kv) == before + 1
    assert bound["metadata"]["resourceVersion"] == str(before + 1)
    assert bound["spec"]["nodeName"] == "node-a"
    assert bound["status"]["conditions"] == [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2023-11-14T22:14:20Z"},
        {"type": "example.com/Gate", "status": "True"}]
    assert bound["metadata"]["generation"] == stored["metadata"]["generation"]
    assert bound["metadata"]["uid"] == stored["metadata"]["uid"]
    entry = await kv.get(KEY)
    assert entry is not None and entry.mod_revision == before + 1 and decode(entry) == bound
    assert await pods.get("p") == bound


async def test_bind_appends_the_condition_a_pod_lacks(api: Clientset) -> None:
    pods = api.resource("pods")
    await pods.create(pod("p"))
    bound = await pods.bind("p", "", "node-a")  # "" is the default namespace
    assert scheduled(bound) == [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2023-11-14T22:13:20Z"}]


async def test_bind_refuses_a_pod_that_has_a_node(api: Clientset, kv: Node) -> None:
    pods = api.resource("pods")
    await pods.create(pod("p"))
    await pods.bind("p", "default", "node-a")
    before = await revision(kv)
    with pytest.raises(Conflict) as info:
        await pods.bind("p", "default", "node-b")
    assert str(info.value) == ('Operation cannot be fulfilled on pods/binding "p": '
                               'pod p is already assigned to node "node-a"')
    # Even to the same node, and a pod created with a node is bound already.
    with pytest.raises(Conflict, match="already assigned"):
        await pods.bind("p", "default", "node-a")
    await pods.create(pod("q", nodeName="node-c"))
    with pytest.raises(Conflict, match='pod q is already assigned to node "node-c"'):
        await pods.bind("q", "default", "node-a")
    assert (await pods.get("p"))["spec"]["nodeName"] == "node-a"
    assert await revision(kv) == before + 1  # only q's create was written


async def test_bind_refuses_a_pod_being_deleted(api: Clientset, kv: Node) -> None:
    pods = api.resource("pods")
    held = pod("p")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    await pods.create(held)
    marked = await pods.delete("p")
    assert marked["metadata"]["deletionTimestamp"]
    before = await revision(kv)
    with pytest.raises(Conflict, match="pod p is being deleted, cannot be assigned to a host"):
        await pods.bind("p", "default", "node-a")
    assert await revision(kv) == before
    assert not (await pods.get("p"))["spec"].get("nodeName")


async def test_bind_preconditions(api: Clientset, kv: Node) -> None:
    pods = api.resource("pods")
    created = await pods.create(pod("p"))
    uid, rv = created["metadata"]["uid"], created["metadata"]["resourceVersion"]
    with pytest.raises(Conflict, match=f"UID in precondition: other, UID in object meta: {uid}"):
        await pods.bind("p", "default", "node-a", uid="other")
    with pytest.raises(Conflict, match=f"ResourceVersion in precondition: 1, "
                                       f"ResourceVersion in object meta: {rv}"):
        await pods.bind("p", "default", "node-a", resource_version="1")
    assert not (await pods.get("p"))["spec"].get("nodeName")
    bound = await pods.bind("p", "default", "node-a", uid=uid, resource_version=rv)
    assert bound["spec"]["nodeName"] == "node-a"


async def test_bind_of_a_missing_pod_or_another_kind_or_a_bad_node(api: Clientset) -> None:
    pods = api.resource("pods")
    with pytest.raises(NotFound, match='pods "nope" not found'):
        await pods.bind("nope", "default", "node-a")
    await api.resource("deploy").create(deployment("web"))
    with pytest.raises(BadRequest, match="deployments.apps has no binding subresource"):
        await api.resource("deploy").bind("web", "default", "node-a")
    await pods.create(pod("p"))
    with pytest.raises(Invalid) as info:
        await pods.bind("p", "default", "")
    assert info.value.kind == "Binding" and info.value.fields() == ["target.name"]
    with pytest.raises(Invalid, match="target.name: Invalid value"):
        await pods.bind("p", "default", "Node_A")
    assert not (await pods.get("p"))["spec"].get("nodeName")


async def test_bind_retries_after_a_concurrent_write_and_checks_again(
        api: Clientset, kv: Node, clock: FakeClock) -> None:
    pods = api.resource("pods")
    await pods.create(pod("p"))
    await pods.create(pod("q"))

    async def relabel() -> None:
        await pods.patch("p", "default", {"metadata": {"labels": {"edited": "yes"}}})

    racing = RacingKV(kv, relabel)
    bound = await ResourceClient(racing, "pods", clock=clock).bind("p", "default", "node-a")
    assert racing.txns == 2
    assert bound["spec"]["nodeName"] == "node-a"
    assert bound["metadata"]["labels"] == {"edited": "yes"}  # the other write is kept

    async def other_binder() -> None:
        await pods.bind("q", "default", "node-b")

    racing = RacingKV(kv, other_binder)
    with pytest.raises(Conflict, match='already assigned to node "node-b"'):
        await ResourceClient(racing, "pods", clock=clock).bind("q", "default", "node-a")
    assert racing.txns == 1
    assert (await pods.get("q"))["spec"]["nodeName"] == "node-b"

    # With a resourceVersion precondition, a concurrent write makes the bind fail.
    await pods.create(pod("r"))
    rv = (await pods.get("r"))["metadata"]["resourceVersion"]

    async def touch_r() -> None:
        await pods.patch("r", "default", {"metadata": {"labels": {"edited": "yes"}}})

    racing = RacingKV(kv, touch_r)
    with pytest.raises(Conflict, match="Precondition failed: ResourceVersion"):
        await ResourceClient(racing, "pods", clock=clock).bind("r", "default", "node-a",
                                                               resource_version=rv)
    assert racing.txns == 1
