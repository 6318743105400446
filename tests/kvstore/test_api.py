"""The key-value API, identical embedded (``kvstore.open``) and remote (``kvstore.connect``).

Every test runs twice through the ``kv`` fixture: against a one-member store
in this process, and through the client protocol against three members.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kvstore.errors import Compacted, FutureRevision, LeaseNotFound, TooLarge
from kvstore.mvcc.request import CompareTarget, compare, op_delete, op_put, op_range, op_txn
from kvstore.mvcc.types import (
    DeleteRangeResult,
    EventType,
    PutResult,
    RangeResult,
    SortOrder,
    SortTarget,
    WatchResponse,
)


async def _events(stream: Any, count: int, *, timeout: float = 10.0) -> list[tuple[int, bytes, int]]:
    """The next ``count`` events of a watch as ``(type, key, mod_revision)``."""
    out: list[tuple[int, bytes, int]] = []

    async def collect() -> None:
        async for resp in stream:
            for e in resp.events:
                out.append((int(e.type), e.kv.key, e.kv.mod_revision))
            if len(out) >= count:
                return

    await asyncio.wait_for(collect(), timeout)
    return out


async def test_put_get_and_versions(kv: Any) -> None:
    first = await kv.put("/a", b"1")
    assert isinstance(first, PutResult)
    second = await kv.put(b"/a", "2", prev_kv=True)
    assert second.header_revision == first.header_revision + 1
    assert second.prev_kv is not None and second.prev_kv.value == b"1"
    got = await kv.get("/a")
    assert got is not None
    assert (got.key, got.value, got.version) == (b"/a", b"2", 2)
    assert (got.create_revision, got.mod_revision) == (first.header_revision, second.header_revision)
    assert await kv.get("/missing") is None
    old = await kv.get("/a", revision=first.header_revision)
    assert old is not None and old.value == b"1"
    assert (await kv.get("/a", serializable=True)) is not None


async def test_range_prefix_limit_sort_and_revision(kv: Any) -> None:
    for key in ["/r/3", "/r/1", "/r/2", "/s"]:
        await kv.put(key, key.upper())
    everything = await kv.range("/r/", prefix=True)
    assert isinstance(everything, RangeResult)
    assert [x.key for x in everything.kvs] == [b"/r/1", b"/r/2", b"/r/3"]
    assert (everything.count, everything.more) == (3, False)

    limited = await kv.range("/r/", prefix=True, limit=2)
    assert [x.key for x in limited.kvs] == [b"/r/1", b"/r/2"]
    assert (limited.count, limited.more) == (3, True)

    down = await kv.range("/r/", prefix=True, sort_order=SortOrder.DESCEND)
    assert [x.key for x in down.kvs] == [b"/r/3", b"/r/2", b"/r/1"]
    by_mod = await kv.range("/r/", prefix=True, sort_order=SortOrder.ASCEND,
                            sort_target=SortTarget.MOD)
    assert [x.key for x in by_mod.kvs] == [b"/r/3", b"/r/1", b"/r/2"]

    half_open = await kv.range("/r/1", "/r/3")
    assert [x.key for x in half_open.kvs] == [b"/r/1", b"/r/2"]
    counted = await kv.range("/r/", prefix=True, count_only=True)
    assert (counted.kvs, counted.count) == ((), 3)
    keys = await kv.range("/r/", prefix=True, keys_only=True)
    assert [x.value for x in keys.kvs] == [b"", b"", b""]

    before = everything.header_revision - 1  # "/s" was the last write
    await kv.put("/r/1", b"changed")
    historical = await kv.range("/r/", prefix=True, revision=before)
    assert [x.value for x in historical.kvs] == [b"/R/1", b"/R/2", b"/R/3"]
    with pytest.raises(FutureRevision):
        await kv.range("/r/", prefix=True, revision=everything.header_revision + 100)


async def test_delete_key_and_prefix(kv: Any) -> None:
    for key in ["/d/1", "/d/2", "/d/3", "/e"]:
        await kv.put(key, b"x")
    one = await kv.delete("/d/1")
    assert isinstance(one, DeleteRangeResult) and one.deleted == 1
    none = await kv.delete("/d/1")
    assert none.deleted == 0 and none.header_revision == one.header_revision
    rest = await kv.delete("/d/", prefix=True, prev_kv=True)
    assert rest.deleted == 2
    assert [x.key for x in rest.prev_kvs] == [b"/d/2", b"/d/3"]
    assert (await kv.range("/d/", prefix=True)).count == 0
    assert await kv.get("/e") is not None
    # History still holds what was deleted.
    past = await kv.get("/d/1", revision=one.header_revision - 1)
    assert past is not None and past.value == b"x"


async def test_txn_compares_and_branches(kv: Any) -> None:
    created = await kv.txn(
        [compare("/t", CompareTarget.VERSION, "=", 0)],
        [op_put("/t", "v1"), op_range("/t")],
        [op_range("/t")],
    )
    assert created.succeeded
    assert created.responses[1].kvs[0].value == b"v1"
    # The same compare now fails: the failure branch runs, and writes nothing.
    again = await kv.txn(
        [compare("/t", CompareTarget.VERSION, "=", 0)],
        [op_put("/t", "never")],
        [op_range("/t")],
    )
    assert not again.succeeded
    assert again.responses[0].kvs[0].value == b"v1"
    assert again.header_revision == created.header_revision
    # Compare-and-swap on the value, plus a delete, in one revision.
    await kv.put("/t2", b"gone soon")
    swapped = await kv.txn(
        [compare("/t", CompareTarget.VALUE, "=", "v1"),
         compare("/t", CompareTarget.MOD, "<", created.header_revision + 10)],
        [op_put("/t", "v2"), op_delete("/t2"),
         op_txn([compare("/t2", CompareTarget.VERSION, ">", 0)], [op_put("/t3", "nested")])],
    )
    assert swapped.succeeded
    t = await kv.get("/t")
    assert t is not None and t.value == b"v2" and t.mod_revision == swapped.header_revision
    assert await kv.get("/t2") is None
    t3 = await kv.get("/t3")
    assert t3 is not None and t3.mod_revision == swapped.header_revision
    stale = await kv.txn([compare("/t", CompareTarget.VALUE, "=", "v1")], [op_put("/t", "v3")])
    assert not stale.succeeded
    t = await kv.get("/t")
    assert t is not None and t.value == b"v2"


async def test_compact_then_old_revisions_are_gone(kv: Any) -> None:
    r1 = (await kv.put("/c", b"1")).header_revision
    r2 = (await kv.put("/c", b"2")).header_revision
    r3 = (await kv.put("/c", b"3")).header_revision
    result = await kv.compact(r2)
    assert result.compact_revision == r2
    with pytest.raises(Compacted) as info:
        await kv.get("/c", revision=r1)
    assert info.value.compact_revision == r2
    at_r2 = await kv.get("/c", revision=r2)
    assert at_r2 is not None and at_r2.value == b"2"
    assert (await kv.get("/c")).mod_revision == r3
    with pytest.raises(Compacted):
        await kv.watch("/c", start_revision=r1)
    with pytest.raises(Compacted):
        await kv.compact(r1)


async def test_watch_from_a_past_revision_then_live(kv: Any) -> None:
    start = (await kv.put("/w/a", b"1")).header_revision
    await kv.put("/w/b", b"2")
    await kv.delete("/w/a")
    await kv.put("/other", b"not watched")
    stream = await kv.watch("/w/", prefix=True, start_revision=start)
    try:
        history = await _events(stream, 3)
        assert history == [
            (EventType.PUT, b"/w/a", start),
            (EventType.PUT, b"/w/b", start + 1),
            (EventType.DELETE, b"/w/a", start + 2),
        ]
        live = await kv.put("/w/c", b"3")
        assert await _events(stream, 1) == [(EventType.PUT, b"/w/c", live.header_revision)]
    finally:
        await stream.aclose()


async def test_watch_from_now_sees_only_later_writes(kv: Any) -> None:
    await kv.put("/n/old", b"0")
    stream = await kv.watch("/n/", prefix=True)
    try:
        # The watch is in place once watch() returns, before the first step.
        new = await kv.put("/n/new", b"1")
        got = await _events(stream, 1)
        assert got == [(EventType.PUT, b"/n/new", new.header_revision)]
    finally:
        await stream.aclose()


async def test_watch_with_prev_kv(kv: Any) -> None:
    await kv.put("/p", b"before")
    stream = await kv.watch("/p", prev_kv=True)
    try:
        await kv.put("/p", b"after")
        resp: WatchResponse = await asyncio.wait_for(stream.__anext__(), 10)
        (event,) = resp.events
        assert event.kv.value == b"after"
        assert event.prev_kv is not None and event.prev_kv.value == b"before"
    finally:
        await stream.aclose()


async def test_lease_lifecycle(kv: Any) -> None:
    lease = await kv.lease_grant(30)
    assert lease.ttl == 30 and lease.id > 0
    await kv.put("/l/1", b"a", lease=lease.id)
    await kv.put("/l/2", b"b", lease=lease.id)
    await kv.put("/l/free", b"c")
    assert lease.id in await kv.lease_list()
    status = await kv.lease_time_to_live(lease.id, keys=True)
    assert status.granted_ttl == 30 and 0 < status.ttl <= 30
    assert status.keys == (b"/l/1", b"/l/2")
    assert await kv.lease_keepalive(lease.id) == 30
    got = await kv.get("/l/1")
    assert got is not None and got.lease == lease.id

    revoked = await kv.lease_revoke(lease.id)
    assert revoked.deleted == 2
    assert [x.key for x in (await kv.range("/l/", prefix=True)).kvs] == [b"/l/free"]
    assert lease.id not in await kv.lease_list()
    with pytest.raises(LeaseNotFound):
        await kv.lease_keepalive(lease.id)
    with pytest.raises(LeaseNotFound):
        await kv.put("/l/3", b"x", lease=lease.id)

    chosen = await kv.lease_grant(30, lease_id=777)
    assert chosen.id == 777


async def test_oversized_value_is_refused(kv: Any) -> None:
    with pytest.raises(TooLarge) as info:
        await kv.put("/big", b"x" * (2 << 20))
    assert info.value.what == "value"
    assert await kv.get("/big") is None
    # The store keeps serving.
    await kv.put("/small", b"ok")
    assert (await kv.get("/small")) is not None


async def test_status_and_hash(kv: Any) -> None:
    rev = (await kv.put("/h", b"1")).header_revision
    status = await kv.status()
    assert status.role == "leader" and status.leader == status.member_id
    assert status.revision == rev and status.keys >= 1
    members = await kv.member_list()
    assert status.member_id in [m.id for m in members]
    h1, at, _ = await kv.hash_kv(rev)
    assert at == rev
    await kv.put("/h", b"2")
    h2, _, _ = await kv.hash_kv()
    assert h2 != h1
    assert (await kv.hash_kv(rev))[0] == h1
