"""A distributed lock: one holder at a time, waiters served first come, first served.

Each contender creates the key ``<prefix>/<lease id in hex>`` bound to its
session's lease, in a txn that creates it only if absent (compare
``create_revision == 0``) and reads the current holder. The holder is the key
with the smallest create revision; everyone else waits, in create-revision
order, for the key just ahead of its own to be deleted (``turn.wait_turn``),
so releasing the lock wakes exactly the next waiter.

- ``unlock()`` deletes the key; a holder that dies releases the lock when its
  lease is revoked or expires, taking its key with it.
- ``lock()`` raises ``SessionExpired`` if the session ends while it waits,
  and withdraws its key if it is cancelled or fails.
- ``try_lock()`` raises ``Locked`` at once when another session holds the
  lock (and withdraws its key).
- A holder that may have lost its lease without noticing should guard its
  writes with ``owner_compare()`` in a txn; ``revision`` (the key's create
  revision) grows with each acquisition and serves as a fencing token.

A session holds a given lock at most once: two ``Mutex`` objects on the same
session and prefix share one key (as in etcd), so contenders in one process
need one session each. A ``Mutex`` object is meant for one task at a time.
"""

from __future__ import annotations

from kvstore.errors import InvalidRequest, InvariantError
from kvstore.mvcc.keys import to_bytes
from kvstore.mvcc.request import Compare, CompareTarget, compare
from kvstore.mvcc.types import KeyValue
from kvstore.recipes import turn
from kvstore.recipes.errors import Locked, SessionExpired
from kvstore.recipes.session import Session

__all__ = ["Mutex"]


class Mutex:
    """A lock under ``prefix`` held through ``session`` (see the module docstring)."""

    def __init__(self, session: Session, prefix: bytes | str) -> None:
        self.session = session
        self.prefix = to_bytes(prefix, "prefix") + b"/"
        self._key = b""
        self._revision = 0

    @property
    def key(self) -> bytes:
        """Our key while we hold the lock (``b""`` otherwise)."""
        return self._key

    @property
    def revision(self) -> int:
        """Create revision of our key while we hold the lock (0 otherwise): a fencing token."""
        return self._revision

    def is_locked(self) -> bool:
        """True between a successful ``lock()``/``try_lock()`` and ``unlock()`` (as far as we know)."""
        return self._revision != 0

    def owner_compare(self) -> Compare:
        """A txn compare that holds only while our key is still the one we locked with.

        Raises:
            InvalidRequest: the lock is not held.
        """
        if not self._revision:
            raise InvalidRequest("the lock is not held")
        return compare(self._key, CompareTarget.CREATE, "=", self._revision)

    async def owner(self) -> KeyValue | None:
        """The key of whoever holds the lock now (``None`` if nobody does)."""
        holder, _ = await turn.first_created(self.session.kv, self.prefix)
        return holder

    async def lock(self) -> None:
        """Wait until we hold the lock.

        Raises:
            SessionExpired: the session ended before or while waiting.
            InvalidRequest: this object already holds the lock.
        """
        place = await self._join()
        kv = self.session.kv
        try:
            if not place.is_first:
                await self.session.until_done(turn.wait_turn(kv, self.prefix, place.revision))
            if not await turn.is_still_mine(kv, place.key, place.revision):
                raise SessionExpired(self.session.lease_id, "the lock key was deleted while waiting")
        except BaseException:
            if place.created:
                await turn.withdraw(kv, place)
            raise
        self._key, self._revision = place.key, place.revision

    async def try_lock(self) -> None:
        """Take the lock if nobody holds it.

        Raises:
            Locked: another session holds the lock.
            SessionExpired: the session has ended.
            InvalidRequest: this object already holds the lock.
        """
        place = await self._join()
        if place.is_first:
            self._key, self._revision = place.key, place.revision
            return
        if place.holder is None:
            raise InvariantError("the lock's line was empty right after we joined it")
        if place.created:
            await turn.leave(self.session.kv, place.key, place.revision)
        raise Locked(place.holder.key, place.holder.create_revision)

    async def unlock(self) -> None:
        """Release the lock (deleting our key if it is still ours).

        Raises:
            InvalidRequest: the lock is not held.
        """
        if not self._revision:
            raise InvalidRequest("the lock is not held")
        await turn.leave(self.session.kv, self._key, self._revision)
        self._key, self._revision = b"", 0

    async def __aenter__(self) -> Mutex:
        await self.lock()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.unlock()

    async def _join(self) -> turn.Place:
        if self._revision:
            raise InvalidRequest("this Mutex already holds the lock")
        self.session.check()
        lease = self.session.lease_id
        key = self.prefix + f"{lease:x}".encode("ascii")
        return await turn.join(self.session.kv, self.prefix, key, b"", lease)
