"""EventRecorder: events are written in the background, repeats are counted, overflow drops."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import kvstore
from controllers.api import Clientset
from controllers.events import EventRecorder
from kvstore.clock import FakeClock as WallFakeClock
from kvstore.node import Node, NodeOptions


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Clientset]:
    async with kvstore.open(str(tmp_path / "s"),
                            options=NodeOptions(tick_interval=0.01, unsafe_no_fsync=True)) as n:
        node: Node = n
        clientset = Clientset(node, clock=WallFakeClock(1_700_000_000.0), rng=random.Random(1))
        await clientset.ensure_default_namespaces()
        yield clientset


POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "web-1", "namespace": "default", "uid": "u-1",
                    "resourceVersion": "7"}}
NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "uid": "u-n1"}}


async def test_an_event_is_written_about_its_object(api: Clientset) -> None:
    recorder = EventRecorder(api, "test-controller", host="h1")
    recorder.event(POD, "Warning", "BackOff", "restarting failed container")
    recorder.event(NODE, "Normal", "NodeReady", "node n1 is ready")
    await recorder.flush()
    events = (await api.resource("events").list(None))["items"]
    by_reason = {e["reason"]: e for e in events}
    pod_event = by_reason["BackOff"]
    assert pod_event["metadata"]["namespace"] == "default"
    assert pod_event["metadata"]["name"].startswith("web-1.")
    assert pod_event["involvedObject"] == {"apiVersion": "v1", "kind": "Pod", "name": "web-1",
                                           "namespace": "default", "uid": "u-1",
                                           "resourceVersion": "7"}
    assert pod_event["type"] == "Warning" and pod_event["count"] == 1
    assert pod_event["source"] == {"component": "test-controller", "host": "h1"}
    assert pod_event["firstTimestamp"] == pod_event["lastTimestamp"]
    # A cluster-scoped object's events live in "default".
    assert by_reason["NodeReady"]["metadata"]["namespace"] == "default"
    assert recorder.written == 2
    await recorder.close()


async def test_a_repeated_event_is_counted_not_stored_twice(api: Clientset) -> None:
    recorder = EventRecorder(api, "c")
    for _ in range(3):
        recorder.event(POD, "Normal", "Pulled", "image ready")
    recorder.event(POD, "Normal", "Pulled", "another message")
    await recorder.flush()
    events = (await api.resource("events").list("default"))["items"]
    counts = sorted((e["message"], e["count"]) for e in events)
    assert counts == [("another message", 1), ("image ready", 3)]
    await recorder.close()


async def test_a_repeat_after_the_event_was_deleted_makes_a_new_one(api: Clientset) -> None:
    recorder = EventRecorder(api, "c")
    recorder.event(POD, "Normal", "Pulled", "image ready")
    await recorder.flush()
    (first,) = (await api.resource("events").list("default"))["items"]
    await api.resource("events").delete(first["metadata"]["name"], "default")
    recorder.event(POD, "Normal", "Pulled", "image ready")
    await recorder.flush()
    (second,) = (await api.resource("events").list("default"))["items"]
    assert second["count"] == 1 and second["metadata"]["name"] != first["metadata"]["name"]
    await recorder.close()


async def test_a_full_queue_drops_instead_of_blocking(api: Clientset) -> None:
    recorder = EventRecorder(api, "c", max_pending=2)
    for i in range(5):
        recorder.event(POD, "Normal", "Tick", f"tick {i}")
    assert recorder.dropped == 3
    await recorder.flush()
    assert len((await api.resource("events").list("default"))["items"]) == 2
    await recorder.close()
    recorder.event(POD, "Normal", "Tick", "after close")  # dropped quietly
    assert recorder.written == 2


async def test_a_bad_event_type_is_refused(api: Clientset) -> None:
    with pytest.raises(ValueError, match="event type"):
        EventRecorder(api, "c").event(POD, "Error", "X", "y")


async def test_drops_are_logged_once_per_thousand(api: Clientset,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    recorder = EventRecorder(api, "c", max_pending=1)
    for i in range(2002):
        recorder.event(POD, "Normal", "Tick", f"tick {i}")
    assert recorder.dropped == 2001
    drops = [r for r in caplog.records if "queue full" in r.getMessage()]
    assert [r.getMessage().split("(")[1] for r in drops] == [
        "1 dropped so far)", "1001 dropped so far)", "2001 dropped so far)"]
    await recorder.close()
