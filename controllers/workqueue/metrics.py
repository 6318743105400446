"""Work queue metrics: what each named queue reports, and where it reports it.

A queue built with a ``name`` and a ``MetricsProvider`` asks the provider for
seven metrics, each for that name:

- ``depth`` (gauge): items waiting to be handed out, counting an item re-added
  while it is processed.
- ``adds_total`` (counter): adds that were not coalesced into a pending one.
- ``queue_duration_seconds`` (histogram): from an item's first pending add to
  the ``get`` that hands it out.
- ``work_duration_seconds`` (histogram): from ``get`` to ``done``.
- ``unfinished_work_seconds`` (settable gauge): the sum of how long every item
  now being processed has been processed; refreshed periodically.
- ``longest_running_processor_seconds`` (settable gauge): the oldest of those.
- ``retries_total`` (counter): calls to ``add_after`` on a live queue.

A queue without a provider reports nothing. ``InMemoryMetricsProvider`` keeps
the values in memory and returns them from ``snapshot()``; give one to every
queue whose numbers a test or a manager wants to read.
"""

from __future__ import annotations

import bisect
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Protocol

from controllers.clock import PassiveClock

__all__ = [
    "DURATION_BUCKETS_SECONDS",
    "CounterMetric",
    "GaugeMetric",
    "HistogramMetric",
    "InMemoryMetricsProvider",
    "MetricsProvider",
    "QueueMetrics",
    "SettableGaugeMetric",
]

DURATION_BUCKETS_SECONDS: tuple[float, ...] = tuple(1e-8 * 10.0**i for i in range(10))
"""Histogram upper bounds for both durations: 10 ns up to 10 s, by powers of ten."""


class CounterMetric(Protocol):
    """A number that only goes up."""

    def inc(self) -> None: ...


class GaugeMetric(Protocol):
    """A number that goes up and down by one."""

    def inc(self) -> None: ...

    def dec(self) -> None: ...


class SettableGaugeMetric(Protocol):
    """A number that is set outright."""

    def set(self, value: float) -> None: ...


class HistogramMetric(Protocol):
    """A distribution of observed values."""

    def observe(self, value: float) -> None: ...


class MetricsProvider(Protocol):
    """Makes the metrics of one named queue."""

    def new_depth_metric(self, name: str) -> GaugeMetric: ...

    def new_adds_metric(self, name: str) -> CounterMetric: ...

    def new_latency_metric(self, name: str) -> HistogramMetric: ...

    def new_work_duration_metric(self, name: str) -> HistogramMetric: ...

    def new_unfinished_work_seconds_metric(self, name: str) -> SettableGaugeMetric: ...

    def new_longest_running_processor_seconds_metric(self, name: str) -> SettableGaugeMetric: ...

    def new_retries_metric(self, name: str) -> CounterMetric: ...


class QueueMetrics:
    """The bookkeeping a queue does for its metrics: add, get, done, retry times."""

    def __init__(self, name: str, provider: MetricsProvider, clock: PassiveClock) -> None:
        self._clock = clock
        self._depth = provider.new_depth_metric(name)
        self._adds = provider.new_adds_metric(name)
        self._latency = provider.new_latency_metric(name)
        self._work_duration = provider.new_work_duration_metric(name)
        self._unfinished = provider.new_unfinished_work_seconds_metric(name)
        self._longest = provider.new_longest_running_processor_seconds_metric(name)
        self._retries = provider.new_retries_metric(name)
        # When each pending item was first added; cleared when it is handed out.
        self._add_times: dict[Hashable, float] = {}
        # When each item now being processed was handed out.
        self._start_times: dict[Hashable, float] = {}

    def add(self, item: Hashable) -> None:
        """An item became pending (it was not pending before)."""
        self._adds.inc()
        self._depth.inc()
        self._add_times.setdefault(item, self._clock.now())

    def get(self, item: Hashable) -> None:
        """A pending item was handed to a worker."""
        now = self._clock.now()
        self._depth.dec()
        added = self._add_times.pop(item, None)
        if added is not None:
            self._latency.observe(now - added)
        self._start_times[item] = now

    def done(self, item: Hashable) -> None:
        """A worker finished an item."""
        started = self._start_times.pop(item, None)
        if started is not None:
            self._work_duration.observe(self._clock.now() - started)

    def retry(self) -> None:
        """An item was scheduled again after a delay."""
        self._retries.inc()

    def update_unfinished_work(self) -> None:
        """Set the two gauges about items still being processed."""
        now = self._clock.now()
        total = 0.0
        oldest = 0.0
        for started in self._start_times.values():
            age = now - started
            total += age
            oldest = max(oldest, age)
        self._unfinished.set(total)
        self._longest.set(oldest)


@dataclass(slots=True)
class _Counter:
    value: int = 0

    def inc(self) -> None:
        self.value += 1


@dataclass(slots=True)
class _Gauge:
    value: float = 0.0

    def inc(self) -> None:
        self.value += 1

    def dec(self) -> None:
        self.value -= 1

    def set(self, value: float) -> None:
        self.value = value


@dataclass(slots=True)
class _Histogram:
    bounds: tuple[float, ...]
    counts: list[int] = field(init=False)  # one per bound, not cumulative
    count: int = 0
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.bounds)

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        slot = bisect.bisect_left(self.bounds, value)
        if slot < len(self.bounds):
            self.counts[slot] += 1

    def view(self) -> dict[str, object]:
        running = 0
        buckets: dict[float, int] = {}
        for bound, n in zip(self.bounds, self.counts, strict=True):
            running += n
            buckets[bound] = running
        return {"count": self.count, "sum": self.total, "buckets": buckets}


@dataclass(slots=True)
class _QueueSeries:
    depth: _Gauge = field(default_factory=_Gauge)
    adds: _Counter = field(default_factory=_Counter)
    latency: _Histogram = field(default_factory=lambda: _Histogram(DURATION_BUCKETS_SECONDS))
    work_duration: _Histogram = field(default_factory=lambda: _Histogram(DURATION_BUCKETS_SECONDS))
    unfinished: _Gauge = field(default_factory=_Gauge)
    longest: _Gauge = field(default_factory=_Gauge)
    retries: _Counter = field(default_factory=_Counter)


class InMemoryMetricsProvider:
    """Keeps every queue's metrics in memory; queues sharing a name share series."""

    def __init__(self) -> None:
        self._series: dict[str, _QueueSeries] = {}

    def _get(self, name: str) -> _QueueSeries:
        series = self._series.get(name)
        if series is None:
            series = self._series[name] = _QueueSeries()
        return series

    def new_depth_metric(self, name: str) -> GaugeMetric:
        return self._get(name).depth

    def new_adds_metric(self, name: str) -> CounterMetric:
        return self._get(name).adds

    def new_latency_metric(self, name: str) -> HistogramMetric:
        return self._get(name).latency

    def new_work_duration_metric(self, name: str) -> HistogramMetric:
        return self._get(name).work_duration

    def new_unfinished_work_seconds_metric(self, name: str) -> SettableGaugeMetric:
        return self._get(name).unfinished

    def new_longest_running_processor_seconds_metric(self, name: str) -> SettableGaugeMetric:
        return self._get(name).longest

    def new_retries_metric(self, name: str) -> CounterMetric:
        return self._get(name).retries

    def snapshot(self) -> dict[str, dict[str, object]]:
        """Every queue's current values, by queue name then metric name.

        Counters are ints, gauges floats, and each histogram a dict with
        ``count``, ``sum`` and cumulative ``buckets`` (upper bound -> count).
        """
        return {
            name: {
                "depth": series.depth.value,
                "adds_total": series.adds.value,
                "queue_duration_seconds": series.latency.view(),
                "work_duration_seconds": series.work_duration.view(),
                "unfinished_work_seconds": series.unfinished.value,
                "longest_running_processor_seconds": series.longest.value,
                "retries_total": series.retries.value,
            }
            for name, series in sorted(self._series.items())
        }
