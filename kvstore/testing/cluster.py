"""The simulated cluster: members, their disks, and the driver loop that runs each RawNode.

A member is a ``RawNode`` over a ``MemoryLogStorage`` plus a volatile
``StateMachine``, and the real write-ahead log and snapshot store
(``DiskLogStorage``) on a ``MemoryDisk``. The driver writes a ready batch to
the WAL and syncs it (or leaves a commit-only batch unsynced, as a real
driver may), then updates the in-memory storage, which therefore holds
exactly what was synced. A crash makes the fake disk lose every unsynced
write, keeping a seeded, torn prefix of unsynced appends. A restart recovers
the WAL and snapshot from that disk and checks the result against the
in-memory copy of what was synced (same snapshot, same entries, same term
and vote, a commit index no higher), then builds a fresh RawNode with
``Config(applied=<snapshot index>)`` and a state machine restored from the
snapshot; the committed entries after it are applied again.

The driver follows the core's contract, with the freedom a real driver has:

1. ``rd = node.ready()``; the batch's ``messages`` leave at once with
   probability ``early_send_rate`` (a leader appending in parallel with its
   followers), otherwise after the sync;
2. the sync happens ``0..max_sync_delay`` ticks later (a slow disk); the
   node keeps ticking and stepping meanwhile, but hands out no new batch;
3. at the sync: install the snapshot, append the entries, set the hard
   state; then send ``persisted_messages`` (and ``messages`` if not yet
   sent), apply ``committed_entries``, release read states whose index is
   applied, and ``advance``.

The transport behaves like a connection-based one: the sender of a snapshot
learns whether it arrived (``report_snapshot``); a lost message is a broken
connection, which both ends report with ``report_unreachable`` (unless the
network's ``silent_loss`` is set); a crash breaks every connection to the
member, which its peers report the same way.

Every action is reported to the ``SafetyChecker`` and the ``Trace``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

from kvstore.errors import InvariantError, NotLeader, ProposalDropped
from kvstore.raft.config import Config
from kvstore.raft.messages import ConfState, Message, MessageType, NodeId, StateType
from kvstore.raft.rawnode import RawNode, Ready
from kvstore.raft.storage import MemoryLogStorage
from kvstore.storage.log_storage import DiskLogStorage, DiskState
from kvstore.storage.memory_disk import MemoryDisk
from kvstore.testing.checker import SafetyChecker
from kvstore.testing.network import Fate, SimNetwork
from kvstore.testing.statemachine import Applied, MachineKind, StateMachine
from kvstore.testing.trace import Trace

__all__ = [
    "Cluster",
    "ClusterListener",
    "ClusterOptions",
    "Member",
    "check_recovery",
    "rebuild_storage",
    "storage_from_disk",
]

_DELIVERED = Fate.DELIVERED
_DROPPED = Fate.DROPPED
_BLOCKED = Fate.BLOCKED
_SNAP = MessageType.SNAP


@dataclass(frozen=True, slots=True)
class ClusterOptions:
    size: int = 3
    election_tick: int = 10
    heartbeat_tick: int = 1
    check_quorum: bool = True
    pre_vote: bool = True
    max_size_per_msg: int = 1 << 20
    max_inflight_msgs: int = 256
    machine: MachineKind = MachineKind.REGISTER
    max_sync_delay: int = 0
    early_send_rate: float = 0.0


class ClusterListener(Protocol):
    """What the clients hear from the members."""

    def on_applied(self, member: NodeId, applied: Applied) -> None: ...

    def on_read(self, member: NodeId, ctx: bytes, value: int | None) -> None: ...

    def on_crash(self, member: NodeId) -> None: ...


class Member:
    """One member: its disk survives crashes, the rest does not."""

    __slots__ = ("id", "incarnation", "storage", "node", "app", "inflight", "synced",
                 "sync_at", "sent_early", "reads", "dirty", "disk", "wal")

    def __init__(self, member_id: NodeId, storage: MemoryLogStorage) -> None:
        self.id = member_id
        self.incarnation = 0
        self.storage = storage
        # The member's disk and the WAL on it; the disk survives crashes.
        self.disk = MemoryDisk()
        self.wal: DiskLogStorage | None = DiskLogStorage.open(self.disk, WAL_DIR)[0]
        self.node: RawNode | None = None
        self.app: StateMachine | None = None
        # The ready batch handed out and not yet advanced, if any.
        self.inflight: Ready | None = None
        self.synced = False
        self.sync_at = 0
        self.sent_early = False
        # Read states waiting for the applied index to reach theirs: (index, ctx).
        self.reads: list[tuple[int, bytes]] = []
        # Something happened to the node since the driver last asked has_ready().
        self.dirty = False

    @property
    def alive(self) -> bool:
        return self.node is not None


WAL_DIR = "/member"


def storage_from_disk(state: DiskState, conf_state: ConfState) -> MemoryLogStorage:
    """A member's in-memory log rebuilt from what its WAL recovered."""
    storage = MemoryLogStorage(conf_state=conf_state)
    if not state.snapshot.is_empty():
        storage.apply_snapshot(state.snapshot)
    storage.append(state.entries)
    storage.set_hard_state(state.hard_state)
    return storage


def check_recovery(member: NodeId, recovered: MemoryLogStorage, synced: MemoryLogStorage) -> None:
    """The WAL must give back exactly what was synced (a commit index may lag)."""
    where = f"member {member}: recovered WAL differs from what was synced:"
    rs, ss = recovered.snapshot(), synced.snapshot()
    if rs.metadata != ss.metadata or rs.data != ss.data:
        raise InvariantError(f"{where} snapshot {rs.metadata} != {ss.metadata}")
    if recovered.last_index() != synced.last_index():
        raise InvariantError(
            f"{where} last index {recovered.last_index()} != {synced.last_index()}")
    lo = max(recovered.first_index(), synced.first_index())
    hi = recovered.last_index() + 1
    if hi > lo and recovered.entries(lo, hi, 1 << 62) != synced.entries(lo, hi, 1 << 62):
        raise InvariantError(f"{where} entries in [{lo}, {hi}) differ")
    rh, sh = recovered.hard_state, synced.hard_state
    if (rh.term, rh.vote) != (sh.term, sh.vote) or rh.commit > sh.commit:
        raise InvariantError(f"{where} hard state {rh} vs {sh}")


def rebuild_storage(old: MemoryLogStorage, conf_state: ConfState) -> MemoryLogStorage:
    """What a member finds on its disk after a crash: a fresh storage with the same content."""
    new = MemoryLogStorage(conf_state=conf_state)
    snap = old.snapshot()
    if not snap.is_empty():
        new.apply_snapshot(snap)
    first, last = old.first_index(), old.last_index()
    if last >= first:
        new.append(old.entries(first, last + 1, 1 << 62))
    new.set_hard_state(old.hard_state)
    return new


class Cluster:
    """Members of one run, wired to a ``SimNetwork``, a checker, a trace and the clients."""

    def __init__(
        self,
        options: ClusterOptions,
        *,
        rng: random.Random,
        node_seeds: list[int],
        network: SimNetwork,
        checker: SafetyChecker,
        trace: Trace,
        listener: ClusterListener,
    ) -> None:
        self.options = options
        self.rng = rng
        self.node_seeds = node_seeds
        self.network = network
        self.checker = checker
        self.trace = trace
        self.listener = listener
        self.conf_state = ConfState(voters=tuple(NodeId(i) for i in range(1, options.size + 1)))
        self.members: dict[NodeId, Member] = {
            v: Member(v, MemoryLogStorage(conf_state=self.conf_state))
            for v in self.conf_state.voters
        }
        self.now = 0
        self.steps = 0
        for m in self.members.values():
            self._boot(m)

    # -- lifecycle --------------------------------------------------------
    def _boot(self, m: Member) -> None:
        o = self.options
        snap = m.storage.snapshot()
        cfg = Config(
            id=m.id,
            election_tick=o.election_tick,
            heartbeat_tick=o.heartbeat_tick,
            applied=snap.metadata.index,
            max_size_per_msg=o.max_size_per_msg,
            max_inflight_msgs=o.max_inflight_msgs,
            check_quorum=o.check_quorum,
            pre_vote=o.pre_vote,
        )
        seed = self.node_seeds[m.id - 1] * 1000 + m.incarnation
        m.node = RawNode(cfg, m.storage, random.Random(seed))
        if snap.is_empty():
            m.app = StateMachine(o.machine)
        else:
            m.app = StateMachine.restore(snap.data, snap.metadata.index)
            self.checker.on_snapshot(m.id, snap.metadata.index, snap.data, m.app.value)
        m.inflight = None
        m.reads = []
        m.dirty = True
        self.checker.on_start(m.id, m.node, m.storage)

    def crash(self, member: NodeId) -> None:
        """Stop ``member``: everything not synced is lost, clients and peers notice."""
        m = self.members[member]
        if m.node is None:
            return
        lost = " (unsynced batch lost)" if m.inflight is not None else ""
        self.trace.text(self.now, f"crash n{member}{lost}")
        # The disk keeps what was synced, and maybe a torn part of the rest.
        m.disk.crash(self.rng)
        m.wal = None
        m.node = None
        m.app = None
        m.inflight = None
        m.reads = []
        self.listener.on_crash(member)
        # Its connections break: every peer's transport reports it unreachable.
        for peer in self.members.values():
            if peer.node is not None:
                peer.node.report_unreachable(member)
                peer.dirty = True
                self.checker.after_event(peer.id, peer.node)

    def restart(self, member: NodeId) -> None:
        """Start ``member`` again from its disk."""
        m = self.members[member]
        if m.node is not None:
            return
        wal, state = DiskLogStorage.open(m.disk, WAL_DIR)
        recovered = storage_from_disk(state, self.conf_state)
        check_recovery(member, recovered, m.storage)
        m.wal = wal
        m.storage = recovered
        m.incarnation += 1
        self._boot(m)
        hs = m.storage.hard_state
        self.trace.text(self.now, f"restart n{member} term {hs.term} commit {hs.commit} "
                        f"snapshot {m.storage.snapshot().metadata.index} "
                        f"last {m.storage.last_index()}")

    def alive(self) -> list[Member]:
        return [m for m in self.members.values() if m.node is not None]

    def leader(self) -> Member | None:
        """The live leader of the highest term, if any."""
        best: Member | None = None
        for m in self.members.values():
            node = m.node
            if node is not None and node.raft.state == StateType.LEADER:
                if best is None or (best.node is not None and node.raft.term > best.node.raft.term):
                    best = m
        return best

    # -- inputs -----------------------------------------------------------
    def tick(self) -> None:
        after_event = self.checker.after_event
        for m in self.members.values():
            node = m.node
            if node is not None:
                node.tick()
                m.dirty = True
                self.steps += 1
                after_event(m.id, node)

    def deliver(self) -> None:
        """Hand every message due now to its member; report snapshots and broken links."""
        members = self.members
        now = self.now
        trace = self.trace
        after_event = self.checker.after_event
        silent_loss = self.network.config.silent_loss
        for msg, fate in self.network.due(now):
            target = members.get(msg.to)
            node = target.node if target is not None else None
            if fate is _DELIVERED and node is None:
                fate = _BLOCKED
            trace.message(now, fate, msg)
            if node is not None and target is not None and fate is _DELIVERED:
                self.steps += 1
                try:
                    node.step(msg)
                except (ProposalDropped, NotLeader) as e:
                    trace.text(now, f"n{msg.to} dropped {msg.type.name}: {e}")
                target.dirty = True
                after_event(target.id, node)
                if msg.type != _SNAP:
                    continue
            sender = members.get(msg.from_)
            if sender is not None and sender.node is not None and msg.type == _SNAP:
                sender.node.report_snapshot(msg.to, ok=fate is _DELIVERED)
                sender.dirty = True
                after_event(sender.id, sender.node)
            if fate is _DELIVERED or (fate is _DROPPED and silent_loss):
                continue
            # A lost message is a broken connection, and both ends notice.
            for end, peer in ((sender, msg.to), (target, msg.from_)):
                if end is not None and end.node is not None:
                    end.node.report_unreachable(peer)
                    end.dirty = True
                    after_event(end.id, end.node)

    def propose(self, member: NodeId, data: bytes) -> bool:
        """Propose on ``member``; False if it is down or refused at once."""
        node = self.members[member].node
        if node is None:
            return False
        self.members[member].dirty = True
        try:
            node.propose(data)
        except (ProposalDropped, NotLeader):
            return False
        finally:
            self.checker.after_event(member, node)
        return True

    def read_index(self, member: NodeId, ctx: bytes) -> bool:
        """Ask ``member`` for a linearizable read; False if it is down or refused at once."""
        node = self.members[member].node
        if node is None:
            return False
        self.members[member].dirty = True
        try:
            node.read_index(ctx)
        except (ProposalDropped, NotLeader):
            return False
        finally:
            self.checker.after_event(member, node)
        return True

    def transfer_leader(self, member: NodeId, transferee: NodeId) -> None:
        node = self.members[member].node
        if node is not None:
            self.trace.text(self.now, f"n{member} transfer leadership to n{transferee}")
            node.transfer_leader(transferee)
            self.members[member].dirty = True
            self.checker.after_event(member, node)

    def compact(self, member: NodeId, keep: int) -> bool:
        """Snapshot ``member``'s state machine and drop its log up to ``keep`` entries before it."""
        m = self.members[member]
        app = m.app
        if m.node is None or app is None:
            return False
        storage = m.storage
        index = app.applied
        if index <= storage.snapshot().metadata.index or index > storage.last_index():
            return False
        data = app.snapshot()
        snap = storage.create_snapshot(index, data)
        if m.wal is not None:
            m.wal.compact(snap)
        self.checker.on_snapshot(member, index, data, app.value)
        cut = index - keep
        if cut >= storage.first_index():
            storage.compact(cut)
        self.trace.text(self.now, f"n{member} snapshot at {index}, "
                        f"log from {storage.first_index()}")
        return True

    # -- the driver -------------------------------------------------------
    def process(self) -> None:
        """Run every member's ready loop until it has nothing more to do in this tick.

        Messages sent now arrive in a later tick, so members are independent
        here and each is driven to quiescence in turn.
        """
        now = self.now
        for m in self.members.values():
            node = m.node
            while node is not None:
                if m.inflight is not None:
                    if m.sync_at > now:
                        break
                    self._sync(m, node)
                elif m.dirty:
                    m.dirty = False
                    if not node.has_ready():
                        break
                    self._take_ready(m, node)
                else:
                    break

    def _send(self, m: Member, msg: Message, *, persisted: bool) -> None:
        self.checker.on_send(m.id, msg, persisted=persisted, synced=m.synced, storage=m.storage)
        self.network.send(msg, self.now)

    def _take_ready(self, m: Member, node: RawNode) -> None:
        rd = node.ready()
        self.steps += 1
        self.trace.ready(self.now, m.id, rd)
        self.checker.on_ready(m.id, node, rd)
        m.inflight = rd
        m.synced = False
        o = self.options
        m.sent_early = bool(rd.messages) and o.early_send_rate > 0 and (
            self.rng.random() < o.early_send_rate)
        if m.sent_early:
            for msg in rd.messages:
                self._send(m, msg, persisted=False)
        delay = 0
        if o.max_sync_delay and (rd.must_sync or rd.snapshot is not None):
            delay = self.rng.randint(0, o.max_sync_delay)
        m.sync_at = self.now + delay

    def _sync(self, m: Member, node: RawNode) -> None:
        rd = m.inflight
        app = m.app
        if rd is None or app is None:
            return
        storage = m.storage
        wal = m.wal
        durable = rd.must_sync or rd.snapshot is not None
        if wal is not None:
            if rd.snapshot is not None or rd.entries or rd.hard_state is not None:
                wal.persist(rd.hard_state, rd.entries, rd.snapshot)
            # A commit-only batch is written but not synced: a crash may
            # lose it, and the member restarts with an older commit index.
            if durable:
                wal.sync()
        if rd.snapshot is not None:
            storage.apply_snapshot(rd.snapshot)
        storage.append(rd.entries)
        if rd.hard_state is not None:
            storage.set_hard_state(rd.hard_state)
        m.synced = True
        self.steps += 1
        if rd.must_sync or rd.snapshot is not None:
            self.trace.sync(self.now, m.id)
        if durable:
            self.checker.on_synced(m.id, storage)
        if rd.snapshot is not None:
            meta = rd.snapshot.metadata
            app = m.app = StateMachine.restore(rd.snapshot.data, meta.index)
            self.checker.on_snapshot(m.id, meta.index, rd.snapshot.data, app.value)
        if not m.sent_early:
            for msg in rd.messages:
                self._send(m, msg, persisted=False)
        for msg in rd.persisted_messages:
            self._send(m, msg, persisted=True)
        listener = self.listener
        for e in rd.committed_entries:
            done = app.apply(e)
            self.checker.on_apply(m.id, e, app.value)
            if done is not None:
                listener.on_applied(m.id, done)
        if rd.read_states:
            m.reads.extend((rs.index, rs.request_ctx) for rs in rd.read_states)
        if m.reads:
            waiting = []
            for index, ctx in m.reads:
                if index <= app.applied:
                    listener.on_read(m.id, ctx, app.value)
                else:
                    waiting.append((index, ctx))
            m.reads = waiting
        m.inflight = None
        node.advance(rd)
        m.dirty = True
        self.checker.after_event(m.id, node)
