"""Commands as bytes, and KVStateMachine.apply: skipping, errors as results, determinism."""

from __future__ import annotations

import random

import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvstore.clock import FakeClock
from kvstore.errors import FutureRevision, InvalidRequest, LeaseNotFound, TooLarge
from kvstore.mvcc import (
    ALL_KEYS,
    CompactRequest,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    KeyValue,
    KVStateMachine,
    LeaseGrantRequest,
    LeaseRevokeRequest,
    Limits,
    PutRequest,
    PutResult,
    RangeRequest,
    Request,
    SortOrder,
    SortTarget,
    TxnRequest,
    decode,
    encode,
    encode_put,
)

small = st.binary(max_size=6)
ids = st.integers(0, (1 << 63) - 1)
ends = st.one_of(st.none(), small)
ranges = st.builds(
    RangeRequest,
    small,
    ends,
    st.integers(0, 100),
    st.integers(0, 1 << 40),
    st.booleans(),
    st.booleans(),
    st.sampled_from(list(SortOrder)),
    st.sampled_from(list(SortTarget)),
)
puts = st.builds(PutRequest, small, small, ids, st.booleans(), st.booleans(), st.booleans())
deletes = st.builds(DeleteRangeRequest, small, ends, st.booleans())


@st.composite
def compares(draw: st.DrawFn) -> Compare:
    target = draw(st.sampled_from(list(CompareTarget)))
    value = draw(small) if target == CompareTarget.VALUE else draw(ids)
    return Compare(target, draw(st.sampled_from(list(CompareResult))), draw(small), value, draw(ends))


ops = st.recursive(
    st.one_of(ranges, puts, deletes),
    lambda children: st.builds(
        TxnRequest,
        st.lists(compares(), max_size=3).map(tuple),
        st.lists(children, max_size=3).map(tuple),
        st.lists(children, max_size=3).map(tuple),
    ),
    max_leaves=8,
)
requests = st.one_of(
    ops,
    st.builds(CompactRequest, ids),
    st.builds(LeaseGrantRequest, st.integers(-10, 1 << 40), ids),
    st.builds(LeaseRevokeRequest, ids),
)


@settings(max_examples=200, deadline=None)
@given(requests)
def test_encode_decode_round_trip(request: Request) -> None:
    assert decode(encode(request)) == request


def test_encode_put_matches_encode() -> None:
    request = PutRequest(b"k", b"v", 3, True, False, True)
    assert encode_put(b"k", b"v", 3, prev_kv=True, ignore_lease=True) == encode(request)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_garbage_decodes_or_fails_cleanly(data: bytes) -> None:
    try:
        decode(data)
    except InvalidRequest:
        pass


@pytest.mark.parametrize(
    "fields",
    [
        [],
        [99, b"k"],
        [1, "k", b"v", 0, 0],  # key as str
        [1, b"k", b"v", 0],  # too short
        [1, b"k", b"v", True, 0],  # lease as bool
        [2, b"k", None, 1],  # prev_kv not a bool
        [3, [[9, 0, b"k", None, 0]], [], []],  # bad compare target
        [3, [], [[4, 5]], []],  # compact inside a txn
        [7, b"k", None, 0, 0, 0, 9, 0],  # bad sort order
        {"type": 1},
    ],
)
def test_malformed_commands(fields: object) -> None:
    with pytest.raises(InvalidRequest):
        decode(msgpack.packb(fields, use_bin_type=True))


def test_apply_returns_request_errors_and_moves_on(machine: KVStateMachine) -> None:
    assert machine.apply(1, encode_put(b"a", b"1")) == PutResult(2)
    before = machine.store.hash_kv()
    bad = [
        (encode_put(b"b", b"1", lease=77), LeaseNotFound),
        (b"\x93\x01", InvalidRequest),  # truncated
        (encode(LeaseRevokeRequest(3)), LeaseNotFound),
        (encode(CompactRequest(99)), FutureRevision),
        (encode_put(b"", b"1"), InvalidRequest),
    ]
    for index, (data, error) in enumerate(bad, 2):
        assert isinstance(machine.apply(index, data), error)
        assert machine.applied_index == index
    assert machine.store.hash_kv() == before and machine.store.revision == 2
    assert machine.apply(7, encode_put(b"b", b"2")) == PutResult(3)
    assert machine.store.get("a") == KeyValue(b"a", b"1", 2, 2, 1, 0)


def test_apply_skips_applied_entries_and_empty_ones(machine: KVStateMachine) -> None:
    assert machine.apply(5, b"") is None
    assert machine.applied_index == 5
    assert machine.apply(5, encode_put(b"a", b"1")) is None
    assert machine.apply(3, encode_put(b"a", b"1")) is None
    assert machine.store.revision == 1
    assert machine.apply(6, encode_put(b"a", b"1")) == PutResult(2)


def test_limits_apply_at_apply_time() -> None:
    machine = KVStateMachine(FakeClock(), limits=Limits(max_value_bytes=4))
    result = machine.apply(1, encode_put(b"a", b"12345"))
    assert isinstance(result, TooLarge) and result.what == "value"
    assert machine.store.revision == 1


def test_members_fed_the_same_log_agree() -> None:
    rng = random.Random(7)
    log: list[bytes] = []
    for i in range(400):
        key = b"k%d" % rng.randrange(30)
        roll = rng.random()
        if roll < 0.6:
            log.append(encode_put(key, b"v%d" % i, prev_kv=rng.random() < 0.5))
        elif roll < 0.75:
            log.append(encode(DeleteRangeRequest(key, b"k%d" % rng.randrange(30))))
        elif roll < 0.9:
            cmp = Compare(CompareTarget.VERSION, CompareResult.GREATER, key, rng.randrange(3))
            log.append(encode(TxnRequest((cmp,), (PutRequest(key, b"t"), DeleteRangeRequest(b"z")), ())))
        elif roll < 0.95:
            log.append(encode(LeaseGrantRequest(60)))
        else:
            log.append(encode(CompactRequest(max(1, i // 2))))
    members = [KVStateMachine(FakeClock()) for _ in range(3)]
    results = [[m.apply(i, data) for i, data in enumerate(log, 1)] for m in members]
    assert [repr(r) for r in results[0]] == [repr(r) for r in results[1]] == [repr(r) for r in results[2]]
    assert len({m.hash_state() for m in members}) == 1
    assert len({m.hash_kv() for m in members}) == 1
    rev = members[0].store.revision
    assert members[0].hash_kv(rev - 1) == members[1].hash_kv(rev - 1)
    assert members[0].hash_kv(rev - 1) != members[0].hash_kv(rev)
    assert members[0].store.range(b"", ALL_KEYS) == members[2].store.range(b"", ALL_KEYS)
