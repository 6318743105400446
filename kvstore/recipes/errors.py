"""Typed errors of the coordination recipes.

They extend the store's tree (``kvstore.errors.KvError``), so ``except
KvError`` still catches everything raised on purpose. Whose fault it is in
brackets::

    KvError
    └── RecipeError          [the coordination state, not the store]
        ├── Locked           (try_lock: another session holds the lock)
        ├── NotElected       (proclaim by a session that is not the leader)
        └── SessionExpired   (the session's lease is gone: nothing it held is held)
"""

from __future__ import annotations

from kvstore.errors import KvError

__all__ = ["Locked", "NotElected", "RecipeError", "SessionExpired"]


class RecipeError(KvError):
    """Base class of the recipes' errors."""


class Locked(RecipeError):
    """The lock is held by another session; ``owner`` is its key, ``owner_revision`` its create revision."""

    def __init__(self, owner: bytes, owner_revision: int) -> None:
        super().__init__(f"locked by {owner!r} (since revision {owner_revision})")
        self.owner = owner
        self.owner_revision = owner_revision


class NotElected(RecipeError):
    """This election candidate is not (or no longer) the leader."""


class SessionExpired(RecipeError):
    """The session's lease expired or was revoked; the locks and leadership it held are gone."""

    def __init__(self, lease_id: int, reason: str = "lease expired or revoked") -> None:
        super().__init__(f"session lease {lease_id:x}: {reason}")
        self.lease_id = lease_id
        self.reason = reason
