"""Snapshots: chunked, complete, checked, and safe to stream while the store keeps changing."""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterable
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest

from kvstore.clock import FakeClock
from kvstore.errors import CorruptError, InvariantError
from kvstore.mvcc import ALL_KEYS, KVStateMachine, op_delete, op_put
from kvstore.mvcc import snapshot as snapshot_module
from kvstore.mvcc.snapshot import Chunk, SnapshotReuse
from kvstore.mvcc.snapshot_reader import read_snapshot


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


def records_of(chunks: Iterable[Chunk]) -> list[list[Any]]:
    unpacker = msgpack.Unpacker(raw=False)
    for c in chunks:
        unpacker.feed(c)
    return list(unpacker)


def test_big_values_cut_the_change_log_into_records_between_revisions() -> None:
    a = KVStateMachine(FakeClock())
    for i in range(50):
        a.store.put("hot", bytes(100 << 10) + b"%d" % i)
    writes = [r for r in records_of(a.snapshot_chunks(1000)) if r[0] == "W"]
    # 100 KiB values, records of about 512 KiB: a few revisions each, in order, none lost.
    assert 5 < len(writes) < 25 and all(len(r[3]) <= 6 for r in writes)
    assert [w[3] for r in writes for w in r[3]] == list(range(2, 52))
    b = KVStateMachine(FakeClock())
    b.restore(a.snapshot_chunks(1000))
    same_reads(a, b)


def test_a_compacted_history_keeps_its_base_versions_apart() -> None:
    a = busy_machine()
    records = records_of(a.snapshot_chunks())
    compact = a.store.compact_revision
    base = [v for r in records if r[0] == "B" for v in r[1][1::2]]
    assert base and all(version[2] <= compact for versions in base for version in versions)
    first_write = next(r for r in records if r[0] == "W")
    assert first_write[1] == compact + 1


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
        [data + msgpack.packb(["W", 9, [1], []])],  # data after the trailer
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


def pack_stream_v2(records: list[list[object]], *, compact: int = 0) -> bytes:
    packed = [msgpack.packb(r, use_bin_type=True) for r in records]
    head_crc = history_crc = 0
    for r, p in zip(records, packed):
        if r[0] in ("H", "L"):
            head_crc = zlib.crc32(p, head_crc)
        else:
            history_crc = zlib.crc32(p, history_crc)
    trailer: bytes = msgpack.packb(["E", len(packed), head_crc, history_crc, compact])
    return b"".join(packed) + trailer


HEADER_V2 = ["H", "steersman-mvcc-snapshot", 2, 0, 5, 3, 1]  # revision 5, compacted at 3
BASE = ["B", [b"a", [[b"v", 2, 2, 1, 0]], b"b", [[b"w", 3, 3, 1, 0]]]]
WRITES = ["W", 4, [1, 1], [[b"b", b"x", 3, 4, 2, 0], [b"c", b"y", 5, 5, 1, 0]]]


def test_a_hand_made_version_2_stream_restores() -> None:
    m = KVStateMachine(FakeClock())
    m.restore([pack_stream_v2([HEADER_V2, BASE, WRITES], compact=3)])
    assert m.store.revision == 5 and m.store.compact_revision == 3
    assert [kv.value for kv in m.store.range("", ALL_KEYS).kvs] == [b"v", b"x", b"y"]
    assert [kv.value for kv in m.store.range("b", revision=3).kvs] == [b"w"]
    assert [rev for rev, _ in m.store.changes(4)] == [4, 5]


@pytest.mark.parametrize(
    ("records", "reason"),
    [
        ([HEADER_V2, ["B", [b"a"]], WRITES], "bad base record"),
        ([HEADER_V2, ["B", []], WRITES], "bad base record"),
        ([HEADER_V2, ["B", [b"a", []]], WRITES], "bad key record"),
        ([HEADER_V2, ["B", [b"b", [[b"w", 3, 3, 1, 0]], b"a", [[b"v", 2, 2, 1, 0]]]], WRITES], "keys out of order"),
        ([HEADER_V2, ["B", [b"a", [[b"v", 2, 4, 1, 0]]]], WRITES], "out of order"),  # above the compact revision
        ([HEADER_V2, BASE, ["W", 4, [1, 2], [[b"b", b"x", 3, 4, 2, 0], [b"c", b"y", 5, 5, 1, 0]]]], "bad write counts"),
        ([HEADER_V2, BASE, ["W", 4, [1, 0], [[b"b", b"x", 3, 4, 2, 0]]]], "bad write counts"),
        ([HEADER_V2, BASE, ["W", 4, [1, 1], [[b"b", b"x", 3, 4, 2, 0], [b"c", b"y", 5, 5, 1]]]], "bad write"),
        ([HEADER_V2, BASE, ["W", 4, [1, 1], [[b"b", b"x", 3, 4, 2, 0], ["c", b"y", 5, 5, 1, 0]]]], "bad write fields"),
        ([HEADER_V2, BASE, ["W", 4, [1, 1], [[b"b", b"x", 3, 4, 2, 0], [b"c", b"y", 5, 6, 1, 0]]]], "logged at 5"),
        ([HEADER_V2, BASE, ["W", 4, [2], [[b"b", b"x", 3, 4, 2, 0], [b"b", b"y", 3, 4, 3, 0]]]], "out of order"),
        ([HEADER_V2, BASE, ["W", 5, [1], [[b"c", b"y", 5, 5, 1, 0]]]], "gap"),
        ([HEADER_V2, BASE, ["W", 4, [1], [[b"b", b"x", 3, 4, 2, 0]]]], "does not cover"),
        ([HEADER_V2, WRITES, BASE], "out of order"),
        ([HEADER_V2, BASE, ["K", b"a", [[b"v", 2, 2, 1, 0]]], WRITES], "not a snapshot record"),
    ],
)
def test_version_2_records_are_checked(records: list[list[object]], reason: str) -> None:
    with pytest.raises(CorruptError, match=reason):
        read_snapshot([pack_stream_v2(records, compact=3)])


@pytest.mark.parametrize("wrong", [0, 1])
def test_either_checksum_failing_is_detected(wrong: int) -> None:
    good = pack_stream_v2([HEADER_V2, BASE, WRITES], compact=3)
    trailer = msgpack.unpackb(good[good.rindex(b"\x95\xa1E") :])
    trailer[2 + wrong] ^= 1
    damaged = good[: good.rindex(b"\x95\xa1E")] + msgpack.packb(trailer)
    read_snapshot([good])
    with pytest.raises(CorruptError, match="checksum mismatch"):
        read_snapshot([damaged])


def test_the_change_log_goes_in_runs_of_revisions() -> None:
    a = KVStateMachine(FakeClock())
    for i in range(2000):
        a.store.put(b"key%05d" % i, b"x" * 20)
    a.store.txn([], [op_put(b"key00001", b"t"), op_put(b"key00002", b"t")])
    writes = [r for r in records_of(a.snapshot_chunks(16 << 10)) if r[0] == "W"]
    assert [len(r[3]) for r in writes] == [1024, 978]
    assert writes[1][2][-1] == 2  # the txn's revision wrote two keys
    b = KVStateMachine(FakeClock())
    b.restore(a.snapshot_chunks(16 << 10))
    assert b.hash_state() == a.hash_state()
    assert list(b.store.changes(1)) == list(a.store.changes(1))


def write_and_reuse(a: KVStateMachine, reuse: SnapshotReuse) -> bytes:
    data = b"".join(a.snapshot_chunks(4096, reuse=reuse))
    reuse.keep(data)
    return data


def test_the_next_snapshot_reuses_the_history_already_packed(monkeypatch: pytest.MonkeyPatch) -> None:
    a = busy_machine()
    reuse = SnapshotReuse()
    write_and_reuse(a, reuse)
    for i in range(40):
        a.store.put(b"k%02d" % (i % 30), b"later%d" % i)
    packed: list[int] = []
    fields = snapshot_module._WRITE

    def counting(kv: Any) -> Any:
        packed.append(kv.mod_revision)
        return fields(kv)

    monkeypatch.setattr(snapshot_module, "_WRITE", counting)
    second = write_and_reuse(a, reuse)
    # Only the revisions written since the first snapshot were packed.
    assert packed == list(range(a.store.revision - 39, a.store.revision + 1))
    b = KVStateMachine(FakeClock())
    b.restore([second])
    assert b.hash_state() == a.hash_state()
    same_reads(a, b)


@pytest.mark.parametrize("change", ["compact", "restore"])
def test_a_compaction_or_a_restore_packs_everything_again(change: str) -> None:
    a = busy_machine()
    reuse = SnapshotReuse()
    write_and_reuse(a, reuse)
    a.store.put(b"k01", b"after")
    if change == "compact":
        a.store.compact(a.store.revision - 5)
    else:
        a.restore(busy_machine(seed=4).snapshot_chunks())
    with_stale_reuse = write_and_reuse(a, reuse)
    assert with_stale_reuse == b"".join(a.snapshot_chunks(4096))


def test_keeping_other_data_than_the_stream_is_refused() -> None:
    a = busy_machine()
    reuse = SnapshotReuse()
    data = b"".join(a.snapshot_chunks(4096, reuse=reuse))
    with pytest.raises(InvariantError):
        reuse.keep(data[:-1])


def test_writes_racing_a_long_stream_stay_out_of_it_and_out_of_its_reuse() -> None:
    a = KVStateMachine(FakeClock())
    for i in range(3000):
        a.store.put(b"key%05d" % i, b"x" * 20)
    reference = KVStateMachine(FakeClock())
    reference.restore(a.snapshot_chunks())
    reuse = SnapshotReuse()
    stream = a.snapshot_chunks(16 << 10, reuse=reuse)
    chunks = [next(stream), next(stream)]  # the change log's first run is out
    for j in range(5):
        a.store.put(b"late%d" % j, b"y")
    chunks += list(stream)
    data = b"".join(chunks)
    reuse.keep(data)
    b = KVStateMachine(FakeClock())
    b.restore([data])
    assert b.hash_state() == reference.hash_state()
    # The next snapshot, reusing this one, has the late writes exactly once.
    c = KVStateMachine(FakeClock())
    c.restore([write_and_reuse(a, reuse)])
    assert c.hash_state() == a.hash_state()
    same_reads(a, c)


def test_a_compaction_past_the_pinned_revision_stops_at_it() -> None:
    a = KVStateMachine(FakeClock())
    for i in range(100):
        a.store.put(b"k%d" % (i % 10), b"v%d" % i)
    pinned = a.store.revision
    stream = a.snapshot_chunks(256)
    first = next(stream)
    for i in range(10):
        a.store.put(b"k%d" % i, b"late")
    a.store.compact(a.store.revision - 2)  # proposed after the pin, as auto-compaction may
    b = KVStateMachine(FakeClock())
    b.restore([first, *stream])
    assert b.store.revision == pinned and b.store.compact_revision == pinned
    assert [kv.value for kv in b.store.range("k", "l").kvs] == [b"v%d" % i for i in range(90, 100)]


def test_a_stream_never_kept_does_not_confuse_the_next_one() -> None:
    a = busy_machine()
    reuse = SnapshotReuse()
    list(a.snapshot_chunks(4096, reuse=reuse))  # streamed, never kept
    a.store.put(b"k01", b"after")
    stream = a.snapshot_chunks(4096, reuse=reuse)
    first = next(stream)
    a.store.compact(a.store.revision - 3)  # nothing of this stream is reusable
    data = b"".join([first, *stream])
    reuse.keep(data)  # not refused: the older stream was forgotten
    assert write_and_reuse(a, reuse) == b"".join(a.snapshot_chunks(4096))
