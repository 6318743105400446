"""``StatusManager``: writes each pod's status to the store, one pod at a time, coalescing.

Pod workers call ``mark(key)`` on every change; the manager's task later
asks the worker for its ``status()`` and writes it with ``update_status``,
so many changes between two writes cost one write. A status equal to the
stored one is not written. A ``Conflict`` (someone else wrote the pod) reads
the pod again, shows it to the worker (whose status keeps transition times
from it) and tries again; ``NotFound`` means the pod is gone and is dropped.
Any other error is logged and the pod is written again after
``retry_seconds`` on the clock. Writes are serialised by one lock, so a
``sync`` (the final write before a pod is deleted) never races the task.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from controllers.api.client import ResourceClient
from controllers.api.errors import Conflict, NotFound
from controllers.api.objects import Obj
from controllers.clock import Clock
from controllers.informers.store import thaw

__all__ = ["StatusManager", "StatusSource"]

log = logging.getLogger(__name__)

_CONFLICT_ATTEMPTS = 8


class StatusSource(Protocol):
    """A pod whose status is written: a pod worker."""

    uid: str
    name: str
    namespace: str
    pod: Obj

    def status(self) -> dict[str, Any]: ...

    def observe(self, pod: Obj) -> None: ...


class StatusManager:
    """Writes pod statuses (see the module docstring)."""

    def __init__(self, pods: ResourceClient, clock: Clock, *, retry_seconds: float = 1.0) -> None:
        self.pods = pods
        self.clock = clock
        self.retry_seconds = retry_seconds
        self._sources: dict[str, StatusSource] = {}
        # Keys to write, in the order first marked (a dict keeps it deterministic).
        self._dirty: dict[str, None] = {}
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self.writes = 0
        """Status writes made (for tests and metrics)."""

    def register(self, key: str, source: StatusSource) -> None:
        self._sources[key] = source

    def forget(self, key: str, source: StatusSource | None = None) -> None:
        """Stop writing ``key`` (only if it is still ``source``, when given)."""
        if source is None or self._sources.get(key) is source:
            self._sources.pop(key, None)
            self._dirty.pop(key, None)

    def mark(self, key: str) -> None:
        self._dirty[key] = None
        self._wake.set()

    def pending(self) -> int:
        return len(self._dirty)

    def is_idle(self) -> bool:
        """Whether nothing is marked and no write is running."""
        return not self._dirty and not self._lock.locked()

    async def run(self) -> None:
        """Write marked pods until cancelled."""
        while True:
            while not self._dirty:
                self._wake.clear()
                await self._wake.wait()
            key = next(iter(self._dirty))
            del self._dirty[key]
            try:
                await self.sync(key)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the store may be away: keep the pod and try later
                log.warning("status of pod %s not written: %s: %s", key, type(e).__name__, e)
                self._dirty.setdefault(key, None)
                await self.clock.sleep(self.retry_seconds)

    async def sync(self, key: str) -> None:
        """Write the status of ``key`` now, if it changed."""
        async with self._lock:
            await self._sync(key)

    async def _sync(self, key: str) -> None:
        source = self._sources.get(key)
        if source is None:
            return
        for _ in range(_CONFLICT_ATTEMPTS):
            status = source.status()
            pod = source.pod
            if status == pod.get("status"):
                return
            try:
                stored = await self.pods.update_status({**pod, "status": status})
            except NotFound:
                return
            except Conflict:
                try:
                    fresh = await self.pods.get(source.name, source.namespace)
                except NotFound:
                    return
                if (fresh.get("metadata") or {}).get("uid") != source.uid:
                    return
                source.observe(thaw(fresh))
                continue
            self.writes += 1
            source.observe(stored)
            return
        raise Conflict("pods", source.name, "the pod kept changing")
