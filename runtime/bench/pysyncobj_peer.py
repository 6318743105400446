"""pysyncobj as a benchmark peer: a three-process cluster on loopback, load inside its leader.

``run_pysyncobj(levels, seconds)`` starts three ``runtime.bench.pysyncobj_node`` processes on
free loopback ports with their journals in a temporary directory, waits for the leader's
result file, and turns it and each member's CPU/RSS samples into one ``Row`` per level. The
members exit by themselves when the run is over; whatever happens, every process started here
(and any child it forked) is killed before ``run_pysyncobj`` returns.

It returns None, with a note on stderr saying why, when pysyncobj is not installed or the run
failed.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import runtime
from runtime.bench.throughput import Row, free_base_port, percentile, progress
from runtime.bench.usage import Sample, read_samples, window_usage

__all__ = ["count_log_lines", "journal_note", "run_pysyncobj"]

MEMBERS = 3
WARMUP_S = 1.0
STARTUP_BUDGET_S = 30.0  # start, elect, first commit
LEVEL_SLACK_S = 35.0  # per level, beyond warm-up and measurement: the drain may take up to 30 s
TRUNCATION_LOG = "truncating already-applied log entries"  # pysyncobj's own critical log line


def journal_note(version: str) -> str:
    """What the peer's settings and durability are, for the rows' ``note``."""
    return (
        f"pysyncobj {version}, three processes, appendEntriesUseBatch=False, file journal "
        "+ fullDumpFile, load generated inside the leader (callbacks; its CPU% includes the "
        "load). pysyncobj never fsyncs: no fsync/fdatasync anywhere in it; FileJournal "
        "stores each entry into an mmap of the journal file, msync'd only when the SyncObj is "
        "destroyed; term/vote (.meta) and the full dump are written, renamed into place and "
        "never synced. An acknowledged put may exist only in the page cache of all three."
    )


def run_pysyncobj(levels: list[int], seconds: float) -> list[Row] | None:
    """One row per level, or None (with a note on stderr) if pysyncobj is missing or failed."""
    if importlib.util.find_spec("pysyncobj") is None:
        print("pysyncobj: not installed (pip install 'steersman[bench]'); skipped", file=sys.stderr)
        return None
    version = importlib.metadata.version("pysyncobj")
    with tempfile.TemporaryDirectory(prefix="steer-pysyncobj-") as d:
        run_dir = Path(d)
        base = free_base_port(MEMBERS)
        addrs = [f"127.0.0.1:{base + i}" for i in range(MEMBERS)]
        names = [f"m{i}" for i in range(MEMBERS)]
        budget = STARTUP_BUDGET_S + len(levels) * (WARMUP_S + seconds + LEVEL_SLACK_S)
        deadline = time.time() + budget
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for i, (name, addr) in enumerate(zip(names, addrs)):
                partners = ",".join(a for j, a in enumerate(addrs) if j != i)
                procs.append(_start_member(run_dir, name, addr, partners, levels, seconds,
                                           deadline))
            failure = _wait(procs, run_dir / "result.json", deadline + 5.0)
        finally:
            _stop(procs)
        result: dict[str, Any] = {}
        if failure is None:
            result = json.loads((run_dir / "result.json").read_text())
            failure = result.get("error")
        if failure is not None:
            print(f"pysyncobj: the run failed: {failure}{_log_tails(run_dir, names)}",
                  file=sys.stderr)
            return None
        samples = {n: read_samples(run_dir / f"{n}.samples.jsonl") for n in names}
        pids = dict(zip(names, (p.pid for p in procs)))
        truncations = sum(count_log_lines(run_dir / f"{n}.log", TRUNCATION_LOG) for n in names)
    note = journal_note(version) + f" Leader (load runner): pid {result['pid']}."
    if truncations:
        note += (f" Over the run its followers logged {truncations} times that they were "
                 f"{TRUNCATION_LOG!r}: a follower holding entries past an append's prevLogIdx "
                 "cuts them, matching or not, then appends what it was sent.")
    rows = []
    for level in result["levels"]:
        rows.append(_row(level, [(pids[n], samples[n]) for n in names], note))
        progress(rows[-1])
    return rows


def _start_member(run_dir: Path, name: str, addr: str, partners: str, levels: list[int],
                  seconds: float, deadline: float) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    root = str(Path(runtime.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    argv = [sys.executable, "-m", "runtime.bench.pysyncobj_node", "--self", addr,
            "--partners", partners, "--run-dir", str(run_dir), "--name", name,
            "--levels", ",".join(str(n) for n in levels), "--seconds", repr(seconds),
            "--warmup", repr(WARMUP_S), "--deadline", repr(deadline)]
    with open(run_dir / f"{name}.log", "wb") as log:
        # Its own session, so that _stop can kill whatever the member forked too.
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _wait(procs: list[subprocess.Popen[bytes]], result_path: Path, give_up_at: float) -> str | None:
    """Wait for every member to exit; a failure's description, or None once all is done."""
    while time.time() < give_up_at:
        codes = [p.poll() for p in procs]
        if any(c not in (None, 0) for c in codes) and not result_path.exists():
            return f"member exit statuses {codes} before any result"
        if all(c is not None for c in codes):
            return None if result_path.exists() else "every member exited without a result"
        time.sleep(0.1)
    return "the members did not finish in time"


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """Kill each member's session (the member and anything it forked) and reap the member."""
    for p in procs:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=10)


def count_log_lines(path: Path, text: str) -> int:
    """How many lines of the log at ``path`` contain ``text``; 0 if it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return sum(1 for line in f if text in line)
    except OSError:
        return 0


def _log_tails(run_dir: Path, names: list[str]) -> str:
    out = []
    for n in names:
        with contextlib.suppress(OSError):
            tail = (run_dir / f"{n}.log").read_text(errors="replace").strip().splitlines()[-5:]
            if tail:
                out.append(f"\n  {n}.log: " + "\n    ".join(tail))
    return "".join(out)


def _row(level: dict[str, Any], members: list[tuple[int, list[Sample]]], note: str) -> Row:
    lat = sorted(float(x) for x in level["latencies_ms"])
    elapsed = float(level["stop"]) - float(level["start"])
    ops = int(level["ops"])
    usage = [window_usage(s, float(level["start"]), float(level["stop"]), pid)
             for pid, s in members if s]
    errors = int(level["errors"])
    extra = f" {errors} puts failed in this level." if errors else ""
    return Row("pysyncobj", int(level["clients"]), ops, round(elapsed, 2), round(ops / elapsed, 1),
               round(percentile(lat, 0.5), 2), round(percentile(lat, 0.9), 2),
               round(percentile(lat, 0.99), 2), usage, note + extra)
