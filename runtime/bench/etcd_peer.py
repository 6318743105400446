"""etcd as a benchmark peer: three members on loopback, driven over gRPC from this process.

``run_etcd(levels, seconds)`` starts a fresh three-member etcd cluster (the ``etcd`` binary on
PATH, free loopback ports, data directories in a temporary directory, etcd's default fsync
policy, errors-only logging), finds its leader and drives it with
``runtime.bench.throughput.closed_loop``: CLIENTS coroutines putting 8-byte keys and 256-byte
values over up to 16 gRPC connections (asyncio client ``aetcd``; each connection its own
channel and TCP socket), one ``Row`` per level. Members' CPU% and RSS come from
``ProcessMeter`` over the measured window: the three etcd processes, then this benchmark
client, as in Steersman's rows. Every member is killed and its data removed before
``run_etcd`` returns.

It returns None, with a note on stderr saying why, when there is no ``etcd`` on PATH, aetcd
is not installed, or the cluster did not come up.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.bench.throughput import (
    VALUE,
    ProcessMeter,
    Row,
    closed_loop,
    free_base_port,
    percentile,
    progress,
    run_async,
)

__all__ = ["EtcdCluster", "etcd_cluster", "etcd_version", "missing", "run_etcd"]

MEMBERS = 3
MAX_CONNS = 16
START_TIMEOUT_S = 30.0
# Separate channels to one target share a TCP connection unless each keeps its own pool.
CHANNEL_OPTIONS: dict[str, Any] = {"grpc.use_local_subchannel_pool": 1}


@dataclass(frozen=True, slots=True)
class EtcdCluster:
    """A running cluster: each member's client URL (host, port) and pid, in member order."""

    endpoints: list[tuple[str, int]]
    pids: list[int]


def missing() -> str | None:
    """Why etcd cannot be measured here, or None if it can."""
    if shutil.which("etcd") is None:
        return "no etcd binary on PATH (Debian: apt-get install etcd-server)"
    if importlib.util.find_spec("aetcd") is None:
        return "the aetcd client is not installed (pip install 'steersman[bench]')"
    return None


def etcd_version() -> str:
    """The first line of ``etcd --version``, e.g. ``etcd Version: 3.4.23``."""
    out = subprocess.run(["etcd", "--version"], capture_output=True, text=True, timeout=10)
    lines = out.stdout.strip().splitlines()
    return lines[0] if lines else "etcd (unknown version)"


def member_argv(i: int, data_dir: Path, base_port: int) -> list[str]:
    """Command line of member ``i``: clients on ``base_port + i``, peers on ``+ MEMBERS + i``."""
    peers = ",".join(f"e{j}=http://127.0.0.1:{base_port + MEMBERS + j}" for j in range(MEMBERS))
    client = f"http://127.0.0.1:{base_port + i}"
    peer = f"http://127.0.0.1:{base_port + MEMBERS + i}"
    return ["etcd", "--name", f"e{i}", "--data-dir", str(data_dir),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", peers, "--initial-cluster-token", f"steer-bench-{base_port}",
            "--initial-cluster-state", "new", "--logger=zap", "--log-level=error"]


@contextlib.contextmanager
def etcd_cluster() -> Iterator[EtcdCluster]:
    """A fresh three-member cluster with a leader; killed and removed on exit.

    Raises:
        RuntimeError: the cluster elected no leader within ``START_TIMEOUT_S``.
    """
    with tempfile.TemporaryDirectory(prefix="steer-etcd-") as d:
        base = free_base_port(2 * MEMBERS)
        procs: list[subprocess.Popen[bytes]] = []
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
        try:
            for i in range(MEMBERS):
                with open(Path(d) / f"e{i}.log", "wb") as log:
                    procs.append(subprocess.Popen(
                        member_argv(i, Path(d) / f"e{i}.etcd", base), stdin=subprocess.DEVNULL,
                        stdout=log, stderr=subprocess.STDOUT, env=env))
            cluster = EtcdCluster([("127.0.0.1", base + i) for i in range(MEMBERS)],
                                  [p.pid for p in procs])
            yield cluster
        finally:
            # Killed, not stopped: a graceful stop hands leadership over first and takes
            # seconds, and the data is thrown away anyway.
            for p in procs:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
            for p in procs:
                p.wait()


async def leader_endpoint(cluster: EtcdCluster) -> tuple[str, int]:
    """The client endpoint of the elected leader, once every member answers.

    Raises:
        RuntimeError: no leader within ``START_TIMEOUT_S``.
    """
    import aetcd  # type: ignore[import-untyped,import-not-found,unused-ignore]

    give_up_at = time.monotonic() + START_TIMEOUT_S
    last_error = "no answer yet"
    while time.monotonic() < give_up_at:
        try:
            leaders = set()
            for host, port in cluster.endpoints:
                async with aetcd.Client(host, port, timeout=2) as client:
                    status = await client.status()
                    if status.leader is None:
                        raise RuntimeError(f"{host}:{port} knows no leader")
                    leaders.add(status.leader.client_urls[0])
            if len(leaders) == 1:
                host, _, port = leaders.pop().removeprefix("http://").rpartition(":")
                return host, int(port)
            last_error = f"members disagree on the leader: {sorted(leaders)}"
        except (aetcd.ClientError, RuntimeError) as e:
            last_error = repr(e)
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the etcd cluster elected no leader in {START_TIMEOUT_S:.0f} s: "
                       f"{last_error}")


async def bench_level(cluster: EtcdCluster, clients: int, seconds: float, note: str) -> Row:
    """One concurrency level against the leader; the level's row."""
    import aetcd  # type: ignore[import-untyped,import-not-found,unused-ignore]

    host, port = await leader_endpoint(cluster)
    pool = [aetcd.Client(host, port, timeout=30, options=CHANNEL_OPTIONS)
            for _ in range(max(1, min(MAX_CONNS, clients)))]
    try:
        for c in pool:
            await c.connect()
        rr = 0

        async def put(key: bytes) -> None:
            nonlocal rr
            rr += 1
            await pool[rr % len(pool)].put(key, VALUE)

        meter = ProcessMeter(cluster.pids + [os.getpid()])
        ops, elapsed, lat = await closed_loop(put, clients, seconds)
        members = meter.read()
    finally:
        for c in pool:
            await c.close()
    lat.sort()
    return Row("etcd", clients, ops, round(elapsed, 2), round(ops / elapsed, 1),
               round(percentile(lat, 0.5) * 1e3, 2), round(percentile(lat, 0.9) * 1e3, 2),
               round(percentile(lat, 0.99) * 1e3, 2), members, note)


def run_etcd(levels: list[int], seconds: float) -> list[Row] | None:
    """One row per level, or None (with a note on stderr) if etcd cannot be measured here."""
    reason = missing()
    if reason is not None:
        print(f"etcd: {reason}; skipped", file=sys.stderr)
        return None
    note = (f"{etcd_version()}, three members, default fsync, every put sent to the leader "
            f"over up to {MAX_CONNS} gRPC connections (aetcd); members: the three etcd "
            "processes, then the benchmark client.")
    rows: list[Row] = []
    try:
        with etcd_cluster() as cluster:
            for n in levels:
                rows.append(run_async(bench_level(cluster, n, seconds, note)))
                progress(rows[-1])
    except RuntimeError as e:
        print(f"etcd: the run failed: {e}", file=sys.stderr)
        return None
    return rows
