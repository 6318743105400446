"""Recording client histories: outcomes, times, and the verdict of the checker."""

from __future__ import annotations

from kvstore.clock import FakeClock
from kvstore.errors import NotLeader, Timeout, TooLarge, Unavailable
from kvstore.mvcc.types import DeleteRangeResult, KeyValue, PutResult
from kvstore.testing.history import History
from kvstore.testing.models import Delete, Get, Put


class ScriptedKv:
    """An in-memory map; each call takes one second of ``clock``, or raises ``fail``."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.data: dict[str, bytes] = {}
        self.rev = 1
        self.fail: Exception | None = None
        self.stale: dict[str, bytes] = {}  # answered by get instead of the truth, if set

    def _step(self) -> None:
        self.clock.advance(1)
        if self.fail is not None:
            raise self.fail

    async def put(self, key: bytes | str, value: bytes | str) -> PutResult:
        self._step()
        k = key if isinstance(key, str) else key.decode()
        self.rev += 1
        self.data[k] = value.encode() if isinstance(value, str) else value
        return PutResult(self.rev)

    async def get(self, key: bytes | str) -> KeyValue | None:
        self._step()
        k = key if isinstance(key, str) else key.decode()
        value = self.stale.get(k, self.data.get(k))
        return None if value is None else KeyValue(k.encode(), value, 1, self.rev, 1, 0)

    async def delete(self, key: bytes | str) -> DeleteRangeResult:
        self._step()
        k = key if isinstance(key, str) else key.decode()
        existed = self.data.pop(k, None) is not None
        if existed:
            self.rev += 1
        return DeleteRangeResult(int(existed), self.rev)


async def test_completed_calls_are_recorded_with_times_and_outputs() -> None:
    clock = FakeClock(10.0)
    kv = ScriptedKv(clock)
    h = History(clock)
    assert (await h.put(1, kv, "a", "x")) is not None
    got = await h.get(2, kv, "a")
    assert got is not None and got.value == b"x"
    await h.get(2, kv, "b")
    deleted = await h.delete(1, kv, "a")
    assert deleted is not None and deleted.deleted == 1
    ops = h.operations
    assert [(op.client, op.call, op.ret) for op in ops] == [
        (1, 10.0, 11.0), (2, 11.0, 12.0), (2, 12.0, 13.0), (1, 13.0, 14.0)
    ]
    assert [(op.input, op.output) for op in ops] == [
        (Put("a", "x"), None), (Get("a"), "x"), (Get("b"), None), (Delete("a"), 1)
    ]
    assert h.stats().completed == 4
    assert h.check().ok


async def test_failed_writes_are_pending_refused_ones_and_failed_reads_dropped() -> None:
    clock = FakeClock()
    kv = ScriptedKv(clock)
    h = History(clock)
    kv.fail = Unavailable("connection lost after sending; outcome unknown")
    assert await h.put(1, kv, "a", "maybe") is None
    kv.fail = Timeout("timed out")
    assert await h.delete(1, kv, "a") is None
    kv.fail = ConnectionResetError()
    assert await h.put(1, kv, "a", "reset") is None
    kv.fail = TooLarge("value", 10, 5)
    assert await h.put(2, kv, "a", "too big") is None
    kv.fail = NotLeader(3)
    assert await h.delete(2, kv, "a") is None
    kv.fail = Timeout("read timed out")
    assert await h.get(3, kv, "a") is None
    ops = h.operations
    assert [(op.input, op.ret) for op in ops] == [
        (Put("a", "maybe"), None), (Delete("a"), None), (Put("a", "reset"), None)
    ]
    assert h.stats() == type(h.stats())(completed=0, unknown=3, refused=2, failed_reads=1)


async def test_a_pending_write_may_explain_a_later_read() -> None:
    clock = FakeClock()
    kv = ScriptedKv(clock)
    h = History(clock)
    kv.fail = Unavailable("outcome unknown")
    await h.put(1, kv, "a", "ghost")
    kv.fail = None
    kv.stale["a"] = b"ghost"  # it did take effect, after all
    await h.get(2, kv, "a")
    assert h.check().ok


async def test_a_stale_read_is_not_linearizable() -> None:
    clock = FakeClock()
    kv = ScriptedKv(clock)
    h = History(clock)
    await h.put(1, kv, "a", "old")
    clock.advance(1)  # calls that touch in time overlap: leave gaps between them
    await h.put(1, kv, "a", "new")
    kv.stale["a"] = b"old"
    clock.advance(1)
    await h.get(2, kv, "a")
    result = h.check()
    assert not result.ok and not result.unknown
    assert "key 'a'" in result.explanation
