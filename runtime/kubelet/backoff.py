"""Crash-loop back-off: how long a container waits before it is restarted.

As Kubernetes documents it: the delay before each restart starts at 10 s
and doubles (20 s, 40 s, ...) up to 300 s. An attempt that ran for 10
minutes or more before it exited resets the delay to 10 s. One
``CrashLoopBackoff`` belongs to one container of one pod.
"""

from __future__ import annotations

__all__ = ["CrashLoopBackoff", "INITIAL_SECONDS", "MAX_SECONDS", "RESET_AFTER_SECONDS"]

INITIAL_SECONDS = 10.0
MAX_SECONDS = 300.0
RESET_AFTER_SECONDS = 600.0


class CrashLoopBackoff:
    """Restart delays of one container (see the module docstring)."""

    def __init__(
        self,
        *,
        initial_seconds: float = INITIAL_SECONDS,
        max_seconds: float = MAX_SECONDS,
        reset_after_seconds: float = RESET_AFTER_SECONDS,
    ) -> None:
        self.initial_seconds = initial_seconds
        self.max_seconds = max_seconds
        self.reset_after_seconds = reset_after_seconds
        self._last = 0.0

    def next_delay(self, ran_for_seconds: float) -> float:
        """The delay before the next restart of an attempt that ran ``ran_for_seconds``."""
        if ran_for_seconds >= self.reset_after_seconds or self._last == 0.0:
            self._last = self.initial_seconds
        else:
            self._last = min(self.max_seconds, self._last * 2)
        return self._last
