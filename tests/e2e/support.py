"""Driving a three-member cluster of real processes through `steer`, and waiting on it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from click.testing import CliRunner, Result

import kvstore
from controllers.api import Clientset
from runtime.cli import steer
from runtime.cluster import LocalCluster

__all__ = ["MEMBER_ARGS", "Steer", "eventually"]

# Short timings: leases of 3 s, node heartbeats every 0.5 s, NotReady after 5 s,
# pods evicted 1 s after their node became unreachable.
MEMBER_ARGS = ["--tick-interval", "0.05", "--election-ticks", "10",
               "--leader-lease-duration", "3", "--node-heartbeat-interval", "0.5",
               "--node-grace-period", "5", "--pod-eviction-timeout", "1"]

class Steer:
    """`steer` commands run in-process against the cluster's folder."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.runner = CliRunner(env={"STEER_ENDPOINTS": ""})
        self.base = ["--data-dir", str(cluster.data_dir)]
        cluster_file = cluster.load()
        assert cluster_file is not None
        self.endpoints = [m.client for m in cluster_file.members]

    def __call__(self, *args: str, input: str | None = None) -> Result:
        r = self.runner.invoke(steer, [*self.base, *args], input=input)
        assert r.exit_code == 0, f"steer {' '.join(args)}: {r.stdout}{r.stderr}"
        return r

    def read(self, fn: Callable[[Clientset], Any]) -> Any:
        async def go() -> Any:
            async with kvstore.connect(self.endpoints) as kv:
                return await fn(Clientset(kv))
        return asyncio.run(go())

    def pods(self) -> list[dict[str, Any]]:
        async def go(api: Clientset) -> list[dict[str, Any]]:
            return list((await api.resource("pods").list("default"))["items"])
        result: list[dict[str, Any]] = self.read(go)
        return result

    def list(self, resource: str, namespace: str | None = "default",
             selector: str | None = None) -> list[dict[str, Any]]:
        async def go(api: Clientset) -> list[dict[str, Any]]:
            found = await api.resource(resource).list(namespace, label_selector=selector)
            return list(found["items"])
        result: list[dict[str, Any]] = self.read(go)
        return result

    def get(self, resource: str, name: str, namespace: str = "default") -> dict[str, Any]:
        async def go(api: Clientset) -> dict[str, Any]:
            return await api.resource(resource).get(name, namespace)
        result: dict[str, Any] = self.read(go)
        return result


def eventually(check: Callable[[], bool], what: str, timeout: float = 60.0,
               explain: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}\n{explain()}")
        time.sleep(0.2)


