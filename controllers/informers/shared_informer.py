"""``SharedInformer``: one reflector, one ``DeltaFIFO`` and one cache, shared by many handlers.

The contract, as client-go's:

- Eventual consistency: the cache (``indexer``, ``lister()``) converges on
  the store's state; it may lag. A controller that has just written can
  ``await wait_for_resource_version(rv)`` before trusting the cache.
- The cache is updated before handlers are told. Each handler sees each
  object's changes in order: ``on_add(obj, is_in_initial_list)``, then
  ``on_update(old, new)``s, then ``on_delete(obj)``, where ``obj`` may be a
  ``DeletedFinalStateUnknown`` tombstone when the deletion happened while
  the watch was down. Notifications may be coalesced away only by a relist.
- Each handler has its own unbounded buffer and task: a slow handler delays
  only itself. Handlers may be plain functions or coroutines; they should
  return promptly. An exception in a handler is logged and the handler
  carries on with the next notification.
- A handler added with ``resync_period`` gets ``on_update(obj, obj)`` for
  every cached object about that often (checked on the injected clock).
- A handler added after the informer started gets ``on_add(obj, True)`` for
  every object already cached, before anything newer.
- Objects handed out (to handlers and by listers) are shared and must never
  be mutated. With ``freeze_objects=True`` (default: the environment
  variable ``STEERSMAN_INFORMER_FREEZE=1``) they are read-only views, so a
  mutation raises ``TypeError``; use ``store.thaw`` for a mutable copy.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import random
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from controllers.clock import Clock, RealClock
from controllers.informers.fifo import (
    DeletedFinalStateUnknown,
    Delta,
    DeltaFIFO,
    DeltaType,
    FIFOClosedError,
)
from controllers.informers.indexer import Indexer, IndexFunc
from controllers.informers.lister import Lister
from controllers.informers.reflector import ListerWatcher, Reflector
from controllers.informers.store import (
    freeze,
    meta_namespace_key_func,
    object_resource_version,
)

__all__ = [
    "FREEZE_ENV",
    "HandlerRegistration",
    "ResourceEventHandler",
    "ResourceEventHandlerFuncs",
    "SharedInformer",
    "wait_for_cache_sync",
]

log = logging.getLogger(__name__)

FREEZE_ENV = "STEERSMAN_INFORMER_FREEZE"
"""Set to ``1`` to make informers hand out read-only objects by default."""


class ResourceEventHandler(Protocol):
    """Receives an informer's notifications; each method may return an awaitable."""

    def on_add(self, obj: Any, is_in_initial_list: bool) -> Awaitable[None] | None: ...

    def on_update(self, old: Any, new: Any) -> Awaitable[None] | None: ...

    def on_delete(self, obj: Any) -> Awaitable[None] | None: ...


@dataclass(frozen=True, slots=True)
class ResourceEventHandlerFuncs:
    """A handler from optional callables; a missing one ignores its notifications."""

    add: Callable[[Any, bool], Awaitable[None] | None] | None = None
    update: Callable[[Any, Any], Awaitable[None] | None] | None = None
    delete: Callable[[Any], Awaitable[None] | None] | None = None

    def on_add(self, obj: Any, is_in_initial_list: bool) -> Awaitable[None] | None:
        return self.add(obj, is_in_initial_list) if self.add is not None else None

    def on_update(self, old: Any, new: Any) -> Awaitable[None] | None:
        return self.update(old, new) if self.update is not None else None

    def on_delete(self, obj: Any) -> Awaitable[None] | None:
        return self.delete(obj) if self.delete is not None else None


class HandlerRegistration:
    """One handler's buffer and task; also the handle ``add_event_handler`` returns."""

    def __init__(self, handler: ResourceEventHandler, resync_period: float | None,
                 now: float) -> None:
        self.handler = handler
        self.resync_period = resync_period if resync_period and resync_period > 0 else None
        self.next_resync = now + self.resync_period if self.resync_period else float("inf")
        self.resyncing = False
        self._buffer: deque[tuple[str, Any, Any]] = deque()
        self._wake = asyncio.Event()
        self._busy = False
        self.task: asyncio.Task[None] | None = None

    def add(self, kind: str, a: Any, b: Any) -> None:
        self._buffer.append((kind, a, b))
        self._wake.set()

    def pending(self) -> int:
        """Notifications not yet handled (including one being handled)."""
        return len(self._buffer) + (1 if self._busy else 0)

    async def run(self) -> None:
        while True:
            while not self._buffer:
                self._wake.clear()
                await self._wake.wait()
            kind, a, b = self._buffer.popleft()
            self._busy = True
            try:
                if kind == "add":
                    result = self.handler.on_add(a, bool(b))
                elif kind == "update":
                    result = self.handler.on_update(a, b)
                else:
                    result = self.handler.on_delete(a)
                if inspect.isawaitable(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad notification must not stop the handler
                log.exception("event handler %r failed on %s", self.handler, kind)
            finally:
                self._busy = False


class SharedInformer:
    """A cache of one resource with event handlers (see the module docstring)."""

    def __init__(
        self,
        lister_watcher: ListerWatcher,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        indexers: Mapping[str, IndexFunc] | None = None,
        freeze_objects: bool | None = None,
        resource: str = "",
    ) -> None:
        self.clock: Clock = clock if clock is not None else RealClock()
        self.resource = resource
        self.freeze_objects = (os.environ.get(FREEZE_ENV) == "1" if freeze_objects is None
                               else freeze_objects)
        self.indexer = Indexer(meta_namespace_key_func, indexers)
        self.fifo = DeltaFIFO(known_objects=self.indexer)
        self.reflector = Reflector(lister_watcher, self.fifo, clock=self.clock, rng=rng,
                                   name=f"reflector {resource}".strip(),
                                   on_resource_version=self._on_resource_version)
        self._listeners: list[HandlerRegistration] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._run_task: asyncio.Task[None] | None = None
        self._started = False
        self._stopped = asyncio.Event()
        self._progress = asyncio.Event()
        self._resync_wake = asyncio.Event()
        self._processing = False

    # -- handlers --------------------------------------------------------------------
    def add_event_handler(
        self, handler: ResourceEventHandler, resync_period: float | None = None
    ) -> HandlerRegistration:
        """Register ``handler``; returns a handle for ``remove_event_handler``."""
        listener = HandlerRegistration(handler, resync_period, self.clock.now())
        self._listeners.append(listener)
        if self._started:
            for obj in self.indexer.list():
                listener.add("add", obj, True)
            listener.task = asyncio.create_task(listener.run())
        self._resync_wake.set()
        return listener

    def remove_event_handler(self, registration: HandlerRegistration) -> None:
        """Stop delivering to a handler (its buffered notifications are dropped)."""
        if registration in self._listeners:
            self._listeners.remove(registration)
            if registration.task is not None:
                registration.task.cancel()

    # -- reads -----------------------------------------------------------------------
    def has_synced(self) -> bool:
        """Whether the first list has been fully applied to the cache."""
        return self.fifo.has_synced()

    def lister(self) -> Lister:
        return Lister(self.indexer, self.resource)

    def last_sync_resource_version(self) -> str:
        return self.reflector.last_sync_resource_version()

    def handlers_idle(self) -> bool:
        """Whether every handler has handled every notification sent so far."""
        return all(listener.pending() == 0 for listener in self._listeners)

    async def wait_for_cache_sync(self) -> None:
        """Return once ``has_synced()``."""
        while not self.has_synced():
            self._progress.clear()
            await self._progress.wait()

    async def wait_for_resource_version(self, resource_version: str | int) -> None:
        """Return once the cache reflects every change up to ``resource_version``.

        That is: the reflector has seen that version (an event, a list or a
        bookmark at or after it) and every delta queued so far has reached the
        cache. Handlers may still be busy with the notifications.
        """
        target = int(resource_version)
        while not self._caught_up(target):
            self._progress.clear()
            await self._progress.wait()

    def _caught_up(self, target: int) -> bool:
        rv = self.reflector.last_sync_resource_version()
        return (rv != "" and int(rv) >= target and len(self.fifo) == 0
                and not self._processing)

    # -- running ---------------------------------------------------------------------
    def is_started(self) -> bool:
        """Whether ``start()`` or ``run()`` has been called."""
        return self._run_task is not None or self._started

    def start(self) -> asyncio.Task[None]:
        """Run in a new task (idempotent); returns it."""
        if self._run_task is None:
            self._run_task = asyncio.create_task(self.run())
        return self._run_task

    async def run(self) -> None:
        """List, watch and deliver until ``stop()`` or cancellation.

        Raises:
            RuntimeError: the informer already ran.
        """
        if self._started:
            raise RuntimeError("a SharedInformer runs only once")
        self._started = True
        for listener in self._listeners:
            listener.task = asyncio.create_task(listener.run())
        self._tasks = [asyncio.create_task(self.reflector.run()),
                       asyncio.create_task(self._process_loop()),
                       asyncio.create_task(self._resync_loop())]
        try:
            await self._stopped.wait()
        finally:
            tasks = [*self._tasks, *(l.task for l in self._listeners if l.task is not None)]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.fifo.close()

    async def stop(self) -> None:
        """Stop every task and wait for them."""
        self._stopped.set()
        if self._run_task is not None:
            await asyncio.gather(self._run_task, return_exceptions=True)

    async def _process_loop(self) -> None:
        while True:
            try:
                await self.fifo.pop(self._handle_deltas)
            except FIFOClosedError:
                return
            except Exception:  # one bad object must not stop the informer
                log.exception("%s: processing deltas failed", self.reflector.name)
            self._progress.set()

    def _handle_deltas(self, deltas: list[Delta], is_in_initial_list: bool) -> None:
        # Runs without awaiting: the cache update and the notifications are atomic.
        self._processing = True
        try:
            for delta in deltas:
                self._handle_delta(delta, is_in_initial_list)
        finally:
            self._processing = False

    def _handle_delta(self, delta: Delta, is_in_initial_list: bool) -> None:
        obj = delta.object
        if delta.type == DeltaType.DELETED:
            if isinstance(obj, DeletedFinalStateUnknown):
                self.indexer.delete_by_key(obj.key)
            else:
                obj = freeze(obj) if self.freeze_objects else obj
                self.indexer.delete(obj)
            self._distribute("delete", obj, None, sync=False)
            return
        if self.freeze_objects:
            obj = freeze(obj)
        old = self.indexer.get(obj)
        if old is None:
            self.indexer.add(obj)
            self._distribute("add", obj, is_in_initial_list, sync=False)
            return
        self.indexer.update(obj)
        same = object_resource_version(old) == object_resource_version(obj)
        sync = delta.type == DeltaType.SYNC or (delta.type == DeltaType.REPLACED and same)
        self._distribute("update", old, obj, sync=sync)

    def _distribute(self, kind: str, a: Any, b: Any, *, sync: bool) -> None:
        for listener in self._listeners:
            if not sync or listener.resyncing:
                listener.add(kind, a, b)

    def _on_resource_version(self, rv: str) -> None:
        self._progress.set()

    async def _resync_loop(self) -> None:
        while True:
            due = [l.next_resync for l in self._listeners if l.resync_period is not None]
            self._resync_wake.clear()
            if due:
                timer = self.clock.call_at(min(due), self._resync_wake.set)
                try:
                    await self._resync_wake.wait()
                finally:
                    timer.cancel()
            else:
                await self._resync_wake.wait()
            self._maybe_resync()

    def _maybe_resync(self) -> None:
        now = self.clock.now()
        due = [listener for listener in self._listeners
               if listener.resync_period is not None and listener.next_resync <= now]
        if not due:
            # Woken by a new handler: keep the flags of a resync still being delivered.
            return
        for listener in self._listeners:
            listener.resyncing = listener in due
            if listener.resync_period is not None and listener.resyncing:
                listener.next_resync = now + listener.resync_period
        self.fifo.resync()


async def wait_for_cache_sync(*informers: SharedInformer) -> None:
    """Return once every informer has synced (wrap in ``asyncio.wait_for`` for a deadline)."""
    for informer in informers:
        await informer.wait_for_cache_sync()
