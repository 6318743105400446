"""Simulated clients and the history of what they saw.

Each client has at most one request outstanding. It waits a few ticks, picks a
member at random and either proposes a write (a register write of a value no
one else writes, or a counter add) or asks for a ReadIndex read. Writes carry
a unique ``(client, seq)`` id.

- A write succeeds when the member the client asked applies it; the client is
  told the result (the counter's new value).
- A read is answered when that member releases the read state and has
  applied up to its index; the client gets the value at that moment.
- A member that refuses at once (down, no leader) fails the request
  definitely: it never happened and is not recorded.
- A member that crashes, or a request that takes longer than
  ``timeout_ticks``, leaves the outcome unknown: a write is recorded with no
  return time (it may or may not have happened); a read is dropped (it had
  no effect).

History times come from one event counter, so two events are never
simultaneous and real-time order is exact.

``history`` is what the clients saw. ``resolved_history()`` settles the
unknown outcomes with what the simulator knows: a write that some member
applied (took effect, not skipped as a duplicate) is given, as return time,
the moment of its first application and, as output, the result it had then;
a write no member applied never happened and is left out. This only narrows
the history (its linearization point, the commit, lies between its call and
its first application), so if the resolved history is linearizable so is the
clients' one; and it keeps the check fast however many requests timed out.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from kvstore.raft.messages import NodeId
from kvstore.testing.checker import SafetyChecker
from kvstore.testing.cluster import Cluster
from kvstore.testing.models import Add, Operation, Read, Write
from kvstore.testing.statemachine import Applied, Command, MachineKind, encode_command
from kvstore.testing.trace import Trace

__all__ = ["Workload", "WorkloadOptions"]


@dataclass(frozen=True, slots=True)
class WorkloadOptions:
    clients: int = 3
    min_think_ticks: int = 0
    max_think_ticks: int = 10
    timeout_ticks: int = 50
    read_rate: float = 0.5
    machine: MachineKind = MachineKind.REGISTER


@dataclass(slots=True)
class _Request:
    seq: int
    member: NodeId
    call: int
    deadline: int
    input: object
    command: Command | None


class _Client:
    __slots__ = ("id", "seq", "pending", "next_at")

    def __init__(self, client_id: int) -> None:
        self.id = client_id
        self.seq = 0
        self.pending: _Request | None = None
        self.next_at = 0


class Workload:
    """The clients of one run; implements ``ClusterListener``."""

    def __init__(self, options: WorkloadOptions, rng: random.Random, checker: SafetyChecker,
                 trace: Trace) -> None:
        self.options = options
        self.rng = rng
        self.checker = checker
        self.trace = trace
        self.cluster: Cluster | None = None
        self.clients = [_Client(i) for i in range(1, options.clients + 1)]
        self.history: list[Operation] = []
        self.stopped = False
        self.acked = 0
        self._clock = 0
        # (client, seq) -> (time of its first application anywhere, its result)
        self._effects: dict[tuple[int, int], tuple[int, int | None]] = {}
        # position in ``history`` of a write with unknown outcome -> its seq
        self._unknown: dict[int, int] = {}

    def _time(self) -> int:
        self._clock += 1
        return self._clock

    def _record(self, client: _Client, req: _Request, *, output: object, done: bool) -> None:
        ret = self._time() if done else None
        if not done:
            self._unknown[len(self.history)] = req.seq
        self.history.append(Operation(client.id, req.call, ret, req.input, output))

    # -- driving ----------------------------------------------------------
    def tick(self, now: int) -> None:
        cluster = self.cluster
        if cluster is None:
            raise RuntimeError("workload has no cluster")
        o = self.options
        rng = self.rng
        for c in self.clients:
            req = c.pending
            if req is not None:
                if now >= req.deadline:
                    self._give_up(c, now, "timed out")
                continue
            if self.stopped or now < c.next_at:
                continue
            c.next_at = now + rng.randint(o.min_think_ticks, o.max_think_ticks)
            c.seq += 1
            member = NodeId(rng.randint(1, cluster.options.size))
            if rng.random() < o.read_rate:
                ctx = f"c{c.id}.{c.seq}".encode("ascii")
                call = self._time()
                if cluster.read_index(member, ctx):
                    c.pending = _Request(c.seq, member, call, now + o.timeout_ticks, Read(), None)
                    self.trace.text(now, f"client {c.id} read #{c.seq} via n{member}")
                continue
            if o.machine is MachineKind.REGISTER:
                value = c.id * 1_000_000 + c.seq
                command = Command(c.id, c.seq, "w", value)
                op: object = Write(value)
            else:
                delta = rng.randint(1, 9)
                command = Command(c.id, c.seq, "add", delta)
                op = Add(delta)
            call = self._time()
            if cluster.propose(member, encode_command(command)):
                c.pending = _Request(c.seq, member, call, now + o.timeout_ticks, op, command)
                self.trace.text(now, f"client {c.id} {op} #{c.seq} via n{member}")

    def _give_up(self, c: _Client, now: int, why: str) -> None:
        req = c.pending
        if req is None:
            return
        c.pending = None
        self.trace.text(now, f"client {c.id} #{req.seq} {why}: outcome unknown")
        if req.command is not None:
            self._record(c, req, output=None, done=False)

    def stop(self) -> None:
        """Issue no new requests (the liveness phase)."""
        self.stopped = True

    def finish(self, now: int) -> None:
        """The run is over: whatever is still outstanding has an unknown outcome."""
        for c in self.clients:
            self._give_up(c, now, "still pending at the end")

    def resolved_history(self) -> list[Operation]:
        """``history`` with unknown outcomes settled (see the module docstring)."""
        out = []
        for i, op in enumerate(self.history):
            if op.ret is not None:
                out.append(op)
                continue
            effect = self._effects.get((op.client, self._unknown[i]))
            if effect is not None:
                out.append(Operation(op.client, op.call, effect[0], op.input, effect[1]))
        return out

    # -- ClusterListener --------------------------------------------------
    def on_applied(self, member: NodeId, applied: Applied) -> None:
        command = applied.command
        key = (command.client, command.seq)
        if key not in self._effects:
            self._effects[key] = (self._time(), applied.result)
        c = self.clients[command.client - 1]
        req = c.pending
        if req is None or req.seq != command.seq or req.member != member:
            return
        c.pending = None
        self.checker.on_ack(command, applied.index)
        self.acked += 1
        self._record(c, req, output=applied.result, done=True)
        if self.cluster is not None:
            self.trace.text(self.cluster.now, f"client {c.id} #{req.seq} ok at {applied.index}"
                            + ("" if applied.result is None else f" -> {applied.result}"))

    def on_read(self, member: NodeId, ctx: bytes, value: int | None) -> None:
        ident = ctx.decode("ascii")
        client_id, seq = ident[1:].split(".")
        c = self.clients[int(client_id) - 1]
        req = c.pending
        if req is None or req.seq != int(seq) or req.member != member or req.command is not None:
            return
        c.pending = None
        self._record(c, req, output=value, done=True)
        if self.cluster is not None:
            self.trace.text(self.cluster.now, f"client {c.id} read #{req.seq} -> {value}")

    def on_crash(self, member: NodeId) -> None:
        now = self.cluster.now if self.cluster is not None else 0
        for c in self.clients:
            if c.pending is not None and c.pending.member == member:
                self._give_up(c, now, f"lost n{member}")
