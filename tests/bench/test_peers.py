"""The benchmark peers: names, availability notes, and pysyncobj and etcd end to end."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import psutil
import pytest

from runtime.bench import etcd_peer, pysyncobj_peer
from runtime.bench.peers import run_peer
from runtime.bench.throughput import Row


def test_unknown_peer_raises_value_error() -> None:
    with pytest.raises(ValueError, match="unknown benchmark peer 'zookeeper'"):
        run_peer("zookeeper", [1], 1.0)


@pytest.mark.parametrize(("levels", "seconds"), [([], 1.0), ([0], 1.0), ([1], 0.0)])
def test_bad_levels_or_seconds_raise_value_error(levels: list[int], seconds: float) -> None:
    with pytest.raises(ValueError):
        run_peer("pysyncobj", levels, seconds)


def test_missing_pysyncobj_gives_none_and_a_note(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "pysyncobj", None)
    assert run_peer("pysyncobj", [1], 1.0) is None
    assert "pysyncobj: not installed" in capsys.readouterr().err


def test_missing_etcd_binary_gives_none_and_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert run_peer("etcd", [1], 1.0) is None
    assert "no etcd binary on PATH" in capsys.readouterr().err


def test_etcd_member_command_lines_form_one_cluster() -> None:
    argvs = [etcd_peer.member_argv(i, Path(f"/d/e{i}"), 30000) for i in range(3)]
    clusters = {a[a.index("--initial-cluster") + 1] for a in argvs}
    assert clusters == {"e0=http://127.0.0.1:30003,e1=http://127.0.0.1:30004,"
                        "e2=http://127.0.0.1:30005"}
    assert [a[a.index("--listen-client-urls") + 1] for a in argvs] == [
        "http://127.0.0.1:30000", "http://127.0.0.1:30001", "http://127.0.0.1:30002"]
    assert all("--log-level=error" in a for a in argvs)


def check_rows(rows: list[Row] | None, system: str, members: int) -> None:
    assert rows is not None
    assert [r.clients for r in rows] == [1, 8]
    for r in rows:
        assert r.system == system
        assert r.ops > 0 and r.ops_per_s > 0 and r.seconds > 0
        assert 0 < r.p50_ms <= r.p90_ms <= r.p99_ms
        assert len(r.members) == members
        assert all(m["cpu_pct"] >= 0 and m["rss_mb"] > 0 for m in r.members)
        assert r.note
    # Every process the run started has exited and been reaped.
    started = {int(m["pid"]) for r in rows for m in r.members} - {psutil.Process().pid}
    assert started and not [p for p in started if psutil.pid_exists(p)]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("pysyncobj") is None,
                    reason="pysyncobj is not installed")
def test_pysyncobj_end_to_end() -> None:
    rows = run_peer("pysyncobj", [1, 8], 1.0)
    check_rows(rows, "pysyncobj", members=3)
    assert rows is not None and "never fsyncs" in rows[0].note


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("etcd") is None or importlib.util.find_spec("aetcd") is None,
                    reason="no etcd binary on PATH or aetcd not installed")
def test_etcd_end_to_end() -> None:
    rows = run_peer("etcd", [1, 8], 1.0)
    check_rows(rows, "etcd", members=4)  # three etcd members, then the benchmark client
    assert rows is not None and "default fsync" in rows[0].note


def test_count_log_lines_counts_pysyncobj_truncation_warnings(tmp_path: Path) -> None:
    log = tmp_path / "m1.log"
    log.write_text(f"{pysyncobj_peer.TRUNCATION_LOG} from index 5 (last applied: 6)\n"
                   "connected to 127.0.0.1:4000\n"
                   f"{pysyncobj_peer.TRUNCATION_LOG} from index 9 (last applied: 9)\n")
    assert pysyncobj_peer.count_log_lines(log, pysyncobj_peer.TRUNCATION_LOG) == 2
    assert pysyncobj_peer.count_log_lines(tmp_path / "absent.log", "x") == 0
