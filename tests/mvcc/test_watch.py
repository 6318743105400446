"""The watch hub: live and replayed events, slow watchers, compaction, filters, progress."""

from __future__ import annotations

import pytest

from kvstore.clock import FakeClock
from kvstore.errors import Compacted, InvalidRequest
from kvstore.mvcc import (
    ALL_KEYS,
    Event,
    EventType,
    KeyValue,
    KVStateMachine,
    KVStore,
    WatchFilter,
    WatchHub,
    WatchResponse,
    op_delete,
    op_put,
)

PUT, DELETE = EventType.PUT, EventType.DELETE


def drain(hub: WatchHub, watch_id: int, max_events: int = 1000) -> list[WatchResponse]:
    responses = []
    while (resp := hub.poll(watch_id, max_events)) is not None:
        responses.append(resp)
        if resp.canceled:
            break
    return responses


def events(responses: list[WatchResponse]) -> list[tuple[EventType, bytes, int]]:
    return [(e.type, e.kv.key, e.kv.mod_revision) for r in responses for e in r.events]


def small_store(buffer_events: int) -> KVStore:
    return KVStateMachine(FakeClock(), watch_buffer_events=buffer_events).store


def test_live_events_for_key_range_and_prefix(store: KVStore) -> None:
    hub = store.hub
    one = hub.watch("a")
    rng = hub.watch("a", "c")
    pre = hub.watch("b", prefix=True)
    everything = hub.watch("", ALL_KEYS)
    store.put("a", b"1")
    store.put("b/1", b"1")
    store.put("c", b"1")
    store.delete_range("a")
    assert events(drain(hub, one)) == [(PUT, b"a", 2), (DELETE, b"a", 5)]
    assert events(drain(hub, rng)) == [(PUT, b"a", 2), (PUT, b"b/1", 3), (DELETE, b"a", 5)]
    assert events(drain(hub, pre)) == [(PUT, b"b/1", 3)]
    assert len(events(drain(hub, everything))) == 4


def test_event_values(store: KVStore) -> None:
    wid = store.hub.watch("a", prev_kv=True)
    store.put("a", b"1")
    store.put("a", b"2")
    store.delete_range("a")
    [resp] = drain(store.hub, wid)
    assert resp.events == (
        Event(PUT, KeyValue(b"a", b"1", 2, 2, 1, 0), None),
        Event(PUT, KeyValue(b"a", b"2", 2, 3, 2, 0), KeyValue(b"a", b"1", 2, 2, 1, 0)),
        Event(DELETE, KeyValue(b"a", b"", 0, 4, 0, 0), KeyValue(b"a", b"2", 2, 3, 2, 0)),
    )
    assert resp.header_revision == 4 and not resp.canceled


def test_prev_kv_only_when_asked(store: KVStore) -> None:
    wid = store.hub.watch("a")
    store.put("a", b"1")
    store.put("a", b"2")
    assert all(e.prev_kv is None for r in drain(store.hub, wid) for e in r.events)


def test_history_replay_then_live(store: KVStore) -> None:
    store.put("a", b"1")  # 2
    store.put("b", b"1")  # 3
    store.put("a", b"2")  # 4
    wid = store.hub.watch("a", prev_kv=True, start_revision=3)
    assert not store.hub.is_synced(wid)
    store.put("a", b"3")  # 5, while still unsynced
    responses = drain(store.hub, wid)
    assert events(responses) == [(PUT, b"a", 4), (PUT, b"a", 5)]
    assert responses[0].events[0].prev_kv == KeyValue(b"a", b"1", 2, 2, 1, 0)
    assert store.hub.is_synced(wid)
    store.put("a", b"4")
    assert events(drain(store.hub, wid)) == [(PUT, b"a", 6)]


def test_future_start_revision_waits(store: KVStore) -> None:
    wid = store.hub.watch("a", start_revision=4)
    store.put("a", b"1")  # 2
    store.put("a", b"2")  # 3
    store.put("a", b"3")  # 4
    assert events(drain(store.hub, wid)) == [(PUT, b"a", 4)]


def test_filters(store: KVStore) -> None:
    no_put = store.hub.watch("a", filters=[WatchFilter.NOPUT])
    no_delete = store.hub.watch("a", filters=[WatchFilter.NODELETE])
    store.put("a", b"1")
    store.delete_range("a")
    assert events(drain(store.hub, no_put)) == [(DELETE, b"a", 3)]
    assert events(drain(store.hub, no_delete)) == [(PUT, b"a", 2)]
    replay = store.hub.watch("a", filters=[WatchFilter.NOPUT], start_revision=1)
    assert events(drain(store.hub, replay)) == [(DELETE, b"a", 3)]


def test_txn_and_lease_revoke_events_arrive_in_one_response(store: KVStore) -> None:
    wid = store.hub.watch("", ALL_KEYS)
    store.txn([], [op_put("b", "1"), op_put("a", "1"), op_delete("zz")])
    lease = store.lease_grant(60).id
    store.put("x", b"1", lease=lease)
    store.put("y", b"1", lease=lease)
    store.lease_revoke(lease)
    responses = drain(store.hub, wid, max_events=2)
    assert [events([r]) for r in responses] == [
        [(PUT, b"b", 2), (PUT, b"a", 2)],
        [(PUT, b"x", 3), (PUT, b"y", 4)],
        [(DELETE, b"x", 5), (DELETE, b"y", 5)],
    ]
    assert [r.header_revision for r in responses] == [2, 4, 5]


def test_a_revision_larger_than_max_events_is_not_split(store: KVStore) -> None:
    wid = store.hub.watch("", ALL_KEYS)
    store.txn([], [op_put(f"k{i}", "v") for i in range(5)])
    [resp] = drain(store.hub, wid, max_events=2)
    assert len(resp.events) == 5


def test_slow_watcher_falls_behind_and_catches_up_exactly_once() -> None:
    store = small_store(buffer_events=3)
    hub = store.hub
    slow = hub.watch("k", prefix=True)
    fast = hub.watch("k", prefix=True)
    seen_fast: list[tuple[EventType, bytes, int]] = []
    for i in range(20):
        store.put(f"k{i % 4}", str(i).encode())
        seen_fast += events(drain(hub, fast))  # fast keeps up: never unsynced
        assert hub.is_synced(fast)
    assert not hub.is_synced(slow)  # its buffer filled: writers did not wait for it
    for i in range(20, 25):
        store.put(f"k{i % 4}", str(i).encode())
    seen_fast += events(drain(hub, fast))
    responses = drain(hub, slow, max_events=2)
    assert events(responses) == seen_fast == [(PUT, f"k{i % 4}".encode(), i + 2) for i in range(25)]
    headers = [r.header_revision for r in responses]
    assert headers == sorted(headers) and headers[-1] == store.revision
    assert hub.is_synced(slow)


def test_compaction_cancels_an_overtaken_unsynced_watcher() -> None:
    store = small_store(buffer_events=2)
    hub = store.hub
    wid = hub.watch("a")
    for i in range(6):
        store.put("a", str(i).encode())  # revisions 2..7; buffered: 2, 3
    store.compact(5)
    responses = drain(hub, wid)
    assert events(responses) == [(PUT, b"a", 2), (PUT, b"a", 3)]
    assert responses[-1] == WatchResponse(wid, (), 7, compact_revision=5, canceled=True)
    with pytest.raises(InvalidRequest):
        hub.poll(wid)
    assert len(hub) == 0


def test_compaction_spares_watchers_that_still_have_their_history() -> None:
    store = small_store(buffer_events=2)
    hub = store.hub
    wid = hub.watch("a")
    for i in range(6):
        store.put("a", str(i).encode())  # unsynced from revision 4 on
    store.compact(3)
    assert [e[2] for e in events(drain(hub, wid))] == [2, 3, 4, 5, 6, 7]


def test_synced_watchers_survive_compaction(store: KVStore) -> None:
    wid = store.hub.watch("a")
    store.put("a", b"1")
    store.put("a", b"2")
    store.compact(3)
    assert [e[2] for e in events(drain(store.hub, wid))] == [2, 3]


def test_watch_from_compacted_revision_raises(store: KVStore) -> None:
    store.put("a", b"1")
    store.put("a", b"2")
    store.compact(2)
    with pytest.raises(Compacted) as err:
        store.hub.watch("a", start_revision=2)
    assert err.value.compact_revision == 2
    wid = store.hub.watch("a", start_revision=3)
    assert events(drain(store.hub, wid)) == [(PUT, b"a", 3)]


def test_on_ready_signals_once_until_drained(store: KVStore) -> None:
    signals: list[int] = []
    wid = store.hub.watch("a", on_ready=signals.append)
    store.put("a", b"1")
    store.put("a", b"2")
    assert signals == [wid]
    assert store.hub.has_pending(wid)
    drain(store.hub, wid)
    assert not store.hub.has_pending(wid)
    store.put("b", b"1")  # not watched
    assert signals == [wid]
    store.put("a", b"3")
    assert signals == [wid, wid]


def test_progress_on_request(store: KVStore) -> None:
    wid = store.hub.watch("a")
    store.put("b", b"1")
    assert store.hub.poll(wid) is None
    store.hub.request_progress()
    assert drain(store.hub, wid) == [WatchResponse(wid, (), 2)]
    # with events pending, the events themselves carry the progress
    store.put("a", b"1")
    store.put("b", b"2")
    store.hub.request_progress(wid)
    responses = drain(store.hub, wid)
    assert len(responses) == 1 and responses[0].header_revision == 4


def test_progress_waits_until_caught_up() -> None:
    store = small_store(buffer_events=1)
    wid = store.hub.watch("a")
    for i in range(3):
        store.put("a", b"x")  # unsynced after the first
    store.put("b", b"x")
    store.hub.request_progress(wid)
    responses = drain(store.hub, wid)
    # one event per response (buffer of 1); the last one is caught up, so it
    # carries the current revision and stands for the progress notification
    assert [r.header_revision for r in responses] == [2, 3, 5]
    assert events(responses) == [(PUT, b"a", 2), (PUT, b"a", 3), (PUT, b"a", 4)]


def test_progress_notify_on_tick(store: KVStore) -> None:
    quiet = store.hub.watch("a", progress_notify=True)
    busy = store.hub.watch("b", progress_notify=True)
    plain = store.hub.watch("c")
    store.hub.tick_progress()  # first tick: nothing sent yet, all idle
    assert drain(store.hub, quiet) == [WatchResponse(quiet, (), 1)]
    store.put("b", b"1")
    drain(store.hub, busy)
    store.hub.tick_progress()
    assert drain(store.hub, busy) == []  # it got events since the last tick
    assert drain(store.hub, plain) == []
    store.hub.tick_progress()
    assert drain(store.hub, busy) == [WatchResponse(busy, (), 2)]


def test_cancel(store: KVStore) -> None:
    wid = store.hub.watch("a")
    assert store.hub.cancel(wid)
    assert not store.hub.cancel(wid)
    store.put("a", b"1")
    assert store.hub.active == 0
    with pytest.raises(InvalidRequest):
        store.hub.poll(wid)


def test_bad_watch_arguments(store: KVStore) -> None:
    with pytest.raises(InvalidRequest):
        store.hub.watch("a", start_revision=-1)
    with pytest.raises(InvalidRequest):
        store.hub.watch("")
    with pytest.raises(InvalidRequest):
        WatchHub(store, buffer_events=0)


def test_watchers_resynchronise_after_restore(clock: FakeClock) -> None:
    leader = KVStateMachine(clock)
    follower = KVStateMachine(clock)
    follower.store.put("a", b"0")  # revision 2 on both
    leader.store.put("a", b"0")
    wid = follower.hub.watch("a")
    for i in range(1, 4):
        leader.store.put("a", str(i).encode())  # 3, 4, 5
    follower.restore(leader.snapshot_chunks())
    assert events(drain(follower.hub, wid)) == [(PUT, b"a", 3), (PUT, b"a", 4), (PUT, b"a", 5)]
    follower.store.put("a", b"9")
    assert events(drain(follower.hub, wid)) == [(PUT, b"a", 6)]


def test_restore_past_a_watcher_cancels_it(clock: FakeClock) -> None:
    leader = KVStateMachine(clock)
    follower = KVStateMachine(clock)
    wid = follower.hub.watch("a")
    for i in range(4):
        leader.store.put("a", str(i).encode())
    leader.store.compact(4)
    follower.restore(leader.snapshot_chunks())
    [resp] = drain(follower.hub, wid)
    assert resp.canceled and resp.compact_revision == 4
