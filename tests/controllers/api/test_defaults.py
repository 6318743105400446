"""Defaults: the values Kubernetes applies, never overwriting what the caller gave."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from controllers.api import REGISTRY, strategy
from controllers.api.defaults import JOB_CONTROLLER_UID_LABEL, JOB_NAME_LABEL
from tests.controllers.api.samples import deployment, pod

Obj = dict[str, Any]


def create(kind: str, obj: Obj) -> Obj:
    return strategy.prepare_for_create(REGISTRY.lookup(kind), obj, uid="uid-1", now=1.7e9)


def test_create_sets_server_fields_and_drops_client_ones() -> None:
    obj = pod("p")
    obj["metadata"].update(uid="mine", generation=9, resourceVersion="5",
                           deletionTimestamp="2020-01-01T00:00:00Z")
    out = create("pods", obj)["metadata"]
    assert out["uid"] == "uid-1"
    assert out["creationTimestamp"] == "2023-11-14T22:13:20Z"
    assert out["generation"] == 1
    assert "resourceVersion" not in out and "deletionTimestamp" not in out


def test_pod_defaults() -> None:
    obj = pod("p")
    obj["spec"]["containers"] = [
        {"name": "a", "image": "nginx", "ports": [{"containerPort": 80}]},
        {"name": "b", "image": "nginx:latest"},
        {"name": "c", "image": "registry:5000/nginx:1.25"},
        {"name": "d", "image": "nginx@sha256:abc"},
        {"name": "e", "image": "nginx:1.25", "imagePullPolicy": "Never"},
    ]
    out = create("pods", obj)
    spec = out["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["schedulerName"] == "default-scheduler"
    assert [c["imagePullPolicy"] for c in spec["containers"]] == [
        "Always", "Always", "IfNotPresent", "IfNotPresent", "Never"]
    assert spec["containers"][0]["ports"][0]["protocol"] == "TCP"
    assert out["status"] == {"phase": "Pending"}


def test_deployment_defaults() -> None:
    obj = deployment("d")
    del obj["spec"]["replicas"]
    spec = create("deployments", obj)["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate",
                                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["template"]["spec"]["restartPolicy"] == "Always"


def test_defaults_keep_given_values() -> None:
    obj = deployment("d", replicas=0)
    obj["spec"].update(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2}},
                       revisionHistoryLimit=0)
    spec = create("deployments", obj)["spec"]
    assert spec["replicas"] == 0
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 2, "maxUnavailable": "25%"}
    assert spec["revisionHistoryLimit"] == 0
    obj["spec"]["strategy"] = {"type": "Recreate"}
    assert create("deployments", obj)["spec"]["strategy"] == {"type": "Recreate"}


def test_defaulting_twice_changes_nothing() -> None:
    for kind, obj in (("deployments", deployment("d")), ("pods", pod("p"))):
        once = create(kind, obj)
        defaulter = REGISTRY.lookup(kind).defaulter
        assert defaulter is not None
        twice = copy.deepcopy(once)
        defaulter(twice)
        assert twice == once


def _workload(kind: str, api_version: str, **spec: Any) -> Obj:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": "w", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"a": "b"}},
                     "template": {"metadata": {"labels": {"a": "b"}},
                                  "spec": {"containers": [{"name": "c", "image": "i:1"}]}},
                     **spec}}


def test_replicaset_and_daemonset_defaults() -> None:
    assert create("rs", _workload("ReplicaSet", "apps/v1"))["spec"]["replicas"] == 1
    spec = create("ds", _workload("DaemonSet", "apps/v1"))["spec"]
    assert spec["updateStrategy"] == {"type": "RollingUpdate",
                                      "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert spec["revisionHistoryLimit"] == 10


def _job(**spec: Any) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi", "namespace": "default"},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "c", "image": "i:1"}]}},
                     **spec}}


def test_job_defaults_and_generated_selector() -> None:
    out = create("jobs", _job())
    spec = out["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert spec["completionMode"] == "NonIndexed"
    assert spec["suspend"] is False
    assert spec["selector"] == {"matchLabels": {JOB_CONTROLLER_UID_LABEL: "uid-1"}}
    labels = spec["template"]["metadata"]["labels"]
    assert labels[JOB_CONTROLLER_UID_LABEL] == "uid-1"
    assert labels[JOB_NAME_LABEL] == "pi"
    assert labels["job-name"] == "pi"


def test_job_work_queue_keeps_completions_unset() -> None:
    spec = create("jobs", _job(parallelism=3))["spec"]
    assert spec["parallelism"] == 3 and "completions" not in spec


def test_job_manual_selector_is_not_generated() -> None:
    obj = _job(manualSelector=True, selector={"matchLabels": {"x": "y"}})
    obj["spec"]["template"]["metadata"] = {"labels": {"x": "y"}}
    spec = create("jobs", obj)["spec"]
    assert spec["selector"] == {"matchLabels": {"x": "y"}}
    assert spec["template"]["metadata"]["labels"] == {"x": "y"}


def test_cronjob_defaults() -> None:
    obj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c", "namespace": "default"},
           "spec": {"schedule": "@hourly", "jobTemplate": {"spec": {"template": {"spec": {
               "restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "i:1"}]}}}}}}
    spec = create("cronjobs", obj)["spec"]
    assert spec["concurrencyPolicy"] == "Allow"
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 1)
    assert spec["suspend"] is False
    assert spec["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"] == "ClusterFirst"


def test_service_defaults() -> None:
    obj: Obj = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "default"},
           "spec": {"ports": [{"port": 80}, {"port": 53, "protocol": "UDP", "targetPort": "dns",
                                             "name": "dns"}]}}
    obj["spec"]["ports"][0]["name"] = "http"
    spec = create("svc", obj)["spec"]
    assert spec["type"] == "ClusterIP" and spec["sessionAffinity"] == "None"
    assert spec["ports"] == [
        {"port": 80, "name": "http", "protocol": "TCP", "targetPort": 80},
        {"port": 53, "protocol": "UDP", "targetPort": "dns", "name": "dns"},
    ]


def test_namespace_and_secret_defaults() -> None:
    ns = create("ns", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    assert ns["status"] == {"phase": "Active"}
    secret = create("secrets", {"apiVersion": "v1", "kind": "Secret",
                                "metadata": {"name": "s", "namespace": "default"},
                                "data": {"a": b"1"}, "stringData": {"b": "two"}})
    assert secret["type"] == "Opaque"
    assert secret["data"] == {"a": b"1", "b": b"two"}
    assert "stringData" not in secret


@pytest.mark.parametrize("kind", ["configmaps", "events", "leases", "nodes"])
def test_kinds_without_defaults_are_left_alone(kind: str) -> None:
    k = REGISTRY.lookup(kind)
    meta: Obj = {"name": "x", **({"namespace": "default"} if k.namespaced else {})}
    obj: Obj = {"apiVersion": k.api_version, "kind": k.kind, "metadata": meta}
    if kind == "events":
        obj["involvedObject"] = {"kind": "Pod", "name": "p"}
    out = create(kind, obj)
    out["metadata"] = meta
    assert out == obj
