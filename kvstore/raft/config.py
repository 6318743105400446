"""Configuration of one Raft member (etcd-io/raft ``Config``, snake-cased)."""

from __future__ import annotations

from dataclasses import dataclass

from kvstore.raft.messages import NONE, NodeId

__all__ = ["Config"]


@dataclass(frozen=True, slots=True)
class Config:
    """How one member behaves. Times are in ticks; sizes in bytes.

    - ``election_tick``: a follower that hears nothing from a leader for a
      randomized ``[election_tick, 2 * election_tick)`` ticks campaigns.
    - ``heartbeat_tick``: a leader sends heartbeats every this many ticks.
      Must be smaller than ``election_tick``.
    - ``applied``: the last applied index when restarting (the application's
      snapshot index, or what it knows it applied); committed entries up to it
      are not handed out again.
    - ``max_size_per_msg``: an append message carries at most this many bytes
      of entries (at least one entry is always sent).
    - ``max_committed_size_per_ready``: at most this many bytes of committed
      entries are handed out in one ready batch.
    - ``max_uncommitted_entries_size``: a leader drops proposals once this many
      bytes of entries wait for commit (0: unlimited).
    - ``max_inflight_msgs`` / ``max_inflight_bytes``: in replicate state, at
      most this many append messages / bytes may be unacknowledged per
      follower (bytes 0: unlimited).
    - ``check_quorum``: a leader that hears from no majority for an election
      timeout steps down (and followers ignore vote requests while they hear
      from a leader).
    - ``pre_vote``: candidates first ask whether they could win (Raft
      dissertation §9.6) so a rejoining partitioned member does not bump terms.
    - ``disable_proposal_forwarding``: followers refuse proposals with
      ``NotLeader(leader_hint)`` instead of forwarding them to the leader.
    """

    id: NodeId
    election_tick: int = 10
    heartbeat_tick: int = 1
    applied: int = 0
    max_size_per_msg: int = 1 << 20
    max_committed_size_per_ready: int = 64 << 20
    max_uncommitted_entries_size: int = 0
    max_inflight_msgs: int = 256
    max_inflight_bytes: int = 0
    check_quorum: bool = True
    pre_vote: bool = True
    disable_proposal_forwarding: bool = False

    def validate(self) -> None:
        """Raise ``ValueError`` when the configuration cannot work."""
        if self.id == NONE:
            raise ValueError("cannot use 0 as a member id")
        if self.heartbeat_tick <= 0:
            raise ValueError("heartbeat_tick must be greater than 0")
        if self.election_tick <= self.heartbeat_tick:
            raise ValueError("election_tick must be greater than heartbeat_tick")
        if self.max_inflight_msgs <= 0:
            raise ValueError("max_inflight_msgs must be greater than 0")
        if self.max_inflight_bytes < 0 or self.max_uncommitted_entries_size < 0:
            raise ValueError("size limits cannot be negative")
        if self.max_size_per_msg <= 0 or self.max_committed_size_per_ready <= 0:
            raise ValueError("message and ready size limits must be greater than 0")
        if self.applied < 0:
            raise ValueError("applied cannot be negative")
