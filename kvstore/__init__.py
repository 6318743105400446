"""Steersman's watchable, Raft-replicated key-value store.

General layout (imports point down only):

- ``kvstore.client``: ``open`` (an embedded one-member store) and ``connect``
  (a remote cluster): the one key-value interface.
- ``kvstore.node``: ``Node``, one member embedded in an asyncio event loop.
- ``kvstore.raft``: the pure Raft core (no I/O, no clock, no global randomness).
- ``kvstore.storage``: the disk: write-ahead log and snapshots.
- ``kvstore.mvcc``: the replicated state machine: revisions, watch, leases.
- ``kvstore.transport``: peer and client connections over asyncio TCP.
- ``kvstore.testing``: the deterministic simulator and the linearizability checker.
"""

from __future__ import annotations

from kvstore import errors
from kvstore.client import Client, connect, open
from kvstore.mvcc.types import KeyValue
from kvstore.node import Node

__all__ = ["Client", "KeyValue", "Node", "connect", "errors", "open"]
