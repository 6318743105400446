"""Write throughput of a three-member quorum, side by side with its peers.

Starts a fresh three-member Steersman cluster (separate processes, fsync on)
and drives closed-loop puts of 8-byte keys and 256-byte values (etcd's
benchmark shape) at each concurrency level: CLIENTS coroutines, each sending
its next put as soon as the previous one is answered, spread over CONNS
pipelined connections. Prints ops/s, p50/p90/p99 latency and each member's
CPU and RSS; ``--json`` for machines. ``--compare pysyncobj,etcd`` measures the
peers in the same run with the same load shape (see ``benchmarks/peers``).

    steer bench [--clients 1,64,256,1000] [--seconds 10]
        [--runs 1] [--compare pysyncobj,etcd] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

import kvstore
from runtime.cluster import LocalCluster, read_pid

VALUE = b"v" * 256


@dataclass
class Row:
    system: str
    clients: int
    ops: int
    seconds: float
    ops_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    members: list[dict[str, float]] = field(default_factory=list)
    note: str = ""


def free_base_port(n: int) -> int:
    """A base port with ``n`` consecutive free ports after it."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 60000 - n)
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    i = min(len(sorted_values) - 1, max(0, int(round(q * (len(sorted_values) - 1)))))
    return sorted_values[i]


class ProcessMeter:
    """CPU seconds and RSS of some processes over a measurement window."""

    def __init__(self, pids: list[int]) -> None:
        self.procs = [psutil.Process(p) for p in pids]
        self.start_cpu = [self._cpu(p) for p in self.procs]
        self.start = time.perf_counter()

    @staticmethod
    def _cpu(p: psutil.Process) -> float:
        t = p.cpu_times()
        return float(t.user + t.system)

    def read(self) -> list[dict[str, float]]:
        elapsed = time.perf_counter() - self.start
        out = []
        for p, c0 in zip(self.procs, self.start_cpu):
            with contextlib.suppress(psutil.Error):
                out.append({
                    "pid": p.pid,
                    "cpu_pct": round(100 * (self._cpu(p) - c0) / elapsed, 1),
                    "rss_mb": round(p.memory_info().rss / 2**20, 1),
                })
        return out


async def closed_loop(
    put: Callable[[bytes], Awaitable[Any]], clients: int, seconds: float, warmup: float = 1.0
) -> tuple[int, float, list[float]]:
    """``clients`` coroutines putting as fast as answers come back; returns ops, time, latencies."""
    latencies: list[float] = []
    stop_at = 0.0
    measuring = False
    counter = 0

    async def worker(wid: int) -> None:
        nonlocal counter
        perf = time.perf_counter
        while True:
            counter += 1
            key = b"%08d" % (counter % 100_000_000)
            t0 = perf()
            await put(key)
            t1 = perf()
            if t1 >= stop_at and measuring:
                return
            if measuring:
                latencies.append(t1 - t0)

    loop_tasks = [asyncio.ensure_future(worker(i)) for i in range(clients)]
    stop_at = time.perf_counter() + 1e9
    await asyncio.sleep(warmup)
    latencies.clear()
    measuring = True
    start = time.perf_counter()
    stop_at = start + seconds
    await asyncio.gather(*loop_tasks)
    elapsed = time.perf_counter() - start
    return len(latencies), elapsed, latencies


async def bench_steersman_level(endpoints: list[str], clients: int, conns: int, seconds: float,
                                pids: list[int]) -> Row:
    pool = [kvstore.connect(endpoints, timeout=30) for _ in range(max(1, min(conns, clients)))]
    for c in pool:
        await c.__aenter__()
    rr = 0

    async def put(key: bytes) -> None:
        nonlocal rr
        rr += 1
        await pool[rr % len(pool)].put(key, VALUE)

    meter = ProcessMeter(pids + [os.getpid()])
    ops, elapsed, lat = await closed_loop(put, clients, seconds)
    members = meter.read()
    for c in pool:
        await c.close()
    lat.sort()
    return Row("steersman", clients, ops, round(elapsed, 2), round(ops / elapsed, 1),
               round(percentile(lat, 0.5) * 1e3, 2), round(percentile(lat, 0.9) * 1e3, 2),
               round(percentile(lat, 0.99) * 1e3, 2), members)


@contextlib.contextmanager
def steersman_cluster(unsafe_no_fsync: bool = False) -> Iterator[tuple[list[str], list[int]]]:
    with tempfile.TemporaryDirectory(prefix="steer-bench-") as d:
        cluster = LocalCluster(os.path.join(d, ".steer"))
        # The members' defaults, as `steer up` runs them, minus the control plane.
        extra = ["--log-level", "WARNING", "--no-control-plane"]
        if unsafe_no_fsync:
            extra.append("--unsafe-no-fsync")
        cf, _ = cluster.up(3, free_base_port(6), extra_args=extra)
        try:
            leader = asyncio.run(cluster.wait_for_leader(30))
            if leader is None:
                raise RuntimeError("the benchmark cluster elected no leader")
            pids = [p for p in (read_pid(m) for m in cf.members) if p is not None]
            yield cf.endpoints(), pids
        finally:
            cluster.down()


def run_steersman(levels: list[int], conns: int, seconds: float,
                  unsafe_no_fsync: bool = False) -> list[Row]:
    rows = []
    with steersman_cluster(unsafe_no_fsync) as (endpoints, pids):
        for n in levels:
            rows.append(run_async(bench_steersman_level(endpoints, n, conns, seconds, pids)))
            progress(rows[-1])
    return rows


def run_async(coro: Awaitable[Row]) -> Row:
    try:
        import uvloop

        return uvloop.run(coro)  # type: ignore[arg-type, no-any-return, unused-ignore]
    except ImportError:
        return asyncio.run(coro)  # type: ignore[arg-type, unused-ignore]


def progress(row: Row) -> None:
    print(f"  {row.system:>10} clients={row.clients:<5} {row.ops_per_s:>10,.0f} ops/s "
          f"p99={row.p99_ms} ms", file=sys.stderr)


def median_rows(runs: list[list[Row]]) -> list[Row]:
    """Per (system, clients), the run with the median throughput."""
    out = []
    for group in zip(*runs):
        ordered = sorted(group, key=lambda r: r.ops_per_s)
        out.append(ordered[len(ordered) // 2])
    return out


def print_table(rows: list[Row]) -> None:
    base = {r.clients: r for r in rows if r.system == "steersman"}
    header = (f"{'system':<10} {'clients':>7} {'ops/s':>10} {'p50 ms':>8} {'p90 ms':>8} "
              f"{'p99 ms':>8} {'vs steersman':>12}  members cpu% / rss MB")
    print(header)
    for r in rows:
        ratio = ""
        if r.system != "steersman" and r.clients in base and r.ops_per_s:
            ratio = f"{base[r.clients].ops_per_s / r.ops_per_s:.2f}x"
        mem = " ".join(f"{m['cpu_pct']:.0f}%/{m['rss_mb']:.0f}" for m in r.members)
        print(f"{r.system:<10} {r.clients:>7} {r.ops_per_s:>10,.0f} {r.p50_ms:>8.2f} "
              f"{r.p90_ms:>8.2f} {r.p99_ms:>8.2f} {ratio:>12}  {mem}")
    noted: set[str] = set()
    for r in rows:
        if r.note and r.system not in noted:
            noted.add(r.system)
            print(f"note ({r.system}): {r.note}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", default="1,64,256,1000")
    ap.add_argument("--conns", type=int, default=16, help="connections the clients share")
    ap.add_argument("--seconds", type=float, default=8.0, help="measured seconds per level")
    ap.add_argument("--runs", type=int, default=1, help="repeat and report the median run")
    ap.add_argument("--compare", default="", help="comma-separated peers: pysyncobj, etcd")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--unsafe-no-fsync", action="store_true",
                    help="diagnosis only: run our members without fsync (not a fair comparison)")
    args = ap.parse_args(argv)
    levels = [int(x) for x in args.clients.split(",") if x]
    peers = [p for p in args.compare.split(",") if p]
    all_rows: list[Row] = []
    runs = [run_steersman(levels, args.conns, args.seconds, args.unsafe_no_fsync)
            for _ in range(args.runs)]
    all_rows += median_rows(runs)
    for peer in peers:
        from runtime.bench.peers import run_peer

        peer_runs: list[list[Row]] = []
        for _ in range(args.runs):
            rows = run_peer(peer, levels, args.seconds)
            if rows:
                peer_runs.append(rows)
        if peer_runs:
            all_rows += median_rows(peer_runs)
    if args.json:
        print(json.dumps({"benchmark": "write_throughput", "value_bytes": len(VALUE),
                          "rows": [asdict(r) for r in all_rows]}, indent=2))
    else:
        print("Closed-loop 256-byte puts on a three-member cluster on this machine "
              f"(median of {args.runs} run(s), {args.seconds:.0f} s per level)")
        print_table(all_rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
