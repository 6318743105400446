"""Automatic history compaction: the plan with time passed in, the runner, and a member."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

import kvstore
from kvstore.clock import FakeClock
from kvstore.compactor import CompactionPlan, Compactor, parse_retention
from kvstore.errors import Compacted, NotLeader
from kvstore.node import NodeOptions
from runtime import host


@pytest.mark.parametrize(("mode", "text", "seconds"), [
    ("periodic", "5m", 300.0), ("periodic", "1h", 3600.0), ("periodic", "30s", 30.0),
    ("periodic", "250ms", 0.25), ("periodic", "2", 7200.0), ("periodic", "0", 0.0),
    ("periodic", " 1.5m ", 90.0), ("revision", "1000", 1000.0), ("revision", "0", 0.0),
])
def test_retention_is_read_like_etcd(mode: str, text: str, seconds: float) -> None:
    assert parse_retention(mode, text) == seconds


@pytest.mark.parametrize(("mode", "text"), [
    ("periodic", "5 minutes"), ("periodic", "-1m"), ("periodic", ""), ("revision", "1.5"),
    ("revision", "-3"), ("revision", "5m"), ("hourly", "1h"),
])
def test_bad_retention_is_refused(mode: str, text: str) -> None:
    with pytest.raises(ValueError):
        parse_retention(mode, text)


def test_periodic_keeps_at_least_the_retention_window() -> None:
    plan = CompactionPlan("periodic", 60.0)
    assert plan.interval == 6.0
    history: list[tuple[float, int]] = []
    compacted = 0
    done: list[tuple[float, int]] = []
    for step in range(100):
        now, revision = step * plan.interval, 1 + step * 7
        history.append((now, revision))
        target = plan.observe(now, revision, compacted)
        if target is not None:
            assert target > compacted
            # Every revision written in the last 60 s is still there.
            assert all(rev >= target for t, rev in history if now - t < 60.0)
            # And nothing older than needed is kept: the target was current 60 s ago.
            assert (now - 60.0, target) in history
            compacted = target
            done.append((now, target))
    assert done[0] == (60.0, 1)
    assert len(done) == 90  # one compaction per sample once the window is full


def test_periodic_never_proposes_at_or_below_the_compact_revision() -> None:
    plan = CompactionPlan("periodic", 10.0)
    for step in range(11):
        target = plan.observe(step * 1.0, 5, compacted=5)
        assert target is None


def test_a_long_retention_samples_hourly() -> None:
    assert CompactionPlan("periodic", 48 * 3600.0).interval == 3600.0


def test_revision_mode_keeps_the_last_n_revisions() -> None:
    plan = CompactionPlan("revision", 100)
    assert plan.interval == 300.0
    assert plan.observe(0.0, 50, 0) is None
    assert plan.observe(300.0, 150, 0) == 50
    assert plan.observe(600.0, 150, 50) is None
    assert plan.observe(900.0, 1000, 50) == 900


def test_plan_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        CompactionPlan("periodic", 0.0)
    with pytest.raises(ValueError):
        CompactionPlan("weekly", 10.0)  # type: ignore[arg-type]


def test_node_options_refuse_an_unknown_mode_or_negative_retention() -> None:
    with pytest.raises(ValueError, match="auto-compaction mode"):
        NodeOptions(auto_compaction_mode="weekly")
    with pytest.raises(ValueError, match="negative"):
        NodeOptions(auto_compaction_retention=-1.0)


class _Member:
    def __init__(self) -> None:
        self.leader = True
        self.revision = 1
        self.compact_revision = 0
        self.compacted: list[int] = []
        self.fail: Exception | None = None

    async def compact(self, revision: int) -> None:
        if self.fail is not None:
            raise self.fail
        self.compacted.append(revision)
        self.compact_revision = revision


def _compactor(member: _Member, clock: FakeClock, retention: float = 10.0) -> Compactor:
    return Compactor(CompactionPlan("periodic", retention), clock=clock,
                     is_leader=lambda: member.leader,
                     revisions=lambda: (member.revision, member.compact_revision),
                     compact=member.compact)


async def test_only_the_leader_compacts_and_a_new_term_starts_over() -> None:
    member, clock = _Member(), FakeClock()
    compactor = _compactor(member, clock)
    for _ in range(5):
        member.revision += 10
        assert await compactor.step() is None
        clock.advance(1.0)
    member.leader = False
    for _ in range(20):  # a follower never compacts, and forgets its samples
        member.revision += 10
        assert await compactor.step() is None
        clock.advance(1.0)
    member.leader = True
    first_led = member.revision
    results = []
    for _ in range(11):
        results.append(await compactor.step())
        member.revision += 10
        clock.advance(1.0)
    assert results[:10] == [None] * 10
    assert results[10] == first_led and member.compacted == [first_led]


async def test_failures_are_logged_and_the_next_round_tries_again(
        caplog: pytest.LogCaptureFixture) -> None:
    member, clock = _Member(), FakeClock()
    compactor = _compactor(member, clock, retention=1.0)
    member.fail = NotLeader(2)
    with caplog.at_level(logging.WARNING, logger="kvstore.compactor"):
        for _ in range(11):
            member.revision += 1
            assert await compactor.step() is None
            clock.advance(0.125)
    assert "auto-compaction to revision" in caplog.text
    member.fail = Compacted(2, 5)  # someone else went further: not an error
    member.revision += 1
    caplog.clear()
    assert await compactor.step() is None and not caplog.records
    member.fail = None
    member.revision += 1
    clock.advance(0.125)
    assert await compactor.step() is not None and member.compacted


async def test_an_embedded_member_drops_history_older_than_its_retention(tmp_path: Any) -> None:
    retention = 0.4
    options = NodeOptions(auto_compaction_retention=retention)
    async with kvstore.open(str(tmp_path / "data"), options=options) as kv:
        marks: list[tuple[float, int]] = []
        deadline = time.monotonic() + 10.0
        while (await kv.status()).compact_revision == 0:
            assert time.monotonic() < deadline, "no auto-compaction within 10 s"
            rev = (await kv.put("/k", str(len(marks)))).header_revision
            marks.append((time.monotonic(), rev))
            await asyncio.sleep(0.01)
        for _ in range(30):  # keep writing a little past the first compaction
            rev = (await kv.put("/k", "x")).header_revision
            marks.append((time.monotonic(), rev))
            await asyncio.sleep(0.01)
        now = time.monotonic()
        compacted = (await kv.status()).compact_revision
        assert compacted > 1
        # Everything written within the retention window can still be read ...
        recent = [rev for t, rev in marks if now - t < retention]
        assert recent and min(recent) >= compacted
        await kv.get("/k", revision=min(recent))
        # ... and what is older than the compact revision is gone.
        with pytest.raises(Compacted):
            await kv.get("/k", revision=compacted - 1)


async def test_an_embedded_store_keeps_everything_by_default(tmp_path: Any) -> None:
    async with kvstore.open(str(tmp_path / "data")) as kv:
        assert kv.options.auto_compaction_retention == 0
        for i in range(5):
            await kv.put("/k", str(i))
        await asyncio.sleep(0.05)
        assert (await kv.status()).compact_revision == 0
        assert (await kv.get("/k", revision=2)) is not None


def test_the_member_process_refuses_a_bad_retention(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        host.main(["--id", "1", "--auto-compaction-retention", "soon"])
    assert e.value.code == 2
    assert "--auto-compaction-retention" in capsys.readouterr().err
