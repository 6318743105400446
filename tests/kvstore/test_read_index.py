"""The read queue of a member: batching, answers, release on apply, leader changes, failure."""

from __future__ import annotations

import asyncio

import pytest

from kvstore.errors import Overloaded, Unavailable
from kvstore.read_index import ReadIndexQueue


async def test_reads_of_one_turn_share_a_batch_released_once_applied() -> None:
    q = ReadIndexQueue(boot=1 << 40, max_pending=100)
    a, b = q.add(), q.add()
    batch = q.take()
    assert batch is not None and batch.futures == [a, b] and q.take() is None
    q.sent(batch)
    c = q.add()  # a later read starts a new batch with its own context
    second = q.take()
    assert second is not None and second.ctx != batch.ctx
    q.sent(second)
    q.answered(batch.ctx, 7)
    q.answered(b"unknown", 3)  # an answer for nothing is ignored
    q.release(6)
    assert not a.done()
    q.release(7)
    assert a.done() and b.done() and not c.done()
    q.answered(second.ctx, 7)
    q.release(7)
    assert c.done() and c.result() is None


async def test_batches_sent_to_a_leader_that_left_are_sent_again_together() -> None:
    q = ReadIndexQueue(boot=0, max_pending=100)
    a = q.add()
    first = q.take()
    assert first is not None
    q.sent(first)
    b = q.add()
    q.resend()
    again = q.take()
    assert again is not None and set(again.futures) == {a, b}
    q.sent(again)
    q.answered(again.ctx, 1)
    q.release(1)
    assert a.done() and b.done()


async def test_too_many_reads_in_flight_is_overloaded() -> None:
    q = ReadIndexQueue(boot=0, max_pending=2)
    q.add(), q.add()
    batch = q.take()
    assert batch is not None
    q.sent(batch)
    with pytest.raises(Overloaded):
        q.add()


async def test_failing_reaches_every_read_wherever_it_waits() -> None:
    q = ReadIndexQueue(boot=0, max_pending=100)
    sent = q.add()
    batch = q.take()
    assert batch is not None
    q.sent(batch)
    known = q.add()
    second = q.take()
    assert second is not None
    q.sent(second)
    q.answered(second.ctx, 50)
    collecting = q.add()
    q.fail(Unavailable("member is stopping"))
    for fut in (sent, known, collecting):
        with pytest.raises(Unavailable):
            await asyncio.wait_for(fut, 1)
    assert q.take() is None
