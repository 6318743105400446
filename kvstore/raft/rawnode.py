"""``RawNode``: the core's interface to a driver, and the ``Ready`` batch it hands out.

A driver loops::

    rd = node.ready()
    send(rd.messages)                      # may go at once (dissertation §10.2.1)
    if rd.snapshot: install it
    persist(rd.entries, rd.hard_state)     # sync when rd.must_sync
    send(rd.persisted_messages)            # only now: they depend on what was persisted
    apply(rd.committed_entries)
    node.advance(rd)

The contract is enforced: ``ready()`` while a batch is outstanding, or
``advance()`` with anything but the outstanding batch, raises
``InvariantError``. A driver that sends a snapshot reports the outcome with
``report_snapshot`` (and failed deliveries with ``report_unreachable``): until
it does, the leader sends nothing else to that follower. Messages a member addresses to itself (its own vote) are
never handed out; they take effect on ``advance``, i.e. once durable.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from kvstore.errors import InvariantError, NotLeader, ProposalDropped, ProtocolError
from kvstore.raft.config import Config
from kvstore.raft.core import Raft
from kvstore.raft.messages import (
    NONE,
    Entry,
    HardState,
    Message,
    MessageType,
    NodeId,
    ReadState,
    Snapshot,
    SoftState,
    StateType,
    is_local_msg,
    is_response_msg,
)
from kvstore.raft.progress import ProgressState
from kvstore.raft.storage import LogStorage

__all__ = ["ProgressStatus", "RawNode", "Ready", "Status"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Ready:
    """Everything the driver must do, in order, before calling ``advance``."""

    soft_state: SoftState | None = None
    hard_state: HardState | None = None
    read_states: tuple[ReadState, ...] = ()
    entries: tuple[Entry, ...] = ()
    snapshot: Snapshot | None = None
    committed_entries: tuple[Entry, ...] = ()
    messages: tuple[Message, ...] = ()
    persisted_messages: tuple[Message, ...] = ()
    # Whether the entries, hard state and snapshot must be synced to disk
    # before ``persisted_messages`` are sent (a commit-only change need not).
    must_sync: bool = False
    # Messages to ourselves, stepped on advance (not for the driver).
    _self_messages: tuple[Message, ...] = field(default=(), repr=False)


@dataclass(frozen=True, slots=True)
class ProgressStatus:
    match: int
    next: int
    state: ProgressState


@dataclass(frozen=True, slots=True)
class Status:
    """A snapshot of a member's state for logs, tests and status commands."""

    id: NodeId
    term: int
    vote: NodeId
    commit: int
    applied: int
    lead: NodeId
    raft_state: StateType
    last_index: int
    progress: dict[NodeId, ProgressStatus]
    lead_transferee: NodeId


class RawNode:
    """A thread-unsafe Raft member driven by ticks, messages and proposals."""

    def __init__(self, config: Config, storage: LogStorage, rng: random.Random) -> None:
        self.raft = Raft(config, storage, rng)
        self._prev_soft = self.raft.soft_state()
        self._prev_hard = self.raft.hard_state()
        self._outstanding: Ready | None = None

    # -- input ------------------------------------------------------------
    def tick(self) -> None:
        """Advance logical time by one tick."""
        self.raft.tick()

    def campaign(self) -> None:
        """Start an election now (with pre-vote, if configured)."""
        self.raft.step(Message(type=MessageType.HUP, from_=self.raft.id))

    def propose(self, data: bytes) -> None:
        """Propose ``data`` for the log.

        Raises ``ProposalDropped`` when no leader is known or leadership is
        moving, ``NotLeader`` when this follower does not forward proposals.
        """
        self.raft.step(
            Message(
                type=MessageType.PROP,
                from_=self.raft.id,
                entries=(Entry(term=0, index=0, data=data),),
            )
        )

    def propose_batch(self, datas: Sequence[bytes]) -> None:
        """Propose several entries at once, in order: all are appended, or none.

        The same as ``propose`` for each item, in one step of the core.
        Raises as ``propose`` does (and ``InvariantError`` if ``datas`` is empty).
        """
        self.raft.step(
            Message(
                type=MessageType.PROP,
                from_=self.raft.id,
                entries=tuple([Entry(term=0, index=0, data=d) for d in datas]),
            )
        )

    def read_index(self, ctx: bytes) -> None:
        """Ask for a linearizable read; answered by a ``ReadState`` with ``ctx``.

        ``ctx`` must be unique among pending reads. Raises ``ProposalDropped``
        when no leader is known.
        """
        self.raft.step(Message(type=MessageType.READ_INDEX, context=ctx))

    def transfer_leader(self, transferee: NodeId) -> None:
        """Ask the leader to hand leadership to ``transferee``."""
        self.raft.step(Message(type=MessageType.TRANSFER_LEADER, from_=transferee))

    def step(self, m: Message) -> None:
        """Handle a message received from a peer.

        A proposal or read forwarded by a peer that cannot be served here (no
        leader any more) is dropped: its client times out and retries, as
        with any message lost in the network.
        """
        if is_local_msg(m.type):
            raise ProtocolError(f"cannot step local message {m.type.name} from the network")
        if m.from_ not in self.raft.prs.progress and is_response_msg(m.type):
            raise ProtocolError(f"response {m.type.name} from unknown member {m.from_}")
        try:
            self.raft.step(m)
        except (ProposalDropped, NotLeader) as e:
            logger.debug("%d dropped forwarded %s from %d: %s", self.raft.id, m.type.name, m.from_, e)

    def report_unreachable(self, member: NodeId) -> None:
        """The transport failed to deliver to ``member``."""
        self.raft.step(Message(type=MessageType.UNREACHABLE, from_=member))

    def report_snapshot(self, member: NodeId, *, ok: bool) -> None:
        """A snapshot sent to ``member`` was delivered (``ok``) or failed."""
        self.raft.step(Message(type=MessageType.SNAP_STATUS, from_=member, reject=not ok))

    # -- output -----------------------------------------------------------
    def take_messages(self) -> list[Message]:
        """Messages that may leave now, even while a ready batch is outstanding.

        These never depend on unpersisted state (a leader's appends and
        heartbeats, vote requests, forwarded proposals): a driver can send a
        leader's new appends while it is still syncing the previous batch.
        Responses that depend on persistence stay for the next ``ready()``.
        """
        r = self.raft
        r.flush()
        msgs = r.msgs
        r.msgs = []
        return msgs

    def has_ready(self) -> bool:
        """Whether ``ready()`` would hand out anything."""
        r = self.raft
        r.flush()
        if r.soft_state() != self._prev_soft:
            return True
        hs = r.hard_state()
        if hs != self._prev_hard and not hs.is_empty():
            return True
        log = r.raft_log
        return bool(
            log.unstable.snapshot is not None
            or log.unstable.entries
            or r.msgs
            or r.msgs_after_append
            or r.read_states
            or log.has_next_committed_ents()
        )

    def ready(self) -> Ready:
        """Hand out the next batch. Raises if the previous one was not advanced."""
        if self._outstanding is not None:
            raise InvariantError("ready() called again before advance()")
        r = self.raft
        r.flush()
        log = r.raft_log
        soft = r.soft_state()
        hard = r.hard_state()
        entries = tuple(log.unstable.entries)
        own = [m for m in r.msgs_after_append if m.to == r.id]
        after = tuple(m for m in r.msgs_after_append if m.to != r.id)
        rd = Ready(
            soft_state=soft if soft != self._prev_soft else None,
            hard_state=hard if hard != self._prev_hard else None,
            read_states=tuple(r.read_states),
            entries=entries,
            snapshot=log.unstable.snapshot,
            committed_entries=tuple(log.next_committed_ents()),
            messages=tuple(r.msgs),
            persisted_messages=after,
            must_sync=bool(entries)
            or log.unstable.snapshot is not None
            or hard.term != self._prev_hard.term
            or hard.vote != self._prev_hard.vote,
            _self_messages=tuple(own),
        )
        r.msgs = []
        r.msgs_after_append = []
        r.read_states = []
        if rd.soft_state is not None:
            self._prev_soft = soft
        if rd.hard_state is not None:
            self._prev_hard = hard
        self._outstanding = rd
        return rd

    def advance(self, rd: Ready) -> None:
        """Acknowledge ``rd``: persisted, sent and applied."""
        if rd is not self._outstanding:
            raise InvariantError("advance() called with a batch that is not the outstanding one")
        self._outstanding = None
        r = self.raft
        log = r.raft_log
        if rd.snapshot is not None:
            log.stable_snap_to(rd.snapshot.metadata.index)
            # The driver restored the state machine from the snapshot.
            if log.applied < rd.snapshot.metadata.index <= log.committed:
                log.applied_to(rd.snapshot.metadata.index)
        if rd.entries:
            last = rd.entries[-1]
            log.stable_to(last.index, last.term)
        if rd.committed_entries:
            log.applied_to(rd.committed_entries[-1].index)
            r.reduce_uncommitted_size(rd.committed_entries)
        r.on_persisted()
        for m in rd._self_messages:
            r.step(m)

    # -- inspection -------------------------------------------------------
    def status(self) -> Status:
        r = self.raft
        progress: dict[NodeId, ProgressStatus] = {}
        if r.state == StateType.LEADER:
            for member, pr in r.prs:
                progress[member] = ProgressStatus(match=pr.match, next=pr.next, state=pr.state)
        return Status(
            id=r.id,
            term=r.term,
            vote=r.vote,
            commit=r.raft_log.committed,
            applied=r.raft_log.applied,
            lead=r.lead,
            raft_state=r.state,
            last_index=r.raft_log.last_index(),
            progress=progress,
            lead_transferee=r.lead_transferee,
        )

    @property
    def has_outstanding_ready(self) -> bool:
        return self._outstanding is not None

    @property
    def id(self) -> NodeId:
        return self.raft.id

    @property
    def lead(self) -> NodeId:
        return self.raft.lead

    def is_leader(self) -> bool:
        return self.raft.state == StateType.LEADER and self.raft.lead != NONE
