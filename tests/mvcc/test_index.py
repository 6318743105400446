"""Key ranges, fast value builders, the lazily sorted key index and the change log."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvstore.errors import InvalidRequest, InvariantError
from kvstore.mvcc import ALL_KEYS, KeyValue, PutResult, prefix_end
from kvstore.mvcc.changelog import ChangeLog
from kvstore.mvcc.index import TreeIndex, entry_before, live_at
from kvstore.mvcc.keys import in_range, key_range, to_bytes
from kvstore.mvcc.types import new_key_value, new_put_result


@pytest.mark.parametrize(
    ("prefix", "end"),
    [(b"a", b"b"), (b"a/", b"a0"), (b"a\xff", b"b"), (b"a\xff\xff", b"b"), (b"\xff", ALL_KEYS), (b"", ALL_KEYS)],
)
def test_prefix_end(prefix: bytes, end: bytes) -> None:
    assert prefix_end(prefix) == end


def test_key_range_forms() -> None:
    assert key_range("a") == (b"a", None)
    assert key_range("a", "c") == (b"a", b"c")
    assert key_range("a", b"") == (b"a", None)
    assert key_range("a/", prefix=True) == (b"a/", b"a0")
    assert key_range("", ALL_KEYS) == (b"", ALL_KEYS)
    with pytest.raises(InvalidRequest):
        key_range("")
    with pytest.raises(InvalidRequest):
        key_range("a", "b", prefix=True)
    with pytest.raises(InvalidRequest):
        to_bytes(3)  # type: ignore[arg-type]
    assert to_bytes(bytearray(b"x")) == b"x"  # type: ignore[arg-type]


def test_in_range() -> None:
    assert in_range(b"a", b"a", None) and not in_range(b"ab", b"a", None)
    assert in_range(b"b", b"a", b"c") and not in_range(b"c", b"a", b"c")
    assert in_range(b"\xff\xff", b"a", ALL_KEYS) and not in_range(b"0", b"a", ALL_KEYS)
    assert not in_range(b"b", b"c", b"a")


def test_fast_builders_make_real_frozen_values() -> None:
    kv = new_key_value(b"k", b"v", 2, 3, 1, 0)
    assert type(kv) is KeyValue and kv == KeyValue(b"k", b"v", 2, 3, 1, 0)
    assert hash(kv) == hash(KeyValue(b"k", b"v", 2, 3, 1, 0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        kv.value = b"x"  # type: ignore[misc]
    result = new_put_result(4, kv)
    assert type(result) is PutResult and result == PutResult(4, kv)
    assert dataclasses.replace(result, header_revision=5) == PutResult(5, kv)


def kv(key: bytes, mod: int, version: int = 1) -> KeyValue:
    return KeyValue(key, b"v" if version else b"", mod if version else 0, mod, version, 0)


def test_live_at_and_entry_before() -> None:
    history = [kv(b"a", 2), kv(b"a", 4, 2), kv(b"a", 6, 0), kv(b"a", 8)]
    assert live_at(history, 1) is None
    assert live_at(history, 3) == history[0]
    assert live_at(history, 5) == history[1]
    assert live_at(history, 7) is None  # deleted at 6
    assert live_at(history, 9) == history[3]
    assert entry_before(history, 6) == history[1]
    assert entry_before(history, 7) == history[2]
    assert entry_before(history, 2) is None


def test_compact_key_rules() -> None:
    index = TreeIndex()
    index.insert(kv(b"a", 2))
    index.histories[b"a"] += [kv(b"a", 4, 2), kv(b"a", 6, 0), kv(b"a", 8)]
    index.compact_key(b"a", 5)  # keeps 4 (latest live <= 5)
    assert [e.mod_revision for e in index.histories[b"a"]] == [4, 6, 8]
    index.compact_key(b"a", 7)  # the latest <= 7 is a tombstone: dropped
    assert [e.mod_revision for e in index.histories[b"a"]] == [8]
    index.compact_key(b"a", 8)
    assert [e.mod_revision for e in index.histories[b"a"]] == [8]
    index.insert(kv(b"b", 9))
    index.histories[b"b"].append(kv(b"b", 10, 0))
    index.compact_key(b"b", 10)
    assert b"b" not in index.histories and list(index.keys(b"", ALL_KEYS)) == [b"a"]


def test_removed_and_reinserted_pending_key_appears_once() -> None:
    index = TreeIndex()
    index.insert(kv(b"a", 2))
    index.histories[b"a"].append(kv(b"a", 3, 0))
    index.compact_key(b"a", 3)  # gone before it was ever merged
    index.insert(kv(b"a", 4))
    assert list(index.keys(b"", ALL_KEYS)) == [b"a"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["put", "delete", "compact"]), st.binary(min_size=1, max_size=2)), max_size=80))
def test_key_order_and_counts_match_the_dict(steps: list[tuple[str, bytes]]) -> None:
    """Puts, deletes, compactions and reads in any interleaving keep order and counts exact."""
    index = TreeIndex()
    rev = 1
    for op, key in steps:
        rev += 1
        history = index.histories.get(key)
        if op == "put":
            if history is None:
                index.insert(kv(key, rev))
            else:
                if not history[-1].version:
                    index.mark_live(key)
                history.append(kv(key, rev))
        elif op == "delete" and history is not None and history[-1].version:
            history.append(kv(key, rev, 0))
            index.mark_dead(key)
        elif op == "compact":
            for k in list(index.histories):
                index.compact_key(k, rev - 1)
        if rev % 3 == 0:
            assert list(index.keys(b"", ALL_KEYS)) == sorted(index.histories)
    live = sorted(k for k, h in index.histories.items() if h[-1].version)
    assert list(index.keys(b"", ALL_KEYS)) == sorted(index.histories)
    assert list(index.keys(b"", ALL_KEYS, reverse=True)) == sorted(index.histories, reverse=True)
    assert list(index.keys(b"\x80", b"\xc0")) == [k for k in sorted(index.histories) if b"\x80" <= k < b"\xc0"]
    assert index.count(b"", ALL_KEYS) == len(live)
    assert index.count(b"\x80", b"\xc0") == len([k for k in live if b"\x80" <= k < b"\xc0"])
    assert index.count(b"\xc0", b"\x80") == 0
    for k in (b"\x00", b"\x80", b"\xff"):
        assert index.count(k, None) == (k in live)


def test_change_log_slices_by_revision_and_keeps_readers_stable() -> None:
    log = ChangeLog()
    log.append_one(kv(b"a", 2))
    log.append([kv(b"b", 3), kv(b"c", 3, 0)])
    log.append_one(kv(b"a", 4, 2))
    assert log.last_revision == 4 and len(log) == 4
    assert [(r, [e.key for e in es]) for r, es in log.read(0, 9)] == [(2, [b"a"]), (3, [b"b", b"c"]), (4, [b"a"])]
    reader = log.read(2, 4)
    assert next(reader)[0] == 2
    assert [e.key for e in log.truncate(3)] == [b"a", b"b", b"c"]
    log.append_one(kv(b"d", 5))
    # the reader started before the truncation still sees its own view, up to its last revision
    assert [r for r, _ in reader] == [3, 4]
    assert log.base == 3 and [r for r, _ in log.read(0, 9)] == [4, 5]
    assert log.truncate(2) == []


def test_change_log_rebuild_checks_counts() -> None:
    entries = [kv(b"a", 2), kv(b"b", 3), kv(b"c", 3)]
    log = ChangeLog.rebuild(1, entries, [1, 2])
    assert [(r, len(es)) for r, es in log.read(0, 9)] == [(2, 1), (3, 2)]
    for counts in ([1, 1], [2, 1], [1, 2, 1], [0, 3]):
        with pytest.raises(InvariantError):
            ChangeLog.rebuild(1, entries, counts)


@settings(max_examples=200, deadline=None)
@given(
    writes=st.lists(st.integers(1, 6), max_size=40),
    dropped=st.integers(0, 5),
    first=st.integers(0, 50),
    last=st.integers(0, 50),
    max_writes=st.integers(1, 12),
)
def test_change_log_spans_cover_read_in_bounded_runs(
    writes: list[int], dropped: int, first: int, last: int, max_writes: int
) -> None:
    log = ChangeLog()
    for rev, n in enumerate(writes, 2):
        log.append([kv(b"k%d" % i, rev) for i in range(n)])
    log.truncate(1 + min(dropped, len(writes)))
    flattened = []
    for start, entries, counts in log.spans(first, last, max_writes):
        assert sum(counts) == len(entries) and min(counts) >= 1
        assert len(counts) == 1 or len(entries) <= max_writes
        for rev, n in enumerate(counts, start):
            flattened.append((rev, entries[:n]))
            entries = entries[n:]
    assert flattened == list(log.read(first, last))


def test_change_log_spans_end_where_the_log_ended_when_asked() -> None:
    log = ChangeLog()
    for rev in range(2, 12):
        log.append_one(kv(b"k%d" % rev, rev))
    spans = log.spans(0, 99, 4)
    first = next(spans)
    log.append([kv(b"late", 12), kv(b"late2", 12)])
    rest = list(spans)
    assert [len(e) for _, e, _ in [first, *rest]] == [4, 4, 2]
    assert rest[-1][0] == 10 and rest[-1][2] == [1, 1]
