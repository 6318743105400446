"""SimNetwork: a seeded, lossy, reordering network between simulated members.

Contract:

- ``send(msg, now)`` decides the message's fate at once from the network's
  own ``random.Random``: dropped (with probability ``drop_rate``), or
  delivered after ``min_delay..max_delay`` ticks (at least one: nothing
  arrives in the tick it was sent), and possibly duplicated (each copy gets
  its own delay). Different delays reorder messages.
- Partitions block directed links; a blocked link loses every message that
  tries to cross it *when it is due*, so a partition also eats messages
  already in flight. ``partition(groups)`` cuts every link between groups in
  both directions; ``block(frm, to)`` cuts one direction only (asymmetric).
- ``due(now)`` returns, in a deterministic order (due tick, then send order),
  every message whose fate is settled at ``now``, each with a ``Fate`` so the
  driver can tell the sender about snapshots and unreachable peers.

Nothing here iterates over a set: links are kept in a dict keyed by pairs of
ints and only ever looked up, so runs with the same seed are identical.
"""

from __future__ import annotations

import enum
import heapq
import random
from collections.abc import Sequence
from dataclasses import dataclass

from kvstore.raft.messages import Message, NodeId

__all__ = ["Fate", "NetworkConfig", "SimNetwork"]


class Fate(enum.Enum):
    DELIVERED = "deliver"
    DROPPED = "drop"
    """Lost at random (a broken connection, a full send buffer)."""
    BLOCKED = "blocked"
    """Lost to a partition (or to a member that is down)."""


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    min_delay: int = 1
    max_delay: int = 1
    silent_loss: bool = False
    """Random loss goes unnoticed by both ends (no transport tells the core)."""

    def __post_init__(self) -> None:
        if not 1 <= self.min_delay <= self.max_delay:
            raise ValueError(f"need 1 <= min_delay <= max_delay, got {self}")
        if not (0.0 <= self.drop_rate <= 1.0 and 0.0 <= self.duplicate_rate <= 1.0):
            raise ValueError(f"rates must lie in [0, 1], got {self}")


CALM = NetworkConfig()
"""No loss, no duplicates, one tick of delay: what the liveness phase runs on."""


class SimNetwork:
    """Messages in flight between members, and the links currently cut."""

    def __init__(self, rng: random.Random, config: NetworkConfig = CALM) -> None:
        self.rng = rng
        self.config = config
        self._queue: list[tuple[int, int, Message, bool]] = []
        self._seq = 0
        self._blocked: dict[tuple[NodeId, NodeId], bool] = {}
        self.sent = 0
        self.delivered = 0

    # -- traffic ----------------------------------------------------------
    def send(self, msg: Message, now: int) -> int:
        """Put ``msg`` on the wire; returns how many copies will arrive (0, 1 or 2)."""
        self.sent += 1
        cfg = self.config
        rng = self.rng
        if cfg.drop_rate and rng.random() < cfg.drop_rate:
            self._seq += 1
            heapq.heappush(self._queue, (now + 1, self._seq, msg, True))
            return 0
        copies = 2 if cfg.duplicate_rate and rng.random() < cfg.duplicate_rate else 1
        span = cfg.max_delay - cfg.min_delay + 1
        for _ in range(copies):
            delay = cfg.min_delay
            if span > 1:
                delay += int(rng.random() * span)
            self._seq += 1
            heapq.heappush(self._queue, (now + delay, self._seq, msg, False))
        return copies

    def due(self, now: int) -> list[tuple[Message, Fate]]:
        """Every message whose fate is settled at or before ``now``, in order."""
        out: list[tuple[Message, Fate]] = []
        queue = self._queue
        while queue and queue[0][0] <= now:
            _, _, msg, lost = heapq.heappop(queue)
            if lost:
                out.append((msg, Fate.DROPPED))
            elif self._blocked and (msg.from_, msg.to) in self._blocked:
                out.append((msg, Fate.BLOCKED))
            else:
                self.delivered += 1
                out.append((msg, Fate.DELIVERED))
        return out

    def in_flight(self) -> int:
        return len(self._queue)

    # -- faults -----------------------------------------------------------
    def partition(self, groups: Sequence[Sequence[NodeId]]) -> None:
        """Cut every link between members of different groups, both ways."""
        for gi, group in enumerate(groups):
            for gj, other in enumerate(groups):
                if gi == gj:
                    continue
                for a in group:
                    for b in other:
                        self._blocked[(a, b)] = True

    def block(self, frm: NodeId, to: NodeId) -> None:
        """Cut the link from ``frm`` to ``to`` only."""
        self._blocked[(frm, to)] = True

    def is_blocked(self, frm: NodeId, to: NodeId) -> bool:
        return (frm, to) in self._blocked

    def blocked_links(self) -> list[tuple[NodeId, NodeId]]:
        return sorted(self._blocked)

    def heal(self) -> None:
        """Restore every link."""
        self._blocked.clear()
