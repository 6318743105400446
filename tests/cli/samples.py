"""Objects for the command tests."""

from __future__ import annotations

from typing import Any


def pod(name: str, *, labels: dict[str, str] | None = None, node: str | None = None,
        containers: tuple[str, ...] = ("main",), namespace: str = "default") -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": c, "image": "busybox:1.36"}
                                           for c in containers]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "spec": spec}


def deployment(name: str, *, app: str = "web", replicas: int = 1,
               image: str = "nginx:1.25") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
    }


def replicaset(deploy: dict[str, Any], revision: int, image: str, *,
               cause: str | None = None, replicas: int = 0) -> dict[str, Any]:
    """A ReplicaSet of ``deploy`` (as stored, with its uid) at ``revision``."""
    app = deploy["spec"]["selector"]["matchLabels"]["app"]
    h = f"h{revision}"
    notes = {"deployment.kubernetes.io/revision": str(revision)}
    if cause:
        notes["kubernetes.io/change-cause"] = cause
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{deploy['metadata']['name']}-{h}", "namespace": "default",
            "labels": {"app": app, "pod-template-hash": h}, "annotations": notes,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                 "name": deploy["metadata"]["name"],
                                 "uid": deploy["metadata"]["uid"], "controller": True}],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app, "pod-template-hash": h}},
            "template": {
                "metadata": {"labels": {"app": app, "pod-template-hash": h}},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
    }


def node(name: str, *, address: str = "127.0.0.1", port: int = 10250) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"node-role.kubernetes.io/worker": ""}},
            "status": {"addresses": [{"type": "Hostname", "address": name},
                                     {"type": "InternalIP", "address": address}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
                       "conditions": [{"type": "Ready", "status": "True"}],
                       "nodeInfo": {"kubeletVersion": "v1.30.0"}}}
