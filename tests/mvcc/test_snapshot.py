"""Snapshots: chunked, complete, checked, and safe to stream while the store keeps changing."""

from __future__ import annotations

import random
import zlib

import msgpack  # type: ignore[import-untyped]
import pytest

from kvstore.clock import FakeClock
from kvstore.errors import CorruptError, InvariantError
from kvstore.mvcc import ALL_KEYS, KVStateMachine, op_delete, op_put
from kvstore.mvcc.snapshot import read_snapshot


def busy_machine(seed: int = 1, writes: int = 300, compact_at: int = 120) -> KVStateMachine:
    rng = random.Random(seed)
    m = KVStateMachine(FakeClock())
    lease = m.store.lease_grant(60).id
    for i in range(writes):
        key = b"k%02d" % rng.randrange(40)
        roll = rng.random()
        if roll < 0.7:
            m.store.put(key, b"v%d" % i * rng.randrange(1, 4), lease=lease if rng.random() < 0.1 else 0)
        elif roll < 0.85:
            m.store.delete_range(key)
        else:
            m.store.txn([], [op_put(key, b"t"), op_delete(b"k%02d" % (rng.randrange(40) + 50))])
        if i == compact_at:
            m.store.compact(m.store.revision - 20)
    m.apply(1234, b"")
    return m


def same_reads(a: KVStateMachine, b: KVStateMachine) -> None:
    assert a.store.revision == b.store.revision
    assert a.store.compact_revision == b.store.compact_revision
    for rev in range(a.store.compact_revision, a.store.revision + 1):
        if rev:
            assert a.store.range(b"", ALL_KEYS, revision=rev) == b.store.range(b"", ALL_KEYS, revision=rev)
            assert a.hash_kv(rev) == b.hash_kv(rev)
    start = a.store.compact_revision + 1
    assert list(a.store.changes(start)) == list(b.store.changes(start))


def test_restore_reproduces_state_history_and_hash() -> None:
    a = busy_machine()
    b = KVStateMachine(FakeClock())
    b.restore(a.snapshot_chunks())
    assert b.applied_index == 1234
    assert b.hash_state() == a.hash_state()
    same_reads(a, b)
    # both keep going identically
    for m in (a, b):
        m.store.put(b"k01", b"after")
        m.store.compact(m.store.revision - 5)
    assert a.hash_state() == b.hash_state()


@pytest.mark.parametrize("chunk_bytes", [1, 100, 4096])
def test_chunks_are_bounded(chunk_bytes: int) -> None:
    a = busy_machine()
    chunks = list(a.snapshot_chunks(chunk_bytes))
    assert len(chunks) > 1
    # a chunk exceeds the bound only when a single record does
    records = msgpack.Unpacker(raw=False)
    for chunk in chunks:
        if len(chunk) > chunk_bytes:
            records.feed(chunk)
            assert len(list(records)) == 1
    b = KVStateMachine(FakeClock())
    b.restore(chunks)
    assert b.hash_state() == a.hash_state()


def test_long_history_is_split_across_records() -> None:
    a = KVStateMachine(FakeClock())
    for i in range(50):
        a.store.put("hot", bytes(100) + b"%d" % i)
    chunks = list(a.snapshot_chunks(1000))
    unpacker = msgpack.Unpacker(raw=False)
    for c in chunks:
        unpacker.feed(c)
    key_records = [r for r in unpacker if r[0] == "K"]
    assert len(key_records) > 1 and {k for r in key_records for k in r[1][0::2]} == {b"hot"}
    b = KVStateMachine(FakeClock())
    b.restore(chunks)
    same_reads(a, b)


def test_empty_store_round_trips() -> None:
    a, b = KVStateMachine(FakeClock()), KVStateMachine(FakeClock())
    b.store.put("x", b"1")
    b.restore(a.snapshot_chunks())
    assert b.store.revision == 1 and b.store.range("", ALL_KEYS).count == 0
    b.store.put("x", b"1")
    assert b.store.revision == 2


def test_snapshot_is_pinned_while_writes_continue() -> None:
    a = busy_machine()
    reference = KVStateMachine(FakeClock())
    reference.restore(a.snapshot_chunks())
    stream = a.snapshot_chunks(64)
    first = next(stream)
    for i in range(50):
        a.store.put(b"k%02d" % (i % 7), b"later")
        a.store.put(b"new%02d" % i, b"later")
    b = KVStateMachine(FakeClock())
    b.restore([first, *stream])
    assert b.hash_state() == reference.hash_state()


def test_compaction_during_streaming_is_folded_in() -> None:
    a = busy_machine()
    stream = a.snapshot_chunks(64)
    first = next(stream)
    a.store.compact(a.store.revision - 3)
    b = KVStateMachine(FakeClock())
    b.restore([first, *stream])
    assert b.store.compact_revision == a.store.compact_revision
    assert b.hash_state() == a.hash_state()
    same_reads(a, b)


def test_restore_during_streaming_is_refused() -> None:
    a = busy_machine()
    stream = a.snapshot_chunks(64)
    next(stream)
    a.restore(busy_machine(seed=2).snapshot_chunks())
    with pytest.raises(InvariantError):
        list(stream)


def corrupt_variants(chunks: list[bytes]) -> list[list[bytes]]:
    data = b"".join(chunks)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x40
    return [
        [data[: len(data) - 5]],  # truncated trailer
        [data[: len(data) // 2]],  # truncated in the middle
        [bytes(flipped)],
        [data + msgpack.packb(["K", b"zz", []])],  # data after the trailer
        [msgpack.packb(["E", 0, 0, 0])],  # no header
        [],
    ]


def test_corruption_is_detected_and_changes_nothing() -> None:
    a = busy_machine()
    chunks = list(a.snapshot_chunks(256))
    b = busy_machine(seed=3)
    before = b.hash_state()
    for variant in corrupt_variants(chunks):
        with pytest.raises(CorruptError) as err:
            b.restore(variant)
        assert err.value.path == "<snapshot>"
        assert b.hash_state() == before


def pack_stream(records: list[list[object]]) -> bytes:
    packed = [msgpack.packb(r, use_bin_type=True) for r in records]
    crc = 0
    for p in packed:
        crc = zlib.crc32(p, crc)
    trailer: bytes = msgpack.packb(["E", len(packed), crc, 0])
    return b"".join(packed) + trailer


HEADER = ["H", "steersman-mvcc-snapshot", 1, 0, 3, 0, 1]
LOG = ["C", 2, [[b"a"], [b"b"]]]


def test_a_hand_made_stream_restores() -> None:
    stream = pack_stream([HEADER, ["K", b"a", [[b"v", 2, 2, 1, 0]]], ["K", b"b", [[b"w", 3, 3, 1, 0]]], LOG])
    m = KVStateMachine(FakeClock())
    m.restore([stream])
    assert m.store.revision == 3 and m.store.range("", ALL_KEYS).count == 2


@pytest.mark.parametrize(
    ("records", "reason"),
    [
        ([HEADER, ["K", b"b", [[b"w", 3, 3, 1, 0]]], ["K", b"a", [[b"v", 2, 2, 1, 0]]], LOG], "keys out of order"),
        ([HEADER, ["K", b"a", [[b"v", 2, 3, 1, 0], [b"w", 2, 2, 2, 0]]], LOG], "out of order"),
        ([HEADER, ["K", b"a", [[b"v", 2, 9, 1, 0]]], LOG], "out of order"),
        ([HEADER, ["K", b"a", [[b"v", 2, 2, 1, 4]]], ["K", b"b", [[b"w", 3, 3, 1, 0]]], LOG], "missing lease"),
        ([HEADER, ["K", b"a", [[b"v", 2, 2, 1, 0]]], LOG], "history lacks"),
        ([HEADER, ["K", b"a", [[b"v", 2, 2, 1, 0]]], ["C", 2, [[b"a"]]]], "does not cover"),
        ([HEADER, ["C", 2, [[b"a"]]], ["L", [[1, 5]]]], "out of order"),
        ([HEADER, ["C", 2, [[b"a"]]], ["C", 4, [[b"a"]]]], "gap"),
        ([["H", "something else", 1, 0, 1, 0, 1]], "not a store snapshot of version 1 or 2"),
        ([["H", "steersman-mvcc-snapshot", 3, 0, 1, 0, 1]], "not a store snapshot of version 1 or 2"),
        ([HEADER, ["X"]], "not a snapshot record"),
    ],
)
def test_records_are_checked(records: list[list[object]], reason: str) -> None:
    with pytest.raises(CorruptError, match=reason):
        read_snapshot([pack_stream(records)])


HEADER_V2 = ["H", "steersman-mvcc-snapshot", 2, 0, 4, 0, 1]


def test_a_hand_made_version_2_stream_restores() -> None:
    stream = pack_stream([
        HEADER_V2,
        ["K", [b"a", [[b"v", 2, 2, 1, 0]], b"b", [[b"w", 3, 3, 1, 0]]]],
        ["K", [b"b", [[b"x", 3, 4, 2, 0]]]],  # b's history goes on in the next record
        ["C", 2, [1, 2], [b"a", b"b", b"a"]],
    ])
    with pytest.raises(CorruptError, match="history lacks"):
        KVStateMachine(FakeClock()).restore([stream])
    stream = pack_stream([
        HEADER_V2,
        ["K", [b"a", [[b"v", 2, 2, 1, 0]], b"b", [[b"w", 3, 3, 1, 0]]]],
        ["K", [b"b", [[b"x", 3, 4, 2, 0]]]],
        ["C", 2, [1, 1], [b"a", b"b"]],
        ["C", 4, [1], [b"b"]],
    ])
    m = KVStateMachine(FakeClock())
    m.restore([stream])
    assert m.store.revision == 4
    assert [kv.value for kv in m.store.range("", ALL_KEYS).kvs] == [b"v", b"x"]
    assert [kv.value for kv in m.store.range("b", revision=3).kvs] == [b"w"]


V2_KEYS = ["K", [b"a", [[b"v", 2, 2, 1, 0]], b"b", [[b"w", 3, 3, 1, 0]]]]
V2_LOG = ["C", 2, [1, 1], [b"a", b"b"]]


@pytest.mark.parametrize(
    ("records", "reason"),
    [
        ([HEADER_V2, ["K", [b"a"]], V2_LOG], "bad key record"),
        ([HEADER_V2, ["K", []], V2_LOG], "bad key record"),
        ([HEADER_V2, ["K", [b"a", []]], V2_LOG], "bad key record"),
        ([HEADER_V2, ["K", [b"b", [[b"w", 3, 3, 1, 0]], b"a", [[b"v", 2, 2, 1, 0]]]], V2_LOG], "keys out of order"),
        ([HEADER_V2, ["K", [b"a", [[b"v", 2, 2, 1, 0]], b"b", [[b"w", 3, 3, 1, 0]], b"a", [[b"u", 2, 4, 2, 0]]]],
          V2_LOG], "out of order"),
        ([HEADER_V2, V2_KEYS, ["C", 2, [1, 2], [b"a", b"b"]]], "bad change counts"),
        ([HEADER_V2, V2_KEYS, ["C", 2, [1, 0], [b"a"]]], "bad change counts"),
        ([HEADER_V2, V2_KEYS, ["C", 2, [1, 1], [b"a", 7]]], "bad change keys"),
        ([HEADER_V2, V2_KEYS, ["C", 2, [1], [b"a"]], ["C", 4, [1], [b"b"]]], "gap"),
        ([HEADER_V2, V2_KEYS, ["C", 2, [[b"a"], [b"b"]]]], "bad change record"),
    ],
)
def test_version_2_records_are_checked(records: list[list[object]], reason: str) -> None:
    with pytest.raises(CorruptError, match=reason):
        read_snapshot([pack_stream(records)])


def test_records_carry_many_keys_and_revisions() -> None:
    a = KVStateMachine(FakeClock())
    for i in range(2000):
        a.store.put(b"key%05d" % i, b"x" * 20)
    a.store.txn([], [op_put(b"key00001", b"t"), op_put(b"key00002", b"t")])
    unpacker = msgpack.Unpacker(raw=False)
    for c in a.snapshot_chunks(16 << 10):
        unpacker.feed(c)
    records = list(unpacker)
    keys = [r for r in records if r[0] == "K"]
    changes = [r for r in records if r[0] == "C"]
    assert 1 < len(keys) < 10 and sum(len(r[1]) // 2 for r in keys) == 2000
    assert len(changes) == 2 and [len(r[3]) for r in changes] == [1024, 978]
    assert changes[1][2][-1] == 2  # the txn's revision wrote two keys
    b = KVStateMachine(FakeClock())
    b.restore(chunk for chunk in a.snapshot_chunks(16 << 10))
    assert b.hash_state() == a.hash_state()
    assert list(b.store.changes(1)) == list(a.store.changes(1))
