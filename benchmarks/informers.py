"""The controller machinery on its own: informer event rate, work queue cycles, big list-watch.

    python3 benchmarks/informers.py [--events 20000] [--cycles 200000] [--objects 100000] [--json]

Three measurements, each in this one process on an embedded one-member store
(``kvstore.open``; fsync on unless ``--no-fsync``):

- ``events``: ConfigMaps are created through the resource client, 64 writes
  in flight, while a ``SharedInformer`` on configmaps runs with one event
  handler. Reported: handler calls per second from the first write to the
  last handler call, and the latency from the start of each write to its
  handler call (p50 / p99).
- ``workqueue``: ``add`` -> ``get`` -> ``done`` cycles of distinct keys
  through a ``Queue``, with one worker and with 8 workers (asyncio tasks).
- ``list_watch``: ``--objects`` ConfigMaps (about 300 bytes each) are loaded
  into the store first; then a new informer lists and watches them. Reported:
  seconds until ``has_synced``, and the process's RSS growth from just
  before the informer started to just after it synced (after a full garbage
  collection), in total and per object.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import tempfile
import time
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import psutil  # noqa: E402

import kvstore  # noqa: E402
from controllers.api import Clientset  # noqa: E402
from controllers.informers import ResourceEventHandlerFuncs, SharedInformerFactory  # noqa: E402
from controllers.workqueue.queue import Queue  # noqa: E402
from kvstore.node import NodeOptions  # noqa: E402

IN_FLIGHT = 64


def configmap(i: int, namespace: str = "default") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"cm-{i:07d}", "namespace": namespace,
                         "labels": {"app": "bench", "shard": str(i % 16)}},
            "data": {"payload": "x" * 200}}


async def _create_all(api: Clientset, start: int, count: int,
                      started: dict[str, float] | None = None) -> None:
    client = api.resource("configmaps")
    next_index = start
    end = start + count

    async def writer() -> None:
        nonlocal next_index
        while next_index < end:
            i = next_index
            next_index += 1
            body = configmap(i)
            if started is not None:
                started[body["metadata"]["name"]] = time.perf_counter()
            await client.create(body)

    await asyncio.gather(*(writer() for _ in range(IN_FLIGHT)))


async def measure_events(api: Clientset, events: int) -> dict[str, float]:
    """Store write -> informer handler: rate and latency."""
    factory = SharedInformerFactory(api)
    informer = factory.informer_for("configmaps")
    started: dict[str, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()
    seen = 0

    def on_add(obj: Any, is_in_initial_list: bool) -> None:
        nonlocal seen
        t0 = started.get(obj["metadata"]["name"])
        if t0 is None:
            return
        latencies.append(time.perf_counter() - t0)
        seen += 1
        if seen == events:
            done.set()

    informer.add_event_handler(ResourceEventHandlerFuncs(add=on_add))
    factory.start()
    await factory.wait_for_cache_sync()
    t0 = time.perf_counter()
    await _create_all(api, 0, events, started)
    await done.wait()
    elapsed = time.perf_counter() - t0
    await factory.shutdown()
    latencies.sort()
    return {"events": events, "seconds": elapsed, "events_per_s": events / elapsed,
            "latency_p50_ms": 1000 * latencies[len(latencies) // 2],
            "latency_p99_ms": 1000 * latencies[int(len(latencies) * 0.99)]}


async def measure_workqueue(cycles: int, workers: int) -> dict[str, float]:
    """``add`` -> ``get`` -> ``done`` cycles per second with ``workers`` tasks."""
    queue: Queue[int] = Queue(name="bench")
    remaining = cycles

    async def worker() -> None:
        nonlocal remaining
        while True:
            item, shutdown = await queue.get()
            if shutdown or item is None:
                return
            queue.done(item)
            remaining -= 1
            if remaining == 0:
                queue.shut_down()

    async def producer() -> None:
        for i in range(cycles):
            queue.add(i)
            if i % 256 == 255:
                await asyncio.sleep(0)

    t0 = time.perf_counter()
    await asyncio.gather(producer(), *(worker() for _ in range(workers)))
    elapsed = time.perf_counter() - t0
    return {"workers": workers, "cycles": cycles, "cycles_per_s": cycles / elapsed}


async def measure_list_watch(api: Clientset, objects: int, offset: int) -> dict[str, float]:
    """Load ``objects`` ConfigMaps, then time and weigh an informer's first sync."""
    t0 = time.perf_counter()
    await _create_all(api, offset, objects)
    load_s = time.perf_counter() - t0
    proc = psutil.Process()
    gc.collect()
    rss0 = proc.memory_info().rss
    factory = SharedInformerFactory(api)
    informer = factory.informer_for("configmaps")
    t0 = time.perf_counter()
    factory.start()
    await factory.wait_for_cache_sync()
    sync_s = time.perf_counter() - t0
    cached = len(informer.indexer.list_keys())
    gc.collect()
    rss1 = proc.memory_info().rss
    await factory.shutdown()
    return {"objects": cached, "load_s": load_s, "sync_s": sync_s,
            "objects_per_s": cached / sync_s, "rss_growth_mb": (rss1 - rss0) / 2**20,
            "bytes_per_object": (rss1 - rss0) / max(cached, 1)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="steer-informers-") as tmp:
        options = NodeOptions(unsafe_no_fsync=args.no_fsync)
        async with kvstore.open(tmp, options=options) as node:
            api = Clientset(node)
            await api.ensure_default_namespaces()
            results["events"] = await measure_events(api, args.events)
            results["workqueue"] = [await measure_workqueue(args.cycles, w) for w in (1, 8)]
            results["list_watch"] = await measure_list_watch(api, args.objects, args.events)
    return results


def print_table(results: dict[str, Any]) -> None:
    ev, lw = results["events"], results["list_watch"]
    rows = [("store write -> handler", f"{ev['events_per_s']:,.0f} events/s"),
            ("  latency p50 / p99", f"{ev['latency_p50_ms']:.1f} / {ev['latency_p99_ms']:.1f} ms")]
    for wq in results["workqueue"]:
        rows.append((f"workqueue add/get/done, {wq['workers']} worker(s)",
                     f"{wq['cycles_per_s']:,.0f} cycles/s"))
    rows += [(f"list-watch {lw['objects']:,} objects: time to sync", f"{lw['sync_s']:.2f} s"),
             ("  memory (RSS growth)", f"{lw['rss_growth_mb']:.0f} MiB, "
                                       f"{lw['bytes_per_object']:,.0f} B/object")]
    width = max(len(r[0]) for r in rows)
    print(f"{'measurement':<{width}}  figure")
    for name, figure in rows:
        print(f"{name:<{width}}  {figure}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--cycles", type=int, default=200_000)
    ap.add_argument("--objects", type=int, default=100_000)
    ap.add_argument("--no-fsync", action="store_true", help="the store never fsyncs")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    print(f"informers: {args.events:,} events, {args.cycles:,} queue cycles, "
          f"{args.objects:,} objects to list-watch ...", file=sys.stderr, flush=True)
    results = asyncio.run(run(args))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
