"""Node and pod objects for the scheduler's tests, as plain dicts (helpers; no tests here)."""

from __future__ import annotations

from typing import Any


def make_node(name: str, *, cpu: str | None = "4", memory: str | None = "8Gi",
              pods: int | None = 110, labels: dict[str, str] | None = None,
              taints: list[dict[str, str]] | None = None, ready: str | None = "True",
              unschedulable: bool = False, extra: dict[str, str] | None = None) -> dict[str, Any]:
    """A node offering ``cpu``, ``memory`` and ``pods`` (None leaves one out)."""
    allocatable: dict[str, Any] = {}
    if cpu is not None:
        allocatable["cpu"] = cpu
    if memory is not None:
        allocatable["memory"] = memory
    if pods is not None:
        allocatable["pods"] = str(pods)
    allocatable.update(extra or {})
    node: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": dict(labels or {})},
        "spec": {},
        "status": {"capacity": dict(allocatable), "allocatable": allocatable,
                   "conditions": []},
    }
    if taints:
        node["spec"]["taints"] = taints
    if unschedulable:
        node["spec"]["unschedulable"] = True
    if ready is not None:
        node["status"]["conditions"].append({"type": "Ready", "status": ready})
    return node


def make_pod(name: str, *, namespace: str = "default", cpu: str | None = None,
             memory: str | None = None, priority: int | None = None,
             node_selector: dict[str, str] | None = None,
             affinity: dict[str, Any] | None = None,
             tolerations: list[dict[str, Any]] | None = None,
             host_ports: list[int] | None = None, owner_uid: str | None = None,
             node_name: str | None = None, scheduler_name: str | None = None,
             labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A one-container pod with the requests and scheduling constraints given."""
    requests: dict[str, str] = {}
    if cpu is not None:
        requests["cpu"] = cpu
    if memory is not None:
        requests["memory"] = memory
    container: dict[str, Any] = {"name": "main", "image": "busybox:1.36"}
    if requests:
        container["resources"] = {"requests": requests}
    if host_ports:
        container["ports"] = [{"containerPort": p, "hostPort": p} for p in host_ports]
    spec: dict[str, Any] = {"containers": [container]}
    if priority is not None:
        spec["priority"] = priority
    if node_selector is not None:
        spec["nodeSelector"] = node_selector
    if affinity is not None:
        spec["affinity"] = {"nodeAffinity": affinity}
    if tolerations is not None:
        spec["tolerations"] = tolerations
    if node_name is not None:
        spec["nodeName"] = node_name
    if scheduler_name is not None:
        spec["schedulerName"] = scheduler_name
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels or {})}
    if owner_uid is not None:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                    "name": "rs", "uid": owner_uid, "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
