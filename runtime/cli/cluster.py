"""``steer up``, ``steer down``, ``steer status``: the local quorum."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from dataclasses import asdict

import click
from rich.console import Console

from runtime.cli.output import fail, print_table
from runtime.cluster import LocalCluster, MemberState, read_pid

__all__ = ["register"]

_err = Console(stderr=True)


def _show(states: list[MemberState]) -> None:
    print_table(
        ["ID", "PID", "ADDRESS", "ROLE", "TERM", "COMMIT", "REVISION", "HEALTH"],
        [
            [
                s.id,
                s.pid or "-",
                s.client,
                s.role if s.running else "down",
                s.term,
                s.commit_index,
                s.revision,
                "ok" if s.healthy else ("unreachable" if s.running else "down"),
            ]
            for s in states
        ],
    )


@click.command()
@click.option("--nodes", default=3, show_default=True, type=click.IntRange(1, 7),
              help="members in a new cluster")
@click.option("--base-port", default=2379, show_default=True,
              help="member i listens for clients on base+2(i-1), for peers on the next port")
@click.option("--detach", is_flag=True, help="return once a leader is elected")
@click.option("--unsafe-no-fsync", is_flag=True, hidden=True,
              help="never fsync (benchmarks only: writes are not durable)")
@click.option("--no-control-plane", is_flag=True,
              help="run the store only: no controllers, scheduler or kubelets")
@click.option("--simulated-kubelet", is_flag=True,
              help="kubelets start no processes; pods become Running at once")
@click.option("--member-arg", "member_args", multiple=True,
              help="an extra argument for every member process, e.g. a timing flag of "
                   "`python -m runtime.host` (repeatable)")
@click.pass_context
def up(ctx: click.Context, nodes: int, base_port: int, detach: bool, unsafe_no_fsync: bool,
       no_control_plane: bool, simulated_kubelet: bool, member_args: tuple[str, ...]) -> None:
    """Start a local cluster of NODES member processes (restarting any that are down).

    Each member runs a store member, and (unless --no-control-plane) a
    controller manager and a scheduler (one of each is active cluster-wide)
    and a kubelet for its Node, member-N.
    """
    cluster = LocalCluster(ctx.obj["data_dir"])
    extra = ["--unsafe-no-fsync"] if unsafe_no_fsync else []
    extra += ["--no-control-plane"] if no_control_plane else []
    extra += ["--simulated-kubelet"] if simulated_kubelet else []
    extra += list(member_args)
    cf, started = cluster.up(nodes, base_port, extra_args=extra)
    if started:
        _err.print(f"started member(s) {', '.join(map(str, started))} in {cluster.data_dir}")
    else:
        _err.print("every member is already running")
    with _err.status("waiting for a leader..."):
        leader = asyncio.run(cluster.wait_for_leader(timeout=30.0))
    states = asyncio.run(cluster.status())
    _show(states)
    if leader is None:
        fail(f"no leader elected within 30 s; see the logs in {cluster.data_dir}/member-*/member.log")
        return
    click.echo(f"leader: member {leader.id} at {leader.client}")
    if detach:
        return
    _err.print("[dim]press Ctrl-C to stop the cluster[/dim]")
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    while not stop:
        time.sleep(0.2)
        # A member that dies in the foreground is restarted, as `up` would.
        for m in cf.members:
            if not stop and read_pid(m) is None:
                _err.print(f"member {m.id} exited; restarting it")
                cluster.start_member(m, extra_args=extra)
    with _err.status("stopping the cluster..."):
        stopped = cluster.down()
    _err.print(f"stopped member(s) {', '.join(map(str, stopped)) or 'none'}")


@click.command()
@click.pass_context
def down(ctx: click.Context) -> None:
    """Stop every member of the local cluster."""
    cluster = LocalCluster(ctx.obj["data_dir"])
    if cluster.load() is None:
        fail(f"no cluster in {cluster.data_dir}")
    stopped = cluster.down()
    click.echo(f"stopped member(s) {', '.join(map(str, stopped))}" if stopped else "nothing was running")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show each member: id, pid, address, role, term, commit index, revision, health."""
    cluster = LocalCluster(ctx.obj["data_dir"])
    if cluster.load() is None:
        fail(f"no cluster in {cluster.data_dir}; start one with `steer up`")
    states = asyncio.run(cluster.status())
    if as_json:
        click.echo(json.dumps([asdict(s) for s in states], indent=2))
    else:
        _show(states)
    if not any(s.healthy for s in states):
        raise SystemExit(1)


def register(group: click.Group) -> None:
    group.add_command(up)
    group.add_command(down)
    group.add_command(status)
