"""Expectations: what a controller has asked the store to do and not yet seen in its cache.

A controller that creates or deletes objects reads its informer's cache,
which lags behind the store. Acting on a cache that has not yet seen the
controller's own writes would repeat them: create the same pods twice, or
delete more than asked. Expectations close that gap, as client-go's
``ControllerExpectations`` do:

- before creating ``n`` objects for a controller key, ``expect_creations(key, n)``;
  before deleting, ``expect_deletions(key, n)`` (or, with
  ``UIDTrackingControllerExpectations``, the keys of the objects to delete);
- the informer's handlers call ``creation_observed`` / ``deletion_observed``
  when the cache shows each one; writes that failed are taken back with
  ``creation_observed`` / ``deletion_observed`` (or ``lower_expectations``)
  by the controller itself, since no event will ever come for them;
- ``satisfied(key)`` is true when nothing is pending, when nothing was ever
  expected for the key, or when the expectations are older than
  ``ttl_seconds`` (5 minutes by default, on the injected clock): a lost event
  delays a controller, it never wedges it.

Setting expectations replaces what was pending for the key. Counts may go
below zero (an event for an object the controller did not create); below
zero counts as fulfilled. All methods are synchronous: on one event loop,
every call is atomic with respect to other tasks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kvstore.clock import Clock

__all__ = [
    "EXPECTATIONS_TIMEOUT",
    "ControlleeExpectations",
    "ControllerExpectations",
    "UIDTrackingControllerExpectations",
]

EXPECTATIONS_TIMEOUT = 5 * 60.0
"""Seconds after which unfulfilled expectations no longer hold a controller back."""


@dataclass(slots=True)
class ControlleeExpectations:
    """Creations and deletions still expected for one controller key, and when they were set."""

    add: int
    delete: int
    timestamp: float

    def fulfilled(self) -> bool:
        """Whether every expected creation and deletion has been observed."""
        return self.add <= 0 and self.delete <= 0


class ControllerExpectations:
    """Expected creation and deletion counts by controller key (see the module docstring)."""

    def __init__(self, clock: Clock, *, ttl_seconds: float = EXPECTATIONS_TIMEOUT) -> None:
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        self.clock = clock
        self.ttl_seconds = ttl_seconds
        self._by_key: dict[str, ControlleeExpectations] = {}

    def get(self, key: str) -> ControlleeExpectations | None:
        """The expectations recorded for ``key``, if any (the live record: do not change it)."""
        return self._by_key.get(key)

    def satisfied(self, key: str) -> bool:
        """Whether the controller may act on its cache for ``key`` (see the module docstring)."""
        exp = self._by_key.get(key)
        return exp is None or exp.fulfilled() or self.is_expired(key)

    def is_expired(self, key: str) -> bool:
        """Whether the expectations of ``key`` were set more than ``ttl_seconds`` ago."""
        exp = self._by_key.get(key)
        return exp is not None and self.clock.now() - exp.timestamp > self.ttl_seconds

    def expires_in(self, key: str) -> float | None:
        """Seconds until the expectations of ``key`` expire (0 if they have), None if none."""
        exp = self._by_key.get(key)
        if exp is None:
            return None
        return max(0.0, exp.timestamp + self.ttl_seconds - self.clock.now())

    def set_expectations(self, key: str, add: int, delete: int) -> None:
        """Replace what is expected for ``key`` with ``add`` creations and ``delete`` deletions."""
        self._by_key[key] = ControlleeExpectations(add, delete, self.clock.now())

    def expect_creations(self, key: str, adds: int) -> None:
        """Expect ``adds`` creations (and no deletions) for ``key``."""
        self.set_expectations(key, adds, 0)

    def expect_deletions(self, key: str, deletes: int) -> None:
        """Expect ``deletes`` deletions (and no creations) for ``key``."""
        self.set_expectations(key, 0, deletes)

    def raise_expectations(self, key: str, add: int, delete: int) -> None:
        """Expect ``add`` more creations and ``delete`` more deletions (no-op if none recorded)."""
        exp = self._by_key.get(key)
        if exp is not None:
            exp.add += add
            exp.delete += delete

    def lower_expectations(self, key: str, add: int, delete: int) -> None:
        """Count ``add`` creations and ``delete`` deletions as done (no-op if none recorded)."""
        exp = self._by_key.get(key)
        if exp is not None:
            exp.add -= add
            exp.delete -= delete

    def creation_observed(self, key: str) -> None:
        """One expected creation for ``key`` happened (or will never happen)."""
        self.lower_expectations(key, 1, 0)

    def deletion_observed(self, key: str) -> None:
        """One expected deletion for ``key`` happened (or will never happen)."""
        self.lower_expectations(key, 0, 1)

    def delete_expectations(self, key: str) -> None:
        """Forget ``key`` (its controller object is gone)."""
        self._by_key.pop(key, None)

    def keys(self) -> list[str]:
        """Every key with expectations, sorted."""
        return sorted(self._by_key)


class UIDTrackingControllerExpectations:
    """Expectations that remember which objects are to be deleted, by object key.

    A deletion is counted once per expected object however many times it is
    observed (a graceful deletion shows up as an update with a deletion
    timestamp, then as the delete itself), and deletions of objects nobody
    asked to delete are not counted at all.
    """

    def __init__(self, clock: Clock, *, ttl_seconds: float = EXPECTATIONS_TIMEOUT) -> None:
        self.counts = ControllerExpectations(clock, ttl_seconds=ttl_seconds)
        self._deleting: dict[str, set[str]] = {}

    def get(self, key: str) -> ControlleeExpectations | None:
        return self.counts.get(key)

    def satisfied(self, key: str) -> bool:
        return self.counts.satisfied(key)

    def expires_in(self, key: str) -> float | None:
        return self.counts.expires_in(key)

    def expect_creations(self, key: str, adds: int) -> None:
        """Expect ``adds`` creations for ``key``; forgets any deletions still expected."""
        self._deleting.pop(key, None)
        self.counts.expect_creations(key, adds)

    def creation_observed(self, key: str) -> None:
        self.counts.creation_observed(key)

    def expect_deletions(self, key: str, object_keys: Iterable[str]) -> None:
        """Expect the deletion of each object in ``object_keys`` (``namespace/name``)."""
        doomed = set(object_keys)
        self._deleting[key] = doomed
        self.counts.expect_deletions(key, len(doomed))

    def deletion_observed(self, key: str, object_key: str) -> None:
        """The object ``object_key`` is gone or going; counts only if its deletion was expected."""
        doomed = self._deleting.get(key)
        if doomed is not None and object_key in doomed:
            doomed.discard(object_key)
            self.counts.deletion_observed(key)

    def expected_deletions(self, key: str) -> list[str]:
        """The object keys whose deletion is still expected for ``key``, sorted."""
        return sorted(self._deleting.get(key, ()))

    def delete_expectations(self, key: str) -> None:
        """Forget ``key`` and the objects it expected to see deleted."""
        self._deleting.pop(key, None)
        self.counts.delete_expectations(key)

    def keys(self) -> list[str]:
        return self.counts.keys()
