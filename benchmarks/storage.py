"""Storage benchmarks on the real disk, in a temporary directory.

    python3 benchmarks/storage.py [--seconds 2] [--dir /tmp] [--only NAME ...] [--json]
        [--mvcc-keys 200000] [--memory-keys 1000000]

Each measurement is a function taking the parsed ``Options`` and returning
``Row``s; ``MEASUREMENTS`` lists them in the order they run.

- ``fsync``: the ceiling: a 64-byte append followed by one ``fdatasync``
  (and by one ``fsync``), as fast as the disk allows.
- ``wal_append``: ``WAL.save`` of a batch of 256-byte entries plus a hard
  state, then ``WAL.sync`` (one fdatasync), for batches of 1, 16 and 256.
- ``wal_cpu``: the same with ``unsafe_no_fsync``: the Python cost of framing
  and encoding alone.
- ``wal_recovery``: ``WAL.open`` of a log of 256-byte entries: entries
  verified and decoded per second.
- ``mvcc``: the key space in memory: puts of new keys and updates, applies of
  encoded puts, gets and 100-key range pages per second.
- ``memory``: bytes per key with 1,000,000 keys of 256-byte values.

Only the calls being measured are timed; building entries is not.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kvstore.raft.messages import Entry, HardState, NodeId  # noqa: E402
from kvstore.storage.disk import OsDisk  # noqa: E402
from kvstore.storage.wal import WAL  # noqa: E402

ENTRY_BYTES = 256
BATCH_SIZES = (1, 16, 256)


@dataclass(frozen=True, slots=True)
class Options:
    seconds: float
    dir: str
    mvcc_keys: int = 200_000
    memory_keys: int = 1_000_000


@dataclass(frozen=True, slots=True)
class Row:
    """One figure: what was measured, in which shape, how much of what."""

    measurement: str
    shape: str
    value: float
    unit: str


Measurement = Callable[[Options], list[Row]]


def _scratch(options: Options) -> str:
    return tempfile.mkdtemp(prefix="steersman-bench-", dir=options.dir)


def _sync_loop(path: str, sync: Callable[[int], None], seconds: float) -> float:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        record = b"r" * 64
        count = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            os.write(fd, record)
            sync(fd)
            count += 1
            now = time.perf_counter()
            if now >= deadline:
                return count / (now - start)
    finally:
        os.close(fd)


def measure_fsync_rate(options: Options) -> list[Row]:
    """The raw ceiling: small append + one fdatasync (or fsync), per second."""
    scratch = _scratch(options)
    try:
        fdatasync = getattr(os, "fdatasync", os.fsync)
        rows = []
        for name, sync in (("fdatasync", fdatasync), ("fsync", os.fsync)):
            rate = _sync_loop(os.path.join(scratch, name), sync, options.seconds)
            rows.append(Row("fsync", f"64 B append + {name}", rate, "syncs/s"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return rows


@contextlib.contextmanager
def _quiet_unsafe_warning() -> Iterator[None]:
    """The benchmark knows it runs without fsync where it says so; keep the table readable."""
    logger = logging.getLogger("kvstore.storage.wal")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _batch(first: int, size: int, payload: bytes) -> list[Entry]:
    return [Entry(1, index, payload) for index in range(first, first + size)]


def _append_rate(options: Options, batch_size: int, *, unsafe: bool) -> tuple[float, float]:
    """(entries/s, batches/s) for save(hard_state, batch) + sync() on a fresh log."""
    scratch = _scratch(options)
    try:
        wal = WAL.create(OsDisk(), os.path.join(scratch, "wal"), unsafe_no_fsync=unsafe)
        payload = os.urandom(ENTRY_BYTES)
        batches = 0
        busy = 0.0
        next_index = 1
        deadline = time.perf_counter() + options.seconds
        while time.perf_counter() < deadline:
            batch = _batch(next_index, batch_size, payload)
            hard_state = HardState(1, NodeId(1), next_index - 1)
            start = time.perf_counter()
            wal.save(hard_state, batch)
            wal.sync()
            busy += time.perf_counter() - start
            next_index += batch_size
            batches += 1
        wal.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return batches * batch_size / busy, batches / busy


def measure_wal_appends(options: Options) -> list[Row]:
    """WAL appends per second with one fdatasync per batch (group commit)."""
    rows: list[Row] = []
    for size in BATCH_SIZES:
        entries, batches = _append_rate(options, size, unsafe=False)
        shape = f"batch {size} x {ENTRY_BYTES} B, fdatasync"
        rows.append(Row("wal_append", shape, entries, "entries/s"))
        rows.append(Row("wal_append", shape, batches, "batches/s"))
    return rows


def measure_wal_cpu(options: Options) -> list[Row]:
    """The same appends without fsync: what framing and encoding cost in Python."""
    rows: list[Row] = []
    for size in BATCH_SIZES:
        with _quiet_unsafe_warning():
            entries, _ = _append_rate(options, size, unsafe=True)
        shape = f"batch {size} x {ENTRY_BYTES} B, no fsync"
        rows.append(Row("wal_cpu", shape, entries, "entries/s"))
    return rows


def measure_wal_recovery(options: Options) -> list[Row]:
    """WAL.open of 204,800 256-byte entries saved in batches of 256: entries read per second."""
    scratch = _scratch(options)
    total = 800 * 256
    try:
        directory = os.path.join(scratch, "wal")
        with _quiet_unsafe_warning():
            wal = WAL.create(OsDisk(), directory, unsafe_no_fsync=True)
        payload = os.urandom(ENTRY_BYTES)
        for first in range(1, total + 1, 256):
            wal.save(HardState(1, NodeId(1), first - 1), _batch(first, 256, payload))
        wal.close()
        start = time.perf_counter()
        wal, recovered = WAL.open(OsDisk(), directory)
        elapsed = time.perf_counter() - start
        wal.close()
        if len(recovered.entries) != total:
            raise RuntimeError(f"recovered {len(recovered.entries)} entries, wrote {total}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    shape = f"{total:,} x {ENTRY_BYTES} B entries"
    return [Row("wal_recovery", shape, total / elapsed, "entries/s")]


def measure_mvcc(options: Options) -> list[Row]:
    """MVCC puts and ranges per second in memory (see ``benchmarks/mvcc_bench.py``)."""
    from benchmarks import mvcc_bench

    puts = mvcc_bench.measure_puts(options.mvcc_keys)
    ranges = mvcc_bench.measure_ranges(options.mvcc_keys)
    shape = f"{options.mvcc_keys:,} keys, 256 B values"
    return [
        Row("mvcc_put", f"new keys, {shape}", puts["put_new_per_s"], "puts/s"),
        Row("mvcc_put", f"updates, {shape}", puts["put_update_per_s"], "puts/s"),
        Row("mvcc_apply", f"encoded puts, {shape}", puts["apply_put_new_per_s"], "puts/s"),
        Row("mvcc_get", shape, ranges["get_per_s"], "gets/s"),
        Row("mvcc_range", f"100-key pages, {shape}", ranges["range100_per_s"], "ranges/s"),
    ]


def measure_memory(options: Options) -> list[Row]:
    """Memory per key with 1,000,000 keys of 256-byte values (one version each)."""
    from benchmarks import mvcc_bench

    m = mvcc_bench.measure_memory_per_key(options.memory_keys, 256)
    return [Row("mvcc_memory", f"{options.memory_keys:,} keys x 256 B values",
                m["bytes_per_key"], "bytes/key")]


MEASUREMENTS: list[Measurement] = [
    measure_fsync_rate,
    measure_wal_appends,
    measure_wal_cpu,
    measure_wal_recovery,
    measure_mvcc,
    measure_memory,
]


def _name(measurement: Measurement) -> str:
    return measurement.__name__.removeprefix("measure_")


def format_table(rows: list[Row]) -> str:
    """The rows as an aligned text table."""
    cells = [("measurement", "shape", "value", "unit")]
    cells += [(r.measurement, r.shape, f"{r.value:,.0f}", r.unit) for r in rows]
    widths = [max(len(row[col]) for row in cells) for col in range(4)]
    lines = []
    for row in cells:
        lines.append(
            f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--dir", default=None, help="where to make the scratch directory")
    parser.add_argument(
        "--only", nargs="+", choices=[_name(m) for m in MEASUREMENTS], help="run only these"
    )
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--mvcc-keys", type=int, default=200_000, help="keys for the MVCC rates")
    parser.add_argument("--memory-keys", type=int, default=1_000_000,
                        help="keys for memory per key")
    args = parser.parse_args(argv)
    options = Options(seconds=args.seconds, dir=args.dir or tempfile.gettempdir(),
                      mvcc_keys=args.mvcc_keys, memory_keys=args.memory_keys)
    rows: list[Row] = []
    for measurement in MEASUREMENTS:
        if args.only is None or _name(measurement) in args.only:
            rows.extend(measurement(options))
    if args.json:
        print(json.dumps([asdict(row) for row in rows], indent=2))
    else:
        print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
