"""Property: every watcher sees every matching event exactly once, in order, however slowly it reads.

Random writes, watchers (any range, start revision, filters, prev_kv),
consumers that poll rarely and in small batches through tiny buffers, and
compactions. The expected events of each watcher come from an independent
record of every write; a watcher cancelled by compaction must have received a
prefix of them, every other one all of them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from kvstore.clock import FakeClock
from kvstore.errors import Compacted
from kvstore.mvcc import ALL_KEYS, Event, EventType, KeyValue, KVStateMachine, WatchFilter, op_delete, op_put, prefix_end
from kvstore.mvcc.keys import in_range

KEYS = [b"a", b"ab", b"b", b"c/1", b"c/2", b"d"]


@dataclass
class Spec:
    start: bytes
    end: bytes | None
    from_rev: int
    filters: tuple[WatchFilter, ...]
    prev_kv: bool
    responses: list[tuple[int, tuple[Event, ...]]] = field(default_factory=list)
    canceled_at: int = 0


class Recorder:
    """An independent record of every write: (revision, [(kv, prev live kv)])."""

    def __init__(self) -> None:
        self.live: dict[bytes, KeyValue] = {}
        self.writes: list[tuple[int, list[tuple[KeyValue, KeyValue | None]]]] = []

    def put(self, rev: int, key: bytes, value: bytes, out: list[tuple[KeyValue, KeyValue | None]]) -> None:
        prev = self.live.get(key)
        if prev is None:
            kv = KeyValue(key, value, rev, rev, 1, 0)
        else:
            kv = KeyValue(key, value, prev.create_revision, rev, prev.version + 1, 0)
        self.live[key] = kv
        out.append((kv, prev))

    def delete(self, rev: int, start: bytes, end: bytes | None, out: list[tuple[KeyValue, KeyValue | None]]) -> None:
        for key in sorted(k for k in self.live if in_range(k, start, end)):
            out.append((KeyValue(key, b"", 0, rev, 0, 0), self.live.pop(key)))

    def expected(self, spec: Spec) -> list[Event]:
        found = []
        for rev, writes in self.writes:
            if rev < spec.from_rev:
                continue
            for kv, prev in writes:
                if not in_range(kv.key, spec.start, spec.end):
                    continue
                kind = EventType.PUT if kv.version else EventType.DELETE
                if WatchFilter.NOPUT in spec.filters and kind == EventType.PUT:
                    continue
                if WatchFilter.NODELETE in spec.filters and kind == EventType.DELETE:
                    continue
                found.append(Event(kind, kv, prev if spec.prev_kv else None))
        return found


ranges = st.sampled_from(
    [(k, None) for k in KEYS] + [(b"a", b"c/2"), (b"c/", prefix_end(b"c/")), (b"", ALL_KEYS), (b"b", ALL_KEYS)]
)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), buffer_events=st.integers(1, 4))
def test_every_watcher_sees_every_event_once_in_order(data: st.DataObject, buffer_events: int) -> None:
    machine = KVStateMachine(FakeClock(), watch_buffer_events=buffer_events)
    store, hub = machine.store, machine.hub
    rec = Recorder()
    specs: dict[int, Spec] = {}
    compactions: list[int] = []

    def poll(wid: int, max_events: int) -> bool:
        spec = specs[wid]
        if spec.canceled_at:
            return False
        resp = hub.poll(wid, max_events)
        if resp is None:
            return False
        if resp.canceled:
            assert resp.compact_revision in compactions and not resp.events
            spec.canceled_at = resp.compact_revision
            return False
        spec.responses.append((resp.header_revision, resp.events))
        return True

    for _ in range(data.draw(st.integers(1, 60))):
        step = data.draw(st.sampled_from(["put", "put", "delete", "txn", "watch", "poll", "poll", "compact"]))
        before = store.revision
        writes: list[tuple[KeyValue, KeyValue | None]] = []
        if step == "put":
            key, value = data.draw(st.sampled_from(KEYS)), data.draw(st.binary(max_size=2))
            store.put(key, value)
            rec.put(before + 1, key, value, writes)
        elif step == "delete":
            start, end = data.draw(ranges)
            store.delete_range(start, end)
            rec.delete(before + 1, start, end, writes)
        elif step == "txn":
            keys = data.draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=4))
            doomed = data.draw(st.sampled_from([k for k in KEYS if k not in keys] or [b"zz"]))
            store.txn([], [op_put(k, b"t") for k in keys] + [op_delete(doomed)])
            for k in keys:
                rec.put(before + 1, k, b"t", writes)
            rec.delete(before + 1, doomed, None, writes)
        elif step == "watch":
            start, end = data.draw(ranges)
            from_rev = data.draw(st.integers(0, before + 2))
            filters = tuple(data.draw(st.sets(st.sampled_from(list(WatchFilter)))))
            prev_kv = data.draw(st.booleans())
            try:
                wid = hub.watch(start, end, start_revision=from_rev, filters=filters, prev_kv=prev_kv)
            except Compacted:
                assert 0 < from_rev <= store.compact_revision
            else:
                specs[wid] = Spec(start, end, from_rev or before + 1, filters, prev_kv)
        elif step == "poll" and specs:
            wid = data.draw(st.sampled_from(sorted(specs)))
            poll(wid, data.draw(st.integers(1, 3)))
        elif step == "compact" and store.revision > store.compact_revision:
            revision = data.draw(st.integers(store.compact_revision + 1, store.revision))
            store.compact(revision)
            compactions.append(revision)
        if writes:
            assert store.revision == before + 1
            rec.writes.append((before + 1, writes))
        else:
            assert store.revision == before

    for wid, spec in specs.items():
        while poll(wid, 1000):
            pass
        got = [e for _, events in spec.responses for e in events]
        expected = rec.expected(spec)
        if spec.canceled_at:
            assert got == expected[: len(got)]
        else:
            assert got == expected
        # whole revisions per response, and headers that only move forward
        per_rev = Counter(e.kv.mod_revision for e in expected)
        headers = []
        for header, events in spec.responses:
            revs = Counter(e.kv.mod_revision for e in events)
            assert all(per_rev[r] == n for r, n in revs.items())
            assert all(header >= r for r in revs)
            headers.append(header)
        assert headers == sorted(headers)
        if not spec.canceled_at:
            hub.request_progress(wid)
            progress = hub.poll(wid)
            assert progress is not None and progress.events == () and progress.header_revision == store.revision
