"""``describe``: sections per kind, and the object's events at the end."""

from __future__ import annotations

from typing import Any

from controllers.api import Clientset
from controllers.api.objects import format_timestamp
from runtime.cli.describe import Sections

from .conftest import START, Env
from .samples import deployment, node, pod, replicaset


def _event(name: str, obj: dict[str, Any], reason: str, message: str, *, ago: float,
           count: int = 1, first_ago: float = 0, etype: str = "Normal") -> dict[str, Any]:
    m = obj["metadata"]
    ev: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": m.get("namespace", "default")},
        "involvedObject": {"kind": obj["kind"], "name": m["name"], "uid": m["uid"],
                           "namespace": m.get("namespace", "")},
        "reason": reason, "message": message, "type": etype, "count": count,
        "source": {"component": "kubelet"},
        "lastTimestamp": format_timestamp(START - ago),
    }
    if first_ago:
        ev["firstTimestamp"] = format_timestamp(START - first_ago)
    return ev


def test_sections_align_runs_of_one_level() -> None:
    s = Sections()
    s.field(0, "Name", "web")
    s.field(0, "Annotations", "a: 1\nb: 2")
    s.field(0, "Containers")
    s.field(1, "c", None)
    s.field(2, "Image", "nginx")
    s.field(2, "Restart Count", 0)
    s.table(1, ["Type", "Status"], [["Ready", "True"]])
    assert s.lines() == [
        "Name:         web",
        "Annotations:  a: 1",
        "              b: 2",
        "Containers:",
        "  c:",
        "    Image:          nginx",
        "    Restart Count:  0",
        "  Type    Status",
        "  ----    ------",
        "  Ready   True",
    ]


def test_describe_pod_with_its_events(env: Env) -> None:
    async def go(api: Clientset) -> None:
        p = await api.resource("pods").create(pod("web-1", labels={"app": "web"}, node="n1"))
        p["status"] = {"phase": "Running", "podIP": "10.1.0.7", "hostIP": "192.168.0.2",
                       "containerStatuses": [{"name": "main", "ready": True, "restartCount": 2,
                                              "state": {"running": {"startedAt":
                                                        format_timestamp(START)}}}],
                       "conditions": [{"type": "Ready", "status": "True"}]}
        await api.resource("pods").update_status(p)
        other = await api.resource("pods").create(pod("other"))
        events = api.resource("events")
        await events.create(_event("e2", p, "Pulled", "Pulled image", ago=20))
        await events.create(_event("e1", p, "Scheduled", "Assigned to n1", ago=90))
        await events.create(_event("e3", p, "BackOff", "Back-off", ago=5, count=3,
                                   first_ago=300, etype="Warning"))
        await events.create(_event("e4", other, "Scheduled", "not this one", ago=1))
    env.run(go)
    r = env.invoke("describe", "pod", "web-1")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:3] == ["Name:         web-1", "Namespace:    default",
                         "Node:         n1/192.168.0.2"]
    assert "Status:       Running" in lines
    assert "IP:           10.1.0.7" in lines
    assert "    Restart Count:  2" in lines
    assert "    Ready:          True" in lines
    events = lines[lines.index("Events:"):]
    assert events == [
        "Events:",
        "  Type      Reason      Age               From      Message",
        "  ----      ------      ----              ----      -------",
        "  Normal    Scheduled   90s               kubelet   Assigned to n1",
        "  Normal    Pulled      20s               kubelet   Pulled image",
        "  Warning   BackOff     5s (x3 over 5m)   kubelet   Back-off",
    ]


def test_events_of_one_second_keep_the_order_they_were_written_in(env: Env) -> None:
    async def go(api: Clientset) -> None:
        p = await api.resource("pods").create(pod("web-1", node="n1"))
        events = api.resource("events")
        # Names sort the other way round from the order of writing.
        for name, reason in (("z", "Scheduled"), ("m", "Created"), ("a", "Started")):
            await events.create(_event(name, p, reason, reason.lower(), ago=3))
    env.run(go)
    r = env.invoke("describe", "pod", "web-1")
    lines = r.stdout.splitlines()
    reasons = [line.split()[1] for line in lines[lines.index("Events:") + 3:]]
    assert reasons == ["Scheduled", "Created", "Started"]


def test_describe_deployment_names_its_replica_sets(env: Env) -> None:
    async def go(api: Clientset) -> None:
        d = await api.resource("deploy").create(deployment("web", image="nginx:2"))
        rs = replicaset(d, 2, "nginx:2", replicas=1)
        await api.resource("rs").create(rs)
        await api.resource("rs").create(replicaset(d, 1, "nginx:1", replicas=1))
    env.run(go)
    r = env.invoke("describe", "deployment/web")
    lines = r.stdout.splitlines()
    assert "Replicas:               1 desired | 0 updated | 0 total | 0 available | " \
        "0 unavailable" in lines
    assert "OldReplicaSets:  web-h1 (0/1 replicas created)" in lines
    assert "NewReplicaSet:   web-h2 (0/1 replicas created)" in lines
    assert lines[-1] == "Events:          <none>"


def test_describe_node_replicaset_configmap_and_others(env: Env) -> None:
    async def go(api: Clientset) -> None:
        await api.resource("nodes").create(node("n1", address="10.0.0.9"))
        await api.resource("pods").create(pod("p1", node="n1"))
        d = await api.resource("deploy").create(deployment("web"))
        await api.resource("rs").create(replicaset(d, 1, "nginx:1", replicas=2))
        await api.resource("cm").create({"metadata": {"name": "c"}, "data": {"k": "v"}})
        await api.resource("leases").create({"metadata": {"name": "l"},
                                             "spec": {"holderIdentity": "m-1"}})
    env.run(go)
    lines = env.invoke("describe", "node", "n1").stdout.splitlines()
    assert "Roles:              worker" in lines
    assert "  InternalIP:  10.0.0.9" in lines
    assert "Non-terminated Pods:  (1 in total)" in lines
    assert any(line.split() == ["default", "p1", "0s"] for line in lines)
    lines = env.invoke("describe", "rs", "web-h1").stdout.splitlines()
    assert "Replicas:       0 current / 2 desired" in lines
    assert "Controlled By:  Deployment/web" in lines
    lines = env.invoke("describe", "configmap", "c").stdout.splitlines()
    assert lines[lines.index("Data"):lines.index("Data") + 5] == ["Data", "====", "k:", "----",
                                                                  "v"]
    lines = env.invoke("describe", "leases", "l").stdout.splitlines()
    assert "Spec:" in lines and "  HolderIdentity:  m-1" in lines
    r = env.invoke("describe", "pod", "nope")
    assert r.exit_code == 1 and r.stderr == 'Error from server (NotFound): pods "nope" not found\n'
