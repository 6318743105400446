"""CPU and memory of a benchmark process, sampled by itself and read back over a window.

A member process that the benchmark cannot meter from outside (its load runs inside it, and
the parent learns the measured windows only afterwards) runs a ``SampleWriter``: every
``interval_s`` it appends one JSON line ``{"t": wall seconds, "cpu": CPU seconds, "rss": bytes}``
to its own file. CPU seconds are user plus system time of the process and of the children it
has reaped (pysyncobj forks a child for each log compaction dump), so work done on the
member's behalf is counted.

The parent reads the file back with ``read_samples`` (a torn last line, left by a process
killed mid-write, is ignored) and turns it into one ``members`` entry of a benchmark row with
``window_usage``: CPU% over ``[start, stop]``, interpolated linearly between the samples that
bracket each end, and the RSS of the first sample at or after ``stop``.
"""

from __future__ import annotations

import bisect
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

__all__ = [
    "Sample",
    "SampleWriter",
    "cpu_seconds_at",
    "read_samples",
    "take_sample",
    "window_usage",
]


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of a process: wall time, CPU seconds used so far, resident set size."""

    t: float  # wall-clock seconds (time.time()), comparable across processes
    cpu: float  # user + system seconds of the process and its reaped children
    rss: int  # resident set size in bytes


def take_sample(proc: psutil.Process) -> Sample:
    """A reading of ``proc`` now."""
    times = proc.cpu_times()
    cpu = times.user + times.system + times.children_user + times.children_system
    return Sample(time.time(), float(cpu), int(proc.memory_info().rss))


class SampleWriter:
    """Appends a sample of this process to ``path`` every ``interval_s`` from a daemon thread.

    ``start()`` writes the first sample at once; ``stop()`` writes a last one and closes the
    file, so the samples always cover the life of the writer.
    """

    def __init__(self, path: Path, *, interval_s: float = 0.25) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self._path = path
        self._interval_s = interval_s
        self._proc = psutil.Process()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sample-writer", daemon=True)
        self._file = open(path, "a", encoding="utf-8")  # closed by stop()

    def start(self) -> None:
        self._write()
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()
        if not self._file.closed:
            self._write()
            self._file.close()

    def _run(self) -> None:
        while not self._stopping.wait(self._interval_s):
            self._write()

    def _write(self) -> None:
        s = take_sample(self._proc)
        self._file.write(json.dumps({"t": s.t, "cpu": s.cpu, "rss": s.rss}) + "\n")
        self._file.flush()


def read_samples(path: Path) -> list[Sample]:
    """The samples in ``path`` in time order; a torn or missing file gives what could be read."""
    out: list[Sample] = []
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        try:
            d = json.loads(line)
            out.append(Sample(float(d["t"]), float(d["cpu"]), int(d["rss"])))
        except (ValueError, KeyError, TypeError):
            continue
    out.sort(key=lambda s: s.t)
    return out


def cpu_seconds_at(samples: list[Sample], t: float) -> float:
    """CPU seconds used by wall time ``t``, interpolated; clamped to the first and last sample.

    Raises:
        ValueError: there are no samples.
    """
    if not samples:
        raise ValueError("no samples")
    times = [s.t for s in samples]
    i = bisect.bisect_left(times, t)
    if i == 0:
        return samples[0].cpu
    if i == len(samples):
        return samples[-1].cpu
    lo, hi = samples[i - 1], samples[i]
    if hi.t == lo.t:
        return hi.cpu
    return lo.cpu + (hi.cpu - lo.cpu) * (t - lo.t) / (hi.t - lo.t)


def window_usage(samples: list[Sample], start: float, stop: float, pid: int) -> dict[str, float]:
    """The ``members`` entry of a row for the window ``[start, stop]`` (wall seconds).

    Raises:
        ValueError: there are no samples, or the window is empty.
    """
    if stop <= start:
        raise ValueError(f"empty window [{start}, {stop}]")
    cpu = cpu_seconds_at(samples, stop) - cpu_seconds_at(samples, start)
    times = [s.t for s in samples]
    end = samples[min(bisect.bisect_left(times, stop), len(samples) - 1)]
    return {
        "pid": pid,
        "cpu_pct": round(100 * cpu / (stop - start), 1),
        "rss_mb": round(end.rss / 2**20, 1),
    }
