"""The disk: a segmented write-ahead log and snapshot files, over a ``Disk`` seam.

- ``disk``: the ``Disk`` Protocol and ``OsDisk`` (real files).
- ``memory_disk``: ``MemoryDisk``, a deterministic fake that can crash.
- ``record``, ``segment``, ``replay``: WAL framing, payloads and recovery.
- ``wal``: ``WAL``, the write-ahead log.
- ``snapshot``: ``SnapshotStore``, atomic verified snapshot files.
- ``log_storage``: ``DiskLogStorage``, WAL + snapshots for one member.
"""

from __future__ import annotations

from kvstore.storage.disk import Disk, DiskFile, OsDisk
from kvstore.storage.log_storage import DiskLogStorage, DiskState
from kvstore.storage.memory_disk import MemoryDisk
from kvstore.storage.replay import Recovered
from kvstore.storage.snapshot import SnapshotStore
from kvstore.storage.wal import WAL

__all__ = [
    "Disk",
    "DiskFile",
    "DiskLogStorage",
    "DiskState",
    "MemoryDisk",
    "OsDisk",
    "Recovered",
    "SnapshotStore",
    "WAL",
]
