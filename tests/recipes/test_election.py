"""Election: campaign in line, proclaim while leading, observe every change, resign."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from kvstore.errors import InvalidRequest
from kvstore.mvcc.types import KeyValue
from kvstore.node import Node
from kvstore.recipes import Election, NotElected, Session, SessionExpired
from tests.recipes.support import RecordingKV, wait_for_count, within

PREFIX = "/election/scheduler"
LINE = b"/election/scheduler/"


class Observer:
    """Collects what ``Election.observe`` yields, one value at a time."""

    def __init__(self, election: Election) -> None:
        self.seen: asyncio.Queue[KeyValue] = asyncio.Queue()
        self._stream: AsyncIterator[KeyValue] = election.observe()
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        async for kv in self._stream:
            self.seen.put_nowait(kv)

    async def next(self) -> KeyValue:
        kv: KeyValue = await within(self.seen.get())
        return kv

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._stream.aclose()  # type: ignore[attr-defined]


async def test_campaign_proclaim_observe_resign(kv: Node) -> None:
    async with Session(kv, ttl=60) as sa, Session(kv, ttl=60) as sb, Session(kv, ttl=60) as so:
        a, b = Election(sa, PREFIX), Election(sb, PREFIX)
        observer = Observer(Election(so, PREFIX))
        assert await a.leader() is None

        await a.campaign("a1")
        assert a.is_leader()
        assert (await observer.next()).value == b"a1"
        leader = await b.leader()
        assert leader is not None and leader.key == a.key and leader.value == b"a1"

        campaigning = asyncio.ensure_future(b.campaign("b1"))
        await within(wait_for_count(kv, LINE, 2))
        assert not campaigning.done()
        with pytest.raises(NotElected):
            await b.proclaim("b-too-early")

        await a.proclaim("a2")
        assert (await observer.next()).value == b"a2"
        await a.proclaim("a2")  # the same value again is not a change
        await a.resign()
        assert not a.is_leader()
        await within(campaigning)
        assert b.is_leader()
        seen = await observer.next()
        assert (seen.key, seen.value) == (b.key, b"b1")
        await b.proclaim("b2")
        assert (await observer.next()).value == b"b2"
        with pytest.raises(NotElected):
            await a.proclaim("a3")
        assert observer.seen.empty()
        await observer.close()
        await b.resign()
        await a.resign()  # not leading: nothing to do
        assert await a.leader() is None


async def test_observe_waits_for_a_first_candidate(kv: Node) -> None:
    recorder = RecordingKV(kv)
    async with Session(kv, ttl=60) as sa, Session(recorder, ttl=60) as so:
        observer = Observer(Election(so, PREFIX))
        await within(recorder.watched.wait())  # nobody stands: the observer watches the line
        assert recorder.watches == [(LINE, b"/election/scheduler0", False)]
        assert observer.seen.empty()
        a = Election(sa, PREFIX)
        await a.campaign("first")
        assert (await observer.next()).value == b"first"
        await observer.close()


async def test_the_next_candidate_leads_when_the_leader_dies(kv: Node) -> None:
    async with Session(kv, ttl=60) as sb, Session(kv, ttl=60) as so:
        sa = await Session(kv, ttl=60).open()
        a, b = Election(sa, PREFIX), Election(sb, PREFIX)
        observer = Observer(Election(so, PREFIX))
        await a.campaign("a")
        assert (await observer.next()).value == b"a"
        campaigning = asyncio.ensure_future(b.campaign("b"))
        await within(wait_for_count(kv, LINE, 2))
        await kv.lease_revoke(sa.lease_id)  # the leader's process is gone
        await within(campaigning)
        assert (await observer.next()).value == b"b"
        # The old leader finds out when it tries to act as one.
        with pytest.raises(NotElected):
            await a.proclaim("still me?")
        assert not a.is_leader()
        leader = await b.leader()
        assert leader is not None and leader.value == b"b"
        await observer.close()
        await sa.close()


async def test_a_cancelled_campaign_withdraws_its_candidate(kv: Node) -> None:
    async with Session(kv, ttl=60) as sa, Session(kv, ttl=60) as sb, Session(kv, ttl=60) as sc:
        a, b, c = Election(sa, PREFIX), Election(sb, PREFIX), Election(sc, PREFIX)
        await a.campaign("a")
        tb = asyncio.ensure_future(b.campaign("b"))
        await within(wait_for_count(kv, LINE, 2))
        tc = asyncio.ensure_future(c.campaign("c"))
        await within(wait_for_count(kv, LINE, 3))
        tb.cancel()
        with pytest.raises(asyncio.CancelledError):
            await tb
        await within(wait_for_count(kv, LINE, 2))
        await a.resign()
        await within(tc)
        assert c.is_leader()
        leader = await a.leader()
        assert leader is not None and leader.value == b"c"
        await c.resign()


async def test_a_candidate_whose_session_ends_stops_campaigning(kv: Node) -> None:
    async with Session(kv, ttl=60) as sa:
        sb = await Session(kv, ttl=60).open()
        a, b = Election(sa, PREFIX), Election(sb, PREFIX)
        await a.campaign("a")
        campaigning = asyncio.ensure_future(b.campaign("b"))
        await within(wait_for_count(kv, LINE, 2))
        await sb.close()
        with pytest.raises(SessionExpired):
            await within(campaigning)
        assert not b.is_leader()
        await a.resign()


async def test_campaigning_twice_is_refused(kv: Node) -> None:
    async with Session(kv, ttl=60) as sa:
        a = Election(sa, PREFIX)
        await a.campaign("a")
        with pytest.raises(InvalidRequest):
            await a.campaign("again")
        await a.resign()


async def test_a_second_election_object_of_the_same_session_updates_its_value(kv: Node) -> None:
    async with Session(kv, ttl=60) as sa:
        first, second = Election(sa, PREFIX), Election(sa, PREFIX)
        await first.campaign("one")
        await second.campaign("two")  # the same key: already in line, value updated
        assert second.revision == first.revision
        leader = await first.leader()
        assert leader is not None and leader.value == b"two"
        await second.resign()
        assert await first.leader() is None
