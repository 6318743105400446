"""benchmarks/scheduler.py runs end to end on small figures and prints its table and JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "scheduler.py"
SMALL = ["--pods", "60", "--nodes", "4,7", "--owners", "3", "--decide-pods", "20",
         "--replicas", "12", "--kubelets", "3", "--no-fsync"]


def test_the_scheduler_benchmark_prints_every_figure() -> None:
    out = subprocess.run([sys.executable, str(SCRIPT), *SMALL, "--json"], check=True,
                         capture_output=True, text=True, timeout=120).stdout
    results = json.loads(out)
    assert [d["nodes"] for d in results["decide"]] == [4, 7]
    assert all(d["decisions_per_s"] > 0 for d in results["decide"])
    for bind, nodes in zip(results["bind"], (4, 7)):
        assert bind["nodes"] == nodes and bind["pods"] == 60 and bind["pods_per_s"] > 0
        check = bind["check"]
        # Every pod bound once, in the store as in the informer; nodes fill evenly.
        assert check["ok"] and check["bind_events"] == 60 and check["unbound"] == 0
        assert check["nodes_used"] == nodes and check["max_pods_per_node"] <= -(-60 // nodes) + 1
    assert results["deployment"]["replicas"] == 12 and results["deployment"]["seconds"] > 0
    table = subprocess.run([sys.executable, str(SCRIPT), *SMALL, "--replicas", "0"],
                           check=True, capture_output=True, text=True, timeout=120).stdout
    assert "schedule() alone, 7 nodes" in table and "bind 60 pods, 4 nodes" in table
    assert "ok (max" in table and "Deployment" not in table
