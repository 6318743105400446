"""Patches: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and a strategic merge patch.

``json_patch(target, operations)`` applies a list of RFC 6902 operations
(add, remove, replace, move, copy, test) with the ``jsonpatch`` library; an
operation that does not apply (a failed ``test``, a missing path) raises
``BadRequest`` and changes nothing.

``merge_patch(target, patch)``: a dict in the patch merges into the target
recursively, ``None`` deletes a key, anything else (lists included)
replaces. ``strategic_merge_patch`` differs on lists that Kubernetes merges
by key instead of replacing:

- lists of objects keyed by a field: ``containers``, ``initContainers``,
  ``ephemeralContainers``, ``env``, ``volumes``, ``imagePullSecrets`` by
  ``name``; ``volumeMounts`` by ``mountPath``; a container's ``ports`` by
  ``containerPort`` and a Service's ``spec.ports`` by ``port``;
  ``conditions`` by ``type``; ``metadata.ownerReferences`` by ``uid``. A patch
  item merges into the target item with the same key, or is appended; an
  item ``{"name": "x", "$patch": "delete"}`` removes the target item, and a
  ``{"$patch": "replace"}`` item makes the rest of the patch list replace
  the target list;
- ``metadata.finalizers`` is a set: patch values are added, and
  ``$deleteFromPrimitiveList/finalizers`` removes values;
- a map with ``"$patch": "replace"`` replaces the target map, one with
  ``"$patch": "delete"`` deletes it; ``$retainKeys`` drops target keys not
  listed; ``$setElementOrder/...`` is accepted and ignored (merged lists
  keep the target's order, new items last).

Every other list is replaced, as in a merge patch. Both functions return a
new value and never modify their arguments.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import jsonpointer

from controllers.api.errors import BadRequest

__all__ = ["json_patch", "merge_patch", "strategic_merge_patch"]

_BY_NAME = ("containers", "initContainers", "ephemeralContainers", "env", "volumes",
            "imagePullSecrets")
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_SET_LISTS = (("metadata", "finalizers"),)
_DELETE_FROM = "$deleteFromPrimitiveList/"
_ORDER = "$setElementOrder/"


def json_patch(target: Any, operations: Any) -> Any:
    """``target`` with the RFC 6902 ``operations`` applied; raises ``BadRequest``."""
    if not isinstance(operations, list):
        raise BadRequest("a JSON patch is a list of operations")
    try:
        return jsonpatch.apply_patch(target, operations, in_place=False)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as e:
        raise BadRequest(f"the JSON patch does not apply: {e}") from e
    except (TypeError, KeyError, IndexError, ValueError) as e:  # malformed operations
        raise BadRequest(f"invalid JSON patch: {e}") from e


def merge_patch(target: Any, patch: Any) -> Any:
    """``target`` with the JSON merge patch ``patch`` applied (RFC 7386)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _merge_key(path: tuple[str, ...]) -> str | None:
    """The field that identifies items of the list at ``path`` (list indices left out)."""
    last = path[-1]
    if last in _BY_NAME:
        return "name"
    if last == "volumeMounts":
        return "mountPath"
    if last == "conditions":
        return "type"
    if path == ("metadata", "ownerReferences"):
        return "uid"
    if last == "ports":
        if len(path) >= 2 and path[-2] in _CONTAINER_LISTS:
            return "containerPort"
        if path == ("spec", "ports"):
            return "port"
    return None


_DELETE = object()
"""Returned by ``_merge_map`` for a map patch holding ``"$patch": "delete"``."""


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """``target`` with the strategic merge patch ``patch`` applied (see the module docstring).

    Raises:
        BadRequest: an unknown ``$patch`` directive or a malformed directive value.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = _merge_map(target if isinstance(target, dict) else {}, patch, ())
    return {} if result is _DELETE else result


def _merge_map(target: dict[str, Any], patch: dict[str, Any], path: tuple[str, ...]) -> Any:
    directive = patch.get("$patch")
    if directive == "delete":
        return _DELETE
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    if directive is not None:
        raise BadRequest(f"unknown patch directive {directive!r} at {'.'.join(path) or '.'}")
    result = copy.deepcopy(target)
    for key, value in patch.items():
        if key.startswith(_DELETE_FROM):
            field = key[len(_DELETE_FROM):]
            if not isinstance(value, list):
                raise BadRequest(f"{key} must be a list")
            current = result.get(field)
            if isinstance(current, list):
                result[field] = [v for v in current if v not in value]
            continue
        if key.startswith(_ORDER) or key in ("$retainKeys", "$patch"):
            continue
        child = (*path, key)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            current = result.get(key)
            merged = _merge_map(current if isinstance(current, dict) else {}, value, child)
            if merged is _DELETE:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(result.get(key), value, child)
        else:
            result[key] = copy.deepcopy(value)
    retain = patch.get("$retainKeys")
    if retain is not None:
        if not isinstance(retain, list):
            raise BadRequest("$retainKeys must be a list")
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(target: Any, patch: list[Any], path: tuple[str, ...]) -> list[Any]:
    if path in _SET_LISTS:
        base = list(target) if isinstance(target, list) else []
        return base + [v for v in patch if v not in base]
    key = _merge_key(path)
    if key is None or not all(isinstance(item, dict) for item in patch):
        return copy.deepcopy(patch)
    if any(item.get("$patch") == "replace" for item in patch):
        return [copy.deepcopy(i) for i in patch if i.get("$patch") != "replace"]
    result = [copy.deepcopy(i) for i in target] if isinstance(target, list) else []
    for item in patch:
        if key not in item:
            raise BadRequest(f"{'.'.join(path)}: every item of a strategic patch list needs "
                             f"the merge key {key!r}")
        idx = next((i for i, t in enumerate(result)
                    if isinstance(t, dict) and t.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                del result[idx]
            continue
        if idx is None:
            merged = _merge_map({}, item, path)
            if merged is not _DELETE:
                result.append(merged)
        else:
            merged = _merge_map(result[idx], item, path)
            if merged is _DELETE:
                del result[idx]
            else:
                result[idx] = merged
    return result
