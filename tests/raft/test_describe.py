"""The one-line text forms shared by logs, scenario traces and the simulator."""

from __future__ import annotations

import pytest

from kvstore.raft.describe import (
    describe_entries,
    describe_entry,
    describe_hard_state,
    describe_message,
    describe_ready,
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
    ReadState,
    Snapshot,
    SnapshotMetadata,
    SoftState,
    StateType,
)
from kvstore.raft.rawnode import Ready

MT = MessageType
SNAP = Snapshot(SnapshotMetadata(5, 2, ConfState((NodeId(1), NodeId(3)))), b"abc")


@pytest.mark.parametrize(
    "entry, want",
    [
        (Entry(term=2, index=7), "2/7"),
        (Entry(term=2, index=7, data=b"x=1"), "2/7 'x=1'"),
        (Entry(term=1, index=1, data=b"\x00\xff"), "1/1 0x00ff"),
        (Entry(term=1, index=1, data=b"a\nb"), "1/1 0x610a62"),
        (Entry(term=1, index=1, data=b"y" * 30), "1/1 '" + "y" * 24 + "'...(+6B)"),
    ],
)
def test_describe_entry(entry: Entry, want: str) -> None:
    assert describe_entry(entry) == want


def test_describe_entries() -> None:
    assert describe_entries([]) == "[]"
    assert describe_entries([Entry(1, 1), Entry(1, 2, b"a")]) == "[1/1, 1/2 'a']"


@pytest.mark.parametrize(
    "msg, want",
    [
        (
            Message(MT.APP, NodeId(2), NodeId(1), 2, 1, 3, (Entry(2, 4, b"x=1"),), 3),
            "1->2 APP Term:2 Log:1/3 Commit:3 Entries:[2/4 'x=1']",
        ),
        (
            Message(MT.APP_RESP, NodeId(1), NodeId(2), 2, 1, 3, reject=True, reject_hint=2),
            "2->1 APP_RESP Term:2 Log:1/3 Rejected (Hint: 2)",
        ),
        (Message(MT.VOTE, NodeId(3), NodeId(1), 5, 2, 9), "1->3 VOTE Term:5 Log:2/9"),
        (
            Message(MT.HEARTBEAT, NodeId(3), NodeId(1), 5, context=b"r1"),
            "1->3 HEARTBEAT Term:5 Log:0/0 Ctx:'r1'",
        ),
        (
            Message(MT.SNAP, NodeId(3), NodeId(1), 5, snapshot=SNAP),
            "1->3 SNAP Term:5 Log:0/0 Snapshot: Index:5 Term:2 Voters:(1,3) Data:3B",
        ),
    ],
)
def test_describe_message(msg: Message, want: str) -> None:
    assert describe_message(msg) == want


def test_states() -> None:
    assert describe_hard_state(HardState(3, NodeId(2), 7)) == "Term:3 Vote:2 Commit:7"
    assert describe_hard_state(HardState(3, NodeId(0), 7)) == "Term:3 Commit:7"
    assert describe_soft_state(SoftState(NodeId(1), StateType.LEADER)) == "Lead:1 State:LEADER"
    assert describe_snapshot(SNAP) == "Index:5 Term:2 Voters:(1,3) Data:3B"


def test_describe_ready() -> None:
    assert describe_ready(Ready()) == "Ready: (empty)"
    rd = Ready(
        soft_state=SoftState(NodeId(1), StateType.LEADER),
        hard_state=HardState(2, NodeId(1), 1),
        read_states=(ReadState(1, b"q"),),
        entries=(Entry(2, 2, b"a"),),
        committed_entries=(Entry(2, 1),),
        messages=(Message(MT.HEARTBEAT, NodeId(2), NodeId(1), 2),),
        persisted_messages=(Message(MT.APP_RESP, NodeId(2), NodeId(1), 2, index=2),),
        must_sync=True,
    )
    assert describe_ready(rd) == (
        "Ready MustSync: Lead:1 State:LEADER HardState Term:2 Vote:1 Commit:1"
        " ReadStates:[Index:1 Ctx:'q'] Entries:[2/2 'a'] Committed:[2/1]"
        " Messages:[1->2 HEARTBEAT Term:2 Log:0/0]"
        " AfterPersist:[1->2 APP_RESP Term:2 Log:0/2]"
    )
    assert describe_ready(Ready(snapshot=SNAP)) == (
        "Ready: Snapshot Index:5 Term:2 Voters:(1,3) Data:3B"
    )
