"""Rules for the non-workload kinds: Namespace, Node, Service, Endpoints,
ConfigMap, Secret, Event, Lease and ControllerRevision.

Highlights: a Service needs ports (unless headless or ``ExternalName``),
each 1-65535, named and uniquely so when there are several; ConfigMap and
Secret keys are ``[-._a-zA-Z0-9]+``; Secret ``data`` values are bytes
(``stringData`` is folded into ``data`` by the defaults); an object marked
``immutable: true`` keeps its data for ever; an Event names the object it
is about; a ControllerRevision's ``data`` never changes.
"""

from __future__ import annotations

import re
from typing import Any

from controllers.api.pod_validation import PROTOCOLS
from controllers.api.validation import (
    ErrorList,
    check_name,
    dns1123_label,
    dns1123_subdomain,
    iana_port_name,
    label_value,
    qualified_name,
    validate_labels,
)

__all__ = [
    "validate_configmap",
    "validate_controllerrevision",
    "validate_controllerrevision_update",
    "validate_endpoints",
    "validate_event",
    "validate_immutable_data_update",
    "validate_lease",
    "validate_namespace",
    "validate_node",
    "validate_secret",
    "validate_service",
    "validate_service_update",
]

_CONFIG_KEY_RE = re.compile(r"[-._a-zA-Z0-9]+")
_SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_CONDITION_STATUSES = ("True", "False", "Unknown")


def validate_namespace(obj: dict[str, Any], errs: ErrorList) -> None:
    spec = errs.dict_at(obj, "spec", "spec")
    finalizers = errs.list_at(spec or {}, "finalizers", "spec.finalizers")
    for i, fin in enumerate(finalizers or ()):
        if not isinstance(fin, str):
            errs.type_invalid(f"spec.finalizers[{i}]", fin, "a string")
        else:
            check_name(errs, fin, f"spec.finalizers[{i}]", qualified_name)
    status = errs.dict_at(obj, "status", "status")
    if status is not None:
        errs.enum_at(status, "phase", "status.phase", ("Active", "Terminating"))


def validate_node(obj: dict[str, Any], errs: ErrorList) -> None:
    spec = errs.dict_at(obj, "spec", "spec") or {}
    errs.bool_at(spec, "unschedulable", "spec.unschedulable")
    errs.str_at(spec, "podCIDR", "spec.podCIDR")
    errs.str_at(spec, "providerID", "spec.providerID")
    taints = errs.list_at(spec, "taints", "spec.taints")
    for _, p, taint in errs.dicts_in(taints or [], "spec.taints"):
        key = errs.str_at(taint, "key", f"{p}.key", required=True)
        if key:
            check_name(errs, key, f"{p}.key", qualified_name)
        value = errs.str_at(taint, "value", f"{p}.value")
        if value:
            check_name(errs, value, f"{p}.value", label_value)
        errs.enum_at(taint, "effect", f"{p}.effect", _EFFECTS, required=True)
    status = errs.dict_at(obj, "status", "status") or {}
    for part in ("capacity", "allocatable"):
        errs.dict_at(status, part, f"status.{part}")
    conditions = errs.list_at(status, "conditions", "status.conditions")
    for _, p, cond in errs.dicts_in(conditions or [], "status.conditions"):
        errs.str_at(cond, "type", f"{p}.type", required=True)
        errs.enum_at(cond, "status", f"{p}.status", _CONDITION_STATUSES, required=True)
    addresses = errs.list_at(status, "addresses", "status.addresses")
    for _, p, addr in errs.dicts_in(addresses or [], "status.addresses"):
        errs.str_at(addr, "type", f"{p}.type", required=True)
        errs.str_at(addr, "address", f"{p}.address", required=True)


def _service_ports(errs: ErrorList, spec: dict[str, Any], svc_type: str | None) -> None:
    headless = spec.get("clusterIP") == "None"
    required = not headless and svc_type != "ExternalName"
    ports = errs.list_at(spec, "ports", "spec.ports", required=required)
    items = errs.dicts_in(ports or [], "spec.ports")
    names: set[str] = set()
    for _, p, port in items:
        name = errs.str_at(port, "name", f"{p}.name", required=len(items) > 1)
        if name:
            check_name(errs, name, f"{p}.name", dns1123_label)
            if name in names:
                errs.duplicate(f"{p}.name", name)
            names.add(name)
        errs.int_at(port, "port", f"{p}.port", required=True, minimum=1, maximum=65535)
        errs.enum_at(port, "protocol", f"{p}.protocol", PROTOCOLS)
        target = port.get("targetPort")
        if isinstance(target, bool) or not isinstance(target, (int, str, type(None))):
            errs.type_invalid(f"{p}.targetPort", target, "an integer or a port name")
        elif isinstance(target, int) and not 1 <= target <= 65535:
            errs.invalid(f"{p}.targetPort", target, "must be between 1 and 65535, inclusive")
        elif isinstance(target, str):
            check_name(errs, target, f"{p}.targetPort", iana_port_name)
        node_port = errs.int_at(port, "nodePort", f"{p}.nodePort", minimum=0, maximum=65535)
        if node_port and svc_type not in ("NodePort", "LoadBalancer"):
            errs.forbidden(f"{p}.nodePort", "may not be used when `type` is 'ClusterIP'")


def validate_service(obj: dict[str, Any], errs: ErrorList) -> None:
    spec = errs.dict_at(obj, "spec", "spec", required=True)
    if spec is None:
        return
    svc_type = errs.enum_at(spec, "type", "spec.type", _SERVICE_TYPES)
    _service_ports(errs, spec, svc_type)
    validate_labels(errs, spec.get("selector"), "spec.selector")
    errs.enum_at(spec, "sessionAffinity", "spec.sessionAffinity", ("None", "ClientIP"))
    errs.str_at(spec, "clusterIP", "spec.clusterIP")
    if svc_type == "ExternalName":
        external = errs.str_at(spec, "externalName", "spec.externalName", required=True)
        if external:
            check_name(errs, external, "spec.externalName", dns1123_subdomain)


def validate_service_update(new: dict[str, Any], old: dict[str, Any], errs: ErrorList) -> None:
    """An allocated ``spec.clusterIP`` never changes."""
    old_ip = (old.get("spec") or {}).get("clusterIP")
    if old_ip and (new.get("spec") or {}).get("clusterIP") != old_ip:
        errs.immutable("spec.clusterIP")


def _endpoint_addresses(errs: ErrorList, subset: dict[str, Any], key: str, path: str) -> None:
    addresses = errs.list_at(subset, key, f"{path}.{key}")
    for _, p, addr in errs.dicts_in(addresses or [], f"{path}.{key}"):
        errs.str_at(addr, "ip", f"{p}.ip", required=True)
        errs.str_at(addr, "nodeName", f"{p}.nodeName")
        errs.dict_at(addr, "targetRef", f"{p}.targetRef")


def validate_endpoints(obj: dict[str, Any], errs: ErrorList) -> None:
    subsets = errs.list_at(obj, "subsets", "subsets")
    for _, p, subset in errs.dicts_in(subsets or [], "subsets"):
        _endpoint_addresses(errs, subset, "addresses", p)
        _endpoint_addresses(errs, subset, "notReadyAddresses", p)
        ports = errs.list_at(subset, "ports", f"{p}.ports")
        for _, pp, port in errs.dicts_in(ports or [], f"{p}.ports"):
            errs.int_at(port, "port", f"{pp}.port", required=True, minimum=1, maximum=65535)
            errs.enum_at(port, "protocol", f"{pp}.protocol", PROTOCOLS)
            errs.str_at(port, "name", f"{pp}.name")


def _config_keys(errs: ErrorList, obj: dict[str, Any], key: str, value_type: type,
                 expected: str) -> set[str]:
    data = errs.dict_at(obj, key, key)
    keys: set[str] = set()
    for k, v in (data or {}).items():
        p = f"{key}[{k}]"
        if not isinstance(k, str):
            errs.type_invalid(key, k, "a string key")
            continue
        keys.add(k)
        if len(k) > 253:
            errs.too_long(p, 253)
        if not _CONFIG_KEY_RE.fullmatch(k) or k in (".", ".."):
            errs.invalid(p, k, "a valid config key must consist of alphanumeric characters, "
                         "'-', '_' or '.'")
        if not isinstance(v, value_type):
            errs.type_invalid(p, v, expected)
    return keys


def validate_configmap(obj: dict[str, Any], errs: ErrorList) -> None:
    text = _config_keys(errs, obj, "data", str, "a string")
    binary = _config_keys(errs, obj, "binaryData", bytes, "bytes")
    for k in sorted(text & binary):
        errs.invalid(f"data[{k}]", k, "duplicate of key present in binaryData")
    errs.bool_at(obj, "immutable", "immutable")


def validate_secret(obj: dict[str, Any], errs: ErrorList) -> None:
    _config_keys(errs, obj, "data", bytes, "bytes")
    _config_keys(errs, obj, "stringData", str, "a string")
    errs.str_at(obj, "type", "type")
    errs.bool_at(obj, "immutable", "immutable")


def validate_immutable_data_update(new: dict[str, Any], old: dict[str, Any], errs: ErrorList
                                   ) -> None:
    """A ConfigMap or Secret marked ``immutable: true`` keeps its data and the mark."""
    if old.get("immutable") is True:
        if new.get("immutable") is not True:
            errs.forbidden("immutable", "field is immutable when `immutable` is set")
        for key in ("data", "binaryData"):
            if new.get(key) != old.get(key):
                errs.forbidden(key, "field is immutable when `immutable` is set")


def validate_event(obj: dict[str, Any], errs: ErrorList) -> None:
    involved = errs.dict_at(obj, "involvedObject", "involvedObject", required=True)
    if involved is not None:
        errs.str_at(involved, "kind", "involvedObject.kind", required=True)
        errs.str_at(involved, "name", "involvedObject.name", required=True)
        ns = errs.str_at(involved, "namespace", "involvedObject.namespace")
        own_ns = (obj.get("metadata") or {}).get("namespace")
        if ns and own_ns and ns != own_ns:
            errs.invalid("involvedObject.namespace", ns, "does not match event.namespace")
    errs.str_at(obj, "reason", "reason")
    errs.str_at(obj, "message", "message")
    errs.enum_at(obj, "type", "type", ("Normal", "Warning"))
    errs.int_at(obj, "count", "count", minimum=0)
    for key in ("firstTimestamp", "lastTimestamp"):
        errs.str_at(obj, key, key)
    errs.dict_at(obj, "source", "source")


def validate_lease(obj: dict[str, Any], errs: ErrorList) -> None:
    spec = errs.dict_at(obj, "spec", "spec") or {}
    errs.str_at(spec, "holderIdentity", "spec.holderIdentity")
    errs.int_at(spec, "leaseDurationSeconds", "spec.leaseDurationSeconds", minimum=1)
    errs.int_at(spec, "leaseTransitions", "spec.leaseTransitions", minimum=0)
    for key in ("acquireTime", "renewTime"):
        errs.str_at(spec, key, f"spec.{key}")


def validate_controllerrevision(obj: dict[str, Any], errs: ErrorList) -> None:
    errs.int_at(obj, "revision", "revision", required=True, minimum=0)


def validate_controllerrevision_update(new: dict[str, Any], old: dict[str, Any],
                                       errs: ErrorList) -> None:
    """A ControllerRevision's ``data`` is immutable."""
    if new.get("data") != old.get("data"):
        errs.immutable("data")
