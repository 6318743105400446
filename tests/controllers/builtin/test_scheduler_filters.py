"""Each built-in filter plugin, and the matching rules under them, as pure functions."""

from __future__ import annotations

from typing import Any

import pytest

from controllers.builtin.scheduler.filters import (
    ERR_NODE_AFFINITY,
    ERR_NODE_NAME,
    ERR_NODE_NOT_READY,
    ERR_NODE_PORTS,
    ERR_NODE_UNSCHEDULABLE,
    ERR_TOO_MANY_PODS,
    NodeAffinityFilter,
    NodeNameFilter,
    NodePortsFilter,
    NodeReadyFilter,
    NodeResourcesFitFilter,
    NodeUnschedulableFilter,
    TaintTolerationFilter,
)
from controllers.builtin.scheduler.framework import NodeInfo, PodInfo
from controllers.builtin.scheduler.resources import pod_requests
from controllers.builtin.scheduler.taints import Taint, Toleration, tolerates
from controllers.informers.store import freeze
from tests.controllers.builtin.scheduler_objects import make_node, make_pod


def info(pod: dict[str, Any]) -> PodInfo:
    return PodInfo.from_pod(freeze(pod))


def node_info(node: dict[str, Any], *pods: dict[str, Any]) -> NodeInfo:
    return NodeInfo.build(freeze(node), [info(p) for p in pods])


def reasons(plugin: Any, pod: dict[str, Any], node: NodeInfo) -> tuple[str, ...]:
    status = plugin.filter(info(pod), node)
    assert status.is_success == (not status.reasons)
    return tuple(status.reasons)


# -- resources -------------------------------------------------------------------------

def test_requests_sum_containers_take_the_largest_init_container_and_add_overhead() -> None:
    pod = make_pod("p")
    pod["spec"]["containers"] = [
        {"name": "a", "image": "x", "resources": {"requests": {"cpu": "100m", "memory": "1Gi"}}},
        {"name": "b", "image": "x", "resources": {"limits": {"cpu": "200m"}}},  # limit only
    ]
    pod["spec"]["initContainers"] = [
        {"name": "i1", "image": "x", "resources": {"requests": {"cpu": "1", "memory": "10Mi"}}},
        {"name": "i2", "image": "x", "resources": {"requests": {"memory": "2Gi"}}},
    ]
    pod["spec"]["overhead"] = {"cpu": "10m"}
    assert pod_requests(pod) == {"cpu": 1010, "memory": 2 * 1024 ** 3}


def test_sidecar_init_containers_add_to_the_sum_and_to_later_init_containers() -> None:
    pod = make_pod("p", cpu="100m")
    pod["spec"]["initContainers"] = [
        {"name": "side", "image": "x", "restartPolicy": "Always",
         "resources": {"requests": {"cpu": "50m"}}},
        {"name": "init", "image": "x", "resources": {"requests": {"cpu": "500m"}}},
    ]
    # Containers 100m + sidecar 50m = 150m; the init step runs 500m + 50m = 550m.
    assert pod_requests(pod) == {"cpu": 550}


def test_non_zero_defaults_apply_per_container_without_a_request() -> None:
    pod = make_pod("p", cpu="300m")
    pod["spec"]["containers"].append({"name": "b", "image": "x"})
    p = info(pod)
    assert p.requests == {"cpu": 300}
    assert p.non_zero_requests == {"cpu": 400, "memory": 2 * 200 * 1024 ** 2}


def test_a_node_without_allocatable_offers_its_capacity() -> None:
    node = make_node("n", cpu="2")
    del node["status"]["allocatable"]
    assert node_info(node).allocatable == {"cpu": 2000, "memory": 8 * 1024 ** 3, "pods": 110}


# -- NodeResourcesFit -------------------------------------------------------------------

def test_resources_fit_counts_what_the_node_already_runs() -> None:
    node = node_info(make_node("n", cpu="1", memory="1Gi"),
                     make_pod("a", cpu="600m", memory="512Mi"))
    fit = NodeResourcesFitFilter()
    assert reasons(fit, make_pod("b", cpu="400m", memory="512Mi"), node) == ()
    assert reasons(fit, make_pod("b", cpu="401m"), node) == ("Insufficient cpu",)
    assert reasons(fit, make_pod("b", cpu="2", memory="1Gi"), node) == (
        "Insufficient cpu", "Insufficient memory")


def test_resources_fit_checks_the_pod_count_and_extended_resources() -> None:
    fit = NodeResourcesFitFilter()
    full = node_info(make_node("n", pods=1), make_pod("a"))
    assert reasons(fit, make_pod("b"), full) == (ERR_TOO_MANY_PODS,)
    gpu = make_pod("g")
    gpu["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": "1"}}
    assert reasons(fit, gpu, node_info(make_node("n"))) == ("Insufficient nvidia.com/gpu",)
    assert reasons(fit, gpu, node_info(make_node("n", extra={"nvidia.com/gpu": "1"}))) == ()


def test_a_pod_without_requests_fits_while_there_is_room_for_a_pod() -> None:
    node = node_info(make_node("n", cpu="0", memory="0", pods=2), make_pod("a"))
    assert reasons(NodeResourcesFitFilter(), make_pod("b"), node) == ()


def test_removing_a_pod_gives_its_resources_back() -> None:
    node = node_info(make_node("n", cpu="1"), make_pod("a", cpu="1"))
    fit = NodeResourcesFitFilter()
    assert reasons(fit, make_pod("b", cpu="500m"), node) == ("Insufficient cpu",)
    assert node.remove_pod("default/a") is not None
    assert node.remove_pod("default/a") is None
    assert reasons(fit, make_pod("b", cpu="500m"), node) == ()
    assert node.requested == {} and node.pod_count == 0


# -- NodeName, NodeUnschedulable, NodeReady ---------------------------------------------

def test_node_name_must_match_when_given() -> None:
    plugin, node = NodeNameFilter(), node_info(make_node("n1"))
    assert reasons(plugin, make_pod("p"), node) == ()
    assert reasons(plugin, make_pod("p", node_name="n1"), node) == ()
    assert reasons(plugin, make_pod("p", node_name="n2"), node) == (ERR_NODE_NAME,)


def test_cordoned_nodes_take_only_pods_tolerating_it() -> None:
    plugin = NodeUnschedulableFilter()
    cordoned = node_info(make_node("n", unschedulable=True))
    assert reasons(plugin, make_pod("p"), cordoned) == (ERR_NODE_UNSCHEDULABLE,)
    tolerant = make_pod("p", tolerations=[{"key": "node.kubernetes.io/unschedulable",
                                          "operator": "Exists", "effect": "NoSchedule"}])
    assert reasons(plugin, tolerant, cordoned) == ()
    assert reasons(plugin, make_pod("p"), node_info(make_node("n"))) == ()


@pytest.mark.parametrize("ready, toleration, ok", [
    ("True", None, True),
    ("False", None, False),
    ("Unknown", None, False),
    (None, None, False),  # no Ready condition at all: not ready
    ("False", "node.kubernetes.io/not-ready", True),
    ("Unknown", "node.kubernetes.io/unreachable", True),
    ("Unknown", "node.kubernetes.io/not-ready", False),
])
def test_nodes_that_are_not_ready_are_filtered(ready: str | None, toleration: str | None,
                                               ok: bool) -> None:
    tolerations = [{"key": toleration, "operator": "Exists"}] if toleration else None
    pod = make_pod("p", tolerations=tolerations)
    got = reasons(NodeReadyFilter(), pod, node_info(make_node("n", ready=ready)))
    assert got == (() if ok else (ERR_NODE_NOT_READY,))


# -- TaintToleration ------------------------------------------------------------------------

@pytest.mark.parametrize("toleration, taint, ok", [
    (Toleration("k", "Equal", "v", "NoSchedule"), Taint("k", "v", "NoSchedule"), True),
    (Toleration("k", "Equal", "v"), Taint("k", "v", "NoExecute"), True),  # any effect
    (Toleration("k", "Equal", "w"), Taint("k", "v"), False),
    (Toleration("k", "Exists"), Taint("k", "anything"), True),
    (Toleration("", "Exists"), Taint("any-key", "v", "NoExecute"), True),
    (Toleration("", "Exists", effect="NoSchedule"), Taint("k", "v", "NoExecute"), False),
    (Toleration("other", "Exists"), Taint("k"), False),
    (Toleration("k", "Equal", "", "NoSchedule"), Taint("k", "", "NoSchedule"), True),
    (Toleration("k", "Bogus", "v"), Taint("k", "v"), False),
])
def test_toleration_matching(toleration: Toleration, taint: Taint, ok: bool) -> None:
    assert tolerates(toleration, taint) is ok


def test_untolerated_no_schedule_and_no_execute_taints_filter_and_are_named() -> None:
    plugin = TaintTolerationFilter()
    node = node_info(make_node("n", taints=[
        {"key": "soft", "value": "x", "effect": "PreferNoSchedule"},
        {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
        {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]))
    assert reasons(plugin, make_pod("p"), node) == (
        "node(s) had untolerated taint {node.kubernetes.io/unreachable: }",)
    partly = make_pod("p", tolerations=[{"key": "node.kubernetes.io/unreachable",
                                         "operator": "Exists", "effect": "NoExecute"}])
    assert reasons(plugin, partly, node) == ("node(s) had untolerated taint {dedicated: gpu}",)
    both = make_pod("p", tolerations=[
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists"},
        {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}])
    assert reasons(plugin, both, node) == ()  # PreferNoSchedule never filters
    assert reasons(plugin, make_pod("p", tolerations=[{"operator": "Exists"}]), node) == ()


# -- NodeAffinity ---------------------------------------------------------------------------

def _required(*terms: dict[str, Any]) -> dict[str, Any]:
    return {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}


def _expr(key: str, op: str, *values: str) -> dict[str, Any]:
    found: dict[str, Any] = {"key": key, "operator": op}
    if values:
        found["values"] = list(values)
    return found


LABELS = {"zone": "a", "disk": "ssd", "cores": "16"}


@pytest.mark.parametrize("affinity, ok", [
    (_required({"matchExpressions": [_expr("zone", "In", "a", "b")]}), True),
    (_required({"matchExpressions": [_expr("zone", "In", "b")]}), False),
    (_required({"matchExpressions": [_expr("zone", "NotIn", "b")]}), True),
    (_required({"matchExpressions": [_expr("missing", "NotIn", "b")]}), True),
    (_required({"matchExpressions": [_expr("zone", "NotIn", "a")]}), False),
    (_required({"matchExpressions": [_expr("disk", "Exists")]}), True),
    (_required({"matchExpressions": [_expr("gpu", "Exists")]}), False),
    (_required({"matchExpressions": [_expr("gpu", "DoesNotExist")]}), True),
    (_required({"matchExpressions": [_expr("disk", "DoesNotExist")]}), False),
    (_required({"matchExpressions": [_expr("cores", "Gt", "8")]}), True),
    (_required({"matchExpressions": [_expr("cores", "Gt", "16")]}), False),
    (_required({"matchExpressions": [_expr("cores", "Lt", "32")]}), True),
    (_required({"matchExpressions": [_expr("cores", "Lt", "16")]}), False),
    (_required({"matchExpressions": [_expr("zone", "Gt", "1")]}), False),  # not a number
    (_required({"matchExpressions": [_expr("cores", "Gt", "1", "2")]}), False),
    (_required({"matchExpressions": [_expr("zone", "Bogus", "a")]}), False),
    # Expressions within a term are ANDed, terms are ORed.
    (_required({"matchExpressions": [_expr("zone", "In", "a"), _expr("disk", "In", "hdd")]}),
     False),
    (_required({"matchExpressions": [_expr("zone", "In", "z")]},
               {"matchExpressions": [_expr("disk", "In", "ssd")]}), True),
    (_required({"matchFields": [_expr("metadata.name", "In", "n1")]}), True),
    (_required({"matchFields": [_expr("metadata.name", "In", "n2")]}), False),
    (_required({"matchFields": [_expr("metadata.name", "NotIn", "n2")]}), True),
    (_required({}), False),  # an empty term matches nothing
    (_required(), False),  # so does an empty list of terms
    ({"preferredDuringSchedulingIgnoredDuringExecution": []}, True),  # nothing required
])
def test_required_node_affinity(affinity: dict[str, Any], ok: bool) -> None:
    node = node_info(make_node("n1", labels=LABELS))
    got = reasons(NodeAffinityFilter(), make_pod("p", affinity=affinity), node)
    assert got == (() if ok else (ERR_NODE_AFFINITY,))


def test_node_selector_needs_every_label_and_combines_with_affinity() -> None:
    plugin, node = NodeAffinityFilter(), node_info(make_node("n1", labels=LABELS))
    assert reasons(plugin, make_pod("p", node_selector={"zone": "a", "disk": "ssd"}), node) == ()
    assert reasons(plugin, make_pod("p", node_selector={"zone": "a", "disk": "hdd"}),
                   node) == (ERR_NODE_AFFINITY,)
    both = make_pod("p", node_selector={"zone": "a"},
                    affinity=_required({"matchExpressions": [_expr("disk", "In", "hdd")]}))
    assert reasons(plugin, both, node) == (ERR_NODE_AFFINITY,)


# -- NodePorts ------------------------------------------------------------------------------

def test_host_ports_conflict_by_protocol_port_and_ip() -> None:
    plugin = NodePortsFilter()
    node = node_info(make_node("n"), make_pod("a", host_ports=[8080]))
    assert reasons(plugin, make_pod("b", host_ports=[8080]), node) == (ERR_NODE_PORTS,)
    assert reasons(plugin, make_pod("b", host_ports=[8081]), node) == ()
    assert reasons(plugin, make_pod("b"), node) == ()
    udp = make_pod("b", host_ports=[8080])
    udp["spec"]["containers"][0]["ports"][0]["protocol"] = "UDP"
    assert reasons(plugin, udp, node) == ()
    on_ip = make_pod("c", host_ports=[9090])
    on_ip["spec"]["containers"][0]["ports"][0]["hostIP"] = "10.0.0.1"
    node.add_pod(info(on_ip))
    other_ip = make_pod("d", host_ports=[9090])
    other_ip["spec"]["containers"][0]["ports"][0]["hostIP"] = "10.0.0.2"
    assert reasons(plugin, other_ip, node) == ()
    assert reasons(plugin, make_pod("e", host_ports=[9090]), node) == (ERR_NODE_PORTS,)  # 0.0.0.0
    node.remove_pod("default/a")
    assert reasons(plugin, make_pod("b", host_ports=[8080]), node) == ()


def test_host_network_pods_bind_their_container_ports() -> None:
    plugin = NodePortsFilter()
    host = make_pod("a")
    host["spec"]["hostNetwork"] = True
    host["spec"]["containers"][0]["ports"] = [{"containerPort": 53, "protocol": "UDP"}]
    node = node_info(make_node("n"), host)
    dns = make_pod("b", host_ports=[53])
    dns["spec"]["containers"][0]["ports"][0]["protocol"] = "UDP"
    assert reasons(plugin, dns, node) == (ERR_NODE_PORTS,)
