"""Session: the lease, its renewals, and knowing when it is gone."""

from __future__ import annotations

import asyncio

import pytest

from kvstore.clock import FakeClock
from kvstore.errors import InvalidRequest, LeaseNotFound
from kvstore.node import Node
from kvstore.recipes import Session, SessionExpired
from tests.recipes.support import FlakyKV, ManualSleep, within


async def test_open_grants_a_lease_and_close_revokes_it_with_its_keys(kv: Node) -> None:
    async with Session(kv, ttl=30) as session:
        assert session.ttl == 30
        assert session.lease_id in await kv.lease_list()
        await kv.put("/owned", "x", lease=session.lease_id)
        assert not session.done()
    assert session.done() and session.reason == "closed"
    assert session.lease_id not in await kv.lease_list()
    assert await kv.get("/owned") is None


async def test_a_short_ttl_is_raised_to_the_store_minimum(kv: Node) -> None:
    async with Session(kv, ttl=1) as session:
        status = await kv.lease_time_to_live(session.lease_id)
        assert session.ttl == status.granted_ttl >= 1


async def test_a_session_is_opened_once_and_needs_a_positive_ttl(kv: Node) -> None:
    with pytest.raises(InvalidRequest):
        Session(kv, ttl=0)
    session = Session(kv, ttl=30)
    with pytest.raises(InvalidRequest):
        session.lease_id
    async with session:
        with pytest.raises(InvalidRequest):
            await session.open()


async def test_close_after_the_lease_is_gone_is_quiet(kv: Node) -> None:
    session = await Session(kv, ttl=30).open()
    await kv.lease_revoke(session.lease_id)
    await session.close()
    await session.close()
    assert session.done()


async def test_renewals_every_third_of_the_ttl_keep_the_lease_past_its_ttl(
    clocked: Node, clock: FakeClock
) -> None:
    sleep = ManualSleep(clock)
    async with Session(clocked, ttl=6, clock=clock, sleep=sleep) as session:
        for _ in range(9):  # 9 x 2 s = three TTLs of fake time
            assert await sleep.wake() == pytest.approx(2.0)
        await sleep.asleep()  # the last renewal has answered
        status = await clocked.lease_time_to_live(session.lease_id)
        assert status.ttl > 4
        assert not session.done()


async def test_without_renewals_the_store_expires_the_lease(clocked: Node, clock: FakeClock) -> None:
    session = await Session(clocked, ttl=6, clock=clock, sleep=ManualSleep(clock)).open()
    await session.orphan()
    assert session.done() and session.reason == "orphaned"
    await clocked.put("/orphaned", "x", lease=session.lease_id)
    clock.advance(7)
    await within(_until_gone(clocked, b"/orphaned"))
    assert session.lease_id not in await clocked.lease_list()


async def test_a_revoked_lease_ends_the_session_at_the_next_renewal(
    clocked: Node, clock: FakeClock
) -> None:
    sleep = ManualSleep(clock)
    session = await Session(clocked, ttl=6, clock=clock, sleep=sleep).open()
    await clocked.lease_revoke(session.lease_id)
    assert not session.done()
    await sleep.wake()
    await within(session.wait_done())
    assert "expired or revoked" in session.reason
    with pytest.raises(SessionExpired):
        session.check()
    await session.close()


async def test_failed_renewals_end_the_session_once_a_whole_ttl_has_passed(
    clocked: Node, clock: FakeClock
) -> None:
    flaky = FlakyKV(clocked)
    sleep = ManualSleep(clock)
    start = clock.now()
    session = await Session(flaky, ttl=6, clock=clock, sleep=sleep, retry_seconds=1.0).open()
    flaky.failing = True
    while True:
        assert clock.now() - start < 6, "the session outlived its TTL"
        await sleep.wake()
        if not await sleep.asleep_unless(session.wait_done()):
            break
    assert clock.now() - start >= 6
    assert flaky.keepalives >= 4  # retried after the first failure, not given up at once
    assert "TTL" in session.reason
    await session.close()


async def test_renewals_that_fail_for_less_than_a_ttl_recover(clocked: Node, clock: FakeClock) -> None:
    flaky = FlakyKV(clocked)
    sleep = ManualSleep(clock)
    async with Session(flaky, ttl=6, clock=clock, sleep=sleep) as session:
        flaky.failing = True
        assert await sleep.wake() == pytest.approx(2.0)  # the first renewal fails
        await sleep.asleep()
        flaky.failing = False
        assert await sleep.wake() == pytest.approx(1.0)  # retried sooner, and it works
        for _ in range(6):
            await sleep.wake()
        await sleep.asleep()
        assert not session.done()
        assert (await clocked.lease_time_to_live(session.lease_id)).ttl > 4


async def test_until_done_returns_the_result_while_the_session_lives(kv: Node) -> None:
    async with Session(kv, ttl=30) as session:

        async def answer() -> int:
            await asyncio.sleep(0)
            return 42

        assert await session.until_done(answer()) == 42


async def test_until_done_cancels_the_wait_when_the_session_ends(kv: Node) -> None:
    session = await Session(kv, ttl=30).open()
    cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    waiting = asyncio.ensure_future(session.until_done(forever()))
    await asyncio.sleep(0)
    await session.close()
    with pytest.raises(SessionExpired):
        await within(waiting)
    assert cancelled.is_set()
    with pytest.raises(SessionExpired):
        await session.until_done(forever())


async def test_cancelling_until_done_cancels_the_inner_wait(kv: Node) -> None:
    async with Session(kv, ttl=30) as session:
        cancelled = asyncio.Event()

        async def forever() -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise

        waiting = asyncio.ensure_future(session.until_done(forever()))
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert cancelled.is_set()
        assert not session.done()


async def test_the_lease_is_gone_after_close_even_for_the_store(kv: Node) -> None:
    session = await Session(kv, ttl=30).open()
    await session.close()
    with pytest.raises(LeaseNotFound):
        await kv.lease_keepalive(session.lease_id)


async def _until_gone(kv: Node, key: bytes) -> None:
    while await kv.get(key) is not None:
        stream = await kv.watch(key)
        try:
            async for _ in stream:
                break
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
