"""The replicated state machine: one ``apply`` per committed Raft entry.

``KVStateMachine`` joins the key space (``KVStore``), its watch hub and the
lessor behind the one interface the node driver and the simulator call:

- ``apply(index, data)``: decode one command (``kvstore.mvcc.command``) and
  apply it. Entries at or below ``applied_index`` are skipped (``None``), so
  replaying the log over a restored snapshot is safe; empty entries (Raft's
  leader no-ops) only advance the index. A request that is at fault
  (malformed, too large, an unknown lease, a compacted revision...) does not
  raise: its ``RequestError`` is *returned* as the result, nothing changes,
  and the index still advances, so every member fails it identically and the
  next entry applies as usual. Anything else raised is a bug.
- ``apply_batch(index, commands)``: the same for an entry that holds several
  commands (``kvstore.proposals``): one index, a revision and a result each.
- ``snapshot_chunks`` / ``restore``: the whole replicated state (every key's
  retained history, the change log, current and compact revision, leases,
  the applied index) as a stream of bounded chunks.
- ``hash_kv`` (the key space at a revision) and ``hash_state`` (everything
  replicated): equal on members that applied the same entries.

Leader-only lease expiry goes through ``lessor``: the driver calls
``lessor.promote()`` / ``demote()`` on leadership changes and proposes
``LeaseRevokeRequest(id)`` for each id from ``lessor.expired()``.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator, Sequence

from kvstore.clock import Clock
from kvstore.errors import RequestError
from kvstore.mvcc import command
from kvstore.mvcc.lease import Lessor
from kvstore.mvcc.request import Limits
from kvstore.mvcc.snapshot import Chunk, SnapshotReuse, write_snapshot
from kvstore.mvcc.snapshot_reader import read_snapshot
from kvstore.mvcc.store import KVStore
from kvstore.mvcc.types import Response

__all__ = ["ApplyResult", "KVStateMachine"]

ApplyResult = Response | RequestError | None
"""What ``apply`` gives back: a response, the request's error, or ``None`` (nothing to answer)."""


class KVStateMachine:
    """Key space + watch hub + leases, driven by committed entries (see the module docstring)."""

    def __init__(self, clock: Clock, *, limits: Limits | None = None, watch_buffer_events: int = 1024) -> None:
        self.lessor = Lessor(clock)
        self.store = KVStore(self.lessor, limits=limits, watch_buffer_events=watch_buffer_events)
        self.hub = self.store.hub
        self._applied = 0
        # Commands applied by this machine (a batch entry holds several).
        self.applied_requests = 0

    @property
    def applied_index(self) -> int:
        """The index of the last entry applied (etcd's consistent index)."""
        return self._applied

    def apply(self, index: int, data: bytes) -> ApplyResult:
        """Apply the committed entry at ``index`` (see the module docstring)."""
        if index <= self._applied:
            return None
        self._applied = index
        if not data:
            return None
        self.applied_requests += 1
        return self._execute(data)

    def apply_batch(self, index: int, commands: Sequence[bytes]) -> list[ApplyResult]:
        """Apply the committed entry at ``index`` that holds ``commands``, in order.

        Each command gets its own revision and result, as if each were an
        entry of its own; an entry applied before gives ``None`` for each.
        """
        if index <= self._applied:
            return [None] * len(commands)
        self._applied = index
        self.applied_requests += len(commands)
        return [self._execute(data) for data in commands]

    def _execute(self, data: bytes) -> ApplyResult:
        try:
            fields = command.unpack(data)
            if fields[0] == command.CommandType.PUT and len(fields) == 5:
                # The common case, without building a PutRequest first.
                _, key, value, lease, flags = fields
                if type(key) is bytes and type(value) is bytes and type(lease) is int and type(flags) is int:
                    return self.store.put_bytes(key, value, lease, flags & 1 != 0, flags & 2 != 0, flags & 4 != 0)
            return self.store.execute(command.from_fields(fields))
        except RequestError as err:
            return err

    def snapshot_chunks(
        self, chunk_bytes: int = 1 << 20, *, reuse: SnapshotReuse | None = None
    ) -> Iterator[Chunk]:
        """The replicated state as of now, in chunks of about ``chunk_bytes``.

        The state is pinned by this call; the store may keep applying while
        the chunks are consumed (see ``kvstore.mvcc.snapshot``). ``reuse``
        carries the history packed for the previous snapshot over to this one.
        """
        return write_snapshot(self.store, self._applied, chunk_bytes=chunk_bytes, reuse=reuse)

    def restore(self, chunks: Iterable[Chunk]) -> None:
        """Replace the whole replicated state with a snapshot's; all or nothing.

        Lease deadlines restart at full TTL if this member is the leader;
        watchers resynchronise (or end, if the snapshot compacted past them).

        Raises:
            CorruptError: the stream is damaged (nothing was changed).
        """
        image = read_snapshot(chunks)
        self.store.install(
            image.histories,
            image.log,
            image.counts,
            revision=image.revision,
            compact_revision=image.compact_revision,
            leases=image.leases,
            next_lease_id=image.next_lease_id,
        )
        self._applied = image.applied_index

    def hash_kv(self, revision: int = 0) -> tuple[int, int, int]:
        """``(hash, revision, compact_revision)`` of the key space; see ``KVStore.hash_kv``."""
        return self.store.hash_kv(revision)

    def hash_state(self) -> int:
        """CRC-32 of everything replicated: key space, revisions, leases, applied index."""
        kv_hash, revision, compact = self.store.hash_kv()
        crc = zlib.crc32(struct.pack(">QqqqQ", kv_hash, revision, compact, self._applied, self.lessor.next_id))
        for lease_id, ttl in self.lessor.table():
            crc = zlib.crc32(struct.pack(">qq", lease_id, ttl), crc)
            for key in self.lessor.keys(lease_id):
                crc = zlib.crc32(struct.pack(">I", len(key)) + key, crc)
        return crc
