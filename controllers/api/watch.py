"""Watching a resource: the store's events on its key prefix, as object events.

``ResourceWatch`` turns the store's watch over a resource's prefix into
``WatchEvent``s, in revision order, each at most once:

- ``ADDED`` / ``MODIFIED`` carry the object as written (``resourceVersion``
  is the revision of the write);
- ``DELETED`` carries the object's last state, with ``resourceVersion`` set
  to the revision of the deletion (the store hands over the previous value);
- ``BOOKMARK`` carries only ``apiVersion``, ``kind`` and
  ``metadata.resourceVersion``: every change up to that revision has been
  delivered. Bookmarks come from the store's progress notifications (asked
  for when ``allow_bookmarks``), which it sends when the watch is idle.

Selectors, like Kubernetes' watch cache: an event is judged on the object
before and after it. Matching before and after: ``MODIFIED``; only after:
``ADDED``; only before: ``DELETED`` carrying the object's previous state
with the new ``resourceVersion`` (the object left the selection, it was not
deleted); neither: dropped.

Starting point (``resource_version``): ``"N"`` streams every change after
revision N; ``""`` or ``"0"`` first sends a synthetic ``ADDED`` for every
object that exists now (matching the selectors), then every later change.
A resource version compacted away raises ``Gone``, at once or, if
compaction overtakes a slow watcher, after its buffered events; list again
and watch from the list's resourceVersion.

The store watch is in place when ``ResourceClient.watch`` returns; close it
with ``aclose()`` or ``async with``.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from controllers.api.kinds import Kind
from kvstore.kv import KV, close_stream
from controllers.api.listing import gone, list_objects
from controllers.api.objects import Obj, decode, labels_of
from controllers.api.selectors import FieldSelector, LabelSelector
from kvstore.errors import Compacted
from kvstore.mvcc.types import Event, EventType, WatchResponse

__all__ = ["ResourceWatch", "WatchEvent", "WatchEventType", "start_watch"]


class WatchEventType(str, enum.Enum):
    """The kinds of watch event (compare with the plain strings too: ``"ADDED"``)."""

    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    BOOKMARK = "BOOKMARK"


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One change to one object, or a bookmark."""

    type: WatchEventType
    object: Obj

    @property
    def resource_version(self) -> str:
        return str((self.object.get("metadata") or {}).get("resourceVersion", ""))


class ResourceWatch:
    """An async iterator of ``WatchEvent``s (see the module docstring)."""

    def __init__(
        self,
        kind: Kind,
        stream: AsyncIterator[WatchResponse],
        *,
        label_selector: LabelSelector,
        field_selector: FieldSelector,
        initial: list[WatchEvent],
    ) -> None:
        self.kind = kind
        self._stream = stream
        self._labels = label_selector
        self._fields = field_selector
        self._pending: deque[WatchEvent] = deque(initial)
        self._closed = False
        # Raised once the events before it have been handed out.
        self._error: Exception | None = None

    def __aiter__(self) -> ResourceWatch:
        return self

    async def __anext__(self) -> WatchEvent:
        while not self._pending:
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            if self._closed:
                raise StopAsyncIteration
            try:
                resp = await self._stream.__anext__()
            except StopAsyncIteration:
                self._closed = True
                raise
            except Compacted as e:
                await self.aclose()
                raise gone(self.kind, e) from e
            self._translate(resp)
        return self._pending.popleft()

    async def aclose(self) -> None:
        """Cancel the store watch; iteration ends after events already buffered."""
        if not self._closed:
            self._closed = True
            await close_stream(self._stream)

    async def __aenter__(self) -> ResourceWatch:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _translate(self, resp: WatchResponse) -> None:
        if resp.canceled:
            for ev in resp.events:
                self._translate_event(ev)
            self._closed = True
            if resp.compact_revision:
                e = Compacted(resp.header_revision, resp.compact_revision)
                self._error = gone(self.kind, e)
            return
        if not resp.events:
            self._pending.append(WatchEvent(WatchEventType.BOOKMARK, {
                "apiVersion": self.kind.api_version,
                "kind": self.kind.kind,
                "metadata": {"resourceVersion": str(resp.header_revision)},
            }))
            return
        for ev in resp.events:
            self._translate_event(ev)

    def _matches(self, obj: Obj) -> bool:
        return self._labels.matches(labels_of(obj)) and self._fields.matches(obj)

    def _translate_event(self, ev: Event) -> None:
        old = decode(ev.prev_kv) if ev.prev_kv is not None else None
        old_ok = old is not None and self._matches(old)
        if ev.type == EventType.DELETE:
            if old is None:
                old = self._skeleton(ev.kv.key)
                old_ok = self._labels.is_empty() and self._fields.matches(old)
            if old_ok:
                old["metadata"]["resourceVersion"] = str(ev.kv.mod_revision)
                self._pending.append(WatchEvent(WatchEventType.DELETED, old))
            return
        new = decode(ev.kv)
        new_ok = self._matches(new)
        if new_ok:
            kind = WatchEventType.MODIFIED if old_ok else WatchEventType.ADDED
            self._pending.append(WatchEvent(kind, new))
        elif old_ok and old is not None:
            old["metadata"]["resourceVersion"] = str(ev.kv.mod_revision)
            self._pending.append(WatchEvent(WatchEventType.DELETED, old))

    def _skeleton(self, key: bytes) -> Obj:
        """What is known of a deleted object whose last state the store no longer has."""
        rest = key.decode("utf-8")[len(self.kind.storage_prefix):]
        ns, _, name = rest.rpartition("/")
        metadata = {"name": name}
        if ns:
            metadata["namespace"] = ns
        return {"apiVersion": self.kind.api_version, "kind": self.kind.kind, "metadata": metadata}


async def start_watch(
    kv: KV,
    kind: Kind,
    namespace: str | None,
    *,
    label_selector: LabelSelector,
    field_selector: FieldSelector,
    resource_version: int,
    allow_bookmarks: bool,
) -> ResourceWatch:
    """Open the store watch (see the module docstring); ``resource_version`` 0: from now, with ADDED.

    Raises:
        Gone: ``resource_version`` has been compacted away.
    """
    initial: list[WatchEvent] = []
    if resource_version == 0:
        listed = await list_objects(kv, kind, namespace, label_selector=label_selector,
                                    field_selector=field_selector)
        initial = [WatchEvent(WatchEventType.ADDED, obj) for obj in listed["items"]]
        resource_version = int(listed["metadata"]["resourceVersion"])
    try:
        stream = await kv.watch(kind.list_prefix(namespace), prefix=True,
                                start_revision=resource_version + 1, prev_kv=True,
                                progress_notify=allow_bookmarks)
    except Compacted as e:
        raise gone(kind, e) from e
    return ResourceWatch(kind, stream, label_selector=label_selector,
                         field_selector=field_selector, initial=initial)
