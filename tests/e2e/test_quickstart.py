"""The quick-start Deployment on a three-member local quorum of real processes, through `steer`.

apply -> scheduled and Running on the member nodes; scale; a rolling update
watched pod by pod; history and undo; kill -9 of the member whose controller
manager is active: its node goes NotReady, its pods come back elsewhere, the
controller manager and scheduler fail over; a crash-looping container
restarts with back-off and a failing readiness probe keeps a pod unready.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest

import kvstore
from controllers.api import Clientset, NotFound
from controllers.builtin.podutil import controller_ref, is_pod_ready
from runtime.cluster import LocalCluster
from tests.e2e.support import Steer, eventually

pytestmark = pytest.mark.slow

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "nginx-deployment.yaml"
DEPLOY = "nginx-deployment"

TROUBLE = """
apiVersion: v1
kind: Pod
metadata: {name: crasher}
spec:
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "echo starting; exit 3"]
---
apiVersion: v1
kind: Pod
metadata: {name: unready}
spec:
  containers:
  - name: c
    image: busybox
    readinessProbe:
      exec: {command: ["sh", "-c", "exit 1"]}
      periodSeconds: 1
"""


def deployment_done(s: Steer, replicas: int) -> bool:
    d = s.get("deployments", DEPLOY)
    st = d.get("status", {})
    return (st.get("observedGeneration", 0) >= d["metadata"]["generation"]
            and st.get("updatedReplicas") == replicas == st.get("availableReplicas")
            and st.get("replicas") == replicas)


class PodWatch:
    """Follows every pod event of the Deployment during a rollout and checks its bounds."""

    def __init__(self, s: Steer, max_total: int, min_available: int) -> None:
        self.s, self.max_total, self.min_available = s, max_total, min_available
        self.violations: list[str] = []
        self.events = 0
        self.stop = threading.Event()
        self.started = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        async with kvstore.connect(self.s.endpoints) as kv:
            api = Clientset(kv)
            listing = await api.resource("pods").list("default", label_selector="app=nginx")
            pods = {p["metadata"]["name"]: p for p in listing["items"]}
            stream = await api.resource("pods").watch(
                "default", label_selector="app=nginx",
                resource_version=listing["metadata"]["resourceVersion"])
            self.started.set()
            async with stream:
                while not self.stop.is_set():
                    try:
                        async with asyncio.timeout(0.2):
                            event = await anext(stream)
                    except TimeoutError:
                        continue
                    self._check(pods, event)

    def _check(self, pods: dict[str, Any], event: Any) -> None:
        obj = event.object
        if event.type == "DELETED":
            pods.pop(obj["metadata"]["name"], None)
        elif event.type in ("ADDED", "MODIFIED"):
            pods[obj["metadata"]["name"]] = obj
        else:
            return
        self.events += 1
        live = [p for p in pods.values() if not p["metadata"].get("deletionTimestamp")]
        available = [p for p in live if is_pod_ready(p)]
        if len(live) > self.max_total or len(available) < self.min_available:
            self.violations.append(f"{len(live)} pods, {len(available)} available "
                                   f"after event {self.events}")

    def __enter__(self) -> PodWatch:
        self.thread.start()
        assert self.started.wait(20)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def lease_holder(s: Steer, name: str) -> str:
    try:
        return str(s.get("leases", name, "kube-system")["spec"].get("holderIdentity") or "")
    except NotFound:
        return ""


def test_quickstart_deployment_end_to_end(cluster: LocalCluster) -> None:
    s = Steer(cluster)
    # Nodes register themselves, one per member.
    eventually(lambda: "member-3" in s("get", "nodes").stdout
               and s("get", "nodes").stdout.count(" Ready ") == 3, "three Ready nodes",
               explain=lambda: s("get", "nodes").stdout)
    s("apply", "-f", "-", input=TROUBLE)

    # apply: two pods Running on the member nodes; `get deploy` shows 2/2.
    assert s("apply", "-f", str(FIXTURE)).stdout == f"deployment.apps/{DEPLOY} created\n"
    eventually(lambda: deployment_done(s, 2), "2/2 available")
    assert s("get", "deploy").stdout.splitlines()[1].split()[:2] == [DEPLOY, "2/2"]
    nginx = [p for p in s.pods() if p["metadata"].get("labels", {}).get("app") == "nginx"]
    assert len(nginx) == 2
    assert {p["status"]["phase"] for p in nginx} == {"Running"}
    assert {p["spec"]["nodeName"] for p in nginx} <= {"member-1", "member-2", "member-3"}

    # scale to 4.
    s("scale", f"deploy/{DEPLOY}", "--replicas", "4")
    eventually(lambda: deployment_done(s, 4), "4/4 available")
    first_rs = {controller_ref(p)["name"] for p in s.pods()  # type: ignore[index]
                if p["metadata"].get("labels", {}).get("app") == "nginx"}
    assert len(first_rs) == 1

    # set image: never more than 4 + 1 pods, never fewer than 4 - 1 available.
    with PodWatch(s, max_total=5, min_available=3) as watch:
        s("set", "image", f"deploy/{DEPLOY}", "nginx=nginx:1.9.1")
        s("rollout", "status", f"deploy/{DEPLOY}", "--timeout", "60s")
        eventually(lambda: deployment_done(s, 4), "the rollout")
    assert watch.events > 8 and watch.violations == []
    sets = {r.split()[0]: r.split()[1] for r in s("get", "rs").stdout.splitlines()[1:]}
    (old,) = first_rs
    assert sets[old] == "0" and sorted(sets.values()) == ["0", "4"]
    history = s("rollout", "history", f"deploy/{DEPLOY}").stdout
    assert [line.split()[0] for line in history.splitlines()[2:]] == ["1", "2"]

    # undo: back to the first template hash, reusing its ReplicaSet.
    s("rollout", "undo", f"deploy/{DEPLOY}")
    eventually(lambda: deployment_done(s, 4), "the rollback")
    eventually(lambda: {controller_ref(p)["name"] for p in s.pods()  # type: ignore[index]
                        if p["metadata"].get("labels", {}).get("app") == "nginx"
                        and not p["metadata"].get("deletionTimestamp")} == first_rs,
               "pods of the first ReplicaSet only")
    rs = s.get("replicasets", old)
    assert rs["spec"]["replicas"] == 4
    assert s.get("deployments", DEPLOY)["spec"]["template"]["spec"]["containers"][0]["image"] \
        == "nginx:1.7.9"

    # The crash-looping container restarts with back-off; the unready pod is not ready.
    def restarts() -> int:
        statuses = s.get("pods", "crasher")["status"].get("containerStatuses") or [{}]
        return int(statuses[0].get("restartCount", 0))

    eventually(lambda: restarts() >= 1, "the crashing container to restart", timeout=40)
    crasher = s.get("pods", "crasher")["status"]
    assert s.get("pods", "unready")["status"]["phase"] == "Running"
    assert not is_pod_ready(s.get("pods", "unready"))
    assert crasher["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 3
    # It exits again at once and waits out a longer back-off.
    eventually(lambda: "CrashLoopBackOff" in s("get", "pods", "crasher").stdout,
               "CrashLoopBackOff", timeout=30, explain=lambda: s("get", "pods").stdout)
    assert "starting" in s("logs", "crasher").stdout

    # kill -9 the member whose controller manager is active.
    active = lease_holder(s, "kube-controller-manager")
    victim = int(active.removeprefix("member-"))
    scheduler_before = lease_holder(s, "kube-scheduler")
    cluster.kill(victim)
    eventually(lambda: lease_holder(s, "kube-controller-manager") not in ("", active),
               "the controller manager to fail over", timeout=30)
    if scheduler_before == active:
        eventually(lambda: lease_holder(s, "kube-scheduler") not in ("", active),
                   "the scheduler to fail over", timeout=30)

    def node_not_ready() -> bool:
        node = s.get("nodes", active, "")
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        return bool(ready) and ready[0]["status"] != "True"

    eventually(node_not_ready, f"{active} NotReady", timeout=30)
    assert f"{active}   NotReady" in s("get", "nodes").stdout

    def recovered() -> bool:
        nginx = [p for p in s.pods() if p["metadata"].get("labels", {}).get("app") == "nginx"
                 and not p["metadata"].get("deletionTimestamp")]
        return (deployment_done(s, 4) and len(nginx) == 4
                and all(p["spec"].get("nodeName") not in ("", None, active) for p in nginx)
                and all(is_pod_ready(p) for p in nginx))

    def state() -> str:
        return (s("get", "pods", "-o", "wide").stdout + s("get", "rs").stdout
                + json.dumps(s.get("deployments", DEPLOY)["status"], indent=1))

    eventually(recovered, "4/4 available on the surviving nodes", timeout=60, explain=state)
    assert json.loads(s("get", "deploy", DEPLOY, "-o", "json").stdout)["status"][
        "availableReplicas"] == 4
