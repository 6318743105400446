"""The Endpoints controller's decisions, as pure functions: who is listed, where, on which ports."""

from __future__ import annotations

from typing import Any

import pytest

from controllers.builtin.endpoints import (
    CONTROLLER_NAME,
    HEADLESS_LABEL,
    MANAGED_BY_LABEL,
    desired_labels,
    desired_subsets,
    endpoint_address,
    find_port,
    pod_ip,
    repack_subsets,
    should_pod_be_in_endpoints,
    truncate_subsets,
)
from controllers.informers.store import freeze


def pod(name: str, ip: str = "", *, ready: bool = True, phase: str = "Running",
        deleting: bool = False, ports: list[dict[str, Any]] | None = None,
        node: str = "n1", **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default", "uid": f"uid-{name}",
                            "labels": {"app": "web"}}
    if deleting:
        meta["deletionTimestamp"] = "2023-11-14T22:13:20Z"
    status: dict[str, Any] = {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}
    if ip:
        status["podIP"] = ip
    container: dict[str, Any] = {"name": "main", "image": "nginx"}
    if ports is not None:
        container["ports"] = ports
    return {"metadata": meta, "spec": {"nodeName": node, "containers": [container], **spec},
            "status": status}


def service(ports: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"selector": {"app": "web"}, "clusterIP": "10.96.0.10",
                            "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]
                            if ports is None else ports}
    body.update(spec)
    return {"metadata": {"name": "web", "namespace": "default", "labels": {"tier": "fe"}},
            "spec": body}


def ref(name: str) -> dict[str, Any]:
    return {"kind": "Pod", "namespace": "default", "name": name, "uid": f"uid-{name}"}


def addr(name: str, ip: str, node: str = "n1") -> dict[str, Any]:
    return {"ip": ip, "nodeName": node, "targetRef": ref(name)}


@pytest.mark.parametrize(("p", "include_terminating", "want"), [
    (pod("a", "10.0.0.1"), False, True),
    (pod("a", "10.0.0.1", ready=False), False, True),       # listed, as not ready
    (pod("a"), False, False),                               # no IP yet
    (pod("a", "10.0.0.1", phase="Succeeded"), True, False),  # finished
    (pod("a", "10.0.0.1", phase="Failed"), True, False),
    (pod("a", "10.0.0.1", deleting=True), False, False),     # terminating
    (pod("a", "10.0.0.1", deleting=True), True, True),       # published anyway
])
def test_which_pods_are_listed(p: dict[str, Any], include_terminating: bool, want: bool) -> None:
    assert should_pod_be_in_endpoints(p, include_terminating) is want


def test_pod_ip_falls_back_to_pod_ips() -> None:
    p = pod("a")
    p["status"]["podIPs"] = [{"ip": "10.0.0.9"}]
    assert pod_ip(p) == "10.0.0.9"
    assert pod_ip(pod("b")) == ""


def test_find_port_by_number_and_by_name_and_protocol() -> None:
    p = pod("a", "10.0.0.1", ports=[{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                                    {"name": "dns", "containerPort": 53, "protocol": "UDP"}])
    assert find_port(p, {"port": 80, "targetPort": 9090}) == 9090
    assert find_port(p, {"port": 80}) == 80
    assert find_port(p, {"port": 80, "targetPort": "http"}) == 8080
    assert find_port(p, {"port": 80, "targetPort": "http", "protocol": "UDP"}) is None
    assert find_port(p, {"port": 53, "targetPort": "dns", "protocol": "UDP"}) == 53
    assert find_port(p, {"port": 80, "targetPort": "metrics"}) is None


def test_address_carries_node_target_and_hostname_for_its_subdomain() -> None:
    plain = endpoint_address(pod("a", "10.0.0.1"), service())
    assert plain == addr("a", "10.0.0.1")
    named = endpoint_address(pod("a", "10.0.0.1", hostname="a0", subdomain="web"), service())
    assert named["hostname"] == "a0"
    other = endpoint_address(pod("a", "10.0.0.1", hostname="a0", subdomain="db"), service())
    assert "hostname" not in other


def test_ready_and_not_ready_pods_share_a_subset_sorted_by_address() -> None:
    pods = [pod("c", "10.0.0.10"), pod("a", "10.0.0.9"), pod("b", "10.0.0.2", ready=False),
            pod("d"), pod("e", "10.0.0.3", deleting=True)]
    assert desired_subsets(service(), freeze(pods)) == [{
        "addresses": [addr("a", "10.0.0.9"), addr("c", "10.0.0.10")],
        "notReadyAddresses": [addr("b", "10.0.0.2")],
        "ports": [{"port": 8080, "protocol": "TCP"}],
    }]


def test_publish_not_ready_addresses_lists_every_pod_as_ready() -> None:
    pods = [pod("a", "10.0.0.1", ready=False), pod("b", "10.0.0.2", deleting=True)]
    subsets = desired_subsets(service(publishNotReadyAddresses=True), pods)
    assert subsets == [{"addresses": [addr("a", "10.0.0.1"), addr("b", "10.0.0.2")],
                        "ports": [{"port": 8080, "protocol": "TCP"}]}]


def test_named_target_ports_split_pods_by_the_ports_they_offer() -> None:
    ports = [{"name": "web", "port": 80, "targetPort": "http", "protocol": "TCP"},
             {"name": "metrics", "port": 9100, "targetPort": 9100, "protocol": "TCP",
              "appProtocol": "http"}]
    pods = [pod("new", "10.0.0.1", ports=[{"name": "http", "containerPort": 8081}]),
            pod("old", "10.0.0.2", ports=[{"name": "http", "containerPort": 8080}]),
            pod("bare", "10.0.0.3")]
    metrics = {"name": "metrics", "port": 9100, "protocol": "TCP", "appProtocol": "http"}
    assert desired_subsets(service(ports), pods) == [
        {"addresses": [addr("bare", "10.0.0.3")], "ports": [metrics]},
        {"addresses": [addr("old", "10.0.0.2")],
         "ports": [metrics, {"name": "web", "port": 8080, "protocol": "TCP"}]},
        {"addresses": [addr("new", "10.0.0.1")],
         "ports": [metrics, {"name": "web", "port": 8081, "protocol": "TCP"}]},
    ]


def test_portless_services_list_pods_only_when_headless() -> None:
    pods = [pod("a", "10.0.0.1"), pod("b", "10.0.0.2", ready=False)]
    assert desired_subsets(service([], clusterIP="None"), pods) == [
        {"addresses": [addr("a", "10.0.0.1")], "notReadyAddresses": [addr("b", "10.0.0.2")]}]
    assert desired_subsets(service([]), pods) == []


def test_repack_is_independent_of_input_order() -> None:
    port = {"port": 80, "protocol": "TCP"}
    entries = [(addr(n, f"10.0.0.{i}"), dict(port), i % 2 == 0) for i, n in enumerate("abcdef")]
    assert repack_subsets(entries) == repack_subsets(list(reversed(entries)))


def many(n: int, prefix: str, ready: bool) -> list[dict[str, Any]]:
    return [addr(f"{prefix}{i}", f"10.{int(ready)}.{i // 250}.{i % 250}") for i in range(n)]


def test_truncation_cuts_not_ready_addresses_first() -> None:
    subsets = [{"addresses": many(3, "r", True), "notReadyAddresses": many(4, "n", False),
                "ports": [{"port": 80}]}]
    assert truncate_subsets(subsets, 7) == (subsets, False)
    cut, truncated = truncate_subsets(subsets, 5)
    assert truncated
    assert cut[0]["addresses"] == subsets[0]["addresses"]
    assert cut[0]["notReadyAddresses"] == subsets[0]["notReadyAddresses"][:2]


def test_truncation_of_ready_addresses_keeps_each_subsets_share() -> None:
    subsets = [{"addresses": many(6, "a", True), "ports": [{"port": 80}]},
               {"addresses": many(2, "b", False), "notReadyAddresses": many(3, "c", True),
                "ports": [{"port": 81}]}]
    cut, truncated = truncate_subsets(subsets, 4)
    assert truncated
    assert [len(s.get("addresses", [])) for s in cut] == [3, 1]
    assert all("notReadyAddresses" not in s for s in cut)


def test_labels_copy_the_service_and_mark_the_controller_and_headless() -> None:
    assert desired_labels(service()) == {"tier": "fe", MANAGED_BY_LABEL: CONTROLLER_NAME}
    assert desired_labels(service(clusterIP="None")) == {
        "tier": "fe", MANAGED_BY_LABEL: CONTROLLER_NAME, HEADLESS_LABEL: ""}
