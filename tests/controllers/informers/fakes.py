"""A scripted ``ListerWatcher``, objects, and a loop-driving wait for the informer tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from controllers.api.errors import Gone
from controllers.api.watch import WatchEvent, WatchEventType

# Safety net for awaits that must complete; a test that hits it has failed.
DEADLINE = 10.0


def obj(name: str, rv: int, *, namespace: str = "default", **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "resourceVersion": str(rv)}
    if namespace:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = dict(labels)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"v": str(rv)}}


def event(kind: str, o: dict[str, Any]) -> WatchEvent:
    return WatchEvent(WatchEventType(kind), o)


def bookmark(rv: int) -> WatchEvent:
    return WatchEvent(WatchEventType.BOOKMARK, {"metadata": {"resourceVersion": str(rv)}})


class FakeWatch:
    """A watch stream fed by the test: events, exceptions, or the end."""

    def __init__(self, resource_version: str) -> None:
        self.resource_version = resource_version
        self._queue: asyncio.Queue[WatchEvent | BaseException | None] = asyncio.Queue()
        self.closed = False

    def send(self, item: WatchEvent | BaseException | None) -> None:
        self._queue.put_nowait(item)

    def __aiter__(self) -> FakeWatch:
        return self

    async def __anext__(self) -> WatchEvent:
        if self.closed:
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is None:
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        return item

    async def aclose(self) -> None:
        self.closed = True


class FakeListerWatcher:
    """Lists return ``self.items`` at ``self.rv``; each watch is a new ``FakeWatch``.

    ``list_errors`` / ``watch_errors`` are raised, in order, by the next calls.
    """

    def __init__(self, items: list[dict[str, Any]] | None = None, rv: int = 1) -> None:
        self.items = list(items or [])
        self.rv = rv
        self.list_errors: list[BaseException] = []
        self.watch_errors: list[BaseException] = []
        self.list_calls = 0
        self.watches: list[FakeWatch] = []
        self.watch_rvs: list[str] = []

    async def list(self, *, resource_version: str = "") -> dict[str, Any]:
        self.list_calls += 1
        if self.list_errors:
            raise self.list_errors.pop(0)
        return {"items": [dict(o) for o in self.items],
                "metadata": {"resourceVersion": str(self.rv)}}

    async def watch(self, *, resource_version: str) -> FakeWatch:
        self.watch_rvs.append(resource_version)
        if self.watch_errors:
            raise self.watch_errors.pop(0)
        w = FakeWatch(resource_version)
        self.watches.append(w)
        return w

    @property
    def current(self) -> FakeWatch:
        return self.watches[-1]


def gone() -> Gone:
    return Gone("too old resource version", resource="configmaps")


async def eventually(predicate: Callable[[], bool], what: str = "condition") -> None:
    """Yield to the loop until ``predicate()`` (the deadline is only a safety net)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + DEADLINE
    while not predicate():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0)
