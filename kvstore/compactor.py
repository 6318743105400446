"""Automatic compaction of the key space's history, as etcd's ``--auto-compaction-*``.

Without it every revision stays in memory and in every snapshot forever; a
control plane whose leases and statuses change every few seconds would grow
without bound. Two modes:

- ``periodic``: keep at least ``retention`` seconds of history. The
  compactor samples the revision every ``retention / 10`` seconds (at most
  hourly) and compacts to the newest sample that is ``retention`` old.
- ``revision``: keep the last ``retention`` revisions; every five minutes it
  compacts to ``revision - retention``.

Only the leader compacts (a compaction is a proposal like any write, so
every member drops the same history); a member that loses leadership drops
its samples and starts again if it leads later. ``CompactionPlan`` is the
decision alone, with time passed in; ``Compactor`` runs it on a member.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Literal

from kvstore.clock import Clock
from kvstore.errors import Compacted, KvError

__all__ = [
    "COMPACTION_MODES",
    "Mode",
    "CompactionPlan",
    "Compactor",
    "parse_retention",
]

logger = logging.getLogger(__name__)

Mode = Literal["periodic", "revision"]

COMPACTION_MODES: tuple[Mode, ...] = ("periodic", "revision")

REVISION_MODE_INTERVAL = 300.0
"""Seconds between compactions in ``revision`` mode (etcd's five minutes)."""

MAX_PERIODIC_INTERVAL = 3600.0
"""The longest wait between two samples in ``periodic`` mode."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_retention(mode: str, text: str) -> float:
    """``retention`` for ``mode`` from text: a duration for ``periodic``, a count for ``revision``.

    Durations are a number with an optional unit (``ms``, ``s``, ``m``, ``h``;
    none means hours, as etcd reads a bare number); ``0`` turns compaction
    off. Raises ``ValueError`` on anything else.
    """
    if mode not in COMPACTION_MODES:
        raise ValueError(f"unknown auto-compaction mode {mode!r} (want periodic or revision)")
    if mode == "revision":
        try:
            count = int(text)
        except ValueError:
            raise ValueError(f"revision retention must be a whole number, not {text!r}") from None
        if count < 0:
            raise ValueError("revision retention must not be negative")
        return float(count)
    m = _DURATION.match(text)
    if m is None:
        raise ValueError(f"periodic retention must be a duration such as 5m or 1h, not {text!r}")
    return float(m.group(1)) * _UNIT_SECONDS[m.group(2) or "h"]


class CompactionPlan:
    """Which revision to compact to, given the time and the current revision.

    Pure: it remembers samples and the last compaction and nothing else.
    """

    def __init__(self, mode: Mode, retention: float) -> None:
        if mode not in COMPACTION_MODES:
            raise ValueError(f"unknown auto-compaction mode {mode!r}")
        if retention <= 0:
            raise ValueError("retention must be positive (0 means no compactor at all)")
        self.mode = mode
        self.retention = retention
        self._samples: deque[tuple[float, int]] = deque()

    @property
    def interval(self) -> float:
        """Seconds between two calls of ``observe``."""
        if self.mode == "revision":
            return REVISION_MODE_INTERVAL
        return min(self.retention / 10, MAX_PERIODIC_INTERVAL)

    def reset(self) -> None:
        """Forget every sample (leadership was lost)."""
        self._samples.clear()

    def observe(self, now: float, revision: int, compacted: int) -> int | None:
        """Record ``revision`` at ``now``; the revision to compact to, or ``None``.

        ``compacted`` is the store's current compact revision: nothing at or
        below it is ever proposed again.
        """
        if self.mode == "revision":
            keep_from = revision - int(self.retention)
            return keep_from if keep_from > compacted else None
        samples = self._samples
        samples.append((now, revision))
        target: int | None = None
        # The newest sample at least ``retention`` old is the target; older
        # ones are no longer needed.
        while samples and now - samples[0][0] >= self.retention:
            target = samples.popleft()[1]
        return target if target is not None and target > compacted else None


class Compactor:
    """Runs a ``CompactionPlan`` on a member until cancelled."""

    def __init__(
        self,
        plan: CompactionPlan,
        *,
        clock: Clock,
        is_leader: Callable[[], bool],
        revisions: Callable[[], tuple[int, int]],
        compact: Callable[[int], Awaitable[object]],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``revisions`` returns ``(revision, compact_revision)`` of the store."""
        self.plan = plan
        self._clock = clock
        self._is_leader = is_leader
        self._revisions = revisions
        self._compact = compact
        self._sleep = sleep

    async def step(self) -> int | None:
        """One round: sample, and compact if it is time. Returns the revision compacted to."""
        if not self._is_leader():
            self.plan.reset()
            return None
        revision, compacted = self._revisions()
        target = self.plan.observe(self._clock.now(), revision, compacted)
        if target is None:
            return None
        try:
            await self._compact(target)
        except Compacted:
            return None  # someone compacted further meanwhile
        except KvError as e:
            logger.warning("auto-compaction to revision %d failed: %s", target, e)
            return None
        logger.info("auto-compacted history before revision %d (%s retention %g)",
                    target, self.plan.mode, self.plan.retention)
        return target

    async def run(self) -> None:
        """Step every ``plan.interval`` seconds, forever."""
        while True:
            await self._sleep(self.plan.interval)
            await self.step()
