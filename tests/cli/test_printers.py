"""Columns, rows and ages as kubectl prints them."""

from __future__ import annotations

from typing import Any

import pytest

from controllers.api import REGISTRY
from controllers.api.objects import format_timestamp
from runtime.cli.printers import (
    age,
    column_widths,
    columns,
    format_rows,
    human_duration,
    pod_status,
    qualified_name,
    row,
    selector_text,
)

NOW = 1_700_000_000.0


@pytest.mark.parametrize(("seconds", "text"), [
    (-5, "<invalid>"), (-0.5, "0s"), (0, "0s"), (5, "5s"), (119, "119s"), (120, "2m"),
    (182, "3m2s"), (599, "9m59s"), (600, "10m"), (179 * 60, "179m"), (3 * 3600, "3h"),
    (4 * 3600 + 5 * 60, "4h5m"), (8 * 3600, "8h"), (47 * 3600, "47h"), (2 * 86400, "2d"),
    (2 * 86400 + 3 * 3600, "2d3h"), (8 * 86400, "8d"), (400 * 86400, "400d"),
    (730 * 86400, "2y"), (800 * 86400, "2y70d"), (9 * 365 * 86400, "9y"),
])
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_age_reads_rfc3339_and_tolerates_garbage() -> None:
    assert age(format_timestamp(NOW - 65), NOW) == "65s"
    assert age(None, NOW) == "<unknown>"
    assert age("yesterday", NOW) == "<unknown>"


def _pod(status: dict[str, Any] | None = None, *, init: int = 0, deleting: bool = False,
         containers: int = 1) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": f"c{i}"} for i in range(containers)]}
    if init:
        spec["initContainers"] = [{"name": f"i{i}"} for i in range(init)]
    m: dict[str, Any] = {"name": "p"}
    if deleting:
        m["deletionTimestamp"] = format_timestamp(NOW)
    return {"metadata": m, "spec": spec, "status": status or {"phase": "Pending"}}


def _cs(state: dict[str, Any], *, ready: bool = False, restarts: int = 0,
        last: dict[str, Any] | None = None) -> dict[str, Any]:
    out = {"name": "c0", "state": state, "ready": ready, "restartCount": restarts}
    if last:
        out["lastState"] = last
    return out


RUNNING = {"running": {"startedAt": format_timestamp(NOW - 60)}}


@pytest.mark.parametrize(("pod", "expected"), [
    (_pod(), ("0/1", "Pending", "0")),
    (_pod({"phase": "Pending", "containerStatuses": [
        _cs({"waiting": {"reason": "ContainerCreating"}})]}), ("0/1", "ContainerCreating", "0")),
    (_pod({"phase": "Running", "containerStatuses": [_cs(RUNNING, ready=True)]}),
     ("1/1", "Running", "0")),
    (_pod({"phase": "Succeeded", "containerStatuses": [
        _cs({"terminated": {"exitCode": 0, "reason": "Completed"}})]}),
     ("0/1", "Completed", "0")),
    (_pod({"phase": "Failed", "containerStatuses": [
        _cs({"terminated": {"exitCode": 1, "reason": "Error"}})]}), ("0/1", "Error", "0")),
    (_pod({"phase": "Failed", "containerStatuses": [_cs({"terminated": {"exitCode": 137}})]}),
     ("0/1", "ExitCode:137", "0")),
    (_pod({"phase": "Running", "containerStatuses": [
        _cs({"waiting": {"reason": "CrashLoopBackOff"}}, restarts=4,
            last={"terminated": {"exitCode": 1,
                                 "finishedAt": format_timestamp(NOW - 30)}})]}),
     ("0/1", "CrashLoopBackOff", "4 (30s ago)")),
    (_pod({"phase": "Running", "containerStatuses": [_cs(RUNNING, ready=True)]},
          deleting=True), ("1/1", "Terminating", "0")),
    (_pod({"phase": "Pending"}, init=2), ("0/1", "Pending", "0")),
    (_pod({"phase": "Pending", "initContainerStatuses": [
        {"name": "i0", "state": {"terminated": {"exitCode": 0}}},
        {"name": "i1", "state": {"running": {}}}]}, init=2), ("0/1", "Init:1/2", "0")),
    (_pod({"phase": "Pending", "initContainerStatuses": [
        {"name": "i0", "state": {"terminated": {"exitCode": 2}}}]}, init=1),
     ("0/1", "Init:ExitCode:2", "0")),
    (_pod({"phase": "Pending", "initContainerStatuses": [
        {"name": "i0", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}, init=1),
     ("0/1", "Init:CrashLoopBackOff", "0")),
    (_pod({"phase": "Running", "containerStatuses": [
        _cs({"terminated": {"exitCode": 0, "reason": "Completed"}}),
        {**_cs(RUNNING, ready=True), "name": "c1"}]}, containers=2),
     ("1/2", "NotReady", "0")),
    (_pod({"phase": "Failed", "reason": "Evicted"}), ("0/1", "Evicted", "0")),
])
def test_pod_status(pod: dict[str, Any], expected: tuple[str, str, str]) -> None:
    assert pod_status(pod, NOW) == expected


@pytest.mark.parametrize(("kind", "wide", "headers"), [
    ("pods", False, "NAME READY STATUS RESTARTS AGE"),
    ("pods", True, "NAME READY STATUS RESTARTS AGE IP NODE NOMINATED-NODE READINESS-GATES"),
    ("deploy", False, "NAME READY UP-TO-DATE AVAILABLE AGE"),
    ("rs", False, "NAME DESIRED CURRENT READY AGE"),
    ("no", False, "NAME STATUS ROLES AGE VERSION"),
    ("ns", False, "NAME STATUS AGE"),
    ("svc", False, "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE"),
    ("cm", False, "NAME DATA AGE"),
    ("ev", False, "LAST-SEEN TYPE REASON OBJECT MESSAGE"),
    ("leases", False, "NAME HOLDER AGE"),
    ("jobs", False, "NAME COMPLETIONS DURATION AGE"),
    ("cj", False, "NAME SCHEDULE SUSPEND ACTIVE LAST-SCHEDULE AGE"),
    ("ds", False, "NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE-SELECTOR AGE"),
    ("ep", False, "NAME ENDPOINTS AGE"),
    ("controllerrevisions", False, "NAME AGE"),
])
def test_columns(kind: str, wide: bool, headers: str) -> None:
    got = columns(REGISTRY.lookup(kind), wide)
    assert [h.replace(" ", "-") for h in got] == headers.split()


def _row(kind: str, obj: dict[str, Any], wide: bool = False) -> list[str]:
    obj.setdefault("metadata", {}).setdefault("name", "x")
    obj["metadata"].setdefault("creationTimestamp", format_timestamp(NOW - 3600 * 5))
    return row(REGISTRY.lookup(kind), obj, NOW, wide)


def test_workload_rows() -> None:
    tmpl = {"spec": {"containers": [{"name": "a", "image": "img:1"},
                                    {"name": "b", "image": "img:2"}]}}
    deploy = {"spec": {"replicas": 3, "selector": {"matchLabels": {"app": "w"}},
                       "template": tmpl},
              "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 1}}
    assert _row("deploy", deploy) == ["x", "2/3", "3", "1", "5h"]
    assert _row("deploy", deploy, True)[5:] == ["a,b", "img:1,img:2", "app=w"]
    rs = {"spec": {"replicas": 3}, "status": {"replicas": 2, "readyReplicas": 1}}
    assert _row("rs", rs) == ["x", "3", "2", "1", "5h"]
    ds = {"spec": {"template": {"spec": {"nodeSelector": {"os": "linux"}}}},
          "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2,
                     "numberReady": 1, "updatedNumberScheduled": 2, "numberAvailable": 1}}
    assert _row("ds", ds) == ["x", "2", "2", "1", "2", "1", "os=linux", "5h"]


def test_job_and_cronjob_rows() -> None:
    done = {"spec": {"completions": 3}, "status": {
        "succeeded": 3, "startTime": format_timestamp(NOW - 200),
        "completionTime": format_timestamp(NOW - 20)}}
    assert _row("jobs", done) == ["x", "3/3", "3m", "5h"]
    running = {"spec": {"parallelism": 2}, "status": {
        "succeeded": 0, "startTime": format_timestamp(NOW - 42)}}
    assert _row("jobs", running) == ["x", "0/1 of 2", "42s", "5h"]
    assert _row("jobs", {"spec": {}, "status": {}}) == ["x", "0/1", "", "5h"]
    cj = {"spec": {"schedule": "*/5 * * * *", "suspend": False},
          "status": {"active": [{"name": "j"}], "lastScheduleTime": format_timestamp(NOW - 90)}}
    assert _row("cj", cj) == ["x", "*/5 * * * *", "False", "1", "90s", "5h"]
    assert _row("cj", {"spec": {"schedule": "@daily"}}) == [
        "x", "@daily", "<unset>", "0", "<none>", "5h"]


def test_node_row() -> None:
    node = {"metadata": {"labels": {"node-role.kubernetes.io/control-plane": "",
                                    "node-role.kubernetes.io/worker": ""}},
            "spec": {"unschedulable": True},
            "status": {"conditions": [{"type": "Ready", "status": "False"}],
                       "nodeInfo": {"kubeletVersion": "v1.30.1"},
                       "addresses": [{"type": "InternalIP", "address": "10.0.0.5"}]}}
    assert _row("no", node) == ["x", "NotReady,SchedulingDisabled", "control-plane,worker",
                                "5h", "v1.30.1"]
    assert _row("no", node, True)[5:7] == ["10.0.0.5", "<none>"]
    assert _row("no", {"status": {}})[1:3] == ["Unknown", "<none>"]


def test_core_rows() -> None:
    svc = {"spec": {"type": "NodePort", "clusterIP": "10.96.0.10",
                    "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"},
                              {"port": 53, "protocol": "UDP"}], "selector": {"app": "w"}}}
    assert _row("svc", svc, True) == ["x", "NodePort", "10.96.0.10", "<none>",
                                      "80:30080/TCP,53/UDP", "5h", "app=w"]
    lb = {"spec": {"type": "LoadBalancer", "ports": [{"port": 443}]}}
    assert _row("svc", lb)[3] == "<pending>"
    ep = {"subsets": [{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(5)],
                       "ports": [{"port": 80}]}]}
    assert _row("ep", ep)[1] == "10.0.0.0:80,10.0.0.1:80,10.0.0.2:80 + 2 more..."
    assert _row("ep", {})[1] == "<none>"
    assert _row("cm", {"data": {"a": "1", "b": "2"}, "binaryData": {"c": ""}})[1] == "3"
    assert _row("leases", {"spec": {"holderIdentity": "m-1"}})[1] == "m-1"
    ev = {"type": "Warning", "reason": "BackOff", "message": "Back-off\nrestarting",
          "involvedObject": {"kind": "Pod", "name": "web-1"},
          "lastTimestamp": format_timestamp(NOW - 7)}
    assert _row("ev", ev) == ["7s", "Warning", "BackOff", "pod/web-1", "Back-off restarting"]


def test_qualified_names_and_selectors() -> None:
    obj = {"metadata": {"name": "w"}}
    assert qualified_name(REGISTRY.lookup("deploy"), obj) == "deployment.apps/w"
    assert qualified_name(REGISTRY.lookup("po"), obj) == "pod/w"
    assert qualified_name(REGISTRY.lookup("leases"), obj) == "lease.coordination.k8s.io/w"
    assert selector_text({"matchLabels": {"b": "2", "a": "1"}}) == "a=1,b=2"
    assert selector_text({}) == "<none>"
    assert selector_text(None) == "<none>"
    assert selector_text({"matchExpressions": [{"key": "a", "operator": "Near"}]}) == \
        "{'matchExpressions': [{'key': 'a', 'operator': 'Near'}]}"


def test_format_rows_pads_three_spaces_and_honours_widths() -> None:
    lines = format_rows(["NAME", "AGE"], [["a-long-name", "5s"], ["b", "10m"]])
    assert lines == ["NAME          AGE", "a-long-name   5s", "b             10m"]
    assert format_rows([], [["b", "1"]], [11, 3]) == ["b             1"]
    assert column_widths(["NAME", "AGE"], [["abc", "12345"]]) == [4, 5]
