"""Deterministic simulation of a whole Raft cluster in one process.

Run it as::

    python -m kvstore.testing.simulate --seeds N [--seed S] [--ticks T] [--nodes 3|5]
                                       [--trace] [--variant NAME] [--silent-loss]

which runs seeds ``S .. S+N-1`` (``--variant``: a deliberately broken core,
see ``variants``; ``--silent-loss``: lost messages are reported to neither
end). One seed decides everything: the run's options ("swarm testing": its
own drop rate, delays, partition, crash and compaction frequencies, Raft
settings and workload, so some seeds are calm and some brutal) and the
sub-seeds of the network, the fault schedule, the driver, each member's
RawNode and the clients. Nothing reads the global
``random``, the clock, ``hash()`` of a string or the order of a set, so a seed
replays byte for byte.

A run has two phases. Safety (``ticks`` ticks): faults come and go, clients
write and read, and the ``SafetyChecker`` checks Raft's properties after every
step. Liveness: the network heals and calms down, crashed members restart,
faults and new requests stop; within ``50 * election_tick`` ticks a leader must
emerge and commit a probe entry that every member applies. Finally every
acknowledged write must be in every member's state and the clients' history
must be linearizable.

A failing seed prints its options, the command that replays it and the last
trace lines. The last line of every run is ``seeds=N steps=M violations=V``,
and the exit status is non-zero when ``V > 0``.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

from kvstore.raft.messages import NodeId
from kvstore.testing.checker import SafetyChecker, SafetyViolation, Violation
from kvstore.testing.cluster import Cluster, ClusterOptions
from kvstore.testing.linearizability import CheckOutcome, CheckResult, check
from kvstore.testing.models import CounterModel, RegisterModel
from kvstore.testing.network import CALM, NetworkConfig, SimNetwork
from kvstore.testing.statemachine import MachineKind, StateMachine
from kvstore.testing.trace import Trace
from kvstore.testing.variants import VARIANTS, apply_variant
from kvstore.testing.workload import Workload, WorkloadOptions

__all__ = ["SimOptions", "SimResult", "Simulator", "choose_options", "main", "run_seeds"]

LINEARIZABILITY_MAX_STEPS = 5_000_000
TRACE_KEEP = 400
REPORT_LINES = 50


@dataclass(frozen=True, slots=True)
class SimOptions:
    """Everything a run varies; chosen from the seed by ``choose_options``."""

    nodes: int
    ticks: int
    cluster: ClusterOptions
    network: NetworkConfig
    workload: WorkloadOptions
    partition_rate: float = 0.0
    max_partition_ticks: int = 100
    crash_rate: float = 0.0
    leader_crash_rate: float = 0.0
    max_down_ticks: int = 100
    compact_rate: float = 0.0
    compact_keep: int = 0
    transfer_rate: float = 0.0
    liveness_ticks: int = 500

    def describe(self) -> str:
        parts: dict[str, str] = {}
        for obj in (self, self.network, self.cluster, self.workload):
            for f in fields(obj):
                value = getattr(obj, f.name)
                if not isinstance(value, (ClusterOptions, NetworkConfig, WorkloadOptions)):
                    shown = value.value if isinstance(value, MachineKind) else value
                    parts.setdefault(f.name, f"{f.name}={shown}")
        return " ".join(parts.values())


def choose_options(rng: random.Random, *, nodes: int, ticks: int) -> SimOptions:
    """A run's options: each seed gets its own mix of calm and brutal."""
    calm = rng.random() < 0.15
    election_tick = 10
    max_delay = rng.choice([1, 1, 2, 3, 5])
    network = NetworkConfig(
        drop_rate=0.0 if calm else rng.choice([0.0, 0.0, 0.01, 0.05, 0.1, 0.2]),
        duplicate_rate=0.0 if calm else rng.choice([0.0, 0.0, 0.01, 0.05]),
        min_delay=1,
        max_delay=max_delay,
    )
    machine = MachineKind.REGISTER if rng.random() < 0.7 else MachineKind.COUNTER
    cluster = ClusterOptions(
        size=nodes,
        election_tick=election_tick,
        heartbeat_tick=rng.choice([1, 2, 3]),
        check_quorum=rng.random() < 0.7,
        pre_vote=rng.random() < 0.7,
        max_size_per_msg=rng.choice([1, 200, 1 << 20]),
        max_inflight_msgs=rng.choice([1, 4, 256]),
        machine=machine,
        max_sync_delay=rng.choice([0, 1, 3]),
        early_send_rate=rng.choice([0.0, 0.5, 1.0]),
    )
    workload = WorkloadOptions(
        clients=rng.randint(1, 5),
        min_think_ticks=0,
        max_think_ticks=rng.choice([2, 10, 30]),
        timeout_ticks=rng.choice([30, 60, 120]),
        read_rate=rng.choice([0.2, 0.5, 0.8]),
        machine=machine,
    )
    return SimOptions(
        nodes=nodes,
        ticks=ticks,
        cluster=cluster,
        network=network,
        workload=workload,
        partition_rate=0.0 if calm else rng.choice([0.0, 0.002, 0.01, 0.03]),
        max_partition_ticks=rng.choice([20, 100, 300]),
        crash_rate=0.0 if calm else rng.choice([0.0, 0.001, 0.005, 0.02]),
        leader_crash_rate=0.0 if calm else rng.choice([0.0, 0.0, 0.005, 0.02]),
        max_down_ticks=rng.choice([20, 100, 300]),
        compact_rate=rng.choice([0.0, 0.01, 0.05]),
        compact_keep=rng.choice([0, 2, 20]),
        transfer_rate=0.0 if calm else rng.choice([0.0, 0.0, 0.002]),
        liveness_ticks=50 * election_tick,
    )


@dataclass(frozen=True, slots=True)
class SimResult:
    seed: int
    options: SimOptions
    variant: str | None
    steps: int
    ticks: int
    violation: Violation | None
    trace: Trace
    operations: int
    acked: int
    linearizability: CheckResult | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.violation is None

    def replay_command(self) -> str:
        cmd = (f"python -m kvstore.testing.simulate --seed {self.seed} "
               f"--ticks {self.options.ticks} --nodes {self.options.nodes}")
        if self.variant is not None:
            cmd += f" --variant {self.variant}"
        if self.options.network.silent_loss:
            cmd += " --silent-loss"
        return cmd

    def report(self, last: int = REPORT_LINES) -> str:
        lines = [f"seed {self.seed} FAILED: {self.violation}"]
        if self.error:
            lines.append(self.error.rstrip())
        lines.append(f"options: {self.options.describe()}")
        lines.append(f"replay: {self.replay_command()}")
        lines.append(f"last {last} trace lines:")
        lines += self.trace.lines(last)
        return "\n".join(lines)


class Simulator:
    """One seeded run of a whole cluster."""

    def __init__(self, seed: int, options: SimOptions | None = None, *, nodes: int = 3,
                 ticks: int = 2000, trace_keep: int | None = TRACE_KEEP,
                 variant: str | None = None, silent_loss: bool = False) -> None:
        master = random.Random(seed)
        options_rng = random.Random(master.getrandbits(64))
        self.seed = seed
        options = options or choose_options(options_rng, nodes=nodes, ticks=ticks)
        if silent_loss:
            options = replace(options, network=replace(options.network, silent_loss=True))
        self.options = options
        self.variant = variant
        self.net_rng = random.Random(master.getrandbits(64))
        self.fault_rng = random.Random(master.getrandbits(64))
        self.driver_rng = random.Random(master.getrandbits(64))
        self.workload_rng = random.Random(master.getrandbits(64))
        self.node_seeds = [master.getrandbits(48) for _ in range(self.options.nodes)]
        self.trace = Trace(keep=trace_keep)
        self.now = 0
        self._down_until: dict[NodeId, int] = {}
        self._heal_at = -1
        self.cluster: Cluster | None = None

    def run(self) -> SimResult:
        o = self.options
        initial = 0 if o.cluster.machine is MachineKind.COUNTER else None
        checker = SafetyChecker(initial)
        workload = Workload(o.workload, self.workload_rng, checker, self.trace)
        network = SimNetwork(self.net_rng, o.network)
        violation: Violation | None = None
        error = ""
        lin: CheckResult | None = None
        cluster: Cluster | None = None
        with apply_variant(self.variant):
            try:
                cluster = Cluster(o.cluster, rng=self.driver_rng, node_seeds=self.node_seeds,
                                  network=network, checker=checker, trace=self.trace,
                                  listener=workload)
                workload.cluster = cluster
                self.cluster = cluster
                self._safety_phase(cluster, workload, checker)
                self._liveness_phase(cluster, workload, checker)
                workload.finish(self.now)
                machines = {m.id: m.app for m in cluster.members.values() if m.app is not None}
                checker.check_final(machines)
                lin = self._check_history(workload)
                if lin.outcome is not CheckOutcome.OK:
                    violation = Violation(self.now, f"linearizability-{lin.outcome.value}",
                                          lin.explanation)
            except SafetyViolation as e:
                violation = e.violation
            except Exception as e:  # the core or the driver blew up: a failure like any other
                violation = Violation(self.now, "exception", f"{type(e).__name__}: {e}")
                error = "".join(traceback.format_exception(e)[-6:])
        if violation is not None:
            self.trace.text(self.now, f"VIOLATION {violation}")
        return SimResult(
            seed=self.seed, options=o, variant=self.variant,
            steps=cluster.steps if cluster is not None else 0, ticks=self.now,
            violation=violation, trace=self.trace, operations=len(workload.history),
            acked=workload.acked, linearizability=lin, error=error,
        )

    # -- phases -----------------------------------------------------------
    def _step(self, cluster: Cluster, workload: Workload, checker: SafetyChecker, *,
              faults: bool = False) -> None:
        self.now += 1
        cluster.now = checker.now = self.now
        if faults:
            self._faults(cluster)
        workload.tick(self.now)
        cluster.tick()
        cluster.deliver()
        cluster.process()

    def _safety_phase(self, cluster: Cluster, workload: Workload, checker: SafetyChecker) -> None:
        for _ in range(self.options.ticks):
            self._step(cluster, workload, checker, faults=True)

    def _faults(self, cluster: Cluster) -> None:
        o = self.options
        rng = self.fault_rng
        now = self.now
        trace = self.trace
        ids = list(cluster.members)
        if self._heal_at >= 0 and now >= self._heal_at:
            cluster.network.heal()
            self._heal_at = -1
            trace.text(now, "heal network")
        elif self._heal_at < 0 and o.partition_rate and rng.random() < o.partition_rate:
            self._heal_at = now + rng.randint(1, o.max_partition_ticks)
            self._partition(cluster, ids)
        for member in ids:
            if member in self._down_until and now >= self._down_until[member]:
                del self._down_until[member]
                cluster.restart(member)
        if o.crash_rate and rng.random() < o.crash_rate:
            self._crash(cluster, rng.choice(ids))
        if o.leader_crash_rate and rng.random() < o.leader_crash_rate:
            leader = cluster.leader()
            if leader is not None:
                self._crash(cluster, leader.id)
        if o.compact_rate:
            for member in ids:
                if rng.random() < o.compact_rate:
                    cluster.compact(member, o.compact_keep)
        if o.transfer_rate and rng.random() < o.transfer_rate:
            leader = cluster.leader()
            if leader is not None:
                others = [i for i in ids if i != leader.id]
                cluster.transfer_leader(leader.id, rng.choice(others))

    def _crash(self, cluster: Cluster, member: NodeId) -> None:
        if member not in self._down_until:
            rng = self.fault_rng
            self._down_until[member] = self.now + rng.randint(1, self.options.max_down_ticks)
            cluster.crash(member)

    def _partition(self, cluster: Cluster, ids: list[NodeId]) -> None:
        rng = self.fault_rng
        network = cluster.network
        now = self.now
        kind = rng.randrange(3)
        if kind == 0:
            shuffled = list(ids)
            rng.shuffle(shuffled)
            cut = rng.randint(1, len(ids) - 1)
            groups = [sorted(shuffled[:cut]), sorted(shuffled[cut:])]
            network.partition(groups)
            self.trace.text(now, "partition " + " | ".join(
                ",".join(str(i) for i in g) for g in groups))
        elif kind == 1:
            # Isolate the leader if there is one (it keeps taking proposals it
            # cannot commit), else anyone.
            leader = cluster.leader()
            alone = leader.id if leader is not None and rng.random() < 0.7 else rng.choice(ids)
            network.partition([[alone], [i for i in ids if i != alone]])
            self.trace.text(now, f"isolate n{alone}")
        else:
            for _ in range(rng.randint(1, len(ids))):
                a, b = rng.sample(ids, 2)
                network.block(a, b)
            self.trace.text(now, "one-way cuts " + " ".join(
                f"{a}->{b}" for a, b in network.blocked_links()))

    def _liveness_phase(self, cluster: Cluster, workload: Workload, checker: SafetyChecker) -> None:
        o = self.options
        cluster.network.heal()
        cluster.network.config = CALM
        workload.stop()
        cluster.now = self.now
        for member in list(self._down_until):
            cluster.restart(member)
        self._down_until.clear()
        self.trace.text(self.now, "liveness: network healed, all members up, faults stopped")
        deadline = self.now + o.liveness_ticks
        retry_every = 2 * o.cluster.election_tick
        probe = 0
        probe_index = 0
        probe_at = -retry_every
        while self.now < deadline:
            self._step(cluster, workload, checker)
            if probe_index and self._probe_everywhere(cluster, checker, probe, probe_index):
                self.trace.text(self.now, f"liveness: probe {probe} applied everywhere at "
                                f"{probe_index}")
                return
            if self.now - probe_at >= retry_every:
                leader = cluster.leader()
                if leader is not None and leader.node is not None:
                    data = f"probe {probe + 1}".encode("ascii")
                    if cluster.propose(leader.id, data):
                        probe += 1
                        probe_index = leader.node.raft.raft_log.last_index()
                        probe_at = self.now
                        self.trace.text(self.now, f"liveness: probe {probe} proposed on "
                                        f"n{leader.id} at {probe_index}")
        leader = cluster.leader()
        applied = {m.id: (m.app.applied if m.app is not None else None)
                   for m in cluster.members.values()}
        checker.fail("liveness", f"no probe applied on every member within {o.liveness_ticks} "
                     f"ticks of healing (leader: {leader.id if leader else None}, probe "
                     f"{probe} at {probe_index}, applied: {applied})")

    def _probe_everywhere(self, cluster: Cluster, checker: SafetyChecker, probe: int,
                          index: int) -> bool:
        if not checker.has_applied(index, f"probe {probe}".encode("ascii")):
            return False
        return all(m.app is not None and m.app.applied >= index for m in cluster.members.values())

    def _check_history(self, workload: Workload) -> CheckResult:
        history = workload.resolved_history()
        if self.options.cluster.machine is MachineKind.REGISTER:
            return check(history, RegisterModel(), max_steps=LINEARIZABILITY_MAX_STEPS)
        return check(history, CounterModel(), max_steps=LINEARIZABILITY_MAX_STEPS)


def run_seeds(seeds: Sequence[int], *, nodes: int = 3, ticks: int = 2000,
              variant: str | None = None, stop_at_first: bool = False) -> list[SimResult]:
    """Run each seed; stop after the first failure if asked."""
    results = []
    for seed in seeds:
        result = Simulator(seed, nodes=nodes, ticks=ticks, variant=variant).run()
        results.append(result)
        if stop_at_first and not result.ok:
            break
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kvstore.testing.simulate",
                                     description="Deterministic simulation of a Raft cluster.")
    parser.add_argument("--seeds", type=int, default=1, help="how many seeds to run")
    parser.add_argument("--seed", type=int, default=1, help="the first seed")
    parser.add_argument("--ticks", type=int, default=2000, help="ticks of the safety phase")
    parser.add_argument("--nodes", type=int, default=3, choices=(3, 5))
    parser.add_argument("--trace", action="store_true", help="print every run's full trace")
    parser.add_argument("--variant", default=None, choices=sorted(VARIANTS),
                        help="run a deliberately broken core or driver")
    parser.add_argument("--silent-loss", action="store_true",
                        help="lost messages go unreported to both ends")
    args = parser.parse_args(argv)
    # The members log leadership changes and torn WAL tails cut at restart;
    # the trace already says what happened. Restored afterwards, so a caller
    # embedding the simulator keeps its logging as it was.
    kv_logger = logging.getLogger("kvstore")
    saved_level = kv_logger.level
    kv_logger.setLevel(logging.ERROR)
    steps = 0
    violations = 0
    out = sys.stdout
    try:
        for seed in range(args.seed, args.seed + args.seeds):
            sim = Simulator(seed, nodes=args.nodes, ticks=args.ticks,
                            trace_keep=None if args.trace else TRACE_KEEP, variant=args.variant,
                            silent_loss=args.silent_loss)
            result = sim.run()
            steps += result.steps
            if args.trace:
                out.write(f"seed {seed} options: {result.options.describe()}\n")
                for line in result.trace.lines():
                    out.write(line + "\n")
            if not result.ok:
                violations += 1
                out.write(result.report() + "\n")
            out.flush()
    finally:
        kv_logger.setLevel(saved_level)
    out.write(f"seeds={args.seeds} steps={steps} violations={violations}\n")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
