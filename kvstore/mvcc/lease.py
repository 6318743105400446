"""Leases: replicated lease table plus leader-only expiry deadlines.

Replicated state (identical on every member, in snapshots and in the state
hash): each lease's id, granted TTL and attached keys, and the next id to
hand out. It changes only through applied commands (``grant``, ``remove``,
``attach``, ``detach``, driven by ``KVStore``).

Deadlines are *not* replicated. Only the leader tracks them, from an injected
``Clock``: ``promote()`` starts tracking and gives every lease its full TTL
again (deadline = now + ttl), so a leader change never expires a lease early;
``demote()`` stops. The store never deletes on its own clock: the leader asks
``expired(limit)`` and proposes a replicated ``LeaseRevokeRequest`` for each
id; when that revoke is applied, every member deletes the lease's keys at one
revision. A lease handed out by ``expired`` is offered again after
``retry_seconds`` if its revoke never lands (a lost proposal).

``keepalive`` and ``time_to_live`` answer from the deadlines, so they run on
the leader and raise ``NotLeader`` elsewhere. A lease whose deadline passed is
dead even before its revoke applies: ``keepalive`` refuses it.

TTLs are whole seconds. Grants below ``MIN_TTL_SECONDS`` are raised to it (as
etcd raises them to its minimum, which keeps a lease alive across a leader
election); above ``MAX_TTL_SECONDS`` they are refused.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

from kvstore.clock import Clock
from kvstore.errors import InvalidRequest, LeaseExists, LeaseNotFound, NotLeader

__all__ = ["MAX_TTL_SECONDS", "MIN_TTL_SECONDS", "LeaseStatus", "Lessor"]

MIN_TTL_SECONDS = 5
"""The shortest lease granted; shorter requests get this TTL."""

MAX_TTL_SECONDS = 9_000_000_000
"""The longest lease granted (etcd's limit)."""

_MAX_ID = (1 << 63) - 1


@dataclass(frozen=True, slots=True)
class LeaseStatus:
    """A lease as ``time_to_live`` sees it: remaining and granted TTL, attached keys."""

    id: int
    ttl: int
    granted_ttl: int
    keys: tuple[bytes, ...] = ()


class _Lease:
    __slots__ = ("id", "ttl", "keys")

    def __init__(self, lease_id: int, ttl: int) -> None:
        self.id = lease_id
        self.ttl = ttl
        # dict, not set: insertion-ordered, so nothing depends on hash order.
        self.keys: dict[bytes, None] = {}


class Lessor:
    """The lease table and, on the leader, its deadlines (see the module docstring)."""

    def __init__(self, clock: Clock, *, retry_seconds: float = 3.0) -> None:
        self._clock = clock
        self._retry_seconds = retry_seconds
        self._leases: dict[int, _Lease] = {}
        self._next_id = 1
        self._primary = False
        # Leader only: lease id -> deadline, a heap of (deadline, id) with stale
        # entries skipped on pop, and the ids already handed out by expired().
        self._deadlines: dict[int, float] = {}
        self._heap: list[tuple[float, int]] = []
        self._expiring: dict[int, None] = {}

    # -- replicated state ------------------------------------------------

    def __contains__(self, lease_id: object) -> bool:
        return lease_id in self._leases

    def __len__(self) -> int:
        return len(self._leases)

    @property
    def next_id(self) -> int:
        """The smallest id a grant with id 0 may pick."""
        return self._next_id

    def grant(self, lease_id: int, ttl: int) -> tuple[int, int]:
        """Create a lease and return ``(id, ttl)``; id 0 picks the next free id.

        Raises:
            LeaseExists: ``lease_id`` is taken.
            InvalidRequest: a negative id, a TTL above ``MAX_TTL_SECONDS``, or
                either of them not an ``int``.
        """
        if type(ttl) is not int or type(lease_id) is not int:
            raise InvalidRequest(f"lease TTL and id must be integers, not {ttl!r} and {lease_id!r}")
        if ttl > MAX_TTL_SECONDS:
            raise InvalidRequest(f"lease TTL {ttl} s exceeds the maximum {MAX_TTL_SECONDS} s")
        if lease_id < 0 or lease_id > _MAX_ID:
            raise InvalidRequest(f"invalid lease id {lease_id}")
        if lease_id == 0:
            lease_id = self._next_id
            while lease_id in self._leases:
                lease_id += 1
            self._next_id = lease_id + 1
        elif lease_id in self._leases:
            raise LeaseExists(lease_id)
        ttl = max(ttl, MIN_TTL_SECONDS)
        self._leases[lease_id] = _Lease(lease_id, ttl)
        if self._primary:
            self._schedule(lease_id, self._clock.now() + ttl)
        return lease_id, ttl

    def remove(self, lease_id: int) -> None:
        """Forget a lease (its keys must already be deleted and detached)."""
        if self._leases.pop(lease_id, None) is None:
            raise LeaseNotFound(lease_id)
        self._deadlines.pop(lease_id, None)
        self._expiring.pop(lease_id, None)

    def attach(self, lease_id: int, key: bytes) -> None:
        """Record that ``key`` is attached to ``lease_id`` (which must exist)."""
        self._leases[lease_id].keys[key] = None

    def detach(self, lease_id: int, key: bytes) -> None:
        """Record that ``key`` no longer belongs to ``lease_id``."""
        lease = self._leases.get(lease_id)
        if lease is not None:
            lease.keys.pop(key, None)

    def keys(self, lease_id: int) -> list[bytes]:
        """The keys attached to a lease, sorted.

        Raises:
            LeaseNotFound: no such lease.
        """
        lease = self._leases.get(lease_id)
        if lease is None:
            raise LeaseNotFound(lease_id)
        return sorted(lease.keys)

    def granted_ttl(self, lease_id: int) -> int:
        """The TTL a lease was granted with."""
        lease = self._leases.get(lease_id)
        if lease is None:
            raise LeaseNotFound(lease_id)
        return lease.ttl

    def leases(self) -> list[int]:
        """Every lease id, ascending."""
        return sorted(self._leases)

    def table(self) -> list[tuple[int, int]]:
        """``(id, ttl)`` of every lease, by id: the replicated part, keys aside."""
        return [(i, self._leases[i].ttl) for i in sorted(self._leases)]

    def load(self, table: list[tuple[int, int]], next_id: int) -> None:
        """Replace the lease table (keys are re-attached by the store)."""
        self._leases = {lease_id: _Lease(lease_id, ttl) for lease_id, ttl in table}
        self._next_id = next_id
        self._deadlines.clear()
        self._heap.clear()
        self._expiring.clear()
        if self._primary:
            self._renew_all()

    # -- leader-only deadlines -------------------------------------------

    @property
    def is_primary(self) -> bool:
        """True while this member tracks deadlines (it is the leader)."""
        return self._primary

    def promote(self) -> None:
        """Start tracking deadlines, giving every lease its full TTL from now."""
        self._primary = True
        self._renew_all()

    def demote(self) -> None:
        """Stop tracking deadlines (this member is no longer the leader)."""
        self._primary = False
        self._deadlines.clear()
        self._heap.clear()
        self._expiring.clear()

    def keepalive(self, lease_id: int) -> int:
        """Push a lease's deadline to now + its TTL and return the TTL.

        Raises:
            NotLeader: this member does not track deadlines.
            LeaseNotFound: no such lease, or it has already expired.
        """
        lease = self._live(lease_id)
        self._schedule(lease_id, self._clock.now() + lease.ttl)
        return lease.ttl

    def time_to_live(self, lease_id: int, *, keys: bool = False) -> LeaseStatus:
        """Remaining whole seconds (rounded up) and granted TTL, with the keys if asked.

        Raises:
            NotLeader: this member does not track deadlines.
            LeaseNotFound: no such lease, or it has already expired.
        """
        lease = self._live(lease_id)
        remaining = max(0, math.ceil(self._deadlines[lease_id] - self._clock.now()))
        attached = tuple(sorted(lease.keys)) if keys else ()
        return LeaseStatus(lease_id, remaining, lease.ttl, attached)

    def expired(self, limit: int = 16) -> list[int]:
        """Up to ``limit`` leases past their deadline, earliest first; empty unless primary.

        Each id returned is not returned again for ``retry_seconds``, giving its
        revoke time to apply.
        """
        if not self._primary:
            return []
        now = self._clock.now()
        heap = self._heap
        found: list[int] = []
        while heap and len(found) < limit and heap[0][0] <= now:
            deadline, lease_id = heapq.heappop(heap)
            if self._deadlines.get(lease_id) != deadline:
                continue
            found.append(lease_id)
            self._expiring[lease_id] = None
        for lease_id in found:
            self._schedule(lease_id, now + self._retry_seconds)
        return found

    def _live(self, lease_id: int) -> _Lease:
        if not self._primary:
            raise NotLeader()
        lease = self._leases.get(lease_id)
        if lease is None or lease_id in self._expiring:
            raise LeaseNotFound(lease_id)
        if self._deadlines[lease_id] <= self._clock.now():
            raise LeaseNotFound(lease_id)
        return lease

    def _schedule(self, lease_id: int, deadline: float) -> None:
        self._deadlines[lease_id] = deadline
        heapq.heappush(self._heap, (deadline, lease_id))
        if len(self._heap) > 2 * len(self._deadlines) + 64:
            # Keepalives leave stale entries behind; drop them now and then.
            self._heap = [(d, i) for i, d in self._deadlines.items()]
            heapq.heapify(self._heap)

    def _renew_all(self) -> None:
        now = self._clock.now()
        self._deadlines.clear()
        self._expiring.clear()
        self._heap = [(now + lease.ttl, lease_id) for lease_id, lease in self._leases.items()]
        heapq.heapify(self._heap)
        for deadline, lease_id in self._heap:
            self._deadlines[lease_id] = deadline
