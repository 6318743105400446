"""Validation on write: every bad field, each with its path and the reason.

Validators never stop at the first problem: they append a ``FieldError`` per
bad field to an ``ErrorList`` (Kubernetes' ``field.ErrorList``) and go on, so
one ``Invalid`` names everything that is wrong. Paths are spelled like
kubectl's (``spec.template.spec.containers[0].image``, ``metadata.labels[app]``).

This module holds the shared pieces: the ``ErrorList``, typed readers that
record a type error and return ``None`` for a value of the wrong type, the
name and label syntaxes (DNS-1123 subdomain and label, DNS-1035 label,
qualified names, label values, IANA port names), ``ObjectMeta`` and label
selector checks, and ``raise_if_invalid``. Per-kind rules live in
``pod_validation``, ``workload_validation`` and ``core_validation``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from controllers.api.errors import FieldError, FieldErrorType, Invalid

__all__ = [
    "ErrorList",
    "NameCheck",
    "check_name",
    "dns1035_label",
    "dns1123_label",
    "dns1123_subdomain",
    "iana_port_name",
    "label_value",
    "qualified_name",
    "raise_if_invalid",
    "validate_label_selector",
    "validate_labels",
    "validate_object_meta",
]

NameCheck = Callable[[str], list[str]]
"""A name syntax: the reasons ``name`` breaks it (empty when it is fine)."""

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_LABEL_RE = re.compile(_LABEL)
_SUBDOMAIN_RE = re.compile(rf"{_LABEL}(\.{_LABEL})*")
_DNS1035_RE = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_QNAME_PART_RE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_IANA_RE = re.compile(r"[-a-z0-9]+")
_ANNOTATIONS_MAX_BYTES = 256 * 1024


class ErrorList:
    """Field errors found so far; the helpers name the Kubernetes error types."""

    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def add(self, error: FieldError) -> None:
        self.items.append(error)

    def required(self, path: str, detail: str = "") -> None:
        self.add(FieldError(FieldErrorType.REQUIRED, path, detail))

    def invalid(self, path: str, value: Any, detail: str) -> None:
        self.add(FieldError(FieldErrorType.INVALID, path, detail, value))

    def not_supported(self, path: str, value: Any, supported: tuple[str, ...]) -> None:
        listed = ", ".join(f'"{s}"' for s in supported)
        self.add(FieldError(FieldErrorType.NOT_SUPPORTED, path, f"supported values: {listed}", value))

    def duplicate(self, path: str, value: Any) -> None:
        self.add(FieldError(FieldErrorType.DUPLICATE, path, "", value))

    def forbidden(self, path: str, detail: str) -> None:
        self.add(FieldError(FieldErrorType.FORBIDDEN, path, detail))

    def too_long(self, path: str, limit: int) -> None:
        self.add(FieldError(FieldErrorType.TOO_LONG, path, f"must have at most {limit} bytes"))

    def type_invalid(self, path: str, value: Any, expected: str) -> None:
        self.add(FieldError(FieldErrorType.TYPE_INVALID, path, f"must be {expected}", value))

    def immutable(self, path: str) -> None:
        self.add(FieldError(FieldErrorType.IMMUTABLE, path))

    # -- typed readers: record a type error and return None on a wrong type ------
    def dict_at(self, obj: Mapping[str, Any], key: str, path: str, *, required: bool = False
                ) -> dict[str, Any] | None:
        value = obj.get(key)
        if value is None:
            if required:
                self.required(path)
            return None
        if not isinstance(value, dict):
            self.type_invalid(path, value, "an object")
            return None
        return value

    def list_at(self, obj: Mapping[str, Any], key: str, path: str, *, required: bool = False
                ) -> list[Any] | None:
        value = obj.get(key)
        if value is None or (required and value == []):
            if required:
                self.required(path)
            return None
        if not isinstance(value, list):
            self.type_invalid(path, value, "a list")
            return None
        return value

    def str_at(self, obj: Mapping[str, Any], key: str, path: str, *, required: bool = False
               ) -> str | None:
        value = obj.get(key)
        if value is None or (required and value == ""):
            if required:
                self.required(path)
            return None
        if not isinstance(value, str):
            self.type_invalid(path, value, "a string")
            return None
        return value

    def int_at(self, obj: Mapping[str, Any], key: str, path: str, *, required: bool = False,
               minimum: int | None = None, maximum: int | None = None) -> int | None:
        value = obj.get(key)
        if value is None:
            if required:
                self.required(path)
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            self.type_invalid(path, value, "an integer")
            return None
        if minimum is not None and value < minimum:
            self.invalid(path, value, f"must be greater than or equal to {minimum}")
        elif maximum is not None and value > maximum:
            self.invalid(path, value, f"must be less than or equal to {maximum}")
        return value

    def bool_at(self, obj: Mapping[str, Any], key: str, path: str) -> bool | None:
        value = obj.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.type_invalid(path, value, "a boolean")
            return None
        return value

    def enum_at(self, obj: Mapping[str, Any], key: str, path: str, supported: tuple[str, ...],
                *, required: bool = False) -> str | None:
        value = self.str_at(obj, key, path, required=required)
        if value is not None and value not in supported:
            self.not_supported(path, value, supported)
            return None
        return value

    def dicts_in(self, items: list[Any], path: str) -> list[tuple[int, str, dict[str, Any]]]:
        """The ``(index, path, item)`` of each item that is a dict; a type error for the others."""
        out = []
        for i, item in enumerate(items):
            p = f"{path}[{i}]"
            if isinstance(item, dict):
                out.append((i, p, item))
            else:
                self.type_invalid(p, item, "an object")
        return out


def raise_if_invalid(errs: ErrorList, kind: str, name: str) -> None:
    """Raise ``Invalid`` listing every error in ``errs``; do nothing if there are none."""
    if errs:
        raise Invalid(kind, name, errs.items)


# -- name syntaxes --------------------------------------------------------------
def dns1123_label(value: str) -> list[str]:
    """Reasons ``value`` is not a DNS-1123 label (at most 63 characters)."""
    out = []
    if len(value) > 63:
        out.append("must be no more than 63 characters")
    if not _LABEL_RE.fullmatch(value):
        out.append("a lowercase RFC 1123 label must consist of lower case alphanumeric "
                   "characters or '-', and must start and end with an alphanumeric character")
    return out


def dns1123_subdomain(value: str) -> list[str]:
    """Reasons ``value`` is not a DNS-1123 subdomain (at most 253 characters)."""
    out = []
    if len(value) > 253:
        out.append("must be no more than 253 characters")
    if not _SUBDOMAIN_RE.fullmatch(value):
        out.append("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                   "characters, '-' or '.', and must start and end with an alphanumeric character")
    return out


def dns1035_label(value: str) -> list[str]:
    """Reasons ``value`` is not a DNS-1035 label (a DNS-1123 label starting with a letter)."""
    out = []
    if len(value) > 63:
        out.append("must be no more than 63 characters")
    if not _DNS1035_RE.fullmatch(value):
        out.append("a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                   "start with an alphabetic character, and end with an alphanumeric character")
    return out


def qualified_name(value: str) -> list[str]:
    """Reasons ``value`` is not a qualified name (``[prefix/]name``), as label keys must be."""
    prefix, slash, name = value.rpartition("/")
    out = []
    if slash:
        if not prefix:
            out.append("prefix part must be non-empty")
        else:
            out.extend(f"prefix part {r}" for r in dns1123_subdomain(prefix))
        if "/" in prefix:
            out.append("a qualified name must have at most one '/'")
    if not name:
        out.append("name part must be non-empty")
    elif len(name) > 63:
        out.append("name part must be no more than 63 characters")
    if name and not _QNAME_PART_RE.fullmatch(name):
        out.append("name part must consist of alphanumeric characters, '-', '_' or '.', and "
                   "must start and end with an alphanumeric character")
    return out


def label_value(value: str) -> list[str]:
    """Reasons ``value`` is not a valid label value (empty is fine)."""
    out = []
    if len(value) > 63:
        out.append("must be no more than 63 characters")
    if value and not _QNAME_PART_RE.fullmatch(value):
        out.append("a valid label must be an empty string or consist of alphanumeric characters, "
                   "'-', '_' or '.', and must start and end with an alphanumeric character")
    return out


def iana_port_name(value: str) -> list[str]:
    """Reasons ``value`` is not an IANA service name (a named port)."""
    out = []
    if len(value) > 15:
        out.append("must be no more than 15 characters")
    if not _IANA_RE.fullmatch(value):
        out.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in value:
        out.append("must not contain consecutive hyphens")
    if not any(c.isalpha() for c in value):
        out.append("must contain at least one letter (a-z)")
    if value.startswith("-") or value.endswith("-"):
        out.append("must not begin or end with a hyphen")
    return out


def check_name(errs: ErrorList, value: str, path: str, syntax: NameCheck) -> None:
    """Record one ``Invalid`` per reason ``value`` breaks ``syntax``."""
    for reason in syntax(value):
        errs.invalid(path, value, reason)


# -- metadata -------------------------------------------------------------------
def validate_labels(errs: ErrorList, labels: Any, path: str) -> None:
    """A map of label keys (qualified names) to label values."""
    if labels is None:
        return
    if not isinstance(labels, dict):
        errs.type_invalid(path, labels, "a map of string keys to string values")
        return
    for key, value in labels.items():
        if not isinstance(key, str):
            errs.type_invalid(path, key, "a string key")
            continue
        check_name(errs, key, path, qualified_name)
        if not isinstance(value, str):
            errs.type_invalid(f"{path}[{key}]", value, "a string")
        else:
            check_name(errs, value, f"{path}[{key}]", label_value)


def _validate_annotations(errs: ErrorList, notes: Any, path: str) -> None:
    if notes is None:
        return
    if not isinstance(notes, dict):
        errs.type_invalid(path, notes, "a map of string keys to string values")
        return
    size = 0
    for key, value in notes.items():
        if not isinstance(key, str):
            errs.type_invalid(path, key, "a string key")
            continue
        check_name(errs, key.lower(), path, qualified_name)
        if not isinstance(value, str):
            errs.type_invalid(f"{path}[{key}]", value, "a string")
            continue
        size += len(key.encode()) + len(value.encode())
    if size > _ANNOTATIONS_MAX_BYTES:
        errs.too_long(path, _ANNOTATIONS_MAX_BYTES)


def _validate_owner_references(errs: ErrorList, refs: list[Any], path: str) -> None:
    controllers = 0
    for _, p, ref in errs.dicts_in(refs, path):
        for key in ("apiVersion", "kind", "name", "uid"):
            errs.str_at(ref, key, f"{p}.{key}", required=True)
        if errs.bool_at(ref, "controller", f"{p}.controller"):
            controllers += 1
        errs.bool_at(ref, "blockOwnerDeletion", f"{p}.blockOwnerDeletion")
    if controllers > 1:
        errs.invalid(path, controllers, "only one reference can have controller set to true")


def validate_object_meta(
    errs: ErrorList, obj: Mapping[str, Any], *, namespaced: bool, name_syntax: NameCheck
) -> None:
    """``metadata``: name, namespace, labels, annotations, owner references, finalizers."""
    m = errs.dict_at(obj, "metadata", "metadata", required=True)
    if m is None:
        return
    name = errs.str_at(m, "name", "metadata.name")
    if not name:
        if m.get("name") in (None, ""):
            errs.required("metadata.name", "name or generateName is required")
    else:
        check_name(errs, name, "metadata.name", name_syntax)
    errs.str_at(m, "generateName", "metadata.generateName")
    ns = errs.str_at(m, "namespace", "metadata.namespace")
    if namespaced:
        if not ns:
            if m.get("namespace") in (None, ""):
                errs.required("metadata.namespace")
        else:
            check_name(errs, ns, "metadata.namespace", dns1123_label)
    elif ns:
        errs.forbidden("metadata.namespace", "not allowed on this type")
    validate_labels(errs, m.get("labels"), "metadata.labels")
    _validate_annotations(errs, m.get("annotations"), "metadata.annotations")
    refs = errs.list_at(m, "ownerReferences", "metadata.ownerReferences")
    if refs is not None:
        _validate_owner_references(errs, refs, "metadata.ownerReferences")
    finalizers = errs.list_at(m, "finalizers", "metadata.finalizers")
    for i, fin in enumerate(finalizers or ()):
        if not isinstance(fin, str):
            errs.type_invalid(f"metadata.finalizers[{i}]", fin, "a string")
        else:
            check_name(errs, fin, f"metadata.finalizers[{i}]", qualified_name)
    for key in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp"):
        errs.str_at(m, key, f"metadata.{key}")
    errs.int_at(m, "generation", "metadata.generation", minimum=0)
    errs.int_at(m, "deletionGracePeriodSeconds", "metadata.deletionGracePeriodSeconds", minimum=0)


_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_label_selector(errs: ErrorList, sel: Any, path: str, *, required: bool = False
                            ) -> None:
    """A ``metav1.LabelSelector``: ``matchLabels`` and ``matchExpressions``."""
    if sel is None:
        if required:
            errs.required(path)
        return
    if not isinstance(sel, dict):
        errs.type_invalid(path, sel, "an object")
        return
    validate_labels(errs, sel.get("matchLabels"), f"{path}.matchLabels")
    exprs = errs.list_at(sel, "matchExpressions", f"{path}.matchExpressions")
    for _, p, expr in errs.dicts_in(exprs or [], f"{path}.matchExpressions"):
        key = errs.str_at(expr, "key", f"{p}.key", required=True)
        if key:
            check_name(errs, key, f"{p}.key", qualified_name)
        op = errs.enum_at(expr, "operator", f"{p}.operator", _SELECTOR_OPERATORS, required=True)
        values = errs.list_at(expr, "values", f"{p}.values")
        if op in ("In", "NotIn") and not values:
            errs.required(f"{p}.values", "must be specified when `operator` is 'In' or 'NotIn'")
        if op in ("Exists", "DoesNotExist") and values:
            errs.forbidden(f"{p}.values",
                           "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
        for i, v in enumerate(values or ()):
            if not isinstance(v, str):
                errs.type_invalid(f"{p}.values[{i}]", v, "a string")
            else:
                check_name(errs, v, f"{p}.values[{i}]", label_value)
