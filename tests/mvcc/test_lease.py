"""Leases: grant, attach, revoke in one revision, leader-only deadlines on a fake clock."""

from __future__ import annotations

import pytest

from kvstore.clock import FakeClock
from kvstore.errors import InvalidRequest, LeaseExists, LeaseNotFound, NotLeader
from kvstore.mvcc import (
    MAX_TTL_SECONDS,
    MIN_TTL_SECONDS,
    EventType,
    KVStateMachine,
    KVStore,
    LeaseGrantRequest,
    LeaseGrantResult,
    LeaseRevokeRequest,
    LeaseRevokeResult,
    LeaseStatus,
    encode,
)


def test_grant_picks_ids_deterministically(store: KVStore) -> None:
    assert store.lease_grant(60) == LeaseGrantResult(1, 60, 1)
    assert store.lease_grant(60, 3).id == 3
    assert store.lease_grant(60).id == 2
    assert store.lease_grant(60).id == 4  # 3 is taken
    with pytest.raises(LeaseExists):
        store.lease_grant(60, 3)
    assert store.lessor.leases() == [1, 2, 3, 4]
    assert store.revision == 1  # granting does not write keys


def test_ttl_bounds(store: KVStore) -> None:
    assert store.lease_grant(1).ttl == MIN_TTL_SECONDS
    assert store.lease_grant(-5).ttl == MIN_TTL_SECONDS
    assert store.lease_grant(MAX_TTL_SECONDS).ttl == MAX_TTL_SECONDS
    with pytest.raises(InvalidRequest):
        store.lease_grant(MAX_TTL_SECONDS + 1)
    with pytest.raises(InvalidRequest):
        store.lease_grant(60, -1)
    with pytest.raises(InvalidRequest):
        store.lease_grant(7.5)  # type: ignore[arg-type]


def test_keys_follow_their_lease(store: KVStore) -> None:
    one, two = store.lease_grant(60).id, store.lease_grant(60).id
    store.put("a", b"1", lease=one)
    store.put("b", b"1", lease=one)
    store.put("c", b"1", lease=two)
    store.put("b", b"2", lease=two)  # moves to lease two
    store.delete_range("c")  # detached by deletion
    assert store.lessor.keys(one) == [b"a"]
    assert store.lessor.keys(two) == [b"b"]


def test_revoke_deletes_attached_keys_in_one_revision(store: KVStore) -> None:
    lease = store.lease_grant(60).id
    for k in ("c", "a", "b"):
        store.put(k, b"x", lease=lease)
    store.put("z", b"x")
    wid = store.hub.watch("", b"\0")
    assert store.lease_revoke(lease) == LeaseRevokeResult(3, 6)
    assert [kv.key for kv in store.range("", b"\0").kvs] == [b"z"]
    resp = store.hub.poll(wid)
    assert resp is not None
    assert [(e.type, e.kv.key, e.kv.mod_revision) for e in resp.events] == [
        (EventType.DELETE, b"a", 6),
        (EventType.DELETE, b"b", 6),
        (EventType.DELETE, b"c", 6),
    ]
    assert lease not in store.lessor
    with pytest.raises(LeaseNotFound):
        store.lease_revoke(lease)
    with pytest.raises(LeaseNotFound):
        store.put("a", b"1", lease=lease)


def test_revoke_of_lease_without_keys_keeps_revision(store: KVStore) -> None:
    lease = store.lease_grant(60).id
    assert store.lease_revoke(lease) == LeaseRevokeResult(0, 1)


def test_deadlines_only_on_the_leader(store: KVStore, clock: FakeClock) -> None:
    lessor = store.lessor
    lease = store.lease_grant(10).id
    clock.advance(100)
    assert lessor.expired() == []  # a follower never expires anything
    with pytest.raises(NotLeader):
        lessor.keepalive(lease)
    with pytest.raises(NotLeader):
        lessor.time_to_live(lease)
    lessor.promote()
    assert lessor.time_to_live(lease) == LeaseStatus(lease, 10, 10)
    clock.advance(9.5)
    assert lessor.expired() == []
    assert lessor.time_to_live(lease).ttl == 1
    clock.advance(0.5)
    assert lessor.expired() == [lease]
    # expiry only proposes; the key space changes when the revoke applies
    assert lease in lessor


def test_keepalive_renews(store: KVStore, clock: FakeClock) -> None:
    lessor = store.lessor
    lessor.promote()
    lease = store.lease_grant(10).id
    store.put("a", b"1", lease=lease)
    for _ in range(5):
        clock.advance(8)
        assert lessor.keepalive(lease) == 10
        assert lessor.expired() == []
    status = lessor.time_to_live(lease, keys=True)
    assert status == LeaseStatus(lease, 10, 10, (b"a",))
    clock.advance(10)
    assert lessor.expired() == [lease]
    with pytest.raises(LeaseNotFound):
        lessor.keepalive(lease)  # expired: its revoke is on its way


def test_expired_leases_are_offered_again_if_the_revoke_is_lost(store: KVStore, clock: FakeClock) -> None:
    lessor = store.lessor
    lessor.promote()
    lease = store.lease_grant(5).id
    clock.advance(5)
    assert lessor.expired() == [lease]
    assert lessor.expired() == []
    clock.advance(3)
    assert lessor.expired() == [lease]


def test_expired_honours_limit_and_order(store: KVStore, clock: FakeClock) -> None:
    lessor = store.lessor
    lessor.promote()
    late = store.lease_grant(30).id
    early = [store.lease_grant(10).id for _ in range(3)]
    clock.advance(40)
    assert lessor.expired(limit=2) == early[:2]
    assert lessor.expired(limit=5) == [early[2], late]


def test_promote_gives_every_lease_its_full_ttl(clock: FakeClock) -> None:
    old_leader = KVStateMachine(clock)
    new_leader = KVStateMachine(clock)
    old_leader.lessor.promote()
    for index, data in enumerate([encode(LeaseGrantRequest(10)), encode(LeaseGrantRequest(20))], 1):
        old_leader.apply(index, data)
        new_leader.apply(index, data)
    clock.advance(9)
    old_leader.lessor.demote()
    assert old_leader.lessor.expired() == []
    new_leader.lessor.promote()
    clock.advance(9.5)  # 18.5 s after the grant: no lease may expire early
    assert new_leader.lessor.expired() == []
    clock.advance(0.5)
    assert new_leader.lessor.expired() == [1]
    new_leader.apply(3, encode(LeaseRevokeRequest(1)))
    clock.advance(10)
    assert new_leader.lessor.expired() == [2]


def test_expiry_flows_through_replicated_revokes(clock: FakeClock) -> None:
    leader, follower = KVStateMachine(clock), KVStateMachine(clock)
    leader.lessor.promote()
    commands = [encode(LeaseGrantRequest(10, 7))]
    commands.append(encode(LeaseGrantRequest(10, 8)))
    for index, data in enumerate(commands, 1):
        leader.apply(index, data)
        follower.apply(index, data)
    for index, key in enumerate((b"a", b"b"), 3):
        for m in (leader, follower):
            m.store.put(key, b"v", lease=7)
            m.apply(index, b"")
    clock.advance(10)
    next_index = 5
    for lease_id in leader.lessor.expired():
        data = encode(LeaseRevokeRequest(lease_id))
        for m in (leader, follower):
            m.apply(next_index, data)
        next_index += 1
    for m in (leader, follower):
        assert m.store.range("", b"\0").count == 0
        assert m.lessor.leases() == []
    assert leader.hash_state() == follower.hash_state()


def test_leases_are_in_snapshots_and_hash(clock: FakeClock) -> None:
    a, b = KVStateMachine(clock), KVStateMachine(clock)
    a.store.lease_grant(60, 5)
    a.store.put("k", b"v", lease=5)
    a.store.lease_grant(30)
    assert a.hash_state() != b.hash_state()
    b.restore(a.snapshot_chunks())
    assert b.hash_state() == a.hash_state()
    assert b.lessor.table() == [(1, 30), (5, 60)]
    assert b.lessor.keys(5) == [b"k"]
    assert b.store.lease_grant(10).id == 2  # the id counter travelled too
    b.lessor.promote()
    assert b.lessor.time_to_live(5).ttl == 60  # deadlines start afresh
