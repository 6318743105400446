"""Random operation sequences against the reference model, through both entry points.

Machine ``a`` applies encoded commands (``KVStateMachine.apply``), machine
``b`` executes request objects (``KVStore.execute``) and is now and then
replaced by a restore from ``a``'s snapshot. Every result must equal the
model's, and the two machines must always hash alike.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from kvstore.clock import FakeClock
from kvstore.errors import KvError
from kvstore.mvcc import (
    ALL_KEYS,
    CompactRequest,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    KVStateMachine,
    LeaseGrantRequest,
    LeaseRevokeRequest,
    PutRequest,
    RangeRequest,
    Request,
    SortOrder,
    SortTarget,
    TxnRequest,
    encode,
    prefix_end,
)

from tests.mvcc.model import Model

KEYS = [b"a", b"ab", b"abc", b"b", b"c", b"d/1", b"d/2", b"\xff"]
keys = st.sampled_from(KEYS)
values = st.sampled_from([b"", b"0", b"1", b"22", b"x" * 40])
range_ends = st.one_of(
    st.none(), st.sampled_from(KEYS + [ALL_KEYS]), st.sampled_from(KEYS).map(prefix_end)
)


@st.composite
def range_requests(draw: st.DrawFn, revision: int = 0) -> RangeRequest:
    return RangeRequest(
        draw(keys),
        draw(range_ends),
        draw(st.sampled_from([0, 0, 1, 2, 5])),
        revision,
        draw(st.booleans()),
        draw(st.booleans()),
        draw(st.sampled_from(list(SortOrder))),
        draw(st.sampled_from(list(SortTarget))),
    )


def put_requests(lease_ids: st.SearchStrategy[int]) -> st.SearchStrategy[PutRequest]:
    return st.builds(
        PutRequest,
        keys,
        values,
        lease_ids,
        st.booleans(),
        st.sampled_from([False, False, False, True]),
        st.sampled_from([False, False, False, True]),
    )


delete_requests = st.builds(DeleteRangeRequest, keys, range_ends, st.booleans())


@st.composite
def compares(draw: st.DrawFn) -> Compare:
    target = draw(st.sampled_from(list(CompareTarget)))
    value: bytes | int = draw(values) if target == CompareTarget.VALUE else draw(st.integers(0, 12))
    end = draw(st.sampled_from([None, None, ALL_KEYS, b"c"]))
    return Compare(target, draw(st.sampled_from(list(CompareResult))), draw(keys), value, end)


def check(got: Any, expected: Any) -> None:
    if isinstance(expected, type):
        assert isinstance(got, expected), f"expected {expected.__name__}, got {got!r}"
    else:
        assert got == expected


class StoreComparison(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.a = KVStateMachine(self.clock)
        self.b = KVStateMachine(self.clock)
        self.model = Model()
        self.index = 0

    def lease_ids(self) -> st.SearchStrategy[int]:
        return st.sampled_from([0, 0, 0, 1, 2, 7, *self.model.leases])

    def run(self, request: Request, expected: Any) -> None:
        self.index += 1
        check(self.a.apply(self.index, encode(request)), expected)
        try:
            got_b: Any = self.b.store.execute(request)
        except KvError as err:
            got_b = err
        check(got_b, expected)
        self.b.apply(self.index, b"")  # an empty entry only advances the applied index

    def revisions(self) -> st.SearchStrategy[int]:
        m = self.model
        return st.sampled_from(sorted({0, m.compact_rev, max(m.compact_rev - 1, 0), m.rev, m.rev + 1}))

    @rule(data=st.data())
    def put(self, data: st.DataObject) -> None:
        request = data.draw(put_requests(self.lease_ids()))
        self.run(request, self.model.put(request))

    @rule(request=delete_requests)
    def delete(self, request: DeleteRangeRequest) -> None:
        self.run(request, self.model.delete(request))

    @rule(data=st.data())
    def txn(self, data: st.DataObject) -> None:
        ops = st.one_of(
            put_requests(self.lease_ids()), delete_requests, range_requests(data.draw(self.revisions()))
        )
        request = TxnRequest(
            tuple(data.draw(st.lists(compares(), max_size=3))),
            tuple(data.draw(st.lists(ops, max_size=4))),
            tuple(data.draw(st.lists(ops, max_size=3))),
        )
        self.run(request, self.model.txn(request))

    @rule(data=st.data())
    def range(self, data: st.DataObject) -> None:
        revision = data.draw(st.one_of(self.revisions(), st.integers(0, self.model.rev)))
        request = data.draw(range_requests(revision))
        self.run(request, self.model.range(request))

    @rule(data=st.data())
    def compact(self, data: st.DataObject) -> None:
        m = self.model
        revision = data.draw(st.one_of(self.revisions(), st.integers(m.compact_rev, m.rev)))
        self.run(CompactRequest(revision), m.compact(revision))

    @rule(ttl=st.integers(0, 100), lease_id=st.sampled_from([0, 0, 1, 2, 7]))
    def lease_grant(self, ttl: int, lease_id: int) -> None:
        self.run(LeaseGrantRequest(ttl, lease_id), self.model.lease_grant(ttl, lease_id))

    @rule(data=st.data())
    def lease_revoke(self, data: st.DataObject) -> None:
        lease_id = data.draw(st.sampled_from([1, 2, 7, *self.model.leases]))
        self.run(LeaseRevokeRequest(lease_id), self.model.lease_revoke(lease_id))

    @precondition(lambda self: self.index > 0)
    @rule(chunk_bytes=st.sampled_from([1, 64, 1 << 20]))
    def restore_b_from_a(self, chunk_bytes: int) -> None:
        fresh = KVStateMachine(self.clock)
        fresh.restore(self.a.snapshot_chunks(chunk_bytes))
        self.b = fresh

    @invariant()
    def same_state_everywhere(self) -> None:
        m = self.model
        assert self.a.store.revision == self.b.store.revision == m.rev
        assert self.a.store.compact_revision == self.b.store.compact_revision == m.compact_rev
        assert self.a.hash_state() == self.b.hash_state()
        everything = RangeRequest(b"", ALL_KEYS)
        assert self.a.store.execute(everything) == m.range(everything)
        for rev in (max(m.compact_rev, 1), (m.compact_rev + m.rev) // 2):
            if rev >= max(m.compact_rev, 1):
                old = RangeRequest(b"", ALL_KEYS, revision=rev)
                assert self.b.store.execute(old) == m.range(old)
                assert self.a.hash_kv(rev) == self.b.hash_kv(rev)


StoreComparison.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_store_matches_model = StoreComparison.TestCase
