"""One member of a cluster, embedded in the caller's asyncio event loop.

``Node`` joins the pure Raft core (``RawNode``), the disk
(``DiskLogStorage``), the replicated key space (``KVStateMachine``) and the
peer transport. One task runs the ready loop::

    rd = raw.ready()
    send rd.messages                   # a leader's appends leave before its own fsync (§10.2.1)
    persist rd.snapshot/entries/hard state, then fsync (group commit):
        a leader's big batch: in the sync thread, and meanwhile take client
        requests, send their appends, and apply the committed entries already
        in the log (they are durable on a quorum)
        a follower's batch, or a small one (<= INLINE_SYNC_REQUESTS): on the
        loop, sparing the round trip through the thread
    send rd.persisted_messages         # responses: only once durable
    apply the rest of rd.committed_entries, answering the proposals waiting for them
    release rd.read_states             # linearizable reads (ReadIndex)
    raw.advance(rd)

While a sync runs in the thread, the event loop keeps serving: client
requests are proposed as they come, all of one turn of the loop in one step
of the core, and their appends leave at once; responses from peers are
stepped as they arrive. A leader's own entries count toward commitment only
after ``advance`` (the core's rule), so nothing is acknowledged before a
quorum, counting the leader only once its fsync returned, has it durable.

Writes are proposed with an 8-byte request id in front of the command, so the
member that proposed an entry can answer its client when it applies it; the
requests of one turn share one log entry (``kvstore.proposals``).
Linearizable reads ride on one ReadIndex round per batch of reads;
serializable reads are answered from local state.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import struct
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

from kvstore.clock import Clock, MonotonicClock
from kvstore.compactor import CompactionPlan, Compactor, Mode
from kvstore.errors import (
    CorruptError,
    InvalidRequest,
    InvariantError,
    KvError,
    NotLeader,
    Overloaded,
    ProposalDropped,
    RequestError,
    Timeout,
    TooLarge,
    Unavailable,
)
from kvstore.mvcc import command
from kvstore.mvcc.keys import key_range, to_bytes
from kvstore.mvcc.lease import LeaseStatus
from kvstore.mvcc.machine import KVStateMachine
from kvstore.mvcc.request import (
    Compare,
    CompactRequest,
    DeleteRangeRequest,
    LeaseGrantRequest,
    LeaseRevokeRequest,
    RangeRequest,
    Request,
    RequestOp,
    TxnRequest,
    check_request,
)
from kvstore.proposals import BATCH_TAG, batch_entries, entry_requests, request_count
from kvstore.mvcc.types import (
    CompactResult,
    DeleteRangeResult,
    KeyValue,
    LeaseGrantResult,
    LeaseRevokeResult,
    PutResult,
    RangeResult,
    Response,
    SortOrder,
    SortTarget,
    TxnResult,
    WatchFilter,
)
from kvstore.member import MemberInfo, NodeOptions, NodeStatus
from kvstore.raft.config import Config
from kvstore.raft.messages import ConfState, Message, NodeId, StateType
from kvstore.raft.rawnode import RawNode, Ready
from kvstore.raft.storage import MemoryLogStorage
from kvstore.read_index import ReadIndexQueue
from kvstore.storage.disk import OsDisk
from kvstore.storage.log_storage import DiskLogStorage
from kvstore.snapshotter import Snapshotter
from kvstore.transport.peer import PeerTransport
from kvstore.watch_stream import WatchStream

__all__ = ["Answer", "MemberInfo", "Node", "NodeOptions", "NodeStatus", "WatchStream"]

logger = logging.getLogger(__name__)

_REQ_ID = struct.Struct(">Q")
# A leader's ready batch with more new and committed requests than this is
# synced in the worker thread while the loop serves; anything else on the loop.
INLINE_SYNC_REQUESTS = 8
_T = TypeVar("_T")

Answer = Callable[[object], None]
"""Called once with a proposal's outcome: the result, or the exception to raise."""


class Node:
    """One member: a Raft core, a WAL, a key space and (with peers) a transport."""

    def __init__(
        self,
        *,
        member_id: int,
        members: Sequence[MemberInfo],
        data_dir: str,
        options: NodeOptions,
        clock: Clock | None = None,
    ) -> None:
        self.member_id = NodeId(member_id)
        self.members = {m.id: m for m in members}
        if self.member_id not in self.members:
            raise ValueError(f"member {member_id} is not among the members")
        self.data_dir = data_dir
        self.options = options
        self.clock = clock or MonotonicClock()
        self.machine = KVStateMachine(self.clock, limits=options.limits)
        self.limits = options.limits
        self._rng = random.Random(int.from_bytes(os.urandom(8), "big"))
        self._boot = self._rng.getrandbits(24) << 40
        self._next_req = 0
        # Request id -> what answers it: called once with the result, or with
        # the exception the caller gets instead.
        self._waiters: dict[bytes, Answer] = {}
        # (deadline, request id) in submission order: the ticker times them out.
        self._deadlines: deque[tuple[float, bytes]] = deque()
        self._proposals: list[bytes] = []
        self._reads = ReadIndexQueue(boot=self._boot, max_pending=options.max_pending_reads)
        self._flush_scheduled = False
        self._wake = asyncio.Event()
        self._applied_event = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._transport: PeerTransport | None = None
        self._disk: DiskLogStorage | None = None
        self._storage: MemoryLogStorage | None = None
        # One thread syncs the WAL (None without fsync): the loop serves meanwhile.
        self._sync_pool: ThreadPoolExecutor | None = None
        self._raw: RawNode | None = None
        self._snapshots = Snapshotter(
            member_id=member_id,
            machine=self.machine,
            snapshot_count=options.snapshot_count,
            catch_up_entries=options.catch_up_entries,
            wake=self._wake.set,
        )
        self._role = StateType.FOLLOWER
        self._leader = NodeId(0)
        self.leader_changed = asyncio.Event()

    # ------------------------------------------------------------------
    # lifecycle
    @classmethod
    async def start(
        cls,
        *,
        member_id: int = 1,
        data_dir: str,
        members: Sequence[MemberInfo] | None = None,
        options: NodeOptions | None = None,
        clock: Clock | None = None,
    ) -> Node:
        """Start a member in the running event loop; restarts from ``data_dir`` if it holds data.

        ``members`` lists every member (with peer addresses when there are
        several); omitted, this is a one-member cluster with no network.
        """
        members = list(members or [MemberInfo(member_id)])
        node = cls(
            member_id=member_id,
            members=members,
            data_dir=data_dir,
            options=options or NodeOptions(),
            clock=clock,
        )
        await node._open()
        return node

    async def _open(self) -> None:
        opts = self.options
        os.makedirs(self.data_dir, exist_ok=True)
        disk, state = await asyncio.to_thread(
            DiskLogStorage.open, OsDisk(), self.data_dir, unsafe_no_fsync=opts.unsafe_no_fsync
        )
        self._disk = disk
        if not opts.unsafe_no_fsync:
            self._sync_pool = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=f"member-{self.member_id}-sync"
            )
        if opts.unsafe_no_fsync:
            logger.warning("member %d runs with unsafe_no_fsync: writes are NOT durable",
                           self.member_id)
        voters = tuple(NodeId(i) for i in sorted(self.members))
        storage = MemoryLogStorage(ConfState(voters=voters))
        if not state.snapshot.is_empty():
            storage.apply_snapshot(state.snapshot)
            self.machine.restore([state.snapshot.data])
            self._snapshots.restored(state.snapshot.metadata.index)
        storage.append(state.entries)
        storage.set_hard_state(state.hard_state)
        self._storage = storage
        config = Config(
            id=self.member_id,
            election_tick=opts.election_tick,
            heartbeat_tick=opts.heartbeat_tick,
            applied=self.machine.applied_index,
            max_inflight_msgs=opts.max_inflight_msgs,
            max_size_per_msg=1 << 20,
        )
        self._raw = RawNode(config, storage, random.Random(self._rng.getrandbits(64)))
        logger.info(
            "member %d starting: %d members, term %d, commit %d, applied %d, %d entries on disk",
            self.member_id, len(self.members), state.hard_state.term, state.hard_state.commit,
            self.machine.applied_index, len(state.entries),
        )
        me = self.members[self.member_id]
        if len(self.members) > 1:
            peers = {NodeId(i): m.peer_addr for i, m in self.members.items() if m.peer_addr}
            self._transport = PeerTransport(
                cluster_id=opts.cluster_id,
                member_id=self.member_id,
                peers=peers,
                deliver=self._deliver,
                report_unreachable=self._report_unreachable,
                report_snapshot=self._report_snapshot,
                rng=random.Random(self._rng.getrandbits(64)),
            )
            if me.peer_addr is None:
                raise ValueError("a member of a multi-member cluster needs a peer address")
            await self._transport.listen(*me.peer_addr)
        else:
            # Alone, there is no one to wait for.
            self._raw.campaign()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._run(), name=f"member-{self.member_id}-ready"),
            loop.create_task(self._ticker(), name=f"member-{self.member_id}-tick"),
        ]
        if opts.auto_compaction_retention > 0:
            self._tasks.append(loop.create_task(
                self._compactor().run(), name=f"member-{self.member_id}-compactor"))
        self._wake.set()

    async def stop(self) -> None:
        """Stop gracefully: finish the ready cycle in flight, close the WAL and the transport."""
        if self._stopping:
            return
        self._stopping = True
        self._wake.set()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._snapshots.stop()
        if self._transport is not None:
            await self._transport.close()
        self._fail_waiters(Unavailable("member is stopping"))
        self._reads.fail(Unavailable("member is stopping"))
        if self._sync_pool is not None:
            # A sync may still run for the ready cycle just cancelled: let it end
            # before the log is closed under it.
            self._sync_pool.shutdown(wait=True)
        if self._disk is not None:
            self._disk.close()
        logger.info("member %d stopped", self.member_id)

    async def __aenter__(self) -> Node:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _compactor(self) -> Compactor:
        opts = self.options
        store = self.machine.store
        return Compactor(
            CompactionPlan(cast(Mode, opts.auto_compaction_mode), opts.auto_compaction_retention),
            clock=self.clock,
            is_leader=lambda: self.is_leader,
            revisions=lambda: (store.revision, store.compact_revision),
            compact=self.compact,
        )

    def _need_raw(self) -> RawNode:
        if self._raw is None:
            raise InvariantError("member used before it was started")
        return self._raw

    def _need_disk(self) -> tuple[DiskLogStorage, MemoryLogStorage]:
        if self._disk is None or self._storage is None:
            raise InvariantError("member used before it was started")
        return self._disk, self._storage

    # ------------------------------------------------------------------
    # the ready loop
    async def _ticker(self) -> None:
        raw = self._need_raw()
        interval = self.options.tick_interval
        n = 0
        while True:
            await asyncio.sleep(interval)
            raw.tick()
            n += 1
            if n % 10 == 0:
                self.machine.hub.tick_progress()
            self._expire_leases()
            self._expire_requests()
            self._wake.set()

    def _expire_requests(self) -> None:
        now = time.monotonic()
        deadlines = self._deadlines
        waiters = self._waiters
        while deadlines and deadlines[0][0] <= now:
            _, req_id = deadlines.popleft()
            answer = waiters.pop(req_id, None)
            if answer is not None:
                _deliver_outcome(
                    answer, Timeout("the request timed out; it may or may not have been applied")
                )

    async def _run(self) -> None:
        raw = self._need_raw()
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                self._flush_inputs(raw)
                while raw.has_ready():
                    await self._handle_ready(raw, raw.ready())
                    self._flush_inputs(raw)
                # A snapshot built while nothing else happened is recorded now.
                await self._maybe_snapshot()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("member %d: the ready loop failed; stopping", self.member_id)
            self._stopping = True
            self._fail_waiters(Unavailable("member failed"))
            raise

    def _flush_inputs(self, raw: RawNode) -> None:
        if self._proposals:
            proposals = self._proposals
            self._proposals = []
            try:
                # One step of the core for the whole turn, as few entries as
                # possible: all are appended, or none.
                raw.propose_batch(batch_entries(proposals))
            except (ProposalDropped, NotLeader) as e:
                err = _as_unavailable(e)
                for data in proposals:
                    answer = self._waiters.pop(data[:8], None)
                    if answer is not None:
                        _deliver_outcome(answer, err)
        reads = self._reads.take()
        if reads is not None:
            try:
                raw.read_index(reads.ctx)
                self._reads.sent(reads)
            except (ProposalDropped, NotLeader) as e:
                reads.settle(_as_unavailable(e))

    async def _handle_ready(self, raw: RawNode, rd: Ready) -> None:
        disk, storage = self._need_disk()
        if rd.soft_state is not None:
            self._on_soft_state(rd.soft_state.lead, rd.soft_state.raft_state)
        if self._transport is not None and rd.messages:
            self._transport.send(rd.messages)
        committed = rd.committed_entries
        if rd.snapshot is not None:
            disk.persist(rd.hard_state, rd.entries, rd.snapshot)
        elif rd.entries or rd.hard_state is not None:
            disk.persist(rd.hard_state, rd.entries)
        if (rd.must_sync and self._sync_pool is not None and self._role == StateType.LEADER
                and _requests(rd.entries) + _requests(rd.committed_entries) > INLINE_SYNC_REQUESTS):
            syncing = asyncio.get_running_loop().run_in_executor(self._sync_pool, disk.sync)
            if rd.snapshot is None and committed:
                # Committed entries are durable on a quorum already: apply them
                # (and answer their clients) while our own new entries are synced;
                # those of this batch's own entries wait for them to be stored,
                # so nothing (a snapshot) ever sees applied state past the log.
                stored = max(0, min(len(committed), storage.last_index() - committed[0].index + 1))
                self._apply(committed[:stored])
                committed = committed[stored:]
            await syncing
        elif rd.must_sync:
            # A follower, or a leader's small batch: the loop has little to do
            # meanwhile (what arrives waits in the socket for the next batch),
            # and a sync here spares the round trip through the worker thread.
            disk.sync()
        if rd.snapshot is not None:
            # Our own snapshot in progress describes a state being replaced.
            self._snapshots.cancel()
            storage.apply_snapshot(rd.snapshot)
            self.machine.restore([rd.snapshot.data])
            self._snapshots.restored(rd.snapshot.metadata.index)
            logger.info("member %d installed snapshot at %d", self.member_id,
                        rd.snapshot.metadata.index)
        storage.append(rd.entries)
        if rd.hard_state is not None:
            storage.set_hard_state(rd.hard_state)
        if self._transport is not None and rd.persisted_messages:
            self._transport.send(rd.persisted_messages)
        if committed:
            self._apply(committed)
        for rs in rd.read_states:
            self._reads.answered(rs.request_ctx, rs.index)
        self._reads.release(self.machine.applied_index)
        raw.advance(rd)
        await self._maybe_snapshot()

    def _apply(self, entries: Sequence[Any]) -> None:
        machine = self.machine
        for e in entries:
            data = e.data
            if not data:
                machine.apply(e.index, b"")
            elif data[:8] == BATCH_TAG:
                try:
                    requests = entry_requests(data)
                except CorruptError:
                    # Every member reads the same bytes: all skip the entry alike.
                    logger.exception("member %d: skipping undecodable entry %d", self.member_id, e.index)
                    machine.apply(e.index, b"")
                    continue
                results = machine.apply_batch(e.index, [r[8:] for r in requests])
                if self._waiters:
                    for request, result in zip(requests, results):
                        self._answer(request[:8], result)
            else:
                result = machine.apply(e.index, data[8:])
                if self._waiters:
                    self._answer(data[:8], result)
        self._applied_event.set()

    def _answer(self, req_id: bytes, result: object) -> None:
        answer = self._waiters.pop(req_id, None)
        if answer is not None:
            # A failed request's RequestError is its outcome: the caller gets it raised.
            try:
                answer(result)
            except Exception:
                logger.exception("member %d: answering a request failed", self.member_id)

    def _fail_waiters(self, err: Exception) -> None:
        waiters = self._waiters
        self._waiters = {}
        for answer in waiters.values():
            _deliver_outcome(answer, err)

    def _on_soft_state(self, lead: NodeId, role: StateType) -> None:
        was_leader = self._role == StateType.LEADER
        changed = lead != self._leader
        self._leader = lead
        self._role = role
        if role == StateType.LEADER and not was_leader:
            logger.info("member %d is now the leader", self.member_id)
            self.machine.lessor.promote()
        elif was_leader and role != StateType.LEADER:
            logger.info("member %d is no longer the leader", self.member_id)
            self.machine.lessor.demote()
        if changed:
            self.leader_changed.set()
            self.leader_changed = asyncio.Event()
            # Reads sent to the old leader will never be answered: ask again.
            self._reads.resend()

    async def _maybe_snapshot(self) -> None:
        key_index = self.machine.store.index
        if key_index.pending >= 4096:
            # Merge new keys into key order a few thousand at a time, so a
            # range or snapshot never pays for a long run of writes at once.
            key_index.flush()
        await self._snapshots.install_ready(*self._need_disk())

    # ------------------------------------------------------------------
    # peers
    def _deliver(self, msgs: list[Message]) -> None:
        raw = self._raw
        if raw is None or self._stopping:
            return
        for m in msgs:
            try:
                raw.step(m)
            except RequestError as e:
                logger.warning("member %d dropped a message from %d: %s", self.member_id,
                               m.from_, e)
            except Exception as e:  # a bad message must not stop the member
                if isinstance(e, InvariantError):
                    raise
                logger.warning("member %d dropped a bad message from %d: %s", self.member_id,
                               m.from_, e)
        self._wake.set()

    def _report_unreachable(self, peer: NodeId) -> None:
        if self._raw is not None:
            self._raw.report_unreachable(peer)
            self._wake.set()

    def _report_snapshot(self, peer: NodeId, ok: bool) -> None:
        if self._raw is not None:
            self._raw.report_snapshot(peer, ok=ok)
            self._wake.set()

    # ------------------------------------------------------------------
    # leases expire on the leader's clock
    def _expire_leases(self) -> None:
        if self._role != StateType.LEADER:
            return
        # The lessor offers an expired lease again only after a retry delay,
        # so a revoke that is lost or still in flight is not proposed twice.
        for lease_id in self.machine.lessor.expired():
            logger.debug("member %d revokes expired lease %x", self.member_id, lease_id)
            try:
                fut = self._submit(command.encode(LeaseRevokeRequest(id=lease_id)))
            except KvError as e:
                # Overloaded or stopping: the lessor offers it again later.
                logger.debug("member %d defers revoking lease %x: %s", self.member_id,
                             lease_id, e)
                return
            fut.add_done_callback(_consume)

    # ------------------------------------------------------------------
    # proposing and reading
    def _submit(self, cmd: bytes) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._propose_with(cmd, _settle(fut))
        return fut

    def _propose_with(self, cmd: bytes, answer: Answer) -> None:
        if self._stopping:
            raise Unavailable("member is stopping")
        if len(self._waiters) >= self.options.max_pending_proposals:
            raise Overloaded("too many pending proposals; retry later")
        self._next_req += 1
        req_id = _REQ_ID.pack(self._boot | self._next_req)
        self._waiters[req_id] = answer
        self._deadlines.append((time.monotonic() + self.options.request_timeout, req_id))
        self._proposals.append(req_id + cmd)
        if not self._flush_scheduled:
            # Everything submitted in this turn of the event loop is proposed
            # together, and its appends leave at once, even while the ready
            # loop waits for an fsync.
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self._flush_scheduled = False
        raw = self._raw
        if raw is None or self._stopping:
            return
        self._flush_inputs(raw)
        msgs = raw.take_messages()
        if msgs and self._transport is not None:
            self._transport.send(msgs)
        self._wake.set()

    def submit_command(self, cmd: bytes) -> asyncio.Future[Any]:
        """Propose an encoded, already checked command; the future gets the answer.

        The future fails with ``Timeout`` after ``request_timeout`` seconds,
        ``Unavailable`` when there is no leader or too much is pending.
        Raises ``InvalidRequest`` for an empty command, ``TooLarge`` past the
        request limit.
        """
        _check_command(cmd, self.limits.max_request_bytes)
        return self._submit(cmd)

    def submit_command_with(self, cmd: bytes, answer: Answer) -> None:
        """Propose an encoded, already checked command; ``answer`` gets the outcome.

        ``answer`` is called exactly once, from the event loop: with the state
        machine's result, or with the exception the request failed with
        (``RequestError``, ``Timeout``, ``Unavailable``...). It should return
        quickly and not raise (what it raises is logged and dropped). This
        costs no future; ``submit_command`` is the same behind a future.
        Raises as ``submit_command`` does, without calling ``answer``.
        """
        _check_command(cmd, self.limits.max_request_bytes)
        self._propose_with(cmd, answer)

    async def _propose(self, cmd: bytes) -> Any:
        return await self.submit_command(cmd)

    async def propose_request(self, request: Request) -> Response:
        """Check ``request``, replicate it, and return the state machine's answer."""
        check_request(request, self.limits)
        result: Response = await self._propose(command.encode(request))
        return result

    async def wait_linearizable(self) -> None:
        """Return once local state reflects every write acknowledged before the call (ReadIndex)."""
        if self._stopping:
            raise Unavailable("member is stopping")
        if self._raw is not None and len(self.members) == 1 and self._role == StateType.LEADER:
            # A lone member's applied state is current once its commit is applied.
            if self.machine.applied_index >= self._raw.raft.raft_log.committed:
                return
        fut = self._reads.add()
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_now)
        try:
            async with asyncio.timeout(self.options.request_timeout):
                await fut
        except TimeoutError:
            raise Timeout("linearizable read timed out (no quorum?)") from None

    # ------------------------------------------------------------------
    # the key-value API (the same on every client)
    async def put(
        self, key: bytes | str, value: bytes | str, *, lease: int = 0, prev_kv: bool = False
    ) -> PutResult:
        """Set ``key`` to ``value``; returns the revision (and the previous value if asked)."""
        k = to_bytes(key)
        v = to_bytes(value, "value")
        if len(v) > self.limits.max_value_bytes:
            raise TooLarge("value", len(v), self.limits.max_value_bytes)
        if not k or len(k) > self.limits.max_key_bytes:
            check_request(command.decode(command.encode_put(k, v, lease)), self.limits)
        result: PutResult = await self._propose(command.encode_put(k, v, lease, prev_kv=prev_kv))
        return result

    async def get(
        self, key: bytes | str, *, revision: int = 0, serializable: bool = False
    ) -> KeyValue | None:
        """The current (or historical) value of one key, or ``None``."""
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
        """Keys in ``[key, range_end)`` (or with prefix ``key``); linearizable unless ``serializable``."""
        start, end = key_range(key, range_end, prefix=prefix)
        req = RangeRequest(start, end, limit, revision, keys_only, count_only, sort_order,
                           sort_target)
        return await self.range_request(req, serializable=serializable)

    async def range_request(self, req: RangeRequest, *, serializable: bool = False) -> RangeResult:
        check_request(req, self.limits)
        if not serializable:
            await self.wait_linearizable()
        result = self.machine.store.execute(req)
        return expect(result, RangeResult)

    async def delete(
        self,
        key: bytes | str,
        range_end: bytes | str | None = None,
        *,
        prefix: bool = False,
        prev_kv: bool = False,
    ) -> DeleteRangeResult:
        """Delete a key, a range or a prefix; returns how many keys went."""
        start, end = key_range(key, range_end, prefix=prefix)
        result = await self.propose_request(DeleteRangeRequest(start, end, prev_kv))
        return expect(result, DeleteRangeResult)

    async def txn(
        self,
        compare: Sequence[Compare] = (),
        success: Sequence[RequestOp] = (),
        failure: Sequence[RequestOp] = (),
    ) -> TxnResult:
        """If every compare holds run ``success``, else ``failure``; atomically, at one revision."""
        req = TxnRequest(tuple(compare), tuple(success), tuple(failure))
        return await self.txn_request(req)

    async def txn_request(self, req: TxnRequest) -> TxnResult:
        if not _txn_writes(req):
            # A read-only txn needs no log entry: a linearizable local read will do.
            check_request(req, self.limits)
            await self.wait_linearizable()
            ro = self.machine.store.execute(req)
            return expect(ro, TxnResult)
        result = await self.propose_request(req)
        return expect(result, TxnResult)

    async def compact(self, revision: int) -> CompactResult:
        """Drop history older than ``revision`` on every member."""
        result = await self.propose_request(CompactRequest(revision))
        return expect(result, CompactResult)

    async def lease_grant(self, ttl: int, *, lease_id: int = 0) -> LeaseGrantResult:
        """Grant a lease of ``ttl`` seconds (``lease_id`` 0: the cluster picks one)."""
        result = await self.propose_request(LeaseGrantRequest(ttl=ttl, id=lease_id))
        return expect(result, LeaseGrantResult)

    async def lease_revoke(self, lease_id: int) -> LeaseRevokeResult:
        """Revoke a lease and delete its keys in one revision."""
        result = await self.propose_request(LeaseRevokeRequest(id=lease_id))
        return expect(result, LeaseRevokeResult)

    async def lease_keepalive(self, lease_id: int) -> int:
        """Renew a lease on the leader; returns its TTL. Raises ``NotLeader`` on a follower."""
        if self._role != StateType.LEADER:
            raise NotLeader(self._leader)
        return self.machine.lessor.keepalive(lease_id)

    async def lease_time_to_live(self, lease_id: int, *, keys: bool = False) -> LeaseStatus:
        """Remaining TTL of a lease (on the leader's clock) and, if asked, its keys."""
        if self._role != StateType.LEADER:
            raise NotLeader(self._leader)
        return self.machine.lessor.time_to_live(lease_id, keys=keys)

    async def lease_list(self) -> list[int]:
        """Ids of every live lease."""
        await self.wait_linearizable()
        return self.machine.lessor.leases()

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
    ) -> WatchStream:
        """Stream changes from ``start_revision`` (0: from now on); ``aclose()`` cancels it."""
        start, end = key_range(key, range_end, prefix=prefix)
        hub = self.machine.hub
        ready = asyncio.Event()
        wid = hub.watch(
            start, end, start_revision=start_revision, prev_kv=prev_kv, filters=tuple(filters),
            progress_notify=progress_notify, on_ready=lambda _w: ready.set(),
        )
        return WatchStream(self, wid, ready)

    def request_progress(self) -> None:
        """Ask every watcher on this member for a progress notification."""
        self.machine.hub.request_progress()

    # ------------------------------------------------------------------
    # inspection
    @property
    def is_leader(self) -> bool:
        return self._role == StateType.LEADER

    @property
    def leader_id(self) -> int:
        return int(self._leader)

    async def status(self) -> NodeStatus:
        """Member id, leader, term, commit and applied index, revision and sizes."""
        st = self._need_raw().status()
        store = self.machine.store
        return NodeStatus(
            member_id=int(self.member_id),
            leader=int(st.lead),
            term=st.term,
            role=st.raft_state.name.lower(),
            commit_index=st.commit,
            applied_index=self.machine.applied_index,
            revision=store.revision,
            compact_revision=store.compact_revision,
            keys=store.execute(RangeRequest(b"\0", b"\0", count_only=True)).count,  # type: ignore[union-attr]
            raft_index=st.last_index,
            unsafe_no_fsync=self.options.unsafe_no_fsync,
        )

    async def member_list(self) -> list[MemberInfo]:
        """Every member of the cluster."""
        return [self.members[i] for i in sorted(self.members)]

    async def hash_kv(self, revision: int = 0) -> tuple[int, int, int]:
        """Hash of the key space at ``revision``: ``(hash, revision, compact_revision)``."""
        return self.machine.hash_kv(revision)

    async def wait_applied(self, index: int) -> None:
        """Wait until this member has applied ``index``."""
        while self.machine.applied_index < index:
            self._applied_event.clear()
            await self._applied_event.wait()


def _check_command(cmd: bytes, max_bytes: int) -> None:
    if not cmd:
        raise InvalidRequest("an empty command")
    if len(cmd) > max_bytes:
        raise TooLarge("request", len(cmd), max_bytes)


def _requests(entries: Sequence[Any]) -> int:
    return sum(map(request_count, [e.data for e in entries]))


def _txn_writes(req: TxnRequest) -> bool:
    for op in (*req.success, *req.failure):
        if isinstance(op, TxnRequest):
            if _txn_writes(op):
                return True
        elif not isinstance(op, RangeRequest):
            return True
    return False


def _deliver_outcome(answer: Answer, outcome: object) -> None:
    """Call ``answer``; one that raises is logged, never lets the member fail."""
    try:
        answer(outcome)
    except Exception:
        logger.exception("answering a request failed")


def _settle(fut: asyncio.Future[Any]) -> Answer:
    """An ``Answer`` that resolves ``fut`` (an exception outcome is raised to its awaiter)."""

    def answer(outcome: object) -> None:
        if fut.done():
            return
        if isinstance(outcome, BaseException):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)

    return answer


def _consume(fut: asyncio.Future[Any]) -> None:
    """Retrieve a background proposal's outcome (a revoke of a gone lease is fine)."""
    if not fut.cancelled():
        fut.exception()


def _as_unavailable(e: Exception) -> Exception:
    """A refusal from the core: it proposed nothing, so the client may retry."""
    if isinstance(e, (NotLeader, ProposalDropped)):
        return e
    return ProposalDropped(f"no leader to take the request: {e}")


def expect(value: object, cls: type[_T]) -> _T:
    """``value`` as a ``cls``; a state machine answer of another type is a bug."""
    if not isinstance(value, cls):
        raise InvariantError(f"expected {cls.__name__}, got {type(value).__name__}")
    return value
