"""The ceiling of the Raft core: committed proposals per second, no disk, no network.

A three-member cluster runs in this process. Each cycle the leader takes
BATCH proposals; then every member processes its ready batches (entries kept
in memory, messages handed straight to the recipient) until the batch is
committed and applied everywhere. Prints an aligned table; ``--json`` for
machines.

    python benchmarks/raft_core.py [--proposals 200000] [--batches 1,10,100] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import deque

from kvstore.raft.config import Config
from kvstore.raft.messages import ConfState, Message, NodeId
from kvstore.raft.rawnode import RawNode
from kvstore.raft.storage import MemoryLogStorage


class Cluster:
    """Members joined by in-process queues."""

    def __init__(self, size: int) -> None:
        ids = [NodeId(i) for i in range(1, size + 1)]
        self.storages = {i: MemoryLogStorage(ConfState(voters=tuple(ids))) for i in ids}
        self.nodes = {
            i: RawNode(Config(id=i, max_inflight_msgs=4096), self.storages[i], random.Random(i))
            for i in ids
        }
        self.applied = {i: 0 for i in ids}
        self.inbox: deque[Message] = deque()

    def process(self) -> bool:
        """One round: every member handles its ready, then messages are delivered."""
        busy = False
        for i, node in self.nodes.items():
            if not node.has_ready():
                continue
            busy = True
            rd = node.ready()
            self.inbox.extend(rd.messages)
            storage = self.storages[i]
            if rd.snapshot is not None:
                storage.apply_snapshot(rd.snapshot)
            storage.append(rd.entries)
            if rd.hard_state is not None:
                storage.set_hard_state(rd.hard_state)
            self.inbox.extend(rd.persisted_messages)
            if rd.committed_entries:
                self.applied[i] = rd.committed_entries[-1].index
            node.advance(rd)
        while self.inbox:
            busy = True
            m = self.inbox.popleft()
            self.nodes[m.to].step(m)
        return busy

    def elect(self) -> RawNode:
        self.nodes[NodeId(1)].campaign()
        while self.process():
            pass
        return self.nodes[NodeId(1)]

    def compact(self) -> None:
        """Keep memory flat: drop applied entries (as a real member would after a snapshot)."""
        for i, storage in self.storages.items():
            idx = self.applied[i] - 1000
            if idx > storage.first_index() + 10_000:
                storage.create_snapshot(idx, b"")
                storage.compact(idx)


def measure(batch: int, proposals: int) -> dict[str, float]:
    cluster = Cluster(3)
    leader = cluster.elect()
    payload = b"x" * 256
    cycles = max(1, proposals // batch)
    start = time.perf_counter()
    for c in range(cycles):
        for _ in range(batch):
            leader.propose(payload)
        target = leader.raft.raft_log.last_index()
        while min(cluster.applied.values()) < target:
            cluster.process()
        if c % 64 == 0:
            cluster.compact()
    elapsed = time.perf_counter() - start
    done = cycles * batch
    return {
        "batch": batch,
        "proposals": done,
        "seconds": round(elapsed, 3),
        "commits_per_s": round(done / elapsed),
        "us_per_commit": round(elapsed / done * 1e6, 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--proposals", type=int, default=200_000, help="proposals per batch size")
    ap.add_argument("--batches", default="1,10,100", help="proposals per ready cycle")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args(argv)
    rows = []
    for b in (int(x) for x in args.batches.split(",")):
        n = args.proposals if b > 1 else max(1, args.proposals // 4)
        rows.append(measure(b, n))
        if not args.json:
            print(f"  measured batch={b}", file=sys.stderr)
    if args.json:
        print(json.dumps({"benchmark": "raft_core", "members": 3, "rows": rows}, indent=2))
        return 0
    print("Raft core, 3 members in one process, no disk, no network, 256-byte proposals")
    print(f"{'batch':>7} {'proposals':>10} {'seconds':>8} {'commits/s':>11} {'us/commit':>10}")
    for r in rows:
        print(
            f"{r['batch']:>7} {r['proposals']:>10} {r['seconds']:>8.3f}"
            f" {r['commits_per_s']:>11,} {r['us_per_commit']:>10.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
