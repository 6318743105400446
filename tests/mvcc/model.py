"""A deliberately naive reference for the MVCC store: a full copy of the key space per revision.

It answers the same requests with the same result values (or the same error
type), so property tests can compare the store against it operation by
operation. Txns here are flat (no nested txns); nested ones have unit tests.
"""

from __future__ import annotations

from dataclasses import replace

from kvstore.errors import Compacted, FutureRevision, InvalidRequest, KvError, LeaseExists, LeaseNotFound
from kvstore.mvcc import (
    CompactResult,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    DeleteRangeResult,
    KeyValue,
    LeaseGrantResult,
    LeaseRevokeResult,
    MIN_TTL_SECONDS,
    PutRequest,
    PutResult,
    RangeRequest,
    RangeResult,
    SortOrder,
    SortTarget,
    TxnRequest,
    TxnResult,
)
from kvstore.mvcc.keys import in_range

State = dict[bytes, KeyValue]
Outcome = object  # a result value, or the KvError subclass expected


class Model:
    def __init__(self) -> None:
        self.rev = 1
        self.compact_rev = 0
        self.states: dict[int, State] = {1: {}}
        self.leases: dict[int, int] = {}
        self.next_lease = 1
        # every write, per revision, in order: (kv or tombstone, previous live kv)
        self.events: dict[int, list[tuple[KeyValue, KeyValue | None]]] = {}

    @property
    def current(self) -> State:
        return self.states[self.rev]

    # -- reads -------------------------------------------------------------

    def range(self, r: RangeRequest, header: int | None = None, state: State | None = None) -> Outcome:
        if r.revision < 0 or r.limit < 0:
            return InvalidRequest
        if r.revision > self.rev:
            return FutureRevision
        if r.revision and r.revision < self.compact_rev:
            return Compacted
        if state is None or r.revision:
            state = self.states[r.revision or self.rev]
        kvs = [state[k] for k in sorted(state) if in_range(k, r.key, r.range_end)]
        count = len(kvs)
        order, target = r.sort_order, r.sort_target
        if order == SortOrder.NONE and target != SortTarget.KEY:
            order = SortOrder.ASCEND
        if target == SortTarget.KEY:
            if order == SortOrder.DESCEND:
                kvs.reverse()
        else:
            field = {
                SortTarget.VERSION: "version",
                SortTarget.CREATE: "create_revision",
                SortTarget.MOD: "mod_revision",
                SortTarget.VALUE: "value",
            }[target]
            kvs.sort(key=lambda kv: getattr(kv, field), reverse=order == SortOrder.DESCEND)
        if r.limit:
            kvs = kvs[: r.limit]
        more = bool(r.limit) and count > r.limit and not r.count_only
        if r.count_only:
            kvs = []
        elif r.keys_only:
            kvs = [replace(kv, value=b"") for kv in kvs]
        return RangeResult(tuple(kvs), count, more, self.rev if header is None else header)

    # -- writes ------------------------------------------------------------

    def put(self, p: PutRequest) -> Outcome:
        outcome = self._check_put(p, self.current)
        if outcome is not None:
            return outcome
        work = dict(self.current)
        writes: list[tuple[KeyValue, KeyValue | None]] = []
        prev = self._put(work, p, self.rev + 1, writes)
        self._commit(work, writes)
        return PutResult(self.rev, prev if p.prev_kv else None)

    def delete(self, d: DeleteRangeRequest) -> Outcome:
        if d.range_end is None and not d.key:
            return InvalidRequest
        work = dict(self.current)
        writes: list[tuple[KeyValue, KeyValue | None]] = []
        prevs = self._delete(work, d.key, d.range_end, self.rev + 1, writes)
        self._commit(work, writes)
        return DeleteRangeResult(len(prevs), self.rev, tuple(prevs) if d.prev_kv else ())

    def txn(self, t: TxnRequest) -> Outcome:
        before = self.current
        ok = all(self._compare(c, before) for c in t.compare)
        ops = t.success if ok else t.failure
        for branch in (t.success, t.failure):
            # static checks of both branches, as the store does before choosing one
            if any(isinstance(op, PutRequest) and op.ignore_lease and op.lease for op in branch):
                return InvalidRequest
            if self._conflicting(branch):
                return InvalidRequest
        for op in ops:
            if isinstance(op, PutRequest):
                refused = self._check_put(op, before)
                if refused is not None:
                    return refused
            elif isinstance(op, RangeRequest):
                outcome = self.range(op)
                if isinstance(outcome, type):
                    return outcome
        writes: list[tuple[KeyValue, KeyValue | None]] = []
        work = dict(before)
        rev = self.rev + 1
        # header: the txn's revision if it writes anything
        will_write = any(
            isinstance(op, PutRequest)
            or (isinstance(op, DeleteRangeRequest) and any(in_range(k, op.key, op.range_end) for k in before))
            for op in ops
        )
        header = rev if will_write else self.rev
        responses: list[object] = []
        for op in ops:
            if isinstance(op, PutRequest):
                prev = self._put(work, op, rev, writes)
                responses.append(PutResult(header, prev if op.prev_kv else None))
            elif isinstance(op, DeleteRangeRequest):
                prevs = self._delete(work, op.key, op.range_end, rev, writes)
                responses.append(DeleteRangeResult(len(prevs), header, tuple(prevs) if op.prev_kv else ()))
            elif isinstance(op, RangeRequest):
                responses.append(self.range(op, header, work))
        self._commit(work, writes)
        return TxnResult(ok, tuple(responses), header)  # type: ignore[arg-type]

    def compact(self, revision: int) -> Outcome:
        if revision > self.rev:
            return FutureRevision
        if revision <= self.compact_rev:
            return Compacted
        self.compact_rev = revision
        for rev in [r for r in self.events if r <= revision]:
            del self.events[rev]
        return CompactResult(self.rev, revision)

    def lease_grant(self, ttl: int, lease_id: int) -> Outcome:
        if lease_id == 0:
            lease_id = self.next_lease
            while lease_id in self.leases:
                lease_id += 1
            self.next_lease = lease_id + 1
        elif lease_id in self.leases:
            return LeaseExists
        self.leases[lease_id] = max(ttl, MIN_TTL_SECONDS)
        return LeaseGrantResult(lease_id, self.leases[lease_id], self.rev)

    def lease_revoke(self, lease_id: int) -> Outcome:
        if lease_id not in self.leases:
            return LeaseNotFound
        del self.leases[lease_id]
        work = dict(self.current)
        writes: list[tuple[KeyValue, KeyValue | None]] = []
        doomed = sorted(k for k, kv in work.items() if kv.lease == lease_id)
        for k in doomed:
            self._delete(work, k, None, self.rev + 1, writes)
        self._commit(work, writes)
        return LeaseRevokeResult(len(doomed), self.rev)

    # -- helpers -----------------------------------------------------------

    def _check_put(self, p: PutRequest, state: State) -> type[KvError] | None:
        if not p.key:
            return InvalidRequest
        if p.ignore_lease and p.lease:
            return InvalidRequest
        if p.lease and p.lease not in self.leases:
            return LeaseNotFound
        if (p.ignore_value or p.ignore_lease) and p.key not in state:
            return InvalidRequest
        return None

    def _put(
        self, work: State, p: PutRequest, rev: int, writes: list[tuple[KeyValue, KeyValue | None]]
    ) -> KeyValue | None:
        prev = work.get(p.key)
        value = prev.value if p.ignore_value and prev else p.value
        lease = prev.lease if p.ignore_lease and prev else p.lease
        if prev is None:
            kv = KeyValue(p.key, value, rev, rev, 1, lease)
        else:
            kv = KeyValue(p.key, value, prev.create_revision, rev, prev.version + 1, lease)
        work[p.key] = kv
        writes.append((kv, prev))
        return prev

    def _delete(
        self,
        work: State,
        start: bytes,
        end: bytes | None,
        rev: int,
        writes: list[tuple[KeyValue, KeyValue | None]],
    ) -> list[KeyValue]:
        prevs = [work[k] for k in sorted(work) if in_range(k, start, end)]
        for prev in prevs:
            del work[prev.key]
            writes.append((KeyValue(prev.key, b"", 0, rev, 0, 0), prev))
        return prevs

    def _commit(self, work: State, writes: list[tuple[KeyValue, KeyValue | None]]) -> None:
        if writes:
            self.rev += 1
            self.states[self.rev] = work
            self.events[self.rev] = writes

    @staticmethod
    def _compare(c: Compare, state: State) -> bool:
        kvs = [state[k] for k in sorted(state) if in_range(k, c.key, c.range_end)]
        if not kvs:
            if c.target == CompareTarget.VALUE:
                return False
            kvs = [KeyValue(c.key, b"", 0, 0, 0, 0)]
        field = {
            CompareTarget.VERSION: "version",
            CompareTarget.CREATE: "create_revision",
            CompareTarget.MOD: "mod_revision",
            CompareTarget.VALUE: "value",
            CompareTarget.LEASE: "lease",
        }[c.target]
        for kv in kvs:
            a = getattr(kv, field)
            ok = {
                CompareResult.EQUAL: a == c.value,
                CompareResult.NOT_EQUAL: a != c.value,
                CompareResult.GREATER: a > c.value,
                CompareResult.LESS: a < c.value,
            }[c.result]
            if not ok:
                return False
        return True

    @staticmethod
    def _conflicting(ops: tuple[object, ...]) -> bool:
        puts = [op.key for op in ops if isinstance(op, PutRequest)]
        if len(set(puts)) != len(puts):
            return True
        dels = [op for op in ops if isinstance(op, DeleteRangeRequest)]
        return any(in_range(k, d.key, d.range_end) for k in puts for d in dels)
