"""One member process: a store member and its client port.

Run by ``steer up`` as ``python -m runtime.host --data-dir .steer --id N``; it
reads the cluster file, starts the member, serves clients, and stops cleanly
on SIGTERM or SIGINT (finishing the ready cycle in flight).
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

from kvstore.node import Node, NodeOptions
from kvstore.transport.server import ClientServer
from runtime.clusterfile import ClusterFile, parse_addr

logger = logging.getLogger("steer.host")


async def serve(data_dir: str, member_id: int, options: NodeOptions) -> None:
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
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logger.info("member %d stopping", member_id)
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
    ap.add_argument("--snapshot-count", type=int, default=50_000,
                    help="applied entries between snapshots (and log compactions)")
    ap.add_argument("--catch-up-entries", type=int, default=5_000,
                    help="entries kept after a snapshot for slow followers")
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)
    options = NodeOptions(
        unsafe_no_fsync=args.unsafe_no_fsync,
        tick_interval=args.tick_interval,
        election_tick=args.election_ticks,
        snapshot_count=args.snapshot_count,
        catch_up_entries=args.catch_up_entries,
    )
    logging.basicConfig(
        level=args.log_level.upper(),
        format=f"%(asctime)s member-{args.id} %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Full collections scan every live key; under write load they would stall
    # the member for long. Young cycles are still collected.
    gc.set_threshold(50_000, 50, 1000)
    coro = serve(args.data_dir, args.id, options)
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
