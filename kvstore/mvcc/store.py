"""The revisioned key space, with etcd's MVCC semantics, in memory.

Contract:

- The store starts at revision 1 with no keys (as etcd). Every write that
  changes something (a put; a delete-range, txn or lease revoke that deletes
  or puts at least one key) commits at the next revision; the writes of one
  request share it, in order (their sub-revisions). A request that changes
  nothing leaves the revision alone.
- ``range`` reads the latest state or, with ``revision``, any revision from
  the compact revision to the current one; it never returns tombstones.
- A request is checked completely before anything changes: if it raises, the
  store is as it was. Errors are ``kvstore.errors`` types.
- ``compact(rev)`` keeps, for each key, its versions after ``rev`` and its
  latest live version at or below ``rev``; reads at ``rev`` or later keep
  working. Watchers replay from the change log, which holds every write after
  the compact revision in (revision, sub-revision) order.

Deterministic: the same requests in the same order give the same state, the
same results and the same ``hash_kv`` on every member. Not thread-safe.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence
from operator import attrgetter

from kvstore.errors import Compacted, FutureRevision, InvalidRequest, InvariantError, LeaseNotFound, TooLarge
from kvstore.mvcc.changelog import ChangeLog
from kvstore.mvcc.index import TreeIndex, entry_before, live_at
from kvstore.mvcc.keys import ALL_KEYS, key_range, to_bytes
from kvstore.mvcc.lease import Lessor
from kvstore.mvcc.request import (
    CompactRequest,
    Compare,
    DeleteRangeRequest,
    LeaseGrantRequest,
    LeaseRevokeRequest,
    Limits,
    PutRequest,
    RangeRequest,
    Request,
    RequestOp,
    TxnRequest,
    check_request,
    op_txn,
)
from kvstore.mvcc.txn import Plan, plan_txn
from kvstore.mvcc.types import (
    CompactResult,
    DeleteRangeResult,
    KeyValue,
    LeaseGrantResult,
    LeaseRevokeResult,
    PutResult,
    RangeResult,
    Response,
    SortOrder,
    SortTarget,
    TxnResult,
    new_key_value,
    new_put_result,
)
from kvstore.mvcc.watch import WatchHub

__all__ = ["KVStore"]

_SORT_KEYS = {
    SortTarget.VERSION: attrgetter("version"),
    SortTarget.CREATE: attrgetter("create_revision"),
    SortTarget.MOD: attrgetter("mod_revision"),
    SortTarget.VALUE: attrgetter("value"),
}
_HASH_HEAD = struct.Struct(">qqqqII")


class _Batch:
    """The writes of one request, all at revision ``rev``, in sub-revision order."""

    __slots__ = ("rev", "kvs", "prevs")

    def __init__(self, rev: int) -> None:
        self.rev = rev
        self.kvs: list[KeyValue] = []
        self.prevs: list[KeyValue | None] = []


class KVStore:
    """The key space, its history, its change log and its watch hub (see the module docstring)."""

    def __init__(self, lessor: Lessor, *, limits: Limits | None = None, watch_buffer_events: int = 1024) -> None:
        self.lessor = lessor
        self.limits = limits if limits is not None else Limits()
        self.index = TreeIndex()
        self._rev = 1
        self._compact_rev = 0
        self._log = ChangeLog()
        self.hub = WatchHub(self, buffer_events=watch_buffer_events)

    @property
    def revision(self) -> int:
        """The revision of the last committed write (1 for an empty store)."""
        return self._rev

    @property
    def compact_revision(self) -> int:
        """The revision history was last compacted to (0 if never)."""
        return self._compact_rev

    # -- reads ---------------------------------------------------------

    def range(
        self,
        key: bytes | str,
        range_end: bytes | str | None = None,
        *,
        prefix: bool = False,
        limit: int = 0,
        revision: int = 0,
        keys_only: bool = False,
        count_only: bool = False,
        sort_order: SortOrder = SortOrder.NONE,
        sort_target: SortTarget = SortTarget.KEY,
    ) -> RangeResult:
        """Read a key or a range of keys, at the current revision or an older one.

        ``range_end == b"\\0"`` reads every key ``>= key``; ``prefix=True`` reads
        every key starting with ``key``. ``count`` is the number of matches
        before ``limit``; ``more`` says the limit cut them short.

        Raises:
            Compacted: ``revision`` is below the compact revision.
            FutureRevision: ``revision`` is above the current one.
            InvalidRequest: a negative limit or revision, or bad arguments.
        """
        start, end = key_range(key, range_end, prefix=prefix)
        request = RangeRequest(start, end, limit, revision, keys_only, count_only, sort_order, sort_target)
        check_request(request, self.limits)
        return self._range(request, self._rev)

    def get(self, key: bytes | str, *, revision: int = 0) -> KeyValue | None:
        """The live version of one key, or ``None``."""
        kvs = self.range(key, revision=revision).kvs
        return kvs[0] if kvs else None

    def _range(self, r: RangeRequest, header: int) -> RangeResult:
        revision = self._read_revision(r.revision)
        order, target = r.sort_order, r.sort_target
        if order == SortOrder.NONE and target != SortTarget.KEY:
            order = SortOrder.ASCEND  # etcd: a target without an order sorts ascending
        natural = target == SortTarget.KEY
        reverse = natural and order == SortOrder.DESCEND
        if natural and not revision:
            return self._range_latest(r, reverse, header)
        histories = self.index.histories
        keys = self.index.keys(r.key, r.range_end, reverse=reverse)
        kvs: list[KeyValue] = []
        count = 0
        limit = r.limit
        for k in keys:
            history = histories[k]
            if revision:
                kv = live_at(history, revision)
                if kv is None:
                    continue
            else:
                kv = history[-1]
                if not kv.version:
                    continue
            count += 1
            if not natural or (not r.count_only and (not limit or len(kvs) < limit)):
                kvs.append(kv)
        if not natural:
            kvs.sort(key=_SORT_KEYS[target], reverse=order == SortOrder.DESCEND)
            if limit:
                del kvs[limit:]
        return self._range_result(r, kvs, count, header)

    def _range_latest(self, r: RangeRequest, reverse: bool, header: int) -> RangeResult:
        """A key-ordered read of the latest revision: counted by the index, walked only to ``limit``."""
        if r.range_end is None:
            history = self.index.histories.get(r.key)
            kv = history[-1] if history is not None else None
            found = [kv] if kv is not None and kv.version else []
            return self._range_result(r, found, len(found), header)
        count = self.index.count(r.key, r.range_end)
        kvs: list[KeyValue] = []
        if count and not r.count_only:
            histories = self.index.histories
            limit = r.limit or count
            for k in self.index.keys(r.key, r.range_end, reverse=reverse):
                kv = histories[k][-1]
                if kv.version:
                    kvs.append(kv)
                    if len(kvs) == limit:
                        break
        return self._range_result(r, kvs, count, header)

    @staticmethod
    def _range_result(r: RangeRequest, kvs: list[KeyValue], count: int, header: int) -> RangeResult:
        if r.count_only:
            kvs = []
        elif r.keys_only:
            kvs = [new_key_value(kv.key, b"", kv.create_revision, kv.mod_revision, kv.version, kv.lease) for kv in kvs]
        more = bool(r.limit) and count > r.limit and not r.count_only
        return RangeResult(tuple(kvs), count, more, header)

    def _read_revision(self, revision: int) -> int:
        """Check a read revision; 0 stays 0 (latest)."""
        if revision == 0:
            return 0
        if revision < 0:
            raise InvalidRequest(f"negative revision {revision}")
        if revision > self._rev:
            raise FutureRevision(revision, self._rev)
        if revision < self._compact_rev:
            raise Compacted(revision, self._compact_rev)
        return revision

    # -- writes --------------------------------------------------------

    def put(
        self,
        key: bytes | str,
        value: bytes | str,
        *,
        lease: int = 0,
        prev_kv: bool = False,
        ignore_value: bool = False,
        ignore_lease: bool = False,
    ) -> PutResult:
        """Write one key at the next revision.

        ``ignore_value`` keeps the key's current value, ``ignore_lease`` its
        current lease; both need the key to exist.

        Raises:
            TooLarge: the key or value is above its limit.
            LeaseNotFound: ``lease`` names no lease.
            InvalidRequest: an empty key, or ``ignore_*`` on a missing key.
        """
        k = key if type(key) is bytes else to_bytes(key)
        v = value if type(value) is bytes else to_bytes(value, "value")
        return self.put_bytes(k, v, lease, prev_kv, ignore_value, ignore_lease)

    def put_bytes(
        self, k: bytes, v: bytes, lease: int, want_prev: bool, ignore_value: bool, ignore_lease: bool
    ) -> PutResult:
        """``put`` for callers that already hold ``bytes`` (the apply path); same checks."""
        if type(lease) is not int or not 0 <= lease < 1 << 63:
            raise InvalidRequest(f"invalid lease id {lease!r}")
        rev = self._rev + 1
        kv, prev = self._write(k, v, lease, ignore_value, ignore_lease, rev)
        self._log.append_one(kv)
        self._rev = rev
        if self.hub.active:
            self.hub.notify(rev, (kv,), (prev,))
        return new_put_result(rev, prev if want_prev else None)

    def _write(
        self, k: bytes, v: bytes, lease: int, ignore_value: bool, ignore_lease: bool, rev: int
    ) -> tuple[KeyValue, KeyValue | None]:
        """Check and record one put at ``rev``; return the new version and the previous live one."""
        limits = self.limits
        if not k:
            raise InvalidRequest("empty key")
        if len(k) > limits.max_key_bytes:
            raise TooLarge("key", len(k), limits.max_key_bytes)
        if len(v) > limits.max_value_bytes:
            raise TooLarge("value", len(v), limits.max_value_bytes)
        history = self.index.histories.get(k)
        prev = history[-1] if history is not None else None
        if prev is not None and not prev.version:
            prev = None
        if ignore_lease and lease:
            raise InvalidRequest("a put with ignore_lease must not name a lease")
        lessor = self.lessor
        if lease and lease not in lessor:
            raise LeaseNotFound(lease)
        if ignore_value or ignore_lease:
            if prev is None:
                raise InvalidRequest(f"key {k!r} not found")
            if ignore_value:
                v = prev.value
            if ignore_lease:
                lease = prev.lease
        if prev is None:
            kv = new_key_value(k, v, rev, rev, 1, lease)
            if lease:
                lessor.attach(lease, k)
        else:
            kv = new_key_value(k, v, prev.create_revision, rev, prev.version + 1, lease)
            if prev.lease != lease:
                if prev.lease:
                    lessor.detach(prev.lease, k)
                if lease:
                    lessor.attach(lease, k)
        if history is None:
            self.index.insert(kv)
        else:
            if prev is None:
                self.index.mark_live(k)  # a new generation after a tombstone
            history.append(kv)
        return kv, prev

    def delete_range(
        self, key: bytes | str, range_end: bytes | str | None = None, *, prefix: bool = False, prev_kv: bool = False
    ) -> DeleteRangeResult:
        """Delete a key or a range of keys at the next revision (if any exist).

        Raises:
            InvalidRequest: bad arguments (e.g. an empty single key).
            TooLarge: the key or range end is above the key limit.
        """
        start, end = key_range(key, range_end, prefix=prefix)
        request = DeleteRangeRequest(start, end, prev_kv)
        check_request(request, self.limits)
        return self._delete_range(request)

    def _delete_range(self, request: DeleteRangeRequest) -> DeleteRangeResult:
        batch = _Batch(self._rev + 1)
        result = self._delete_into(batch, request, batch.rev)
        self._commit(batch)
        if not result.deleted:
            return DeleteRangeResult(0, self._rev)
        return result

    def _delete_into(self, batch: _Batch, request: DeleteRangeRequest, header: int) -> DeleteRangeResult:
        histories = self.index.histories
        keys = list(self.index.keys(request.key, request.range_end))
        prevs: list[KeyValue] = []
        deleted = 0
        for k in keys:
            history = histories[k]
            prev = history[-1]
            if not prev.version:
                continue
            self._delete_one(batch, history, prev)
            deleted += 1
            if request.prev_kv:
                prevs.append(prev)
        return DeleteRangeResult(deleted, header, tuple(prevs))

    def _delete_one(self, batch: _Batch, history: list[KeyValue], prev: KeyValue) -> None:
        tombstone = new_key_value(prev.key, b"", 0, batch.rev, 0, 0)
        history.append(tombstone)
        self.index.mark_dead(prev.key)
        if prev.lease:
            self.lessor.detach(prev.lease, prev.key)
        batch.kvs.append(tombstone)
        batch.prevs.append(prev)

    def _commit(self, batch: _Batch) -> None:
        if not batch.kvs:
            return
        if batch.rev != self._rev + 1:
            raise InvariantError(f"batch at revision {batch.rev} committed at {self._rev}")
        self._log.append(batch.kvs)
        self._rev = batch.rev
        if self.hub.active:
            self.hub.notify(batch.rev, batch.kvs, batch.prevs)

    # -- transactions --------------------------------------------------

    def txn(
        self, compare: Sequence[Compare] = (), success: Sequence[RequestOp] = (), failure: Sequence[RequestOp] = ()
    ) -> TxnResult:
        """If every compare holds run ``success``, else ``failure``: atomically, at one revision.

        Compares (and those of nested txns) are evaluated on the state before
        the txn; reads inside it see its earlier writes. A txn that changes
        nothing keeps the current revision.

        Raises:
            TooManyOps: a list above ``Limits.max_txn_ops``.
            InvalidRequest: a key put twice, or put and deleted, in one branch.
            LeaseNotFound, Compacted, FutureRevision: an operation on the chosen
                path cannot apply; nothing was changed.
        """
        request = op_txn(compare, success, failure)
        check_request(request, self.limits)
        return self._txn(request)

    def _txn(self, request: TxnRequest) -> TxnResult:
        plan = plan_txn(self.index, request)
        writes = self._check_plan(plan)
        batch = _Batch(self._rev + 1)
        result = self._run_plan(plan, batch, batch.rev if writes else self._rev)
        if bool(batch.kvs) != writes:
            raise InvariantError("txn wrote differently from its plan")
        self._commit(batch)
        return result

    def _check_plan(self, plan: Plan) -> bool:
        """Raise if an operation on the path cannot apply; return whether the path writes."""
        writes = False
        for op in plan.ops:
            if isinstance(op, Plan):
                writes = self._check_plan(op) or writes
            elif isinstance(op, PutRequest):
                writes = True
                if op.lease and op.lease not in self.lessor:
                    raise LeaseNotFound(op.lease)
                if op.ignore_value or op.ignore_lease:
                    history = self.index.histories.get(op.key)
                    if history is None or not history[-1].version:
                        raise InvalidRequest(f"key {op.key!r} not found")
            elif isinstance(op, DeleteRangeRequest):
                if not writes:
                    writes = self._has_live(op.key, op.range_end)
            else:
                self._read_revision(op.revision)
        return writes

    def _has_live(self, start: bytes, end: bytes | None) -> bool:
        histories = self.index.histories
        return any(histories[k][-1].version for k in self.index.keys(start, end))

    def _run_plan(self, plan: Plan, batch: _Batch, header: int) -> TxnResult:
        responses: list[Response] = []
        for op in plan.ops:
            if isinstance(op, Plan):
                responses.append(self._run_plan(op, batch, header))
            elif isinstance(op, PutRequest):
                kv, prev = self._write(op.key, op.value, op.lease, op.ignore_value, op.ignore_lease, batch.rev)
                batch.kvs.append(kv)
                batch.prevs.append(prev)
                responses.append(PutResult(header, prev if op.prev_kv else None))
            elif isinstance(op, DeleteRangeRequest):
                responses.append(self._delete_into(batch, op, header))
            else:
                responses.append(self._range(op, header))
        return TxnResult(plan.succeeded, tuple(responses), header)

    # -- compaction, leases, dispatch -----------------------------------

    def compact(self, revision: int) -> CompactResult:
        """Drop history older than ``revision`` (see the module docstring).

        Raises:
            FutureRevision: ``revision`` is above the current revision.
            Compacted: ``revision`` is not above the current compact revision.
        """
        if revision > self._rev:
            raise FutureRevision(revision, self._rev)
        if revision <= self._compact_rev:
            raise Compacted(revision, self._compact_rev)
        # Only keys written after the last compaction can have versions to drop.
        for key in dict.fromkeys(kv.key for kv in self._log.truncate(revision)):
            self.index.compact_key(key, revision)
        self._compact_rev = revision
        self.hub.on_compact(revision)
        return CompactResult(self._rev, revision)

    def lease_grant(self, ttl: int, lease_id: int = 0) -> LeaseGrantResult:
        """Create a lease (id 0: the next free id); see ``Lessor.grant``."""
        granted_id, granted_ttl = self.lessor.grant(lease_id, ttl)
        return LeaseGrantResult(granted_id, granted_ttl, self._rev)

    def lease_revoke(self, lease_id: int) -> LeaseRevokeResult:
        """End a lease and delete every key attached to it, all at one revision.

        Raises:
            LeaseNotFound: no such lease.
        """
        keys = self.lessor.keys(lease_id)
        batch = _Batch(self._rev + 1)
        histories = self.index.histories
        for k in keys:
            history = histories.get(k)
            prev = history[-1] if history else None
            if prev is None or not prev.version or prev.lease != lease_id:
                raise InvariantError(f"lease {lease_id} lists key {k!r} that is not attached to it")
            self._delete_one(batch, history, prev)  # type: ignore[arg-type]
        self.lessor.remove(lease_id)
        self._commit(batch)
        return LeaseRevokeResult(len(keys), self._rev)

    def execute(self, request: Request) -> Response:
        """Check and apply any request (the state machine's entry point)."""
        check_request(request, self.limits)
        if isinstance(request, PutRequest):
            return self.put_bytes(
                request.key, request.value, request.lease, request.prev_kv, request.ignore_value, request.ignore_lease
            )
        if isinstance(request, RangeRequest):
            return self._range(request, self._rev)
        if isinstance(request, DeleteRangeRequest):
            return self._delete_range(request)
        if isinstance(request, TxnRequest):
            return self._txn(request)
        if isinstance(request, CompactRequest):
            return self.compact(request.revision)
        if isinstance(request, LeaseGrantRequest):
            return self.lease_grant(request.ttl, request.id)
        if isinstance(request, LeaseRevokeRequest):
            return self.lease_revoke(request.id)
        raise InvalidRequest(f"not a request: {type(request).__name__}")

    # -- hashing, change log, snapshots ---------------------------------

    def hash_kv(self, revision: int = 0) -> tuple[int, int, int]:
        """CRC-32 of every retained version at or below ``revision`` (0: current).

        Returns ``(hash, revision, compact_revision)``; equal on members that
        applied the same requests (etcd's HashKV, in spirit).
        """
        rev = self._read_revision(revision) or self._rev
        pack = _HASH_HEAD.pack
        crc = zlib.crc32(struct.pack(">q", self._compact_rev))
        histories = self.index.histories
        for key in self.index.keys(b"", ALL_KEYS):
            for kv in histories[key]:
                if kv.mod_revision > rev:
                    break
                head = pack(kv.create_revision, kv.mod_revision, kv.version, kv.lease, len(key), len(kv.value))
                crc = zlib.crc32(kv.value, zlib.crc32(key, zlib.crc32(head, crc)))
        return crc, rev, self._compact_rev

    def changes(self, from_revision: int, to_revision: int = 0) -> Iterator[tuple[int, list[KeyValue]]]:
        """The writes of each revision in ``[from_revision, to_revision]``, in sub-revision order.

        ``to_revision`` 0 means the current revision. The iterator reads the
        change log as it is now: later writes, compactions and restores do not
        disturb it.

        Raises:
            Compacted: ``from_revision`` is at or below the compact revision.
        """
        if from_revision <= self._compact_rev:
            raise Compacted(from_revision, self._compact_rev)
        return self._log.read(from_revision, to_revision or self._rev)

    @property
    def change_log(self) -> ChangeLog:
        """The change log (read only): the same object until a restore replaces it."""
        return self._log

    def change_spans(
        self, from_revision: int, to_revision: int, max_writes: int
    ) -> Iterator[tuple[int, list[KeyValue], list[int]]]:
        """``changes`` in runs of about ``max_writes`` writes: ``(first revision, writes, writes per revision)``.

        Raises:
            Compacted: ``from_revision`` is at or below the compact revision.
        """
        if from_revision <= self._compact_rev:
            raise Compacted(from_revision, self._compact_rev)
        return self._log.spans(from_revision, to_revision, max_writes)

    def previous(self, kv: KeyValue) -> KeyValue | None:
        """The live version of ``kv.key`` just before ``kv`` was written, if any."""
        history = self.index.histories.get(kv.key)
        if history is None:
            return None
        prev = entry_before(history, kv.mod_revision)
        return prev if prev is not None and prev.version else None

    def install(
        self,
        histories: dict[bytes, list[KeyValue]],
        entries: list[KeyValue],
        counts: Sequence[int],
        *,
        revision: int,
        compact_revision: int,
        leases: Sequence[tuple[int, int]],
        next_lease_id: int,
    ) -> None:
        """Replace the whole replicated state (snapshot restore); all or nothing.

        ``entries`` holds the writes after the compact revision in commit order,
        each one an entry of ``histories``; ``counts[i]`` is the number of
        writes of revision ``max(compact_revision, 1) + 1 + i``. ``leases`` is
        ``(id, ttl)`` per lease. Watchers resynchronise from the new log.

        Raises:
            InvariantError: the parts do not fit together.
        """
        base = max(compact_revision, 1)
        if not 0 <= compact_revision <= revision or len(counts) != revision - base:
            raise InvariantError(f"{len(counts)} logged revisions for ({compact_revision}, {revision}]")
        log = ChangeLog.rebuild(base, entries, counts)
        for kv in entries:
            history = histories.get(kv.key)
            if history is None or entry_before(history, kv.mod_revision + 1) is not kv:
                raise InvariantError(f"logged write of {kv.key!r} at {kv.mod_revision} is not in its history")
        lease_ids = {lease_id for lease_id, _ in leases}
        attached: list[tuple[int, bytes]] = []
        for key, history in histories.items():
            kv = history[-1]
            if kv.version and kv.lease:
                if kv.lease not in lease_ids:
                    raise InvariantError(f"key {key!r} is attached to missing lease {kv.lease}")
                attached.append((kv.lease, key))
        old_revision = self._rev
        self.lessor.load(list(leases), next_lease_id)
        for lease_id, key in attached:
            self.lessor.attach(lease_id, key)
        self.index.load(histories)
        self._log = log
        self._rev, self._compact_rev = revision, compact_revision
        self.hub.on_restore(old_revision)
