"""Coordination recipes on the public key-value API: sessions, locks, elections, queues.

General layout (imports point down only):

- ``kvstore.recipes.mutex``: ``Mutex``, a distributed lock served in FIFO order.
- ``kvstore.recipes.election``: ``Election``: campaign, proclaim, observe, resign.
- ``kvstore.recipes.queue``: ``Queue``, a FIFO queue with many producers and consumers.
- ``kvstore.recipes.session``: ``Session``, a lease kept alive in the background.
- ``kvstore.recipes.turn``: contenders in line by create revision, and the waits.
- ``kvstore.recipes.kv``: reading txn answers; the store methods they use are ``kvstore.kv.KV``.
- ``kvstore.recipes.errors``: ``Locked``, ``NotElected``, ``SessionExpired``.

Everything here uses only ``KV``, so it runs the same on an embedded store
(``kvstore.open``), a member (``kvstore.Node``) and a remote client
(``kvstore.connect``)::

    async with kvstore.connect(endpoints) as kv, Session(kv, ttl=10) as session:
        async with Mutex(session, "/locks/report"):
            ...
"""

from __future__ import annotations

from kvstore.recipes.election import Election
from kvstore.recipes.errors import Locked, NotElected, RecipeError, SessionExpired
from kvstore.kv import KV
from kvstore.recipes.mutex import Mutex
from kvstore.recipes.queue import Queue
from kvstore.recipes.session import Session

__all__ = [
    "Election",
    "KV",
    "Locked",
    "Mutex",
    "NotElected",
    "Queue",
    "RecipeError",
    "Session",
    "SessionExpired",
]
