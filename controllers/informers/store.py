"""The cache contract: ``Store``, key functions, and the read-only views handed to handlers.

A ``Store`` holds objects by key. The key of an object is computed by a
``KeyFunc``, which must be deterministic: ``meta_namespace_key_func`` gives
``namespace/name`` for namespaced objects and ``name`` for cluster-scoped
ones. ``split_meta_namespace_key`` reverses it.

The ``object_*`` accessors read metadata from plain and frozen objects alike.

Objects in a cache are shared by every reader and must never be mutated:
copy first (``thaw``). ``freeze`` turns an object into a recursive read-only
view (mappings become ``types.MappingProxyType``, lists become tuples) so a
mutation fails loudly; informers do this in debug mode (see
``shared_informer``).
"""

from __future__ import annotations

import builtins
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, cast

from controllers.api.objects import Obj

__all__ = [
    "KeyFunc",
    "KeyFuncError",
    "Store",
    "freeze",
    "is_frozen",
    "meta_namespace_key_func",
    "object_labels",
    "object_meta",
    "object_name",
    "object_namespace",
    "object_resource_version",
    "split_meta_namespace_key",
    "thaw",
]

KeyFunc = Callable[[Any], str]
"""The key of an object in a store; must be deterministic."""


class KeyFuncError(ValueError):
    """A key function could not compute the key of an object."""

    def __init__(self, obj: object, reason: str) -> None:
        super().__init__(f"couldn't create key for object {obj!r}: {reason}")
        self.obj = obj
        self.reason = reason


def object_meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """``obj["metadata"]``, frozen or not (an empty mapping if missing)."""
    m = obj.get("metadata")
    return m if isinstance(m, Mapping) else {}


def _str_field(m: Mapping[str, Any], name: str) -> str:
    value = m.get(name)
    return value if isinstance(value, str) else ""


def object_name(obj: Mapping[str, Any]) -> str:
    """``metadata.name`` ("" if unset)."""
    return _str_field(object_meta(obj), "name")


def object_namespace(obj: Mapping[str, Any]) -> str:
    """``metadata.namespace`` ("" if unset)."""
    return _str_field(object_meta(obj), "namespace")


def object_labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    """``metadata.labels`` (empty if unset)."""
    labels = object_meta(obj).get("labels")
    return labels if isinstance(labels, Mapping) else {}


def object_resource_version(obj: Mapping[str, Any]) -> str:
    """``metadata.resourceVersion`` ("" if unset)."""
    return _str_field(object_meta(obj), "resourceVersion")


def meta_namespace_key_func(obj: Mapping[str, Any]) -> str:
    """``namespace/name``, or ``name`` for a cluster-scoped object.

    Raises:
        KeyFuncError: the object has no ``metadata.name``.
    """
    if not isinstance(obj, Mapping):
        raise KeyFuncError(obj, "object is not a mapping")
    name = object_name(obj)
    if not name:
        raise KeyFuncError(obj, "object has no metadata.name")
    ns = object_namespace(obj)
    return f"{ns}/{name}" if ns else name


def split_meta_namespace_key(key: str) -> tuple[str, str]:
    """``(namespace, name)`` of a key from ``meta_namespace_key_func`` (namespace may be "").

    Raises:
        ValueError: the key has more than one ``/``.
    """
    parts = key.split("/")
    if len(parts) == 1:
        return "", parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise ValueError(f"unexpected key format: {key!r}")


class Store(Protocol):
    """Objects by key. Every method is synchronous: it never awaits, so on one
    event loop each call is atomic with respect to every other task."""

    def add(self, obj: Obj) -> None:
        """Insert or replace the object under its key."""
        ...

    def update(self, obj: Obj) -> None:
        """Same as ``add``: the object under its key becomes ``obj``."""
        ...

    def delete(self, obj: Obj) -> None:
        """Remove the object under ``obj``'s key (no error if absent)."""
        ...

    def list(self) -> builtins.list[Obj]:
        """Every object, in key order."""
        ...

    def list_keys(self) -> builtins.list[str]:
        """Every key, sorted."""
        ...

    def get(self, obj: Obj) -> Obj | None:
        """The object stored under ``obj``'s key, or None."""
        ...

    def get_by_key(self, key: str) -> Obj | None:
        """The object stored under ``key``, or None."""
        ...

    def replace(self, objs: Iterable[Obj], resource_version: str) -> None:
        """Make the contents exactly ``objs``; ``resource_version`` is the list's."""
        ...

    def resync(self) -> None:
        """Meaningless for a plain store; queues re-deliveries in a ``DeltaFIFO``."""
        ...


def freeze(obj: Any) -> Any:
    """A recursive read-only view of ``obj``: mappings as ``MappingProxyType``, lists as tuples."""
    if isinstance(obj, types.MappingProxyType):
        return obj
    if isinstance(obj, Mapping):
        return types.MappingProxyType({k: freeze(v) for k, v in obj.items()})
    if isinstance(obj, (list, tuple)):
        return tuple(freeze(v) for v in obj)
    if isinstance(obj, (set, frozenset)):
        return frozenset(obj)
    return obj


def is_frozen(obj: object) -> bool:
    """Whether ``obj`` is a view made by ``freeze``."""
    return isinstance(obj, types.MappingProxyType)


def thaw(obj: Any) -> Any:
    """A mutable deep copy of ``obj`` (frozen or not): dicts and lists again."""
    if isinstance(obj, Mapping):
        return {k: thaw(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [thaw(v) for v in obj]
    if isinstance(obj, frozenset):
        return set(obj)
    return cast(Any, obj)
