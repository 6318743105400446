"""The simulated cluster's driver: durability, crashes, restarts, compaction and snapshots."""

from __future__ import annotations

import random

from kvstore.raft.messages import ConfState, Entry, HardState, NodeId, StateType
from kvstore.raft.storage import MemoryLogStorage
from kvstore.testing.checker import SafetyChecker
from kvstore.testing.cluster import Cluster, ClusterOptions, Member, rebuild_storage
from kvstore.testing.network import SimNetwork
from kvstore.testing.statemachine import Applied, MachineKind
from kvstore.testing.trace import Trace

VOTERS = ConfState(voters=(NodeId(1), NodeId(2), NodeId(3)))


class Recorder:
    def __init__(self) -> None:
        self.applied: list[tuple[NodeId, Applied]] = []
        self.reads: list[tuple[NodeId, bytes, int | None]] = []
        self.crashed: list[NodeId] = []

    def on_applied(self, member: NodeId, applied: Applied) -> None:
        self.applied.append((member, applied))

    def on_read(self, member: NodeId, ctx: bytes, value: int | None) -> None:
        self.reads.append((member, ctx, value))

    def on_crash(self, member: NodeId) -> None:
        self.crashed.append(member)


class SlowDisk(random.Random):
    """A driver rng whose every sync takes the longest allowed."""

    def randint(self, a: int, b: int) -> int:
        return b


def make(options: ClusterOptions, rng: random.Random | None = None) -> tuple[Cluster, Recorder]:
    rec = Recorder()
    cluster = Cluster(options, rng=rng or random.Random(1), node_seeds=[11, 22, 33],
                      network=SimNetwork(random.Random(2)), checker=SafetyChecker(),
                      trace=Trace(keep=None), listener=rec)
    return cluster, rec


def run(cluster: Cluster, ticks: int) -> None:
    for _ in range(ticks):
        cluster.now += 1
        cluster.checker.now = cluster.now
        cluster.tick()
        cluster.deliver()
        cluster.process()


def elect(cluster: Cluster) -> Member:
    for _ in range(200):
        run(cluster, 1)
        leader = cluster.leader()
        if leader is not None and leader.node is not None:
            if leader.node.raft.raft_log.committed >= 1:
                return leader
    raise AssertionError("no leader")


def test_rebuild_storage_keeps_snapshot_entries_and_hard_state() -> None:
    old = MemoryLogStorage(VOTERS)
    old.append([Entry(1, i, b"e%d" % i) for i in range(1, 11)])
    old.set_hard_state(HardState(term=2, vote=NodeId(1), commit=9))
    old.create_snapshot(6, b"state at 6")
    old.compact(4)
    new = rebuild_storage(old, VOTERS)
    assert new.snapshot() == old.snapshot()
    assert new.hard_state == old.hard_state
    assert (new.first_index(), new.last_index()) == (7, 10)
    assert new.entries(7, 11, 1 << 30) == old.entries(7, 11, 1 << 30)
    assert new.term(6) == 1
    empty = rebuild_storage(MemoryLogStorage(VOTERS), VOTERS)
    assert (empty.first_index(), empty.last_index(), empty.hard_state) == (1, 0, HardState())


def test_writes_are_applied_everywhere_and_reads_released() -> None:
    cluster, rec = make(ClusterOptions())
    leader = elect(cluster)
    follower = NodeId(leader.id % 3 + 1)
    assert cluster.propose(follower, b"c1.1 w 7")
    assert cluster.read_index(follower, b"c2.1")
    run(cluster, 10)
    assert sorted(m for m, a in rec.applied if a.command.seq == 1) == [1, 2, 3]
    assert rec.reads == [(follower, b"c2.1", 7)] or rec.reads == [(follower, b"c2.1", None)]
    assert all(m.app is not None and m.app.value == 7 for m in cluster.members.values())
    assert cluster.steps > 0
    assert any("ready" in line for line in cluster.trace.lines())


def test_crash_loses_the_unsynced_batch_and_restart_reapplies_from_disk() -> None:
    cluster, rec = make(ClusterOptions(max_sync_delay=5, early_send_rate=1.0), SlowDisk(3))
    leader = elect(cluster)
    run(cluster, 10)
    durable_last = leader.storage.last_index()
    assert leader.node is not None
    assert cluster.propose(leader.id, b"c1.1 w 5")
    cluster.process()
    assert leader.inflight is not None and leader.inflight.entries
    assert leader.storage.last_index() == durable_last
    cluster.crash(leader.id)
    assert rec.crashed == [leader.id]
    assert leader.node is None and leader.app is None
    assert leader.storage.last_index() == durable_last
    cluster.restart(leader.id)
    assert leader.node is not None and leader.incarnation == 1
    assert leader.node.raft.raft_log.last_index() == durable_last
    assert leader.node.raft.term == leader.storage.hard_state.term
    # The entry was sent before the leader synced it: the others hold a
    # majority and commit it; the restarted member catches up and applies it.
    run(cluster, 100)
    assert all(m.app is not None and m.app.value == 5 for m in cluster.members.values())


def test_compaction_makes_a_lagging_member_catch_up_by_snapshot() -> None:
    cluster, rec = make(ClusterOptions(machine=MachineKind.COUNTER))
    leader = elect(cluster)
    lagging = NodeId(leader.id % 3 + 1)
    cluster.crash(lagging)
    for seq in range(1, 21):
        assert cluster.propose(leader.id, b"c1.%d add 1" % seq)
        run(cluster, 2)
    for m in cluster.alive():
        assert cluster.compact(m.id, keep=0)
        assert m.storage.first_index() == m.storage.snapshot().metadata.index + 1
    cluster.restart(lagging)
    run(cluster, 60)
    assert any("Snapshot Index:" in line and f"n{lagging} ready" in line
               for line in cluster.trace.lines())
    member = cluster.members[lagging]
    assert member.app is not None and member.app.value == 20
    assert member.storage.snapshot().metadata.index >= 20


def test_leader_of_the_highest_term() -> None:
    cluster, _ = make(ClusterOptions())
    leader = elect(cluster)
    assert cluster.leader() is leader
    assert leader.node is not None and leader.node.raft.state == StateType.LEADER
    cluster.crash(leader.id)
    assert cluster.leader() is None
    assert len(cluster.alive()) == 2
