"""The receiving end of a peer connection, parsed as bytes arrive.

A peer opens with a handshake frame ``[PROTOCOL, cluster id, sender,
recipient]``; a peer from another cluster, an unknown member, or one that
names another recipient gets ``["refused", reason]`` and is hung up on. After
``["ok"]``, frames carry ``["msgs", [message, ...]]`` or a snapshot streamed
as ``["snap", header, total bytes]``, ``["chunk", bytes]``... ``["end"]``.

Frames are decoded in ``data_received`` and their messages handed to
``deliver`` in the same turn of the event loop, all the messages of one read
in one call: no task and no wake-up per frame. Anything malformed closes the
connection with one warning naming the peer; the member keeps serving. A
connection that sends no handshake within ``HANDSHAKE_TIMEOUT`` is closed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import Any, Protocol, cast

from kvstore.errors import ProtocolError
from kvstore.raft.messages import Message, MessageType, NodeId
from kvstore.transport.codec import (
    FRAME_HEADER,
    decode_message,
    decode_payload,
    encode_frame,
    frame_length,
)

__all__ = ["HANDSHAKE_TIMEOUT", "PROTOCOL", "Inbound", "InboundHost"]

logger = logging.getLogger("kvstore.transport.peer")

PROTOCOL = "steersman-peer/1"
HANDSHAKE_TIMEOUT = 5.0


class InboundHost(Protocol):
    """What an inbound connection needs from its transport (``PeerTransport`` is one)."""

    cluster_id: str
    member_id: NodeId
    peers: dict[NodeId, tuple[str, int]]
    max_frame: int
    refused_connections: int
    deliver: Callable[[list[Message]], None]
    connections: set[Inbound]


class Inbound(asyncio.Protocol):
    """One connection from a peer (see the module docstring)."""

    def __init__(self, host: InboundHost) -> None:
        self.host = host
        self.transport: asyncio.Transport | None = None
        self.peer: Any = None
        self.buf = bytearray()
        self.sender: NodeId | None = None  # known once the handshake is accepted
        # A snapshot being received: its header message, announced size, bytes so far.
        self.snapshot: tuple[Message, int, bytearray] | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses.
        self.transport = cast(asyncio.Transport, transport)
        self.peer = transport.get_extra_info("peername")
        self.host.connections.add(self)
        self.timer = asyncio.get_running_loop().call_later(HANDSHAKE_TIMEOUT, self._no_handshake)

    def connection_lost(self, exc: Exception | None) -> None:
        self.host.connections.discard(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.transport = None
        self.snapshot = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def _no_handshake(self) -> None:
        self.timer = None
        if self.sender is None:
            self.close()

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            return
        buf = self.buf
        buf += data
        msgs: list[Message] = []
        pos = 0
        try:
            max_frame = self.host.max_frame
            header = FRAME_HEADER.size
            while len(buf) - pos >= header:
                n = frame_length(bytes(buf[pos : pos + header]), max_frame=max_frame)
                end = pos + header + n
                if len(buf) < end:
                    break
                frame = decode_payload(bytes(buf[pos + header : end]))
                pos = end
                self._frame(frame, msgs)
                if self.transport is None:
                    return
        except ProtocolError as e:
            logger.warning("closing peer connection from %s: %s", self.peer, e)
            self.close()
            return
        finally:
            if pos:
                del buf[:pos]
        if msgs:
            self.host.deliver(msgs)

    def _frame(self, frame: Any, msgs: list[Message]) -> None:
        if self.sender is None:
            self._handshake(frame)
            return
        if self.snapshot is not None:
            self._snapshot_part(frame, msgs)
            return
        if not isinstance(frame, list) or not frame:
            raise ProtocolError("malformed frame")
        kind = frame[0]
        if kind == "msgs" and len(frame) == 2 and isinstance(frame[1], list):
            me, sender = self.host.member_id, self.sender
            for v in frame[1]:
                m = decode_message(v)
                # A forwarded leadership transfer names the transferee in from_.
                if m.to != me or (m.from_ != sender and m.type != MessageType.TRANSFER_LEADER):
                    raise ProtocolError(f"message {m.from_}->{m.to} on the connection from {sender}")
                msgs.append(m)
        elif kind == "snap" and len(frame) == 3:
            m = decode_message(frame[1])
            total = frame[2]
            if m.type != MessageType.SNAP or m.snapshot is None or type(total) is not int:
                raise ProtocolError("malformed snapshot header")
            if m.from_ != self.sender or m.to != self.host.member_id:
                raise ProtocolError("snapshot for another member")
            self.snapshot = (m, total, bytearray())
        else:
            raise ProtocolError(f"unexpected frame {kind!r}")

    def _snapshot_part(self, frame: Any, msgs: list[Message]) -> None:
        if self.snapshot is None:
            return
        m, total, data = self.snapshot
        if frame == ["end"]:
            self.snapshot = None
            if len(data) != total:
                raise ProtocolError(f"snapshot truncated: {len(data)} of {total} bytes")
            if m.snapshot is None:
                raise ProtocolError("malformed snapshot header")
            snap = dataclasses.replace(m.snapshot, data=bytes(data))
            msgs.append(dataclasses.replace(m, snapshot=snap))
            return
        if not (isinstance(frame, list) and len(frame) == 2 and frame[0] == "chunk"
                and isinstance(frame[1], bytes)):
            raise ProtocolError("malformed snapshot chunk")
        data += frame[1]
        if len(data) > total:
            raise ProtocolError("snapshot longer than announced")

    def _handshake(self, hello: Any) -> None:
        if not (isinstance(hello, list) and len(hello) == 4 and hello[0] == PROTOCOL):
            raise ProtocolError("bad handshake")
        host = self.host
        _, cluster_id, sender, recipient = hello
        reason = None
        if cluster_id != host.cluster_id:
            reason = f"cluster id {cluster_id!r} is not {host.cluster_id!r}"
        elif sender not in host.peers:
            reason = f"member {sender!r} is not a member of this cluster"
        elif recipient != host.member_id:
            reason = f"this is member {host.member_id}, not {recipient!r}"
        if reason is not None:
            host.refused_connections += 1
            if self.transport is not None:
                self.transport.write(encode_frame(["refused", reason]))
            raise ProtocolError(f"refused peer: {reason}")
        self.sender = NodeId(sender)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.transport is not None:
            self.transport.write(encode_frame(["ok"]))
