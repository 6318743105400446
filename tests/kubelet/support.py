"""Test support: an embedded store, a kubelet on a fake clock, and waiting for conditions.

The kubelet's timers run on a ``FakeClock`` that also serves as the
clientset's wall clock, so timestamps move with ``advance``. Store calls
and real processes take real time: ``eventually`` yields to the loop until
a condition holds, failing after ``DEADLINE`` real seconds.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from controllers.api import Clientset
from controllers.api.errors import NotFound
from controllers.clock import FakeClock
from kvstore.member import NodeOptions
from runtime.kubelet import Kubelet

__all__ = ["DEADLINE", "FAST", "WALL_START", "eventually", "make_kubelet", "pod", "pod_status"]

DEADLINE = 15.0
FAST = NodeOptions(tick_interval=0.01, unsafe_no_fsync=True)
WALL_START = 1_700_000_000.0


async def eventually(check: Callable[[], Any], what: str = "condition") -> Any:
    """Yield until ``check()`` returns something truthy; return it."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + DEADLINE
    while True:
        result = check()
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            result = await result
        if result:
            return result
        if loop.time() > give_up:
            raise AssertionError(f"{what} never came true")
        await asyncio.sleep(0.002)


def make_kubelet(kv: Any, root: Path, clock: FakeClock, name: str = "n1",
                 **kwargs: Any) -> Kubelet:
    api = Clientset(kv, clock=clock, rng=random.Random(name))
    kwargs.setdefault("simulated", True)
    kwargs.setdefault("capacity", {"cpu": "4", "memory": "8Gi", "pods": "110"})
    return Kubelet(api, name, root_dir=root, clock=clock, **kwargs)


def pod(name: str, *, node: str = "n1", containers: list[dict[str, Any]] | None = None,
        init: list[dict[str, Any]] | None = None, restart: str = "Always",
        annotations: dict[str, str] | None = None, grace: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "nodeName": node, "restartPolicy": restart,
        "containers": containers or [{"name": "c", "image": "busybox"}],
    }
    if init:
        spec["initContainers"] = init
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


async def pod_status(api: Clientset, name: str) -> dict[str, Any] | None:
    try:
        got = await api.resource("pods").get(name, "default")
    except NotFound:
        return None
    status: dict[str, Any] = got.get("status") or {}
    return status
