"""The values the Raft core takes in and gives out.

Every value here is a frozen, slotted dataclass or an enum: the core never
mutates a message or an entry once built, so the driver may hand the same
objects to the disk, the network and the state machine at once.

Message types follow etcd-io/raft (``raftpb.MessageType``), snake-cased and
upper-cased. ``HUP``, ``BEAT``, ``PROP`` (when stepped locally), ``CHECK_QUORUM``,
``TRANSFER_LEADER``, ``READ_INDEX`` (when stepped locally), ``UNREACHABLE`` and
``SNAP_STATUS`` are *local* messages: they are stepped into the node that
produced them and never travel over the network.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import NewType

NodeId = NewType("NodeId", int)
"""A member id. ``0`` means "none" (no vote, no known leader)."""

NONE: NodeId = NodeId(0)


class MessageType(enum.IntEnum):
    """Every kind of message the core understands (Raft §5, dissertation §6, §9)."""

    HUP = 0
    BEAT = 1
    PROP = 2
    APP = 3
    APP_RESP = 4
    VOTE = 5
    VOTE_RESP = 6
    SNAP = 7
    HEARTBEAT = 8
    HEARTBEAT_RESP = 9
    UNREACHABLE = 10
    SNAP_STATUS = 11
    CHECK_QUORUM = 12
    TRANSFER_LEADER = 13
    TIMEOUT_NOW = 14
    READ_INDEX = 15
    READ_INDEX_RESP = 16
    PRE_VOTE = 17
    PRE_VOTE_RESP = 18


_LOCAL = frozenset(
    {
        MessageType.HUP,
        MessageType.BEAT,
        MessageType.UNREACHABLE,
        MessageType.SNAP_STATUS,
        MessageType.CHECK_QUORUM,
    }
)
_RESPONSE = frozenset(
    {
        MessageType.APP_RESP,
        MessageType.VOTE_RESP,
        MessageType.HEARTBEAT_RESP,
        MessageType.UNREACHABLE,
        MessageType.READ_INDEX_RESP,
        MessageType.PRE_VOTE_RESP,
    }
)


def is_local_msg(t: MessageType) -> bool:
    """True for message types that never leave the node that made them."""
    return t in _LOCAL


def is_response_msg(t: MessageType) -> bool:
    """True for message types that answer an earlier request."""
    return t in _RESPONSE


def vote_resp_type(t: MessageType) -> MessageType:
    """The response type that answers a (pre-)vote request of type ``t``."""
    if t == MessageType.VOTE:
        return MessageType.VOTE_RESP
    if t == MessageType.PRE_VOTE:
        return MessageType.PRE_VOTE_RESP
    raise ValueError(f"not a vote message: {t!r}")


class EntryType(enum.IntEnum):
    """What an entry carries. Only normal entries exist for now."""

    NORMAL = 0


@dataclass(frozen=True, slots=True)
class Entry:
    """One log entry. An entry with empty ``data`` is the no-op a new leader appends."""

    term: int
    index: int
    data: bytes = b""
    type: EntryType = EntryType.NORMAL

    def size(self) -> int:
        """Approximate encoded size in bytes, used for batching limits."""
        return len(self.data) + 16


@dataclass(frozen=True, slots=True)
class HardState:
    """State that must be on stable storage before a message depending on it is sent."""

    term: int = 0
    vote: NodeId = NONE
    commit: int = 0

    def is_empty(self) -> bool:
        return self.term == 0 and self.vote == NONE and self.commit == 0


EMPTY_HARD_STATE = HardState()


@dataclass(frozen=True, slots=True)
class ConfState:
    """The voting members of the cluster, sorted by id."""

    voters: tuple[NodeId, ...] = ()


@dataclass(frozen=True, slots=True)
class SnapshotMetadata:
    """Where a snapshot sits in the log: it replaces every entry up to ``index``."""

    index: int = 0
    term: int = 0
    conf_state: ConfState = field(default_factory=ConfState)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An application snapshot plus its position in the log."""

    metadata: SnapshotMetadata = field(default_factory=SnapshotMetadata)
    data: bytes = b""

    def is_empty(self) -> bool:
        return self.metadata.index == 0


EMPTY_SNAPSHOT = Snapshot()


@dataclass(frozen=True, slots=True)
class Message:
    """One Raft message. Field meanings follow etcd's ``raftpb.Message``.

    - ``index``/``log_term``: for APP, the entry preceding ``entries``; for
      APP_RESP, the highest index the follower now matches (or, when
      ``reject``, the index that was rejected); for (PRE_)VOTE, the candidate's
      last index and term.
    - ``reject_hint``/``log_term`` on a rejected APP_RESP: the follower's hint
      for fast backtracking (an index ``<=`` the rejected one, and its term).
    - ``context``: opaque bytes; ReadIndex request ids travel here, and
      ``b"transfer"`` marks a campaign forced by leadership transfer.
    """

    type: MessageType
    to: NodeId = NONE
    from_: NodeId = NONE
    term: int = 0
    log_term: int = 0
    index: int = 0
    entries: tuple[Entry, ...] = ()
    commit: int = 0
    snapshot: Snapshot | None = None
    reject: bool = False
    reject_hint: int = 0
    context: bytes = b""


@dataclass(frozen=True, slots=True)
class ReadState:
    """A linearizable read is safe once the applied index reaches ``index``."""

    index: int
    request_ctx: bytes


class StateType(enum.IntEnum):
    """The role a node plays."""

    FOLLOWER = 0
    CANDIDATE = 1
    LEADER = 2
    PRE_CANDIDATE = 3


@dataclass(frozen=True, slots=True)
class SoftState:
    """Volatile state useful for logging and for the driver; never persisted."""

    lead: NodeId = NONE
    raft_state: StateType = StateType.FOLLOWER
