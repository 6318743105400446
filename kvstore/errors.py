"""Typed errors raised by the store.

The tree (whose fault it is in brackets)::

    KvError
    ├── InvariantError        [ours: a broken internal contract; never caught and ignored]
    ├── RequestError          [the caller's: the request itself is wrong]
    │   ├── TooLarge          (key, value, request or frame above its limit)
    │   ├── TooManyOps        (a txn with more operations than allowed)
    │   ├── InvalidRequest    (malformed or contradictory arguments)
    │   ├── Compacted         (a revision older than the compacted one)
    │   ├── FutureRevision    (a revision newer than the store's)
    │   └── LeaseNotFound / LeaseExists
    ├── ClusterError          [the cluster's state: retry may help]
    │   ├── NotLeader         (carries a leader hint)
    │   ├── Unavailable       (no quorum, overloaded, or shutting down)
    │   │   └── Overloaded    (refused before proposing: too much pending; retry later)
    │   ├── ProposalDropped   (the proposal could not be appended; retry)
    │   └── Timeout
    ├── StorageError          [the disk's]
    │   └── CorruptError      (bad CRC, missing segment, gap; names file and offset)
    └── ProtocolError         [a peer's or client's: malformed frames, unknown members]
"""

from __future__ import annotations

__all__ = [
    "ClusterError",
    "Compacted",
    "CorruptError",
    "FutureRevision",
    "InvalidRequest",
    "InvariantError",
    "KvError",
    "LeaseExists",
    "LeaseNotFound",
    "NotLeader",
    "Overloaded",
    "ProposalDropped",
    "ProtocolError",
    "RequestError",
    "StorageError",
    "Timeout",
    "TooLarge",
    "TooManyOps",
    "Unavailable",
]


class KvError(Exception):
    """Base class of every error the store raises on purpose."""


class InvariantError(KvError):
    """An internal contract was broken (a bug, or a driver misusing the core)."""


class RequestError(KvError):
    """The request is wrong; sending it again will fail again."""


class TooLarge(RequestError):
    """A key, value, request or frame exceeds its limit."""

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(f"{what} too large: {size} bytes > limit {limit}")
        self.what = what
        self.size = size
        self.limit = limit


class TooManyOps(RequestError):
    """A transaction holds more operations than the limit allows."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"too many operations in txn: {count} > limit {limit}")
        self.count = count
        self.limit = limit


class InvalidRequest(RequestError):
    """Malformed or contradictory arguments."""


class Compacted(RequestError):
    """The requested revision has been compacted away."""

    def __init__(self, revision: int, compact_revision: int) -> None:
        super().__init__(
            f"revision {revision} has been compacted (compact revision {compact_revision})"
        )
        self.revision = revision
        self.compact_revision = compact_revision


class FutureRevision(RequestError):
    """The requested revision is newer than the store's current one."""

    def __init__(self, revision: int, current_revision: int) -> None:
        super().__init__(f"revision {revision} is in the future (current {current_revision})")
        self.revision = revision
        self.current_revision = current_revision


class LeaseNotFound(RequestError):
    """No lease has this id (never granted, revoked, or expired)."""

    def __init__(self, lease_id: int) -> None:
        super().__init__(f"lease {lease_id:x} not found")
        self.lease_id = lease_id


class LeaseExists(RequestError):
    """A lease with this id already exists."""

    def __init__(self, lease_id: int) -> None:
        super().__init__(f"lease {lease_id:x} already exists")
        self.lease_id = lease_id


class ClusterError(KvError):
    """The cluster cannot serve the request right now; a retry may succeed."""


class NotLeader(ClusterError):
    """This member is not the leader; ``leader_hint`` names the leader if known (0 if not)."""

    def __init__(self, leader_hint: int = 0, message: str | None = None) -> None:
        super().__init__(message or f"not the leader (leader hint: {leader_hint or 'unknown'})")
        self.leader_hint = leader_hint


class Unavailable(ClusterError):
    """No quorum, too many pending requests, or the member is stopping."""


class Overloaded(Unavailable):
    """Refused before anything was proposed: too many requests pending. Safe to retry."""


class ProposalDropped(ClusterError):
    """The proposal was not appended to the log (no leader, or leadership moving)."""


class Timeout(ClusterError):
    """The request did not complete in time; its outcome is unknown."""


class StorageError(KvError):
    """The disk failed or holds something unexpected."""


class CorruptError(StorageError):
    """Stored data failed verification; ``path`` and ``offset`` say where."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        super().__init__(f"corrupt data in {path} at offset {offset}: {reason}")
        self.path = path
        self.offset = offset
        self.reason = reason


class ProtocolError(KvError):
    """A peer or client sent something malformed or was not allowed to connect."""
