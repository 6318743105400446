"""Workload and lifecycle controllers on three member processes: DaemonSet, cascades, Endpoints."""

from __future__ import annotations

import os

import pytest

from controllers.api import NotFound
from controllers.builtin.podutil import is_pod_ready
from runtime.cluster import LocalCluster
from tests.e2e.support import Steer, eventually

pytestmark = pytest.mark.slow

DAEMONSET = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: agent:1}]
"""

WEB = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: web:1
        ports: [{name: http, containerPort: 8080}]
        readinessProbe:
          exec: {command: ["sh", "-c", "test ! -e /tmp/steersman-e2e-unready-$POD_NAME"]}
          periodSeconds: 1
        env:
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
"""


def gone(s: Steer, resource: str, name: str) -> bool:
    try:
        s.get(resource, name)
    except NotFound:
        return True
    return False


def test_daemonset_cascades_and_endpoints(cluster: LocalCluster) -> None:
    s = Steer(cluster)
    eventually(lambda: s("get", "nodes").stdout.count(" Ready ") == 3, "three Ready nodes",
               explain=lambda: s("get", "nodes").stdout)

    # A DaemonSet puts one pod on each of the three nodes.
    s("apply", "-f", "-", input=DAEMONSET)

    def one_per_node() -> bool:
        pods = s.list("pods", selector="app=agent")
        return (sorted(p["spec"].get("nodeName", "") for p in pods)
                == ["member-1", "member-2", "member-3"]
                and all(is_pod_ready(p) for p in pods))

    eventually(one_per_node, "one ready agent pod per node",
               explain=lambda: s("get", "pods", "-o", "wide").stdout)
    assert s.get("daemonsets", "agent")["status"]["numberReady"] == 3

    # A Service's Endpoints follow its pods as they become ready and go away.
    s("apply", "-f", "-", input=WEB)

    def addresses() -> tuple[list[str], list[str]]:
        try:
            subsets = s.get("endpoints", "web").get("subsets") or []
        except NotFound:
            return [], []
        ready = sorted(a["targetRef"]["name"] for sub in subsets for a in sub.get("addresses", []))
        unready = sorted(a["targetRef"]["name"]
                         for sub in subsets for a in sub.get("notReadyAddresses", []))
        return ready, unready

    def web_pods() -> list[str]:
        return sorted(p["metadata"]["name"] for p in s.list("pods", selector="app=web")
                      if not p["metadata"].get("deletionTimestamp"))

    eventually(lambda: len(web_pods()) == 2 and addresses() == (web_pods(), []),
               "both web pods in the endpoints", explain=lambda: str(addresses()))
    service = s.get("services", "web")
    assert service["spec"]["clusterIP"].startswith("10.")
    subset = s.get("endpoints", "web")["subsets"][0]
    assert subset["ports"][0]["port"] == 8080
    pod_ips = {p["status"]["podIP"] for p in s.list("pods", selector="app=web")}
    assert {a["ip"] for a in subset["addresses"]} == pod_ips

    # One pod turns unready: it moves to notReadyAddresses.
    first, second = web_pods()
    marker = f"/tmp/steersman-e2e-unready-{first}"
    open(marker, "w").close()  # noqa: SIM115
    try:
        eventually(lambda: addresses() == ([second], [first]), "the unready pod moved aside",
                   explain=lambda: str(addresses()))
    finally:
        os.unlink(marker)
    eventually(lambda: addresses() == ([first, second], []), "ready again")

    # Deleting the Deployment in the foreground removes its ReplicaSets and pods before it.
    s("delete", "deploy", "web", "--cascade=foreground")

    def cascade_done() -> bool:
        deployment_there = not gone(s, "deployments", "web")
        rs_left = s.list("replicasets", selector="app=web")
        pods_left = s.list("pods", selector="app=web")
        # Read in this order, dependents seen after the owner is gone were there after it.
        assert deployment_there or not (rs_left or pods_left), "owner gone before dependents"
        return not deployment_there and not rs_left and not pods_left

    eventually(cascade_done, "the foreground cascade",
               explain=lambda: s("get", "all").stdout)
    # The Endpoints went empty with the pods; the Service itself stays.
    eventually(lambda: addresses() == ([], []), "empty endpoints")
    assert not gone(s, "services", "web")
    s("delete", "service", "web")
    eventually(lambda: gone(s, "endpoints", "web"), "the endpoints gone with the service")


PI = """
apiVersion: batch/v1
kind: Job
metadata: {name: pi}
spec:
  completions: 3
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: pi
        image: python:3
        command: ["python3", "-c", "from decimal import Decimal as D, getcontext; getcontext().prec = 40; print(sum(D(1) / 16**k * (D(4) / (8*k+1) - D(2) / (8*k+4) - D(1) / (8*k+5) - D(1) / (8*k+6)) for k in range(40)))"]
---
apiVersion: batch/v1
kind: Job
metadata: {name: doomed}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: fail
        image: busybox
        command: ["sh", "-c", "echo no luck; exit 1"]
"""


def condition(obj: dict, type_: str) -> str:  # type: ignore[type-arg]
    for c in obj.get("status", {}).get("conditions") or []:
        if c["type"] == type_:
            return str(c["status"])
    return ""


def test_jobs_complete_or_stop_at_their_backoff_limit(cluster: LocalCluster) -> None:
    s = Steer(cluster)
    eventually(lambda: s("get", "nodes").stdout.count(" Ready ") == 3, "three Ready nodes",
               explain=lambda: s("get", "nodes").stdout)
    s("apply", "-f", "-", input=PI)

    # Completions 3, parallelism 2: three pods succeed, never more than two at once.
    most_active = 0

    def pi_complete() -> bool:
        nonlocal most_active
        job = s.get("jobs", "pi")
        most_active = max(most_active, int(job.get("status", {}).get("active", 0)))
        return condition(job, "Complete") == "True"

    eventually(pi_complete, "the pi Job to complete", timeout=60,
               explain=lambda: s("get", "pods", "-o", "wide").stdout)
    job = s.get("jobs", "pi")
    assert job["status"]["succeeded"] == 3 and most_active <= 2
    pods = s.list("pods", selector="job-name=pi")
    assert sorted(p["status"]["phase"] for p in pods) == ["Succeeded"] * 3
    assert s("logs", pods[0]["metadata"]["name"]).stdout.startswith("3.14159265358979")
    assert s("get", "jobs").stdout.splitlines()[1].split()[:2] == ["doomed", "0/1"]

    # The failing Job retries once (backoffLimit 1), then stops with condition Failed.
    eventually(lambda: condition(s.get("jobs", "doomed"), "Failed") == "True",
               "the doomed Job to fail", timeout=60,
               explain=lambda: s("get", "pods").stdout)
    doomed = s.get("jobs", "doomed")
    assert doomed["status"]["failed"] == 2
    reasons = [c.get("reason") for c in doomed["status"]["conditions"] if c["type"] == "Failed"]
    assert reasons == ["BackoffLimitExceeded"]
