"""The safety checker flags each broken property (and stays quiet on a correct run)."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from kvstore.raft.config import Config
from kvstore.raft.messages import (
    ConfState,
    Entry,
    HardState,
    Message,
    MessageType,
    NodeId,
    StateType,
)
from kvstore.raft.rawnode import RawNode, Ready
from kvstore.raft.storage import MemoryLogStorage
from kvstore.testing.checker import SafetyChecker, SafetyViolation
from kvstore.testing.statemachine import Command, MachineKind, StateMachine, encode_command


class Member:
    """A RawNode over its storage, driven by hand and watched by a checker."""

    def __init__(self, checker: SafetyChecker, member: int, voters: Sequence[int], *,
                 hs: HardState | None = None, entries: Sequence[Entry] = ()) -> None:
        self.id = NodeId(member)
        self.checker = checker
        self.storage = MemoryLogStorage(ConfState(voters=tuple(NodeId(v) for v in voters)))
        self.storage.append(list(entries))
        if hs is not None:
            self.storage.set_hard_state(hs)
        self.node = RawNode(Config(id=self.id), self.storage, random.Random(member))
        checker.on_start(self.id, self.node, self.storage)

    def drive(self) -> None:
        while self.node.has_ready():
            rd = self.node.ready()
            self.checker.on_ready(self.id, self.node, rd)
            self.storage.append(rd.entries)
            if rd.hard_state is not None:
                self.storage.set_hard_state(rd.hard_state)
            self.checker.on_synced(self.id, self.storage)
            self.node.advance(rd)
            self.checker.after_event(self.id, self.node)

    def lead_alone(self) -> None:
        self.node.campaign()
        self.drive()
        if self.node.raft.state != StateType.LEADER:
            raise AssertionError("a one-member cluster elects itself")

    def commit(self, data: bytes) -> None:
        self.node.propose(data)
        self.drive()


def violation(kind: str) -> pytest.RaisesExc[SafetyViolation]:
    return pytest.raises(SafetyViolation, match=f"^{kind} at tick")


def test_a_correct_member_raises_nothing() -> None:
    checker = SafetyChecker()
    a = Member(checker, 1, [1])
    a.lead_alone()
    for i in range(5):
        a.commit(b"x%d" % i)
    assert a.node.raft.raft_log.committed == 6
    assert checker.leaders == {1: 1}


def test_two_leaders_in_one_term() -> None:
    checker = SafetyChecker()
    Member(checker, 1, [1]).lead_alone()
    with violation("election-safety"):
        Member(checker, 2, [2]).lead_alone()


def test_leader_missing_committed_entries() -> None:
    checker = SafetyChecker()
    a = Member(checker, 1, [1])
    a.lead_alone()
    a.commit(b"x")
    b = Member(checker, 2, [2], hs=HardState(term=5))
    with violation("leader-completeness"):
        b.lead_alone()


def test_leader_with_another_entry_at_a_committed_index() -> None:
    checker = SafetyChecker()
    a = Member(checker, 1, [1])
    a.lead_alone()
    a.commit(b"x")
    b = Member(checker, 2, [2], hs=HardState(term=5),
               entries=[Entry(1, 1), Entry(4, 2, b"y")])
    with violation("leader-completeness"):
        b.lead_alone()


def test_two_members_committing_different_terms_at_one_index() -> None:
    checker = SafetyChecker()
    a = Member(checker, 1, [1])
    a.lead_alone()
    c = Member(checker, 3, [1, 3], hs=HardState(term=2), entries=[Entry(2, 1, b"other")])
    c.node.step(Message(MessageType.HEARTBEAT, to=c.id, from_=NodeId(1), term=2, commit=1))
    with violation("commit-safety"):
        checker.after_event(c.id, c.node)


def test_term_and_commit_going_backwards() -> None:
    checker = SafetyChecker()
    a = Member(checker, 1, [1])
    a.lead_alone()
    a.node.raft.term -= 1
    with violation("term-monotonic"):
        checker.after_event(a.id, a.node)
    checker = SafetyChecker()
    a = Member(checker, 1, [1])
    a.lead_alone()
    a.node.raft.raft_log.committed -= 1
    with violation("commit-monotonic"):
        checker.after_event(a.id, a.node)


def test_durable_state_going_backwards() -> None:
    checker = SafetyChecker()
    a = Member(checker, 1, [1])
    a.lead_alone()
    a.storage.set_hard_state(HardState(term=0, commit=0))
    with violation("durable-monotonic"):
        checker.on_synced(a.id, a.storage)


def test_restart_that_does_not_match_the_disk() -> None:
    checker = SafetyChecker()
    a = Member(checker, 1, [1])
    a.lead_alone()
    a.node.raft.term += 3
    with violation("restart"):
        checker.on_start(a.id, a.node, a.storage)


def test_entries_with_same_index_and_term_but_different_data() -> None:
    checker = SafetyChecker()
    a = Member(checker, 1, [1, 2])
    checker.on_ready(a.id, a.node, Ready(entries=(Entry(1, 1, b"a"), Entry(1, 2, b"b"))))
    checker.on_ready(NodeId(2), a.node, Ready(entries=(Entry(1, 1, b"a"),)))
    with violation("log-matching"):
        checker.on_ready(NodeId(2), a.node, Ready(entries=(Entry(1, 1, b"A"),)))


def test_entries_with_same_index_and_term_after_different_entries() -> None:
    checker = SafetyChecker()
    a = Member(checker, 1, [1, 2])
    checker.on_ready(a.id, a.node, Ready(entries=(Entry(1, 1), Entry(2, 2, b"b"))))
    with violation("log-matching"):
        checker.on_ready(NodeId(2), a.node, Ready(entries=(Entry(3, 1), Entry(2, 2, b"b"))))


def test_state_machine_safety() -> None:
    checker = SafetyChecker()
    checker.on_apply(NodeId(1), Entry(1, 1, b"a"), 1)
    checker.on_apply(NodeId(2), Entry(1, 1, b"a"), 1)
    with violation("state-machine-safety"):
        checker.on_apply(NodeId(3), Entry(2, 1, b"b"), 1)
    with violation("state-machine-safety"):
        checker.on_apply(NodeId(3), Entry(1, 1, b"a"), 2)
    with violation("state-machine-safety"):
        checker.on_apply(NodeId(3), Entry(1, 3, b"c"), 1)
    assert checker.applied_length == 1 and checker.has_applied(1, b"a")


def test_snapshots_must_match_the_canonical_history() -> None:
    checker = SafetyChecker()
    checker.on_apply(NodeId(1), Entry(1, 1, b"a"), 7)
    checker.on_snapshot(NodeId(1), 1, b"snap", 7)
    with violation("state-machine-safety"):
        checker.on_snapshot(NodeId(2), 1, b"other", 7)
    with violation("state-machine-safety"):
        checker.on_snapshot(NodeId(2), 1, b"snap", 8)
    with violation("state-machine-safety"):
        checker.on_snapshot(NodeId(2), 2, b"snap", 7)


def test_sending_before_sync() -> None:
    checker = SafetyChecker()
    storage = MemoryLogStorage(ConfState(voters=(NodeId(1), NodeId(2))))
    resp = Message(MessageType.APP_RESP, to=NodeId(1), from_=NodeId(2), term=1, index=0)
    checker.on_send(NodeId(2), resp, persisted=True, synced=True, storage=storage)
    with violation("send-before-sync"):
        checker.on_send(NodeId(2), resp, persisted=True, synced=False, storage=storage)
    ack = Message(MessageType.APP_RESP, to=NodeId(1), from_=NodeId(2), term=1, index=3)
    with violation("send-before-sync"):
        checker.on_send(NodeId(2), ack, persisted=True, synced=True, storage=storage)
    vote = Message(MessageType.VOTE_RESP, to=NodeId(1), from_=NodeId(2), term=1)
    with violation("send-before-sync"):
        checker.on_send(NodeId(2), vote, persisted=True, synced=True, storage=storage)
    storage.set_hard_state(HardState(term=1, vote=NodeId(1)))
    checker.on_send(NodeId(2), vote, persisted=True, synced=True, storage=storage)
    rejected = Message(MessageType.VOTE_RESP, to=NodeId(3), from_=NodeId(2), term=1, reject=True)
    checker.on_send(NodeId(2), rejected, persisted=True, synced=True, storage=storage)


def test_acknowledged_writes_must_stay() -> None:
    checker = SafetyChecker()
    command = Command(1, 1, "w", 5)
    checker.on_apply(NodeId(1), Entry(1, 1, encode_command(command)), 5)
    checker.on_ack(command, 1)
    with violation("lost-write"):
        checker.on_ack(Command(1, 2, "w", 6), 1)
    sm = StateMachine(MachineKind.REGISTER)
    sm.apply(Entry(1, 1, encode_command(command)))
    checker.check_final({NodeId(1): sm})
    behind = StateMachine(MachineKind.REGISTER)
    checker.check_final({NodeId(2): behind})
    behind.apply(Entry(1, 1, b"c2.1 w 999"))
    with violation("lost-write"):
        checker.check_final({NodeId(2): behind})


def test_leader_committing_an_entry_of_an_earlier_term() -> None:
    checker = SafetyChecker()
    a = Member(checker, 1, [1], hs=HardState(term=3), entries=[Entry(2, 1, b"old")])
    a.node.campaign()
    rd = a.node.ready()
    a.storage.append(rd.entries)
    if rd.hard_state is not None:
        a.storage.set_hard_state(rd.hard_state)
    a.node.advance(rd)
    checker.after_event(a.id, a.node)
    # Leader of term 4 over 2/1 and its own 4/2, nothing committed yet.
    assert a.node.raft.state == StateType.LEADER and a.node.raft.raft_log.committed == 0
    a.node.raft.raft_log.commit_to(1)
    with violation("commit-rule"):
        checker.after_event(a.id, a.node)
    a.drive()
    assert a.node.raft.raft_log.committed == 2
