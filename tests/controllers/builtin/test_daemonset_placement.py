"""Which nodes should run a daemon pod, and what one node needs: pure decisions."""

from __future__ import annotations

from typing import Any

import pytest

from controllers.api.objects import Obj, format_timestamp
from controllers.builtin.daemonset.placement import (
    CONTROLLER_REVISION_HASH_LABEL,
    NodeActions,
    Placement,
    add_daemon_pod_tolerations,
    daemon_pod_template,
    pin_to_node,
    pod_order_key,
    pods_should_be_on_node,
    should_run_daemon_pod,
    target_node_name,
)
from controllers.builtin.scheduler.nodeaffinity import parse_node_affinity
from controllers.informers.store import freeze

T0 = 1_700_000_000.0


def node(name: str, *, labels: dict[str, str] | None = None,
         taints: list[dict[str, str]] | None = None, unschedulable: bool = False) -> Obj:
    spec: Obj = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec}


def ds(**pod_spec: Any) -> Obj:
    return {"metadata": {"name": "agent", "namespace": "default", "uid": "ds-uid"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     "template": {"metadata": {"labels": {"app": "agent"}},
                                  "spec": {"containers": [{"name": "c", "image": "a"}],
                                           **pod_spec}}}}


def pod(name: str, *, node_name: str = "", phase: str = "Running", created: float = T0,
        hash_: str = "h1", ready: bool = True, deleting: bool = False,
        ready_since: float = T0) -> Obj:
    meta: Obj = {"name": name, "namespace": "default",
                 "creationTimestamp": format_timestamp(created),
                 "labels": {"app": "agent", CONTROLLER_REVISION_HASH_LABEL: hash_}}
    if deleting:
        meta["deletionTimestamp"] = format_timestamp(created + 1)
    status: Obj = {"phase": phase}
    if ready:
        status["conditions"] = [{"type": "Ready", "status": "True",
                                 "lastTransitionTime": format_timestamp(ready_since)}]
    spec: Obj = {"containers": []}
    if node_name:
        spec["nodeName"] = node_name
    return {"metadata": meta, "spec": spec, "status": status}


# -- tolerations and templates -------------------------------------------------------------
def test_daemon_pods_get_the_automatic_tolerations_once() -> None:
    spec: Obj = {"tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                  "effect": "NoExecute", "tolerationSeconds": 30},
                                 {"key": "mine", "operator": "Exists"}]}
    add_daemon_pod_tolerations(spec)
    add_daemon_pod_tolerations(spec)
    keys = [(t["key"], t.get("effect")) for t in spec["tolerations"]]
    assert keys == [("node.kubernetes.io/not-ready", "NoExecute"), ("mine", None),
                    ("node.kubernetes.io/unreachable", "NoExecute"),
                    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
                    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
                    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
                    ("node.kubernetes.io/unschedulable", "NoSchedule")]
    # A matching toleration is replaced by the automatic one (no tolerationSeconds).
    assert "tolerationSeconds" not in spec["tolerations"][0]


def test_host_network_pods_also_tolerate_network_unavailable() -> None:
    spec: Obj = {"hostNetwork": True}
    add_daemon_pod_tolerations(spec)
    assert {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
            "effect": "NoSchedule"} in spec["tolerations"]
    plain: Obj = {}
    add_daemon_pod_tolerations(plain)
    assert all(t["key"] != "node.kubernetes.io/network-unavailable"
               for t in plain["tolerations"])


def test_template_gets_hash_label_and_leaves_the_original_alone() -> None:
    original = freeze(ds()["spec"]["template"])
    made = daemon_pod_template(original, "abc")
    assert made["metadata"]["labels"] == {"app": "agent", CONTROLLER_REVISION_HASH_LABEL: "abc"}
    assert len(made["spec"]["tolerations"]) == 6
    assert "tolerations" not in original["spec"]


def test_pinning_replaces_required_terms_and_keeps_preferences() -> None:
    template = ds(affinity={"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 1, "preference": {"matchExpressions": [
                {"key": "disk", "operator": "Exists"}]}}]}})["spec"]["template"]
    pinned = pin_to_node(template, "n2")
    affinity = pinned["spec"]["affinity"]["nodeAffinity"]
    assert affinity["requiredDuringSchedulingIgnoredDuringExecution"] == {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}]}
    assert affinity["preferredDuringSchedulingIgnoredDuringExecution"]
    assert target_node_name(pinned) == "n2"
    # The scheduler's node affinity accepts only that node.
    parsed = parse_node_affinity(pinned)
    assert parsed.matches({}, "n2") and not parsed.matches({"zone": "a"}, "n1")
    assert pin_to_node({"spec": {}}, "n1")["spec"]["affinity"]["nodeAffinity"]


def test_target_node_prefers_node_name_then_pinning_then_none() -> None:
    assert target_node_name(pod("p", node_name="n1")) == "n1"
    assert target_node_name(pin_to_node(pod("p"), "n3")) == "n3"
    assert target_node_name(pod("p")) is None
    two = pin_to_node(pod("p"), "n3")
    two["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"][0]["matchFields"][0]["values"] = ["a", "b"]
    assert target_node_name(two) is None


# -- which nodes ----------------------------------------------------------------------------
RUN, STAY, NEVER = Placement(True, True), Placement(False, True), Placement(False, False)


@pytest.mark.parametrize(("the_node", "pod_spec", "want"), [
    (node("n"), {}, RUN),
    (node("n", labels={"disk": "ssd"}), {"nodeSelector": {"disk": "ssd"}}, RUN),
    (node("n", labels={"disk": "hdd"}), {"nodeSelector": {"disk": "ssd"}}, NEVER),
    (node("n"), {"nodeSelector": {"disk": "ssd"}}, NEVER),
    (node("n", labels={"zone": "b"}),
     {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
         "nodeSelectorTerms": [{"matchExpressions": [
             {"key": "zone", "operator": "In", "values": ["a"]}]}]}}}}, NEVER),
    (node("n", labels={"zone": "a"}),
     {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
         "nodeSelectorTerms": [{"matchExpressions": [
             {"key": "zone", "operator": "In", "values": ["a"]}]}]}}}}, RUN),
    (node("n"), {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                                               {"nodeSelectorTerms": [{"matchFields": [
                                                   {"key": "metadata.name", "operator": "In",
                                                    "values": ["other"]}]}]}}}}, NEVER),
    (node("n"), {"nodeName": "other"}, NEVER),
    (node("n"), {"nodeName": "n"}, RUN),
    # Taints: NoSchedule keeps new pods away but lets running ones stay; NoExecute evicts.
    (node("n", taints=[{"key": "gpu", "effect": "NoSchedule"}]), {}, STAY),
    (node("n", taints=[{"key": "gpu", "effect": "NoExecute"}]), {}, NEVER),
    (node("n", taints=[{"key": "gpu", "effect": "PreferNoSchedule"}]), {}, RUN),
    (node("n", taints=[{"key": "gpu", "value": "x", "effect": "NoExecute"}]),
     {"tolerations": [{"key": "gpu", "operator": "Equal", "value": "x"}]}, RUN),
    (node("n", taints=[{"key": "gpu", "value": "y", "effect": "NoExecute"}]),
     {"tolerations": [{"key": "gpu", "operator": "Equal", "value": "x"}]}, NEVER),
    (node("n", taints=[{"key": "gpu", "effect": "NoSchedule"},
                       {"key": "gpu2", "effect": "NoExecute"}]),
     {"tolerations": [{"key": "gpu2", "operator": "Exists"}]}, STAY),
    # The automatic tolerations: cordoned, not ready, unreachable, under pressure.
    (node("n", unschedulable=True,
          taints=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]), {}, RUN),
    (node("n", taints=[{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]), {},
     RUN),
    (node("n", taints=[{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]), {},
     RUN),
    (node("n", taints=[{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]), {},
     STAY),
    (node("n", taints=[{"key": "node.kubernetes.io/memory-pressure", "effect": "NoSchedule"},
                       {"key": "node.kubernetes.io/disk-pressure", "effect": "NoSchedule"},
                       {"key": "node.kubernetes.io/pid-pressure", "effect": "NoSchedule"}]),
     {}, RUN),
    (node("n", taints=[{"key": "node.kubernetes.io/network-unavailable",
                        "effect": "NoSchedule"}]), {}, STAY),
    (node("n", taints=[{"key": "node.kubernetes.io/network-unavailable",
                        "effect": "NoSchedule"}]), {"hostNetwork": True}, RUN),
])
def test_should_run_daemon_pod(the_node: Obj, pod_spec: Obj, want: Placement) -> None:
    assert should_run_daemon_pod(freeze(the_node), freeze(ds(**pod_spec))) == want


def test_cordoned_node_without_taint_still_runs_daemon_pods() -> None:
    assert should_run_daemon_pod(node("n", unschedulable=True), ds()) == RUN


# -- what one node needs ---------------------------------------------------------------------
def needs(placement: Placement, pods: list[Obj], *, surge: bool = False,
          min_ready: float = 0, now: float = T0 + 100) -> tuple[bool, list[str], list[str]]:
    got = pods_should_be_on_node(placement, [freeze(p) for p in pods], "h2",
                                 allows_surge=surge, min_ready_seconds=min_ready, now=now)
    return (got.create, [p["metadata"]["name"] for p in got.delete],
            [p["metadata"]["name"] for p in got.failed])


def test_missing_pod_is_created_only_where_it_should_run() -> None:
    assert needs(RUN, []) == (True, [], [])
    assert needs(STAY, []) == (False, [], [])
    assert needs(NEVER, []) == (False, [], [])
    assert pods_should_be_on_node(RUN, [], "h", allows_surge=False, min_ready_seconds=0,
                                  now=T0) == NodeActions(create=True)


def test_extra_pods_are_deleted_keeping_the_oldest_scheduled_one() -> None:
    pods = [pod("young", node_name="n", created=T0 + 5), pod("old", node_name="n", created=T0),
            pod("unscheduled", created=T0 - 10), pod("gone", node_name="n", deleting=True)]
    assert needs(RUN, pods) == (False, ["young", "unscheduled"], [])
    assert min(pods[:3], key=pod_order_key)["metadata"]["name"] == "old"


def test_failed_pods_go_to_back_off_and_succeeded_ones_are_deleted() -> None:
    pods = [pod("bad", node_name="n", phase="Failed"), pod("done", node_name="n",
                                                           phase="Succeeded")]
    assert needs(RUN, pods) == (False, ["done"], ["bad"])


def test_pods_where_they_may_not_stay_are_all_deleted() -> None:
    pods = [pod("a", node_name="n"), pod("b", node_name="n", deleting=True),
            pod("c", node_name="n", phase="Failed")]
    assert needs(NEVER, pods) == (False, ["a", "c"], [])
    assert needs(STAY, [pod("a", node_name="n")]) == (False, [], [])


def test_surge_keeps_an_old_ready_pod_until_the_new_one_is_available() -> None:
    old = pod("old", node_name="n", hash_="h1", created=T0)
    new = pod("new", node_name="n", hash_="h2", created=T0 + 10, ready_since=T0 + 20)
    extra_new = pod("new2", node_name="n", hash_="h2", created=T0 + 30)
    assert needs(RUN, [old, new], surge=True, min_ready=50, now=T0 + 30) == (False, [], [])
    assert needs(RUN, [old, new], surge=True, min_ready=5, now=T0 + 30) == (False, ["old"], [])
    assert needs(RUN, [old, new, extra_new], surge=True, min_ready=50,
                 now=T0 + 30) == (False, ["new2"], [])
    old_not_ready = pod("old", node_name="n", hash_="h1", ready=False)
    assert needs(RUN, [old_not_ready, new], surge=True, min_ready=50,
                 now=T0 + 30) == (False, ["old"], [])
    # Without surge two running pods never stay: the newer one goes.
    assert needs(RUN, [old, new]) == (False, ["new"], [])
