"""Watch: events in order, DELETED with the last state, selectors, bookmarks, Gone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from controllers.api import Clientset, FieldSelector, Gone, LabelSelector, WatchEvent
from controllers.api.objects import encode
from controllers.api.watch import ResourceWatch
from kvstore.mvcc.types import Event, EventType, KeyValue, WatchResponse
from kvstore.node import Node
from tests.controllers.api.conftest import DEADLINE
from tests.controllers.api.samples import pod


async def take(watch: ResourceWatch, n: int) -> list[WatchEvent]:
    out = []
    for _ in range(n):
        out.append(await asyncio.wait_for(watch.__anext__(), DEADLINE))
    return out


def summary(events: list[WatchEvent]) -> list[tuple[str, str, str]]:
    return [(e.type.value, e.object["metadata"].get("name", ""), e.resource_version)
            for e in events]


async def test_events_from_a_resource_version(api: Clientset, kv: Node) -> None:
    cms = api.resource("cm")
    first = await cms.create({"metadata": {"name": "a"}, "data": {"v": "1"}})
    async with await cms.watch(resource_version=first["metadata"]["resourceVersion"]) as w:
        b = await cms.create({"metadata": {"name": "b"}})
        first["data"] = {"v": "2"}
        a2 = await cms.update(first)
        gone = await cms.delete("a")
        events = await take(w, 3)
    assert summary(events) == [
        ("ADDED", "b", b["metadata"]["resourceVersion"]),
        ("MODIFIED", "a", a2["metadata"]["resourceVersion"]),
        ("DELETED", "a", gone["metadata"]["resourceVersion"]),
    ]
    # DELETED carries the last state of the object.
    assert events[2].object["data"] == {"v": "2"}
    assert events[2].object["metadata"]["uid"] == first["metadata"]["uid"]
    assert events[1].object == a2
    assert events[1].type == "MODIFIED"


async def test_empty_resource_version_starts_with_the_current_objects(api: Clientset) -> None:
    cms = api.resource("cm")
    await cms.create({"metadata": {"name": "a"}})
    await cms.create({"metadata": {"name": "b"}})
    w = await cms.watch()
    await cms.create({"metadata": {"name": "c"}})
    events = await take(w, 3)
    await w.aclose()
    assert [(e.type.value, e.object["metadata"]["name"]) for e in events] == [
        ("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c")]


async def test_namespace_and_label_selector_filtering(api: Clientset) -> None:
    pods = api.resource("pods")
    await api.resource("ns").create({"metadata": {"name": "other"}})
    start = (await pods.list())["metadata"]["resourceVersion"]
    w = await pods.watch("default", label_selector="app=web", resource_version=start)
    await pods.create(pod("db", labels={"app": "db"}))              # never matches: dropped
    await pods.create(pod("x", labels={"app": "web"}, namespace="other"))  # other namespace
    p = await pods.create(pod("web", labels={"app": "web"}))        # ADDED
    p["metadata"]["labels"]["app"] = "api"
    left = await pods.update(p)                                     # leaves the selection
    left["metadata"]["labels"]["app"] = "web"
    back = await pods.update(left)                                  # comes back
    back["metadata"]["labels"]["v"] = "2"
    await pods.update(back)                                         # MODIFIED
    events = await take(w, 4)
    await w.aclose()
    assert [(e.type.value, e.object["metadata"]["name"]) for e in events] == [
        ("ADDED", "web"), ("DELETED", "web"), ("ADDED", "web"), ("MODIFIED", "web")]
    # The object that left the selection is reported with its previous state and the new version.
    assert events[1].object["metadata"]["labels"] == {"app": "web"}
    assert events[1].resource_version == left["metadata"]["resourceVersion"]


async def test_field_selector_filtering(api: Clientset) -> None:
    pods = api.resource("pods")
    p = await pods.create(pod("p"))
    w = await pods.watch(field_selector=FieldSelector.parse("spec.nodeName=n1"),
                         resource_version=p["metadata"]["resourceVersion"])
    p["spec"]["nodeName"] = "n1"
    bound = await pods.update(p)
    await pods.create(pod("q"))
    await pods.delete("p", grace_period_seconds=0)
    events = await take(w, 2)
    await w.aclose()
    assert summary(events)[0] == ("ADDED", "p", bound["metadata"]["resourceVersion"])
    assert events[1].type == "DELETED" and events[1].object["spec"]["nodeName"] == "n1"


async def test_bookmarks_carry_only_the_resource_version(api: Clientset, kv: Node) -> None:
    cms = api.resource("cm")
    c = await cms.create({"metadata": {"name": "a"}})
    w = await cms.watch(resource_version=c["metadata"]["resourceVersion"],
                        label_selector=LabelSelector.parse("none=here"))
    await cms.create({"metadata": {"name": "b"}})  # filtered out, yet covered by the bookmark
    revision = (await kv.status()).revision
    while True:
        event = await asyncio.wait_for(w.__anext__(), DEADLINE)
        if int(event.resource_version) >= revision:
            break
    await w.aclose()
    assert event.type == "BOOKMARK"
    assert event.object == {"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"resourceVersion": str(revision)}}


async def test_gone_after_compaction(api: Clientset, kv: Node) -> None:
    cms = api.resource("cm")
    a = await cms.create({"metadata": {"name": "a"}})
    await cms.create({"metadata": {"name": "b"}})
    await kv.compact((await kv.status()).revision)
    with pytest.raises(Gone, match="too old resource version"):
        await cms.watch(resource_version=a["metadata"]["resourceVersion"])
    # Watching from the list's version works.
    listed = await cms.list()
    w = await cms.watch(resource_version=listed["metadata"]["resourceVersion"])
    await cms.create({"metadata": {"name": "c"}})
    assert summary(await take(w, 1))[0][:2] == ("ADDED", "c")
    await w.aclose()
    with pytest.raises(StopAsyncIteration):
        await w.__anext__()


async def _responses(*responses: WatchResponse) -> AsyncIterator[WatchResponse]:
    for r in responses:
        yield r


async def test_compaction_overtaking_a_watcher_ends_it_with_gone(api: Clientset) -> None:
    kind = api.resource("cm").kind
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}}
    kv = KeyValue(b"/registry/configmaps/default/a", encode(obj), 5, 5, 1, 0)
    stream = _responses(
        WatchResponse(1, (Event(EventType.PUT, kv),), 5),
        WatchResponse(1, (), 6, compact_revision=9, canceled=True),
    )
    w = ResourceWatch(kind, stream, label_selector=LabelSelector(),
                      field_selector=FieldSelector(), initial=[])
    assert summary(await take(w, 1)) == [("ADDED", "a", "5")]
    with pytest.raises(Gone):
        await w.__anext__()
    with pytest.raises(StopAsyncIteration):
        await w.__anext__()


async def test_deleted_without_previous_state_names_the_object(api: Clientset) -> None:
    kind = api.resource("pods").kind
    tomb = KeyValue(b"/registry/pods/prod/web-1", b"", 0, 8, 0, 0)
    stream = _responses(WatchResponse(1, (Event(EventType.DELETE, tomb),), 8))
    w = ResourceWatch(kind, stream, label_selector=LabelSelector(),
                      field_selector=FieldSelector(), initial=[])
    (event,) = await take(w, 1)
    assert event.type == "DELETED"
    assert event.object == {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "web-1", "namespace": "prod", "resourceVersion": "8"}}
