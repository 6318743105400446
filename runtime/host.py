"""One member process: a store member, its client port, and its control plane.

Run by ``steer up`` as ``python -m runtime.host --data-dir .steer --id N``; it
reads the cluster file, starts the member, serves clients, runs the member's
control plane (controller manager, scheduler and a kubelet for the Node
``member-N``; see ``runtime.control_plane``) unless ``--no-control-plane``,
and stops cleanly on SIGTERM or SIGINT: the control plane first (its pods
are stopped, its leases released), then the member (finishing the ready
cycle in flight).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from kvstore.compactor import COMPACTION_MODES, parse_retention
from kvstore.node import Node, NodeOptions
from kvstore.transport.server import ClientServer
from runtime.clusterfile import ClusterFile, parse_addr
from runtime.control_plane import ControlPlane, ControlPlaneOptions, node_name

logger = logging.getLogger("steer.host")


async def serve(data_dir: str, member_id: int, options: NodeOptions,
                plane_options: ControlPlaneOptions | None = None) -> None:
    cf = ClusterFile.load(data_dir)
    if cf is None:
        raise SystemExit(f"no cluster file in {data_dir}")
    me = cf.member(member_id)
    options = dataclasses.replace(options, cluster_id=cf.cluster_id)
    node = await Node.start(
        member_id=member_id,
        data_dir=os.path.join(me.data_dir, "data"),
        members=[m.info() for m in cf.members],
        options=options,
    )
    server = ClientServer(node)
    await server.start(*parse_addr(me.client))
    # Everything loaded so far lives as long as the process: keep it out of
    # the collector's generations, and collect less often under write load.
    gc.freeze()
    logger.info("member %d serving clients on %s, peers on %s", member_id, me.client, me.peer)
    plane_task: asyncio.Task[None] | None = None
    if plane_options is not None:
        plane = ControlPlane(node, node_name(member_id), Path(me.data_dir), plane_options)
        plane_task = asyncio.ensure_future(plane.run())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logger.info("member %d stopping", member_id)
    if plane_task is not None:
        plane_task.cancel()
        await asyncio.gather(plane_task, return_exceptions=True)
    await server.close()
    await node.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m runtime.host", description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=".steer")
    ap.add_argument("--id", type=int, required=True)
    ap.add_argument("--unsafe-no-fsync", action="store_true",
                    help="never fsync (benchmarks and tests only: writes are not durable)")
    ap.add_argument("--tick-interval", type=float, default=0.1, help="seconds per Raft tick")
    ap.add_argument("--election-ticks", type=int, default=10)
    ap.add_argument("--snapshot-count", type=int, default=100_000,
                    help="applied requests between snapshots (and log compactions)")
    ap.add_argument("--catch-up-entries", type=int, default=5_000,
                    help="entries kept after a snapshot for slow followers")
    ap.add_argument("--auto-compaction-mode", choices=COMPACTION_MODES, default="periodic",
                    help="periodic: keep a span of time; revision: keep a number of revisions")
    ap.add_argument("--auto-compaction-retention", default="5m",
                    help="history to keep: a duration (5m, 1h; a bare number is hours) in "
                         "periodic mode, a revision count in revision mode; 0 keeps everything")
    ap.add_argument("--no-control-plane", action="store_true",
                    help="run the store member only: no controllers, scheduler or kubelet")
    ap.add_argument("--simulated-kubelet", action="store_true",
                    help="the kubelet starts no processes; pods become Running at once")
    ap.add_argument("--leader-lease-duration", type=float, default=15.0,
                    help="seconds a controller manager or scheduler lease lasts")
    ap.add_argument("--node-heartbeat-interval", type=float, default=10.0)
    ap.add_argument("--node-grace-period", type=float, default=40.0,
                    help="seconds without a heartbeat before a node is Unknown")
    ap.add_argument("--pod-eviction-timeout", type=float, default=300.0,
                    help="default seconds pods tolerate an unreachable node")
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)
    try:
        retention = parse_retention(args.auto_compaction_mode, args.auto_compaction_retention)
    except ValueError as e:
        ap.error(f"--auto-compaction-retention: {e}")
    lease = args.leader_lease_duration
    plane_options = None if args.no_control_plane else ControlPlaneOptions(
        simulated_kubelet=args.simulated_kubelet, lease_duration=lease,
        renew_deadline=lease * 2 / 3, retry_period=lease * 2 / 15,
        node_heartbeat_interval=args.node_heartbeat_interval,
        node_lease_duration=max(1, round(args.node_grace_period)),
        node_grace_period=args.node_grace_period,
        pod_eviction_timeout=args.pod_eviction_timeout)
    options = NodeOptions(
        unsafe_no_fsync=args.unsafe_no_fsync,
        tick_interval=args.tick_interval,
        election_tick=args.election_ticks,
        snapshot_count=args.snapshot_count,
        catch_up_entries=args.catch_up_entries,
        auto_compaction_mode=args.auto_compaction_mode,
        auto_compaction_retention=retention,
    )
    logging.basicConfig(
        level=args.log_level.upper(),
        format=f"%(asctime)s member-{args.id} %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Full collections scan every live key; under write load they would stall
    # the member for long. Young cycles are still collected.
    gc.set_threshold(50_000, 50, 1000)
    coro = serve(args.data_dir, args.id, options, plane_options)
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
