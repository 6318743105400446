"""``Reflector``: keeps a ``Store`` in step with a resource by listing, then watching.

The loop (``run``):

1. List (a consistent read at the current revision) and ``replace`` the
   store's contents with the items, remembering the list's resourceVersion.
   The new list must not be older than anything already seen (a lagging
   endpoint could serve one): an older list is an error, retried with backoff.
2. Watch from that resourceVersion: ``ADDED`` -> ``store.add``,
   ``MODIFIED`` -> ``store.update``, ``DELETED`` -> ``store.delete``,
   ``BOOKMARK`` -> nothing but a newer resourceVersion. Every event moves
   ``last_sync_resource_version()`` forward.
3. A watch that ends cleanly is reopened from the last resourceVersion.
   ``Gone`` (the version was compacted away) goes back to 1 at once. Any other
   error waits a backoff (exponential, with jitter, on the injected clock and
   random source) and then watches again from the last resourceVersion, or
   lists again if no list has succeeded yet.

An event whose object has no key (no ``metadata.name``) is logged and skipped.
The backoff resets after a successful list or a watch event.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from controllers.api.client import ResourceClient
from controllers.api.errors import Gone
from controllers.api.objects import Obj
from controllers.api.selectors import FieldSelector, LabelSelector
from controllers.api.watch import WatchEvent, WatchEventType
from controllers.clock import Clock
from controllers.informers.store import KeyFuncError

__all__ = ["Backoff", "ListWatch", "ListerWatcher", "Reflector", "StaleListError", "SyncTarget",
           "WatchStream"]

log = logging.getLogger(__name__)


class WatchStream(Protocol):
    """An open watch: events until it ends; ``aclose`` stops it."""

    def __aiter__(self) -> AsyncIterator[WatchEvent]: ...

    async def aclose(self) -> None: ...


class SyncTarget(Protocol):
    """The writes a reflector makes: a ``Store``, or a ``DeltaFIFO``."""

    def add(self, obj: Obj) -> None: ...

    def update(self, obj: Obj) -> None: ...

    def delete(self, obj: Obj) -> None: ...

    def replace(self, objs: list[Obj], resource_version: str) -> None: ...


class ListerWatcher(Protocol):
    """Lists and watches one resource (``ListWatch`` over a ``ResourceClient``, or a fake)."""

    async def list(self, *, resource_version: str = "") -> Obj:
        """A list object: ``items`` and ``metadata.resourceVersion``."""
        ...

    async def watch(self, *, resource_version: str) -> WatchStream:
        """Events after ``resource_version``; raises ``Gone`` if it was compacted away."""
        ...


class ListWatch:
    """A ``ListerWatcher`` for a resource client, a namespace and selectors."""

    def __init__(
        self,
        client: ResourceClient,
        namespace: str | None = None,
        *,
        label_selector: str | LabelSelector | None = None,
        field_selector: str | FieldSelector | None = None,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector

    async def list(self, *, resource_version: str = "") -> Obj:
        return await self.client.list(
            self.namespace, label_selector=self.label_selector,
            field_selector=self.field_selector, resource_version=resource_version)

    async def watch(self, *, resource_version: str) -> WatchStream:
        return await self.client.watch(
            self.namespace, label_selector=self.label_selector,
            field_selector=self.field_selector, resource_version=resource_version)


class StaleListError(Exception):
    """A list returned a resourceVersion older than one already seen."""


class Backoff:
    """Exponential delays with jitter: ``initial * factor**n``, capped, times ``1 + jitter*u``."""

    def __init__(
        self,
        rng: random.Random,
        *,
        initial: float = 0.8,
        factor: float = 2.0,
        cap: float = 30.0,
        jitter: float = 1.0,
    ) -> None:
        self.rng = rng
        self.initial = initial
        self.factor = factor
        self.cap = cap
        self.jitter = jitter
        self._steps = 0

    def next_delay(self) -> float:
        """The next delay to wait; each call grows the base delay until ``cap``."""
        base = min(self.cap, self.initial * self.factor ** self._steps)
        if base < self.cap:
            self._steps += 1
        return base * (1.0 + self.jitter * self.rng.random())

    def reset(self) -> None:
        self._steps = 0


class Reflector:
    """Lists and watches through a ``ListerWatcher`` into a ``Store`` (see the module docstring)."""

    def __init__(
        self,
        lister_watcher: ListerWatcher,
        store: SyncTarget,
        *,
        clock: Clock,
        rng: random.Random | None = None,
        backoff: Backoff | None = None,
        name: str = "reflector",
        on_resource_version: Callable[[str], None] | None = None,
    ) -> None:
        self.lister_watcher = lister_watcher
        self.store = store
        self.clock = clock
        self.backoff = backoff if backoff is not None else Backoff(
            rng if rng is not None else random.Random())
        self.name = name
        self._on_rv = on_resource_version
        self._last_rv = ""
        self._listed = False
        self.lists = 0
        """How many lists have succeeded (for tests and metrics)."""
        self.errors = 0
        """How many errors have been backed off from."""

    def last_sync_resource_version(self) -> str:
        """The resourceVersion of the last list, event or bookmark applied ("" before any)."""
        return self._last_rv

    async def run(self) -> None:
        """List and watch until cancelled."""
        while True:
            try:
                if not self._listed:
                    await self._list()
                await self._watch()
            except asyncio.CancelledError:
                raise
            except Gone as e:
                log.info("%s: %s; listing again", self.name, e)
                self._listed = False
            except Exception as e:  # noqa: BLE001 - every other failure is retried
                self.errors += 1
                delay = self.backoff.next_delay()
                log.warning("%s: %s: %s; retrying in %.2fs", self.name,
                            type(e).__name__, e, delay)
                await self.clock.sleep(delay)

    async def _list(self) -> None:
        listed = await self.lister_watcher.list(resource_version="")
        rv = str(listed.get("metadata", {}).get("resourceVersion", ""))
        if self._last_rv and _rv_int(rv) < _rv_int(self._last_rv):
            raise StaleListError(f"list at resourceVersion {rv} is older than the "
                                 f"last seen {self._last_rv}")
        self.store.replace(list(listed.get("items", [])), rv)
        self._listed = True
        self.lists += 1
        self.backoff.reset()
        self._set_rv(rv)

    async def _watch(self) -> None:
        stream = await self.lister_watcher.watch(resource_version=self._last_rv)
        try:
            async for event in stream:
                self._apply(event)
        finally:
            await stream.aclose()

    def _apply(self, event: WatchEvent) -> None:
        kind = event.type
        try:
            if kind == WatchEventType.ADDED:
                self.store.add(event.object)
            elif kind == WatchEventType.MODIFIED:
                self.store.update(event.object)
            elif kind == WatchEventType.DELETED:
                self.store.delete(event.object)
            elif kind != WatchEventType.BOOKMARK:
                raise ValueError(f"unexpected watch event type {kind!r}")
        except KeyFuncError as e:
            # Retrying cannot help an object without a key: skip it.
            log.error("%s: dropping a %s event: %s", self.name, kind.value, e)
        self.backoff.reset()
        rv = event.resource_version
        if rv:
            self._set_rv(rv)

    def _set_rv(self, rv: str) -> None:
        self._last_rv = rv
        if self._on_rv is not None:
            self._on_rv(rv)


def _rv_int(rv: str) -> int:
    try:
        return int(rv)
    except ValueError:
        return 0
