"""The scheduling queue: pending pods in priority order, with back-off, as kube-scheduler keeps them.

Every pending pod is in one state:

- ``ACTIVE``: waiting its turn. ``pop`` hands out the active pod with the
  highest ``spec.priority``, then the oldest ``creationTimestamp``, then the
  one queued first.
- ``IN_FLIGHT``: popped, being scheduled. It ends ``done`` (bound, or no
  longer ours), ``unschedulable``, or ``backoff`` (an error).
- ``UNSCHEDULABLE``: no node fitted. It waits for a cluster event that may
  help (``move_all``: a node added or changed, an assigned pod gone) or for
  ``max_unschedulable_seconds`` to pass, whichever comes first; either way
  it then waits out its back-off.
- ``BACKOFF``: waits until ``backoff_until``. The back-off doubles with each
  failed attempt, from ``initial_backoff_seconds`` up to ``max_backoff_seconds``.

An event that arrives while a pod is in flight is not lost: a pod found
unschedulable after a ``move_all`` (or an update of the pod itself) during
its attempt goes to ``BACKOFF``, not ``UNSCHEDULABLE``.

The queue only keeps state: methods that make a pod due later return the
delay after which the caller should call ``wake(key)``; those that make it
active at once return delay 0.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controllers.api.objects import parse_timestamp
from kvstore.clock import Clock

__all__ = ["PodState", "QueuedPod", "SchedulingQueue", "check_backoffs"]


class PodState(enum.Enum):
    ACTIVE = "Active"
    IN_FLIGHT = "InFlight"
    UNSCHEDULABLE = "Unschedulable"
    BACKOFF = "Backoff"


@dataclass(slots=True, eq=False)
class QueuedPod:
    """One pending pod and its scheduling history."""

    key: str
    pod: Mapping[str, Any]
    priority: int
    created: float
    seq: int
    state: PodState = PodState.ACTIVE
    attempts: int = 0
    backoff_until: float = 0.0
    unschedulable_since: float = 0.0
    # Whether something that may help happened while the pod was in flight.
    moved_in_flight: bool = False
    # Which heap entry is current (older ones are skipped by ``pop``).
    token: int = 0


def check_backoffs(initial_backoff_seconds: float, max_backoff_seconds: float,
                   max_unschedulable_seconds: float) -> None:
    """Raise ``ValueError`` unless the queue's waiting times make sense."""
    if not 0 < initial_backoff_seconds <= max_backoff_seconds:
        raise ValueError("back-offs must be positive, the initial one at most the maximum")
    if max_unschedulable_seconds <= 0:
        raise ValueError("max_unschedulable_seconds must be positive")


class SchedulingQueue:
    """Pending pods by priority, with back-off (see the module docstring)."""

    def __init__(self, clock: Clock, *, initial_backoff_seconds: float = 1.0,
                 max_backoff_seconds: float = 10.0,
                 max_unschedulable_seconds: float = 300.0) -> None:
        check_backoffs(initial_backoff_seconds, max_backoff_seconds, max_unschedulable_seconds)
        self.clock = clock
        self.initial_backoff_seconds = initial_backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.max_unschedulable_seconds = max_unschedulable_seconds
        self._pods: dict[str, QueuedPod] = {}
        self._heap: list[tuple[int, float, int, int, str]] = []
        self._seq = 0
        # Keys that were popped: the only ones that can be in flight or unschedulable
        # (``move_all`` looks at these, not at every pending pod); pruned as it goes.
        self._popped: dict[str, None] = {}

    def __len__(self) -> int:
        return len(self._pods)

    def __contains__(self, key: object) -> bool:
        return key in self._pods

    def state(self, key: str) -> PodState | None:
        entry = self._pods.get(key)
        return entry.state if entry is not None else None

    def get(self, key: str) -> QueuedPod | None:
        return self._pods.get(key)

    def _activate(self, entry: QueuedPod) -> None:
        entry.state = PodState.ACTIVE
        entry.token += 1
        heapq.heappush(self._heap, (-entry.priority, entry.created, entry.seq, entry.token,
                                    entry.key))

    def _release(self, entry: QueuedPod) -> float:
        """Out of waiting: active if its back-off is over (0), else the back-off left."""
        left = entry.backoff_until - self.clock.now()
        if left <= 0:
            self._activate(entry)
            return 0.0
        entry.state = PodState.BACKOFF
        return left

    def add(self, pod: Mapping[str, Any], *, may_help: bool = True) -> float | None:
        """Queue a pending pod, or take a newer version of one queued.

        ``may_help=False`` says the newer version differs only in what
        cannot change a decision (its status): the pod keeps waiting.

        Returns:
            0 when the pod became active, the back-off left when it now waits
            for it, None when nothing changed for the caller.
        """
        meta = pod.get("metadata")
        meta = meta if isinstance(meta, Mapping) else {}
        key = f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"
        entry = self._pods.get(key)
        if entry is None:
            spec = pod.get("spec")
            priority = spec.get("priority") if isinstance(spec, Mapping) else None
            self._seq += 1
            entry = QueuedPod(key, pod,
                              priority if isinstance(priority, int)
                              and not isinstance(priority, bool) else 0,
                              _created(meta), self._seq)
            self._pods[key] = entry
            self._activate(entry)
            return 0.0
        entry.pod = pod
        if not may_help:
            return None
        if entry.state is PodState.IN_FLIGHT:
            entry.moved_in_flight = True
            return None
        if entry.state is PodState.UNSCHEDULABLE:
            return self._release(entry)
        return None

    def delete(self, key: str) -> None:
        """Forget a pod (deleted, bound elsewhere, or no longer ours)."""
        self._pods.pop(key, None)

    def pop(self) -> QueuedPod | None:
        """The active pod to schedule next, now in flight; None when none is active."""
        while self._heap:
            _, _, _, token, key = heapq.heappop(self._heap)
            entry = self._pods.get(key)
            if entry is None or entry.token != token or entry.state is not PodState.ACTIVE:
                continue
            entry.state = PodState.IN_FLIGHT
            entry.moved_in_flight = False
            self._popped[key] = None
            return entry
        return None

    def done(self, key: str) -> None:
        """The pod left the queue: bound, or no longer for this scheduler."""
        self._pods.pop(key, None)

    def _fail(self, entry: QueuedPod) -> None:
        entry.attempts += 1
        backoff = min(self.initial_backoff_seconds * 2 ** (entry.attempts - 1),
                      self.max_backoff_seconds)
        entry.backoff_until = self.clock.now() + backoff

    def unschedulable(self, key: str) -> float | None:
        """No node fitted the in-flight pod ``key``; returns when to ``wake`` it (None: gone)."""
        entry = self._pods.get(key)
        if entry is None or entry.state is not PodState.IN_FLIGHT:
            return None
        self._fail(entry)
        if entry.moved_in_flight:
            return self._release(entry)
        entry.state = PodState.UNSCHEDULABLE
        entry.unschedulable_since = self.clock.now()
        return self.max_unschedulable_seconds

    def backoff(self, key: str) -> float | None:
        """Scheduling the in-flight pod ``key`` failed; returns when to ``wake`` it (None: gone)."""
        entry = self._pods.get(key)
        if entry is None or entry.state is not PodState.IN_FLIGHT:
            return None
        self._fail(entry)
        return self._release(entry)

    def wake(self, key: str) -> float | None:
        """A timer of ``key`` fired: make it active if its wait is over.

        Returns:
            0 when it became active, a delay when it must wait more, None otherwise.
        """
        entry = self._pods.get(key)
        if entry is None:
            return None
        now = self.clock.now()
        if entry.state is PodState.BACKOFF and now >= entry.backoff_until:
            self._activate(entry)
            return 0.0
        if entry.state is PodState.UNSCHEDULABLE:
            waited = now - entry.unschedulable_since
            if waited >= self.max_unschedulable_seconds:
                return self._release(entry)
            return self.max_unschedulable_seconds - waited
        return None

    def move_all(self) -> list[tuple[str, float]]:
        """Something changed that may help: release every unschedulable pod.

        Returns:
            ``(key, delay)`` per released pod, by key: 0 for active ones,
            else the back-off left.
        """
        released: list[tuple[str, float]] = []
        for key in sorted(self._popped):
            entry = self._pods.get(key)
            if entry is not None and entry.state is PodState.UNSCHEDULABLE:
                released.append((key, self._release(entry)))
            elif entry is not None and entry.state is PodState.IN_FLIGHT:
                entry.moved_in_flight = True
            else:
                del self._popped[key]  # gone, active or backing off: pop adds it back
        return released

    def active_keys(self) -> list[str]:
        """The active pods in the order ``pop`` would hand them out."""
        ordered = sorted(e for e in self._heap
                         if (p := self._pods.get(e[4])) is not None and p.token == e[3]
                         and p.state is PodState.ACTIVE)
        return [e[4] for e in ordered]


def _created(meta: Mapping[str, Any]) -> float:
    stamp = meta.get("creationTimestamp")
    if isinstance(stamp, str):
        try:
            return parse_timestamp(stamp)
        except ValueError:
            return 0.0
    return 0.0
