"""Two controller-manager processes on a three-member cluster: one active, failover on kill -9."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import kvstore
from controllers.api import Clientset, NotFound
from controllers.examples.namespace_configmap import CONFIGMAP_NAME, WRITTEN_BY, desired_data
from tests.procs.harness import ProcCluster, poll_until

pytestmark = pytest.mark.slow

LEASE = 3.0
LOCK = "steersman-controller-manager"
CONTROLLER = "controllers.examples.namespace_configmap:NamespaceConfigMapController"


class Managers:
    """Controller-manager processes, each killed at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, identity: str, endpoints: list[str]) -> None:
        log = open(self.root / f"{identity}.log", "wb")  # noqa: SIM115 - owned by the process
        self.procs[identity] = subprocess.Popen(
            [sys.executable, "-m", "runtime.controller_manager", "--endpoints",
             ",".join(endpoints), "--identity", identity, "--controller", CONTROLLER,
             "--lease-duration", str(LEASE), "--renew-deadline", "2", "--retry-period", "0.25"],
            stdout=log, stderr=subprocess.STDOUT, cwd=os.getcwd())
        log.close()

    def kill(self, identity: str) -> None:
        proc = self.procs[identity]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def log(self, identity: str) -> str:
        return (self.root / f"{identity}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)


@pytest.fixture
def managers(tmp_path: Path) -> Iterator[Managers]:
    m = Managers(tmp_path)
    try:
        yield m
    finally:
        m.stop_all()


async def holder(api: Clientset) -> str:
    try:
        lease = await api.resource("leases").get(LOCK, "kube-system")
    except NotFound:
        return ""
    return str(lease["spec"].get("holderIdentity") or "")


async def synced_by(api: Clientset, namespace: str) -> str:
    """Who wrote the namespace's ConfigMap, if it is in sync; "" if not."""
    try:
        ns = await api.resource("namespaces").get(namespace)
        cm = await api.resource("configmaps").get(CONFIGMAP_NAME, namespace)
    except NotFound:
        return ""
    if cm.get("data") != desired_data(ns):
        return ""
    return str(cm["metadata"].get("annotations", {}).get(WRITTEN_BY, ""))


async def test_one_manager_is_active_and_the_other_takes_over_after_kill(
        procs: ProcCluster, managers: Managers) -> None:
    await procs.up()
    endpoints = procs.endpoints()
    managers.start("cm-a", endpoints)
    managers.start("cm-b", endpoints)
    async with kvstore.connect(endpoints) as kv:
        api = Clientset(kv)
        await api.ensure_default_namespaces()
        for i in range(3):
            await api.resource("namespaces").create({"metadata": {"name": f"team-{i}"}})

        async def converged(names: list[str]) -> bool:
            return all([await synced_by(api, n) for n in names])

        names = [f"team-{i}" for i in range(3)]
        await poll_until(lambda: converged(names), timeout=30, what="first convergence")
        active = await holder(api)
        assert active in ("cm-a", "cm-b")
        standby = "cm-b" if active == "cm-a" else "cm-a"
        # Exactly one is active: every ConfigMap was written by the Lease holder, and the
        # holder stays put while both run.
        for _ in range(10):
            assert await holder(api) == active
            assert {await synced_by(api, n) for n in names} == {active}
            await asyncio.sleep(0.1)

        managers.kill(active)
        killed_at = time.monotonic()
        await api.resource("namespaces").create({"metadata": {"name": "after-kill"}})
        # The standby takes the Lease once it has gone un-renewed for a lease duration.
        async def standby_leads() -> bool:
            return await holder(api) == standby
        await poll_until(standby_leads, timeout=LEASE + 5, what="the standby to take over",
                         every=0.05)
        took_over = time.monotonic() - killed_at
        assert took_over <= LEASE + 2.0, f"takeover after {took_over:.1f}s"
        # ... and converges: the new namespace, and edits made while nobody led.
        names.append("after-kill")
        await poll_until(lambda: converged(names), timeout=15, what="convergence after failover")
        assert await synced_by(api, "after-kill") == standby
        assert "running namespace-configmap" in managers.log(standby)
