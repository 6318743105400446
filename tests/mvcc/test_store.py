"""KVStore: revisions, range, put, delete-range, compaction and limits, with etcd's edge cases."""

from __future__ import annotations

import pytest

from kvstore.errors import Compacted, FutureRevision, InvalidRequest, LeaseNotFound, TooLarge
from kvstore.mvcc import ALL_KEYS, KeyValue, KVStore, Limits, SortOrder, SortTarget
from kvstore.mvcc.lease import Lessor
from kvstore.clock import FakeClock


def keys_of(store: KVStore, *args: object, **kwargs: object) -> list[bytes]:
    return [kv.key for kv in store.range(*args, **kwargs).kvs]  # type: ignore[arg-type]


def test_empty_store_starts_at_revision_one(store: KVStore) -> None:
    assert store.revision == 1
    assert store.compact_revision == 0
    result = store.range("", ALL_KEYS)
    assert result.kvs == () and result.count == 0 and result.header_revision == 1


def test_put_assigns_revisions_and_versions(store: KVStore) -> None:
    assert store.put("a", b"1").header_revision == 2
    assert store.put("b", b"1").header_revision == 3
    assert store.put("a", b"2").header_revision == 4
    assert store.get("a") == KeyValue(b"a", b"2", 2, 4, 2, 0)
    assert store.get("b") == KeyValue(b"b", b"1", 3, 3, 1, 0)


def test_str_keys_and_values_are_utf8(store: KVStore) -> None:
    store.put("ключ", "значение")
    kv = store.get("ключ".encode())
    assert kv is not None and kv.value == "значение".encode()


def test_put_prev_kv(store: KVStore) -> None:
    assert store.put("a", b"1", prev_kv=True).prev_kv is None
    prev = store.put("a", b"2", prev_kv=True).prev_kv
    assert prev == KeyValue(b"a", b"1", 2, 2, 1, 0)
    assert store.put("a", b"3").prev_kv is None  # not asked for


def test_delete_leaves_tombstone_and_recreation_starts_new_generation(store: KVStore) -> None:
    store.put("a", b"1")
    store.put("a", b"2")
    result = store.delete_range("a", prev_kv=True)
    assert result.deleted == 1 and result.header_revision == 4
    assert result.prev_kvs == (KeyValue(b"a", b"2", 2, 3, 2, 0),)
    assert store.get("a") is None
    store.put("a", b"3")
    assert store.get("a") == KeyValue(b"a", b"3", 5, 5, 1, 0)
    # history still reads every generation
    assert store.get("a", revision=3) == KeyValue(b"a", b"2", 2, 3, 2, 0)
    assert store.get("a", revision=4) is None


def test_delete_of_missing_key_does_not_bump_revision(store: KVStore) -> None:
    store.put("a", b"1")
    result = store.delete_range("b")
    assert result.deleted == 0 and result.header_revision == 2 and store.revision == 2
    store.delete_range("a")
    assert store.delete_range("a").deleted == 0  # already a tombstone
    assert store.revision == 3


def test_delete_range_shares_one_revision(store: KVStore) -> None:
    for k in ("a", "b", "c", "d"):
        store.put(k, b"x")
    result = store.delete_range("b", "d")
    assert result.deleted == 2 and result.header_revision == 6
    assert keys_of(store, "", ALL_KEYS) == [b"a", b"d"]
    assert store.delete_range("", ALL_KEYS).deleted == 2
    assert store.revision == 7


def test_delete_prefix(store: KVStore) -> None:
    for k in ("/a/1", "/a/2", "/ab", "/b"):
        store.put(k, b"x")
    assert store.delete_range("/a/", prefix=True).deleted == 2
    assert keys_of(store, "", ALL_KEYS) == [b"/ab", b"/b"]


def test_range_forms(store: KVStore) -> None:
    for k in ("a", "b", "c", "foo", "foo/bar", "fop", "\xff"):
        store.put(k, b"v")
    assert keys_of(store, "b") == [b"b"]
    assert keys_of(store, "zz") == []
    assert keys_of(store, "b", "foo") == [b"b", b"c"]
    assert keys_of(store, "c", ALL_KEYS) == [b"c", b"foo", b"foo/bar", b"fop", "\xff".encode()]
    assert keys_of(store, "", ALL_KEYS)[0] == b"a"
    assert keys_of(store, "foo", prefix=True) == [b"foo", b"foo/bar"]
    assert keys_of(store, "c", "b") == []  # end before start: empty
    assert keys_of(store, "b", b"") == [b"b"]  # empty range_end means the single key


def test_prefix_of_empty_key_reads_everything(store: KVStore) -> None:
    store.put("a", b"1")
    store.put("z", b"1")
    assert keys_of(store, "", prefix=True) == [b"a", b"z"]


def test_range_limit_count_more(store: KVStore) -> None:
    for k in "abcde":
        store.put(k, b"v")
    store.delete_range("c")
    result = store.range("", ALL_KEYS, limit=2)
    assert [kv.key for kv in result.kvs] == [b"a", b"b"]
    assert result.count == 4 and result.more
    result = store.range("", ALL_KEYS, limit=4)
    assert result.count == 4 and not result.more and len(result.kvs) == 4


def test_range_count_only_and_keys_only(store: KVStore) -> None:
    store.put("a", b"1")
    store.put("b", b"22")
    result = store.range("", ALL_KEYS, count_only=True, limit=1)
    assert result.kvs == () and result.count == 2 and not result.more
    result = store.range("", ALL_KEYS, keys_only=True)
    assert [(kv.key, kv.value, kv.mod_revision) for kv in result.kvs] == [(b"a", b"", 2), (b"b", b"", 3)]


@pytest.mark.parametrize(
    ("order", "target", "expected"),
    [
        (SortOrder.NONE, SortTarget.KEY, [b"a", b"b", b"c"]),
        (SortOrder.ASCEND, SortTarget.KEY, [b"a", b"b", b"c"]),
        (SortOrder.DESCEND, SortTarget.KEY, [b"c", b"b", b"a"]),
        (SortOrder.ASCEND, SortTarget.VALUE, [b"c", b"a", b"b"]),
        (SortOrder.DESCEND, SortTarget.VALUE, [b"b", b"a", b"c"]),
        (SortOrder.NONE, SortTarget.VALUE, [b"c", b"a", b"b"]),  # etcd: target without order ascends
        (SortOrder.DESCEND, SortTarget.MOD, [b"a", b"c", b"b"]),
        (SortOrder.ASCEND, SortTarget.CREATE, [b"b", b"a", b"c"]),
        (SortOrder.DESCEND, SortTarget.VERSION, [b"a", b"b", b"c"]),  # ties keep key order
    ],
)
def test_range_sort(store: KVStore, order: SortOrder, target: SortTarget, expected: list[bytes]) -> None:
    store.put("b", b"3")  # rev 2
    store.put("a", b"2")  # rev 3
    store.put("c", b"1")  # rev 4
    store.put("a", b"2")  # rev 5: a is version 2
    assert keys_of(store, "", ALL_KEYS, sort_order=order, sort_target=target) == expected


def test_sorted_range_applies_limit_after_sorting(store: KVStore) -> None:
    for k, v in (("a", b"3"), ("b", b"1"), ("c", b"2")):
        store.put(k, v)
    result = store.range("", ALL_KEYS, limit=2, sort_order=SortOrder.ASCEND, sort_target=SortTarget.VALUE)
    assert [kv.key for kv in result.kvs] == [b"b", b"c"] and result.more and result.count == 3
    result = store.range("", ALL_KEYS, limit=1, sort_order=SortOrder.DESCEND)
    assert [kv.key for kv in result.kvs] == [b"c"] and result.count == 3


def test_historical_reads(store: KVStore) -> None:
    store.put("a", b"1")  # 2
    store.put("b", b"1")  # 3
    store.put("a", b"2")  # 4
    store.delete_range("b")  # 5
    assert keys_of(store, "", ALL_KEYS, revision=1) == []
    assert keys_of(store, "", ALL_KEYS, revision=3) == [b"a", b"b"]
    assert store.get("a", revision=3) == KeyValue(b"a", b"1", 2, 2, 1, 0)
    assert keys_of(store, "", ALL_KEYS, revision=5) == [b"a"]
    assert store.range("", ALL_KEYS, revision=3).header_revision == 5


def test_revision_bounds(store: KVStore) -> None:
    store.put("a", b"1")
    with pytest.raises(FutureRevision) as future:
        store.range("a", revision=3)
    assert future.value.revision == 3 and future.value.current_revision == 2
    with pytest.raises(InvalidRequest):
        store.range("a", revision=-1)
    with pytest.raises(InvalidRequest):
        store.range("a", limit=-1)


def test_compaction_keeps_latest_version_at_compact_revision(store: KVStore) -> None:
    store.put("a", b"1")  # 2
    store.put("a", b"2")  # 3
    store.put("b", b"1")  # 4
    store.delete_range("b")  # 5
    store.put("c", b"1")  # 6
    store.put("a", b"3")  # 7
    result = store.compact(5)
    assert result.compact_revision == 5 and result.header_revision == 7
    with pytest.raises(Compacted) as err:
        store.range("a", revision=4)
    assert err.value.revision == 4 and err.value.compact_revision == 5
    assert store.get("a", revision=5) == KeyValue(b"a", b"2", 2, 3, 2, 0)
    assert keys_of(store, "", ALL_KEYS, revision=5) == [b"a"]
    assert keys_of(store, "", ALL_KEYS, revision=6) == [b"a", b"c"]
    assert store.get("a") == KeyValue(b"a", b"3", 2, 7, 3, 0)
    # b was deleted at 5: nothing of it is left.
    assert b"b" not in store.index.histories
    assert [kv.mod_revision for kv in store.index.histories[b"a"]] == [3, 7]


def test_compaction_errors(store: KVStore) -> None:
    store.put("a", b"1")
    store.put("a", b"2")
    with pytest.raises(FutureRevision):
        store.compact(4)
    store.compact(2)
    with pytest.raises(Compacted):
        store.compact(2)
    with pytest.raises(Compacted):
        store.compact(1)
    store.compact(3)  # the current revision is allowed
    assert store.get("a") == KeyValue(b"a", b"2", 2, 3, 2, 0)
    assert store.get("a", revision=3) is not None


def test_compaction_does_not_change_revision_and_writes_continue(store: KVStore) -> None:
    store.put("a", b"1")
    store.compact(2)
    assert store.revision == 2
    store.put("a", b"2")
    store.compact(3)
    assert store.get("a") == KeyValue(b"a", b"2", 2, 3, 2, 0)


def test_key_removed_by_compaction_can_be_created_again(store: KVStore) -> None:
    store.put("a", b"1")
    store.delete_range("a")
    store.compact(3)
    assert len(store.index) == 0
    store.put("a", b"2")
    assert keys_of(store, "", ALL_KEYS) == [b"a"]
    assert store.get("a") == KeyValue(b"a", b"2", 4, 4, 1, 0)


def test_limits_are_checked_before_any_change() -> None:
    store = KVStore(Lessor(FakeClock()), limits=Limits(max_key_bytes=4, max_value_bytes=8))
    with pytest.raises(TooLarge) as err:
        store.put("abcde", b"")
    assert err.value.what == "key" and err.value.size == 5 and err.value.limit == 4
    with pytest.raises(TooLarge):
        store.put("a", b"123456789")
    with pytest.raises(TooLarge):
        store.range("abcde")
    with pytest.raises(InvalidRequest):
        store.put("", b"x")
    with pytest.raises(InvalidRequest):
        store.delete_range("")
    assert store.revision == 1 and len(store.index) == 0


def test_default_limits() -> None:
    limits = Limits()
    assert limits.max_value_bytes == 1536 * 1024
    assert limits.max_key_bytes == 32 * 1024
    assert limits.max_txn_ops == 128


def test_bad_argument_types(store: KVStore) -> None:
    with pytest.raises(InvalidRequest):
        store.put(1, b"x")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        store.put("a", b"x", lease=-1)
    with pytest.raises(InvalidRequest):
        store.range("a", "b", prefix=True)


def test_put_with_missing_lease_changes_nothing(store: KVStore) -> None:
    with pytest.raises(LeaseNotFound):
        store.put("a", b"1", lease=42)
    assert store.revision == 1 and store.get("a") is None


def test_ignore_value_and_ignore_lease(store: KVStore) -> None:
    lease = store.lease_grant(60).id
    with pytest.raises(InvalidRequest):
        store.put("a", b"", ignore_value=True)
    store.put("a", b"1", lease=lease)
    store.put("a", b"", ignore_value=True, lease=lease)
    assert store.get("a") == KeyValue(b"a", b"1", 2, 3, 2, lease)
    store.put("a", b"2", ignore_lease=True)
    assert store.get("a") == KeyValue(b"a", b"2", 2, 4, 3, lease)
    with pytest.raises(InvalidRequest):
        store.put("a", b"3", ignore_lease=True, lease=lease)
    store.put("a", b"3")  # no lease: detached
    assert store.lessor.keys(lease) == []


def test_range_in_reverse_with_limit_stops_early(store: KVStore) -> None:
    for i in range(50):
        store.put(f"k{i:02}", b"v")
    result = store.range("k", prefix=True, limit=3, sort_order=SortOrder.DESCEND)
    assert [kv.key for kv in result.kvs] == [b"k49", b"k48", b"k47"]
    assert result.count == 50 and result.more
