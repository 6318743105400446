"""The kubelet's Node and its heartbeat Lease.

``NodeAgent.register`` creates the Node (or updates the one left by an
earlier run): labels ``kubernetes.io/hostname``, ``kubernetes.io/os`` and
``kubernetes.io/arch`` plus the given ones, the given taints (added to an
existing node's), ``spec.podCIDR`` (kept if the node has one, else the given
one, else ``ipam.pod_cidr_for(name)``), and a status with ``capacity`` and
``allocatable`` (cpu, memory, pods), ``nodeInfo``, ``addresses``
(InternalIP, Hostname), ``daemonEndpoints.kubeletEndpoint.Port`` (the log
server's) and the conditions MemoryPressure, DiskPressure and PIDPressure
False and Ready True, each with ``lastHeartbeatTime``.

``NodeAgent.run`` then beats every ``heartbeat_interval`` on the clock:

- it renews the Lease ``kube-node-lease/<node>`` (``holderIdentity`` the
  node, ``leaseDurationSeconds``, ``renewTime`` in RFC 3339 with
  microseconds), creating the namespace and the Lease if missing; the
  cached Lease is updated by compare-and-swap, read again on ``Conflict``;
- it reads the Node and writes its status again when the status it would
  write differs from the stored one in anything but heartbeat times (for
  instance after a node controller marked it NotReady), or when
  ``status_report_interval`` has passed since the last write, or registers
  the Node again if it was deleted.

A failed beat is logged and retried after one second (at most the interval).
Timestamps come from the clientset's wall clock.

Events (through ``recorder``, as the Kubernetes kubelet records them): the
first registration records ``Starting`` "Starting kubelet."; every status
write that changes a condition from what the store held records "Node N
status is now: R" (``NodeHasSufficientMemory``, ``NodeHasNoDiskPressure``,
``NodeHasSufficientPID``, ``NodeReady``): all four for a new node, and
``NodeReady`` again after a node controller marked the node NotReady.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil

from controllers.api.clientset import Clientset
from controllers.api.client import ensure_namespaces
from controllers.api.errors import AlreadyExists, Conflict, NotFound
from controllers.api.objects import Obj, format_timestamp
from controllers.clock import Clock
from controllers.informers.store import thaw
from runtime.kubelet import events
from runtime.kubelet.events import EventSink, NoEvents
from runtime.kubelet.ipam import pod_cidr_for

__all__ = [
    "KUBELET_VERSION",
    "NODE_LEASE_NAMESPACE",
    "NodeAgent",
    "NodeConfig",
    "default_capacity",
    "micro_time",
]

log = logging.getLogger(__name__)

KUBELET_VERSION = "v1.29.0-steersman"
NODE_LEASE_NAMESPACE = "kube-node-lease"
DEFAULT_MAX_PODS = 110

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_CONDITIONS = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory "
     "available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)
# The event recorded when a condition comes to the status above.
_CONDITION_EVENTS = {"MemoryPressure": "NodeHasSufficientMemory",
                     "DiskPressure": "NodeHasNoDiskPressure",
                     "PIDPressure": "NodeHasSufficientPID", "Ready": "NodeReady"}


def micro_time(seconds: float) -> str:
    """``seconds`` since the epoch as RFC 3339 in UTC with microseconds (a ``MicroTime``)."""
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_capacity() -> dict[str, str]:
    """This host's cpu count, memory (in Ki) and the default pod limit (110)."""
    memory = psutil.virtual_memory().total
    return {"cpu": str(os.cpu_count() or 1), "memory": f"{memory // 1024}Ki",
            "pods": str(DEFAULT_MAX_PODS)}


def _arch() -> str:
    machine = platform.machine().lower()
    return _ARCH.get(machine, machine or "unknown")


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """What the kubelet says about its node."""

    name: str
    capacity: Mapping[str, str]
    address: str = "127.0.0.1"
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: Sequence[Mapping[str, Any]] = ()
    pod_cidr: str | None = None
    kubelet_port: int = 0
    lease_duration_seconds: int = 40

    def all_labels(self) -> dict[str, str]:
        out = {"kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux",
               "kubernetes.io/arch": _arch()}
        out.update(self.labels)
        return out


class NodeAgent:
    """Registers the node and keeps its Lease and status fresh (see the module docstring)."""

    def __init__(
        self,
        clientset: Clientset,
        config: NodeConfig,
        *,
        clock: Clock,
        heartbeat_interval: float = 10.0,
        status_report_interval: float = 300.0,
        recorder: EventSink | None = None,
    ) -> None:
        self.clientset = clientset
        self.recorder: EventSink = recorder if recorder is not None else NoEvents()
        self.config = config
        self.clock = clock
        self.heartbeat_interval = heartbeat_interval
        self.status_report_interval = status_report_interval
        self.nodes = clientset.resource("nodes")
        self.leases = clientset.resource("leases")
        self.pod_cidr = config.pod_cidr or ""
        self.node_uid = ""
        self._lease: Obj | None = None
        self._last_report = float("-inf")
        self._started = False
        self.lease_renewals = 0
        """Successful Lease writes (for tests and metrics)."""
        self.status_reports = 0
        """Node status writes (for tests and metrics)."""

    # -- the node ------------------------------------------------------------------
    def _now(self) -> str:
        return format_timestamp(self.clientset.clock.now())

    def desired_status(self, previous: Mapping[str, Any] | None) -> dict[str, Any]:
        """The node status to write, keeping transition times from ``previous``."""
        now = self._now()
        prev = {c.get("type"): c for c in (previous or {}).get("conditions") or ()
                if isinstance(c, Mapping)}
        conditions = []
        for type_, status, reason, message in _CONDITIONS:
            old = prev.get(type_)
            since = old.get("lastTransitionTime") if old and old.get("status") == status else None
            conditions.append({"type": type_, "status": status, "reason": reason,
                               "message": message, "lastHeartbeatTime": now,
                               "lastTransitionTime": since or now})
        return {
            "capacity": dict(self.config.capacity),
            "allocatable": dict(self.config.capacity),
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": self.config.address},
                          {"type": "Hostname", "address": self.config.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.config.kubelet_port}},
            "nodeInfo": {"kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": "",
                         "operatingSystem": "linux", "architecture": _arch(),
                         "containerRuntimeVersion": "steersman-process://1",
                         "osImage": platform.platform(), "kernelVersion": platform.release(),
                         "machineID": "", "systemUUID": "", "bootID": ""},
        }

    async def register(self) -> Obj:
        """Create or update the Node; returns it as stored."""
        cfg = self.config
        try:
            node = thaw(await self.nodes.get(cfg.name))
        except NotFound:
            self.pod_cidr = self.pod_cidr or pod_cidr_for(cfg.name)
            spec: dict[str, Any] = {"podCIDR": self.pod_cidr, "podCIDRs": [self.pod_cidr]}
            if cfg.taints:
                spec["taints"] = [dict(t) for t in cfg.taints]
            new = {"apiVersion": "v1", "kind": "Node",
                   "metadata": {"name": cfg.name, "labels": cfg.all_labels()},
                   "spec": spec, "status": self.desired_status(None)}
            try:
                stored = await self.nodes.create(new)
            except AlreadyExists:
                return await self.register()
            self._reported(stored, None)
            return stored
        meta = node.setdefault("metadata", {})
        labels = meta.setdefault("labels", {})
        labels.update(cfg.all_labels())
        spec = node.setdefault("spec", {})
        if spec.get("podCIDR"):
            self.pod_cidr = str(spec["podCIDR"])
        else:
            self.pod_cidr = self.pod_cidr or pod_cidr_for(cfg.name)
            spec["podCIDR"] = self.pod_cidr
            spec["podCIDRs"] = [self.pod_cidr]
        taints = list(spec.get("taints") or [])
        for taint in cfg.taints:
            if not any(t.get("key") == taint.get("key") and t.get("effect") == taint.get("effect")
                       for t in taints):
                taints.append(dict(taint))
        if taints:
            spec["taints"] = taints
        node = await self.nodes.update(node)
        previous = node.get("status")
        node["status"] = self.desired_status(previous)
        stored = await self.nodes.update_status(node)
        self._reported(stored, previous)
        return stored

    def _reported(self, node: Obj, previous: Mapping[str, Any] | None) -> None:
        self.node_uid = str((node.get("metadata") or {}).get("uid", ""))
        self._last_report = self.clock.now()
        self.status_reports += 1
        if not self._started:
            self._started = True
            self._event(events.STARTING, events.STARTING_MESSAGE)
        before = {c.get("type"): c.get("status") for c in (previous or {}).get("conditions")
                  or () if isinstance(c, Mapping)}
        for type_, status, _, _ in _CONDITIONS:
            if before.get(type_) != status:
                reason = _CONDITION_EVENTS[type_]
                self._event(reason, events.node_status_message(self.config.name, reason))

    def _event(self, reason: str, message: str) -> None:
        self.recorder.event(events.node_ref(self.config.name, self.node_uid), events.NORMAL,
                            reason, message)

    async def sync_status(self) -> None:
        """Write the node status if it drifted or is due (see the module docstring)."""
        try:
            node = thaw(await self.nodes.get(self.config.name))
        except NotFound:
            log.warning("node %s was deleted; registering it again", self.config.name)
            await self.register()
            return
        desired = self.desired_status(node.get("status"))
        due = self.clock.now() - self._last_report >= self.status_report_interval
        if not due and _without_heartbeats(desired) == _without_heartbeats(node.get("status")):
            return
        previous = node.get("status")
        node["status"] = desired
        try:
            self._reported(await self.nodes.update_status(node), previous)
        except Conflict:
            await self.sync_status()

    # -- the lease -----------------------------------------------------------------
    def _lease_spec(self) -> dict[str, Any]:
        return {"holderIdentity": self.config.name,
                "leaseDurationSeconds": self.config.lease_duration_seconds,
                "renewTime": micro_time(self.clientset.clock.now())}

    async def renew_lease(self) -> Obj:
        """Write the Lease with a fresh ``renewTime``; returns it as stored."""
        for _ in range(4):
            lease = self._lease
            if lease is None:
                try:
                    lease = thaw(await self.leases.get(self.config.name, NODE_LEASE_NAMESPACE))
                except NotFound:
                    stored = await self._create_lease()
                    if stored is None:
                        continue
                    return stored
            lease = dict(lease)
            lease["spec"] = {**(lease.get("spec") or {}), **self._lease_spec()}
            try:
                self._lease = await self.leases.update(lease)
            except (Conflict, NotFound):
                self._lease = None
                continue
            self.lease_renewals += 1
            return self._lease
        raise Conflict("leases.coordination.k8s.io", self.config.name, "the lease kept changing")

    async def _create_lease(self) -> Obj | None:
        await ensure_namespaces(self.clientset.kv, [NODE_LEASE_NAMESPACE],
                                clock=self.clientset.clock, rng=self.clientset.rng,
                                registry=self.clientset.registry)
        meta: dict[str, Any] = {"name": self.config.name, "namespace": NODE_LEASE_NAMESPACE}
        if self.node_uid:
            meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node",
                                        "name": self.config.name, "uid": self.node_uid}]
        try:
            self._lease = await self.leases.create({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
                "spec": self._lease_spec()})
        except AlreadyExists:
            return None
        self.lease_renewals += 1
        return self._lease

    # -- the loop ------------------------------------------------------------------
    async def beat(self) -> None:
        """One heartbeat: renew the Lease, then check the node status."""
        await self.renew_lease()
        await self.sync_status()

    async def run(self) -> None:
        """Beat every ``heartbeat_interval`` until cancelled (the node must be registered
        and its Lease written: the first beat comes one interval later)."""
        delay = self.heartbeat_interval
        while True:
            await self.clock.sleep(delay)
            try:
                await self.beat()
                delay = self.heartbeat_interval
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the store may be away: beat again soon
                log.warning("node %s heartbeat failed: %s: %s", self.config.name,
                            type(e).__name__, e)
                delay = min(1.0, self.heartbeat_interval)


def _without_heartbeats(status: Any) -> Any:
    if not isinstance(status, Mapping):
        return status
    out = dict(status)
    out["conditions"] = [{k: v for k, v in c.items() if k != "lastHeartbeatTime"}
                         for c in status.get("conditions") or () if isinstance(c, Mapping)]
    return out
