"""A session: one lease, kept alive in the background, that a client's claims hang on.

Locks and elections bind their keys to the session's lease, so everything a
session holds goes away with it: when the session is closed (the lease is
revoked and its keys deleted at once) or when its process dies (the keepalives
stop and the leader expires the lease after its TTL).

Contract:

- ``open()`` (or ``async with``) grants the lease; a task then renews it every
  TTL/3 seconds. A failed renewal is retried every ``retry_seconds`` (at
  most TTL/3).
- The session is *done* (``done()``, ``wait_done()``) as soon as it knows
  its lease may be gone: the store says the lease does not exist, or no
  renewal has succeeded for a whole TTL since it was sent (the leader may
  have expired it). A done session never comes back; open a new one.
- ``close()`` stops the renewals and revokes the lease; ``orphan()`` stops the
  renewals only, leaving the lease to expire on its own.
- ``until_done(aw)`` runs ``aw`` unless the session ends first, in which case
  ``aw`` is cancelled and ``SessionExpired`` raised: how a waiter gives up a
  lock it can no longer get.

Time is read from an injected ``Clock`` and waited with an injected ``sleep``,
so tests can drive renewals and failures without real delays.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from kvstore.clock import Clock, MonotonicClock
from kvstore.errors import ClusterError, InvalidRequest, LeaseNotFound, ProtocolError
from kvstore.recipes.errors import SessionExpired
from kvstore.kv import KV

__all__ = ["Session", "Sleep"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]
"""Waits the given number of seconds (``asyncio.sleep`` unless a test injects another)."""

_RETRYABLE = (ClusterError, ProtocolError, OSError, asyncio.TimeoutError)


class Session:
    """A lease kept alive by a background task (see the module docstring).

    Args:
        kv: the store handle (an embedded store, a member or a client).
        ttl: the lease TTL in seconds (the store may raise it to its minimum).
        lease_id: a lease id to ask for (0: the store picks one).
        clock: where time is read (the real monotonic clock by default).
        sleep: how to wait between renewals (``asyncio.sleep`` by default).
        retry_seconds: the delay between renewal attempts after a failure.
    """

    def __init__(
        self,
        kv: KV,
        ttl: int = 60,
        *,
        lease_id: int = 0,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        retry_seconds: float = 1.0,
    ) -> None:
        if ttl <= 0:
            raise InvalidRequest(f"a session needs a positive TTL, not {ttl}")
        self.kv = kv
        self._requested_ttl = ttl
        self._requested_id = lease_id
        self._clock: Clock = clock or MonotonicClock()
        self._sleep: Sleep = sleep or asyncio.sleep
        self._retry_seconds = retry_seconds
        self._lease_id = 0
        self._ttl = 0
        self._task: asyncio.Task[None] | None = None
        self._done = asyncio.Event()
        self._reason = ""
        self._closed = False

    # -- lifecycle ---------------------------------------------------------

    async def open(self) -> Session:
        """Grant the lease and start renewing it; returns the session.

        Raises:
            InvalidRequest: the session was already opened.
        """
        if self._lease_id or self._closed:
            raise InvalidRequest("a session is opened once")
        sent = self._clock.now()
        granted = await self.kv.lease_grant(self._requested_ttl, lease_id=self._requested_id)
        self._lease_id, self._ttl = granted.id, granted.ttl
        self._task = asyncio.get_running_loop().create_task(
            self._keep_alive(sent), name=f"session-{granted.id:x}-keepalive"
        )
        return self

    async def close(self) -> None:
        """Stop renewing and revoke the lease (deleting every key bound to it).

        A lease already gone is fine. Other errors of the revoke are raised
        after the session has been marked done.
        """
        if self._closed:
            return
        self._closed = True
        await self._stop_renewing()
        self._end("closed")
        if self._lease_id:
            try:
                await self.kv.lease_revoke(self._lease_id)
            except LeaseNotFound:
                pass

    async def orphan(self) -> None:
        """Stop renewing without revoking: the lease expires after its TTL, as if this process died."""
        self._closed = True
        await self._stop_renewing()
        self._end("orphaned")

    async def __aenter__(self) -> Session:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- state -------------------------------------------------------------

    @property
    def lease_id(self) -> int:
        """The session's lease id.

        Raises:
            InvalidRequest: the session has not been opened.
        """
        if not self._lease_id:
            raise InvalidRequest("the session is not open")
        return self._lease_id

    @property
    def ttl(self) -> int:
        """The TTL the lease was granted with (0 before ``open``)."""
        return self._ttl

    @property
    def reason(self) -> str:
        """Why the session ended ("" while it is alive)."""
        return self._reason

    def done(self) -> bool:
        """True once the lease may be gone (or the session was closed)."""
        return self._done.is_set()

    async def wait_done(self) -> None:
        """Wait until the session is done."""
        await self._done.wait()

    def check(self) -> None:
        """Raise ``SessionExpired`` if the session is done or was never opened."""
        if not self._lease_id:
            raise InvalidRequest("the session is not open")
        if self._done.is_set():
            raise SessionExpired(self._lease_id, self._reason)

    async def until_done(self, aw: Awaitable[T]) -> T:
        """Await ``aw`` unless the session ends first.

        Raises:
            SessionExpired: the session ended before ``aw`` completed (``aw`` is cancelled).
        """
        if not self._lease_id or self._done.is_set():
            if inspect.iscoroutine(aw):
                aw.close()  # it will never run
            self.check()
        task = asyncio.ensure_future(aw)
        ended = asyncio.ensure_future(self._done.wait())
        try:
            await asyncio.wait((task, ended), return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            if not task.done():
                task.cancel()
                await asyncio.wait((task,))
        if task.cancelled() and self._done.is_set():
            raise SessionExpired(self._lease_id, self._reason)
        return task.result()

    # -- renewals ----------------------------------------------------------

    async def _keep_alive(self, granted_at: float) -> None:
        ttl = self._ttl
        last_ok = granted_at  # when the last successful renewal was sent
        delay = ttl / 3
        while True:
            await self._sleep(delay)
            sent = self._clock.now()
            remaining = last_ok + ttl - sent
            if remaining <= 0:
                self._end(f"no renewal succeeded within the {ttl} s TTL")
                return
            try:
                ttl = await asyncio.wait_for(self.kv.lease_keepalive(self._lease_id), remaining)
            except LeaseNotFound:
                self._end("lease expired or revoked")
                return
            except _RETRYABLE as e:
                logger.debug("session %x: renewal failed: %s", self._lease_id, e)
                left = last_ok + ttl - self._clock.now()
                delay = max(0.0, min(self._retry_seconds, ttl / 3, left))
                continue
            except Exception as e:  # the lease cannot be kept alive: say so, do not hide it
                logger.exception("session %x: renewal failed", self._lease_id)
                self._end(f"renewal failed: {e!r}")
                return
            last_ok = sent
            delay = ttl / 3

    async def _stop_renewing(self) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait((task,))

    def _end(self, reason: str) -> None:
        if not self._done.is_set():
            self._reason = reason
            self._done.set()
            if reason not in ("closed", "orphaned"):
                logger.warning("session %x is done: %s", self._lease_id, reason)
