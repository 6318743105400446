"""The scheduler under load: bind rate on many nodes, and a big Deployment becoming available.

    python3 benchmarks/scheduler.py [--pods 10000] [--nodes 100,1000] [--replicas 10000]
                                    [--kubelets 100] [--owners 10] [--no-fsync] [--json]

Three measurements, each in this one process on an embedded one-member store
(``kvstore.open``; fsync on unless ``--no-fsync``):

- ``decide``: ``schedule`` alone, on ``NodeInfo``s built in memory (no store),
  for ``--decide-pods`` pods on each node count of ``--nodes``; each chosen
  node takes the pod, as the scheduler's cache would. Reported: decisions
  per CPU second (process time, so other load on the machine does not
  count) and microseconds per node in the cluster per decision.
- ``bind``: for each node count, a fresh store gets that many Ready Nodes
  (cpu 32, memory 128Gi, pods 110) and ``--pods`` pending pods (100m cpu,
  128Mi memory each) controlled by ``--owners`` ReplicaSet-like owners. Then
  the ``Scheduler`` runs under a ``Manager``. Reported: seconds from the
  manager's start until every pod has ``spec.nodeName`` (seen through the
  scheduler's own pod informer), the time of the first binding (the initial
  list), and pods bound per second in between. Checked: every pod bound
  once and never moved, no node holding more pods than it offers, and the
  store agreeing with the informer.
- ``deployment``: ``--kubelets`` simulated kubelets (one ``SharedPodSource``,
  no start delay) register their Nodes; the Deployment, ReplicaSet and
  Scheduler controllers run under one ``Manager``. Reported: seconds from
  the Deployment's ``create`` until ``status.availableReplicas`` equals
  ``--replicas``.

Wall times depend on what else the machine runs; the CPU seconds this
process used are given next to them. Progress goes to stderr every
``--progress`` seconds; the table (or, with
``--json``, the figures) to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import kvstore
from controllers.api import Clientset
from controllers.builtin.deployment import DeploymentController
from controllers.builtin.replicaset import ReplicaSetController
from controllers.builtin.scheduler import (
    NodeInfo,
    PodInfo,
    Scheduler,
    make_profile,
    schedule,
)
from controllers.clock import RealClock
from controllers.informers import ResourceEventHandlerFuncs, SharedInformerFactory
from controllers.manager import Manager
from kvstore.node import NodeOptions
from runtime.kubelet import Kubelet, SharedPodSource

IN_FLIGHT = 64
NODE_CAPACITY = {"cpu": "32", "memory": "128Gi", "pods": "110"}
POD_REQUESTS = {"cpu": "100m", "memory": "128Mi"}
NAMESPACE = "default"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def node_object(i: int) -> dict[str, Any]:
    name = f"node-{i:05d}"
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {},
            "status": {"capacity": dict(NODE_CAPACITY), "allocatable": dict(NODE_CAPACITY),
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def owner_uid(j: int) -> str:
    return f"00000000-0000-4000-8000-{j:012d}"


def pod_object(i: int, owners: int) -> dict[str, Any]:
    j = i % owners
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"app-{j}-{i:06d}", "namespace": NAMESPACE,
                         "labels": {"app": f"app-{j}"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                              "name": f"app-{j}", "uid": owner_uid(j),
                                              "controller": True}]},
            "spec": {"containers": [{"name": "main", "image": "busybox:1.36",
                                     "resources": {"requests": dict(POD_REQUESTS)}}]}}


async def _create_all(api: Clientset, resource: str, objects: list[dict[str, Any]],
                      what: str, every: float) -> None:
    client = api.resource(resource)
    next_index = 0
    last = time.perf_counter()

    async def writer() -> None:
        nonlocal next_index, last
        while next_index < len(objects):
            body = objects[next_index]
            next_index += 1
            await client.create(body)
            now = time.perf_counter()
            if now - last >= every:
                last = now
                _log(f"  {what}: {next_index:,}/{len(objects):,} created")

    await asyncio.gather(*(writer() for _ in range(IN_FLIGHT)))


# -- decide ------------------------------------------------------------------------------
def measure_decide(nodes: int, pods: int, owners: int) -> dict[str, float]:
    """``schedule`` alone on ``nodes`` in-memory NodeInfos, each pod placed where chosen."""
    infos = [NodeInfo.build(node_object(i)) for i in range(nodes)]
    by_name = {info.name: info for info in infos}
    profile = make_profile()
    pod_infos = [PodInfo.from_pod(pod_object(i, owners)) for i in range(pods)]
    start = 0
    t0 = time.process_time()
    for info in pod_infos:
        result = schedule(info, infos, profile, start=start)
        start = result.next_start
        if result.node is None:
            raise RuntimeError(f"no node for {info.key}: {result.message}")
        by_name[result.node].add_pod(info)
    elapsed = time.process_time() - t0
    return {"nodes": nodes, "pods": pods, "seconds": elapsed,
            "decisions_per_s": pods / elapsed,
            "us_per_node_per_pod": 1e6 * elapsed / pods / nodes}


# -- bind --------------------------------------------------------------------------------
class BindWatcher:
    """Counts bindings as the scheduler's pod informer sees them, and checks they stick."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.node_of: dict[str, str] = {}
        self.bind_events = 0
        self.moved: list[str] = []
        self.first_bind: float | None = None
        self.done = asyncio.Event()

    def _see(self, pod: Any) -> None:
        spec = pod.get("spec") or {}
        node = spec.get("nodeName")
        if not node:
            return
        meta = pod.get("metadata") or {}
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        known = self.node_of.get(key)
        if known is None:
            self.node_of[key] = node
            self.bind_events += 1
            if self.first_bind is None:
                self.first_bind = time.perf_counter()
            if len(self.node_of) == self.total:
                self.done.set()
        elif known != node:
            self.moved.append(key)

    def handler(self) -> ResourceEventHandlerFuncs:
        return ResourceEventHandlerFuncs(add=lambda obj, _initial: self._see(obj),
                                         update=lambda _old, new: self._see(new))


async def _report_while(done: asyncio.Event, every: float, line: Callable[[], str]) -> None:
    while not done.is_set():
        try:
            await asyncio.wait_for(done.wait(), every)
        except TimeoutError:
            _log(line())


async def _check_store(api: Clientset, pods: int) -> dict[str, Any]:
    """Every pod bound, no node over its pod capacity (read from the store, not the cache)."""
    listed = (await api.resource("pods").list(NAMESPACE))["items"]
    per_node: dict[str, int] = {}
    unbound = 0
    for pod in listed:
        node = pod["spec"].get("nodeName")
        if node:
            per_node[node] = per_node.get(node, 0) + 1
        else:
            unbound += 1
    capacity = int(NODE_CAPACITY["pods"])
    return {"pods_listed": len(listed), "unbound": unbound,
            "max_pods_per_node": max(per_node.values(), default=0),
            "nodes_over_capacity": sum(1 for n in per_node.values() if n > capacity),
            "nodes_used": len(per_node), "ok": len(listed) == pods and unbound == 0
            and all(n <= capacity for n in per_node.values())}


async def measure_bind(root: Path, options: NodeOptions, nodes: int, pods: int, owners: int,
                       workers: int, every: float) -> dict[str, Any]:
    async with kvstore.open(str(root), options=options) as store:
        api = Clientset(store)
        await api.ensure_default_namespaces()
        t0 = time.perf_counter()
        await _create_all(api, "nodes", [node_object(i) for i in range(nodes)], "nodes", every)
        await _create_all(api, "pods", [pod_object(i, owners) for i in range(pods)], "pods",
                          every)
        load_s = time.perf_counter() - t0
        _log(f"  loaded {nodes:,} nodes and {pods:,} pods in {load_s:.1f} s")

        factory = SharedInformerFactory(api, clock=RealClock())
        watcher = BindWatcher(pods)
        factory.informer_for("pods").add_event_handler(watcher.handler())
        scheduler = Scheduler()
        manager = Manager(api, [scheduler], informer_factory=factory.informer_for,
                          workers_per_controller=workers, cache_sync_poll=0.01)
        t0, cpu0 = time.perf_counter(), time.process_time()
        task = asyncio.ensure_future(manager.run())
        reporter = asyncio.ensure_future(_report_while(
            watcher.done, every,
            lambda: f"  {nodes:,} nodes: {len(watcher.node_of):,}/{pods:,} bound after "
                    f"{time.perf_counter() - t0:.1f} s"))
        try:
            await watcher.done.wait()
        finally:
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            task.cancel()
            await asyncio.wait({task})
            await reporter
        first = (watcher.first_bind or t0) - t0
        check = await _check_store(api, pods)
        check["bind_events"] = watcher.bind_events
        check["moved"] = len(watcher.moved)
        check["ok"] = check["ok"] and watcher.bind_events == pods and not watcher.moved
        return {"nodes": nodes, "pods": pods, "workers": workers, "load_s": load_s,
                "seconds": elapsed, "cpu_s": cpu,
                "first_bind_s": first,
                "pods_per_s": pods / elapsed,
                "pods_per_s_after_first": (pods - 1) / max(elapsed - first, 1e-9),
                "attempts": scheduler.attempts, "check": check}


# -- deployment --------------------------------------------------------------------------
def deployment_object(replicas: int) -> dict[str, Any]:
    labels = {"app": "web"}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": NAMESPACE},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{
                                      "name": "main", "image": "busybox:1.36",
                                      "resources": {"requests": dict(POD_REQUESTS)}}]}}}}


async def measure_deployment(root: Path, options: NodeOptions, replicas: int, kubelets: int,
                             workers: int, every: float) -> dict[str, Any]:
    async with kvstore.open(str(root / "store"), options=options) as store:
        api = Clientset(store)
        await api.ensure_default_namespaces()
        clock = RealClock()
        source = SharedPodSource(api, clock=clock)
        agents = [Kubelet(api, f"node-{i:05d}", root_dir=root / "kubelet", simulated=True,
                          simulated_start_delay=0.0, clock=clock, pod_source=source,
                          capacity=NODE_CAPACITY, heartbeat_interval=60.0)
                  for i in range(kubelets)]
        for agent in agents:
            agent.start()
        await asyncio.gather(*(agent.wait_ready() for agent in agents))
        _log(f"  {kubelets} simulated kubelets registered")
        manager = Manager(api, [DeploymentController(), ReplicaSetController(), Scheduler()],
                          workers_per_controller=workers, cache_sync_poll=0.01)
        task = asyncio.ensure_future(manager.run())
        deployments = api.resource("deployments")
        await asyncio.sleep(0)
        t0, cpu0 = time.perf_counter(), time.process_time()
        await deployments.create(deployment_object(replicas))
        status: dict[str, Any] = {}
        last = t0
        try:
            while status.get("availableReplicas") != replicas:
                await asyncio.sleep(0.1)
                status = (await deployments.get("web", NAMESPACE)).get("status") or {}
                now = time.perf_counter()
                if now - last >= every:
                    last = now
                    _log(f"  deployment: {status.get('replicas', 0):,} created, "
                         f"{status.get('availableReplicas', 0):,}/{replicas:,} available "
                         f"after {now - t0:.1f} s")
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        finally:
            task.cancel()
            await asyncio.wait({task})
            await asyncio.gather(*(agent.stop() for agent in agents))
            await source.stop()
        return {"replicas": replicas, "kubelets": kubelets, "seconds": elapsed, "cpu_s": cpu,
                "pods_per_s": replicas / elapsed}


# -- the run -----------------------------------------------------------------------------
async def run(args: argparse.Namespace) -> dict[str, Any]:
    node_counts = [int(n) for n in args.nodes.split(",") if n]
    options = NodeOptions(unsafe_no_fsync=args.no_fsync)
    results: dict[str, Any] = {"decide": [], "bind": []}
    for nodes in node_counts:
        _log(f"decide: {args.decide_pods:,} pods on {nodes:,} in-memory nodes")
        results["decide"].append(measure_decide(nodes, args.decide_pods, args.owners))
    with tempfile.TemporaryDirectory(prefix="steer-scheduler-") as tmp:
        for nodes in node_counts if args.pods > 0 else []:
            _log(f"bind: {args.pods:,} pending pods on {nodes:,} nodes")
            results["bind"].append(await measure_bind(Path(tmp) / f"bind-{nodes}", options,
                                                      nodes, args.pods, args.owners,
                                                      args.workers, args.progress))
        if args.replicas > 0:
            _log(f"deployment: {args.replicas:,} replicas on {args.kubelets} kubelets")
            results["deployment"] = await measure_deployment(
                Path(tmp) / "deployment", options, args.replicas, args.kubelets, args.workers,
                args.progress)
    return results


def print_table(results: dict[str, Any]) -> None:
    rows: list[tuple[str, str]] = []
    for d in results["decide"]:
        rate = f"{d['decisions_per_s']:,.0f} pods/s, {d['us_per_node_per_pod']:.2f} us/node/pod"
        rows.append((f"schedule() alone, {d['nodes']:,} nodes", rate))
    for b in results["bind"]:
        check = b["check"]
        rate = f"{b['pods_per_s']:,.0f} pods/s ({b['seconds']:.1f} s, {b['cpu_s']:.1f} s CPU)"
        rows.append((f"bind {b['pods']:,} pods, {b['nodes']:,} nodes", rate))
        after = f"{b['first_bind_s']:.1f} s / {b['pods_per_s_after_first']:,.0f} pods/s"
        rows.append(("  first binding / rate after it", after))
        verdict = "ok" if check["ok"] else "FAILED"
        detail = (f"{verdict} (max {check['max_pods_per_node']}/node on "
                  f"{check['nodes_used']:,} nodes, {b['attempts']:,} attempts)")
        rows.append(("  check: bound once, <= 110/node", detail))
    dep = results.get("deployment")
    if dep is not None:
        name = f"Deployment {dep['replicas']:,} replicas available, {dep['kubelets']} kubelets"
        rate = (f"{dep['seconds']:.1f} s ({dep['pods_per_s']:,.0f} pods/s, "
                f"{dep['cpu_s']:.1f} s CPU)")
        rows.append((name, rate))
    width = max(len(r[0]) for r in rows)
    print(f"{'measurement':<{width}}  figure")
    for name, figure in rows:
        print(f"{name:<{width}}  {figure}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pods", type=int, default=10_000, help="pending pods to bind")
    ap.add_argument("--nodes", default="100,1000", help="node counts, comma-separated")
    ap.add_argument("--owners", type=int, default=10, help="owners the pods are spread over")
    ap.add_argument("--decide-pods", type=int, default=2_000,
                    help="pods for the in-memory decision rate")
    ap.add_argument("--replicas", type=int, default=10_000,
                    help="Deployment replicas (0 skips it)")
    ap.add_argument("--kubelets", type=int, default=100, help="simulated kubelets")
    ap.add_argument("--workers", type=int, default=1,
                    help="workers per controller (the manager's workers_per_controller)")
    ap.add_argument("--progress", type=float, default=5.0, help="seconds between progress lines")
    ap.add_argument("--no-fsync", action="store_true", help="the store never fsyncs")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    random.seed(0)
    results = asyncio.run(run(args))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
