"""Majority quorums: the commit index and the outcome of an election.

Pure functions over a set of voters and what each has acknowledged
(etcd-io/raft ``quorum/majority.go``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

from kvstore.raft.messages import NodeId

__all__ = ["VoteResult", "committed_index", "quorum_size", "vote_result"]


class VoteResult(enum.IntEnum):
    """Where an election stands."""

    PENDING = 0
    LOST = 1
    WON = 2


def quorum_size(voters: int) -> int:
    """The number of members that form a majority."""
    return voters // 2 + 1


def committed_index(voters: Sequence[NodeId], match: Mapping[NodeId, int]) -> int:
    """The largest index acknowledged by a majority of ``voters``.

    An empty configuration commits everything (it has no one to wait for);
    callers never use one.
    """
    n = len(voters)
    if n == 0:
        return 1 << 63
    acked = sorted(match.get(v, 0) for v in voters)
    # The k-th largest value, where k is the quorum size, is the highest
    # index that at least a quorum has reached.
    return acked[n - quorum_size(n)]


def vote_result(voters: Sequence[NodeId], votes: Mapping[NodeId, bool]) -> VoteResult:
    """WON once a majority granted, LOST once a majority can no longer grant."""
    n = len(voters)
    if n == 0:
        return VoteResult.WON
    granted = missing = 0
    for v in voters:
        vote = votes.get(v)
        if vote is None:
            missing += 1
        elif vote:
            granted += 1
    q = quorum_size(n)
    if granted >= q:
        return VoteResult.WON
    if granted + missing >= q:
        return VoteResult.PENDING
    return VoteResult.LOST
