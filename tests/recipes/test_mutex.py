"""Mutex: mutual exclusion, FIFO order, no herd, and locks that die with their holder."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import pytest

from kvstore.clock import FakeClock
from kvstore.errors import InvalidRequest
from kvstore.mvcc.request import op_put
from kvstore.node import Node
from kvstore.recipes import KV, Locked, Mutex, Session, SessionExpired
from tests.recipes.support import ManualSleep, RecordingKV, wait_for_count, within

PREFIX = "/locks/counter"
LINE = b"/locks/counter/"


async def _sessions(stack: AsyncExitStack, kv: KV, n: int, ttl: int = 60) -> list[Session]:
    return [await stack.enter_async_context(Session(kv, ttl=ttl)) for _ in range(n)]


async def _increment(kv: Node) -> None:
    """Read-modify-write of a counter: loses updates when two run at once."""
    current = await kv.get("/counter")
    value = int(current.value) if current else 0
    await asyncio.sleep(0)
    await kv.put("/counter", str(value + 1))


async def test_unlocked_increments_lose_updates(kv: Node) -> None:
    # The control: the same workload without the lock is not safe.
    await asyncio.gather(*(_increment(kv) for _ in range(20)))
    current = await kv.get("/counter")
    assert current is not None and int(current.value) < 20


async def test_many_tasks_never_hold_the_lock_at_once_and_lose_no_update(kv: Node) -> None:
    inside = False
    entries = 0

    async def worker(session: Session) -> None:
        nonlocal inside, entries
        mutex = Mutex(session, PREFIX)
        for _ in range(5):
            async with mutex:
                assert not inside, "two holders at once"
                inside = True
                entries += 1
                await _increment(kv)
                inside = False

    async with AsyncExitStack() as stack:
        sessions = await _sessions(stack, kv, 20)
        await within(asyncio.gather(*(worker(s) for s in sessions)), 60)
    current = await kv.get("/counter")
    assert entries == 100
    assert current is not None and int(current.value) == 100
    assert (await kv.range(LINE, prefix=True, count_only=True)).count == 0


async def test_waiters_are_served_in_the_order_they_queued(kv: Node) -> None:
    order: list[int] = []
    async with AsyncExitStack() as stack:
        holder, *waiters = await _sessions(stack, kv, 6)
        first = Mutex(holder, PREFIX)
        await first.lock()
        tasks = []
        for i, session in enumerate(waiters):

            async def wait_then_record(i: int = i, session: Session = session) -> None:
                async with Mutex(session, PREFIX):
                    order.append(i)

            tasks.append(asyncio.ensure_future(wait_then_record()))
            await within(wait_for_count(kv, LINE, i + 2))  # queued before the next one starts
        assert order == []
        await first.unlock()
        await within(asyncio.gather(*tasks))
    assert order == [0, 1, 2, 3, 4]


async def test_each_waiter_watches_only_the_key_just_ahead(kv: Node) -> None:
    async with AsyncExitStack() as stack:
        recorders = [RecordingKV(kv) for _ in range(4)]
        sessions = [
            await stack.enter_async_context(Session(r, ttl=60)) for r in recorders
        ]
        mutexes = [Mutex(s, PREFIX) for s in sessions]
        await mutexes[0].lock()
        tasks = []
        for i, m in enumerate(mutexes[1:], start=1):
            tasks.append(asyncio.ensure_future(m.lock()))
            await within(wait_for_count(kv, LINE, i + 1))
        keys = [LINE + f"{s.lease_id:x}".encode() for s in sessions]
        for i in range(1, 4):
            assert recorders[i].watches == [(keys[i - 1], None, False)]
        # The holder leaves: only the next waiter's watch fires, and it takes the lock.
        await mutexes[0].unlock()
        await within(tasks[0])
        assert not tasks[1].done() and not tasks[2].done()
        assert recorders[2].watches == [(keys[1], None, False)]
        assert recorders[3].watches == [(keys[2], None, False)]
        for i in range(1, 3):
            await mutexes[i].unlock()
            await within(tasks[i])
        await mutexes[3].unlock()


async def test_try_lock_fails_at_once_when_held_and_leaves_no_key(kv: Node) -> None:
    async with Session(kv, ttl=60) as a, Session(kv, ttl=60) as b:
        ma, mb = Mutex(a, PREFIX), Mutex(b, PREFIX)
        await ma.try_lock()
        assert ma.is_locked()
        with pytest.raises(Locked) as info:
            await mb.try_lock()
        assert info.value.owner == ma.key
        assert info.value.owner_revision == ma.revision
        assert not mb.is_locked()
        assert [k.key for k in (await kv.range(LINE, prefix=True)).kvs] == [ma.key]
        await ma.unlock()
        await mb.try_lock()
        owner = await mb.owner()
        assert owner is not None and owner.key == mb.key
        await mb.unlock()
        assert await mb.owner() is None


async def test_each_acquisition_has_a_larger_fencing_revision(kv: Node) -> None:
    async with Session(kv, ttl=60) as session:
        mutex = Mutex(session, PREFIX)
        revisions = []
        for _ in range(3):
            async with mutex:
                revisions.append(mutex.revision)
        assert revisions == sorted(set(revisions))


async def test_misuse_is_refused(kv: Node) -> None:
    async with Session(kv, ttl=60) as session:
        mutex = Mutex(session, PREFIX)
        with pytest.raises(InvalidRequest):
            await mutex.unlock()
        with pytest.raises(InvalidRequest):
            mutex.owner_compare()
        await mutex.lock()
        with pytest.raises(InvalidRequest):
            await mutex.lock()
        with pytest.raises(InvalidRequest):
            await mutex.try_lock()
        await mutex.unlock()


async def test_a_revoked_holder_releases_the_lock(kv: Node) -> None:
    async with Session(kv, ttl=60) as a, Session(kv, ttl=60) as b:
        holder, waiter = Mutex(a, PREFIX), Mutex(b, PREFIX)
        await holder.lock()
        waiting = asyncio.ensure_future(waiter.lock())
        await within(wait_for_count(kv, LINE, 2))
        assert not waiting.done()
        await kv.lease_revoke(a.lease_id)  # the holder "dies"
        await within(waiting)
        assert waiter.is_locked()
        # The old holder's guarded writes now fail: its key is gone.
        res = await kv.txn([holder.owner_compare()], [op_put("/guarded", "stale")], [])
        assert not res.succeeded
        res = await kv.txn([waiter.owner_compare()], [op_put("/guarded", "fresh")], [])
        assert res.succeeded
        await waiter.unlock()


async def test_a_holder_whose_lease_expires_releases_the_lock(clocked: Node, clock: FakeClock) -> None:
    holder_sleep = ManualSleep(clock)  # never woken: the holder hangs and renews nothing
    a = await Session(clocked, ttl=5, clock=clock, sleep=holder_sleep).open()
    async with Session(clocked, ttl=60, clock=clock, sleep=ManualSleep(clock)) as b:
        holder, waiter = Mutex(a, PREFIX), Mutex(b, PREFIX)
        await holder.lock()
        waiting = asyncio.ensure_future(waiter.lock())
        await within(wait_for_count(clocked, LINE, 2))
        clock.advance(4)
        assert not waiting.done()
        clock.advance(2)  # past the holder's TTL: the leader revokes its lease
        await within(waiting)
        assert waiter.is_locked()
        assert (await waiter.owner()).key == waiter.key  # type: ignore[union-attr]
        # The hung holder learns it at its next renewal.
        await holder_sleep.wake()
        await within(a.wait_done())
        await waiter.unlock()
    await a.close()


async def test_a_waiter_whose_session_ends_gives_up_and_leaves_the_line(kv: Node) -> None:
    async with Session(kv, ttl=60) as a, Session(kv, ttl=60) as c:
        b = await Session(kv, ttl=60).open()
        holder, quitter, last = Mutex(a, PREFIX), Mutex(b, PREFIX), Mutex(c, PREFIX)
        await holder.lock()
        quitting = asyncio.ensure_future(quitter.lock())
        await within(wait_for_count(kv, LINE, 2))
        lasting = asyncio.ensure_future(last.lock())
        await within(wait_for_count(kv, LINE, 3))
        await b.close()
        with pytest.raises(SessionExpired):
            await within(quitting)
        await within(wait_for_count(kv, LINE, 2))
        assert not lasting.done()
        await holder.unlock()
        await within(lasting)
        await last.unlock()
        with pytest.raises(SessionExpired):
            await quitter.lock()


async def test_a_waiter_whose_key_vanishes_does_not_take_the_lock(kv: Node) -> None:
    async with Session(kv, ttl=60) as a, Session(kv, ttl=60) as b:
        holder, waiter = Mutex(a, PREFIX), Mutex(b, PREFIX)
        await holder.lock()
        waiting = asyncio.ensure_future(waiter.lock())
        await within(wait_for_count(kv, LINE, 2))
        await kv.lease_revoke(b.lease_id)  # the waiter's session has not noticed yet
        await holder.unlock()
        with pytest.raises(SessionExpired):
            await within(waiting)
        assert not waiter.is_locked()


async def test_a_cancelled_waiter_leaves_the_line_and_the_next_one_moves_up(kv: Node) -> None:
    async with AsyncExitStack() as stack:
        a, b, c = await _sessions(stack, kv, 3)
        holder, cancelled, patient = Mutex(a, PREFIX), Mutex(b, PREFIX), Mutex(c, PREFIX)
        await holder.lock()
        t1 = asyncio.ensure_future(cancelled.lock())
        await within(wait_for_count(kv, LINE, 2))
        t2 = asyncio.ensure_future(patient.lock())
        await within(wait_for_count(kv, LINE, 3))
        t1.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t1
        await within(wait_for_count(kv, LINE, 2))
        assert not t2.done()  # woken by its predecessor's exit, it now waits for the holder
        await holder.unlock()
        await within(t2)
        assert patient.is_locked()
        await patient.unlock()


async def test_locking_with_a_lease_the_session_has_not_yet_lost_is_refused(kv: Node) -> None:
    async with Session(kv, ttl=60) as session:
        await kv.lease_revoke(session.lease_id)  # gone, but no renewal has told the session
        assert not session.done()
        with pytest.raises(SessionExpired):
            await Mutex(session, PREFIX).lock()
        assert (await kv.range(LINE, prefix=True, count_only=True)).count == 0
