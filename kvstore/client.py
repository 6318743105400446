"""One key-value interface, embedded or remote.

- ``open(data_dir)``: a one-member store in this process (the zero-config
  default). It yields a ``Node``.
- ``connect(endpoints)``: a client of a running cluster. It finds the leader,
  follows leader changes, pipelines many requests over one connection, and
  retries what is safe to retry: reads always; writes only when the member
  refused them before proposing (``NotLeader``, ``ProposalDropped``) or the
  request never left. A write whose connection broke after it was sent fails
  with ``Unavailable`` saying its outcome is unknown.

Both offer the same coroutines: put, get, range, delete, txn, watch,
lease_grant / lease_revoke / lease_keepalive / lease_time_to_live /
lease_list, compact, status, member_list, hash_kv.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar, cast

import msgpack

from kvstore.errors import (
    ClusterError,
    KvError,
    NotLeader,
    Overloaded,
    ProposalDropped,
    ProtocolError,
    Timeout,
    Unavailable,
)
from kvstore.mvcc import command
from kvstore.mvcc.keys import key_range, to_bytes
from kvstore.mvcc.lease import LeaseStatus
from kvstore.mvcc.request import (
    Compare,
    CompactRequest,
    DeleteRangeRequest,
    LeaseGrantRequest,
    LeaseRevokeRequest,
    RangeRequest,
    RequestOp,
    TxnRequest,
)
from kvstore.mvcc.types import (
    CompactResult,
    DeleteRangeResult,
    KeyValue,
    LeaseGrantResult,
    LeaseRevokeResult,
    PutResult,
    RangeResult,
    SortOrder,
    SortTarget,
    TxnResult,
    WatchFilter,
    WatchResponse,
)
from kvstore.node import MemberInfo, Node, NodeOptions, NodeStatus
from kvstore.transport.server import ERROR, EVENT, OK
from kvstore.transport.wire import (
    decode_error,
    decode_lease_status,
    decode_result,
    decode_watch_response,
)

__all__ = ["Client", "connect", "open"]

logger = logging.getLogger(__name__)
_T = TypeVar("_T")
# Put in a watch's queue by aclose() to end a pending read.
_CLOSED = -1


class _Overdue(Exception):
    """A call's deadline passed before its answer came (raised to the caller as ``Timeout``)."""


@contextlib.asynccontextmanager
async def open(  # noqa: A001 - the public name is kvstore.open
    data_dir: str, *, options: NodeOptions | None = None
) -> AsyncIterator[Node]:
    """An embedded one-member store in ``data_dir`` (created if missing)."""
    node = await Node.start(data_dir=data_dir, options=options)
    try:
        for _ in range(200):
            if node.is_leader:
                break
            await asyncio.sleep(0.005)
        yield node
    finally:
        await node.stop()


def connect(
    endpoints: Sequence[str], *, timeout: float = 10.0, follow_leader: bool = True
) -> Client:
    """A client of the cluster at ``endpoints`` (``host:port`` strings); use ``async with``.

    With ``follow_leader=False`` it stays on the first member that answers
    (for per-member status and serializable reads).
    """
    return Client(endpoints, timeout=timeout, follow_leader=follow_leader)


class _Connection(asyncio.Protocol):
    """One pipelined connection: requests out, answers matched by id.

    Calls with a deadline are failed with ``_Overdue`` when it passes. The
    deadlines wait in send order and one timer serves them all, so a call
    costs no timer of its own (a call whose deadline is earlier than one
    already queued, a retry, gets its own).
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=64 << 20)
        self.packer = msgpack.Packer(use_bin_type=True)
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.streams: dict[int, asyncio.Queue[tuple[int, Any]]] = {}
        self.next_id = 0
        self.out: list[bytes] = []
        self.flush_scheduled = False
        self.closed = asyncio.get_running_loop().create_future()
        self.loop = asyncio.get_running_loop()
        self.deadlines: deque[tuple[float, int]] = deque()
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.deadlines.clear()
        err = Unavailable(f"connection lost: {exc or 'closed by the member'}")
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(err)
        self.pending.clear()
        for q in self.streams.values():
            q.put_nowait((ERROR, err))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        try:
            self.unpacker.feed(data)
            msgs = list(self.unpacker)
        except (msgpack.BufferFull, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError,
                TypeError, ValueError) as e:
            logger.warning("undecodable answer from the member (%s); closing", e)
            if self.transport is not None:
                self.transport.close()
            return
        for msg in msgs:
            try:
                req_id, status, payload = msg
            except (TypeError, ValueError):
                logger.warning("malformed answer from the member; closing")
                if self.transport is not None:
                    self.transport.close()
                return
            q = self.streams.get(req_id)
            if q is not None:
                q.put_nowait((status, payload))
                continue
            fut = self.pending.pop(req_id, None)
            if fut is None or fut.done():
                continue
            if status == OK:
                fut.set_result(payload)
            else:
                fut.set_exception(decode_error(payload))

    def send(
        self, method: str, args: list[Any], deadline: float | None = None
    ) -> tuple[int, asyncio.Future[Any]]:
        """Send a request; its future fails with ``_Overdue`` at ``deadline`` (loop time)."""
        if self.transport is None:
            raise Unavailable("not connected")
        req_id = self._queue(method, args)
        fut: asyncio.Future[Any] = self.loop.create_future()
        pending = self.pending
        pending[req_id] = fut
        if deadline is not None:
            deadlines = self.deadlines
            while deadlines and deadlines[0][1] not in pending:
                deadlines.popleft()  # answered already
            if deadlines and deadline < deadlines[-1][0]:
                self.loop.call_at(deadline, self._expire_one, req_id)
            else:
                deadlines.append((deadline, req_id))
                if self.timer is None:
                    self.timer = self.loop.call_at(deadline, self._expire)
        return req_id, fut

    def post(self, method: str, args: list[Any]) -> None:
        """Send a request whose answer nobody waits for (it is dropped when it comes)."""
        if self.transport is not None:
            self._queue(method, args)

    def _queue(self, method: str, args: list[Any]) -> int:
        """Queue a request for this turn's write; returns its id."""
        self.next_id += 1
        self.out.append(self.packer.pack([self.next_id, method, args]))
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self._flush)
        return self.next_id

    def _expire(self) -> None:
        self.timer = None
        now = self.loop.time()
        deadlines = self.deadlines
        pending = self.pending
        while deadlines:
            deadline, req_id = deadlines[0]
            if req_id in pending:
                if deadline > now:
                    self.timer = self.loop.call_at(deadline, self._expire)
                    return
                self._expire_one(req_id)
            deadlines.popleft()

    def _expire_one(self, req_id: int) -> None:
        fut = self.pending.pop(req_id, None)
        if fut is not None and not fut.done():
            fut.set_exception(_Overdue())

    def open_stream(self, method: str, args: list[Any]) -> tuple[int, asyncio.Queue[tuple[int, Any]]]:
        req_id, fut = self.send(method, args)
        self.pending.pop(req_id, None)
        fut.cancel()
        q: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        self.streams[req_id] = q
        return req_id, q

    def _flush(self) -> None:
        self.flush_scheduled = False
        if self.out and self.transport is not None:
            self.transport.write(b"".join(self.out))
        self.out = []

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Client:
    """A remote client of a cluster (see the module docstring)."""

    def __init__(
        self, endpoints: Sequence[str], *, timeout: float = 10.0, follow_leader: bool = True
    ) -> None:
        if not endpoints:
            raise ValueError("give at least one endpoint")
        self.follow_leader = follow_leader
        self.endpoints = [_parse(e) for e in endpoints]
        self.timeout = timeout
        self._conn: _Connection | None = None
        self._addr: tuple[str, int] | None = None
        self._connecting: asyncio.Lock | None = None
        self._rng = random.Random()
        self._closed = False

    async def __aenter__(self) -> Client:
        await self._connection()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- connections ----------------------------------------------------------
    async def _connection(self) -> _Connection:
        conn = self._conn
        if conn is not None and conn.transport is not None:
            return conn
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            conn = self._conn
            if conn is not None and conn.transport is not None:
                return conn
            self._conn = await self._find_leader()
            return self._conn

    async def _open(self, addr: tuple[str, int]) -> _Connection:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(3.0):
            _, conn = await loop.create_connection(_Connection, *addr)
        return conn

    async def _find_leader(self) -> _Connection:
        """Connect to the leader, found by asking the members we know of."""
        if self._closed:
            raise Unavailable("client is closed")
        deadline = asyncio.get_running_loop().time() + self.timeout
        candidates = ([self._addr] if self._addr else []) + self.endpoints
        backoff = 0.02
        last_error: Exception | None = None
        while asyncio.get_running_loop().time() < deadline:
            for addr in candidates:
                try:
                    conn = await self._open(addr)
                except (OSError, asyncio.TimeoutError) as e:
                    last_error = e
                    continue
                if not self.follow_leader:
                    self._addr = addr
                    return conn
                try:
                    async with asyncio.timeout(3.0):
                        status = await conn.send("status", [])[1]
                        members = await conn.send("members", [])[1]
                except (KvError, asyncio.TimeoutError) as e:
                    conn.close()
                    last_error = e
                    continue
                leader = status["leader"]
                if leader and leader == status["member_id"]:
                    self._addr = addr
                    return conn
                leader_addr = next(
                    (tuple(m[2]) for m in members if m[0] == leader and m[2]), None
                )
                if leader and leader_addr is not None:
                    conn.close()
                    try:
                        lconn = await self._open((str(leader_addr[0]), int(leader_addr[1])))
                        self._addr = (str(leader_addr[0]), int(leader_addr[1]))
                        return lconn
                    except (OSError, asyncio.TimeoutError) as e:
                        last_error = e
                        continue
                conn.close()
                last_error = Unavailable(f"member {status['member_id']} knows no leader")
            await asyncio.sleep(backoff * (0.5 + self._rng.random()))
            backoff = min(backoff * 2, 0.5)
        raise Unavailable(f"no leader reachable at {self.endpoints}: {last_error}")

    def _drop(self, conn: _Connection) -> None:
        if self._conn is conn:
            self._conn = None
            self._addr = None
        conn.close()

    async def _call(self, method: str, args: list[Any], *, idempotent: bool) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        backoff = 0.02
        while True:
            conn = self._conn
            if conn is None or conn.transport is None:
                conn = await self._connection()
            _, fut = conn.send(method, args, deadline)
            try:
                return await fut
            except _Overdue:
                raise Timeout(f"{method} timed out") from None
            except NotLeader:
                # Refused before proposing: safe to send again, to the leader.
                self._drop(conn)
            except (ProposalDropped, Overloaded):
                # Refused before proposing: safe to send again after a pause.
                pass
            except Unavailable as e:
                self._drop(conn)
                if not idempotent:
                    # The member may have proposed it before going away.
                    raise Unavailable(f"{method}: {e}; the outcome is unknown") from e
            except ClusterError:
                if not idempotent:
                    raise
            if loop.time() + backoff >= deadline:
                raise Unavailable(f"{method}: no leader could take the request in time")
            await asyncio.sleep(backoff * (0.5 + self._rng.random()))
            backoff = min(backoff * 2, 0.5)

    # -- the key-value API ----------------------------------------------------
    async def put(
        self, key: bytes | str, value: bytes | str, *, lease: int = 0, prev_kv: bool = False
    ) -> PutResult:
        """Set ``key`` to ``value``."""
        res = await self._call(
            "put", [to_bytes(key), to_bytes(value, "value"), lease, prev_kv], idempotent=False
        )
        out = decode_result(res)
        return _expect(out, PutResult)

    async def get(
        self, key: bytes | str, *, revision: int = 0, serializable: bool = False
    ) -> KeyValue | None:
        """One key's value, or ``None``."""
        res = await self.range(key, revision=revision, serializable=serializable)
        return res.kvs[0] if res.kvs else None

    async def range(
        self,
        key: bytes | str,
        range_end: bytes | str | None = None,
        *,
        prefix: bool = False,
        limit: int = 0,
        revision: int = 0,
        keys_only: bool = False,
        count_only: bool = False,
        sort_order: SortOrder = SortOrder.NONE,
        sort_target: SortTarget = SortTarget.KEY,
        serializable: bool = False,
    ) -> RangeResult:
        """Keys in a range or with a prefix; linearizable unless ``serializable``."""
        start, end = key_range(key, range_end, prefix=prefix)
        req = RangeRequest(start, end, limit, revision, keys_only, count_only, sort_order,
                           sort_target)
        res = await self._call("range", [command.encode(req), serializable], idempotent=True)
        out = decode_result(res)
        return _expect(out, RangeResult)

    async def delete(
        self,
        key: bytes | str,
        range_end: bytes | str | None = None,
        *,
        prefix: bool = False,
        prev_kv: bool = False,
    ) -> DeleteRangeResult:
        """Delete a key, a range or a prefix."""
        start, end = key_range(key, range_end, prefix=prefix)
        out = await self._command(DeleteRangeRequest(start, end, prev_kv))
        return _expect(out, DeleteRangeResult)

    async def txn(
        self,
        compare: Sequence[Compare] = (),
        success: Sequence[RequestOp] = (),
        failure: Sequence[RequestOp] = (),
    ) -> TxnResult:
        """Compare-and-act at one revision."""
        out = await self._command(TxnRequest(tuple(compare), tuple(success), tuple(failure)))
        return _expect(out, TxnResult)

    async def compact(self, revision: int) -> CompactResult:
        """Drop history older than ``revision``."""
        out = await self._command(CompactRequest(revision), idempotent=True)
        return _expect(out, CompactResult)

    async def lease_grant(self, ttl: int, *, lease_id: int = 0) -> LeaseGrantResult:
        out = await self._command(LeaseGrantRequest(ttl=ttl, id=lease_id))
        return _expect(out, LeaseGrantResult)

    async def lease_revoke(self, lease_id: int) -> LeaseRevokeResult:
        out = await self._command(LeaseRevokeRequest(id=lease_id), idempotent=True)
        return _expect(out, LeaseRevokeResult)

    async def lease_keepalive(self, lease_id: int) -> int:
        """Renew a lease; returns its TTL."""
        return int(await self._call("lease_keepalive", [lease_id], idempotent=True))

    async def lease_time_to_live(self, lease_id: int, *, keys: bool = False) -> LeaseStatus:
        return decode_lease_status(await self._call("lease_ttl", [lease_id, keys], idempotent=True))

    async def lease_list(self) -> list[int]:
        return list(await self._call("lease_list", [], idempotent=True))

    async def status(self) -> NodeStatus:
        """The status of the member this client talks to (the leader)."""
        return NodeStatus(**await self._call("status", [], idempotent=True))

    async def member_list(self) -> list[MemberInfo]:
        ms = await self._call("members", [], idempotent=True)
        return [
            MemberInfo(m[0], tuple(m[1]) if m[1] else None, tuple(m[2]) if m[2] else None)
            for m in ms
        ]

    async def hash_kv(self, revision: int = 0) -> tuple[int, int, int]:
        h, rev, compact_rev = await self._call("hash_kv", [revision], idempotent=True)
        return int(h), int(rev), int(compact_rev)

    async def _command(self, request: Any, *, idempotent: bool = False) -> Any:
        return decode_result(
            await self._call("command", [command.encode(request)], idempotent=idempotent)
        )

    async def watch(
        self,
        key: bytes | str,
        range_end: bytes | str | None = None,
        *,
        prefix: bool = False,
        start_revision: int = 0,
        prev_kv: bool = False,
        filters: Sequence[WatchFilter] = (),
        progress_notify: bool = False,
    ) -> _RemoteWatch:
        """Stream changes; survives reconnects by resuming after the last revision seen.

        The watch is in place when this returns: every change after that is
        delivered, even one made before the first ``async for`` step.
        """
        start, end = key_range(key, range_end, prefix=prefix)
        w = _RemoteWatch(self, start, end, start_revision, prev_kv, list(filters), progress_notify)
        await w.establish()
        return w


class _RemoteWatch:
    """One watch over a connection that may break; ``seen`` is where to resume."""

    def __init__(
        self, client: Client, key: bytes, end: bytes | None, start_revision: int,
        prev_kv: bool, filters: list[WatchFilter], progress_notify: bool,
    ) -> None:
        self.client = client
        self.args = [key, end, 0, prev_kv, [int(f) for f in filters], progress_notify]
        self.start_revision = start_revision
        # Every matching event up to ``seen`` has been handed out.
        self.seen = start_revision - 1 if start_revision > 0 else 0
        self.conn: _Connection | None = None
        self.req_id = 0
        self.queue: asyncio.Queue[tuple[int, Any]] | None = None
        self.closed = False

    async def establish(self) -> None:
        backoff = 0.02
        deadline = asyncio.get_running_loop().time() + self.client.timeout
        while True:
            conn = await self.client._connection()
            rev = self.seen + 1 if self.seen > 0 else self.start_revision
            self.args[2] = rev
            req_id, q = conn.open_stream("watch", list(self.args))
            status, payload = await q.get()
            if status == OK:
                if self.seen == 0 and isinstance(payload, int):
                    self.seen = payload
                self.conn, self.req_id, self.queue = conn, req_id, q
                return
            conn.streams.pop(req_id, None)
            err = payload if isinstance(payload, KvError) else decode_error(payload)
            if not isinstance(err, (Unavailable, NotLeader)):
                raise err
            self.client._drop(conn)
            if asyncio.get_running_loop().time() > deadline:
                raise err
            await asyncio.sleep(backoff * (0.5 + self.client._rng.random()))
            backoff = min(backoff * 2, 0.5)

    def _close_stream(self) -> None:
        conn = self.conn
        if conn is not None:
            conn.streams.pop(self.req_id, None)
            conn.post("watch_cancel", [self.req_id])
        self.conn = None

    def __aiter__(self) -> _RemoteWatch:
        return self

    async def __anext__(self) -> WatchResponse:
        while not self.closed:
            q = self.queue
            if q is None:
                await self.establish()
                continue
            status, payload = await q.get()
            if status == _CLOSED:
                break
            if status == ERROR:
                err = payload if isinstance(payload, KvError) else decode_error(payload)
                if not isinstance(err, (Unavailable, NotLeader)):
                    self._close_stream()
                    raise err
                # The member went away: resume elsewhere after ``seen``.
                if self.conn is not None:
                    self.client._drop(self.conn)
                self._close_stream()
                self.queue = None
                continue
            if status != EVENT:
                raise ProtocolError(f"unexpected watch status {status}")
            resp = decode_watch_response(payload)
            events = tuple(e for e in resp.events if e.kv.mod_revision > self.seen)
            self.seen = max(self.seen, resp.header_revision)
            if resp.canceled:
                self.closed = True
                self._close_stream()
            if events or not resp.events or resp.canceled:
                return WatchResponse(resp.watch_id, events, resp.header_revision,
                                     resp.compact_revision, resp.canceled)
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Cancel the watch on the member; a task iterating the stream ends too."""
        self.closed = True
        if self.queue is not None:
            self.queue.put_nowait((_CLOSED, None))
        self._close_stream()

    async def __aenter__(self) -> _RemoteWatch:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _expect(value: object, cls: type[_T]) -> _T:
    if not isinstance(value, cls):
        raise ProtocolError(f"expected {cls.__name__} from the member, got {type(value).__name__}")
    return value


def _parse(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"endpoint {endpoint!r} is not host:port")
    return host.strip("[]"), int(port)
