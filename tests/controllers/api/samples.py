"""Minimal valid objects for the object API tests."""

from __future__ import annotations

from typing import Any


def pod(name: str, *, labels: dict[str, str] | None = None, namespace: str = "default",
        **spec: Any) -> dict[str, Any]:
    """A minimal valid Pod."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels is not None:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}], **spec}}


def deployment(name: str, *, app: str = "web", replicas: int = 1) -> dict[str, Any]:
    """A minimal valid Deployment selecting ``app=<app>``."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]},
            },
        },
    }
