"""What the leader knows of one follower's log (etcd-io/raft ``tracker/progress.go``).

States::

    PROBE      --(append acknowledged)-->        REPLICATE
    REPLICATE  --(append rejected/unreachable)--> PROBE
    any        --(needed entries compacted)-->   SNAPSHOT --(applied/failed)--> PROBE

- PROBE: the leader does not know where the follower's log ends; it sends
  at most one append per heartbeat interval and backs off on rejection.
- REPLICATE: appends stream optimistically, bounded by ``inflights``.
- SNAPSHOT: a snapshot is on its way; nothing else is sent.

Invariant: ``match < next``.
"""

from __future__ import annotations

import enum

from kvstore.raft.inflights import Inflights

__all__ = ["Progress", "ProgressState"]


class ProgressState(enum.IntEnum):
    PROBE = 0
    REPLICATE = 1
    SNAPSHOT = 2


class Progress:
    """Replication progress of one member, as tracked by the leader."""

    __slots__ = (
        "match",
        "next",
        "state",
        "pending_snapshot",
        "recent_active",
        "msg_app_flow_paused",
        "inflights",
    )

    def __init__(self, *, next_index: int, match: int, inflights: Inflights) -> None:
        # The highest index known to be replicated on the member.
        self.match = match
        # The index of the next entry to send.
        self.next = next_index
        self.state = ProgressState.PROBE
        # In SNAPSHOT state: the index of the snapshot being sent.
        self.pending_snapshot = 0
        # Whether the member was heard from since the last quorum check.
        self.recent_active = False
        # PROBE: an append is outstanding; wait for its answer or the next
        # heartbeat response. REPLICATE: the in-flight window is full.
        self.msg_app_flow_paused = False
        self.inflights = inflights

    def __repr__(self) -> str:
        return (
            f"Progress({self.state.name} match={self.match} next={self.next}"
            f" inflight={self.inflights.count()})"
        )

    def _reset_state(self, state: ProgressState) -> None:
        self.msg_app_flow_paused = False
        self.pending_snapshot = 0
        self.state = state
        self.inflights.reset()

    def become_probe(self) -> None:
        if self.state == ProgressState.SNAPSHOT:
            pending = self.pending_snapshot
            self._reset_state(ProgressState.PROBE)
            self.next = max(self.match + 1, pending + 1)
        else:
            self._reset_state(ProgressState.PROBE)
            self.next = self.match + 1

    def become_replicate(self) -> None:
        self._reset_state(ProgressState.REPLICATE)
        self.next = self.match + 1

    def become_snapshot(self, snapshot_index: int) -> None:
        self._reset_state(ProgressState.SNAPSHOT)
        self.pending_snapshot = snapshot_index

    def update_on_entries_send(self, entries: int, nbytes: int) -> None:
        """Account for an append of ``entries`` entries starting at ``next``."""
        if self.state == ProgressState.REPLICATE:
            if entries > 0:
                self.next += entries
                self.inflights.add(self.next - 1, nbytes)
            self.msg_app_flow_paused = self.inflights.full()
        elif self.state == ProgressState.PROBE:
            self.msg_app_flow_paused = True

    def maybe_update(self, index: int) -> bool:
        """The member acknowledged up to ``index``; False if that is old news."""
        updated = False
        if self.match < index:
            self.match = index
            updated = True
            self.msg_app_flow_paused = False
        self.next = max(self.next, index + 1)
        return updated

    def maybe_decr_to(self, rejected: int, match_hint: int) -> bool:
        """An append at ``rejected`` was refused; move ``next`` back (§5.3).

        Returns False when the rejection is stale (answers an older append).
        """
        if self.state == ProgressState.REPLICATE:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, match_hint + 1), self.match + 1)
        self.msg_app_flow_paused = False
        return True

    def is_paused(self) -> bool:
        """Whether the leader should hold back appends to this member."""
        if self.state in (ProgressState.PROBE, ProgressState.REPLICATE):
            # In replicate state the flag is set when the window fills, and
            # cleared by an acknowledgement or a heartbeat response: the
            # latter lets an empty append through, so a window whose
            # messages were all lost cannot stall the follower for good.
            return self.msg_app_flow_paused
        return True
