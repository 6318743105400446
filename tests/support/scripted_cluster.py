"""A cluster of ``RawNode``s that moves only when told to, and says what it does.

Each member has a ``MemoryLogStorage`` (its disk), a state machine that is the
list of applied entry data, and a seeded ``random.Random(id)`` so election
timeouts replay identically. The network is one ordered queue of in-flight
messages. Every ready batch handled and every message delivered is printed
with the ``kvstore.raft.describe`` functions.

Faults:

- A message that cannot travel (across a partition, or to a crashed member)
  is dropped when it is sent; in-flight messages are dropped when a partition
  or a crash cuts them off.
- A crash loses everything but the storage, which holds exactly what the
  member's handled ready batches wrote; ``restart`` rebuilds the member, and
  its state machine from the storage's snapshot.

Checks: every member applies committed entries in order without gaps, and no
two members ever apply different entries at one index (state machine safety);
a violation raises ``InvariantError``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from kvstore.errors import InvariantError, KvError
from kvstore.raft.config import Config
from kvstore.raft.describe import (
    describe_entries,
    describe_entry,
    describe_hard_state,
    describe_message,
    describe_read_state,
    describe_snapshot,
    describe_soft_state,
)
from kvstore.raft.messages import (
    ConfState,
    Entry,
    HardState,
    Message,
    MessageType,
    NodeId,
    Snapshot,
    SnapshotMetadata,
)
from kvstore.raft.rawnode import RawNode, Ready
from kvstore.raft.storage import MemoryLogStorage

__all__ = ["Member", "ScriptedCluster"]


def encode_state(applied: Sequence[tuple[int, bytes]], upto: int) -> bytes:
    """A state machine as of ``upto``: ``index:hexdata`` items joined by ``;``."""
    return ";".join(f"{i}:{d.hex()}" for i, d in applied if i <= upto).encode()


def decode_state(data: bytes) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    for item in data.decode().split(";") if data else []:
        index, _, hexdata = item.partition(":")
        out.append((int(index), bytes.fromhex(hexdata)))
    return out


@dataclass
class Member:
    """One member: its config, its disk, and (unless crashed) its live state."""

    config: Config
    storage: MemoryLogStorage
    node: RawNode | None = None
    # (index, data) of every non-empty entry applied, in order.
    applied: list[tuple[int, bytes]] = field(default_factory=list)
    applied_index: int = 0

    def start(self) -> None:
        """(Re)build the live member from what the storage holds."""
        snap = self.storage.snapshot()
        self.applied = decode_state(snap.data)
        self.applied_index = snap.metadata.index
        cfg = replace(self.config, applied=snap.metadata.index)
        self.node = RawNode(cfg, self.storage, random.Random(self.config.id))


class ScriptedCluster:
    """Members, the network between them, and the driver loop, step by step."""

    def __init__(self) -> None:
        self.members: dict[NodeId, Member] = {}
        # In-flight messages with the member that sent them (a forwarded
        # leadership transfer names the transferee in ``from_``, not the sender).
        self.network: list[tuple[NodeId, Message]] = []
        # Partition group of each member; None means fully connected, and a
        # member missing from the map is alone.
        self.groups: dict[NodeId, int] | None = None
        # index -> (term, data) of every entry any member applied.
        self.committed: dict[int, tuple[int, bytes]] = {}
        self._out: list[str] = []
        self._indent = ""

    # -- output -----------------------------------------------------------
    def line(self, text: str) -> None:
        self._out.append(self._indent + text)

    @contextmanager
    def section(self, header: str | None) -> Iterator[None]:
        """Indent what is printed inside, under ``header`` (if any)."""
        if header is not None:
            self.line(header)
        saved, self._indent = self._indent, self._indent + "  "
        try:
            yield
        finally:
            self._indent = saved

    def guard(self, call: Callable[[], None]) -> None:
        """Run a RawNode input; print the error it raises on purpose.

        ``InvariantError`` is a broken contract, never an expected outcome:
        it propagates and fails the test.
        """
        try:
            call()
        except InvariantError:
            raise
        except KvError as e:
            self.line(f"raised {type(e).__name__}: {e}")

    # -- members ------------------------------------------------------------
    def ids(self) -> list[NodeId]:
        return sorted(self.members)

    def member(self, nid: NodeId) -> Member:
        if nid not in self.members:
            raise ValueError(f"no node {nid}")
        return self.members[nid]

    def live(self, nid: NodeId) -> RawNode:
        n = self.member(nid).node
        if n is None:
            raise ValueError(f"node {nid} is down")
        return n

    def add_members(
        self, n: int, *, voters: Sequence[NodeId] = (), index: int = 0, **config: Any
    ) -> None:
        """Start ``n`` new members (voters: themselves, unless given).

        ``index > 0`` starts them from an empty snapshot at that index, term 1.
        """
        first = max(self.members, default=0) + 1
        ids = [NodeId(first + i) for i in range(n)]
        conf = ConfState(voters=tuple(voters) or tuple(ids))
        for nid in ids:
            storage = MemoryLogStorage(conf)
            if index > 0:
                storage.apply_snapshot(Snapshot(SnapshotMetadata(index, 1, conf)))
                storage.set_hard_state(HardState(term=1, commit=index))
            cfg = replace(Config(id=nid, pre_vote=False, check_quorum=False), **config)
            self.members[nid] = Member(config=cfg, storage=storage)
            self.members[nid].start()

    def crash(self, nid: NodeId) -> None:
        self.member(nid).node = None
        self.cut()

    def restart(self, nid: NodeId) -> None:
        m = self.member(nid)
        if m.node is not None:
            raise ValueError(f"node {nid} is running")
        m.start()

    def compact(self, nid: NodeId, index: int) -> None:
        """Snapshot the state machine of ``nid`` at ``index`` and compact its log."""
        m = self.member(nid)
        if index > m.applied_index:
            raise ValueError(f"cannot snapshot {index} past applied {m.applied_index}")
        m.storage.create_snapshot(index, encode_state(m.applied, index))
        m.storage.compact(index)

    # -- network ------------------------------------------------------------
    def connected(self, a: NodeId, b: NodeId) -> bool:
        if self.groups is None or a == b:
            return True
        return self.groups.get(a, -a) == self.groups.get(b, -b)

    def partition(self, groups: Sequence[Sequence[NodeId]]) -> None:
        self.groups = {nid: g for g, members in enumerate(groups) for nid in members}
        self.cut()

    def isolate(self, nid: NodeId) -> None:
        groups = self.groups or {m: 0 for m in self.ids()}
        groups[nid] = max(groups.values()) + 1
        self.groups = groups
        self.cut()

    def heal(self) -> None:
        self.groups = None

    def _drop_reason(self, sender: NodeId, m: Message) -> str | None:
        target = self.members.get(m.to)
        if target is None or target.node is None:
            return f"{m.to} is down"
        if not self.connected(sender, m.to):
            return "partitioned"
        return None

    def _send(self, sender: NodeId, m: Message) -> bool:
        """Put ``m`` on the network; False (and a note) if it cannot travel."""
        reason = self._drop_reason(sender, m)
        if reason is None:
            self.network.append((sender, m))
            self.line(describe_message(m))
            return True
        self.line(f"{describe_message(m)} (dropped: {reason})")
        return False

    def cut(self) -> None:
        """Drop in-flight messages that can no longer arrive."""
        kept: list[tuple[NodeId, Message]] = []
        for sender, m in self.network:
            reason = self._drop_reason(sender, m)
            if reason is None:
                kept.append((sender, m))
            else:
                self.line(f"dropped: {describe_message(m)} ({reason})")
        self.network = kept

    def _report_snapshot(self, m: Message, *, ok: bool) -> None:
        """Tell the sender of a snapshot whether it arrived, as a transport does."""
        sender = self.members[m.from_].node
        if sender is not None:
            self.line(f"{m.from_} learns its snapshot to {m.to} {'arrived' if ok else 'failed'}")
            sender.report_snapshot(m.to, ok=ok)

    def deliver(self, to: Sequence[NodeId], drop: Sequence[NodeId] = ()) -> bool:
        """Deliver queued messages for ``to``, drop those for ``drop``; True if any moved."""
        moved = False
        kept: list[tuple[NodeId, Message]] = []
        taken: list[Message] = []
        for sender, m in self.network:
            if m.to in drop:
                self.line(f"dropped: {describe_message(m)}")
                moved = True
            elif m.to in to:
                taken.append(m)
            else:
                kept.append((sender, m))
        self.network = kept
        for nid in sorted({m.to for m in taken}):
            with self.section(f"> {nid} receiving messages"):
                for m in (x for x in taken if x.to == nid):
                    moved = True
                    self.line(describe_message(m))
                    with self.section(None):
                        self.guard(partial(self.live(nid).step, m))
                        if m.type == MessageType.SNAP:
                            self._report_snapshot(m, ok=True)
        return moved

    # -- the driver loop ----------------------------------------------------
    def has_ready(self, nid: NodeId) -> bool:
        node = self.members[nid].node
        return node is not None and node.has_ready()

    def process_ready(self, nid: NodeId) -> None:
        """Handle one ready batch in the order ``rawnode`` prescribes."""
        m = self.member(nid)
        node = self.live(nid)
        rd = node.ready()
        lost: list[Message] = []
        with self.section(f"> {nid} handling Ready"):
            self._print_ready(rd)
            if rd.messages:
                with self.section("Messages:"):
                    lost = [msg for msg in rd.messages if not self._send(nid, msg)]
            if rd.snapshot is not None:
                m.storage.apply_snapshot(rd.snapshot)
                m.applied = decode_state(rd.snapshot.data)
                m.applied_index = rd.snapshot.metadata.index
            if rd.entries:
                m.storage.append(rd.entries)
            if rd.hard_state is not None:
                m.storage.set_hard_state(rd.hard_state)
            if rd.persisted_messages:
                with self.section("AfterPersist:"):
                    for msg in rd.persisted_messages:
                        self._send(nid, msg)
            for e in rd.committed_entries:
                self._apply(m, e)
            node.advance(rd)
            for msg in lost:
                if msg.type == MessageType.SNAP:
                    self._report_snapshot(msg, ok=False)

    def _print_ready(self, rd: Ready) -> None:
        self.line("Ready MustSync" if rd.must_sync else "Ready")
        if rd.soft_state is not None:
            self.line(describe_soft_state(rd.soft_state))
        if rd.hard_state is not None:
            self.line("HardState " + describe_hard_state(rd.hard_state))
        if rd.snapshot is not None:
            self.line("Snapshot " + describe_snapshot(rd.snapshot))
        if rd.entries:
            self.line("Entries: " + describe_entries(rd.entries))
        if rd.committed_entries:
            self.line("Committed: " + describe_entries(rd.committed_entries))
        for rs in rd.read_states:
            self.line("ReadState " + describe_read_state(rs))

    def _apply(self, m: Member, e: Entry) -> None:
        if e.index != m.applied_index + 1:
            raise InvariantError(
                f"{m.config.id} applies {e.index} after {m.applied_index}: a gap or a repeat"
            )
        seen = self.committed.setdefault(e.index, (e.term, e.data))
        if seen != (e.term, e.data):
            raise InvariantError(
                f"{m.config.id} applies {describe_entry(e)} but {e.index} was "
                f"applied elsewhere as {seen[0]}/{e.index}: state machine safety is broken"
            )
        m.applied_index = e.index
        if e.data:
            m.applied.append((e.index, e.data))

    def stabilize(self, ids: Sequence[NodeId]) -> None:
        """Handle readies and deliver messages among ``ids`` until nothing moves."""
        while True:
            done = True
            for nid in ids:
                if self.has_ready(nid):
                    self.process_ready(nid)
                    done = False
            if self.deliver(ids):
                done = False
            if done:
                return
