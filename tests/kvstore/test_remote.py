"""The remote client against three members in this process: leader changes, resumed
watches, pipelining, and reads and writes through followers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import kvstore
from kvstore.errors import Unavailable
from kvstore.mvcc.types import EventType
from kvstore.kv import close_stream
from tests.kvstore.members import InProcessCluster, eventually


async def test_client_follows_a_leader_change(cluster: InProcessCluster) -> None:
    async with kvstore.connect(cluster.endpoints(), timeout=10) as kv:
        old = cluster.leader()
        before = await kv.put("/before", b"1")
        assert (await kv.status()).member_id == old
        await cluster.stop_member(old)
        # The next write finds the new leader by itself.
        after = await kv.put("/after", b"2")
        assert after.header_revision > before.header_revision
        status = await kv.status()
        assert status.member_id != old and status.role == "leader"
        assert status.term > 1
        got = await kv.get("/before")
        assert got is not None and got.value == b"1"
        # The old leader comes back as a follower and catches up.
        await cluster.start_member(old)
        await cluster.wait_converged()
        restarted = cluster.node(old)
        assert (await restarted.get("/after", serializable=True)) is not None
        assert await restarted.hash_kv(after.header_revision) == await cluster.node(
            status.member_id).hash_kv(after.header_revision)


async def _write_until(kv: Any, prefix: str, stop: asyncio.Event) -> tuple[list[int], int]:
    """Put ``prefix/<n>`` until told to stop; returns acknowledged revisions and unknowns."""
    acked: list[int] = []
    unknown = 0
    n = 0
    while not stop.is_set():
        n += 1
        try:
            acked.append((await kv.put(f"{prefix}/{n:05d}", str(n))).header_revision)
        except Unavailable:
            unknown += 1  # the connection broke after sending: it may have been applied
    return acked, unknown


async def _collect(stream: Any, out: list[tuple[int, bytes, int]], last: int) -> None:
    async for resp in stream:
        for e in resp.events:
            out.append((int(e.type), e.kv.key, e.kv.mod_revision))
        if out and out[-1][2] >= last:
            return


async def test_watch_survives_its_member_stopping(cluster: InProcessCluster) -> None:
    leader = cluster.leader()
    follower = next(i for i in cluster.ids if i != leader)
    async with kvstore.connect(cluster.endpoints(), timeout=10) as writer, \
            kvstore.connect(cluster.endpoints(first=follower), follow_leader=False,
                            timeout=10) as on_follower, \
            kvstore.connect(cluster.endpoints(), timeout=10) as on_leader:
        start = (await writer.put("/w/00000", b"start")).header_revision
        streams = [
            await on_follower.watch("/w/", prefix=True, start_revision=start),
            await on_leader.watch("/w/", prefix=True, start_revision=start),
        ]
        assert (await on_follower.status()).member_id == follower
        stop = asyncio.Event()
        load = asyncio.create_task(_write_until(writer, "/w", stop))
        await eventually(lambda: cluster.node(leader).machine.store.revision > start + 30,
                         what="writes before the stop")
        await cluster.stop_member(follower)
        await eventually(lambda: cluster.node(leader).machine.store.revision > start + 60,
                         what="writes after the follower stopped")
        await cluster.start_member(follower)
        await cluster.stop_member(leader)
        await cluster.wait_for_leader()
        current = cluster.node(cluster.leader()).machine.store.revision
        await eventually(lambda: cluster.node(cluster.leader()).machine.store.revision
                         > current + 30, what="writes after the leader stopped")
        stop.set()
        acked, _ = await load
        last = (await writer.put("/w/zzzzz", b"end")).header_revision

        seen: list[list[tuple[int, bytes, int]]] = [[], []]
        await asyncio.wait_for(
            asyncio.gather(*(_collect(s, out, last) for s, out in zip(streams, seen))), 20
        )
        for s in streams:
            await close_stream(s)
        # The truth: a fresh watch over the same range on a member that never stopped.
        async with kvstore.connect(cluster.endpoints(), timeout=10) as fresh:
            truth: list[tuple[int, bytes, int]] = []
            replay = await fresh.watch("/w/", prefix=True, start_revision=start)
            await asyncio.wait_for(_collect(replay, truth, last), 20)
            await close_stream(replay)
    revisions = [r for _, _, r in truth]
    assert revisions == sorted(set(revisions)), "the replay itself is ordered and unique"
    assert set(acked) <= set(revisions), "every acknowledged write is an event"
    for out in seen:
        assert out == truth  # every event once, in order, across the member stops


async def test_many_concurrent_requests_share_one_connection(cluster: InProcessCluster) -> None:
    leader_id = cluster.leader()
    leader = cluster.node(leader_id)
    inflight = 0
    peak = 0
    connections: set[int] = set()
    submit = leader.submit_command_with

    def counting_submit(cmd: bytes, answer: Callable[[object], None]) -> None:
        nonlocal inflight, peak

        def done(outcome: object) -> None:
            nonlocal inflight
            inflight -= 1
            answer(outcome)

        submit(cmd, done)
        inflight += 1
        peak = max(peak, inflight)
        connections.add(cluster.client_connections(leader_id))

    leader.submit_command_with = counting_submit  # type: ignore[method-assign]
    async with kvstore.connect([cluster.endpoint(leader_id)], timeout=20) as kv:
        results = await asyncio.gather(*(kv.put(f"/pipe/{i:04d}", f"{i}") for i in range(500)))
        revisions = [r.header_revision for r in results]
        assert len(set(revisions)) == 500
        # Each answer went to the request it belongs to.
        stored = await kv.range("/pipe/", prefix=True)
        assert stored.count == 500
        for i, kv_ in enumerate(stored.kvs):
            assert kv_.value == str(i).encode()
            assert kv_.mod_revision == revisions[i]
        reads = await asyncio.gather(*(kv.get(f"/pipe/{i:04d}") for i in range(0, 500, 5)))
        assert [r.value for r in reads if r is not None] == [str(i).encode()
                                                            for i in range(0, 500, 5)]
    assert connections == {1}, "every write arrived on the same single connection"
    assert peak >= 100, f"only {peak} writes were in flight at once"


async def test_follower_serves_reads_and_forwards_writes(cluster: InProcessCluster) -> None:
    leader = cluster.leader()
    follower = next(i for i in cluster.ids if i != leader)
    async with kvstore.connect([cluster.endpoint(follower)], follow_leader=False,
                               timeout=10) as kv:
        assert (await kv.status()).member_id == follower
        written = await kv.put("/via-follower", b"1")
        # A linearizable read on the follower sees the write it just acknowledged.
        got = await kv.get("/via-follower")
        assert got is not None and got.mod_revision == written.header_revision
        local = await kv.get("/via-follower", serializable=True)
        assert local is not None
        lease = await kv.lease_grant(30)
        assert lease.id in await kv.lease_list()
    leader_node = cluster.node(leader)
    assert (await leader_node.get("/via-follower")) is not None


async def test_watch_events_carry_every_type(cluster: InProcessCluster) -> None:
    async with kvstore.connect(cluster.endpoints(), timeout=10) as kv:
        stream = await kv.watch("/types/", prefix=True)
        await kv.put("/types/a", b"1")
        await kv.delete("/types/a")
        got: list[tuple[int, bytes, int]] = []
        last = (await kv.put("/types/b", b"2")).header_revision
        await asyncio.wait_for(_collect(stream, got, last), 10)
        await close_stream(stream)
    assert [t for t, _, _ in got] == [EventType.PUT, EventType.DELETE, EventType.PUT]
