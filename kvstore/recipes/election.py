"""Leader election: one leader at a time, candidates in line, observers told of each change.

Each candidate creates ``<prefix>/<lease id in hex>`` holding its value, bound
to its session's lease; the key with the smallest create revision is the
leader (the same line as ``Mutex``, see ``turn``).

- ``campaign(value)`` waits until this candidate leads. Cancelled, failed or
  outlived by its session, it withdraws its key.
- ``proclaim(value)`` changes the leader's value, in a txn guarded by the
  create revision of its key: a leader that lost its key (its lease ended)
  gets ``NotElected`` and changes nothing.
- ``resign()`` gives leadership (or the place in line) up; the next
  candidate in line leads.
- ``leader()`` reads the current leader's key and value (``None`` if none).
- ``observe()`` yields the leader's ``KeyValue`` each time the leader or its
  value changes; it follows one key at a time and reads the line again when
  that key goes.

A session campaigns in a given election at most once (its key is its lease).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from kvstore.errors import Compacted, InvalidRequest
from kvstore.mvcc.keys import prefix_end, to_bytes
from kvstore.mvcc.request import CompareTarget, compare, op_put
from kvstore.mvcc.types import EventType, KeyValue
from kvstore.recipes import turn
from kvstore.recipes.errors import NotElected, SessionExpired
from kvstore.kv import close_stream
from kvstore.recipes.session import Session

__all__ = ["Election"]


class Election:
    """An election under ``prefix`` in which ``session`` may stand (see the module docstring)."""

    def __init__(self, session: Session, prefix: bytes | str) -> None:
        self.session = session
        self.prefix = to_bytes(prefix, "prefix") + b"/"
        self._key = b""
        self._revision = 0

    @property
    def key(self) -> bytes:
        """Our key while we lead (``b""`` otherwise)."""
        return self._key

    @property
    def revision(self) -> int:
        """Create revision of our key while we lead (0 otherwise)."""
        return self._revision

    def is_leader(self) -> bool:
        """True between a successful ``campaign`` and ``resign`` (as far as we know)."""
        return self._revision != 0

    async def campaign(self, value: bytes | str) -> None:
        """Stand with ``value`` and wait until elected.

        Raises:
            SessionExpired: the session ended before or while waiting.
            InvalidRequest: this object already leads.
        """
        if self._revision:
            raise InvalidRequest("this Election already leads; resign first")
        self.session.check()
        lease = self.session.lease_id
        data = to_bytes(value, "value")
        key = self.prefix + f"{lease:x}".encode("ascii")
        kv = self.session.kv
        place = await turn.join(kv, self.prefix, key, data, lease)
        try:
            if place.value != data and not await self._put(key, place.revision, data):
                raise SessionExpired(lease, "the candidate key was deleted")
            if not place.is_first:
                await self.session.until_done(turn.wait_turn(kv, self.prefix, place.revision))
            if not await turn.is_still_mine(kv, key, place.revision):
                raise SessionExpired(lease, "the candidate key was deleted while waiting")
        except BaseException:
            if place.created:
                await turn.withdraw(kv, place)
            raise
        self._key, self._revision = key, place.revision

    async def proclaim(self, value: bytes | str) -> None:
        """Set the leader's value without an election.

        Raises:
            NotElected: we do not lead (never elected, resigned, or our lease ended).
        """
        if not self._revision:
            raise NotElected("not the leader: campaign first")
        if not await self._put(self._key, self._revision, to_bytes(value, "value")):
            self._key, self._revision = b"", 0
            raise NotElected("no longer the leader: our key is gone")

    async def resign(self) -> None:
        """Give up leadership; the next candidate in line is elected. Does nothing if not leading."""
        if not self._revision:
            return
        await turn.leave(self.session.kv, self._key, self._revision)
        self._key, self._revision = b"", 0

    async def leader(self) -> KeyValue | None:
        """The current leader's key and value, or ``None`` when nobody stands."""
        holder, _ = await turn.first_created(self.session.kv, self.prefix)
        return holder

    async def observe(self) -> AsyncIterator[KeyValue]:
        """Yield the leader's ``KeyValue`` now and each time the leader or its value changes.

        Waits while nobody stands. Close the iterator (``aclose``) to stop.
        """
        kv = self.session.kv
        last: tuple[bytes, int, bytes] | None = None
        while True:
            head, read_revision = await turn.first_created(kv, self.prefix)
            if head is None:
                await turn.wait_event(
                    kv, self.prefix, prefix_end(self.prefix),
                    after_revision=read_revision, kind=EventType.PUT,
                )
                continue
            if (head.key, head.create_revision, head.value) != last:
                last = (head.key, head.create_revision, head.value)
                yield head
            value = head.value
            # Follow this leader's key until it goes, then read the line again.
            try:
                stream = await kv.watch(head.key, start_revision=read_revision + 1)
            except Compacted:
                continue
            try:
                async for resp in stream:
                    gone = resp.canceled
                    for ev in resp.events:
                        if ev.type == EventType.DELETE:
                            gone = True
                            break
                        if ev.kv.value != value:
                            value = ev.kv.value
                            last = (ev.kv.key, ev.kv.create_revision, value)
                            yield ev.kv
                    if gone:
                        break
            except Compacted:
                pass
            finally:
                await close_stream(stream)

    async def _put(self, key: bytes, revision: int, value: bytes) -> bool:
        """Set our key's value if the key is still the one created at ``revision``."""
        res = await self.session.kv.txn(
            [compare(key, CompareTarget.CREATE, "=", revision)],
            [op_put(key, value, lease=self.session.lease_id)],
            [],
        )
        return res.succeeded
