"""benchmarks/informers.py runs end to end on small figures and prints its table and JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "informers.py"
SMALL = ["--events", "200", "--cycles", "2000", "--objects", "300", "--no-fsync"]


def test_the_informers_benchmark_prints_every_figure() -> None:
    out = subprocess.run([sys.executable, str(SCRIPT), *SMALL, "--json"], check=True,
                         capture_output=True, text=True, timeout=120).stdout
    results = json.loads(out)
    assert results["events"]["events"] == 200 and results["events"]["events_per_s"] > 0
    assert [w["workers"] for w in results["workqueue"]] == [1, 8]
    # Every object loaded (and those of the events run) is in the informer's cache.
    assert results["list_watch"]["objects"] == 500
    table = subprocess.run([sys.executable, str(SCRIPT), *SMALL], check=True,
                           capture_output=True, text=True, timeout=120).stdout
    assert "store write -> handler" in table and "B/object" in table
