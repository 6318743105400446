"""Per-key exponential back-off on an injected clock (client-go's ``flowcontrol.Backoff``).

The DaemonSet controller backs off deleting failed daemon pods per
``<daemonset uid>/<node>``, so a node whose agent keeps rejecting the pod
does not make it create and delete pods in a hot loop. ``next(key)``
records a step: the delay starts at ``initial`` seconds and doubles up to
``maximum``; an entry untouched for twice ``maximum`` starts over.
``in_backoff_since_update(key)`` is whether the last step is less than the
current delay ago. ``gc()`` forgets entries idle for twice ``maximum``.
"""

from __future__ import annotations

from dataclasses import dataclass

from kvstore.clock import Clock

__all__ = ["FAILED_POD_BACKOFF_INITIAL", "FAILED_POD_BACKOFF_MAX", "Backoff"]

FAILED_POD_BACKOFF_INITIAL = 1.0
FAILED_POD_BACKOFF_MAX = 15 * 60.0


@dataclass(slots=True)
class _Entry:
    delay: float
    last_update: float


class Backoff:
    """Delays by key (see the module docstring)."""

    def __init__(self, clock: Clock, *, initial: float = FAILED_POD_BACKOFF_INITIAL,
                 maximum: float = FAILED_POD_BACKOFF_MAX) -> None:
        if initial <= 0 or maximum < initial:
            raise ValueError("need 0 < initial <= maximum")
        self.clock = clock
        self.initial = initial
        self.maximum = maximum
        self._entries: dict[str, _Entry] = {}

    def _expired(self, entry: _Entry, now: float) -> bool:
        return now - entry.last_update > 2 * self.maximum

    def get(self, key: str) -> float:
        """The current delay of ``key`` (0 if it has none)."""
        entry = self._entries.get(key)
        return entry.delay if entry is not None else 0.0

    def next(self, key: str) -> float:
        """Record a step for ``key``; its new delay."""
        now = self.clock.now()
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, now):
            entry = self._entries[key] = _Entry(self.initial, now)
        else:
            entry.delay = min(entry.delay * 2, self.maximum)
            entry.last_update = now
        return entry.delay

    def in_backoff_since_update(self, key: str) -> bool:
        """Whether less than the current delay has passed since the last step of ``key``."""
        entry = self._entries.get(key)
        if entry is None:
            return False
        now = self.clock.now()
        if self._expired(entry, now):
            return False
        return now - entry.last_update < entry.delay

    def remaining(self, key: str) -> float:
        """Seconds until ``key``'s back-off ends (0 if not backing off)."""
        entry = self._entries.get(key)
        if entry is None or not self.in_backoff_since_update(key):
            return 0.0
        return entry.last_update + entry.delay - self.clock.now()

    def gc(self) -> None:
        """Forget the entries idle for twice the maximum delay."""
        now = self.clock.now()
        for key in sorted(self._entries):
            if self._expired(self._entries[key], now):
                del self._entries[key]
