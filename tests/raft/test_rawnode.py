"""RawNode: the ready/advance contract, enforced, and durability before counting."""

from __future__ import annotations

import random

import pytest

from kvstore.errors import InvariantError, NotLeader, ProposalDropped, ProtocolError
from kvstore.raft.config import Config
from kvstore.raft.messages import (
    ConfState,
    Entry,
    Message,
    MessageType,
    NodeId,
    StateType,
)
from kvstore.raft.progress import ProgressState
from kvstore.raft.rawnode import RawNode, Ready
from kvstore.raft.storage import MemoryLogStorage

MT = MessageType


class Cluster:
    """A few RawNodes over MemoryLogStorage, driven by hand or until quiet."""

    def __init__(self, n: int, **cfg: bool) -> None:
        voters = ConfState(voters=tuple(NodeId(i) for i in range(1, n + 1)))
        self.storage = {NodeId(i): MemoryLogStorage(voters) for i in range(1, n + 1)}
        self.nodes = {
            nid: RawNode(
                Config(id=nid, pre_vote=False, check_quorum=False, **cfg),
                st,
                random.Random(nid),
            )
            for nid, st in self.storage.items()
        }

    def __getitem__(self, nid: int) -> RawNode:
        return self.nodes[NodeId(nid)]

    def persist(self, nid: int, rd: Ready) -> None:
        st = self.storage[NodeId(nid)]
        if rd.snapshot is not None:
            st.apply_snapshot(rd.snapshot)
        st.append(rd.entries)
        if rd.hard_state is not None:
            st.set_hard_state(rd.hard_state)

    def handle(self, nid: int) -> list[Message]:
        """Process one ready of ``nid`` completely; return what it sends."""
        rd = self[nid].ready()
        self.persist(nid, rd)
        self[nid].advance(rd)
        return [*rd.messages, *rd.persisted_messages]

    def settle(self) -> None:
        while any(n.has_ready() for n in self.nodes.values()):
            msgs = [m for nid in self.nodes if self.nodes[nid].has_ready() for m in self.handle(nid)]
            for m in msgs:
                self.nodes[m.to].step(m)

    def elect(self, nid: int) -> None:
        self[nid].campaign()
        self.settle()
        if not self[nid].is_leader():
            raise AssertionError(f"{nid} did not win")


def single() -> Cluster:
    c = Cluster(1)
    c.elect(1)
    return c


# -- the contract ------------------------------------------------------------


def test_second_ready_without_advance_raises() -> None:
    c = Cluster(1)
    c[1].campaign()
    rd = c[1].ready()
    assert c[1].has_outstanding_ready
    with pytest.raises(InvariantError):
        c[1].ready()
    c[1].advance(rd)
    assert not c[1].has_outstanding_ready
    c[1].ready()  # allowed again


def test_advance_with_another_batch_raises() -> None:
    c = Cluster(1)
    c[1].campaign()
    rd = c[1].ready()
    with pytest.raises(InvariantError):
        c[1].advance(Ready())
    with pytest.raises(InvariantError):
        c[1].advance(Ready(hard_state=rd.hard_state, entries=rd.entries))
    c[1].advance(rd)
    with pytest.raises(InvariantError):
        c[1].advance(rd)  # already acknowledged


@pytest.mark.parametrize(
    "t", [MT.HUP, MT.BEAT, MT.UNREACHABLE, MT.SNAP_STATUS, MT.CHECK_QUORUM]
)
def test_stepping_a_local_message_raises(t: MessageType) -> None:
    c = Cluster(3)
    with pytest.raises(ProtocolError):
        c[1].step(Message(type=t, to=NodeId(1), from_=NodeId(2), term=1))


def test_a_response_from_a_stranger_raises() -> None:
    c = Cluster(3)
    with pytest.raises(ProtocolError):
        c[1].step(Message(type=MT.APP_RESP, to=NodeId(1), from_=NodeId(9), term=1, index=1))


def test_nothing_ready_when_idle() -> None:
    c = Cluster(3)
    assert not c[1].has_ready()
    c.elect(1)
    assert not any(n.has_ready() for n in c.nodes.values())


# -- durability before counting -------------------------------------------------


def test_a_self_vote_counts_only_after_advance() -> None:
    c = Cluster(3)
    c[1].campaign()
    rd = c[1].ready()
    assert rd.hard_state is not None and rd.hard_state.vote == 1 and rd.must_sync
    # The self vote is neither sent nor counted yet.
    sent = [*rd.messages, *rd.persisted_messages]
    assert sorted((m.type, m.to) for m in sent) == [(MT.VOTE, 2), (MT.VOTE, 3)]
    c[1].step(Message(type=MT.VOTE_RESP, to=NodeId(1), from_=NodeId(2), term=1))
    assert c[1].status().raft_state == StateType.CANDIDATE
    c.persist(1, rd)
    c[1].advance(rd)
    assert c[1].status().raft_state == StateType.LEADER


def test_a_single_member_wins_only_after_advance() -> None:
    c = Cluster(1)
    c[1].campaign()
    rd = c[1].ready()
    assert c[1].status().raft_state == StateType.CANDIDATE
    c.persist(1, rd)
    c[1].advance(rd)
    assert c[1].is_leader()


def test_a_single_leader_commits_its_entry_only_after_persisting_it() -> None:
    c = single()
    commit = c[1].status().commit
    c[1].propose(b"x")
    rd = c[1].ready()
    assert [e.data for e in rd.entries] == [b"x"]
    assert rd.committed_entries == ()
    assert c[1].status().commit == commit
    c.persist(1, rd)
    c[1].advance(rd)
    assert c[1].status().commit == commit + 1
    rd = c[1].ready()
    assert [e.data for e in rd.committed_entries] == [b"x"]
    assert rd.hard_state is not None and rd.hard_state.commit == commit + 1
    assert not rd.must_sync  # only the commit index moved
    c[1].advance(rd)


def test_a_leader_counts_its_own_copy_only_once_durable() -> None:
    c = Cluster(3)
    c.elect(1)
    commit = c[1].status().commit
    c[1].propose(b"x")
    rd = c[1].ready()
    app = next(m for m in rd.messages if m.to == 2)
    # 2 persists and acknowledges while 1's own write is still under way:
    # one durable copy of three is not a majority.
    c[2].step(app)
    for m in c.handle(2):
        c[1].step(m)
    assert c[1].status().commit == commit
    c.persist(1, rd)
    c[1].advance(rd)
    assert c[1].status().commit == commit + 1


def test_responses_wait_for_persistence_requests_do_not() -> None:
    c = Cluster(3)
    c[1].campaign()
    rd = c[1].ready()
    assert {m.type for m in rd.messages} == {MT.VOTE} and rd.persisted_messages == ()
    c.persist(1, rd)
    c[1].advance(rd)
    c[2].step(next(m for m in rd.messages if m.to == 2))
    rd2 = c[2].ready()
    assert rd2.messages == ()
    assert [m.type for m in rd2.persisted_messages] == [MT.VOTE_RESP]
    assert rd2.must_sync  # term and vote changed


# -- proposals -------------------------------------------------------------------


def test_proposal_without_a_leader_is_dropped() -> None:
    c = Cluster(3)
    with pytest.raises(ProposalDropped):
        c[2].propose(b"x")
    with pytest.raises(ProposalDropped):
        c[2].read_index(b"r")


def test_follower_forwards_or_refuses_with_a_hint() -> None:
    c = Cluster(3)
    c.elect(1)
    c[2].propose(b"x")
    rd = c[2].ready()
    assert [(m.type, m.to, m.entries[0].data) for m in rd.messages] == [(MT.PROP, 1, b"x")]
    c[2].advance(rd)

    d = Cluster(3, disable_proposal_forwarding=True)
    d.elect(1)
    with pytest.raises(NotLeader) as info:
        d[3].propose(b"x")
    assert info.value.leader_hint == 1


def test_a_forwarded_proposal_with_nowhere_to_go_is_dropped_quietly() -> None:
    c = Cluster(3)
    prop = Message(
        type=MT.PROP, to=NodeId(2), from_=NodeId(3), entries=(Entry(term=0, index=0, data=b"x"),)
    )
    c[2].step(prop)  # 2 knows no leader: the message is lost, not an error
    assert not c[2].has_ready()


def test_empty_entry_on_election_and_status() -> None:
    c = Cluster(3)
    c.elect(2)
    st = c[2].status()
    assert (st.raft_state, st.lead, st.term, st.commit, st.last_index) == (
        StateType.LEADER,
        2,
        1,
        1,
        1,
    )
    assert c.storage[NodeId(2)].entries(1, 2, 100) == [Entry(term=1, index=1)]
    assert {m: p.state for m, p in st.progress.items()} == {
        1: ProgressState.REPLICATE,
        2: ProgressState.REPLICATE,
        3: ProgressState.REPLICATE,
    }
    assert c[1].status().progress == {}  # only a leader tracks progress


def test_report_unreachable_moves_a_follower_back_to_probe() -> None:
    c = Cluster(3)
    c.elect(1)
    c[1].report_unreachable(NodeId(3))
    assert c[1].status().progress[NodeId(3)].state == ProgressState.PROBE
    assert c[1].status().progress[NodeId(2)].state == ProgressState.REPLICATE
