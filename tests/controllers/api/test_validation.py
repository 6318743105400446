"""Validation tables: each bad object must be refused with every bad field listed."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from controllers.api import REGISTRY, FieldErrorType, Invalid
from controllers.api import strategy
from controllers.api.validation import (
    dns1035_label,
    dns1123_label,
    dns1123_subdomain,
    iana_port_name,
    label_value,
    qualified_name,
)
from tests.controllers.api.samples import deployment, pod

Obj = dict[str, Any]
T = FieldErrorType


def causes(kind: str, obj: Obj) -> list[tuple[str, FieldErrorType]]:
    """``(field, type)`` of every error validating ``obj`` as ``kind`` (no defaults applied)."""
    try:
        strategy.validate(REGISTRY.lookup(kind), obj, None)
    except Invalid as e:
        return [(c.field, c.type) for c in e.causes]
    return []


def edit(obj: Obj, change: Callable[[Obj], object]) -> Obj:
    obj = copy.deepcopy(obj)
    change(obj)
    return obj


def _spec(o: Obj) -> Obj:
    spec: Obj = o["spec"]
    return spec


def _container(o: Obj) -> Obj:
    c: Obj = o["spec"]["containers"][0]
    return c


def _tspec(o: Obj) -> Obj:
    s: Obj = o["spec"]["template"]["spec"]
    return s


def service(**spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}], **spec}}


def job(**spec: Any) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"a": "b"}},
                     "template": {"metadata": {"labels": {"a": "b"}},
                                  "spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "c", "image": "i"}]}},
                     **spec}}


def cronjob(name: str = "cj", **spec: Any) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name, "namespace": "default"},
            "spec": {"schedule": "*/5 * * * *",
                     "jobTemplate": {"spec": {"template": {"spec": {
                         "restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "i"}]}}}},
                     **spec}}


def simple(kind: str, name: str = "x", **fields: Any) -> Obj:
    kind_obj = REGISTRY.lookup(kind)
    meta: Obj = {"name": name}
    if kind_obj.namespaced:
        meta["namespace"] = "default"
    return {"apiVersion": kind_obj.api_version, "kind": kind_obj.kind, "metadata": meta, **fields}


CASES: list[tuple[str, str, Obj, list[tuple[str, FieldErrorType]]]] = [
    ("valid pod", "pods", pod("p"), []),
    ("valid deployment", "deployments", deployment("d"), []),
    ("valid service", "services", service(), []),
    ("valid job", "jobs", job(), []),
    ("valid cronjob", "cronjobs", cronjob(), []),
    ("pod without containers", "pods", edit(pod("p"), lambda o: _spec(o).update(containers=[])),
     [("spec.containers", T.REQUIRED)]),
    ("container without name and image", "pods",
     edit(pod("p"), lambda o: _spec(o).update(containers=[{}])),
     [("spec.containers[0].name", T.REQUIRED), ("spec.containers[0].image", T.REQUIRED)]),
    ("duplicate container names across init and main", "pods",
     edit(pod("p"), lambda o: _spec(o).update(initContainers=[{"name": "main", "image": "i"}])),
     [("spec.containers[0].name", T.DUPLICATE)]),
    ("bad ports", "pods",
     edit(pod("p"), lambda o: _container(o).update(ports=[
         {"containerPort": 70000, "protocol": "HTTP", "name": "much-too-long-port-name"},
         {"containerPort": "80"}])),
     [("spec.containers[0].ports[0].containerPort", T.INVALID),
      ("spec.containers[0].ports[0].protocol", T.NOT_SUPPORTED),
      ("spec.containers[0].ports[0].name", T.INVALID),
      ("spec.containers[0].ports[1].containerPort", T.TYPE_INVALID)]),
    ("env, mounts, restart policy, grace", "pods",
     edit(pod("p"), lambda o: (
         _container(o).update(env=[{"value": "x"}, {"name": "A=B"}],
                              volumeMounts=[{"name": "data", "mountPath": "/d"}]),
         _spec(o).update(restartPolicy="Sometimes", terminationGracePeriodSeconds="30"))),
     [("spec.containers[0].env[0].name", T.REQUIRED),
      ("spec.containers[0].env[1].name", T.INVALID),
      ("spec.containers[0].volumeMounts[0].name", T.NOT_SUPPORTED),
      ("spec.restartPolicy", T.NOT_SUPPORTED),
      ("spec.terminationGracePeriodSeconds", T.TYPE_INVALID)]),
    ("metadata everywhere", "pods",
     edit(pod("p"), lambda o: o.update(metadata={
         "name": "Web_1", "namespace": "Bad NS",
         "labels": {"a/b/c": "ok", "good": "-bad-", "n": 5},
         "annotations": {"note": 1},
         "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "a", "controller": True},
                             {"apiVersion": "v1", "kind": "X", "name": "b", "uid": "u",
                              "controller": True}],
         "finalizers": [3, "example.com/ok"]})),
     [("metadata.name", T.INVALID), ("metadata.namespace", T.INVALID),
      # "a/b/c": a bad prefix ("a/b") and too many slashes, one error per reason.
      ("metadata.labels", T.INVALID), ("metadata.labels", T.INVALID),
      ("metadata.labels[good]", T.INVALID),
      ("metadata.labels[n]", T.TYPE_INVALID), ("metadata.annotations[note]", T.TYPE_INVALID),
      ("metadata.ownerReferences[0].uid", T.REQUIRED), ("metadata.ownerReferences", T.INVALID),
      ("metadata.finalizers[0]", T.TYPE_INVALID)]),
    ("no name, no namespace", "pods", edit(pod("p"), lambda o: o.update(metadata={})),
     [("metadata.name", T.REQUIRED), ("metadata.namespace", T.REQUIRED)]),
    ("cluster-scoped object with a namespace", "nodes",
     {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "namespace": "x"}},
     [("metadata.namespace", T.FORBIDDEN)]),
    ("deployment without selector", "deployments",
     edit(deployment("d"), lambda o: _spec(o).pop("selector")), [("spec.selector", T.REQUIRED)]),
    ("deployment selector not matching template", "deployments",
     edit(deployment("d"), lambda o: _spec(o).update(selector={"matchLabels": {"app": "db"}})),
     [("spec.template.metadata.labels", T.INVALID)]),
    ("deployment with empty selector", "deployments",
     edit(deployment("d"), lambda o: _spec(o).update(selector={})), [("spec.selector", T.INVALID)]),
    ("deployment with many problems", "deployments",
     edit(deployment("d"), lambda o: (
         _spec(o).update(replicas="3", minReadySeconds=700, progressDeadlineSeconds=600,
                         strategy={"type": "RollingUpdate",
                                   "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}),
         _tspec(o).update(restartPolicy="Never"))),
     [("spec.replicas", T.TYPE_INVALID), ("spec.template.spec.restartPolicy", T.NOT_SUPPORTED),
      ("spec.strategy.rollingUpdate.maxUnavailable", T.INVALID),
      ("spec.progressDeadlineSeconds", T.INVALID)]),
    ("deployment bad surge values, recreate with rolling update", "deployments",
     edit(deployment("d"), lambda o: _spec(o).update(strategy={
         "type": "Recreate", "rollingUpdate": {"maxSurge": "150%"}})),
     [("spec.strategy.rollingUpdate", T.FORBIDDEN)]),
    ("deployment percent syntax", "deployments",
     edit(deployment("d"), lambda o: _spec(o).update(strategy={
         "rollingUpdate": {"maxSurge": "150%", "maxUnavailable": "abc"}})),
     [("spec.strategy.rollingUpdate.maxUnavailable", T.INVALID),
      ("spec.strategy.rollingUpdate.maxSurge", T.INVALID)]),
    ("replicaset selector expressions", "replicasets",
     {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "r", "namespace": "default"},
      "spec": {"selector": {"matchExpressions": [{"key": "app", "operator": "NotIn"},
                                                 {"key": "x", "operator": "Foo"},
                                                 {"key": "y", "operator": "Exists", "values": ["a"]}]},
               "template": {"metadata": {"labels": {"app": "a"}},
                            "spec": {"containers": [{"name": "c", "image": "i"}]}}}},
     [("spec.selector.matchExpressions[0].values", T.REQUIRED),
      ("spec.selector.matchExpressions[1].operator", T.NOT_SUPPORTED),
      ("spec.selector.matchExpressions[2].values", T.FORBIDDEN)]),
    ("daemonset on-delete with rolling update", "daemonsets",
     {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "ds", "namespace": "default"},
      "spec": {"selector": {"matchLabels": {"a": "b"}},
               "updateStrategy": {"type": "OnDelete", "rollingUpdate": {"maxUnavailable": 1}},
               "template": {"metadata": {"labels": {"a": "b"}},
                            "spec": {"containers": [{"name": "c", "image": "i"}]}}}},
     [("spec.updateStrategy.rollingUpdate", T.FORBIDDEN)]),
    ("job restart policy, indexed, backoff", "jobs",
     edit(job(completionMode="Indexed", backoffLimit=-1),
          lambda o: _tspec(o).update(restartPolicy="Always")),
     [("spec.backoffLimit", T.INVALID), ("spec.completions", T.REQUIRED),
      ("spec.template.spec.restartPolicy", T.NOT_SUPPORTED)]),
    ("cronjob schedule, policy, name length", "cronjobs",
     cronjob("c" * 53, schedule="every minute", concurrencyPolicy="Sometimes"),
     [("metadata.name", T.INVALID), ("spec.schedule", T.INVALID),
      ("spec.concurrencyPolicy", T.NOT_SUPPORTED)]),
    ("cronjob without job template", "cronjobs",
     edit(cronjob(), lambda o: _spec(o).pop("jobTemplate")), [("spec.jobTemplate", T.REQUIRED)]),
    ("service without ports", "services", service(ports=[]), [("spec.ports", T.REQUIRED)]),
    ("headless service may omit ports", "services", service(ports=[], clusterIP="None"), []),
    ("service port rules", "services",
     service(ports=[{"port": 0}, {"port": 80, "targetPort": "-bad", "nodePort": 30000}]),
     [("spec.ports[0].name", T.REQUIRED), ("spec.ports[0].port", T.INVALID),
      ("spec.ports[1].name", T.REQUIRED), ("spec.ports[1].targetPort", T.INVALID),
      ("spec.ports[1].nodePort", T.FORBIDDEN)]),
    ("service name is a DNS-1035 label", "services",
     edit(service(), lambda o: o["metadata"].update(name="1web")), [("metadata.name", T.INVALID)]),
    ("namespace name is a DNS-1123 label", "namespaces",
     simple("namespaces", "has.dots"), [("metadata.name", T.INVALID)]),
    ("configmap keys and values", "configmaps",
     simple("configmaps", data={"a b": "x", "n": 5, "k": "v"}, binaryData={"k": b"v"}),
     [("data[a b]", T.INVALID), ("data[n]", T.TYPE_INVALID), ("data[k]", T.INVALID)]),
    ("secret data must be bytes", "secrets", simple("secrets", data={"k": "text"}),
     [("data[k]", T.TYPE_INVALID)]),
    ("event without involved object", "events", simple("events", type="Info"),
     [("involvedObject", T.REQUIRED), ("type", T.NOT_SUPPORTED)]),
    ("lease duration", "leases", simple("leases", spec={"leaseDurationSeconds": 0}),
     [("spec.leaseDurationSeconds", T.INVALID)]),
    ("controller revision without revision", "controllerrevisions",
     simple("controllerrevisions", data={}), [("revision", T.REQUIRED)]),
    ("node taint without effect", "nodes", simple("nodes", spec={"taints": [{"key": "k"}]}),
     [("spec.taints[0].effect", T.REQUIRED)]),
    ("endpoints address without ip", "endpoints",
     simple("endpoints", subsets=[{"addresses": [{}], "ports": [{"port": 99999}]}]),
     [("subsets[0].addresses[0].ip", T.REQUIRED), ("subsets[0].ports[0].port", T.INVALID)]),
]


@pytest.mark.parametrize("kind,obj,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_bad_field_is_listed(kind: str, obj: Obj, expected: list[tuple[str, FieldErrorType]]
                                   ) -> None:
    assert causes(kind, obj) == expected


def test_invalid_message_names_kind_object_and_each_field() -> None:
    obj = edit(deployment("d"), lambda o: (_spec(o).pop("selector"), _tspec(o).update(containers=[])))
    with pytest.raises(Invalid) as info:
        strategy.validate(REGISTRY.lookup("deploy"), obj, None)
    err = info.value
    assert err.code == 422
    assert err.fields() == ["spec.selector", "spec.template.spec.containers"]
    assert str(err) == ('Deployment.apps "d" is invalid: [spec.selector: Required value, '
                        "spec.template.spec.containers: Required value]")


@pytest.mark.parametrize("check,value,ok", [
    (dns1123_label, "web-1", True), (dns1123_label, "Web", False), (dns1123_label, "a.b", False),
    (dns1123_label, "-a", False), (dns1123_label, "a" * 64, False),
    (dns1123_subdomain, "a.b-c.d", True), (dns1123_subdomain, "a..b", False),
    (dns1123_subdomain, "a" * 254, False),
    (dns1035_label, "web", True), (dns1035_label, "1web", False),
    (qualified_name, "app", True), (qualified_name, "example.com/app_1.x", True),
    (qualified_name, "/app", False), (qualified_name, "a/b/c", False),
    (qualified_name, "Example.com/app", False), (qualified_name, "x" * 64, False),
    (label_value, "", True), (label_value, "v1.2_3", True), (label_value, "-x", False),
    (iana_port_name, "http", True), (iana_port_name, "http--x", False),
    (iana_port_name, "8080", False), (iana_port_name, "a" * 16, False),
])
def test_name_syntaxes(check: Callable[[str], list[str]], value: str, ok: bool) -> None:
    assert (check(value) == []) is ok


def _stored(kind: str, obj: Obj) -> Obj:
    return strategy.prepare_for_create(REGISTRY.lookup(kind), obj, uid="u-1", now=1.7e9)


UPDATES: list[tuple[str, str, Obj, Callable[[Obj], object], list[tuple[str, FieldErrorType]]]] = [
    ("deployment selector is immutable", "deployments", deployment("d"),
     lambda o: (_spec(o).update(selector={"matchLabels": {"app": "web", "v": "2"}}),
                o["spec"]["template"]["metadata"]["labels"].update(v="2")),
     [("spec.selector", T.IMMUTABLE)]),
    ("job template is immutable", "jobs", job(),
     lambda o: _tspec(o).update(restartPolicy="OnFailure"), [("spec.template", T.IMMUTABLE)]),
    ("pod image may change", "pods", pod("p"), lambda o: _container(o).update(image="busybox:2"),
     []),
    ("pod node may be set once", "pods", pod("p"), lambda o: _spec(o).update(nodeName="n1"), []),
    ("pod node may not move", "pods", pod("p", nodeName="n1"),
     lambda o: _spec(o).update(nodeName="n2"), [("spec.nodeName", T.IMMUTABLE)]),
    ("pod other spec fields are fixed", "pods", pod("p"),
     lambda o: _container(o).update(command=["sh"]), [("spec", T.FORBIDDEN)]),
    ("service cluster IP is immutable", "services", service(clusterIP="10.0.0.1"),
     lambda o: _spec(o).update(clusterIP="10.0.0.2"), [("spec.clusterIP", T.IMMUTABLE)]),
    ("immutable configmap keeps its data", "configmaps",
     simple("configmaps", data={"a": "1"}, immutable=True), lambda o: o["data"].update(a="2"),
     [("data", T.FORBIDDEN)]),
    ("no new finalizer while deleting", "configmaps",
     edit(simple("configmaps"), lambda o: o["metadata"].update(finalizers=["a.io/x"])),
     lambda o: o["metadata"].update(finalizers=["a.io/x", "a.io/y"]),
     [("metadata.finalizers[1]", T.FORBIDDEN)]),
]


@pytest.mark.parametrize("kind,obj,change,expected", [u[1:] for u in UPDATES],
                         ids=[u[0] for u in UPDATES])
def test_update_rules(kind: str, obj: Obj, change: Callable[[Obj], object],
                      expected: list[tuple[str, FieldErrorType]]) -> None:
    k = REGISTRY.lookup(kind)
    old = _stored(kind, obj)
    if "finalizers" in old["metadata"]:
        old["metadata"]["deletionTimestamp"] = "2023-11-14T22:13:20Z"
    new = edit(old, change)
    try:
        strategy.prepare_for_update(k, new, old)
        found: list[tuple[str, FieldErrorType]] = []
    except Invalid as e:
        found = [(c.field, c.type) for c in e.causes]
    assert found == expected


@pytest.mark.parametrize(("schedule", "reason"), [
    ("*/5 * * * *", None), ("@hourly", None), ("@every 5m", "unknown macro"),
    ("* * * *", "expected exactly 5 fields, found 4")])
def test_cron_schedules_are_the_five_field_form_or_a_known_macro(
        schedule: str, reason: str | None) -> None:
    from controllers.api.workload_validation import validate_cron_schedule

    assert validate_cron_schedule(schedule) == reason
