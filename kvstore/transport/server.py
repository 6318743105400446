"""The client port of a member: many requests pipelined over one TCP connection.

A request is one msgpack value ``[id, method, args]``; each answer is
``[id, status, payload]`` with status ``OK`` (the result), ``ERROR``
(``[error class, arguments]``) or ``EVENT`` (one watch response; a watch
keeps its request id until it is cancelled). Answers may come in any order.

Writes need no task and no future of their own: the member calls back
when it applies the proposal, and the answer is queued there. Answers produced in one turn of the
event loop leave in one write. A connection that sends something
undecodable, or a value above the frame limit, is closed and logged; the
member keeps serving everyone else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, cast

import msgpack

from kvstore.errors import InvalidRequest, KvError, ProtocolError, RequestError, TooLarge, Unavailable
from kvstore.mvcc import command
from kvstore.mvcc.request import (
    RangeRequest,
    TxnRequest,
    check_request,
)
from kvstore.mvcc.types import WatchFilter
from kvstore.node import Node
from kvstore.transport.codec import DEFAULT_MAX_FRAME
from kvstore.transport.wire import (
    encode_error,
    encode_lease_status,
    encode_result,
    encode_watch_response,
)

__all__ = ["ClientServer", "ERROR", "EVENT", "OK"]

logger = logging.getLogger(__name__)

OK = 0
ERROR = 1
EVENT = 2


class ClientServer:
    """Serves the key-value API of one member on a TCP port."""

    def __init__(
        self, node: Node, *, max_frame: int = DEFAULT_MAX_FRAME, max_watchers: int = 1000
    ) -> None:
        self.node = node
        self.max_frame = max_frame
        self.max_watchers = max_watchers
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self.protocol_errors = 0

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port``; returns the bound port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for c in list(self._connections):
            c.close()
        if self._server is not None:
            await self._server.wait_closed()


class _Connection(asyncio.Protocol):
    def __init__(self, server: ClientServer) -> None:
        self.server = server
        self.node = server.node
        self.transport: asyncio.Transport | None = None
        self.unpacker = msgpack.Unpacker(
            raw=False, max_buffer_size=server.max_frame, strict_map_key=False
        )
        self.packer = msgpack.Packer(use_bin_type=True)
        self.out: list[bytes] = []
        self.flush_scheduled = False
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.watches: dict[int, asyncio.Task[None]] = {}
        self.loop = asyncio.get_running_loop()
        self.peer: Any = None

    # -- asyncio.Protocol ----------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses.
        self.transport = cast(asyncio.Transport, transport)
        self.peer = transport.get_extra_info("peername")
        self.transport.set_write_buffer_limits(high=4 << 20)
        self.server._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._connections.discard(self)
        for t in list(self.tasks.values()) + list(self.watches.values()):
            t.cancel()
        self.tasks.clear()
        self.watches.clear()
        self.transport = None

    def pause_writing(self) -> None:
        # The client reads slower than it asks: stop reading its requests.
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        try:
            self.unpacker.feed(data)
            for req in self.unpacker:
                self._dispatch(req)
        except (msgpack.BufferFull, ValueError, msgpack.ExtraData, msgpack.FormatError,
                msgpack.StackError, TypeError, ProtocolError) as e:
            # TypeError: msgpack met a map keyed by a list or a map.
            self.server.protocol_errors += 1
            logger.warning("closing client connection from %s: bad input: %s", self.peer,
                           e or type(e).__name__)
            self.close()

    def close(self) -> None:
        if self.transport is not None:
            self._flush()
            self.transport.close()

    # -- answering -------------------------------------------------------------
    def reply(self, req_id: int, status: int, payload: Any) -> None:
        if self.transport is None:
            return
        self.out.append(self.packer.pack([req_id, status, payload]))
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self._flush)

    def reply_error(self, req_id: int, e: BaseException) -> None:
        if not isinstance(e, KvError):
            logger.exception("internal error answering request %d", req_id, exc_info=e)
        self.reply(req_id, ERROR, encode_error(e))

    def _flush(self) -> None:
        self.flush_scheduled = False
        if self.out and self.transport is not None:
            self.transport.write(b"".join(self.out))
        self.out = []

    def _answer_future(self, req_id: int, encode: Callable[[Any], Any]) -> Callable[[asyncio.Future[Any]], None]:
        def done(fut: asyncio.Future[Any]) -> None:
            if fut.cancelled():
                self.reply(req_id, ERROR, encode_error(Unavailable("request cancelled")))
                return
            e = fut.exception()
            if e is not None:
                self.reply_error(req_id, e)
            else:
                self.reply(req_id, OK, encode(fut.result()))
        return done

    def _answer(self, req_id: int) -> Callable[[object], None]:
        """What answers a proposal (see ``Node.submit_command_with``): no future, no extra turn."""

        def answer(outcome: object) -> None:
            # Called from the member's apply loop: nothing may escape.
            if isinstance(outcome, BaseException):
                self.reply_error(req_id, outcome)
                return
            try:
                payload = encode_result(outcome)  # type: ignore[arg-type]
            except ProtocolError as e:
                self.reply_error(req_id, e)
                return
            self.reply(req_id, OK, payload)

        return answer

    def _spawn(self, req_id: int, coro: Any, encode: Callable[[Any], Any]) -> None:
        task = self.loop.create_task(coro)
        self.tasks[req_id] = task
        task.add_done_callback(self._answer_future(req_id, encode))
        task.add_done_callback(lambda _t: self.tasks.pop(req_id, None))

    # -- requests -------------------------------------------------------------
    def _dispatch(self, req: Any) -> None:
        if not (isinstance(req, list) and len(req) == 3 and type(req[0]) is int
                and isinstance(req[1], str) and isinstance(req[2], list)):
            raise ProtocolError("a request is [id, method, args]")
        req_id, method, args = req
        handler = _HANDLERS.get(method)
        if handler is None:
            self.reply(req_id, ERROR, encode_error(InvalidRequest(f"unknown method {method!r}")))
            return
        try:
            handler(self, req_id, args)
        except (KvError, TypeError, ValueError, IndexError) as e:
            if isinstance(e, KvError):
                self.reply_error(req_id, e)
            else:
                self.reply_error(req_id, InvalidRequest(f"bad arguments for {method}: {e}"))

    def _put(self, req_id: int, args: list[Any]) -> None:
        key, value, lease, prev_kv = args
        if type(key) is not bytes or type(value) is not bytes:
            raise InvalidRequest("key and value must be bytes")
        limits = self.node.limits
        if len(value) > limits.max_value_bytes:
            raise TooLarge("value", len(value), limits.max_value_bytes)
        if not key or len(key) > limits.max_key_bytes:
            raise TooLarge("key", len(key), limits.max_key_bytes) if key else InvalidRequest("empty key")
        self.node.submit_command_with(
            command.encode_put(key, value, int(lease), prev_kv=bool(prev_kv)), self._answer(req_id)
        )

    def _command(self, req_id: int, args: list[Any]) -> None:
        (data,) = args
        if type(data) is not bytes:
            raise InvalidRequest("a command is bytes")
        request = command.decode(data)
        check_request(request, self.node.limits)
        if isinstance(request, RangeRequest):
            raise InvalidRequest("use range for reads")
        if isinstance(request, TxnRequest):
            self._spawn(req_id, self.node.txn_request(request), encode_result)
            return
        self.node.submit_command_with(data, self._answer(req_id))

    def _range(self, req_id: int, args: list[Any]) -> None:
        data, serializable = args
        request = command.decode(data)
        if not isinstance(request, RangeRequest):
            raise InvalidRequest("range takes a range request")
        self._spawn(req_id, self.node.range_request(request, serializable=bool(serializable)),
                    encode_result)

    def _lease_keepalive(self, req_id: int, args: list[Any]) -> None:
        (lease_id,) = args
        self._spawn(req_id, self.node.lease_keepalive(int(lease_id)), lambda ttl: ttl)

    def _lease_ttl(self, req_id: int, args: list[Any]) -> None:
        lease_id, keys = args
        self._spawn(req_id, self.node.lease_time_to_live(int(lease_id), keys=bool(keys)),
                    encode_lease_status)

    def _lease_list(self, req_id: int, args: list[Any]) -> None:
        self._spawn(req_id, self.node.lease_list(), lambda ids: list(ids))

    def _status(self, req_id: int, args: list[Any]) -> None:
        from dataclasses import asdict

        self._spawn(req_id, self.node.status(), asdict)

    def _members(self, req_id: int, args: list[Any]) -> None:
        self._spawn(
            req_id,
            self.node.member_list(),
            lambda ms: [[m.id, list(m.peer_addr or ()), list(m.client_addr or ())] for m in ms],
        )

    def _hash_kv(self, req_id: int, args: list[Any]) -> None:
        (revision,) = args
        self._spawn(req_id, self.node.hash_kv(int(revision)), list)

    def _watch(self, req_id: int, args: list[Any]) -> None:
        key, range_end, start_revision, prev_kv, filters, progress_notify = args
        if len(self.watches) >= self.server.max_watchers:
            raise Unavailable(f"too many watchers on this connection (limit {self.server.max_watchers})")
        if req_id in self.watches:
            raise InvalidRequest(f"watch id {req_id} is in use")
        task = self.loop.create_task(
            self._pump_watch(req_id, key, range_end, int(start_revision), bool(prev_kv),
                             [WatchFilter(f) for f in filters], bool(progress_notify))
        )
        self.watches[req_id] = task

    async def _pump_watch(
        self, req_id: int, key: bytes, range_end: bytes | None, start_revision: int,
        prev_kv: bool, filters: list[WatchFilter], progress_notify: bool,
    ) -> None:
        try:
            stream = await self.node.watch(
                key, range_end, start_revision=start_revision, prev_kv=prev_kv,
                filters=filters, progress_notify=progress_notify,
            )
            # Tell the client the watch is in place, and from which revision on
            # it sees everything, so a client can resume it without a gap.
            covered = self.node.machine.store.revision if start_revision == 0 else start_revision - 1
            self.reply(req_id, OK, covered)
            async for resp in stream:
                self.reply(req_id, EVENT, encode_watch_response(resp))
                if self.transport is not None and self.transport.get_write_buffer_size() > (8 << 20):
                    await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            raise
        except RequestError as e:
            self.reply_error(req_id, e)
        except KvError as e:
            self.reply_error(req_id, e)
        finally:
            self.watches.pop(req_id, None)

    def _watch_cancel(self, req_id: int, args: list[Any]) -> None:
        (watch_id,) = args
        task = self.watches.pop(int(watch_id), None)
        if task is not None:
            task.cancel()
        self.reply(req_id, OK, task is not None)

    def _progress(self, req_id: int, args: list[Any]) -> None:
        self.node.request_progress()
        self.reply(req_id, OK, None)


_HANDLERS: dict[str, Callable[[_Connection, int, list[Any]], None]] = {
    "put": _Connection._put,
    "command": _Connection._command,
    "range": _Connection._range,
    "lease_keepalive": _Connection._lease_keepalive,
    "lease_ttl": _Connection._lease_ttl,
    "lease_list": _Connection._lease_list,
    "status": _Connection._status,
    "members": _Connection._members,
    "hash_kv": _Connection._hash_kv,
    "watch": _Connection._watch,
    "watch_cancel": _Connection._watch_cancel,
    "progress": _Connection._progress,
}
