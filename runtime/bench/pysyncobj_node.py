"""One member of the three-process pysyncobj cluster that ``runtime.bench.pysyncobj_peer`` measures.

    python -m runtime.bench.pysyncobj_node --self HOST:PORT --partners HOST:PORT,HOST:PORT
        --run-dir DIR --name NAME --levels 1,64 --seconds 8 [--warmup 1] --deadline EPOCH

Each member holds a replicated dict in pysyncobj's fastest setting: every proposal is sent to
the followers at once (``appendEntriesUseBatch=False``), entries go to a file journal and log
compaction writes a full-dump file. Each member appends a CPU/RSS sample to
``DIR/NAME.samples.jsonl`` every 0.25 s (``runtime.bench.usage``).

pysyncobj's API is callback-based, so the load is generated inside the leader: the first member
to see itself leader claims ``DIR/claim`` (an exclusive create) and, for each level, keeps
CLIENTS puts of 8-byte keys and 256-byte values in flight (each answer issues the next put),
warms up for ``--warmup`` seconds, measures ``--seconds``, then lets the puts in flight drain.
It writes ``DIR/result.json`` atomically:

    {"runner": NAME, "pid": PID, "levels": [{"clients", "start", "stop", "ops", "errors",
     "latencies_ms", "still_leader"}], "error": "..." (only when the run failed)}

``start``/``stop`` are wall-clock seconds, comparable with the samples. The other members exit
once the result exists, and every member exits by itself at DEADLINE (wall seconds) whatever
happens. Exit status: 0 on success, 1 if the run failed, 2 if the deadline passed first.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from pysyncobj import (  # type: ignore[import-untyped,import-not-found,unused-ignore]
    FAIL_REASON,
    SyncObj,
    SyncObjConf,
    SyncObjException,
    replicated,
)

from runtime.bench.usage import SampleWriter

VALUE = b"v" * 256
DRAIN_TIMEOUT_S = 30.0


class ReplicatedDict(SyncObj):  # type: ignore[misc]
    """A dict replicated by pysyncobj; ``set`` is the only command."""

    def __init__(self, self_addr: str, partners: list[str], conf: Any) -> None:
        super().__init__(self_addr, partners, conf)
        self._data: dict[bytes, bytes] = {}

    @replicated  # type: ignore[untyped-decorator]
    def set(self, key: bytes, value: bytes) -> None:
        self._data[key] = value


class ClosedLoop:
    """``clients`` puts in flight on ``store``: each answer issues the next put until ``stop()``.

    Answers arrive on pysyncobj's tick thread; the counters shared with the caller's thread are
    guarded by a lock. Latencies are kept for answers that arrive inside the measured window.
    """

    def __init__(self, store: ReplicatedDict, clients: int) -> None:
        self._store = store
        self._clients = clients
        self._lock = threading.Lock()
        self._keys = itertools.count(1)
        self._running = True
        self._in_flight = 0
        self._drained = threading.Event()
        self._window = (float("inf"), float("inf"))  # perf_counter bounds of the measurement
        self.latencies_s: list[float] = []
        self.errors = 0

    def start(self) -> None:
        with self._lock:
            self._in_flight += self._clients
        for _ in range(self._clients):
            self._send()

    def measure(self, start: float, stop: float) -> None:
        """Keep the latencies of puts answered in ``[start, stop)`` (perf_counter seconds)."""
        self._window = (start, stop)

    def stop(self, timeout_s: float) -> bool:
        """Issue no more puts; wait until none is in flight. Returns whether they drained."""
        with self._lock:
            self._running = False
            if self._in_flight == 0:
                self._drained.set()
        return self._drained.wait(timeout_s)

    def _send(self) -> None:
        key = b"%08d" % (next(self._keys) % 100_000_000)
        t0 = time.perf_counter()
        self._store.set(key, VALUE, callback=lambda _res, err: self._answered(t0, err))

    def _answered(self, t0: float, err: int) -> None:
        t1 = time.perf_counter()
        lo, hi = self._window
        with self._lock:
            if err != FAIL_REASON.SUCCESS:
                self.errors += 1
            elif lo <= t1 < hi:
                self.latencies_s.append(t1 - t0)
            again = self._running
            if not again:
                self._in_flight -= 1
                if self._in_flight == 0:
                    self._drained.set()
        if again:
            self._send()


def run_level(store: ReplicatedDict, clients: int, seconds: float, warmup_s: float) -> dict[str, Any]:
    """One concurrency level: warm up, measure ``seconds``, drain; the level's result record."""
    loop = ClosedLoop(store, clients)
    loop.start()
    time.sleep(warmup_s)
    start_perf = time.perf_counter()
    start_wall = time.time()
    loop.measure(start_perf, start_perf + seconds)
    time.sleep(max(0.0, start_perf + seconds - time.perf_counter()))
    stop_wall = start_wall + seconds
    drained = loop.stop(DRAIN_TIMEOUT_S)
    record: dict[str, Any] = {
        "clients": clients,
        "start": start_wall,
        "stop": stop_wall,
        "ops": len(loop.latencies_s),
        "errors": loop.errors,
        "latencies_ms": [round(x * 1e3, 4) for x in loop.latencies_s],
        "still_leader": bool(store._isLeader()),
    }
    if not drained:
        record["error"] = f"puts still in flight {DRAIN_TIMEOUT_S:.0f} s after the level ended"
    return record


def run_levels(store: ReplicatedDict, name: str, levels: list[int], seconds: float,
               warmup_s: float) -> dict[str, Any]:
    """Every level in turn on this member, which must be the leader; the result document."""
    result: dict[str, Any] = {"runner": name, "pid": os.getpid(), "levels": []}
    try:
        store.set(b"warmup", VALUE, sync=True, timeout=10)
    except SyncObjException as e:
        result["error"] = f"the first put failed: {e!r}"
        return result
    for clients in levels:
        record = run_level(store, clients, seconds, warmup_s)
        result["levels"].append(record)
        if "error" in record:
            result["error"] = record["error"]
            break
        if not record["still_leader"]:
            result["error"] = f"lost leadership during the level with {clients} clients"
            break
    return result


def claim(path: Path) -> bool:
    """Create ``path`` exclusively: True for the one member that gets to run the load."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def write_json_atomically(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc), encoding="utf-8")
    os.replace(tmp, path)


def serve(store: ReplicatedDict, args: argparse.Namespace) -> int:
    """Wait to run the load as leader, or for the leader's result; the exit status."""
    run_dir = Path(args.run_dir)
    result_path = run_dir / "result.json"
    levels = [int(x) for x in args.levels.split(",") if x]
    while time.time() < args.deadline:
        if result_path.exists():
            return 0
        if store._isLeader() and claim(run_dir / "claim"):
            result = run_levels(store, args.name, levels, args.seconds, args.warmup)
            write_json_atomically(result_path, result)
            return 1 if "error" in result else 0
        time.sleep(0.05)
    return 2


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--self", dest="self_addr", required=True)
    ap.add_argument("--partners", required=True, help="comma-separated HOST:PORT of the others")
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--levels", required=True, help="comma-separated numbers of puts in flight")
    ap.add_argument("--seconds", type=float, required=True, help="measured seconds per level")
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds before each measurement")
    ap.add_argument("--deadline", type=float, required=True, help="wall time to exit by")
    args = ap.parse_args(argv)
    run_dir = Path(args.run_dir)
    sampler = SampleWriter(run_dir / f"{args.name}.samples.jsonl", interval_s=0.25)
    sampler.start()
    conf = SyncObjConf(
        appendEntriesUseBatch=False,
        journalFile=str(run_dir / f"{args.name}.journal"),
        fullDumpFile=str(run_dir / f"{args.name}.dump"),
    )
    store = ReplicatedDict(args.self_addr, [p for p in args.partners.split(",") if p], conf)
    try:
        return serve(store, args)
    finally:
        store.destroy()
        stop_by = time.monotonic() + 2.0
        while store.tick_thread_alive() and time.monotonic() < stop_by:
            time.sleep(0.02)
        sampler.stop()


if __name__ == "__main__":
    raise SystemExit(main())
