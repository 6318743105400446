"""The line under a prefix: joining, leaving, who is ahead, and waits that never miss a change."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

import kvstore.recipes
from kvstore.errors import Compacted
from kvstore.client import Client
from kvstore.mvcc.types import EventType
from kvstore.node import Node
from kvstore.recipes import KV, Mutex, Session, SessionExpired, turn
from tests.recipes.support import within

LINE = b"/line/"


async def test_join_creates_once_and_reports_who_is_first(kv: Node) -> None:
    a = await kv.lease_grant(60)
    b = await kv.lease_grant(60)
    first = await turn.join(kv, LINE, LINE + b"a", b"va", a.id)
    assert first.created and first.is_first and first.value == b"va"
    second = await turn.join(kv, LINE, LINE + b"b", b"vb", b.id)
    assert second.created and not second.is_first
    assert second.holder is not None and second.holder.key == LINE + b"a"
    again = await turn.join(kv, LINE, LINE + b"a", b"other", a.id)
    assert not again.created and again.revision == first.revision and again.value == b"va"
    assert await turn.is_still_mine(kv, LINE + b"a", first.revision)
    assert not await turn.leave(kv, LINE + b"a", first.revision + 100)  # not that key: kept
    assert await turn.leave(kv, LINE + b"a", first.revision)
    assert not await turn.is_still_mine(kv, LINE + b"a", first.revision)


async def test_join_with_a_gone_lease_is_a_session_error(kv: Node) -> None:
    lease = await kv.lease_grant(60)
    await kv.lease_revoke(lease.id)
    with pytest.raises(SessionExpired):
        await turn.join(kv, LINE, LINE + b"x", b"", lease.id)


async def test_last_created_before_finds_the_key_just_ahead(kv: Node) -> None:
    # Key order and creation order differ on purpose.
    revisions = {}
    for name in (b"c", b"a", b"b"):
        revisions[name] = (await kv.put(LINE + name, "")).header_revision
    ahead, _ = await turn.last_created_before(kv, LINE, revisions[b"b"])
    assert ahead is not None and ahead.key == LINE + b"a"
    ahead, _ = await turn.last_created_before(kv, LINE, revisions[b"c"])
    assert ahead is None
    head, _ = await turn.first_created(kv, LINE)
    assert head is not None and head.key == LINE + b"c"


async def test_wait_event_sees_a_change_made_before_the_watch_started(kv: Node) -> None:
    read = (await kv.put(LINE + b"k", "v")).header_revision
    await kv.delete(LINE + b"k")  # after the read, before the wait
    assert await within(turn.wait_event(kv, LINE + b"k", after_revision=read, kind=EventType.DELETE))


async def test_wait_event_from_a_compacted_revision_asks_to_look_again(kv: Node) -> None:
    first = (await kv.put(LINE + b"k", "1")).header_revision
    last = (await kv.put(LINE + b"k", "2")).header_revision
    await kv.compact(last)
    assert not await turn.wait_event(kv, LINE + b"k", after_revision=first - 1, kind=EventType.DELETE)


class CompactingKV:
    """Compacts the store past the start of the first watch it is asked for (a race made certain)."""

    def __init__(self, inner: Node) -> None:
        self.inner = inner
        self.refused = 0
        self.watches = 0
        self.rewatched = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def watch(self, key: Any, range_end: Any = None, **kwargs: Any) -> Any:
        self.watches += 1
        if self.watches == 1:
            await self.inner.compact((await self.inner.put("/noise", "x")).header_revision)
        else:
            self.rewatched.set()
        try:
            return await self.inner.watch(key, range_end, **kwargs)
        except Compacted:
            self.refused += 1
            raise


async def test_a_lock_waiter_whose_watch_start_was_compacted_reads_again(kv: Node) -> None:
    racing = CompactingKV(kv)
    async with Session(kv, ttl=60) as a, Session(racing, ttl=60) as b:
        holder, waiter = Mutex(a, "/line"), Mutex(b, "/line")
        await holder.lock()
        waiting = asyncio.ensure_future(waiter.lock())
        await within(racing.rewatched.wait())
        assert racing.refused == 1
        assert not waiting.done()
        await holder.unlock()
        await within(waiting)
        assert waiter.is_locked()
        await waiter.unlock()


def test_the_public_names_are_sorted_and_resolve() -> None:
    assert kvstore.recipes.__all__ == sorted(kvstore.recipes.__all__)
    for name in kvstore.recipes.__all__:
        assert getattr(kvstore.recipes, name) is not None


@pytest.mark.parametrize("store", [Node, Client])
def test_every_store_handle_offers_the_protocol(store: type) -> None:
    methods = [n for n, v in vars(KV).items() if inspect.iscoroutinefunction(v)]
    assert {"put", "range", "txn", "watch", "lease_keepalive"} <= set(methods)
    for name in methods:
        wanted = inspect.signature(getattr(KV, name)).parameters
        offered = inspect.signature(getattr(store, name)).parameters
        for param in wanted.values():
            assert param.name in offered, f"{store.__name__}.{name} lacks {param.name}"
            assert offered[param.name].kind == param.kind, f"{store.__name__}.{name}({param.name})"
