"""Informers against an embedded store: the factory, listers, and relist after compaction."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import kvstore
from controllers.api import Clientset
from controllers.clock import FakeClock
from controllers.informers import (
    DeletedFinalStateUnknown,
    ListWatch,
    SharedInformer,
    SharedInformerFactory,
    WatchStream,
)
from kvstore.clock import FakeClock as WallClock
from kvstore.node import Node, NodeOptions
from tests.controllers.informers.fakes import DEADLINE, eventually

FAST = NodeOptions(tick_interval=0.01, unsafe_no_fsync=True)


def configmap(name: str, value: str, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if labels:
        meta["labels"] = dict(labels)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"v": value}}


@pytest.fixture
async def kv(tmp_path: Path) -> AsyncIterator[Node]:
    async with kvstore.open(str(tmp_path / "store"), options=FAST) as store:
        yield store


@pytest.fixture
async def api(kv: Node) -> Clientset:
    cs = Clientset(kv, clock=WallClock(1_700_000_000.0), rng=random.Random(7))
    await cs.ensure_default_namespaces()
    return cs


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def on_add(self, o: Any, initial: bool) -> None:
        self.seen.append(("add", o["metadata"]["name"]))

    def on_update(self, old: Any, new: Any) -> None:
        self.seen.append(("update", new["metadata"]["name"]))

    def on_delete(self, o: Any) -> None:
        if isinstance(o, DeletedFinalStateUnknown):
            self.seen.append(("tombstone", o.key))
        else:
            self.seen.append(("delete", o["metadata"]["name"]))


async def test_factory_shares_informers_and_serves_listers(api: Clientset) -> None:
    await api.resource("configmaps").create(configmap("one", "1", app="web"))
    factory = SharedInformerFactory(api, clock=FakeClock(), rng=random.Random(1))
    informer = factory.informer_for("configmaps")
    assert factory.informer_for("cm") is informer
    events = Events()
    informer.add_event_handler(events)
    factory.start()
    try:
        synced = await asyncio.wait_for(factory.wait_for_cache_sync(), DEADLINE)
        assert synced == {"configmaps": True}
        assert events.seen == [] or events.seen == [("add", "one")]
        created = await api.resource("configmaps").create(configmap("two", "2", app="db"))
        await asyncio.wait_for(
            informer.wait_for_resource_version(created["metadata"]["resourceVersion"]),
            DEADLINE)
        lister = factory.lister_for("configmaps")
        assert [o["metadata"]["name"] for o in lister.list("app=db")] == ["two"]
        assert lister.get("default", "two")["data"] == {"v": "2"}
        await eventually(lambda: events.seen == [("add", "one"), ("add", "two")], "adds")
    finally:
        await factory.shutdown()


class GatedListWatch:
    """A ``ListWatch`` whose watch can be cut and held down by the test."""

    def __init__(self, inner: ListWatch) -> None:
        self.inner = inner
        self.open = asyncio.Event()
        self.open.set()
        self.streams: list[WatchStream] = []
        self.lists = 0

    async def list(self, *, resource_version: str = "") -> dict[str, Any]:
        self.lists += 1
        return await self.inner.list(resource_version=resource_version)

    async def watch(self, *, resource_version: str) -> WatchStream:
        await self.open.wait()
        stream = await self.inner.watch(resource_version=resource_version)
        self.streams.append(stream)
        return stream

    async def cut(self) -> None:
        self.open.clear()
        await self.streams[-1].aclose()


async def test_compaction_while_the_watch_is_down_relists_with_tombstones(
        api: Clientset, kv: Node) -> None:
    cms = api.resource("configmaps")
    for name in ("a", "b", "c"):
        await cms.create(configmap(name, "1"))
    lw = GatedListWatch(ListWatch(cms, "default"))
    informer = SharedInformer(lw, clock=FakeClock(), rng=random.Random(2), resource="configmaps")
    events = Events()
    informer.add_event_handler(events)
    informer.start()
    try:
        await asyncio.wait_for(informer.wait_for_cache_sync(), DEADLINE)
        await eventually(lambda: len(lw.streams) == 1, "the watch")
        seen_rv = int(informer.last_sync_resource_version())
        await lw.cut()
        await cms.delete("b", "default")
        c = await cms.get("c", "default")
        c["data"] = {"v": "2"}
        await cms.update(c)
        last = await cms.create(configmap("d", "1"))
        rv = int(last["metadata"]["resourceVersion"])
        await kv.compact(rv)
        assert seen_rv < rv
        lw.open.set()
        await asyncio.wait_for(informer.wait_for_resource_version(rv), DEADLINE)
        assert lw.lists == 2
        assert int(informer.last_sync_resource_version()) >= rv
        assert informer.indexer.list_keys() == ["default/a", "default/c", "default/d"]
        await eventually(lambda: len(events.seen) == 6, "the relist notifications")
        assert sorted(events.seen[3:]) == [
            ("add", "d"), ("tombstone", "default/b"), ("update", "c")]
    finally:
        await informer.stop()
