"""CPU/RSS samples written by a benchmark process and read back over a window."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.bench.usage import (
    Sample,
    SampleWriter,
    cpu_seconds_at,
    read_samples,
    window_usage,
)

SAMPLES = [Sample(10.0, 1.0, 100 * 2**20), Sample(11.0, 1.5, 110 * 2**20),
           Sample(12.0, 1.5, 120 * 2**20), Sample(13.0, 2.5, 130 * 2**20)]


@pytest.mark.parametrize(("t", "cpu"), [
    (9.0, 1.0),     # before the first sample: clamped
    (10.0, 1.0),
    (10.5, 1.25),   # interpolated
    (11.5, 1.5),    # idle between samples
    (12.25, 1.75),
    (13.0, 2.5),
    (20.0, 2.5),    # after the last sample: clamped
])
def test_cpu_seconds_at_interpolates_between_samples(t: float, cpu: float) -> None:
    assert cpu_seconds_at(SAMPLES, t) == pytest.approx(cpu)


def test_window_usage_is_cpu_percent_over_the_window_and_rss_at_its_end() -> None:
    u = window_usage(SAMPLES, 10.5, 12.5, pid=42)
    # 1.25 -> 2.0 CPU seconds over 2 wall seconds.
    assert u == {"pid": 42, "cpu_pct": 37.5, "rss_mb": 130.0}
    assert window_usage(SAMPLES, 10.0, 11.0, pid=42)["rss_mb"] == 110.0


def test_window_usage_refuses_empty_windows_and_no_samples() -> None:
    with pytest.raises(ValueError, match="empty window"):
        window_usage(SAMPLES, 12.0, 12.0, pid=1)
    with pytest.raises(ValueError, match="no samples"):
        window_usage([], 1.0, 2.0, pid=1)


def test_read_samples_sorts_and_skips_a_torn_line(tmp_path: Path) -> None:
    p = tmp_path / "m0.samples.jsonl"
    p.write_text('{"t": 2.0, "cpu": 0.2, "rss": 5}\n{"t": 1.0, "cpu": 0.1, "rss": 4}\n'
                 '{"t": 3.0, "cpu"')
    assert read_samples(p) == [Sample(1.0, 0.1, 4), Sample(2.0, 0.2, 5)]
    assert read_samples(tmp_path / "absent.jsonl") == []


def test_sample_writer_records_this_process_from_start_to_stop(tmp_path: Path) -> None:
    p = tmp_path / "self.samples.jsonl"
    writer = SampleWriter(p, interval_s=3600.0)
    writer.start()
    sum(i * i for i in range(200_000))  # some CPU between the first and the last sample
    writer.stop()
    samples = read_samples(p)
    assert len(samples) == 2
    first, last = samples
    assert first.t <= last.t and first.cpu <= last.cpu
    assert last.rss > 0
    with pytest.raises(ValueError):
        SampleWriter(tmp_path / "x", interval_s=0)
