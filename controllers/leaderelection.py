"""Leader election over a ``coordination.k8s.io/v1`` Lease, updated by compare-and-swap.

Any number of ``LeaderElector`` instances (usually one per process) name the
same Lease; at most one of them leads at a time. The Lease's ``spec`` holds
``holderIdentity``, ``leaseDurationSeconds``, ``acquireTime``, ``renewTime``
(RFC 3339, microseconds) and ``leaseTransitions``.

Contract:

- Acquire and renew are one read and one compare-and-swap write: ``update``
  with the ``resourceVersion`` just read, or ``create`` when there is no
  Lease. ``Conflict`` (or ``AlreadyExists``) means another elector wrote
  first; this one tries again after ``retry_period``.
- Expiry is judged on this elector's own clock, never on the timestamps in
  the record: a Lease held by another is taken only once
  ``leaseDurationSeconds`` have passed on this clock since this elector last
  saw the record change. Clock skew between machines does not matter; only
  their rates must roughly agree.
- A leader renews every ``retry_period``. If no renewal started within the
  last ``renew_deadline`` seconds has succeeded, it stops leading: it cancels
  the work started by ``on_started_leading``, waits for it to end, and calls
  ``on_stopped_leading``. Because ``renew_deadline < lease_duration`` (checked
  at construction), this happens before any other elector may take the Lease.
  A leader that finds another holder in the record stops at once. Either way
  the elector then goes back to trying to acquire.
- When ``run`` is cancelled while leading, the work is stopped and
  ``on_stopped_leading`` called first; then, with ``release_on_cancel``, the
  Lease is released (``holderIdentity`` cleared, ``leaseDurationSeconds`` 1)
  so another elector can take it at its next attempt.
- ``on_new_leader(identity)`` is called each time this elector sees the holder
  change to a new, non-empty identity (its own included).

All waiting uses the injected ``controllers.clock.Clock``; the timestamps
written into the record come from the clientset's wall clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from controllers.api.clientset import Clientset
from controllers.api.errors import AlreadyExists, Conflict, NotFound
from controllers.api.objects import Obj, deep_copy, parse_timestamp
from controllers.clock import Clock, RealClock

__all__ = ["LeaderCallbacks", "LeaderElector", "LeaseRecord"]

_log = logging.getLogger(__name__)

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class LeaderCallbacks:
    """What a ``LeaderElector`` calls as leadership comes and goes.

    Attributes:
        on_started_leading: a coroutine function run as a task while this
            elector leads; the task is cancelled when leadership ends.
        on_stopped_leading: called once the work has ended after leading.
        on_new_leader: called with the identity of each new holder seen.
    """

    on_started_leading: Callable[[], Awaitable[None]]
    on_stopped_leading: Callable[[], None]
    on_new_leader: Callable[[str], None] | None = None


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """The election fields of a Lease's ``spec``."""

    holder_identity: str = ""
    lease_duration_seconds: int = 0
    acquire_time: str = ""
    renew_time: str = ""
    lease_transitions: int = 0

    @classmethod
    def from_spec(cls, spec: Any) -> LeaseRecord:
        """The record in ``spec`` (missing or mistyped fields read as empty)."""
        if not isinstance(spec, dict):
            return cls()

        def text(key: str) -> str:
            value = spec.get(key)
            return value if isinstance(value, str) else ""

        def number(key: str) -> int:
            value = spec.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else 0

        return cls(text("holderIdentity"), number("leaseDurationSeconds"), text("acquireTime"),
                   text("renewTime"), number("leaseTransitions"))

    def to_spec(self) -> dict[str, Any]:
        """The record as a Lease ``spec``."""
        return {
            "holderIdentity": self.holder_identity,
            "leaseDurationSeconds": self.lease_duration_seconds,
            "acquireTime": self.acquire_time,
            "renewTime": self.renew_time,
            "leaseTransitions": self.lease_transitions,
        }


def _micro_time(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """One candidate for the leadership named by a Lease (see the module docstring)."""

    def __init__(
        self,
        clientset: Clientset,
        lock_name: str,
        namespace: str,
        identity: str,
        *,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        callbacks: LeaderCallbacks,
        release_on_cancel: bool = True,
        clock: Clock | None = None,
    ) -> None:
        """Create an elector; nothing happens until ``run``.

        Raises:
            ValueError: an empty identity or lock name, a period that is not
                positive, ``renew_deadline >= lease_duration`` or
                ``retry_period >= renew_deadline``.
        """
        if not identity:
            raise ValueError("a leader elector needs an identity")
        if not lock_name:
            raise ValueError("a leader elector needs a lock name")
        if min(lease_duration, renew_deadline, retry_period) <= 0:
            raise ValueError("lease_duration, renew_deadline and retry_period must be positive")
        if renew_deadline >= lease_duration:
            raise ValueError("renew_deadline must be shorter than lease_duration")
        if retry_period >= renew_deadline:
            raise ValueError("retry_period must be shorter than renew_deadline")
        self._leases = clientset.resource("leases")
        self._wall = clientset.clock
        self._lock_name = lock_name
        self._namespace = namespace or "default"
        self._identity = identity
        self._lease_duration = lease_duration
        self._renew_deadline = renew_deadline
        self._retry_period = retry_period
        self._callbacks = callbacks
        self._release_on_cancel = release_on_cancel
        self._clock: Clock = clock if clock is not None else RealClock()
        # The last record seen (or written) and the Lease object holding it.
        self._observed = LeaseRecord()
        self._observed_obj: Obj | None = None
        # This clock's time when _observed last changed (or was written by us:
        # then the time the successful attempt started).
        self._observed_time = 0.0
        self._reported_leader = ""
        # True from a successful acquire until leadership ends.
        self._leading = False

    @property
    def identity(self) -> str:
        return self._identity

    def is_leader(self) -> bool:
        """Whether this elector leads now (its work may be running)."""
        return self._leading

    def get_leader(self) -> str:
        """The holder in the last record seen ("" if none)."""
        return self._observed.holder_identity

    async def run(self) -> None:
        """Acquire, lead, and acquire again after losing leadership, until cancelled."""
        while True:
            renewed_at = await self._acquire()
            await self._lead(renewed_at)

    async def try_acquire_or_renew(self) -> bool:
        """Make one attempt to take or renew the Lease; True if this elector now holds it.

        A lost compare-and-swap counts as a failed attempt; so does any other
        error (a missing namespace, an unreachable store), which is logged.
        """
        started = self._clock.now()
        try:
            return await self._attempt(started)
        except (Conflict, AlreadyExists):
            return False
        except Exception:  # noqa: BLE001 - any store failure is a failed attempt
            _log.warning("leader election %s/%s: attempt by %s failed", self._namespace,
                         self._lock_name, self._identity, exc_info=True)
            return False

    # -- one attempt --------------------------------------------------------------
    async def _attempt(self, started: float) -> bool:
        try:
            current = await self._leases.get(self._lock_name, self._namespace)
        except NotFound:
            record = LeaseRecord(self._identity, self._duration_seconds(),
                                 _micro_time(self._wall.now()), _micro_time(self._wall.now()), 0)
            created = await self._leases.create({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self._lock_name, "namespace": self._namespace},
                "spec": record.to_spec(),
            })
            self._observe(created, record, started)
            return True
        old = LeaseRecord.from_spec(current.get("spec"))
        if old != self._observed or self._observed_obj is None:
            self._observe(current, old, self._clock.now())
        held_by_other = old.holder_identity not in ("", self._identity)
        if held_by_other and self._observed_time + old.lease_duration_seconds > started:
            return False
        renew = self._next_renew_time(old.renew_time)
        if old.holder_identity == self._identity:
            record = LeaseRecord(self._identity, self._duration_seconds(), old.acquire_time,
                                 renew, old.lease_transitions)
        else:
            record = LeaseRecord(self._identity, self._duration_seconds(), renew, renew,
                                 old.lease_transitions + 1)
        obj = deep_copy(current)
        obj["spec"] = record.to_spec()
        stored = await self._leases.update(obj)
        self._observe(stored, record, started)
        return True

    def _observe(self, obj: Obj, record: LeaseRecord, at: float) -> None:
        self._observed_obj = obj
        self._observed = record
        self._observed_time = at
        holder = record.holder_identity
        if holder and holder != self._reported_leader:
            self._reported_leader = holder
            if self._callbacks.on_new_leader is not None:
                self._callbacks.on_new_leader(holder)

    def _duration_seconds(self) -> int:
        return max(1, int(-(-self._lease_duration // 1)))

    def _next_renew_time(self, previous: str) -> str:
        """Now on the wall clock, but always after ``previous`` so every renewal is a write."""
        now = self._wall.now()
        if previous:
            with contextlib.suppress(ValueError):
                now = max(now, parse_timestamp(previous) + 1e-6)
        return _micro_time(now)

    # -- the loops ----------------------------------------------------------------
    async def _acquire(self) -> float:
        """Try every ``retry_period`` until the Lease is ours; return the attempt's start.

        Each attempt is abandoned after ``renew_deadline`` on this clock.
        """
        while True:
            started = self._clock.now()
            # A store call that hangs must not stall the election for ever.
            _, acquired = await self._before(self.try_acquire_or_renew(),
                                             started + self._renew_deadline)
            if acquired:
                return started
            await self._clock.sleep(self._retry_period)

    async def _lead(self, renewed_at: float) -> None:
        """Run the work and renew until a renewal misses its deadline (or cancellation)."""
        self._leading = True
        _log.info("leader election %s/%s: %s is leading", self._namespace, self._lock_name,
                  self._identity)
        work = asyncio.ensure_future(self._callbacks.on_started_leading())
        try:
            deadline = renewed_at + self._renew_deadline
            while True:
                slept, _ = await self._before(self._clock.sleep(self._retry_period), deadline)
                if not slept:
                    break
                started = self._clock.now()
                finished, renewed = await self._before(self.try_acquire_or_renew(), deadline)
                if not finished:
                    break
                if renewed:
                    deadline = started + self._renew_deadline
                elif self._observed.holder_identity not in ("", self._identity):
                    break  # the record names another holder: it is not ours to renew
        except asyncio.CancelledError:
            await self._stop_leading(work)
            if self._release_on_cancel:
                await self._before(self._release(), self._clock.now() + self._renew_deadline)
            raise
        _log.warning("leader election %s/%s: %s could not renew within %.3gs and stops leading",
                     self._namespace, self._lock_name, self._identity, self._renew_deadline)
        await self._stop_leading(work)

    async def _stop_leading(self, work: asyncio.Future[None]) -> None:
        work.cancel()
        try:
            await asyncio.wait({work})
        finally:
            self._leading = False
            if work.done() and not work.cancelled() and work.exception() is not None:
                _log.error("leader election %s/%s: the leader's work failed", self._namespace,
                           self._lock_name, exc_info=work.exception())
            self._callbacks.on_stopped_leading()

    async def _release(self) -> bool:
        """Clear the holder of a Lease this elector still holds; True if it did."""
        obj = self._observed_obj
        if obj is None or self._observed.holder_identity != self._identity:
            return False
        now = _micro_time(self._wall.now())
        record = LeaseRecord("", 1, now, now, self._observed.lease_transitions)
        released = deep_copy(obj)
        released["spec"] = record.to_spec()
        try:
            stored = await self._leases.update(released)
        except Exception:  # noqa: BLE001 - someone else holds it now, or the store is away
            _log.info("leader election %s/%s: %s could not release the lease", self._namespace,
                      self._lock_name, self._identity, exc_info=True)
            return False
        self._observe(stored, record, self._clock.now())
        return True

    async def _before(self, awaitable: Coroutine[Any, Any, R],
                      deadline: float) -> tuple[bool, R | None]:
        """Await ``awaitable`` unless this clock reaches ``deadline`` first (then cancel it).

        Returns:
            ``(True, result)`` if it finished in time, else ``(False, None)``.
        """
        task: asyncio.Future[Any] = asyncio.ensure_future(awaitable)
        expired: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def expire() -> None:
            if not expired.done():
                expired.set_result(None)

        timer = self._clock.call_at(deadline, expire)
        try:
            await asyncio.wait({task, expired}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            if not task.done():
                task.cancel()
                await asyncio.wait({task})
        if task.cancelled():
            return False, None
        return True, task.result()
