"""A member's own snapshots: built in the background, recorded between ready batches.

The state machine pins its state when a snapshot stream starts and keeps
applying while chunks are produced, so a large snapshot never stalls the
member. The file is written and synced in a worker thread beside the WAL;
recording it (a WAL marker and one sync) and compacting the in-memory log
happen in ``install_ready``, called from the ready loop, so they never overlap
a WAL write. A snapshot installed from the leader cancels one in progress.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from kvstore.mvcc.machine import KVStateMachine
from kvstore.mvcc.snapshot import SnapshotReuse
from kvstore.raft.messages import Snapshot, SnapshotMetadata
from kvstore.raft.storage import MemoryLogStorage
from kvstore.storage.log_storage import DiskLogStorage

__all__ = ["Snapshotter"]

logger = logging.getLogger(__name__)

SNAPSHOT_CHUNK_BYTES = 16 << 10


class Snapshotter:
    """Decides when to snapshot, builds the snapshot, and installs it."""

    def __init__(
        self,
        *,
        member_id: int,
        machine: KVStateMachine,
        snapshot_count: int,
        catch_up_entries: int,
        wake: Callable[[], None],
    ) -> None:
        self.member_id = member_id
        self.machine = machine
        self.snapshot_count = snapshot_count
        self.catch_up_entries = catch_up_entries
        self._wake = wake
        # The index of the newest snapshot on disk, and how many requests the
        # machine had applied when it was taken (``snapshot_count`` counts
        # requests, as etcd's does, though a log entry may hold several).
        self.index = 0
        self._requests_at = 0
        self._task: asyncio.Task[None] | None = None
        # Work on disk in worker threads (writing a snapshot file, recording
        # it in the WAL): cancelling the task that waits does not stop the
        # thread, so stopping waits for them.
        self._threads: set[asyncio.Future[None]] = set()
        # A snapshot built and saved, not yet recorded, with the requests it covers.
        self._built: tuple[Snapshot, int] | None = None
        # The previous snapshot's packed history, which the next one reuses.
        self._reuse = SnapshotReuse()

    def restored(self, index: int) -> None:
        """The machine's state is now the snapshot at ``index`` (on disk)."""
        self.index = index
        self._requests_at = self.machine.applied_requests

    def cancel(self) -> None:
        """Drop a snapshot being built or built and not yet recorded."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._built = None

    async def stop(self) -> None:
        """Cancel a build and wait until no thread is still writing its file."""
        task = self._task
        self.cancel()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        if self._threads:
            await asyncio.gather(*self._threads, return_exceptions=True)

    async def install_ready(self, disk: DiskLogStorage, storage: MemoryLogStorage) -> None:
        """Record a built snapshot, if any; start a new one once enough requests were applied."""
        built = self._built
        if built is not None:
            self._built = None
            snap, requests = built
            index = snap.metadata.index
            if storage.snapshot().metadata.index < index <= storage.last_index():
                self._requests_at = requests
                storage.create_snapshot(index, snap.data)
                await self._in_thread(disk.compact_saved, snap)
                self.index = index
                compact_to = index - self.catch_up_entries
                if compact_to > storage.first_index():
                    storage.compact(compact_to)
                logger.info("member %d saved a snapshot at %d (%d bytes)", self.member_id,
                            index, len(snap.data))
        if (self._task is None
                and self.machine.applied_requests - self._requests_at >= self.snapshot_count):
            self._task = asyncio.get_running_loop().create_task(
                self._build(disk, storage), name=f"member-{self.member_id}-snapshot")

    async def _in_thread(self, fn: Callable[[Snapshot], None], snap: Snapshot) -> None:
        fut = asyncio.ensure_future(asyncio.to_thread(fn, snap))
        self._threads.add(fut)
        fut.add_done_callback(self._threads.discard)
        await asyncio.shield(fut)

    async def _build(self, disk: DiskLogStorage, storage: MemoryLogStorage) -> None:
        try:
            index = self.machine.applied_index
            requests = self.machine.applied_requests
            term = storage.term(index)
            parts = []
            # Small chunks: the loop gets a turn after each, so requests keep
            # flowing (a chunk of change-log records covers thousands of revisions).
            for chunk in self.machine.snapshot_chunks(chunk_bytes=SNAPSHOT_CHUNK_BYTES, reuse=self._reuse):
                parts.append(chunk)
                await asyncio.sleep(0)
            snap = Snapshot(
                SnapshotMetadata(index=index, term=term,
                                 conf_state=storage.snapshot().metadata.conf_state),
                b"".join(parts),
            )
            self._reuse.keep(snap.data)
            await self._in_thread(disk.save_snapshot_file, snap)
            self._built = (snap, requests)
            self._wake()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("member %d failed to build a snapshot", self.member_id)
        finally:
            self._task = None
