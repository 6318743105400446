"""The embedded member: durability across restarts, lease expiry, back-pressure."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from typing import Any

import pytest

import kvstore
from kvstore.clock import FakeClock
from kvstore.errors import Compacted, LeaseNotFound, Overloaded, Unavailable
from kvstore.mvcc.lease import MIN_TTL_SECONDS
from kvstore.mvcc.types import EventType
from kvstore.node import Node, NodeOptions
from kvstore.kv import close_stream
from kvstore.storage.log_storage import DiskLogStorage
from tests.kvstore.members import eventually


async def _write_some(kv: Node) -> dict[str, Any]:
    """A little of everything; returns what must survive a restart."""
    for i in range(20):
        await kv.put(f"/k/{i:02d}", f"v{i}")
    await kv.delete("/k/05")
    mid = (await kv.put("/k/00", b"rewritten")).header_revision
    await kv.compact(mid - 3)
    lease = await kv.lease_grant(600)
    await kv.put("/leased", b"x", lease=lease.id)
    h, rev, compact_rev = await kv.hash_kv()
    return {"hash": h, "rev": rev, "compact": compact_rev, "lease": lease.id, "mid": mid}


async def _check_restored(kv: Node, before: dict[str, Any]) -> None:
    assert await kv.hash_kv() == (before["hash"], before["rev"], before["compact"])
    status = await kv.status()
    assert status.revision == before["rev"] and status.compact_revision == before["compact"]
    keys = [x.key for x in (await kv.range("/k/", prefix=True)).kvs]
    assert len(keys) == 19 and b"/k/05" not in keys
    k0 = await kv.get("/k/00")
    assert k0 is not None and (k0.value, k0.version) == (b"rewritten", 2)
    assert before["lease"] in await kv.lease_list()
    leased = await kv.get("/leased")
    assert leased is not None and leased.lease == before["lease"]
    with pytest.raises(Compacted):
        await kv.get("/k/00", revision=before["compact"] - 1)
    # History after the compact revision survived too.
    old = await kv.get("/k/00", revision=before["mid"] - 1)
    assert old is not None and old.value == b"v0"
    # And the member takes new writes at the next revision.
    assert (await kv.put("/after", b"1")).header_revision == before["rev"] + 1


@pytest.mark.parametrize("snapshot_count", [50_000, 8], ids=["wal-only", "with-snapshots"])
async def test_restart_from_data_dir_keeps_everything(
    tmp_path: Any, snapshot_count: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kvstore")
    options = NodeOptions(snapshot_count=snapshot_count, catch_up_entries=2)
    data_dir = str(tmp_path / "data")
    def saved() -> bool:
        return any("saved a snapshot" in r.getMessage() for r in caplog.records)

    async with kvstore.open(data_dir, options=options) as kv:
        before = await _write_some(kv)
        if snapshot_count < 50_000:
            await eventually(saved, what="a snapshot saved")
    assert saved() == (snapshot_count < 50_000)
    async with kvstore.open(data_dir, options=options) as kv:
        await _check_restored(kv, before)
    # Twice: a restart after a restart (and after new writes) still replays cleanly.
    async with kvstore.open(data_dir, options=options) as kv:
        after = await kv.get("/after")
        assert after is not None and after.mod_revision == before["rev"] + 1


async def _wait_deleted(stream: Any, key: bytes) -> int:
    async for resp in stream:
        for e in resp.events:
            if e.type == EventType.DELETE and e.kv.key == key:
                return int(e.kv.mod_revision)
    raise AssertionError("watch ended")


async def test_lease_expires_on_the_leaders_clock(tmp_path: Any) -> None:
    clock = FakeClock(1000.0)
    options = NodeOptions(tick_interval=0.01)
    node = await Node.start(data_dir=str(tmp_path / "d"), options=options, clock=clock)
    try:
        await asyncio.wait_for(_until_leader(node), 10)
        short = await node.lease_grant(1)
        assert short.ttl == MIN_TTL_SECONDS  # raised to the minimum
        kept = await node.lease_grant(MIN_TTL_SECONDS)
        await node.put("/eph", b"1", lease=short.id)
        await node.put("/kept", b"2", lease=kept.id)
        stream = await node.watch("/", prefix=True)

        clock.advance(MIN_TTL_SECONDS - 1)
        assert (await node.lease_time_to_live(short.id)).ttl == 1
        assert await node.lease_keepalive(kept.id) == MIN_TTL_SECONDS
        clock.advance(1.5)  # past the short lease's deadline, not the renewed one's
        rev = await asyncio.wait_for(_wait_deleted(stream, b"/eph"), 10)
        await close_stream(stream)

        assert await node.get("/eph") is None
        assert await node.get("/kept") is not None
        assert short.id not in await node.lease_list()
        assert kept.id in await node.lease_list()
        with pytest.raises(LeaseNotFound):
            await node.lease_keepalive(short.id)
        # The expiry was a replicated revoke: one revision, in the history.
        gone = await node.get("/eph", revision=rev - 1)
        assert gone is not None and gone.lease == short.id
    finally:
        await node.stop()


async def test_an_overloaded_member_revokes_an_expired_lease_later(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock(1000.0)
    options = NodeOptions(tick_interval=0.01)
    node = await Node.start(data_dir=str(tmp_path / "d"), options=options, clock=clock)
    try:
        await asyncio.wait_for(_until_leader(node), 10)
        lease = await node.lease_grant(MIN_TTL_SECONDS)
        refused: list[bytes] = []
        submit = node._submit

        def overloaded(cmd: bytes) -> Any:
            refused.append(cmd)
            raise Overloaded("too many pending proposals; retry later")

        monkeypatch.setattr(node, "_submit", overloaded)
        clock.advance(MIN_TTL_SECONDS + 1)
        while not refused:
            await asyncio.sleep(0.01)
        # The ticker kept running; once the member takes proposals again, the
        # lessor offers the lease again and it is revoked.
        monkeypatch.setattr(node, "_submit", submit)
        clock.advance(10)
        while lease.id in await node.lease_list():
            await asyncio.sleep(0.01)
        assert not any(t.done() for t in node._tasks)
    finally:
        await node.stop()


async def _until_leader(node: Node) -> None:
    while not node.is_leader:
        changed = node.leader_changed
        if node.is_leader:
            return
        await changed.wait()


async def test_too_many_pending_proposals_is_unavailable(tmp_path: Any) -> None:
    options = NodeOptions(max_pending_proposals=3)
    async with kvstore.open(str(tmp_path / "d"), options=options) as kv:
        # Ten puts in one turn of the event loop: three fit, seven are refused at once.
        results = await asyncio.gather(
            *(kv.put(f"/p/{i}", b"x") for i in range(10)), return_exceptions=True
        )
        accepted = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, BaseException)]
        assert len(accepted) == 3
        assert len(refused) == 7 and all(isinstance(r, Unavailable) for r in refused)
        assert (await kv.range("/p/", prefix=True)).count == 3
        # Back-pressure is momentary: once answered, there is room again.
        for i in range(10, 15):
            await kv.put(f"/p/{i}", b"x")
        assert (await kv.range("/p/", prefix=True)).count == 8


async def test_stopped_member_refuses_requests(tmp_path: Any) -> None:
    node = await Node.start(data_dir=str(tmp_path / "d"), options=NodeOptions())
    await asyncio.wait_for(_until_leader(node), 10)
    await node.put("/a", b"1")
    await node.stop()
    with pytest.raises(Unavailable):
        await node.put("/a", b"2")
    with pytest.raises(Unavailable):
        await node.get("/a")


async def test_status_reports_unsafe_no_fsync(tmp_path: Any) -> None:
    options = dataclasses.replace(NodeOptions(), unsafe_no_fsync=True)
    async with kvstore.open(str(tmp_path / "d"), options=options) as kv:
        assert (await kv.status()).unsafe_no_fsync


@pytest.mark.parametrize("step", ["save_snapshot_file", "compact_saved"])
async def test_stop_waits_for_snapshot_work_in_a_thread(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    save = getattr(DiskLogStorage, step)
    started = threading.Event()
    finished: list[bool] = []

    def slow_save(self: DiskLogStorage, snap: Any) -> None:
        started.set()
        time.sleep(0.3)
        save(self, snap)
        finished.append(True)

    monkeypatch.setattr(DiskLogStorage, step, slow_save)
    data_dir = str(tmp_path / "data")
    async with kvstore.open(data_dir, options=NodeOptions(snapshot_count=5)) as node:
        for i in range(6):
            await node.put(f"/s/{i}", b"v")
        await asyncio.to_thread(started.wait, 10)
        # Leaving the block stops the member while the file is being written.
    # The thread was not left writing into the data dir: a restart finds it quiet.
    assert finished == [True]
    async with kvstore.open(data_dir) as again:
        assert (await again.range("/s/", prefix=True)).count == 6
