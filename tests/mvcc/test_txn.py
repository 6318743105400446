"""Transactions: compares, branches, one revision per txn, atomicity and request checks."""

from __future__ import annotations

import pytest

from kvstore.errors import Compacted, FutureRevision, InvalidRequest, LeaseNotFound, TooLarge, TooManyOps
from kvstore.mvcc import (
    ALL_KEYS,
    CompareTarget,
    DeleteRangeResult,
    KeyValue,
    KVStore,
    PutResult,
    RangeResult,
    TxnResult,
    compare,
    op_delete,
    op_put,
    op_range,
    op_txn,
)

VERSION, CREATE, MOD, VALUE, LEASE = (
    CompareTarget.VERSION,
    CompareTarget.CREATE,
    CompareTarget.MOD,
    CompareTarget.VALUE,
    CompareTarget.LEASE,
)


@pytest.fixture
def seeded(store: KVStore) -> KVStore:
    store.put("a", b"10")  # 2
    store.put("b", b"20")  # 3
    store.put("a", b"11")  # 4: a version 2, create 2, mod 4
    return store


@pytest.mark.parametrize(
    ("cmp", "holds"),
    [
        (compare("a", VERSION, "=", 2), True),
        (compare("a", VERSION, "!=", 2), False),
        (compare("a", VERSION, ">", 1), True),
        (compare("a", VERSION, "<", 2), False),
        (compare("a", CREATE, "=", 2), True),
        (compare("a", MOD, "=", 4), True),
        (compare("a", MOD, "<", 4), False),
        (compare("a", VALUE, "=", "11"), True),
        (compare("a", VALUE, ">", "10"), True),
        (compare("a", VALUE, "<", "100"), False),
        (compare("a", LEASE, "=", 0), True),
        # a missing key compares as zeros ...
        (compare("zz", VERSION, "=", 0), True),
        (compare("zz", CREATE, "<", 1), True),
        (compare("zz", MOD, "=", 0), True),
        (compare("zz", LEASE, "=", 0), True),
        # ... except on its value, which always fails (etcd)
        (compare("zz", VALUE, "=", ""), False),
        (compare("zz", VALUE, "!=", "x"), False),
        # a range compare must hold for every key in it
        (compare("a", VERSION, ">", 0, range_end="c"), True),
        (compare("a", VERSION, "=", 2, range_end="c"), False),
        (compare("", MOD, "<", 5, range_end=ALL_KEYS), True),
        (compare("x", VERSION, "=", 0, prefix=True), True),
    ],
)
def test_compare(seeded: KVStore, cmp: object, holds: bool) -> None:
    result = seeded.txn([cmp], [op_range("a")], [op_range("b")])  # type: ignore[list-item]
    assert result.succeeded is holds
    rr = result.responses[0]
    assert isinstance(rr, RangeResult)
    assert rr.kvs[0].key == (b"a" if holds else b"b")
    assert seeded.revision == 4  # read-only: no new revision
    assert result.header_revision == 4 and rr.header_revision == 4


def test_txn_writes_share_one_revision(seeded: KVStore) -> None:
    result = seeded.txn(
        [compare("a", VALUE, "=", "11")],
        [op_put("c", "1"), op_put("a", "12", prev_kv=True), op_delete("b", prev_kv=True)],
    )
    assert result.succeeded and result.header_revision == 5 and seeded.revision == 5
    put_c, put_a, del_b = result.responses
    assert put_c == PutResult(5, None)
    assert put_a == PutResult(5, KeyValue(b"a", b"11", 2, 4, 2, 0))
    assert del_b == DeleteRangeResult(1, 5, (KeyValue(b"b", b"20", 3, 3, 1, 0),))
    assert seeded.get("c") == KeyValue(b"c", b"1", 5, 5, 1, 0)
    assert seeded.get("a") == KeyValue(b"a", b"12", 2, 5, 3, 0)
    # the change log keeps the writes in operation order (sub-revisions)
    [(rev, kvs)] = list(seeded.changes(5))
    assert rev == 5 and [kv.key for kv in kvs] == [b"c", b"a", b"b"]


def test_reads_inside_txn_see_earlier_writes(seeded: KVStore) -> None:
    result = seeded.txn(
        [],
        [op_put("c", "1"), op_range("", ALL_KEYS), op_delete("a"), op_range("", ALL_KEYS), op_range("a", revision=4)],
    )
    _, first, _, second, old = result.responses
    assert isinstance(first, RangeResult) and isinstance(second, RangeResult) and isinstance(old, RangeResult)
    assert [kv.key for kv in first.kvs] == [b"a", b"b", b"c"]
    assert [kv.key for kv in second.kvs] == [b"b", b"c"]
    assert old.kvs[0].value == b"11"
    assert first.header_revision == 5


def test_failure_branch(seeded: KVStore) -> None:
    result = seeded.txn([compare("a", VERSION, "=", 1)], [op_put("s", "1")], [op_put("f", "1")])
    assert not result.succeeded
    assert seeded.get("f") is not None and seeded.get("s") is None


def test_txn_that_deletes_nothing_keeps_revision(seeded: KVStore) -> None:
    result = seeded.txn([], [op_delete("zz"), op_range("a")])
    assert result.header_revision == 4 and seeded.revision == 4
    assert result.responses[0] == DeleteRangeResult(0, 4, ())


def test_empty_txn(seeded: KVStore) -> None:
    assert seeded.txn() == TxnResult(True, (), 4)


def test_nested_txn(seeded: KVStore) -> None:
    inner = op_txn([compare("b", VALUE, "=", "20")], [op_put("x", "inner-ok")], [op_put("x", "inner-fail")])
    result = seeded.txn([compare("a", VERSION, "=", 2)], [op_put("y", "1"), inner], [])
    assert result.succeeded and seeded.revision == 5
    nested = result.responses[1]
    assert isinstance(nested, TxnResult) and nested.succeeded and nested.header_revision == 5
    assert seeded.get("x") == KeyValue(b"x", b"inner-ok", 5, 5, 1, 0)


def test_nested_compares_see_state_before_the_txn(seeded: KVStore) -> None:
    # The outer branch deletes b first, but the nested compare still sees it (etcd).
    inner = op_txn([compare("b", VERSION, "=", 1)], [op_put("x", "saw-b")], [op_put("x", "no-b")])
    seeded.txn([], [op_delete("b"), inner])
    kv = seeded.get("x")
    assert kv is not None and kv.value == b"saw-b"


def test_failed_check_changes_nothing(seeded: KVStore) -> None:
    with pytest.raises(LeaseNotFound):
        seeded.txn([], [op_put("c", "1"), op_put("d", "1", lease=99)])
    seeded.compact(3)
    with pytest.raises(Compacted):
        seeded.txn([], [op_put("c", "1"), op_range("a", revision=2)])
    with pytest.raises(FutureRevision):
        seeded.txn([], [op_put("c", "1"), op_range("a", revision=9)])
    with pytest.raises(InvalidRequest):
        seeded.txn([], [op_put("c", "1"), op_put("zz", "1", ignore_value=True)])
    assert seeded.revision == 4 and seeded.get("c") is None


def test_checks_only_apply_to_the_branch_taken(seeded: KVStore) -> None:
    result = seeded.txn([compare("a", VERSION, "=", 2)], [op_put("c", "1")], [op_put("d", "1", lease=99)])
    assert result.succeeded and seeded.revision == 5


@pytest.mark.parametrize(
    "ops",
    [
        [op_put("a", "1"), op_put("a", "2")],
        [op_put("a", "1"), op_delete("a")],
        [op_delete("", ALL_KEYS), op_put("q", "1")],
        [op_delete("a", prefix=True), op_put("ab", "1")],
        [op_put("a", "1"), op_txn([], [op_put("a", "2")])],
        [op_txn([], [op_put("a", "2")], []), op_txn([], [], [op_put("a", "3")])],
        [op_delete("a"), op_txn([], [], [op_put("a", "3")])],
    ],
)
def test_duplicate_keys_are_refused(seeded: KVStore, ops: list[object]) -> None:
    with pytest.raises(InvalidRequest):
        seeded.txn([], ops)  # type: ignore[arg-type]
    assert seeded.revision == 4


def test_allowed_overlaps(seeded: KVStore) -> None:
    # the two branches of a nested txn never both run
    seeded.txn([], [op_txn([], [op_put("a", "1")], [op_put("a", "2"), op_delete("b")])])
    # success and failure of one txn may name the same key
    seeded.txn([], [op_put("a", "1")], [op_put("a", "2")])
    # overlapping deletes are fine
    seeded.txn([], [op_delete("a"), op_delete("", ALL_KEYS)])
    assert seeded.range("", ALL_KEYS).count == 0


def test_too_many_ops(store: KVStore) -> None:
    ops = [op_put(f"k{i}", "v") for i in range(129)]
    with pytest.raises(TooManyOps) as err:
        store.txn([], ops)
    assert err.value.count == 129 and err.value.limit == 128
    with pytest.raises(TooManyOps):
        store.txn([compare(f"k{i}", VERSION, "=", 0) for i in range(129)], [])
    with pytest.raises(TooManyOps):
        store.txn([], [op_txn([], [], ops)])
    store.txn([], ops[:128])
    assert store.revision == 2


def test_request_size_limit(store: KVStore) -> None:
    big = b"x" * (1024 * 1024)
    with pytest.raises(TooLarge) as err:
        store.txn([], [op_put("a", big), op_put("b", big)])
    assert err.value.what == "request"
    assert store.revision == 1


def test_compare_builder_rejects_bad_values() -> None:
    with pytest.raises(InvalidRequest):
        compare("a", VALUE, "=", 1)
    with pytest.raises(InvalidRequest):
        compare("a", VERSION, "=", b"1")
    with pytest.raises(InvalidRequest):
        compare("a", VERSION, "~", 1)


def test_lease_compare(store: KVStore) -> None:
    lease = store.lease_grant(60).id
    store.put("a", b"1", lease=lease)
    assert store.txn([compare("a", LEASE, "=", lease)]).succeeded
    assert not store.txn([compare("a", LEASE, "=", 0)]).succeeded
