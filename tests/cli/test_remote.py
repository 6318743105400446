"""The object commands through ``steer`` against a real one-member cluster (a member process)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from runtime.cli import steer
from runtime.cluster import LocalCluster
from tests.kvstore.ports import free_port_block

from .samples import deployment


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    c = LocalCluster(str(tmp_path / "steer"))
    try:
        c.up(1, free_port_block(2), extra_args=["--tick-interval", "0.05",
                                                "--election-ticks", "10",
                                                "--no-control-plane"])
        leader = asyncio.run(c.wait_for_leader(timeout=20))
        assert leader is not None
        yield c
    finally:
        c.down()


@pytest.mark.slow
def test_apply_get_scale_delete_through_the_cluster_file(cluster: LocalCluster,
                                                         tmp_path: Path) -> None:
    runner = CliRunner(env={"STEER_ENDPOINTS": ""})
    base = ["--data-dir", str(cluster.data_dir)]
    f = tmp_path / "web.json"
    f.write_text(json.dumps(deployment("web", replicas=2)))
    r = runner.invoke(steer, [*base, "apply", "-f", str(f)])
    assert (r.exit_code, r.stdout) == (0, "deployment.apps/web created\n"), r.stderr
    r = runner.invoke(steer, [*base, "apply", "-f", str(f)])
    assert r.stdout == "deployment.apps/web unchanged\n"
    r = runner.invoke(steer, [*base, "scale", "deploy/web", "--replicas", "4"])
    assert r.stdout == "deployment.apps/web scaled\n"
    r = runner.invoke(steer, [*base, "get", "deploy", "web", "-o", "json"])
    assert json.loads(r.stdout)["spec"]["replicas"] == 4
    r = runner.invoke(steer, [*base, "get", "deploy"])
    assert r.stdout.splitlines()[1].split()[:2] == ["web", "0/4"]
    r = runner.invoke(steer, [*base, "delete", "deploy", "web"])
    assert r.stdout == 'deployment.apps "web" deleted\n'
    r = runner.invoke(steer, [*base, "get", "deploy", "web"])
    assert r.exit_code == 1
    assert r.stderr == 'Error from server (NotFound): deployments.apps "web" not found\n'
