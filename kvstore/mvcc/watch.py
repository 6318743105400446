"""The watch hub: every matching event exactly once, in revision order, never blocking a writer.

Guarantees, for each watcher:

- it receives every event on its key or range from its start revision on,
  exactly once, in (revision, sub-revision) order, minus the event types its
  filters drop; a response always holds whole revisions;
- ``header_revision`` of a response says that every matching event up to it
  has now been delivered, so an empty response is a progress notification;
- a writer never waits: each watcher buffers at most ``buffer_events``
  events (a single revision may exceed it). When a write would overflow it,
  the watcher becomes *unsynced* and stops receiving live events; once its
  consumer drains the buffer, ``poll`` refills it from the store's change log
  until it is caught up, then it is *synced* again (etcd's two watcher groups);
- ``watch(start_revision=r)`` with ``r`` at or below the compact revision
  raises ``Compacted`` at once (etcd answers with a canceled response
  instead). If compaction later removes history an unsynced watcher still
  needs, it ends: after its buffered events, its last response has
  ``canceled=True`` and ``compact_revision`` set, as in etcd.

Delivery is pull-based with an edge-triggered signal, so an asyncio layer
wraps it with one ``asyncio.Event`` per watcher:

1. ``watch_id = hub.watch(..., on_ready=lambda wid: event.set())``;
2. loop: ``while (resp := hub.poll(watch_id)) is not None: handle(resp)``,
   then ``await event.wait(); event.clear()``.

``on_ready(watch_id)`` is called when a watcher that had nothing to deliver
gets something (an event, a progress notification, its cancellation). It runs
inside the write that caused it, so it must only signal: never read or write
the store from it. Start by polling: a watcher replaying history has events
before any signal.

Progress: ``request_progress()`` asks every (or one) watcher to report its
revision; ``tick_progress()``, called by the driver on a timer, sends one to
each ``progress_notify`` watcher that received nothing since the last tick.
Watchers are local to a member and are not part of the replicated state.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

from kvstore.errors import Compacted, InvalidRequest
from kvstore.mvcc.keys import ALL_KEYS, in_range, key_range
from kvstore.mvcc.types import Event, EventType, KeyValue, WatchFilter, WatchResponse

__all__ = ["EventSource", "OnReady", "WatchHub"]

OnReady = Callable[[int], None]
"""Called with a watch id when that watcher has something to deliver."""


class EventSource(Protocol):
    """What the hub reads from the store."""

    @property
    def revision(self) -> int:
        """The current revision."""
        ...

    @property
    def compact_revision(self) -> int:
        """The compact revision."""
        ...

    def changes(self, from_revision: int) -> Iterator[tuple[int, list[KeyValue]]]:
        """The writes of each revision from ``from_revision`` on, in order."""
        ...

    def previous(self, kv: KeyValue) -> KeyValue | None:
        """The live version of ``kv.key`` just before ``kv``."""
        ...


class _Watcher:
    __slots__ = (
        "id",
        "start",
        "end",
        "prev_kv",
        "no_put",
        "no_delete",
        "progress_notify",
        "on_ready",
        "synced",
        "min_rev",
        "next_rev",
        "buffer",
        "buffered",
        "signaled",
        "progress_due",
        "compacted",
        "sent_since_tick",
    )

    def __init__(
        self,
        watch_id: int,
        start: bytes,
        end: bytes | None,
        prev_kv: bool,
        filters: Iterable[WatchFilter],
        progress_notify: bool,
        on_ready: OnReady | None,
    ) -> None:
        filters = tuple(WatchFilter(f) for f in filters)
        self.id = watch_id
        self.start = start
        self.end = end
        self.prev_kv = prev_kv
        self.no_put = WatchFilter.NOPUT in filters
        self.no_delete = WatchFilter.NODELETE in filters
        self.progress_notify = progress_notify
        self.on_ready = on_ready
        self.synced = False
        self.min_rev = 0  # synced: live events below this revision are skipped
        self.next_rev = 0  # unsynced: the next revision to read from the change log
        self.buffer: deque[tuple[int, list[Event]]] = deque()
        self.buffered = 0  # events in buffer
        self.signaled = False  # on_ready was called and poll has not yet returned None
        self.progress_due = False
        self.compacted = 0  # nonzero: compaction overtook this watcher
        self.sent_since_tick = False


class WatchHub:
    """All watchers of one member's store (see the module docstring)."""

    def __init__(self, source: EventSource, *, buffer_events: int = 1024) -> None:
        if buffer_events < 1:
            raise InvalidRequest(f"buffer_events must be positive, not {buffer_events}")
        self._source = source
        self._capacity = buffer_events
        self._next_id = 1
        self._watchers: dict[int, _Watcher] = {}
        # Synced watchers, by what they watch; unsynced ones wait for a poll.
        self._by_key: dict[bytes, dict[int, _Watcher]] = {}
        self._ranges: dict[int, _Watcher] = {}
        self._unsynced: dict[int, _Watcher] = {}
        self.active = 0
        """The number of synced watchers (the store skips ``notify`` when 0)."""

    def __len__(self) -> int:
        return len(self._watchers)

    def watch(
        self,
        key: bytes | str,
        range_end: bytes | str | None = None,
        *,
        prefix: bool = False,
        start_revision: int = 0,
        prev_kv: bool = False,
        filters: Iterable[WatchFilter] = (),
        progress_notify: bool = False,
        on_ready: OnReady | None = None,
    ) -> int:
        """Start watching a key or range and return the new watch id.

        ``start_revision`` 0 means "from the next revision"; an older one
        replays history first; a future one waits for it.

        Raises:
            Compacted: ``start_revision`` is at or below the compact revision.
            InvalidRequest: a negative start revision or bad key arguments.
        """
        start, end = key_range(key, range_end, prefix=prefix)
        if start_revision < 0:
            raise InvalidRequest(f"negative start revision {start_revision}")
        source = self._source
        if start_revision and start_revision <= source.compact_revision:
            raise Compacted(start_revision, source.compact_revision)
        w = _Watcher(self._next_id, start, end, prev_kv, filters, progress_notify, on_ready)
        self._next_id += 1
        self._watchers[w.id] = w
        current = source.revision
        if start_revision == 0 or start_revision > current:
            self._add_synced(w, start_revision or current + 1)
        else:
            w.next_rev = start_revision
            self._unsynced[w.id] = w
        return w.id

    def cancel(self, watch_id: int) -> bool:
        """Stop a watcher at once; False if there was none with this id."""
        w = self._watchers.pop(watch_id, None)
        if w is None:
            return False
        if w.synced:
            self._remove_synced(w)
        self._unsynced.pop(watch_id, None)
        return True

    def is_synced(self, watch_id: int) -> bool:
        """True if the watcher receives live events (it is caught up)."""
        return self._get(watch_id).synced

    def has_pending(self, watch_id: int) -> bool:
        """True if ``poll`` may return something now."""
        w = self._get(watch_id)
        return bool(w.buffer) or not w.synced or w.progress_due

    def poll(self, watch_id: int, max_events: int = 1000) -> WatchResponse | None:
        """The next response for a watcher, or ``None`` if it has nothing to deliver.

        A response holds whole revisions and at most ``max_events`` events,
        unless a single revision holds more. After a response with
        ``canceled=True`` the watch id is gone.

        Raises:
            InvalidRequest: no watcher has this id.
        """
        w = self._get(watch_id)
        if not w.buffer and not w.synced and not w.compacted:
            self._catch_up(w)
        if w.buffer:
            return self._drain(w, max_events)
        if w.compacted:
            del self._watchers[watch_id]
            return WatchResponse(watch_id, (), self._source.revision, w.compacted, True)
        if w.progress_due and w.synced:
            w.progress_due = False
            w.sent_since_tick = True
            return WatchResponse(watch_id, (), self._source.revision)
        w.signaled = False
        return None

    def request_progress(self, watch_id: int | None = None) -> None:
        """Ask one watcher (or all) to report the revision it has seen up to."""
        targets = list(self._watchers.values()) if watch_id is None else [self._get(watch_id)]
        for w in targets:
            w.progress_due = True
            self._signal(w)

    def tick_progress(self) -> None:
        """Queue a progress notification for idle ``progress_notify`` watchers."""
        for w in list(self._watchers.values()):
            if w.progress_notify and w.synced and not w.buffer and not w.sent_since_tick:
                w.progress_due = True
                self._signal(w)
            w.sent_since_tick = False

    # -- store hooks -----------------------------------------------------

    def notify(self, revision: int, kvs: Sequence[KeyValue], prevs: Sequence[KeyValue | None]) -> None:
        """Deliver the writes of one committed revision to synced watchers."""
        by_key = self._by_key
        ranges = self._ranges.values()
        touched: dict[int, tuple[_Watcher, list[Event]]] = {}
        for kv, prev in zip(kvs, prevs):
            plain: Event | None = None
            full: Event | None = None
            keyed = by_key.get(kv.key)
            for w in (*keyed.values(), *ranges) if keyed else ranges:
                if w.end is not None and (
                    kv.key < w.start or (w.end != ALL_KEYS and kv.key >= w.end)
                ):
                    continue
                if revision < w.min_rev or (w.no_delete if not kv.version else w.no_put):
                    continue
                if w.prev_kv:
                    if full is None:
                        full = Event(EventType.PUT if kv.version else EventType.DELETE, kv, prev)
                    event = full
                else:
                    if plain is None:
                        plain = Event(EventType.PUT if kv.version else EventType.DELETE, kv)
                    event = plain
                entry = touched.get(w.id)
                if entry is None:
                    touched[w.id] = (w, [event])
                else:
                    entry[1].append(event)
        for w, events in touched.values():
            if w.buffered and w.buffered + len(events) > self._capacity:
                # Full: fall behind, and catch up from the change log later.
                self._remove_synced(w)
                w.next_rev = revision
                self._unsynced[w.id] = w
            else:
                w.buffer.append((revision, events))
                w.buffered += len(events)
                self._signal(w)

    def on_compact(self, compact_revision: int) -> None:
        """End the unsynced watchers whose next revision compaction removed."""
        for w in list(self._unsynced.values()):
            if w.next_rev <= compact_revision:
                del self._unsynced[w.id]
                w.compacted = compact_revision
                self._signal(w)

    def on_restore(self, old_revision: int) -> None:
        """The store's state was replaced: every watcher resynchronises from the change log."""
        for w in list(self._watchers.values()):
            if w.synced:
                self._remove_synced(w)
                w.next_rev = max(w.min_rev, old_revision + 1)
                self._unsynced[w.id] = w
            self._signal(w)
        self.on_compact(self._source.compact_revision)

    # -- internals -------------------------------------------------------

    def _get(self, watch_id: int) -> _Watcher:
        w = self._watchers.get(watch_id)
        if w is None:
            raise InvalidRequest(f"unknown watch id {watch_id}")
        return w

    def _signal(self, w: _Watcher) -> None:
        if not w.signaled:
            w.signaled = True
            if w.on_ready is not None:
                w.on_ready(w.id)

    def _add_synced(self, w: _Watcher, min_rev: int) -> None:
        w.synced = True
        w.min_rev = min_rev
        if w.end is None:
            self._by_key.setdefault(w.start, {})[w.id] = w
        else:
            self._ranges[w.id] = w
        self.active += 1

    def _remove_synced(self, w: _Watcher) -> None:
        w.synced = False
        if w.end is None:
            group = self._by_key[w.start]
            del group[w.id]
            if not group:
                del self._by_key[w.start]
        else:
            del self._ranges[w.id]
        self.active -= 1

    def _catch_up(self, w: _Watcher) -> None:
        """Refill an unsynced watcher's empty buffer from the change log."""
        source = self._source
        for revision, kvs in source.changes(w.next_rev):
            events = self._match(w, kvs)
            w.next_rev = revision + 1
            if events:
                w.buffer.append((revision, events))
                w.buffered += len(events)
                if w.buffered >= self._capacity:
                    break
        else:
            w.next_rev = max(w.next_rev, source.revision + 1)  # read to the end
        if w.next_rev > source.revision:
            del self._unsynced[w.id]
            self._add_synced(w, w.next_rev)

    def _match(self, w: _Watcher, kvs: list[KeyValue]) -> list[Event]:
        events: list[Event] = []
        for kv in kvs:
            if not in_range(kv.key, w.start, w.end):
                continue
            if kv.version:
                if w.no_put:
                    continue
                kind = EventType.PUT
            else:
                if w.no_delete:
                    continue
                kind = EventType.DELETE
            prev = self._source.previous(kv) if w.prev_kv else None
            events.append(Event(kind, kv, prev))
        return events

    def _drain(self, w: _Watcher, max_events: int) -> WatchResponse:
        events: list[Event] = []
        last = 0
        buffer = w.buffer
        while buffer:
            revision, batch = buffer[0]
            if events and len(events) + len(batch) > max_events:
                break
            buffer.popleft()
            w.buffered -= len(batch)
            events.extend(batch)
            last = revision
        if not buffer and not w.synced and not w.compacted:
            self._catch_up(w)  # the rest may not match at all: then this response is the last
        header = last
        if not buffer and w.synced:
            header = self._source.revision
            w.progress_due = False
        w.sent_since_tick = True
        return WatchResponse(w.id, tuple(events), header)
