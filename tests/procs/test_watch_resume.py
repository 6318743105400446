"""Watchers whose member is killed with kill -9 reconnect elsewhere and resume:
every revision seen exactly once, in order, nothing missing."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

import kvstore
from kvstore.kv import close_stream
from tests.procs.harness import ProcCluster
from tests.procs.load import WriteLog, run_writers

pytestmark = pytest.mark.slow

Seen = list[tuple[int, bytes, bytes, int]]


async def _collect(stream: Any, out: Seen, last: int) -> None:
    async for resp in stream:
        for e in resp.events:
            out.append((int(e.type), e.kv.key, e.kv.value, e.kv.mod_revision))
        if out and out[-1][3] >= last:
            return


async def _stop_writers(stop: asyncio.Event, writers: list[asyncio.Task[None]]) -> None:
    stop.set()
    await asyncio.gather(*writers, return_exceptions=True)


async def test_watchers_resume_after_their_member_is_killed(procs: ProcCluster) -> None:
    leader = await procs.up()
    follower = next(i for i in procs.ids if i != leader)
    async with kvstore.connect(procs.endpoints(), timeout=10) as kv:
        start = (await kv.put("/watched/start", b"0")).header_revision

    log = WriteLog()
    stop = asyncio.Event()
    writers: list[asyncio.Task[None]] = []
    async with contextlib.AsyncExitStack() as stack:
        # Three watchers on the follower (the first that answers), two on the
        # leader; each on its own connection, so each finds its own way back.
        clients = [
            await stack.enter_async_context(
                kvstore.connect(procs.endpoints(first=follower), follow_leader=False, timeout=10))
            for _ in range(3)
        ] + [await stack.enter_async_context(kvstore.connect(procs.endpoints(), timeout=10))
             for _ in range(2)]
        stack.push_async_callback(_stop_writers, stop, writers)
        assert [(await c.status()).member_id for c in clients] == [follower] * 3 + [leader] * 2
        streams = [await c.watch("/watched/", prefix=True, start_revision=start)
                   for c in clients]
        for s in streams:
            stack.push_async_callback(close_stream, s)
        writers += run_writers(procs.endpoints(), "/watched", 3, log, stop)
        await log.wait_acked(150, timeout=60)
        procs.kill(follower)
        await log.wait_acked(len(log.acked) + 150, timeout=60)
        procs.restart(follower)
        procs.kill(leader)
        await log.wait_acked(len(log.acked) + 150, timeout=60)
        stop.set()
        await asyncio.gather(*writers)
        async with kvstore.connect(procs.endpoints(), timeout=10) as kv:
            last = (await kv.put("/watched/zz-end", b"end")).header_revision

        seen: list[Seen] = [[] for _ in streams]
        await asyncio.wait_for(
            asyncio.gather(*(_collect(s, out, last) for s, out in zip(streams, seen))), 60
        )
        for c in clients:
            assert (await c.status()).member_id != leader  # the killed leader is not back
        # The truth: one fresh watch replaying the same range from the same revision.
        async with kvstore.connect(procs.endpoints(), timeout=10) as kv:
            truth: Seen = []
            replay = await kv.watch("/watched/", prefix=True, start_revision=start)
            await asyncio.wait_for(_collect(replay, truth, last), 30)
            await close_stream(replay)

    revisions = [r for _, _, _, r in truth]
    assert revisions == sorted(set(revisions)) and revisions[0] == start
    acked = {v[1] for v in log.acked.values()}
    assert acked <= set(revisions), "an acknowledged write is missing from the replay"
    for i, out in enumerate(seen):
        assert out == truth, f"watcher {i} saw {len(out)} events, the store holds {len(truth)}"
