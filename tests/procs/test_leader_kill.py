"""kill -9 of the leader under a steady write load, with real member processes.

Claims (over two kills in a row): a new leader is elected within a few
election timeouts; writes resume; once the killed members are back, every acknowledged write is on every
member with the value and revision it was acknowledged with, nothing that was
never written appears, and all members hash the key space alike.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

import pytest

import kvstore
from kvstore.testing.history import History
from tests.procs.harness import ELECTION_TIMEOUT, ProcCluster
from tests.procs.load import WriteLog, run_writers

pytestmark = pytest.mark.slow

logger = logging.getLogger(__name__)


async def _elect_other(procs: ProcCluster, old: int) -> tuple[int, float]:
    """Kill ``old`` (the leader); returns the next leader and how long it took to elect."""
    killed_at = time.monotonic()
    procs.kill(old)
    while True:
        leader = await procs.wait_for_leader()
        if leader != old:
            return leader, time.monotonic() - killed_at


async def _restart_and_catch_up(procs: ProcCluster, member: int, leader: int) -> None:
    """Restart ``member`` and wait until it has what the leader had then."""
    procs.restart(member)
    status = await procs.status(leader)
    if status is None:
        raise AssertionError(f"leader {leader} does not answer")
    await procs.wait_applied(status.revision, [member])


async def test_kill_leader_under_load_loses_no_acknowledged_write(procs: ProcCluster) -> None:
    leader = await procs.up()
    log = WriteLog()
    stop = asyncio.Event()
    writers = run_writers(procs.endpoints(), "/load", 4, log, stop)
    killed: list[int] = []
    try:
        await log.wait_acked(300, timeout=60)
        # Twice: the second time, the member killed first is back and may lead.
        for _ in range(2):
            if killed:
                await _restart_and_catch_up(procs, killed[-1], leader)
            old = leader
            leader, took = await _elect_other(procs, old)
            killed.append(old)
            logger.info("member %d elected %.2f s after member %d was killed", leader, took, old)
            # "A few election timeouts", with room for a loaded machine.
            assert took < 20 * ELECTION_TIMEOUT, f"election took {took:.2f} s"
            await log.wait_acked(len(log.acked) + 300, timeout=60)
    finally:
        stop.set()
        await asyncio.gather(*writers)

    procs.restart(killed[-1])
    async with kvstore.connect(procs.endpoints(), timeout=10) as kv:
        final = (await kv.put("/load/end", b"end")).header_revision
    await procs.wait_applied(final, procs.ids)

    hashes = set()
    for member in procs.ids:
        async with procs.pinned(member) as c:
            stored = await c.range("/load/", prefix=True, serializable=True)
            hashes.add(await c.hash_kv(final))
        have = {kv_.key.decode(): kv_ for kv_ in stored.kvs}
        for key, (value, revision) in log.acked.items():
            got = have.get(key)
            assert got is not None, f"member {member} lost acknowledged {key}"
            assert (got.value.decode(), got.mod_revision) == (value, revision), key
        phantom = set(have) - set(log.acked) - log.unknown - {"/load/end"}
        assert not phantom, f"member {member} holds keys never written: {sorted(phantom)[:5]}"
    assert len(hashes) == 1, f"members disagree on the key space at {final}: {hashes}"
    assert len(log.acked) >= 900


async def _client(procs: ProcCluster, history: History, cid: int, keys: list[str],
                  stop: asyncio.Event) -> None:
    rng = random.Random(cid)
    n = 0
    async with kvstore.connect(procs.endpoints(), timeout=5) as kv:
        while not stop.is_set():
            key = rng.choice(keys)
            if rng.random() < 0.5:
                n += 1
                await history.put(cid, kv, key, f"{cid}-{n}")
            else:
                await history.get(cid, kv, key)


async def test_history_across_leader_kills_is_linearizable(procs: ProcCluster) -> None:
    leader = await procs.up()
    history = History()
    stop = asyncio.Event()
    keys = ["x", "y", "z"]
    clients = [asyncio.create_task(_client(procs, history, c, keys, stop)) for c in range(6)]

    async def completed(count: int) -> None:
        while history.stats().completed < count:
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(completed(300), 60)
        killed = 0
        for _ in range(2):
            if killed:
                await _restart_and_catch_up(procs, killed, leader)
            killed = leader
            leader, _ = await _elect_other(procs, killed)
            await asyncio.wait_for(completed(history.stats().completed + 300), 60)
    finally:
        stop.set()
        await asyncio.gather(*clients)
    stats = history.stats()
    logger.info("history: %s", stats)
    result = history.check(timeout=90)
    assert result.ok, result.explanation or f"the check gave up: {result.outcome}"
    assert stats.completed >= 900
