"""The ConfigMap-per-Namespace controller on an embedded one-member store, under a Manager."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

import kvstore
from controllers.api import Clientset, NotFound
from controllers.examples.namespace_configmap import (
    CONFIGMAP_NAME,
    WRITTEN_BY,
    NamespaceConfigMapController,
    desired_data,
)
from controllers.manager import Manager
from kvstore.node import NodeOptions


async def eventually(check: Callable[[], Awaitable[bool]], what: str,
                     timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Clientset]:
    async with kvstore.open(str(tmp_path / "s"),
                            options=NodeOptions(tick_interval=0.01, unsafe_no_fsync=True)) as n:
        clientset = Clientset(n)
        await clientset.ensure_default_namespaces()
        yield clientset


async def configmap(api: Clientset, namespace: str) -> dict | None:  # type: ignore[type-arg]
    try:
        return await api.resource("configmaps").get(CONFIGMAP_NAME, namespace)
    except NotFound:
        return None


async def in_sync(api: Clientset, namespace: str) -> bool:
    ns = await api.resource("namespaces").get(namespace)
    cm = await configmap(api, namespace)
    return cm is not None and cm["data"] == desired_data(ns)


def test_desired_data_copies_name_uid_and_labels() -> None:
    ns = {"metadata": {"name": "team-a", "uid": "u1", "labels": {"tier": "gold", "env": "x"}}}
    assert desired_data(ns) == {"namespace": "team-a", "uid": "u1", "label.env": "x",
                                "label.tier": "gold"}


async def test_every_namespace_gets_its_configmap_and_keeps_it_in_sync(api: Clientset) -> None:
    await api.resource("namespaces").create({"metadata": {"name": "before",
                                                          "labels": {"a": "1"}}})
    manager = Manager(api, [NamespaceConfigMapController("solo")])
    task = asyncio.ensure_future(manager.run())
    try:
        # Namespaces that existed before the manager started, and new ones.
        await eventually(lambda: in_sync(api, "before"), "configmap in 'before'")
        await api.resource("namespaces").create({"metadata": {"name": "after"}})
        for name in ("default", "kube-system", "after"):
            await eventually(lambda: in_sync(api, name), f"configmap in {name!r}")
        cm = await configmap(api, "after")
        assert cm is not None and cm["metadata"]["annotations"][WRITTEN_BY] == "solo"

        # A label change on the namespace is copied over.
        ns = await api.resource("namespaces").get("before")
        ns["metadata"]["labels"] = {"a": "2", "b": "new"}
        await api.resource("namespaces").update(ns)
        await eventually(lambda: in_sync(api, "before"), "labels copied")

        # Someone edits the ConfigMap: it is put back.
        cm = await configmap(api, "before")
        assert cm is not None
        cm["data"] = {"namespace": "tampered"}
        await api.resource("configmaps").update(cm)
        await eventually(lambda: in_sync(api, "before"), "edit undone")

        # Someone deletes it: it comes back.
        await api.resource("configmaps").delete(CONFIGMAP_NAME, "after")
        await eventually(lambda: in_sync(api, "after"), "deleted configmap recreated")

        # The controller said what it did, through Events on the namespace.
        async def created_events() -> bool:
            events = (await api.resource("events").list(None))["items"]
            return any(e["reason"] == "ConfigMapCreated"
                       and e["involvedObject"]["name"] == "after" for e in events)
        await eventually(created_events, "ConfigMapCreated events")
        assert manager.metrics()["namespace-configmap"]["depth"] == 0
    finally:
        task.cancel()
        await asyncio.wait({task})
