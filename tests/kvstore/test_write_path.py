"""The member's write path: batched proposals, answers without futures, apply during fsync."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

import kvstore
from kvstore.errors import InvalidRequest, LeaseNotFound, ProposalDropped, Unavailable
from kvstore.mvcc import command
from kvstore.mvcc.types import PutResult
from kvstore.member import NodeOptions
from kvstore.node import INLINE_SYNC_REQUESTS, Node
from kvstore.proposals import BATCH_TAG, entry_requests
from kvstore.raft.rawnode import RawNode
from tests.kvstore.members import InProcessCluster, eventually


async def test_one_turn_of_puts_is_one_step_of_the_core_and_one_entry(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps: list[list[int]] = []
    propose_batch = RawNode.propose_batch

    def counting(self: RawNode, datas: Any) -> None:
        steps.append([len(entry_requests(d)) if d[:8] == BATCH_TAG else 1 for d in datas])
        propose_batch(self, datas)

    monkeypatch.setattr(RawNode, "propose_batch", counting)
    async with kvstore.open(str(tmp_path / "one")) as node:
        results = await asyncio.gather(*(node.put(f"/b/{i:03d}", b"v") for i in range(50)))
        assert [50] in steps, steps
        # Each request of the batch entry has its own revision, in order.
        revisions = [r.header_revision for r in results]
        assert revisions == sorted(revisions) and len(set(revisions)) == 50
        assert [kv.key for kv in (await node.range("/b/", prefix=True)).kvs] == [
            b"/b/%03d" % i for i in range(50)
        ]
        # A failing request in a batch fails alone.
        outcome = await asyncio.gather(node.put("/c/1", b"v"), node.put("/c/2", b"v", lease=999),
                                       node.put("/c/3", b"v"), return_exceptions=True)
        assert isinstance(outcome[1], LeaseNotFound)
        assert not isinstance(outcome[0], Exception) and not isinstance(outcome[2], Exception)
        assert outcome[2].header_revision == outcome[0].header_revision + 1


async def test_snapshots_count_requests_not_entries(tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kvstore")
    options = NodeOptions(snapshot_count=120)
    async with kvstore.open(str(tmp_path / "one"), options=options) as node:
        for turn in range(3):
            await asyncio.gather(*(node.put(f"/s/{turn}/{i}", b"v") for i in range(50)))
        await eventually(lambda: any("saved a snapshot" in r.getMessage() for r in caplog.records))
        status = await node.status()
    # 150 requests in a handful of entries: the snapshot came after 120 requests.
    assert status.applied_index < 20


async def test_submit_command_with_answers_once_with_result_or_error(tmp_path: Any) -> None:
    async with kvstore.open(str(tmp_path / "one")) as node:
        outcomes: list[object] = []
        done = asyncio.Event()

        def answer(outcome: object) -> None:
            outcomes.append(outcome)
            if len(outcomes) == 2:
                done.set()

        node.submit_command_with(command.encode_put(b"/a", b"1"), answer)
        node.submit_command_with(command.encode_put(b"/b", b"2", lease=12345), answer)
        await asyncio.wait_for(done.wait(), 10)
        assert isinstance(outcomes[0], PutResult)
        assert isinstance(outcomes[1], LeaseNotFound)
        kv = await node.get("/a")
        assert kv is not None and kv.value == b"1"
        assert await node.get("/b") is None


async def test_pending_answers_get_unavailable_when_the_member_stops(tmp_path: Any) -> None:
    c = InProcessCluster(str(tmp_path / "cluster"))
    try:
        await c.start()
        leader_id = await c.wait_for_leader()
        # Without its peers the leader can commit nothing: the answer waits.
        for i in c.ids:
            if i != leader_id:
                await c.stop_member(i)
        outcomes: list[object] = []
        c.node(leader_id).submit_command_with(command.encode_put(b"/x", b"1"), outcomes.append)
        await c.stop_member(leader_id)
        assert len(outcomes) == 1 and isinstance(outcomes[0], Unavailable)
    finally:
        await c.close()


class _SyncGate:
    """Holds the syncs that a member runs in its sync thread until released one by one."""

    def __init__(self, node: Node) -> None:
        disk = node._disk
        assert disk is not None
        self._sync = disk.sync
        self.permits = threading.Semaphore(0)
        self.waiting = 0
        self.closed = False
        disk.sync = self._gated  # type: ignore[method-assign]

    def _gated(self) -> None:
        if threading.current_thread() is not threading.main_thread() and not self.closed:
            self.waiting += 1
            self.permits.acquire()
            self.waiting -= 1
        self._sync()

    def open(self) -> None:
        self.closed = True
        self.permits.release(100)


async def test_committed_entries_are_answered_while_the_next_batch_syncs(tmp_path: Any) -> None:
    c = InProcessCluster(str(tmp_path / "cluster"))
    gate: _SyncGate | None = None
    try:
        await c.start()
        leader_id = await c.wait_for_leader()
        leader = c.node(leader_id)
        gate = _SyncGate(leader)
        n = INLINE_SYNC_REQUESTS + 2  # big enough a batch to be synced in the thread
        assert leader._raw is not None
        log = leader._raw.raft.raft_log
        before = log.last_index()
        first = [asyncio.ensure_future(leader.put(f"/first/{i}", b"v")) for i in range(n)]
        await eventually(lambda: gate is not None and gate.waiting == 1, what="first sync held")
        # The followers alone make the first batch committed, and then a second one.
        second = [asyncio.ensure_future(leader.put(f"/second/{i}", b"v")) for i in range(n)]
        await eventually(lambda: log.last_index() >= before + 2 and log.committed == log.last_index(),
                         what="both batches committed by the followers")
        assert not any(f.done() for f in first + second)
        # Let the first sync finish: the next ready syncs the second batch (held)
        # and meanwhile applies the first, which is in the log now.
        gate.permits.release()
        await eventually(lambda: all(f.done() for f in first), what="first batch answered")
        await eventually(lambda: gate is not None and gate.waiting == 1, what="second sync held")
        assert not any(f.done() for f in second), "entries not yet in the log wait for it"
        gate.open()
        results = await asyncio.wait_for(asyncio.gather(*second), 10)
        assert all(isinstance(r, PutResult) for r in results)
        assert all(isinstance(f.result(), PutResult) for f in first)
    finally:
        if gate is not None:
            gate.open()
        await c.close()


async def test_an_answer_that_raises_is_logged_and_the_member_keeps_serving(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(outcome: object) -> None:
        raise RuntimeError("answer failed")

    async with kvstore.open(str(tmp_path / "one")) as node:
        node.submit_command_with(command.encode_put(b"/a", b"1"), broken)
        assert (await node.put("/b", b"2")).header_revision >= 2
        kv = await node.get("/a")
        assert kv is not None and kv.value == b"1"
    assert any("answering a request failed" in r.getMessage() for r in caplog.records)


async def test_an_empty_command_is_refused_and_a_turn_goes_on(tmp_path: Any) -> None:
    async with kvstore.open(str(tmp_path / "one")) as node:
        with pytest.raises(InvalidRequest):
            node.submit_command(b"")
        with pytest.raises(InvalidRequest):
            node.submit_command_with(b"", lambda _outcome: None)
        assert isinstance(await node.submit_command(command.encode_put(b"/a", b"1")), PutResult)


async def test_an_undecodable_batch_entry_is_skipped_and_the_member_serves_on(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = str(tmp_path / "one")
    async with kvstore.open(data_dir) as node:
        assert node._raw is not None
        node._raw.propose_batch([BATCH_TAG + b"\xc1"])  # what no member proposes
        node._wake.set()
        put = await node.put("/after", b"1")
        assert put.header_revision == 2
    assert any("skipping undecodable entry" in r.getMessage() for r in caplog.records)
    async with kvstore.open(data_dir) as again:  # and its log replays
        kv = await again.get("/after")
        assert kv is not None and kv.mod_revision == 2


async def test_a_dropped_batch_answers_every_request(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    async with kvstore.open(str(tmp_path / "one")) as node:
        def dropping(self: RawNode, datas: Any) -> None:
            raise ProposalDropped("no leader")

        monkeypatch.setattr(RawNode, "propose_batch", dropping)
        outcomes = await asyncio.wait_for(
            asyncio.gather(*(node.put(f"/d/{i}", b"v") for i in range(5)), return_exceptions=True), 10)
        assert len(outcomes) == 5 and all(isinstance(o, ProposalDropped) for o in outcomes)
        assert not node._waiters


async def test_a_followers_batch_is_forwarded_and_each_request_answered(tmp_path: Any) -> None:
    c = InProcessCluster(str(tmp_path / "cluster"))
    try:
        await c.start()
        leader_id = await c.wait_for_leader()
        follower = c.node(next(i for i in c.ids if i != leader_id))
        results = await asyncio.wait_for(
            asyncio.gather(*(follower.put(f"/f/{i:02d}", b"v") for i in range(20))), 10)
        revisions = sorted(r.header_revision for r in results)
        assert len(set(revisions)) == 20 and revisions[-1] - revisions[0] == 19
        leader = c.node(leader_id)
        assert (await leader.range("/f/", prefix=True)).count == 20
    finally:
        await c.close()
