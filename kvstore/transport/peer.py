"""Raft traffic between members over asyncio TCP.

Each member listens on its peer address and keeps one outbound connection per
peer. A connection opens with a handshake naming the cluster and both member
ids; a peer from another cluster or an unknown member is refused and logged.

Outbound messages wait in a bounded per-peer queue and leave in batches (one
frame carries every message queued since the last write), with TCP
backpressure through ``drain()``. A full queue drops messages, as an
unreliable network would: Raft retransmits what matters. A lost connection is
retried with jittered exponential backoff and reported to the core as
unreachable. Snapshots are streamed in chunks so no frame exceeds the limit,
and the core is told whether the stream completed. The receiving end of each
connection is ``kvstore.transport.inbound``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kvstore.errors import ProtocolError, TooLarge
from kvstore.raft.messages import Message, MessageType, NodeId
from kvstore.transport.codec import (
    DEFAULT_MAX_FRAME,
    FRAME_HEADER,
    decode_payload,
    encode_frame,
    encode_message,
    frame_length,
)
from kvstore.transport.inbound import HANDSHAKE_TIMEOUT, PROTOCOL, Inbound

__all__ = ["PROTOCOL", "PeerTransport", "read_frame"]

logger = logging.getLogger(__name__)

SNAPSHOT_CHUNK = 1 << 20
MAX_BATCH = 1024
CLOSE_TIMEOUT = 3.0


async def read_frame(reader: asyncio.StreamReader, *, max_frame: int = DEFAULT_MAX_FRAME) -> Any:
    """Read one length-prefixed msgpack frame; raises ``ProtocolError`` on bad input."""
    header = await reader.readexactly(FRAME_HEADER.size)
    n = frame_length(header, max_frame=max_frame)
    return decode_payload(await reader.readexactly(n))


def _write(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Write ``data``, or raise ``ConnectionResetError`` if the connection is already closing.

    A peer that died closes the connection under us (we never read after the
    handshake, so the EOF closes the transport). asyncio would then drop the
    write silently and uvloop raises ``RuntimeError``; either way the sender
    must notice, reconnect and report the peer unreachable.
    """
    if writer.is_closing():
        raise ConnectionResetError("the connection to the peer is closed")
    writer.write(data)


class PeerTransport:
    """Sends Raft messages to peers and hands received ones to ``deliver``."""

    def __init__(
        self,
        *,
        cluster_id: str,
        member_id: NodeId,
        peers: Mapping[NodeId, tuple[str, int]],
        deliver: Callable[[list[Message]], None],
        report_unreachable: Callable[[NodeId], None],
        report_snapshot: Callable[[NodeId, bool], None],
        max_frame: int = DEFAULT_MAX_FRAME,
        max_queue: int = 8192,
        rng: random.Random | None = None,
    ) -> None:
        self.cluster_id = cluster_id
        self.member_id = member_id
        self.peers = {p: a for p, a in peers.items() if p != member_id}
        self.deliver = deliver
        self._report_unreachable = report_unreachable
        self._report_snapshot = report_snapshot
        self.max_frame = max_frame
        self._rng = rng or random.Random()
        self._senders = {
            p: _PeerSender(self, p, addr, max_queue=max_queue) for p, addr in self.peers.items()
        }
        self._server: asyncio.Server | None = None
        self.connections: set[Inbound] = set()
        self.refused_connections = 0

    async def listen(self, host: str, port: int) -> int:
        """Accept peer connections on ``host:port``; returns the bound port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Inbound(self), host, port)
        for sender in self._senders.values():
            sender.start()
        return int(self._server.sockets[0].getsockname()[1])

    def send(self, messages: Iterable[Message]) -> None:
        """Send messages to their recipients; never blocks.

        Messages to a peer whose connection is up and idle are written at once,
        in one frame per peer; otherwise they wait in the peer's queue.
        """
        by_peer: dict[NodeId, list[Message]] = {}
        for m in messages:
            by_peer.setdefault(m.to, []).append(m)
        for peer, msgs in by_peer.items():
            sender = self._senders.get(peer)
            if sender is None:
                logger.error("dropping %d messages to unknown member %d", len(msgs), peer)
                continue
            if not sender.try_write_now(msgs):
                for m in msgs:
                    sender.enqueue(m)

    def connected(self, peer: NodeId) -> bool:
        """Whether the outbound connection to ``peer`` is up."""
        sender = self._senders.get(peer)
        return sender is not None and sender.connected

    async def close(self) -> None:
        """Stop sending and accepting; never waits more than a few seconds."""
        if self._server is not None:
            self._server.close()
        for sender in self._senders.values():
            await sender.stop()
        for conn in list(self.connections):
            conn.close()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await self._server.wait_closed()


class _PeerSender:
    """The outbound connection to one peer and its queue."""

    def __init__(
        self, transport: PeerTransport, peer: NodeId, addr: tuple[str, int], *, max_queue: int
    ) -> None:
        self.t = transport
        self.peer = peer
        self.addr = addr
        self.max_queue = max_queue
        self.queue: deque[Message] = deque()
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.connected = False
        self.stopping = False
        self.dropped = 0
        # Set while the pump waits on an empty queue with the connection up.
        self.idle_writer: asyncio.StreamWriter | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self.stopping = True
        task = self.task
        if task is None:
            return
        for _ in range(int(CLOSE_TIMEOUT / 0.1)):
            task.cancel()
            done, _pending = await asyncio.wait({task}, timeout=0.1)
            if done:
                return
        logger.error("the sender to peer %d did not stop", self.peer)

    def try_write_now(self, msgs: list[Message]) -> bool:
        """Write ``msgs`` in one frame if the connection is up and idle; False if not sent."""
        writer = self.idle_writer
        if writer is None or self.queue or writer.transport.get_write_buffer_size() > (1 << 20):
            return False
        if any(m.type == MessageType.SNAP for m in msgs):
            return False
        try:
            _write(writer, encode_frame(["msgs", [encode_message(m) for m in msgs]],
                                        max_frame=self.t.max_frame))
        except (TooLarge, OSError, RuntimeError):
            # Let the pump send them one by one, or find the broken connection.
            return False
        return True

    def enqueue(self, m: Message) -> None:
        if len(self.queue) >= self.max_queue or (not self.connected and len(self.queue) >= 256):
            self.dropped += 1
            if m.type == MessageType.SNAP:
                self.t._report_snapshot(self.peer, False)
            return
        self.queue.append(m)
        self.wake.set()

    def _fail_queued(self) -> None:
        while self.queue:
            m = self.queue.popleft()
            if m.type == MessageType.SNAP:
                self.t._report_snapshot(self.peer, False)

    async def _run(self) -> None:
        backoff = 0.05
        while not self.stopping:
            writer: asyncio.StreamWriter | None = None
            try:
                # asyncio.timeout, not wait_for: in Python 3.11 wait_for can
                # swallow a cancellation that races with completion, which
                # would keep this loop running after stop().
                async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                    reader, conn_writer = await asyncio.open_connection(*self.addr)
                writer = conn_writer
                conn_writer.write(
                    encode_frame([PROTOCOL, self.t.cluster_id, self.t.member_id, self.peer])
                )
                async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                    reply = await read_frame(reader)
                if reply != ["ok"]:
                    raise ProtocolError(f"peer {self.peer} refused the connection: {reply!r}")
                self.connected = True
                backoff = 0.05
                logger.info("connected to peer %d at %s:%d", self.peer, *self.addr)
                await self._pump(conn_writer)
            except asyncio.CancelledError:
                raise
            except (OSError, ProtocolError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
                if self.connected:
                    logger.warning("lost connection to peer %d: %s", self.peer, e)
                else:
                    logger.debug("cannot reach peer %d: %s", self.peer, e)
                self.connected = False
                self._fail_queued()
                self.t._report_unreachable(self.peer)
                await asyncio.sleep(backoff * (0.5 + self.t._rng.random()))
                backoff = min(backoff * 2, 1.0)
            finally:
                if writer is not None:
                    writer.close()

    async def _pump(self, writer: asyncio.StreamWriter) -> None:
        while True:
            if not self.queue:
                self.wake.clear()
                self.idle_writer = writer
                try:
                    await self.wake.wait()
                finally:
                    self.idle_writer = None
            batch: list[Any] = []
            while self.queue and len(batch) < MAX_BATCH:
                m = self.queue[0]
                if m.type == MessageType.SNAP:
                    if batch:
                        break
                    self.queue.popleft()
                    await self._send_snapshot(writer, m)
                    continue
                self.queue.popleft()
                batch.append(encode_message(m))
            if batch:
                try:
                    _write(writer, encode_frame(["msgs", batch], max_frame=self.t.max_frame))
                except TooLarge:
                    # One oversized batch: send the messages one by one.
                    for v in batch:
                        _write(writer, encode_frame(["msgs", [v]], max_frame=self.t.max_frame))
                await writer.drain()

    async def _send_snapshot(self, writer: asyncio.StreamWriter, m: Message) -> None:
        if m.snapshot is None:
            return
        data = m.snapshot.data
        header = dataclasses.replace(m, snapshot=dataclasses.replace(m.snapshot, data=b""))
        try:
            _write(writer, encode_frame(["snap", encode_message(header), len(data)]))
            view = memoryview(data)
            for off in range(0, len(data), SNAPSHOT_CHUNK):
                _write(writer, encode_frame(["chunk", bytes(view[off : off + SNAPSHOT_CHUNK])]))
                await writer.drain()
            _write(writer, encode_frame(["end"]))
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            self.t._report_snapshot(self.peer, False)
            raise
        logger.info("sent snapshot at %d to peer %d", m.snapshot.metadata.index, self.peer)
        self.t._report_snapshot(self.peer, True)
