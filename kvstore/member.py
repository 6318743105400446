"""What describes a member: where it is, how it is tuned, what it reports."""

from __future__ import annotations

from dataclasses import dataclass, field

from kvstore.compactor import COMPACTION_MODES
from kvstore.mvcc.request import Limits

__all__ = ["MemberInfo", "NodeOptions", "NodeStatus"]


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """A member of the cluster and where to reach it."""

    id: int
    peer_addr: tuple[str, int] | None = None
    client_addr: tuple[str, int] | None = None


@dataclass(frozen=True, slots=True)
class NodeOptions:
    """Tuning of a member. Times in seconds unless said otherwise."""

    cluster_id: str = "steersman"
    tick_interval: float = 0.1
    election_tick: int = 10
    heartbeat_tick: int = 1
    request_timeout: float = 7.0
    max_pending_proposals: int = 20_000
    max_pending_reads: int = 20_000
    snapshot_count: int = 100_000  # etcd's --snapshot-count default
    catch_up_entries: int = 5_000
    unsafe_no_fsync: bool = False
    limits: Limits = field(default_factory=Limits)
    max_inflight_msgs: int = 512
    # History compaction (kvstore.compactor): "periodic" keeps
    # ``auto_compaction_retention`` seconds, "revision" that many revisions;
    # 0 keeps every revision until someone calls ``compact``.
    auto_compaction_mode: str = "periodic"
    auto_compaction_retention: float = 0.0

    def __post_init__(self) -> None:
        if self.auto_compaction_mode not in COMPACTION_MODES:
            raise ValueError(f"unknown auto-compaction mode {self.auto_compaction_mode!r} "
                             "(want periodic or revision)")
        if self.auto_compaction_retention < 0:
            raise ValueError("auto-compaction retention must not be negative")


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """What ``status()`` reports about a member."""

    member_id: int
    leader: int
    term: int
    role: str
    commit_index: int
    applied_index: int
    revision: int
    compact_revision: int
    keys: int
    raft_index: int
    unsafe_no_fsync: bool
