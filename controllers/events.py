"""Events: what controllers tell people about the objects they manage.

    recorder = EventRecorder(clientset, "replicaset-controller")
    recorder.event(rs, "Normal", "SuccessfulCreate", "Created pod: web-7d9f")
    ...
    await recorder.close()

``event`` never blocks and never raises: the Event is queued and written by
a background task, so a slow or failing store never slows a reconcile (a
full queue drops the event with a warning). As in Kubernetes, an event that
repeats one already recorded (same object, type, reason, message and
source) is not stored twice: the existing Event's ``count`` goes up and its
``lastTimestamp`` moves. Events live in the involved object's namespace
(``default`` for cluster-scoped objects), named ``<object>.<hex>``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Protocol

from controllers.api.clientset import Clientset
from controllers.api.errors import AlreadyExists, Conflict, NotFound
from controllers.api.objects import format_timestamp

__all__ = ["EVENT_TYPES", "EventRecorder", "EventSink", "NoEvents", "involved_object"]

_log = logging.getLogger(__name__)

EVENT_TYPES = ("Normal", "Warning")

_AggregateKey = tuple[str, str, str, str, str, str, str]


class EventSink(Protocol):
    """Where events go: an ``EventRecorder``, or a fake in tests."""

    def event(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None: ...


class NoEvents:
    """An ``EventSink`` that records nothing."""

    def event(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        return None


def involved_object(obj: Mapping[str, Any]) -> dict[str, str]:
    """The ``involvedObject`` reference of an Event about ``obj``."""
    meta = obj.get("metadata") or {}
    ref = {"apiVersion": str(obj.get("apiVersion", "")), "kind": str(obj.get("kind", "")),
           "name": str(meta.get("name", "")), "uid": str(meta.get("uid", ""))}
    if meta.get("namespace"):
        ref["namespace"] = str(meta["namespace"])
    if meta.get("resourceVersion"):
        ref["resourceVersion"] = str(meta["resourceVersion"])
    return ref


class EventRecorder:
    """Queues Events and writes them in the background (see the module docstring)."""

    def __init__(self, clientset: Clientset, component: str, *, host: str = "",
                 max_pending: int = 1000, cache_size: int = 4096) -> None:
        if max_pending < 1 or cache_size < 1:
            raise ValueError("max_pending and cache_size must be positive")
        self.clientset = clientset
        self.component = component
        self.host = host
        self._max_pending = max_pending
        self._cache_size = cache_size
        self._pending: asyncio.Queue[tuple[dict[str, str], str, str, str, float]] | None = None
        self._writer: asyncio.Task[None] | None = None
        # Aggregation key -> (namespace, name) of the Event already stored for it.
        self._seen: OrderedDict[_AggregateKey, tuple[str, str]] = OrderedDict()
        self._closed = False
        self.dropped = 0
        self.written = 0

    def event(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """Record that ``reason`` happened to ``obj``; returns at once."""
        if type_ not in EVENT_TYPES:
            raise ValueError(f"event type must be one of {EVENT_TYPES}, not {type_!r}")
        if self._closed:
            _log.debug("event recorder %s is closed; dropped %s %s", self.component, reason,
                       message)
            return
        if self._pending is None:
            self._pending = asyncio.Queue(self._max_pending)
        try:
            self._pending.put_nowait((involved_object(obj), type_, reason, message,
                                      self.clientset.clock.now()))
        except asyncio.QueueFull:
            self.dropped += 1
            # One line for the first drop, then one per thousand: a flood stays readable.
            if self.dropped % 1000 == 1:
                _log.warning("event recorder %s: queue full, dropped event %s on %s "
                             "(%d dropped so far)", self.component, reason,
                             obj.get("metadata", {}).get("name"), self.dropped)
            return
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    async def flush(self) -> None:
        """Wait until every event queued so far has been written (or given up on)."""
        if self._pending is not None:
            await self._pending.join()

    async def close(self) -> None:
        """Stop the writer; events still queued are dropped."""
        self._closed = True
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)

    async def _write_loop(self) -> None:
        queue = self._pending
        if queue is None:
            return
        while True:
            ref, type_, reason, message, when = await queue.get()
            try:
                await self._write(ref, type_, reason, message, when)
                self.written += 1
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - an event is best effort, never fatal
                _log.warning("event recorder %s: could not write event %s on %s",
                             self.component, reason, ref.get("name"), exc_info=True)
            finally:
                queue.task_done()

    async def _write(self, ref: dict[str, str], type_: str, reason: str, message: str,
                     when: float) -> None:
        key: _AggregateKey = (ref.get("uid", ""), ref["kind"], ref.get("namespace", ""),
                              ref["name"], type_, reason, message)
        events = self.clientset.resource("events")
        stamp = format_timestamp(when)
        known = self._seen.get(key)
        if known is not None:
            namespace, name = known
            for _ in range(3):
                try:
                    current = await events.get(name, namespace)
                except NotFound:
                    break
                current["count"] = int(current.get("count") or 1) + 1
                current["lastTimestamp"] = stamp
                try:
                    await events.update(current)
                except Conflict:
                    continue
                self._seen.move_to_end(key)
                return
            del self._seen[key]
        namespace = ref.get("namespace") or "default"
        for _ in range(3):
            name = f"{ref['name']}.{int(when * 1e9) + self.clientset.rng.getrandbits(20):x}"
            body = {
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": ref, "reason": reason, "message": message, "type": type_,
                "source": {"component": self.component, **({"host": self.host}
                                                             if self.host else {})},
                "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
            }
            try:
                await events.create(body)
            except AlreadyExists:
                continue
            self._seen[key] = (namespace, name)
            if len(self._seen) > self._cache_size:
                self._seen.popitem(last=False)
            return
        raise RuntimeError(f"no free event name for {ref['name']}")
