"""Linearizable reads by ReadIndex (Raft dissertation §6.4).

The leader records the commit index when a read arrives, then sends a
heartbeat round carrying the read's context. Once a majority acknowledges
that context the leader knows it was still the leader when the read
arrived, and the read may be served once the state machine has applied up to
the recorded index. Requests are answered in arrival order: an acknowledgement
of a later context confirms every earlier one as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kvstore.raft.messages import Message, NodeId

__all__ = ["ReadIndexStatus", "ReadOnly"]


@dataclass(slots=True)
class ReadIndexStatus:
    """One pending read: the request, the commit index it waits for, and the acks."""

    req: Message
    index: int
    acks: dict[NodeId, bool] = field(default_factory=dict)


class ReadOnly:
    """Reads waiting for a heartbeat quorum, keyed by their context."""

    def __init__(self) -> None:
        self.pending: dict[bytes, ReadIndexStatus] = {}
        self.queue: list[bytes] = []

    def add_request(self, index: int, m: Message) -> None:
        """Track read ``m`` that must wait for commit index ``index``."""
        ctx = m.context
        if ctx in self.pending:
            return
        self.pending[ctx] = ReadIndexStatus(req=m, index=index)
        self.queue.append(ctx)

    def recv_ack(self, member: NodeId, ctx: bytes) -> dict[NodeId, bool] | None:
        """Record a heartbeat acknowledgement; return the acks so far, or None if unknown."""
        rs = self.pending.get(ctx)
        if rs is None:
            return None
        rs.acks[member] = True
        return rs.acks

    def advance(self, ctx: bytes) -> list[ReadIndexStatus]:
        """Release the read with context ``ctx`` and every read queued before it."""
        try:
            i = self.queue.index(ctx)
        except ValueError:
            return []
        released = self.queue[: i + 1]
        del self.queue[: i + 1]
        return [self.pending.pop(c) for c in released]

    def last_pending_request_ctx(self) -> bytes:
        return self.queue[-1] if self.queue else b""
