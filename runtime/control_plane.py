"""The control plane of one member: controller manager, scheduler and kubelet, on its store.

Every member process of ``steer up`` runs a ``ControlPlane`` next to its
store member:

- a controller manager (ReplicaSet, Deployment, garbage collector,
  namespace, node lifecycle) under the Lease ``kube-system/kube-controller-manager``;
- a scheduler under the Lease ``kube-system/kube-scheduler``;
- a kubelet whose Node is named after the member (``member-<id>``).

Both leases are contested by every member, so exactly one controller
manager and one scheduler are active cluster-wide, and when a member dies
another takes over within the lease duration. Each part is supervised: if
it fails it is logged and started again after a back-off (the store may be
without a leader for a while). Cancelling ``run`` stops them all cleanly:
queued work is drained, the leases are released and every pod's processes
are stopped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from controllers.api.clientset import Clientset
from controllers.api.errors import AlreadyExists, NotFound
from controllers.builtin import CONCURRENT_SYNCS, CONTROLLER_MANAGER, builtin_factory
from controllers.builtin.nodelifecycle import NodeLifecycleController
from controllers.builtin.scheduler import Scheduler
from controllers.controller import Controller
from controllers.manager import LeaderElectionConfig, Manager
from kvstore.kv import KV
from runtime.kubelet import Kubelet

__all__ = ["ControlPlane", "ControlPlaneOptions", "node_name"]

_log = logging.getLogger("steer.control-plane")


def node_name(member_id: int) -> str:
    """The Node (and election identity) of member ``member_id``."""
    return f"member-{member_id}"


@dataclass(frozen=True, slots=True)
class ControlPlaneOptions:
    """What runs, and its timings (Kubernetes' defaults unless said otherwise)."""

    controllers: bool = True
    scheduler: bool = True
    kubelet: bool = True
    simulated_kubelet: bool = False
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    workers: int = 2
    node_heartbeat_interval: float = 10.0
    node_lease_duration: int = 40
    node_grace_period: float = 40.0
    pod_eviction_timeout: float = 300.0
    restart_backoff: float = 1.0


class ControlPlane:
    """The controller manager, scheduler and kubelet of one member (see the module docstring)."""

    def __init__(self, kv: KV, name: str, root_dir: Path,
                 options: ControlPlaneOptions | None = None) -> None:
        self.clientset = Clientset(kv)
        self.name = name
        self.root_dir = Path(root_dir)
        self.options = options if options is not None else ControlPlaneOptions()
        self.kubelet: Kubelet | None = None

    def _election(self, lock: str) -> LeaderElectionConfig:
        o = self.options
        return LeaderElectionConfig(lock, self.name, lease_duration=o.lease_duration,
                                    renew_deadline=o.renew_deadline, retry_period=o.retry_period)

    def _controllers(self) -> list[Controller]:
        made: list[Controller] = []
        for name in CONTROLLER_MANAGER:
            if name == "node-lifecycle":
                made.append(NodeLifecycleController(
                    grace_period=self.options.node_grace_period,
                    eviction_timeout=self.options.pod_eviction_timeout))
            else:
                made.append(builtin_factory(name)())
        return made

    async def _run_controller_manager(self) -> None:
        await Manager(self.clientset, self._controllers(),
                      leader_election=self._election("kube-controller-manager"),
                      workers_per_controller=self.options.workers,
                      workers=CONCURRENT_SYNCS).run()

    async def _run_scheduler(self) -> None:
        await Manager(self.clientset, [Scheduler()],
                      leader_election=self._election("kube-scheduler")).run()

    async def _run_kubelet(self) -> None:
        o = self.options
        kubelet = Kubelet(self.clientset, self.name, root_dir=self.root_dir / "kubelet",
                          simulated=o.simulated_kubelet,
                          heartbeat_interval=o.node_heartbeat_interval,
                          lease_duration=o.node_lease_duration)
        self.kubelet = kubelet
        await kubelet.run()

    async def _supervise(self, what: str, run: Callable[[], Awaitable[None]]) -> None:
        delay = self.options.restart_backoff
        while True:
            try:
                await run()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a failed part is restarted, not fatal
                _log.warning("%s: %s failed; restarting in %.1fs", self.name, what, delay,
                             exc_info=True)
            else:
                _log.warning("%s: %s stopped; restarting in %.1fs", self.name, what, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _ensure_namespaces(self) -> None:
        delay = self.options.restart_backoff
        while True:
            try:
                await self.clientset.ensure_default_namespaces()
                for namespace in ("kube-node-lease",):
                    await _ensure_namespace(self.clientset, namespace)
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the store may have no leader yet
                _log.info("%s: waiting for the store (%s)", self.name, e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def run(self) -> None:
        """Run every enabled part until cancelled."""
        await self._ensure_namespaces()
        parts: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        if self.options.controllers:
            parts.append(("controller manager", self._run_controller_manager))
        if self.options.scheduler:
            parts.append(("scheduler", self._run_scheduler))
        if self.options.kubelet:
            parts.append(("kubelet", self._run_kubelet))
        tasks = [asyncio.ensure_future(self._supervise(what, run)) for what, run in parts]
        _log.info("%s: running %s", self.name, ", ".join(what for what, _ in parts) or "nothing")
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _ensure_namespace(api: Clientset, name: str) -> None:
    namespaces = api.resource("namespaces")
    try:
        await namespaces.get(name)
    except NotFound:
        try:
            await namespaces.create({"apiVersion": "v1", "kind": "Namespace",
                                     "metadata": {"name": name}})
        except AlreadyExists:
            return
