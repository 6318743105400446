"""``DeltaFIFO``: a queue of per-object change lists, between a reflector and its consumer.

The use case: a consumer (an informer) must see every change to an object,
in order, including deletions of objects that vanished while the watch was
down, and must process each object's changes together, never two batches of
one object at once. Producers (the reflector) call ``add``, ``update``,
``delete``, ``replace`` (after a list) and ``resync``; the consumer calls
``await pop(process)``, which hands over all the deltas accumulated for the
oldest queued key.

- ``replace(objs, rv)`` queues ``Replaced`` for every listed object and, for
  every object known (to ``known_objects``, the consumer's cache, or else to
  the queue) but missing from the list, ``Deleted`` with a
  ``DeletedFinalStateUnknown`` tombstone: it was deleted while we were not
  watching, and its final state is unknown.
- Two consecutive ``Deleted`` deltas for a key collapse into one (the one
  that is not a tombstone wins).
- ``resync`` queues ``Sync`` for every known object that has no pending deltas.
- ``has_synced`` is true once the first ``replace`` (or any add before it)
  has been popped in full.

Concurrency: no method but ``pop`` awaits, so on one event loop every call is
atomic with respect to other tasks. ``pop`` removes the key before
``process`` runs; producers may queue new deltas for it meanwhile, and they
come out in a later ``pop``.
"""

from __future__ import annotations

import asyncio
import builtins
import enum
import inspect
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from controllers.api.objects import Obj
from controllers.informers.store import KeyFunc, meta_namespace_key_func

__all__ = [
    "DeletedFinalStateUnknown",
    "Delta",
    "DeltaFIFO",
    "DeltaType",
    "FIFOClosedError",
    "KeyListerGetter",
    "deletion_handling_key_func",
]


class DeltaType(str, enum.Enum):
    """What happened to an object."""

    ADDED = "Added"
    UPDATED = "Updated"
    DELETED = "Deleted"
    REPLACED = "Replaced"
    SYNC = "Sync"


@dataclass(frozen=True, slots=True)
class DeletedFinalStateUnknown:
    """A tombstone: the object under ``key`` was deleted unseen; ``obj`` is its last known state."""

    key: str
    obj: Any


@dataclass(frozen=True, slots=True)
class Delta:
    """One change: its type and the object after it (a tombstone for some deletions)."""

    type: DeltaType
    object: Any


class KeyListerGetter(Protocol):
    """What a ``DeltaFIFO`` asks of the consumer's cache."""

    def list_keys(self) -> builtins.list[str]: ...

    def get_by_key(self, key: str) -> Obj | None: ...


class FIFOClosedError(Exception):
    """``pop`` on a closed, empty queue."""


def deletion_handling_key_func(obj: Any) -> str:
    """The key of an object, or the key a tombstone carries."""
    if isinstance(obj, DeletedFinalStateUnknown):
        return obj.key
    return meta_namespace_key_func(obj)


Process = Callable[[builtins.list[Delta], bool], "Awaitable[None] | None"]
"""Consumes one key's deltas; the flag says whether they belong to the initial list."""


class DeltaFIFO:
    """Keys in FIFO order, each with its pending deltas (see the module docstring)."""

    def __init__(
        self,
        *,
        key_func: KeyFunc = meta_namespace_key_func,
        known_objects: KeyListerGetter | None = None,
    ) -> None:
        self._key_func = key_func
        self.known_objects = known_objects
        # Invariant: a key is in _queue if and only if it is in _items, and every
        # list in _items is non-empty. Each key appears in _queue at most once.
        self._items: dict[str, builtins.list[Delta]] = {}
        self._queue: deque[str] = deque()
        self._populated = False
        self._initial_population_count = 0
        self._closed = False
        self._changed = asyncio.Event()

    def key_of(self, obj: Any) -> str:
        """The key of an object, a tombstone, or a ``Delta`` list's newest object."""
        if isinstance(obj, list) and obj and isinstance(obj[-1], Delta):
            obj = obj[-1].object
        if isinstance(obj, DeletedFinalStateUnknown):
            return obj.key
        return self._key_func(obj)

    # -- producers -------------------------------------------------------------------
    def add(self, obj: Obj) -> None:
        self._populated = True
        self._queue_action(DeltaType.ADDED, obj)

    def update(self, obj: Obj) -> None:
        self._populated = True
        self._queue_action(DeltaType.UPDATED, obj)

    def delete(self, obj: Obj) -> None:
        """Queue ``Deleted``, unless the object is known to nobody (then nothing)."""
        key = self.key_of(obj)
        self._populated = True
        if self.known_objects is not None:
            if self.known_objects.get_by_key(key) is None and key not in self._items:
                return
        else:
            deltas = self._items.get(key)
            if deltas is not None and deltas[-1].type == DeltaType.DELETED:
                return
        self._queue_action(DeltaType.DELETED, obj)

    def replace(self, objs: Iterable[Obj], resource_version: str) -> None:
        """Queue ``Replaced`` for each of ``objs`` and tombstones for the known ones missing."""
        listed: set[str] = set()
        count = 0
        for obj in objs:
            key = self.key_of(obj)
            listed.add(key)
            self._queue_action(DeltaType.REPLACED, obj)
            count += 1
        if self.known_objects is not None:
            for key in self.known_objects.list_keys():
                if key in listed:
                    continue
                old = self.known_objects.get_by_key(key)
                self._queue_action(DeltaType.DELETED, DeletedFinalStateUnknown(key, old))
                count += 1
        else:
            for key in list(self._queue):
                if key in listed:
                    continue
                deltas = self._items[key]
                last = deltas[-1]
                if last.type == DeltaType.DELETED:
                    continue
                self._queue_action(DeltaType.DELETED, DeletedFinalStateUnknown(key, last.object))
                count += 1
        if not self._populated:
            self._populated = True
            self._initial_population_count = count

    def resync(self) -> None:
        """Queue ``Sync`` for each known object with no pending deltas."""
        if self.known_objects is None:
            return
        for key in self.known_objects.list_keys():
            if key in self._items:
                continue
            obj = self.known_objects.get_by_key(key)
            if obj is not None:
                self._queue_action(DeltaType.SYNC, obj)

    def close(self) -> None:
        """Wake every ``pop``; once empty, ``pop`` raises ``FIFOClosedError``."""
        self._closed = True
        self._changed.set()

    def _queue_action(self, action: DeltaType, obj: Any) -> None:
        key = self.key_of(obj)
        deltas = self._items.get(key)
        new = [*deltas, Delta(action, obj)] if deltas else [Delta(action, obj)]
        new = _dedup_deltas(new)
        if deltas is None:
            self._queue.append(key)
        self._items[key] = new
        self._changed.set()

    # -- consumer --------------------------------------------------------------------
    async def pop(self, process: Process) -> builtins.list[Delta]:
        """Wait for a key, remove it and run ``process(deltas, is_in_initial_list)`` on its deltas.

        An error from ``process`` propagates; the deltas are not queued again.

        Raises:
            FIFOClosedError: the queue was closed and is empty.
        """
        while not self._queue:
            if self._closed:
                raise FIFOClosedError("DeltaFIFO: manipulating with closed queue")
            self._changed.clear()
            await self._changed.wait()
        key = self._queue.popleft()
        deltas = self._items.pop(key)
        is_in_initial_list = not self.has_synced()
        try:
            result = process(deltas, is_in_initial_list)
            if inspect.isawaitable(result):
                await result
        finally:
            if self._initial_population_count > 0:
                self._initial_population_count -= 1
        return deltas

    # -- reads -----------------------------------------------------------------------
    def has_synced(self) -> bool:
        """Whether the first batch (the first ``replace``, or adds before it) has been popped."""
        return self._populated and self._initial_population_count == 0

    def list_keys(self) -> builtins.list[str]:
        """The queued keys, in queue order."""
        return list(self._queue)

    def list(self) -> builtins.list[Any]:
        """The newest pending object of each queued key, in queue order."""
        return [self._items[k][-1].object for k in self._queue]

    def get_by_key(self, key: str) -> builtins.list[Delta] | None:
        """A copy of the pending deltas of ``key``, or None."""
        deltas = self._items.get(key)
        return list(deltas) if deltas is not None else None

    def get(self, obj: Any) -> builtins.list[Delta] | None:
        return self.get_by_key(self.key_of(obj))

    def is_closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._queue)


def _dedup_deltas(deltas: builtins.list[Delta]) -> builtins.list[Delta]:
    """Collapse the last two deltas when both are deletions."""
    if len(deltas) < 2:
        return deltas
    a, b = deltas[-2], deltas[-1]
    if a.type != DeltaType.DELETED or b.type != DeltaType.DELETED:
        return deltas
    # Keep the one that carries the object's real state.
    keep = a if isinstance(b.object, DeletedFinalStateUnknown) else b
    return [*deltas[:-2], keep]
