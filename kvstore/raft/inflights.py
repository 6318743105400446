"""Append messages sent to one follower and not yet acknowledged.

Bounded by a count and (optionally) by bytes, so a slow follower cannot make
the leader buffer without limit (etcd-io/raft ``tracker/inflights.go``).
Invariant: indexes are strictly increasing from oldest to newest.
"""

from __future__ import annotations

from collections import deque

from kvstore.errors import InvariantError

__all__ = ["Inflights"]


class Inflights:
    """A bounded FIFO of ``(last index, bytes)`` of unacknowledged appends."""

    __slots__ = ("size", "max_bytes", "_queue", "bytes")

    def __init__(self, size: int, max_bytes: int = 0) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self._queue: deque[tuple[int, int]] = deque()
        self.bytes = 0

    def add(self, index: int, nbytes: int) -> None:
        """Record an append whose last entry is ``index``."""
        if self.full():
            raise InvariantError("cannot add into a full inflights")
        if self._queue and index <= self._queue[-1][0]:
            raise InvariantError(f"inflight index {index} is not above {self._queue[-1][0]}")
        self._queue.append((index, nbytes))
        self.bytes += nbytes

    def free_le(self, to: int) -> None:
        """Forget every append whose last index is ``<= to`` (acknowledged)."""
        q = self._queue
        while q and q[0][0] <= to:
            self.bytes -= q.popleft()[1]

    def full(self) -> bool:
        return len(self._queue) >= self.size or (
            self.max_bytes != 0 and self.bytes >= self.max_bytes
        )

    def count(self) -> int:
        return len(self._queue)

    def reset(self) -> None:
        self._queue.clear()
        self.bytes = 0
