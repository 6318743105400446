"""Kubernetes-shaped objects on the store, and a typed asyncio client for them.

General layout (imports point down only):

- ``clientset``, ``client``: ``Clientset`` and ``ResourceClient``: create, get,
  list, update, update_status, patch, delete, watch, and bind for pods.
- ``watch``, ``listing``, ``deletion``, ``patch``, ``binding``: the semantics of
  watches, paged lists, finalizers and propagation, merge and strategic
  patches, and pods/binding.
- ``kinds``: the registry of kinds (built-in and ``register_kind``) and storage keys.
- ``defaults``; ``validation`` with ``pod_validation``, ``workload_validation``,
  ``core_validation``: what every write is defaulted with and checked against.
- ``selectors``: label and field selectors.
- ``objects``: objects as dicts, their msgpack encoding and timestamps.
- ``kv``: the key-value Protocol the client needs (``kvstore.Node`` and
  ``kvstore.Client`` both satisfy it). ``errors``: ``ApiError`` and its family.
"""

from __future__ import annotations

from controllers.api.client import DEFAULT_NAMESPACES, ResourceClient, ensure_namespaces
from controllers.api.clientset import Clientset
from controllers.api.deletion import FINALIZER_FOREGROUND, FINALIZER_ORPHAN, PropagationPolicy
from controllers.api.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    Conflict,
    FieldError,
    FieldErrorType,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
)
from controllers.api.kinds import REGISTRY, Kind, KindRegistry, register_kind
from kvstore.kv import KV
from controllers.api.objects import Obj, SystemWallClock, WallClock, namespaced_name
from controllers.api.patch import json_patch, merge_patch, strategic_merge_patch
from controllers.api.selectors import FieldSelector, LabelSelector
from controllers.api.validation import ErrorList
from controllers.api.watch import ResourceWatch, WatchEvent, WatchEventType

__all__ = [
    "AlreadyExists",
    "ApiError",
    "BadRequest",
    "Clientset",
    "Conflict",
    "DEFAULT_NAMESPACES",
    "ErrorList",
    "FINALIZER_FOREGROUND",
    "FINALIZER_ORPHAN",
    "FieldError",
    "FieldErrorType",
    "FieldSelector",
    "Forbidden",
    "Gone",
    "Invalid",
    "KV",
    "Kind",
    "KindRegistry",
    "LabelSelector",
    "NotFound",
    "Obj",
    "PropagationPolicy",
    "REGISTRY",
    "ResourceClient",
    "ResourceWatch",
    "SystemWallClock",
    "WallClock",
    "WatchEvent",
    "WatchEventType",
    "ensure_namespaces",
    "json_patch",
    "merge_patch",
    "namespaced_name",
    "register_kind",
    "strategic_merge_patch",
]
