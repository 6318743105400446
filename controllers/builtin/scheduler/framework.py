"""The scheduling framework: plugin protocols, their registry, and the per-node snapshot.

A pod is placed in two steps, each made of plugins:

- Filter: ``FilterPlugin.filter(pod, node) -> Status``. A node is feasible
  when every enabled filter returns success; the first failing filter's
  reasons (``Status.reasons``, in Kubernetes' words, e.g. ``"Insufficient
  cpu"``) say why it was not.
- Score: ``ScorePlugin.score(pod, node) -> int`` in 0..100 for each feasible
  node; a plugin that also has ``normalize_scores`` (a ``ScoreNormalizer``)
  then rescales the list across the feasible nodes. Scores are multiplied
  by the plugin's weight and summed; the highest total wins.

A plugin may also have, to save work on big clusters:
``skip_filter(pod) -> bool`` / ``skip_score(pod) -> bool`` (True: this
plugin cannot affect this pod, and is not called for it, as a Kubernetes
PreFilter or PreScore returning Skip), and ``score_nodes(pod, nodes) ->
list[int]`` (the scores of many nodes in one call, equal to ``score`` per
node).

Plugins see a ``PodInfo`` (the pod, parsed once per attempt: requests,
ports, tolerations, affinity, owner) and a ``NodeInfo`` (the node plus the
sums of everything assigned to it, kept up to date as pods come and go, so
a filter or score is a few dictionary lookups). Neither may be changed by
a plugin.

``PluginRegistry`` maps names to factories (callables of no arguments that
return a plugin), registered in code or found through the
``steersman.scheduler_plugins`` entry point group, as controllers are.
"""

from __future__ import annotations

import enum
import importlib.metadata
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from controllers.api.objects import parse_timestamp
from controllers.builtin.scheduler.nodeaffinity import NodeAffinity, parse_node_affinity
from controllers.builtin.scheduler.resources import (
    NON_ZERO_DEFAULTS,
    PODS,
    Amounts,
    node_allocatable,
    pod_requests,
)
from controllers.builtin.scheduler.taints import (
    Taint,
    Toleration,
    parse_taints,
    parse_tolerations,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "MAX_NODE_SCORE",
    "SUCCESS",
    "Code",
    "FilterPlugin",
    "HostPort",
    "NodeInfo",
    "PluginFactory",
    "PluginRegistry",
    "PodInfo",
    "ScoreNormalizer",
    "ScorePlugin",
    "Status",
    "controller_uid",
]

_log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "steersman.scheduler_plugins"
"""The entry point group third-party scheduler plugins register under."""

MAX_NODE_SCORE = 100
"""The highest score a plugin may give a node (the lowest is 0)."""


class Code(enum.Enum):
    """The outcome of a filter."""

    SUCCESS = "Success"
    UNSCHEDULABLE = "Unschedulable"


@dataclass(frozen=True, slots=True)
class Status:
    """A filter's verdict on one node, with the reasons when it is not a success."""

    code: Code = Code.SUCCESS
    reasons: tuple[str, ...] = ()

    @property
    def is_success(self) -> bool:
        return self.code is Code.SUCCESS

    @staticmethod
    def unschedulable(*reasons: str) -> Status:
        """The node cannot take the pod, for ``reasons``."""
        return Status(Code.UNSCHEDULABLE, reasons)


SUCCESS = Status()


@dataclass(frozen=True, slots=True)
class HostPort:
    """A host port a pod binds: protocol, port and host IP (``0.0.0.0`` for every IP)."""

    protocol: str
    port: int
    host_ip: str = "0.0.0.0"


def _host_ports(spec: Mapping[str, Any]) -> tuple[HostPort, ...]:
    host_network = spec.get("hostNetwork") is True
    found: list[HostPort] = []
    containers = spec.get("containers")
    for c in containers if isinstance(containers, (list, tuple)) else ():
        ports = c.get("ports") if isinstance(c, Mapping) else None
        for p in ports if isinstance(ports, (list, tuple)) else ():
            if not isinstance(p, Mapping):
                continue
            port = p.get("hostPort")
            if not port and host_network:
                port = p.get("containerPort")
            if isinstance(port, int) and not isinstance(port, bool) and port > 0:
                found.append(HostPort(str(p.get("protocol") or "TCP"), port,
                                      str(p.get("hostIP") or "0.0.0.0")))
    return tuple(found)


@dataclass(frozen=True, slots=True)
class PodInfo:
    """A pod, parsed once for the plugins (see ``from_pod``)."""

    key: str
    pod: Mapping[str, Any]
    namespace: str = ""
    name: str = ""
    node_name: str = ""
    priority: int = 0
    created: float = 0.0
    requests: Mapping[str, int] = field(default_factory=dict)
    non_zero_requests: Mapping[str, int] = field(default_factory=dict)
    host_ports: tuple[HostPort, ...] = ()
    tolerations: tuple[Toleration, ...] = ()
    affinity: NodeAffinity = field(default_factory=NodeAffinity)
    owner_uid: str = ""
    terminating: bool = False
    # ``requests`` as NodeResourcesFit checks them: positive, not ``pods``, sorted by name.
    fit_requests: tuple[tuple[str, int], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fit_requests", tuple(
            (name, n) for name, n in sorted(self.requests.items()) if name != PODS and n > 0))

    @staticmethod
    def from_pod(pod: Mapping[str, Any]) -> PodInfo:
        """Parse ``pod``.

        Raises:
            ValueError: a resource quantity in the pod cannot be read.
        """
        meta = pod.get("metadata")
        meta = meta if isinstance(meta, Mapping) else {}
        spec = pod.get("spec")
        spec = spec if isinstance(spec, Mapping) else {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        priority = spec.get("priority")
        created = 0.0
        stamp = meta.get("creationTimestamp")
        if isinstance(stamp, str):
            try:
                created = parse_timestamp(stamp)
            except ValueError:
                created = 0.0
        return PodInfo(
            key=f"{namespace}/{name}" if namespace else name, pod=pod, namespace=namespace,
            name=name, node_name=str(spec.get("nodeName") or ""),
            priority=priority if isinstance(priority, int) and not isinstance(priority, bool)
            else 0,
            created=created, requests=pod_requests(pod),
            non_zero_requests=pod_requests(pod, NON_ZERO_DEFAULTS),
            host_ports=_host_ports(spec), tolerations=parse_tolerations(pod),
            affinity=parse_node_affinity(pod),
            owner_uid=controller_uid(pod),
            terminating=bool(meta.get("deletionTimestamp")))


def controller_uid(obj: Mapping[str, Any]) -> str:
    """The uid in the owner reference with ``controller: true`` (``""`` if none)."""
    meta = obj.get("metadata")
    refs = meta.get("ownerReferences") if isinstance(meta, Mapping) else None
    for ref in refs if isinstance(refs, (list, tuple)) else ():
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            return str(ref.get("uid") or "")
    return ""


def _ready_status(node: Mapping[str, Any]) -> str:
    status = node.get("status")
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    for cond in conditions if isinstance(conditions, (list, tuple)) else ():
        if isinstance(cond, Mapping) and cond.get("type") == "Ready":
            return str(cond.get("status") or "Unknown")
    return ""


class NodeInfo:
    """One node and the pods assigned to it, with running sums (see the module docstring).

    ``node`` is None for a "ghost": pods name a node the cache has not seen
    (yet, or any more); ghosts are never offered to plugins.
    """

    __slots__ = (
        "allocatable",
        "generation",
        "labels",
        "name",
        "node",
        "non_zero_requested",
        "owner_counts",
        "pod_count",
        "pods",
        "ports",
        "ready",
        "requested",
        "taints",
        "unschedulable",
    )

    def __init__(self, name: str, node: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.node: Mapping[str, Any] | None = None
        self.labels: Mapping[str, str] = {}
        self.taints: tuple[Taint, ...] = ()
        self.unschedulable = False
        # The Ready condition's status: "True", "False", "Unknown", or "" when absent.
        self.ready = ""
        self.allocatable: Amounts = {}
        # Sums over ``pods``: requests, requests with non-zero defaults, and the pod count.
        self.requested: Amounts = {}
        self.non_zero_requested: Amounts = {}
        self.pod_count = 0
        # (protocol, port) -> host IP -> how many pods bind it.
        self.ports: dict[tuple[str, int], dict[str, int]] = {}
        # Controller uid -> assigned pods it controls that are not being deleted.
        self.owner_counts: dict[str, int] = {}
        self.pods: dict[str, PodInfo] = {}
        # Bumped on every change; lets callers notice a node changed under them.
        self.generation = 0
        if node is not None:
            self.set_node(node)

    @staticmethod
    def build(node: Mapping[str, Any], pods: Sequence[PodInfo] = ()) -> NodeInfo:
        """A ``NodeInfo`` of ``node`` holding ``pods``."""
        meta = node.get("metadata")
        info = NodeInfo(str(meta.get("name") or "") if isinstance(meta, Mapping) else "", node)
        for pod in pods:
            info.add_pod(pod)
        return info

    def set_node(self, node: Mapping[str, Any]) -> None:
        """Take the node object's labels, taints, readiness and allocatable amounts."""
        self.node = node
        meta = node.get("metadata")
        labels = meta.get("labels") if isinstance(meta, Mapping) else None
        self.labels = labels if isinstance(labels, Mapping) else {}
        self.taints = parse_taints(node)
        spec = node.get("spec")
        self.unschedulable = isinstance(spec, Mapping) and spec.get("unschedulable") is True
        self.ready = _ready_status(node)
        try:
            self.allocatable = node_allocatable(node)
        except ValueError:
            _log.warning("node %s: unreadable allocatable resources; treating as none", self.name)
            self.allocatable = {}
        self.generation += 1

    def add_pod(self, pod: PodInfo) -> None:
        """Count ``pod`` on this node (replacing a pod with the same key)."""
        if pod.key in self.pods:
            self.remove_pod(pod.key)
        self.pods[pod.key] = pod
        _add(self.requested, pod.requests, 1)
        _add(self.non_zero_requested, pod.non_zero_requests, 1)
        self.pod_count += 1
        for hp in pod.host_ports:
            ips = self.ports.setdefault((hp.protocol, hp.port), {})
            ips[hp.host_ip] = ips.get(hp.host_ip, 0) + 1
        if pod.owner_uid and not pod.terminating:
            self.owner_counts[pod.owner_uid] = self.owner_counts.get(pod.owner_uid, 0) + 1
        self.generation += 1

    def remove_pod(self, key: str) -> PodInfo | None:
        """Stop counting the pod ``key``; returns it, or None if it was not here."""
        pod = self.pods.pop(key, None)
        if pod is None:
            return None
        _add(self.requested, pod.requests, -1)
        _add(self.non_zero_requested, pod.non_zero_requests, -1)
        self.pod_count -= 1
        for hp in pod.host_ports:
            ips = self.ports[(hp.protocol, hp.port)]
            ips[hp.host_ip] -= 1
            if not ips[hp.host_ip]:
                del ips[hp.host_ip]
            if not ips:
                del self.ports[(hp.protocol, hp.port)]
        if pod.owner_uid and not pod.terminating:
            self.owner_counts[pod.owner_uid] -= 1
            if not self.owner_counts[pod.owner_uid]:
                del self.owner_counts[pod.owner_uid]
        self.generation += 1
        return pod

    def port_conflicts(self, wanted: HostPort) -> bool:
        """Whether ``wanted`` clashes with a host port in use (``0.0.0.0`` clashes with any IP)."""
        used = self.ports.get((wanted.protocol, wanted.port))
        if not used:
            return False
        if wanted.host_ip == "0.0.0.0":
            return True
        return wanted.host_ip in used or "0.0.0.0" in used

    def free(self, resource: str) -> int:
        """Allocatable minus requested for ``resource`` (negative when overcommitted)."""
        return self.allocatable.get(resource, 0) - self.requested.get(resource, 0)


def _add(into: Amounts, more: Mapping[str, int], sign: int) -> None:
    for name, n in more.items():
        total = into.get(name, 0) + sign * n
        if total:
            into[name] = total
        else:
            into.pop(name, None)


@runtime_checkable
class FilterPlugin(Protocol):
    """Decides whether a node can run a pod."""

    @property
    def name(self) -> str: ...

    def filter(self, pod: PodInfo, node: NodeInfo) -> Status:
        """Success, or unschedulable with reasons in Kubernetes' words."""
        ...


@runtime_checkable
class ScorePlugin(Protocol):
    """Ranks a feasible node for a pod, 0..``MAX_NODE_SCORE`` (after normalizing, if any)."""

    @property
    def name(self) -> str: ...

    def score(self, pod: PodInfo, node: NodeInfo) -> int: ...


@runtime_checkable
class ScoreNormalizer(Protocol):
    """A score plugin whose raw scores are rescaled across all the feasible nodes."""

    def normalize_scores(self, pod: PodInfo, nodes: Sequence[NodeInfo],
                         scores: list[int]) -> list[int]:
        """``scores[i]`` belongs to ``nodes[i]``; returns one score per node in 0..100."""
        ...


PluginFactory = Callable[[], Any]
"""Makes one plugin (a ``FilterPlugin``, a ``ScorePlugin``, or both); a plugin class is one."""


class PluginRegistry:
    """Plugin factories by name, in registration order: in code, or through entry points."""

    def __init__(self) -> None:
        self._factories: dict[str, PluginFactory] = {}
        self._made: dict[str, Any] = {}

    def register(self, name: str, factory: PluginFactory) -> None:
        """Register ``factory`` under ``name``.

        Raises:
            ValueError: ``name`` is empty or taken.
        """
        if not name:
            raise ValueError("a scheduler plugin needs a name")
        if name in self._factories:
            raise ValueError(f"a scheduler plugin named {name!r} is already registered")
        self._factories[name] = factory

    def names(self) -> list[str]:
        """Every registered name, in registration order."""
        return list(self._factories)

    def discover(self, group: str = ENTRY_POINT_GROUP) -> list[str]:
        """Register every entry point of ``group`` not registered yet, by its name.

        An entry point that fails to load, or is not callable, is logged and skipped.

        Returns:
            The names newly registered, sorted.
        """
        added: list[str] = []
        for entry in sorted(importlib.metadata.entry_points(group=group), key=lambda e: e.name):
            if entry.name in self._factories:
                continue
            try:
                factory = entry.load()
            except Exception:  # noqa: BLE001 - one broken plugin must not stop the others
                _log.error("scheduler plugin %s (%s) failed to load", entry.name, entry.value,
                           exc_info=True)
                continue
            if not callable(factory):
                _log.error("scheduler plugin %s (%s) is not callable", entry.name, entry.value)
                continue
            self._factories[entry.name] = factory
            added.append(entry.name)
        return added

    def create(self, name: str) -> Any:
        """A new plugin from the factory registered under ``name``.

        Raises:
            KeyError: nothing is registered under ``name``.
            TypeError: the factory made something that neither filters nor scores.
        """
        made = self._factories[name]()
        if not isinstance(made, (FilterPlugin, ScorePlugin)):
            raise TypeError(f"scheduler plugin factory {name!r} returned "
                            f"{type(made).__name__}, which neither filters nor scores")
        return made

    def sample(self, name: str) -> Any:
        """One plugin made by ``name``'s factory, kept to tell what kind of plugin it makes."""
        if name not in self._made:
            self._made[name] = self.create(name)
        return self._made[name]

    def filter_names(self) -> list[str]:
        """The registered names whose plugins filter, in registration order."""
        return [n for n in self.names() if isinstance(self._maybe_sample(n), FilterPlugin)]

    def score_names(self) -> list[str]:
        """The registered names whose plugins score, in registration order."""
        return [n for n in self.names() if isinstance(self._maybe_sample(n), ScorePlugin)]

    def _maybe_sample(self, name: str) -> Any:
        try:
            return self.sample(name)
        except Exception:  # noqa: BLE001 - a broken plugin is left out, not fatal
            _log.error("scheduler plugin %s could not be made; left out", name, exc_info=True)
            return None
