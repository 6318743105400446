"""The leader's view of every member, and the votes of an election.

Voters are kept as a sorted tuple so every iteration is in a fixed order
(deterministic replay; etcd-io/raft ``tracker/tracker.go``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from kvstore.raft.inflights import Inflights
from kvstore.raft.messages import NodeId
from kvstore.raft.progress import Progress
from kvstore.raft.quorum import VoteResult, committed_index, quorum_size, vote_result

__all__ = ["ProgressTracker"]


class ProgressTracker:
    """Progress of each voter, and the votes received in the current election."""

    def __init__(
        self, voters: tuple[NodeId, ...], *, max_inflight: int, max_inflight_bytes: int
    ) -> None:
        self.voters: tuple[NodeId, ...] = tuple(sorted(set(voters)))
        self.max_inflight = max_inflight
        self.max_inflight_bytes = max_inflight_bytes
        self.progress: dict[NodeId, Progress] = {}
        self.votes: dict[NodeId, bool] = {}
        for v in self.voters:
            self.progress[v] = self.new_progress(next_index=1, match=0)

    def new_progress(self, *, next_index: int, match: int) -> Progress:
        return Progress(
            next_index=next_index,
            match=match,
            inflights=Inflights(self.max_inflight, self.max_inflight_bytes),
        )

    def __iter__(self) -> Iterator[tuple[NodeId, Progress]]:
        for v in self.voters:
            yield v, self.progress[v]

    def committed(self) -> int:
        """The largest index replicated on a majority of voters."""
        return committed_index(self.voters, {v: self.progress[v].match for v in self.voters})

    def quorum_active(self) -> bool:
        """Whether a majority has been heard from since the last check."""
        active = sum(1 for v in self.voters if self.progress[v].recent_active)
        return active >= quorum_size(len(self.voters))

    def reset_votes(self) -> None:
        self.votes = {}

    def record_vote(self, member: NodeId, granted: bool) -> None:
        """Record a member's first answer in this election; later ones are ignored."""
        if member not in self.votes:
            self.votes[member] = granted

    def vote_result_of(self, acks: Mapping[NodeId, bool]) -> VoteResult:
        """The outcome of a poll where ``acks`` holds the members that answered yes."""
        return vote_result(self.voters, acks)

    def tally_votes(self) -> tuple[int, int, VoteResult]:
        """Granted and rejected counts among voters, and the outcome."""
        granted = sum(1 for v in self.voters if self.votes.get(v) is True)
        rejected = sum(1 for v in self.voters if self.votes.get(v) is False)
        return granted, rejected, vote_result(self.voters, self.votes)
