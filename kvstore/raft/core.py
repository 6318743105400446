"""The Raft state machine (Ongaro & Ousterhout, "In Search of an Understandable
Consensus Algorithm", and Ongaro's dissertation), after etcd-io/raft ``raft.go``.

This module owns no I/O and no time. ``step`` takes a message, ``tick``
advances logical time; output accumulates in ``msgs`` (may leave at once) and
``msgs_after_append`` (responses that may leave only once the state they
depend on is durable). ``RawNode`` turns that into ready batches.

The role decides two swappable behaviours, as in etcd: ``_step_role`` is one of
``_step_leader``, ``_step_candidate``, ``_step_follower`` and ``_tick_role`` is
``tick_election`` or ``tick_heartbeat``.

A leader counts its own log toward the commit index only up to what its driver
has made durable (``on_persisted``), so it may send appends to followers while
its own copy is being written (dissertation §10.2.1) without ever committing an
entry that lives on fewer than a majority of disks.
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Callable, Sequence
from typing import Any

from kvstore.errors import InvariantError, NotLeader, ProposalDropped
from kvstore.raft.config import Config
from kvstore.raft.log import RaftLog
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
    vote_resp_type,
)
from kvstore.raft.progress import ProgressState
from kvstore.raft.quorum import VoteResult
from kvstore.raft.read_only import ReadOnly
from kvstore.raft.storage import (
    LogCompactedError,
    LogStorage,
    LogUnavailableError,
    SnapshotTemporarilyUnavailableError,
)
from kvstore.raft.tracker import ProgressTracker

__all__ = ["CAMPAIGN_TRANSFER", "CampaignType", "Raft"]

_VOTE_TYPES = frozenset({MessageType.VOTE, MessageType.VOTE_RESP, MessageType.PRE_VOTE, MessageType.PRE_VOTE_RESP})
_TERMLESS = frozenset({MessageType.PROP, MessageType.READ_INDEX})
# Responses that promise something about our log or vote: they may leave only
# once the state they answer from is durable.
_AFTER_APPEND = frozenset({MessageType.APP_RESP, MessageType.VOTE_RESP, MessageType.PRE_VOTE_RESP})

logger = logging.getLogger(__name__)

MT = MessageType

CAMPAIGN_TRANSFER = b"transfer"
"""Context of a vote request forced by leadership transfer: it bypasses leases."""


class CampaignType(enum.Enum):
    PRE_ELECTION = "pre-election"
    ELECTION = "election"
    TRANSFER = "transfer"


class Raft:
    """One member's Raft state. Not thread-safe; driven through ``RawNode``."""

    def __init__(self, config: Config, storage: LogStorage, rng: random.Random) -> None:
        config.validate()
        self.id: NodeId = config.id
        self.rng = rng
        self.raft_log = RaftLog(storage, config.max_committed_size_per_ready)
        hard_state, conf_state = storage.initial_state()
        self.max_msg_size = config.max_size_per_msg
        self.max_uncommitted_size = config.max_uncommitted_entries_size
        self.prs = ProgressTracker(
            conf_state.voters,
            max_inflight=config.max_inflight_msgs,
            max_inflight_bytes=config.max_inflight_bytes,
        )
        self.state = StateType.FOLLOWER
        self.term = 0
        self.vote: NodeId = NONE
        self.lead: NodeId = NONE
        # Messages that may be sent at once.
        self.msgs: list[Message] = []
        # Messages that may be sent only once the log and hard state as of
        # now are durable (responses, and our own vote for ourselves).
        self.msgs_after_append: list[Message] = []
        self.read_states: list[ReadState] = []
        self.read_only = ReadOnly()
        # Reads that arrived before this leader committed an entry of its own
        # term; the commit index is not known to be current until then (§6.4).
        self.pending_read_index_messages: list[Message] = []
        self.lead_transferee: NodeId = NONE
        # A leader appended entries or advanced its commit index; the appends
        # that carry them go out at the next ``flush``.
        self.bcast_pending = False
        self.uncommitted_size = 0
        self.check_quorum = config.check_quorum
        self.pre_vote = config.pre_vote
        self.disable_proposal_forwarding = config.disable_proposal_forwarding
        self.heartbeat_timeout = config.heartbeat_tick
        self.election_timeout = config.election_tick
        # Ticks since the last election timeout reset (followers, candidates)
        # or since the last quorum check (leaders).
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_election_timeout = self.election_timeout
        self._step_role: Callable[[Message], None] = self._step_follower
        self._tick_role: Callable[[], None] = self.tick_election

        if not hard_state.is_empty():
            self.load_state(hard_state)
        if config.applied > 0:
            self.raft_log.applied_to(config.applied)
        self.become_follower(self.term, NONE)
        logger.debug(
            "raft %d starting: term=%d commit=%d applied=%d last=%d/%d voters=%s",
            self.id, self.term, self.raft_log.committed, self.raft_log.applied,
            self.raft_log.last_index(), self.raft_log.last_term(), self.prs.voters,
        )

    # ------------------------------------------------------------------
    # state
    def soft_state(self) -> SoftState:
        return SoftState(lead=self.lead, raft_state=self.state)

    def hard_state(self) -> HardState:
        return HardState(term=self.term, vote=self.vote, commit=self.raft_log.committed)

    def load_state(self, hs: HardState) -> None:
        if hs.commit < self.raft_log.committed or hs.commit > self.raft_log.last_index():
            raise InvariantError(
                f"{self.id} state.commit {hs.commit} is out of range "
                f"[{self.raft_log.committed}, {self.raft_log.last_index()}]"
            )
        self.raft_log.committed = hs.commit
        self.term = hs.term
        self.vote = hs.vote

    def promotable(self) -> bool:
        """Whether this member may become leader (it is a voter and has no pending snapshot)."""
        return self.id in self.prs.progress and self.raft_log.unstable.snapshot is None

    def past_election_timeout(self) -> bool:
        return self.election_elapsed >= self.randomized_election_timeout

    def reset_randomized_election_timeout(self) -> None:
        self.randomized_election_timeout = self.election_timeout + self.rng.randrange(
            self.election_timeout
        )

    # ------------------------------------------------------------------
    # sending
    def send(self, type: MessageType, to: NodeId, *, term: int | None = None, **fields: Any) -> None:
        """Build a message from us and queue it.

        Vote messages carry an explicit ``term``; every other message is
        stamped with ours, except forwarded proposals and reads, which travel
        without a term (they are local to whoever leads when they arrive).
        """
        if type in _VOTE_TYPES:
            if not term:
                raise InvariantError(f"term should be set when sending {type.name}")
        elif term is not None:
            raise InvariantError(f"term should not be set when sending {type.name}")
        else:
            term = 0 if type in _TERMLESS else self.term
        msg = Message(type, to, self.id, term, **fields)
        if type in _AFTER_APPEND:
            self.msgs_after_append.append(msg)
        else:
            self.msgs.append(msg)

    def send_append(self, to: NodeId) -> None:
        self.maybe_send_append(to, send_if_empty=True)

    def maybe_send_append(self, to: NodeId, *, send_if_empty: bool) -> bool:
        """Send the entries ``to`` lacks (or a snapshot); False if nothing was sent."""
        pr = self.prs.progress[to]
        if pr.is_paused():
            return False
        prev_index = pr.next - 1
        max_size = self.max_msg_size
        if pr.state == ProgressState.REPLICATE and pr.inflights.max_bytes:
            # Stay within the follower's in-flight byte budget (one entry at least).
            max_size = max(1, min(max_size, pr.inflights.max_bytes - pr.inflights.bytes))
        try:
            prev_term = self.raft_log.term(prev_index)
            if pr.state == ProgressState.REPLICATE and pr.inflights.full():
                # A full window sends only an empty append (prompted by a
                # heartbeat response): its answer clears the window even if
                # every append in it was lost.
                ents = []
            else:
                ents = self.raft_log.entries(pr.next, max_size)
        except (LogCompactedError, LogUnavailableError):
            return self._maybe_send_snapshot(to)
        if not ents and not send_if_empty:
            return False
        nbytes = sum(e.size() for e in ents)
        self.send(MT.APP, to, index=prev_index, log_term=prev_term, entries=tuple(ents), commit=self.raft_log.committed)
        pr.update_on_entries_send(len(ents), nbytes)
        return True

    def _maybe_send_snapshot(self, to: NodeId) -> bool:
        pr = self.prs.progress[to]
        if not pr.recent_active:
            logger.debug("%d: not sending a snapshot to inactive %d", self.id, to)
            return False
        try:
            snapshot = self.raft_log.snapshot()
        except SnapshotTemporarilyUnavailableError:
            return False
        if snapshot.is_empty():
            raise InvariantError("need a non-empty snapshot to catch up a follower")
        logger.debug(
            "%d: sending snapshot at %d to %d (%s)", self.id, snapshot.metadata.index, to, pr
        )
        pr.become_snapshot(snapshot.metadata.index)
        self.send(MT.SNAP, to, snapshot=snapshot)
        return True

    def send_heartbeat(self, to: NodeId, ctx: bytes) -> None:
        # Never tell a follower to commit past what it is known to match:
        # it may not have those entries yet.
        commit = min(self.prs.progress[to].match, self.raft_log.committed)
        self.send(MT.HEARTBEAT, to, commit=commit, context=ctx)

    def bcast_append(self) -> None:
        for member in self.prs.voters:
            if member != self.id:
                self.send_append(member)

    def bcast_heartbeat(self) -> None:
        self.bcast_heartbeat_with_ctx(self.read_only.last_pending_request_ctx())

    def bcast_heartbeat_with_ctx(self, ctx: bytes) -> None:
        for member in self.prs.voters:
            if member != self.id:
                self.send_heartbeat(member, ctx)

    # ------------------------------------------------------------------
    # role changes
    def reset(self, term: int) -> None:
        if self.term != term:
            self.term = term
            self.vote = NONE
        self.lead = NONE
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.reset_randomized_election_timeout()
        self.abort_leader_transfer()
        self.prs.reset_votes()
        last = self.raft_log.last_index()
        for member in self.prs.voters:
            match = self.raft_log.stable_last_index() if member == self.id else 0
            self.prs.progress[member] = self.prs.new_progress(next_index=last + 1, match=match)
        self.read_only = ReadOnly()
        self.pending_read_index_messages = []
        self.uncommitted_size = 0

    def become_follower(self, term: int, lead: NodeId) -> None:
        self._step_role = self._step_follower
        self.reset(term)
        self._tick_role = self.tick_election
        self.lead = lead
        self.state = StateType.FOLLOWER
        logger.debug("%d became follower at term %d (leader %d)", self.id, self.term, lead)

    def become_candidate(self) -> None:
        if self.state == StateType.LEADER:
            raise InvariantError("invalid transition [leader -> candidate]")
        self._step_role = self._step_candidate
        self.reset(self.term + 1)
        self._tick_role = self.tick_election
        self.vote = self.id
        self.state = StateType.CANDIDATE
        logger.debug("%d became candidate at term %d", self.id, self.term)

    def become_pre_candidate(self) -> None:
        if self.state == StateType.LEADER:
            raise InvariantError("invalid transition [leader -> pre-candidate]")
        # A pre-candidate changes neither term nor vote (dissertation §9.6).
        self._step_role = self._step_candidate
        self.prs.reset_votes()
        self._tick_role = self.tick_election
        self.lead = NONE
        self.state = StateType.PRE_CANDIDATE
        logger.debug("%d became pre-candidate at term %d", self.id, self.term)

    def become_leader(self) -> None:
        if self.state == StateType.FOLLOWER:
            raise InvariantError("invalid transition [follower -> leader]")
        self._step_role = self._step_leader
        self.reset(self.term)
        self._tick_role = self.tick_heartbeat
        self.lead = self.id
        self.state = StateType.LEADER
        own = self.prs.progress[self.id]
        own.become_replicate()
        own.match = self.raft_log.stable_last_index()
        own.next = self.raft_log.last_index() + 1
        own.recent_active = True
        # An empty entry of the new term lets the leader commit, and so learn
        # the commit index, without waiting for a client (§5.4.2, §8).
        if not self.append_entry([Entry(term=0, index=0)]):
            raise InvariantError("empty entry was dropped")
        logger.debug("%d became leader at term %d", self.id, self.term)

    # ------------------------------------------------------------------
    # time
    def tick(self) -> None:
        self._tick_role()

    def tick_election(self) -> None:
        self.election_elapsed += 1
        if self.promotable() and self.past_election_timeout():
            self.election_elapsed = 0
            self.step(Message(type=MT.HUP, from_=self.id))

    def tick_heartbeat(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.election_timeout:
            self.election_elapsed = 0
            if self.check_quorum:
                self.step(Message(type=MT.CHECK_QUORUM, from_=self.id))
            # A transfer that did not finish within an election timeout is abandoned.
            if self.state == StateType.LEADER and self.lead_transferee != NONE:
                self.abort_leader_transfer()
        if self.state != StateType.LEADER:
            return
        if self.heartbeat_elapsed >= self.heartbeat_timeout:
            self.heartbeat_elapsed = 0
            self.step(Message(type=MT.BEAT, from_=self.id))

    # ------------------------------------------------------------------
    # elections
    def hup(self, campaign_type: CampaignType) -> None:
        if self.state == StateType.LEADER:
            return
        if not self.promotable():
            logger.debug("%d is unpromotable and cannot campaign", self.id)
            return
        self.campaign(campaign_type)

    def campaign(self, campaign_type: CampaignType) -> None:
        if campaign_type == CampaignType.PRE_ELECTION:
            self.become_pre_candidate()
            vote_msg = MT.PRE_VOTE
            # Pre-vote asks for the term we would campaign in, without taking it.
            term = self.term + 1
        else:
            self.become_candidate()
            vote_msg = MT.VOTE
            term = self.term
        ctx = CAMPAIGN_TRANSFER if campaign_type == CampaignType.TRANSFER else b""
        last_index = self.raft_log.last_index()
        last_term = self.raft_log.last_term()
        for member in self.prs.voters:
            if member == self.id:
                if vote_msg == MT.VOTE:
                    # Our vote for ourselves counts once it is durable.
                    self.send(MT.VOTE_RESP, self.id, term=term)
                else:
                    self._poll_and_decide(self.id, MT.PRE_VOTE_RESP, True)
                    if self.state != StateType.PRE_CANDIDATE:
                        return
                continue
            self.send(vote_msg, member, term=term, index=last_index, log_term=last_term, context=ctx)

    def poll(self, member: NodeId, t: MessageType, granted: bool) -> VoteResult:
        self.prs.record_vote(member, granted)
        return self.prs.tally_votes()[2]

    def _poll_and_decide(self, member: NodeId, t: MessageType, granted: bool) -> None:
        res = self.poll(member, t, granted)
        if res == VoteResult.WON:
            if self.state == StateType.PRE_CANDIDATE:
                self.campaign(CampaignType.ELECTION)
            else:
                self.become_leader()
                self.bcast_append()
        elif res == VoteResult.LOST:
            # A pre-candidate that lost stays at its term; a candidate keeps
            # the term it started.
            self.become_follower(self.term, NONE)

    def can_grant_vote(self, m: Message) -> bool:
        """Whether we may vote for ``m.from_`` in ``m.term`` (Raft §5.2, §5.4.1)."""
        can_vote = (
            # A repeated request from the member we already voted for.
            self.vote == m.from_
            # We have not voted and know of no leader in this term.
            or (self.vote == NONE and self.lead == NONE)
            # A pre-vote for a future term.
            or (m.type == MT.PRE_VOTE and m.term > self.term)
        )
        return can_vote and self.raft_log.is_up_to_date(m.index, m.log_term)

    # ------------------------------------------------------------------
    # the entry point
    def step(self, m: Message) -> None:
        """Handle one message: local (term 0) or from a peer."""
        # Term 0: a local message (or a forwarded proposal/read), term-agnostic.
        if m.term > self.term:
            if not self._handle_higher_term(m):
                return
        elif 0 < m.term < self.term:
            self._handle_lower_term(m)
            return

        t = m.type
        if t == MT.HUP:
            self.hup(CampaignType.PRE_ELECTION if self.pre_vote else CampaignType.ELECTION)
        elif t == MT.VOTE or t == MT.PRE_VOTE:
            if self.can_grant_vote(m):
                # A granted pre-vote answers with the future term it asked
                # about, so the pre-candidate does not take it as stale.
                self.send(vote_resp_type(t), m.from_, term=m.term)
                if t == MT.VOTE:
                    self.election_elapsed = 0
                    self.vote = m.from_
            else:
                self.send(vote_resp_type(t), m.from_, term=self.term, reject=True)
        else:
            self._step_role(m)

    def _handle_higher_term(self, m: Message) -> bool:
        """React to a message from a later term; False if it must be ignored."""
        if m.type in (MT.VOTE, MT.PRE_VOTE):
            force = m.context == CAMPAIGN_TRANSFER
            in_lease = (
                self.check_quorum
                and self.lead != NONE
                and self.election_elapsed < self.election_timeout
            )
            if not force and in_lease:
                # We heard from a leader within the minimum election timeout:
                # this candidate is disruptive (dissertation §4.2.3).
                logger.debug(
                    "%d ignoring %s from %d at term %d: lease not expired",
                    self.id, m.type.name, m.from_, m.term,
                )
                return False
        if m.type == MT.PRE_VOTE:
            # Never change term in answer to a pre-vote.
            return True
        if m.type == MT.PRE_VOTE_RESP and not m.reject:
            # A granted pre-vote carries the future term; we take that term
            # only when we win the pre-election and campaign.
            return True
        if m.type in (MT.APP, MT.HEARTBEAT, MT.SNAP):
            self.become_follower(m.term, m.from_)
        else:
            self.become_follower(m.term, NONE)
        return True

    def _handle_lower_term(self, m: Message) -> None:
        if (self.check_quorum or self.pre_vote) and m.type in (MT.HEARTBEAT, MT.APP):
            # A stale leader cut off from the cluster: tell it our term so it
            # steps down. Without this, check-quorum or pre-vote could leave
            # it unable to learn of the new term (etcd-io/raft#3 discussion).
            self.send(MT.APP_RESP, m.from_)
        elif m.type == MT.PRE_VOTE:
            self.send(MT.PRE_VOTE_RESP, m.from_, term=self.term, reject=True)
        # Anything else from an older term is ignored.

    # ------------------------------------------------------------------
    # leader
    def _step_leader(self, m: Message) -> None:
        t = m.type
        if t == MT.BEAT:
            self.bcast_heartbeat()
            return
        if t == MT.CHECK_QUORUM:
            if not self.prs.quorum_active():
                logger.warning("%d stepped down to follower: no quorum is active", self.id)
                self.become_follower(self.term, NONE)
            for member, member_pr in self.prs:
                member_pr.recent_active = member == self.id
            return
        if t == MT.PROP:
            if not m.entries:
                raise InvariantError(f"{self.id} stepped an empty proposal")
            if self.lead_transferee != NONE:
                raise ProposalDropped(
                    f"leadership is moving from {self.id} to {self.lead_transferee}"
                )
            if not self.append_entry(m.entries):
                raise ProposalDropped("too many uncommitted entries")
            # Proposals arriving within one ready cycle go out in one append.
            self.bcast_pending = True
            return
        if t == MT.READ_INDEX:
            if len(self.prs.voters) == 1:
                self.response_to_read_index_req(m, self.raft_log.committed)
            elif not self.committed_entry_in_current_term():
                self.pending_read_index_messages.append(m)
            else:
                self.send_read_index_heartbeats(m)
            return

        pr = self.prs.progress.get(m.from_)
        if pr is None:
            logger.debug("%d: no progress for %d", self.id, m.from_)
            return
        if t == MT.APP_RESP:
            self.handle_append_response(m)
        elif t == MT.HEARTBEAT_RESP:
            pr.recent_active = True
            pr.msg_app_flow_paused = False
            if pr.match < self.raft_log.last_index() or pr.state == ProgressState.PROBE:
                self.send_append(m.from_)
            if not m.context:
                return
            acks = self.read_only.recv_ack(m.from_, m.context)
            if acks is None or self.prs.vote_result_of(acks) != VoteResult.WON:
                return
            for rs in self.read_only.advance(m.context):
                self.response_to_read_index_req(rs.req, rs.index)
        elif t == MT.SNAP_STATUS:
            if pr.state != ProgressState.SNAPSHOT:
                return
            if not m.reject:
                pr.become_probe()
            else:
                pr.pending_snapshot = 0
                pr.become_probe()
            # Wait for the follower's answer (or a heartbeat) before the next append.
            pr.msg_app_flow_paused = True
        elif t == MT.UNREACHABLE:
            if pr.state == ProgressState.REPLICATE:
                pr.become_probe()
        elif t == MT.TRANSFER_LEADER:
            self.handle_transfer_leader(m.from_)

    def handle_append_response(self, m: Message) -> None:
        pr = self.prs.progress[m.from_]
        pr.recent_active = True
        if m.reject:
            next_probe = m.reject_hint
            if m.log_term > 0:
                # Skip every entry of a term the follower does not have
                # (dissertation §5.3 optimization, etcd's findConflictByTerm).
                next_probe, _ = self.raft_log.find_conflict_by_term(m.reject_hint, m.log_term)
            if pr.maybe_decr_to(m.index, next_probe):
                if pr.state == ProgressState.REPLICATE:
                    pr.become_probe()
                self.send_append(m.from_)
            return
        was_paused = pr.is_paused()
        if not pr.maybe_update(m.index) and not (
            pr.match == m.index and pr.state == ProgressState.PROBE
        ):
            return
        if pr.state == ProgressState.PROBE:
            pr.become_replicate()
        elif pr.state == ProgressState.SNAPSHOT and pr.match + 1 >= self.raft_log.first_index():
            pr.become_probe()
            pr.become_replicate()
        elif pr.state == ProgressState.REPLICATE:
            pr.inflights.free_le(m.index)
        if self.maybe_commit():
            self.on_commit()
            self.bcast_pending = True
        elif was_paused and not self.bcast_pending:
            self.send_append(m.from_)
        # Stream further appends while the window allows.
        while self.maybe_send_append(m.from_, send_if_empty=False):
            pass
        if m.from_ == self.lead_transferee and pr.match == self.raft_log.last_index():
            logger.info("%d sends timeout-now to %d: its log is caught up", self.id, m.from_)
            self.send_timeout_now(m.from_)

    def handle_transfer_leader(self, transferee: NodeId) -> None:
        if transferee == self.id:
            return
        if self.lead_transferee != NONE:
            if self.lead_transferee == transferee:
                return
            self.abort_leader_transfer()
        if transferee not in self.prs.progress:
            logger.debug("%d: cannot transfer leadership to non-voter %d", self.id, transferee)
            return
        # The transfer must finish within one election timeout.
        self.election_elapsed = 0
        self.lead_transferee = transferee
        if self.prs.progress[transferee].match == self.raft_log.last_index():
            self.send_timeout_now(transferee)
        else:
            self.send_append(transferee)

    def send_timeout_now(self, to: NodeId) -> None:
        self.send(MT.TIMEOUT_NOW, to)

    def abort_leader_transfer(self) -> None:
        self.lead_transferee = NONE

    def append_entry(self, entries: Sequence[Entry]) -> bool:
        """Append proposals as new entries of this term; False if over the uncommitted limit."""
        last = self.raft_log.last_index()
        term = self.term
        ents = [Entry(term=term, index=last + 1 + i, data=e.data) for i, e in enumerate(entries)]
        if not self.increase_uncommitted_size(ents):
            return False
        self.raft_log.append(ents)
        return True

    def maybe_commit(self) -> bool:
        """Advance the commit index to what a quorum holds, if it is of this term (§5.4.2)."""
        return self.raft_log.maybe_commit(self.prs.committed(), self.term)

    def on_commit(self) -> None:
        """The leader's commit index moved: release reads that waited for it."""
        if self.pending_read_index_messages and self.committed_entry_in_current_term():
            pending = self.pending_read_index_messages
            self.pending_read_index_messages = []
            for m in pending:
                self.send_read_index_heartbeats(m)

    def on_persisted(self) -> None:
        """The driver made the log durable up to its stable index.

        The leader counts its own copy toward the quorum only from here on.
        """
        if self.state != StateType.LEADER:
            return
        own = self.prs.progress[self.id]
        if own.maybe_update(self.raft_log.stable_last_index()) and self.maybe_commit():
            self.on_commit()
            self.bcast_pending = True

    def flush(self) -> None:
        """Send the appends deferred during this ready cycle (new entries, a new commit)."""
        if self.bcast_pending:
            self.bcast_pending = False
            if self.state == StateType.LEADER:
                self.bcast_append()

    def committed_entry_in_current_term(self) -> bool:
        return self.raft_log.zero_term_on_err(self.raft_log.committed) == self.term

    def send_read_index_heartbeats(self, m: Message) -> None:
        """Record read ``m`` at the current commit index and confirm leadership (§6.4)."""
        self.read_only.add_request(self.raft_log.committed, m)
        self.read_only.recv_ack(self.id, m.context)
        self.bcast_heartbeat_with_ctx(m.context)

    def response_to_read_index_req(self, req: Message, read_index: int) -> None:
        if req.from_ == NONE or req.from_ == self.id:
            self.read_states.append(ReadState(index=read_index, request_ctx=req.context))
        else:
            self.send(MT.READ_INDEX_RESP, req.from_, index=read_index, context=req.context)

    def increase_uncommitted_size(self, entries: Sequence[Entry]) -> bool:
        size = sum(len(e.data) for e in entries)
        if (
            self.max_uncommitted_size > 0
            and self.uncommitted_size > 0
            and size > 0
            and self.uncommitted_size + size > self.max_uncommitted_size
        ):
            return False
        self.uncommitted_size += size
        return True

    def reduce_uncommitted_size(self, entries: Sequence[Entry]) -> None:
        if self.uncommitted_size == 0:
            return
        size = sum(len(e.data) for e in entries)
        self.uncommitted_size = max(0, self.uncommitted_size - size)

    # ------------------------------------------------------------------
    # candidate
    def _step_candidate(self, m: Message) -> None:
        t = m.type
        my_resp = MT.PRE_VOTE_RESP if self.state == StateType.PRE_CANDIDATE else MT.VOTE_RESP
        if t == MT.PROP or t == MT.READ_INDEX:
            raise ProposalDropped(f"{self.id} is campaigning at term {self.term}: no leader")
        if t == MT.APP:
            self.become_follower(m.term, m.from_)
            self.handle_append_entries(m)
        elif t == MT.HEARTBEAT:
            self.become_follower(m.term, m.from_)
            self.handle_heartbeat(m)
        elif t == MT.SNAP:
            self.become_follower(m.term, m.from_)
            self.handle_snapshot(m)
        elif t == my_resp:
            self._poll_and_decide(m.from_, t, not m.reject)

    # ------------------------------------------------------------------
    # follower
    def _step_follower(self, m: Message) -> None:
        t = m.type
        if t == MT.PROP:
            if self.lead == NONE:
                raise ProposalDropped(f"{self.id} knows no leader at term {self.term}")
            if self.disable_proposal_forwarding:
                raise NotLeader(self.lead)
            self.send(MT.PROP, self.lead, entries=m.entries)
        elif t == MT.APP:
            self.election_elapsed = 0
            self.lead = m.from_
            self.handle_append_entries(m)
        elif t == MT.HEARTBEAT:
            self.election_elapsed = 0
            self.lead = m.from_
            self.handle_heartbeat(m)
        elif t == MT.SNAP:
            self.election_elapsed = 0
            self.lead = m.from_
            self.handle_snapshot(m)
        elif t == MT.TRANSFER_LEADER:
            if self.lead == NONE:
                logger.debug("%d: no leader to transfer leadership", self.id)
                return
            # Forwarded as is: ``from_`` names the transferee, not us.
            self.msgs.append(Message(MT.TRANSFER_LEADER, to=self.lead, from_=m.from_))
        elif t == MT.TIMEOUT_NOW:
            logger.info("%d campaigns at once: leadership transfer", self.id)
            # Leadership transfer skips pre-vote: the leader asked for it.
            self.hup(CampaignType.TRANSFER)
        elif t == MT.READ_INDEX:
            if self.lead == NONE:
                raise ProposalDropped(f"{self.id} knows no leader at term {self.term}")
            self.send(MT.READ_INDEX, self.lead, context=m.context)
        elif t == MT.READ_INDEX_RESP:
            self.read_states.append(ReadState(index=m.index, request_ctx=m.context))

    def handle_append_entries(self, m: Message) -> None:
        if m.index < self.raft_log.committed:
            self.send(MT.APP_RESP, m.from_, index=self.raft_log.committed)
            return
        last_new = self.raft_log.maybe_append(m.index, m.log_term, m.commit, m.entries)
        if last_new is not None:
            self.send(MT.APP_RESP, m.from_, index=last_new)
            return
        # Reject, with a hint to skip back over the conflicting term (§5.3).
        hint_index = min(m.index, self.raft_log.last_index())
        hint_index, hint_term = self.raft_log.find_conflict_by_term(hint_index, m.log_term)
        self.send(MT.APP_RESP, m.from_, index=m.index, reject=True, reject_hint=hint_index, log_term=hint_term)

    def handle_heartbeat(self, m: Message) -> None:
        self.raft_log.commit_to(m.commit)
        self.send(MT.HEARTBEAT_RESP, m.from_, context=m.context)

    def handle_snapshot(self, m: Message) -> None:
        if m.snapshot is None:
            raise InvariantError("snapshot message without a snapshot")
        if self.restore(m.snapshot):
            self.send(MT.APP_RESP, m.from_, index=self.raft_log.last_index())
        else:
            self.send(MT.APP_RESP, m.from_, index=self.raft_log.committed)

    def restore(self, snapshot: Snapshot) -> bool:
        """Install a leader's snapshot; False if our log already covers it."""
        meta = snapshot.metadata
        if meta.index <= self.raft_log.committed:
            return False
        if self.state != StateType.FOLLOWER:
            raise InvariantError(f"{self.id} asked to restore a snapshot as {self.state.name}")
        if self.raft_log.match_term(meta.index, meta.term):
            # We have the snapshot's last entry: just fast-forward the commit.
            self.raft_log.commit_to(meta.index)
            return False
        logger.info("%d restores snapshot at %d/%d", self.id, meta.index, meta.term)
        self.raft_log.restore(snapshot)
        voters = meta.conf_state.voters or self.prs.voters
        self.prs = ProgressTracker(
            voters,
            max_inflight=self.prs.max_inflight,
            max_inflight_bytes=self.prs.max_inflight_bytes,
        )
        last = self.raft_log.last_index()
        for _, pr in self.prs:
            pr.next = last + 1
        return True
