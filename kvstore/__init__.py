"""Steersman's watchable, Raft-replicated key-value store.

General layout (imports point down only):

- ``kvstore.raft``: the pure Raft core (no I/O, no clock, no global randomness).
- ``kvstore.storage``: the disk: write-ahead log and snapshots.
- ``kvstore.mvcc``: the replicated state machine: revisions, watch, leases.
- ``kvstore.testing``: the deterministic simulator and the linearizability checker.
"""

from __future__ import annotations

from kvstore import errors

__all__ = ["errors"]
