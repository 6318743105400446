"""``steer``: run a local cluster and talk to it.

Commands live in one module each; this module assembles the group.
"""

from __future__ import annotations

import logging

import click

from runtime.cli import bench as bench_cmds
from runtime.cli import cluster as cluster_cmds
from runtime.cli import kubectl as kubectl_cmds
from runtime.cli import kv as kv_cmds
from runtime.cli import sim as sim_cmds

__all__ = ["main", "steer"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", default=".steer", show_default=True, envvar="STEER_DATA_DIR",
              help="where the local cluster keeps its members and cluster file")
@click.option("--endpoints", default=None, envvar="STEER_ENDPOINTS",
              help="comma-separated host:port client endpoints (overrides the cluster file)")
@click.option("-v", "--verbose", count=True, help="more logging")
@click.pass_context
def steer(ctx: click.Context, data_dir: str, endpoints: str | None, verbose: int) -> None:
    """Steersman: an embeddable control plane on a Raft-replicated store."""
    logging.basicConfig(level=logging.WARNING - 10 * min(verbose, 2),
                        format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = {"data_dir": data_dir, "endpoints": endpoints}


cluster_cmds.register(steer)
kv_cmds.register(steer)
kubectl_cmds.register(steer)
sim_cmds.register(steer)
bench_cmds.register(steer)


def main() -> None:
    """The console script."""
    steer(prog_name="steer")
