"""Rules for Pods and pod templates (``spec.template`` of every workload).

A pod spec needs at least one container; each container has a DNS-1123
label name (unique among ``containers`` and ``initContainers``) and an
image. Ports are 1-65535 with a supported protocol and unique names; env
vars have names; volume mounts name declared volumes. A pod's spec is
immutable after creation except container images, ``activeDeadlineSeconds``,
added tolerations and ``nodeName``, which may be set once (this API has no
binding subresource: a scheduler binds by setting it).
"""

from __future__ import annotations

from typing import Any

from controllers.api.validation import (
    ErrorList,
    check_name,
    dns1123_label,
    dns1123_subdomain,
    iana_port_name,
    validate_labels,
)

__all__ = [
    "PROTOCOLS",
    "RESTART_POLICIES",
    "validate_pod",
    "validate_pod_spec",
    "validate_pod_template",
    "validate_pod_update",
]

PROTOCOLS = ("TCP", "UDP", "SCTP")
RESTART_POLICIES = ("Always", "OnFailure", "Never")
_DNS_POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
_TOLERATION_OPS = ("Exists", "Equal")
_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _validate_strings(errs: ErrorList, c: dict[str, Any], key: str, path: str) -> None:
    items = errs.list_at(c, key, f"{path}.{key}")
    for i, item in enumerate(items or ()):
        if not isinstance(item, str):
            errs.type_invalid(f"{path}.{key}[{i}]", item, "a string")


def _validate_container(
    errs: ErrorList, c: dict[str, Any], path: str, volumes: set[str], port_names: set[str]
) -> None:
    name = errs.str_at(c, "name", f"{path}.name", required=True)
    if name:
        check_name(errs, name, f"{path}.name", dns1123_label)
    errs.str_at(c, "image", f"{path}.image", required=True)
    errs.enum_at(c, "imagePullPolicy", f"{path}.imagePullPolicy", _PULL_POLICIES)
    _validate_strings(errs, c, "command", path)
    _validate_strings(errs, c, "args", path)
    errs.str_at(c, "workingDir", f"{path}.workingDir")
    ports = errs.list_at(c, "ports", f"{path}.ports")
    for _, p, port in errs.dicts_in(ports or [], f"{path}.ports"):
        errs.int_at(port, "containerPort", f"{p}.containerPort", required=True,
                    minimum=1, maximum=65535)
        errs.int_at(port, "hostPort", f"{p}.hostPort", minimum=0, maximum=65535)
        errs.enum_at(port, "protocol", f"{p}.protocol", PROTOCOLS)
        pname = errs.str_at(port, "name", f"{p}.name")
        if pname:
            check_name(errs, pname, f"{p}.name", iana_port_name)
            if pname in port_names:
                errs.duplicate(f"{p}.name", pname)
            port_names.add(pname)
    env = errs.list_at(c, "env", f"{path}.env")
    for _, p, var in errs.dicts_in(env or [], f"{path}.env"):
        vname = errs.str_at(var, "name", f"{p}.name", required=True)
        if vname and ("=" in vname or not vname.isprintable()):
            errs.invalid(f"{p}.name", vname, "must consist of printable characters other than '='")
        errs.str_at(var, "value", f"{p}.value")
    mounts = errs.list_at(c, "volumeMounts", f"{path}.volumeMounts")
    for _, p, mount in errs.dicts_in(mounts or [], f"{path}.volumeMounts"):
        mname = errs.str_at(mount, "name", f"{p}.name", required=True)
        if mname and mname not in volumes:
            errs.not_supported(f"{p}.name", mname, tuple(sorted(volumes)))
        errs.str_at(mount, "mountPath", f"{p}.mountPath", required=True)
    res = errs.dict_at(c, "resources", f"{path}.resources")
    for part in ("limits", "requests"):
        amounts = errs.dict_at(res or {}, part, f"{path}.resources.{part}")
        for rname, amount in (amounts or {}).items():
            if isinstance(amount, bool) or not isinstance(amount, (str, int, float)):
                errs.type_invalid(f"{path}.resources.{part}[{rname}]", amount, "a quantity")


def _validate_tolerations(errs: ErrorList, spec: dict[str, Any], path: str) -> None:
    tolerations = errs.list_at(spec, "tolerations", f"{path}.tolerations")
    for _, p, tol in errs.dicts_in(tolerations or [], f"{path}.tolerations"):
        op = errs.enum_at(tol, "operator", f"{p}.operator", _TOLERATION_OPS)
        key = errs.str_at(tol, "key", f"{p}.key")
        if op == "Exists" and tol.get("value"):
            errs.invalid(f"{p}.value", tol["value"], "must be empty when `operator` is 'Exists'")
        if not key and op != "Exists":
            errs.invalid(f"{p}.operator", op or "Equal",
                         "operator must be Exists when `key` is empty")
        errs.str_at(tol, "value", f"{p}.value")
        errs.enum_at(tol, "effect", f"{p}.effect", _EFFECTS)
        errs.int_at(tol, "tolerationSeconds", f"{p}.tolerationSeconds")


def validate_pod_spec(errs: ErrorList, spec: Any, path: str,
                      restart_policies: tuple[str, ...] = RESTART_POLICIES) -> None:
    """A ``PodSpec`` at ``path``; ``restart_policies`` are those the owning kind allows."""
    if not isinstance(spec, dict):
        if spec is None:
            errs.required(path)
        else:
            errs.type_invalid(path, spec, "an object")
        return
    volumes: set[str] = set()
    vols = errs.list_at(spec, "volumes", f"{path}.volumes")
    for _, p, vol in errs.dicts_in(vols or [], f"{path}.volumes"):
        vname = errs.str_at(vol, "name", f"{p}.name", required=True)
        if vname:
            check_name(errs, vname, f"{p}.name", dns1123_label)
            if vname in volumes:
                errs.duplicate(f"{p}.name", vname)
            volumes.add(vname)
    names: set[str] = set()
    port_names: set[str] = set()
    for key, required in (("initContainers", False), ("containers", True)):
        containers = errs.list_at(spec, key, f"{path}.{key}", required=required)
        for _, p, c in errs.dicts_in(containers or [], f"{path}.{key}"):
            _validate_container(errs, c, p, volumes, port_names)
            cname = c.get("name")
            if isinstance(cname, str) and cname:
                if cname in names:
                    errs.duplicate(f"{p}.name", cname)
                names.add(cname)
    policy = errs.str_at(spec, "restartPolicy", f"{path}.restartPolicy")
    if policy is not None and policy not in restart_policies:
        errs.not_supported(f"{path}.restartPolicy", policy, restart_policies)
    errs.enum_at(spec, "dnsPolicy", f"{path}.dnsPolicy", _DNS_POLICIES)
    errs.int_at(spec, "terminationGracePeriodSeconds", f"{path}.terminationGracePeriodSeconds",
                minimum=0)
    errs.int_at(spec, "activeDeadlineSeconds", f"{path}.activeDeadlineSeconds", minimum=1)
    node = errs.str_at(spec, "nodeName", f"{path}.nodeName")
    if node:
        check_name(errs, node, f"{path}.nodeName", dns1123_subdomain)
    validate_labels(errs, spec.get("nodeSelector"), f"{path}.nodeSelector")
    errs.str_at(spec, "serviceAccountName", f"{path}.serviceAccountName")
    errs.str_at(spec, "schedulerName", f"{path}.schedulerName")
    errs.int_at(spec, "priority", f"{path}.priority")
    errs.bool_at(spec, "hostNetwork", f"{path}.hostNetwork")
    _validate_tolerations(errs, spec, path)


def validate_pod_template(errs: ErrorList, template: Any, path: str,
                          restart_policies: tuple[str, ...] = RESTART_POLICIES) -> None:
    """A ``PodTemplateSpec``: labels in ``metadata`` and a pod ``spec``."""
    if not isinstance(template, dict):
        if template is None:
            errs.required(path)
        else:
            errs.type_invalid(path, template, "an object")
        return
    m = errs.dict_at(template, "metadata", f"{path}.metadata")
    if m is not None:
        validate_labels(errs, m.get("labels"), f"{path}.metadata.labels")
    validate_pod_spec(errs, template.get("spec"), f"{path}.spec", restart_policies)


def validate_pod(obj: dict[str, Any], errs: ErrorList) -> None:
    """A Pod: its spec, and its status phase when one is given."""
    validate_pod_spec(errs, obj.get("spec"), "spec")
    status = errs.dict_at(obj, "status", "status")
    if status is not None:
        errs.enum_at(status, "phase", "status.phase", _PHASES)


def _images(spec: dict[str, Any], key: str) -> list[Any]:
    containers = spec.get(key)
    if not isinstance(containers, list):
        return []
    return [c.get("image") if isinstance(c, dict) else None for c in containers]


def validate_pod_update(new: dict[str, Any], old: dict[str, Any], errs: ErrorList) -> None:
    """What a pod update may change in ``spec`` (see the module docstring)."""
    new_spec, old_spec = new.get("spec"), old.get("spec")
    if not isinstance(new_spec, dict) or not isinstance(old_spec, dict):
        return
    old_node, new_node = old_spec.get("nodeName") or "", new_spec.get("nodeName") or ""
    if old_node and new_node != old_node:
        errs.immutable("spec.nodeName")
    old_tols = old_spec.get("tolerations") or []
    new_tols = new_spec.get("tolerations") or []
    if isinstance(new_tols, list) and any(t not in new_tols for t in old_tols):
        errs.forbidden("spec.tolerations", "existing tolerations may not be removed")
    # Compare what is left once the mutable fields are set aside.
    mutable = ("nodeName", "tolerations", "activeDeadlineSeconds")
    rest_new = {k: v for k, v in new_spec.items() if k not in mutable}
    rest_old = {k: v for k, v in old_spec.items() if k not in mutable}
    for key in ("containers", "initContainers"):
        if len(_images(new_spec, key)) == len(_images(old_spec, key)):
            rest_new[key] = [_without_image(c) for c in new_spec.get(key) or []]
            rest_old[key] = [_without_image(c) for c in old_spec.get(key) or []]
    if rest_new != rest_old:
        errs.forbidden("spec", "pod updates may not change fields other than `spec.containers[*]"
                       ".image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, "
                       "`spec.tolerations` (only additions) and an unset `spec.nodeName`")


def _without_image(container: Any) -> Any:
    if isinstance(container, dict):
        return {k: v for k, v in container.items() if k != "image"}
    return container
