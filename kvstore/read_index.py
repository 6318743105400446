"""Linearizable reads waiting for ReadIndex rounds (Raft dissertation §6.4).

Reads arriving in one turn of the event loop share a batch; the driver sends
a batch as one ReadIndex request (its context is the batch's id), the core
answers with the commit index the batch must wait for, and the batch is
released once the state machine has applied that index. A batch sent to a
leader that went away is collected again and sent to the next one.
"""

from __future__ import annotations

import asyncio
import struct

from kvstore.errors import Overloaded

__all__ = ["ReadBatch", "ReadIndexQueue"]

_CTX = struct.Struct(">Q")


class ReadBatch:
    """Reads waiting for one ReadIndex round."""

    __slots__ = ("ctx", "futures", "index")

    def __init__(self, ctx: bytes) -> None:
        self.ctx = ctx
        self.futures: list[asyncio.Future[None]] = []
        self.index = -1  # the commit index to wait for, once known

    def settle(self, err: Exception | None = None) -> None:
        """Release every read of the batch, or fail them with ``err``."""
        for f in self.futures:
            if not f.done():
                if err is None:
                    f.set_result(None)
                else:
                    f.set_exception(err)


class ReadIndexQueue:
    """Batches of reads: collecting, sent to the leader, and waiting to be applied."""

    def __init__(self, *, boot: int, max_pending: int) -> None:
        """``boot`` makes this run's batch ids unique; ``max_pending`` bounds reads in flight."""
        self._boot = boot
        self._max_pending = max_pending
        self._next = 0
        self._collecting: ReadBatch | None = None
        self._sent: dict[bytes, ReadBatch] = {}
        self._known: list[ReadBatch] = []  # index known, waiting for it to be applied

    def add(self) -> asyncio.Future[None]:
        """A read joins the collecting batch; the future resolves once it may be served.

        Raises ``Overloaded`` when too many reads are in flight.
        """
        batch = self._collecting
        if batch is None:
            if sum(len(b.futures) for b in self._sent.values()) >= self._max_pending:
                raise Overloaded("too many pending reads; retry later")
            self._next += 1
            batch = self._collecting = ReadBatch(_CTX.pack(self._boot | self._next))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        batch.futures.append(fut)
        return fut

    def take(self) -> ReadBatch | None:
        """The collecting batch, now to be sent (``sent`` or ``settle(err)`` it next)."""
        batch, self._collecting = self._collecting, None
        return batch

    def sent(self, batch: ReadBatch) -> None:
        """``batch`` went to the core; its answer will come as a read state."""
        self._sent[batch.ctx] = batch

    def answered(self, ctx: bytes, index: int) -> None:
        """The core answered the batch ``ctx``: it waits for ``index`` to be applied."""
        batch = self._sent.pop(ctx, None)
        if batch is not None:
            batch.index = index
            self._known.append(batch)

    def release(self, applied: int) -> None:
        """Release the batches whose index ``applied`` has reached."""
        if not self._known:
            return
        keep = []
        for batch in self._known:
            if batch.index <= applied:
                batch.settle()
            else:
                keep.append(batch)
        self._known = keep

    def resend(self) -> None:
        """The leader changed: batches sent to the old one will never be answered, collect them again."""
        if not self._sent:
            return
        retry = list(self._sent.values())
        self._sent = {}
        for batch in retry:
            if self._collecting is None:
                self._collecting = batch
            else:
                self._collecting.futures.extend(batch.futures)

    def fail(self, err: Exception) -> None:
        """Fail every read, wherever it is."""
        batches = [*self._sent.values(), *self._known]
        if self._collecting is not None:
            batches.append(self._collecting)
        self._collecting = None
        self._sent = {}
        self._known = []
        for batch in batches:
            batch.settle(err)
