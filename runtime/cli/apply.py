"""``steer apply``'s three-way merge: kubectl's client-side apply.

Each applied object remembers the configuration it was applied from in the
annotation ``kubectl.kubernetes.io/last-applied-configuration`` (compact
JSON with sorted keys, the annotation itself left out). Applying a new
configuration computes a strategic merge patch from three versions:

- *original*: the last-applied configuration (none: nothing is removed);
- *modified*: the new configuration, carrying its own last-applied annotation;
- *current*: the live object.

The patch sets every field of *modified* that differs from *current*, and
removes (``null``) every field that *original* had and *modified* no longer
has. Fields set by others (in *current* only, never applied) are kept.
Lists that the strategic merge keys (containers, env, volumes and ports by
name, port or path; see ``controllers.api.patch``) are merged item by item
on their key: an item dropped from the configuration is deleted with
``$patch: delete``, an item changed is patched with only what changed, an
item added is appended. Other lists are replaced whole when they differ.

``apply_object`` creates the object if it is missing, else patches it, and
says which: ``created``, ``configured`` or ``unchanged``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from controllers.api import BadRequest, Clientset, Kind, NotFound
from controllers.api.objects import Obj, annotations_of, meta
from controllers.api.patch import _merge_key as merge_key
from runtime.cli.session import fail

__all__ = ["LAST_APPLIED", "apply_object", "last_applied", "three_way_patch", "with_last_applied"]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def three_way_patch(original: Obj | None, modified: Obj, current: Obj) -> Obj:
    """The strategic merge patch taking ``current`` to ``modified`` (see the module docstring)."""
    return _map(original or {}, modified, current, ())


def _map(original: dict[str, Any], modified: dict[str, Any], current: dict[str, Any],
         path: tuple[str, ...]) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    for key in original:
        if key not in modified and key in current:
            patch[key] = None
    for key, mval in modified.items():
        child = (*path, key)
        oval = original.get(key)
        if key not in current:
            if mval is not None:
                patch[key] = copy.deepcopy(mval)
            continue
        cval = current[key]
        if isinstance(mval, dict) and isinstance(cval, dict):
            sub = _map(oval if isinstance(oval, dict) else {}, mval, cval, child)
            if sub:
                patch[key] = sub
            continue
        mk = merge_key(child) if isinstance(mval, list) else None
        if mk is not None and _keyed(mval, mk) and _keyed(cval, mk):
            prior: list[dict[str, Any]] = oval if isinstance(oval, list) and _keyed(oval, mk) \
                else []
            items = _list(prior, mval, cval, child, mk)
            if items:
                patch[key] = items
            continue
        if mval != cval:
            patch[key] = copy.deepcopy(mval)
    return patch


def _keyed(value: Any, key: str) -> bool:
    return isinstance(value, list) and all(isinstance(i, dict) and key in i for i in value)


def _find(items: list[dict[str, Any]], key: str, value: Any) -> dict[str, Any] | None:
    return next((i for i in items if i.get(key) == value), None)


def _list(original: list[dict[str, Any]], modified: list[dict[str, Any]],
          current: list[dict[str, Any]], path: tuple[str, ...], key: str) -> list[Any]:
    out: list[Any] = []
    for item in original:
        value = item[key]
        if _find(modified, key, value) is None and _find(current, key, value) is not None:
            out.append({key: value, "$patch": "delete"})
    for item in modified:
        live = _find(current, key, item[key])
        if live is None:
            out.append(copy.deepcopy(item))
            continue
        sub = _map(_find(original, key, item[key]) or {}, item, live, path)
        if sub:
            out.append({key: item[key], **sub})
    return out


def last_applied(obj: Obj) -> Obj | None:
    """The configuration ``obj`` was last applied from, if it carries a readable one."""
    text = annotations_of(obj).get(LAST_APPLIED)
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def with_last_applied(config: Obj) -> Obj:
    """``config`` carrying its own last-applied annotation (kubectl's *modified*)."""
    stripped = copy.deepcopy(config)
    m = stripped.get("metadata")
    if isinstance(m, dict) and isinstance(m.get("annotations"), dict):
        m["annotations"].pop(LAST_APPLIED, None)
        if not m["annotations"]:
            del m["annotations"]
    text = json.dumps(stripped, sort_keys=True, separators=(",", ":")) + "\n"
    out = copy.deepcopy(stripped)
    notes = out.setdefault("metadata", {}).get("annotations")
    if not isinstance(notes, dict):
        notes = out["metadata"]["annotations"] = {}
    notes[LAST_APPLIED] = text
    return out


async def apply_object(api: Clientset, config: Obj, namespace: str | None,
                       ) -> tuple[Kind, Obj, str]:
    """Create or patch the object ``config`` describes; returns its kind, state and the verb.

    ``namespace`` is ``-n``'s value (``None``: not given), used when the
    configuration names none.
    """
    try:
        kind = api.registry.for_object(config)
    except BadRequest:
        fail(f'resource mapping not found for name: "{meta(config).get("name", "")}" '
             f'namespace: "{meta(config).get("namespace", "")}": no matches for kind '
             f'"{config.get("kind")}" in version "{config.get("apiVersion")}"')
    client = api.resource(kind.resource)
    m = meta(config)
    name = m.get("name")
    if not isinstance(name, str) or not name:
        fail("cannot use generate name with apply")
    ns = ""
    if kind.namespaced:
        given = m.get("namespace") if isinstance(m.get("namespace"), str) else ""
        if given and namespace and given != namespace:
            fail(f'the namespace from the provided object "{given}" does not match the '
                 f'namespace "{namespace}". You must pass \'--namespace={given}\' to perform '
                 f"this operation.")
        ns = given or namespace or "default"
    modified = with_last_applied(config)
    try:
        current = await client.get(name, ns)
    except NotFound:
        return kind, await client.create(modified, namespace=ns or None), "created"
    patch = three_way_patch(last_applied(current), modified, current)
    if not patch:
        return kind, current, "unchanged"
    result = await client.patch(name, ns, patch, "strategic")
    before = meta(current).get("resourceVersion")
    return kind, result, "unchanged" if meta(result).get("resourceVersion") == before \
        else "configured"
