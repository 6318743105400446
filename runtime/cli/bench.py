"""``steer bench``: write throughput of a fresh three-member quorum, next to its peers."""

from __future__ import annotations

import click

__all__ = ["register"]


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--clients", default="1,64,256,1000", show_default=True,
              help="concurrency levels (closed-loop clients)")
@click.option("--seconds", default=8.0, show_default=True, help="measured seconds per level")
@click.option("--runs", default=1, show_default=True, help="repeat and report the median")
@click.option("--conns", default=16, show_default=True, help="connections the clients share")
@click.option("--compare", default="", help="peers to measure too: pysyncobj,etcd")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def bench(clients: str, seconds: float, runs: int, conns: int, compare: str, as_json: bool) -> None:
    """Closed-loop 256-byte puts against a fresh local three-member cluster (fsync on)."""
    from runtime.bench.throughput import main

    argv = ["--clients", clients, "--seconds", str(seconds), "--runs", str(runs),
            "--conns", str(conns)]
    if compare:
        argv += ["--compare", compare]
    if as_json:
        argv.append("--json")
    raise SystemExit(main(argv))


def register(group: click.Group) -> None:
    group.add_command(bench)
