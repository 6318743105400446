"""Objects: Kubernetes-shaped plain dicts, their encoding, and wall-clock timestamps.

An object is a ``dict`` with ``apiVersion``, ``kind``, ``metadata``, and
usually ``spec`` and ``status``. It is stored as msgpack. The stored bytes
never hold ``metadata.resourceVersion``: that is the key's mod revision,
filled in by ``decode`` on every read, so it can never disagree with the
store.

Timestamps are RFC 3339 strings in UTC with second precision
(``2024-05-01T12:00:00Z``), read from an injected ``WallClock`` (any
``kvstore.clock.Clock`` whose ``now()`` counts seconds since the Unix epoch):
``SystemWallClock`` in production, ``kvstore.clock.FakeClock(1.7e9)`` in tests.
"""

from __future__ import annotations

import copy
import datetime
import time
from collections.abc import Mapping
from typing import Any

import msgpack

from controllers.api.errors import ApiError, BadRequest
from kvstore.clock import Clock as WallClock
from kvstore.mvcc.types import KeyValue

__all__ = [
    "Obj",
    "SystemWallClock",
    "WallClock",
    "annotations_of",
    "decode",
    "deep_copy",
    "encode",
    "format_timestamp",
    "labels_of",
    "meta",
    "name_of",
    "namespace_of",
    "namespaced_name",
    "parse_timestamp",
]

Obj = dict[str, Any]
"""An object: a plain, msgpack-serialisable dict."""


class SystemWallClock:
    """Seconds since the Unix epoch, from the system clock."""

    def now(self) -> float:
        return time.time()


def format_timestamp(seconds: float) -> str:
    """``seconds`` since the epoch as RFC 3339 in UTC, second precision."""
    moment = datetime.datetime.fromtimestamp(int(seconds), tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 timestamp (``Z`` or an offset).

    Raises:
        ValueError: ``text`` is not an RFC 3339 timestamp.
    """
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone")
    return moment.timestamp()


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """``obj["metadata"]`` (empty if it is missing or not a mapping; frozen objects too)."""
    m = obj.get("metadata")
    return m if isinstance(m, Mapping) else {}


def name_of(obj: Mapping[str, Any]) -> str:
    """``metadata.name`` (``""`` if unset)."""
    name = meta(obj).get("name")
    return name if isinstance(name, str) else ""


def namespace_of(obj: Mapping[str, Any]) -> str:
    """``metadata.namespace`` (``""`` if unset or cluster-scoped)."""
    ns = meta(obj).get("namespace")
    return ns if isinstance(ns, str) else ""


def labels_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    """``metadata.labels`` (empty if unset)."""
    labels = meta(obj).get("labels")
    return labels if isinstance(labels, Mapping) else {}


def annotations_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    """``metadata.annotations`` (empty if unset)."""
    notes = meta(obj).get("annotations")
    return notes if isinstance(notes, Mapping) else {}


def namespaced_name(obj: Mapping[str, Any]) -> str:
    """The cache key client-go uses: ``namespace/name``, or ``name`` when cluster-scoped."""
    ns = namespace_of(obj)
    return f"{ns}/{name_of(obj)}" if ns else name_of(obj)


def deep_copy(obj: Obj) -> Obj:
    """A copy sharing nothing mutable with ``obj``."""
    return copy.deepcopy(obj)


def encode(obj: Mapping[str, Any]) -> bytes:
    """The stored form of ``obj``: msgpack, without ``metadata.resourceVersion``.

    Raises:
        BadRequest: ``obj`` holds a value msgpack cannot encode.
    """
    m = obj.get("metadata")
    if isinstance(m, dict) and "resourceVersion" in m:
        obj = {**obj, "metadata": {k: v for k, v in m.items() if k != "resourceVersion"}}
    try:
        return bytes(msgpack.packb(obj, use_bin_type=True))
    except (TypeError, ValueError, OverflowError) as e:
        raise BadRequest(f"object cannot be encoded: {e}") from e


def decode(kv: KeyValue) -> Obj:
    """The object stored in ``kv``, with ``metadata.resourceVersion`` set to its mod revision."""
    obj = msgpack.unpackb(kv.value, raw=False, strict_map_key=False)
    if not isinstance(obj, dict):
        raise ApiError(f"key {kv.key!r} does not hold an object")
    m = obj.setdefault("metadata", {})
    m["resourceVersion"] = str(kv.mod_revision)
    return obj
