"""The registry of kinds: what each resource is called, where it is stored, and its rules.

A ``Kind`` names a resource every way kubectl accepts (plural, singular,
kind, short names, ``plural.group``) and carries its validator, update
validator and defaulter. Built in: Namespace, Node, Pod, ReplicaSet,
Deployment, DaemonSet, Job, CronJob, Service, Endpoints, ConfigMap, Secret,
Event, Lease (coordination.k8s.io/v1) and ControllerRevision; others are
added at run time with ``register_kind`` (into the process-wide ``REGISTRY``)
or ``KindRegistry.register`` (into a registry of one's own).

Storage keys: ``/registry/<plural>/<namespace>/<name>`` for namespaced
kinds, ``/registry/<plural>/<name>`` for cluster-scoped ones. A kind of a
group other than the built-in ones (``""``, apps, batch,
coordination.k8s.io) is stored under ``/registry/<group>/<plural>/`` so
that two groups may use the same plural.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from controllers.api import core_validation as core
from controllers.api import defaults as dflt
from controllers.api import pod_validation as pods
from controllers.api import workload_validation as wl
from controllers.api.errors import BadRequest
from controllers.api.objects import Obj
from controllers.api.validation import (
    ErrorList,
    NameCheck,
    dns1035_label,
    dns1123_label,
    dns1123_subdomain,
)

__all__ = [
    "BUILTIN_GROUPS",
    "Defaulter",
    "Kind",
    "KindRegistry",
    "REGISTRY",
    "UpdateValidator",
    "Validator",
    "builtin_kinds",
    "register_kind",
]

Validator = Callable[[Obj, ErrorList], None]
"""Appends to the ``ErrorList`` a ``FieldError`` for each bad field of the object."""

UpdateValidator = Callable[[Obj, Obj, ErrorList], None]
"""Called with ``(new, old, errors)`` on update, after the ``Validator``: immutable fields."""

Defaulter = Callable[[Obj], None]
"""Fills in missing fields of the object, in place; must be idempotent."""

BUILTIN_GROUPS = ("", "apps", "batch", "coordination.k8s.io")


@dataclass(frozen=True, slots=True)
class Kind:
    """One resource type and its rules."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    validator: Validator | None = None
    defaulter: Defaulter | None = None
    update_validator: UpdateValidator | None = None
    name_syntax: NameCheck = dns1123_subdomain
    # Whether the kind has a status that only update_status may change.
    has_status: bool = True

    @property
    def api_version(self) -> str:
        """``apps/v1``, or ``v1`` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource(self) -> str:
        """The group-qualified resource used in messages: ``deployments.apps``, ``pods``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        """The group-qualified kind used in ``Invalid`` messages: ``Deployment.apps``."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def storage_prefix(self) -> str:
        """Where every object of the kind lives, ending in ``/``."""
        if self.group in BUILTIN_GROUPS:
            return f"/registry/{self.plural}/"
        return f"/registry/{self.group}/{self.plural}/"

    def list_prefix(self, namespace: str | None) -> str:
        """The key prefix of one namespace's objects (``None``: all of them)."""
        if not self.namespaced or namespace is None:
            return self.storage_prefix
        _check_segment(namespace, "namespace")
        return f"{self.storage_prefix}{namespace}/"

    def key(self, namespace: str, name: str) -> str:
        """The storage key of one object.

        Raises:
            BadRequest: an empty name, a name or namespace holding ``/``, or no
                namespace for a namespaced kind.
        """
        _check_segment(name, "name")
        if self.namespaced:
            _check_segment(namespace, "namespace")
            return f"{self.storage_prefix}{namespace}/{name}"
        return f"{self.storage_prefix}{name}"

    def matches_type(self, obj: Mapping[str, Any]) -> bool:
        """True if ``obj``'s ``apiVersion`` and ``kind`` name this kind."""
        return obj.get("apiVersion") == self.api_version and obj.get("kind") == self.kind


def _check_segment(value: str, what: str) -> None:
    if not isinstance(value, str) or not value or "/" in value:
        raise BadRequest(f"invalid {what} {value!r}")


class KindRegistry:
    """Kinds by every name they answer to; lookups are case-insensitive."""

    def __init__(self, kinds: Iterable[Kind] = ()) -> None:
        self._kinds: list[Kind] = []
        self._names: dict[str, Kind] = {}
        for kind in kinds:
            self.register(kind)

    def _aliases(self, kind: Kind) -> list[str]:
        names = [kind.plural, kind.singular, kind.kind.lower(), *kind.short_names]
        out = [n.lower() for n in names]
        if kind.group:
            out += [f"{kind.plural}.{kind.group}", f"{kind.singular}.{kind.group}",
                    f"{kind.plural}.{kind.version}.{kind.group}"]
        return sorted(set(out))

    def register(self, kind: Kind) -> Kind:
        """Add ``kind``.

        Registering an equal kind again returns the one registered.

        Raises:
            ValueError: a name of ``kind`` is already taken by another kind.
        """
        for existing in self._kinds:
            if existing == kind:
                return existing
            if existing.storage_prefix == kind.storage_prefix:
                raise ValueError(f"resource {kind.resource} is already registered")
            if existing.api_version == kind.api_version and existing.kind == kind.kind:
                raise ValueError(f"kind {kind.api_version}/{kind.kind} is already registered")
        aliases = self._aliases(kind)
        for alias in aliases:
            if alias in self._names:
                raise ValueError(f"name {alias!r} already names {self._names[alias].resource}")
        self._kinds.append(kind)
        for alias in aliases:
            self._names[alias] = kind
        return kind

    def lookup(self, name: str) -> Kind:
        """The kind called ``name`` (plural, singular, kind, short name, or ``plural.group``).

        Raises:
            BadRequest: no kind has that name.
        """
        kind = self._names.get(name.lower())
        if kind is None:
            raise BadRequest(f'the server doesn\'t have a resource type "{name}"')
        return kind

    def for_object(self, obj: Mapping[str, Any]) -> Kind:
        """The kind named by ``obj``'s ``apiVersion`` and ``kind``.

        Raises:
            BadRequest: no registered kind matches.
        """
        for kind in self._kinds:
            if kind.matches_type(obj):
                return kind
        raise BadRequest(f"no kind {obj.get('kind')!r} is registered in version "
                         f"{obj.get('apiVersion')!r}")

    def kinds(self) -> list[Kind]:
        """Every kind, in registration order."""
        return list(self._kinds)


def _cronjob_name(value: str) -> list[str]:
    reasons = dns1123_subdomain(value)
    if len(value) > 52:
        reasons.append("must be no more than 52 characters")
    return reasons


def builtin_kinds() -> list[Kind]:
    """The kinds every registry starts with."""
    return [
        Kind("", "v1", "Namespace", "namespaces", False, ("ns",), core.validate_namespace,
             dflt.default_namespace, name_syntax=dns1123_label),
        Kind("", "v1", "Node", "nodes", False, ("no",), core.validate_node),
        Kind("", "v1", "Pod", "pods", True, ("po",), pods.validate_pod, dflt.default_pod,
             pods.validate_pod_update),
        Kind("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), wl.validate_replicaset,
             dflt.default_replicaset, wl.validate_selector_immutable),
        Kind("apps", "v1", "Deployment", "deployments", True, ("deploy",),
             wl.validate_deployment, dflt.default_deployment, wl.validate_selector_immutable),
        Kind("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), wl.validate_daemonset,
             dflt.default_daemonset, wl.validate_selector_immutable),
        Kind("batch", "v1", "Job", "jobs", True, (), wl.validate_job, dflt.default_job,
             wl.validate_job_update),
        Kind("batch", "v1", "CronJob", "cronjobs", True, ("cj",), wl.validate_cronjob,
             dflt.default_cronjob, name_syntax=_cronjob_name),
        Kind("", "v1", "Service", "services", True, ("svc",), core.validate_service,
             dflt.default_service, core.validate_service_update, name_syntax=dns1035_label),
        Kind("", "v1", "Endpoints", "endpoints", True, ("ep",), core.validate_endpoints,
             dflt.default_endpoints, has_status=False),
        Kind("", "v1", "ConfigMap", "configmaps", True, ("cm",), core.validate_configmap,
             None, core.validate_immutable_data_update, has_status=False),
        Kind("", "v1", "Secret", "secrets", True, (), core.validate_secret, dflt.default_secret,
             core.validate_immutable_data_update, has_status=False),
        Kind("", "v1", "Event", "events", True, ("ev",), core.validate_event, has_status=False),
        Kind("coordination.k8s.io", "v1", "Lease", "leases", True, (), core.validate_lease,
             has_status=False),
        Kind("apps", "v1", "ControllerRevision", "controllerrevisions", True, (),
             core.validate_controllerrevision, None, core.validate_controllerrevision_update,
             has_status=False),
    ]


REGISTRY = KindRegistry(builtin_kinds())
"""The process-wide registry ``register_kind`` adds to and clients use by default."""


def register_kind(
    group: str,
    version: str,
    kind: str,
    plural: str,
    namespaced: bool,
    short_names: Iterable[str] = (),
    validator: Validator | None = None,
    defaulter: Defaulter | None = None,
    *,
    update_validator: UpdateValidator | None = None,
    has_status: bool = True,
    registry: KindRegistry | None = None,
) -> Kind:
    """Register a custom kind (in ``REGISTRY`` unless ``registry`` is given) and return it.

    A group other than the built-in ones must contain a dot.

    Raises:
        ValueError: a bad group, version, kind or plural, or a name already taken.
    """
    if group and dns1123_subdomain(group):
        raise ValueError(f"group {group!r} is not a DNS-1123 subdomain")
    if group not in BUILTIN_GROUPS and "." not in group:
        # Keeps /registry/<group>/<plural>/ apart from /registry/<plural>/.
        raise ValueError(f"group {group!r} must contain a dot (e.g. example.com)")
    if dns1123_label(version) or dns1123_label(plural):
        raise ValueError(f"version {version!r} and plural {plural!r} must be DNS-1123 labels")
    if not kind or not kind.isidentifier():
        raise ValueError(f"kind {kind!r} must be a CamelCase identifier")
    new = Kind(group, version, kind, plural, namespaced, tuple(short_names), validator,
               defaulter, update_validator, has_status=has_status)
    return (registry if registry is not None else REGISTRY).register(new)
