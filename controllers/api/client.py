"""The resource client: create, read, update, patch, delete and watch objects of one kind.

Every write is one compare-and-swap transaction on the object's key, so
concurrent writers never lose each other's changes:

- ``create`` defaults, validates and stores a new object, setting ``uid``
  (a random UUID 4), ``creationTimestamp`` (from the injected wall clock),
  ``generation`` 1 and ``resourceVersion`` (the key's mod revision). A
  ``metadata.generateName`` gets a random 5-character suffix, retried on
  collision. The txn requires the key to be absent (else ``AlreadyExists``)
  and the namespace object to be unchanged since it was read: a missing
  namespace is ``NotFound`` (``default`` and ``kube-system`` are created on
  demand), a terminating one ``Forbidden``. A given status is kept.
- ``update`` compares ``metadata.resourceVersion`` with the key's mod revision
  (stale: ``Conflict``). It keeps ``uid``, ``creationTimestamp``,
  ``generation`` and the deletion fields from the stored object, keeps the
  stored ``status`` (only ``update_status`` changes it), bumps ``generation``
  when ``spec`` changes, and refuses changes to immutable fields. An update
  that changes nothing writes nothing. An update that removes the last
  finalizer of an object being deleted deletes it (see ``deletion``).
- ``update_status`` changes ``status`` and nothing else, with the same CAS.
- ``patch`` applies a merge or strategic merge patch to the current object
  and updates it, reading again and retrying on ``Conflict`` unless the
  patch names a ``metadata.resourceVersion``, which is then a precondition.
- ``delete`` follows ``deletion``: at once, or by marking the object.
- ``bind`` (pods only) is the ``pods/binding`` subresource: one CAS write
  that sets ``spec.nodeName`` and ``PodScheduled=True`` together, refused
  for a pod that has a node already or is being deleted (see ``binding``).

Reads (``get``, ``list``) are linearizable. ``namespace=""`` means
``default`` for namespaced kinds and is ignored for cluster-scoped ones.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

from controllers.api import binding, deletion, service_ips, strategy
from controllers.api.errors import AlreadyExists, BadRequest, Conflict, Forbidden, NotFound
from controllers.api.kinds import REGISTRY, Kind, KindRegistry
from kvstore.kv import KV
from controllers.api.listing import list_objects, parse_resource_version
from controllers.api.objects import (
    Obj,
    SystemWallClock,
    WallClock,
    decode,
    deep_copy,
    encode,
    meta,
)
from controllers.api.patch import json_patch, merge_patch, strategic_merge_patch
from controllers.api.selectors import FieldSelector, LabelSelector
from controllers.api.validation import ErrorList, raise_if_invalid, validate_object_meta
from controllers.api.watch import ResourceWatch, start_watch
from kvstore.mvcc.request import CompareTarget, compare, op_delete, op_put, op_range
from kvstore.mvcc.types import KeyValue

__all__ = ["DEFAULT_NAMESPACES", "ResourceClient"]

DEFAULT_NAMESPACES = ("default", "kube-system")
"""Namespaces created on demand by the first object created in them."""

_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_GENERATE_ATTEMPTS = 8
JsonPatchOps = list[Any]
"""An RFC 6902 patch: a list of operations."""

_CAS_ATTEMPTS = 16


class ResourceClient:
    """Objects of one kind in a store (see the module docstring)."""

    def __init__(
        self,
        kv: KV,
        kind: Kind | str,
        *,
        clock: WallClock | None = None,
        rng: random.Random | None = None,
        registry: KindRegistry | None = None,
    ) -> None:
        self.registry = registry if registry is not None else REGISTRY
        self.kind = kind if isinstance(kind, Kind) else self.registry.lookup(kind)
        self.kv = kv
        self.clock: WallClock = clock if clock is not None else SystemWallClock()
        self.rng = rng if rng is not None else random.SystemRandom()

    # -- reads ---------------------------------------------------------------------
    async def get(self, name: str, namespace: str = "") -> Obj:
        """The object ``name``; raises ``NotFound``."""
        entry = await self.kv.get(self._key(namespace, name))
        if entry is None:
            raise NotFound(self.kind.resource, name)
        return decode(entry)

    async def list(
        self,
        namespace: str | None = None,
        *,
        label_selector: str | LabelSelector | None = None,
        field_selector: str | FieldSelector | None = None,
        limit: int = 0,
        continue_token: str | None = None,
        resource_version: str = "",
    ) -> Obj:
        """A list object (``items``, ``metadata.resourceVersion``, ``metadata.continue``).

        ``namespace=None`` lists every namespace. See ``listing`` for paging.
        """
        return await list_objects(
            self.kv, self.kind, namespace, label_selector=_labels(label_selector),
            field_selector=_fields(field_selector), limit=limit,
            continue_token=continue_token, resource_version=resource_version)

    async def watch(
        self,
        namespace: str | None = None,
        *,
        label_selector: str | LabelSelector | None = None,
        field_selector: str | FieldSelector | None = None,
        resource_version: str = "",
        allow_bookmarks: bool = True,
    ) -> ResourceWatch:
        """Events of this kind after ``resource_version`` (see ``controllers.api.watch``)."""
        return await start_watch(
            self.kv, self.kind, namespace, label_selector=_labels(label_selector),
            field_selector=_fields(field_selector),
            resource_version=parse_resource_version(resource_version),
            allow_bookmarks=allow_bookmarks)

    # -- create --------------------------------------------------------------------
    async def create(self, obj: Obj, *, namespace: str | None = None) -> Obj:
        """Store a new object and return it as stored.

        Raises:
            AlreadyExists, Invalid, BadRequest, NotFound (namespace), Forbidden (terminating).
        """
        obj = self._typed_copy(obj)
        m = obj["metadata"]
        if self.kind.namespaced:
            given = m.get("namespace") or ""
            if namespace and given and given != namespace:
                raise BadRequest("the namespace of the object does not match the namespace "
                                 f"of the request ({given!r} != {namespace!r})")
            m["namespace"] = given or namespace or "default"
        else:
            m.pop("namespace", None)
        if m.get("resourceVersion"):
            raise BadRequest("resourceVersion should not be set on objects to be created")
        prefix = m.get("generateName")
        generate = not m.get("name") and isinstance(prefix, str) and bool(prefix)
        for attempt in range(_GENERATE_ATTEMPTS if generate else 1):
            if generate:
                suffix = "".join(self.rng.choice(_SUFFIX_ALPHABET) for _ in range(5))
                m["name"] = f"{prefix}{suffix}"
            try:
                uid = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
                new = strategy.prepare_for_create(self.kind, obj, uid=uid, now=self.clock.now())
                return await self._create_once(new)
            except AlreadyExists:
                if not generate or attempt == _GENERATE_ATTEMPTS - 1:
                    raise
        raise AlreadyExists(self.kind.resource, str(m.get("name", "")))

    async def _create_once(self, obj: Obj) -> Obj:
        m = obj["metadata"]
        key = self._key(m.get("namespace", ""), m["name"])
        for _ in range(_CAS_ATTEMPTS):
            guards = [compare(key, CompareTarget.CREATE, "=", 0)]
            if self.kind.namespaced:
                ns_entry = await self._namespace_for_create(m["namespace"], m["name"])
                guards.append(compare(ns_entry.key, CompareTarget.MOD, "=", ns_entry.mod_revision))
            stored, ips = await service_ips.on_create(self.kv, self.kind, obj, self.rng)
            res = await self.kv.txn([*guards, *ips.compares],
                                    [op_put(key, encode(stored)), *ips.ops], [op_range(key)])
            if res.succeeded:
                stored["metadata"]["resourceVersion"] = str(res.header_revision)
                return stored
            if _range_kvs(res.responses):
                raise AlreadyExists(self.kind.resource, m["name"])
        raise Conflict(self.kind.resource, m["name"], "the namespace kept changing")

    async def _namespace_for_create(self, namespace: str, name: str) -> KeyValue:
        ns_kind = self.registry.lookup("namespaces")
        entry = await self.kv.get(ns_kind.key("", namespace))
        if entry is None and namespace in DEFAULT_NAMESPACES:
            await ensure_namespaces(self.kv, [namespace], clock=self.clock, rng=self.rng,
                                    registry=self.registry)
            entry = await self.kv.get(ns_kind.key("", namespace))
        if entry is None:
            raise NotFound(ns_kind.resource, namespace)
        if meta(decode(entry)).get("deletionTimestamp"):
            raise Forbidden(self.kind.resource, name, f"unable to create new content in "
                            f"namespace {namespace} because it is being terminated")
        return entry

    # -- update --------------------------------------------------------------------
    async def update(self, obj: Obj) -> Obj:
        """Replace the object (CAS on ``metadata.resourceVersion``) and return it as stored.

        Raises:
            Conflict, NotFound, Invalid, BadRequest.
        """
        obj = self._typed_copy(obj)
        key, name, expected = self._target(obj)
        current = await self._current(key, name, expected)
        old = decode(current)
        new, ips = await service_ips.on_update(
            self.kv, self.kind, strategy.prepare_for_update(self.kind, obj, old), old, self.rng)
        return await self._commit(key, current, new, ips)

    async def update_status(self, obj: Obj) -> Obj:
        """Replace ``status`` only (CAS on ``metadata.resourceVersion``).

        Raises:
            Conflict, NotFound, Invalid, BadRequest (a kind without status).
        """
        if not self.kind.has_status:
            raise BadRequest(f"{self.kind.resource} has no status subresource")
        obj = self._typed_copy(obj)
        key, name, expected = self._target(obj)
        current = await self._current(key, name, expected)
        new = strategy.prepare_for_status_update(self.kind, obj, decode(current))
        return await self._commit(key, current, new)

    async def _commit(self, key: str, current: KeyValue, new: Obj,
                      ips: service_ips.TxnPart = service_ips.NO_TXN_PART) -> Obj:
        """Write ``new`` over ``current`` (or delete it, if nothing holds it any more)."""
        name = new["metadata"]["name"]
        guard = [compare(key, CompareTarget.MOD, "=", current.mod_revision)]
        if deletion.is_ready_to_remove(self.kind, new):
            release = service_ips.release(self.kind, decode(current))
            res = await self.kv.txn(guard, [op_delete(key), *release], [op_range(key)])
        else:
            new["metadata"]["resourceVersion"] = str(current.mod_revision)
            if new == decode(current):
                # Nothing changed (key order aside): write nothing, as Kubernetes does.
                return new
            res = await self.kv.txn([*guard, *ips.compares], [op_put(key, encode(new)), *ips.ops],
                                    [op_range(key)])
        if not res.succeeded:
            if not _range_kvs(res.responses):
                raise NotFound(self.kind.resource, name)
            raise Conflict(self.kind.resource, name)
        new["metadata"]["resourceVersion"] = str(res.header_revision)
        return new

    # -- patch ---------------------------------------------------------------------
    async def patch(
        self,
        name: str,
        namespace: str,
        patch: Obj | JsonPatchOps,
        patch_type: str = "merge",
        *,
        subresource: str = "",
    ) -> Obj:
        """Apply ``patch`` to the object or its status.

        ``patch_type`` is ``"merge"`` (RFC 7386), ``"strategic"`` or ``"json"``
        (RFC 6902: a list of operations; a ``test`` of
        ``/metadata/resourceVersion`` makes it conditional).

        Raises:
            BadRequest (unknown patch type, a patch changing the name, a JSON
            patch that does not apply), Conflict (only with a resourceVersion
            precondition), NotFound, Invalid.
        """
        if patch_type not in ("merge", "strategic", "json"):
            raise BadRequest(f"unsupported patch type {patch_type!r} (merge, strategic or json)")
        if subresource not in ("", "status"):
            raise BadRequest(f"unknown subresource {subresource!r}")
        precondition: Any = None
        if patch_type == "json":
            if not isinstance(patch, list):
                raise BadRequest("a JSON patch is a list of operations")
            apply: Callable[[Any, Any], Any] = json_patch
        else:
            if not isinstance(patch, dict):
                raise BadRequest("a patch must be an object")
            pmeta = patch.get("metadata")
            precondition = pmeta.get("resourceVersion") if isinstance(pmeta, dict) else None
            apply = merge_patch if patch_type == "merge" else strategic_merge_patch
        for attempt in range(_CAS_ATTEMPTS):
            current = await self.get(name, namespace)
            merged = apply(current, patch)
            if not isinstance(merged, dict) or not isinstance(merged.get("metadata"), dict):
                raise BadRequest("the patch removes the object's metadata")
            if merged["metadata"].get("name") != current["metadata"]["name"] or (
                    merged["metadata"].get("namespace") != current["metadata"].get("namespace")):
                raise BadRequest("a patch may not change the name or namespace of an object")
            merged["metadata"]["resourceVersion"] = precondition or current["metadata"][
                "resourceVersion"]
            try:
                if subresource == "status":
                    return await self.update_status(merged)
                return await self.update(merged)
            except Conflict:
                if precondition or attempt == _CAS_ATTEMPTS - 1:
                    raise
        raise Conflict(self.kind.resource, name)

    # -- bind ----------------------------------------------------------------------
    async def bind(
        self,
        name: str,
        namespace: str,
        node_name: str,
        *,
        uid: str | None = None,
        resource_version: str | None = None,
    ) -> Obj:
        """Bind the pod ``name`` to ``node_name`` in one write; return the pod as stored.

        Sets ``spec.nodeName`` and the ``PodScheduled=True`` condition together
        (``lastTransitionTime`` from the client's clock), as Kubernetes'
        ``pods/binding`` does. ``uid`` and ``resource_version`` are
        preconditions. A write that loses a race with another one (say, a label
        edit) reads the pod again and retries, re-checking everything.

        Raises:
            NotFound, Conflict (the pod has a node already, is being deleted, or
            a precondition fails), Invalid (a bad node name), BadRequest (not pods).
        """
        if self.kind.api_version != "v1" or self.kind.plural != "pods":
            raise BadRequest(f"{self.kind.resource} has no binding subresource")
        binding.validate_binding(name, node_name)
        key = self._key(namespace, name)
        for _ in range(_CAS_ATTEMPTS):
            current = await self.kv.get(key)
            if current is None:
                raise NotFound(self.kind.resource, name)
            old = decode(current)
            binding.check_preconditions(old, uid, resource_version)
            new = binding.prepare_for_bind(old, node_name, now=self.clock.now())
            res = await self.kv.txn([compare(key, CompareTarget.MOD, "=", current.mod_revision)],
                                    [op_put(key, encode(new))])
            if res.succeeded:
                new["metadata"]["resourceVersion"] = str(res.header_revision)
                return new
        raise Conflict(self.kind.resource, name, "the object kept changing during binding")

    # -- delete --------------------------------------------------------------------
    async def delete(
        self,
        name: str,
        namespace: str = "",
        *,
        propagation_policy: str | deletion.PropagationPolicy | None = None,
        grace_period_seconds: int | None = None,
        uid: str | None = None,
        resource_version: str | None = None,
    ) -> Obj:
        """Delete the object, or mark it for deletion (see ``controllers.api.deletion``).

        ``uid`` and ``resource_version`` are preconditions (``Conflict`` if they
        do not hold). Returns the object's last state: as marked, or as it was
        when removed (``resourceVersion`` then the revision of the removal).

        Raises:
            NotFound, Conflict, BadRequest (unknown policy).
        """
        try:
            policy = (None if propagation_policy is None
                      else deletion.PropagationPolicy(propagation_policy))
        except ValueError:
            raise BadRequest(f"unknown propagation policy {propagation_policy!r}") from None
        key = self._key(namespace, name)
        for _ in range(_CAS_ATTEMPTS):
            current = await self.kv.get(key)
            if current is None:
                raise NotFound(self.kind.resource, name)
            old = decode(current)
            old_m = old["metadata"]
            if uid is not None and old_m.get("uid") != uid:
                raise Conflict(self.kind.resource, name, f"Precondition failed: UID in "
                               f"precondition: {uid}, UID in object meta: {old_m.get('uid')}")
            if resource_version is not None and old_m["resourceVersion"] != resource_version:
                raise Conflict(self.kind.resource, name)
            plan = deletion.plan_delete(self.kind, old, policy=policy,
                                        grace_period_seconds=grace_period_seconds,
                                        now=self.clock.now())
            if not plan.remove and not plan.changed:
                return old
            guard = [compare(key, CompareTarget.MOD, "=", current.mod_revision)]
            ops = ([op_delete(key), *service_ips.release(self.kind, old)] if plan.remove
                   else [op_put(key, encode(plan.obj))])
            res = await self.kv.txn(guard, ops)
            if res.succeeded:
                plan.obj["metadata"]["resourceVersion"] = str(res.header_revision)
                return plan.obj
        raise Conflict(self.kind.resource, name, "the object kept changing during deletion")

    # -- helpers -------------------------------------------------------------------
    def _key(self, namespace: str, name: str) -> str:
        if self.kind.namespaced and not namespace:
            namespace = "default"
        return self.kind.key(namespace, name)

    def _typed_copy(self, obj: Obj) -> Obj:
        """A copy of ``obj`` with ``apiVersion`` and ``kind`` checked (or filled) and metadata."""
        if not isinstance(obj, dict):
            raise BadRequest(f"an object must be a dict, not {type(obj).__name__}")
        obj = deep_copy(obj)
        for field, want in (("apiVersion", self.kind.api_version), ("kind", self.kind.kind)):
            if obj.setdefault(field, want) != want:
                raise BadRequest(f"{field} {obj[field]!r} does not match {want!r} of "
                                 f"{self.kind.resource}")
        if not isinstance(obj.setdefault("metadata", {}), dict):
            errs = ErrorList()
            validate_object_meta(errs, obj, namespaced=self.kind.namespaced,
                                 name_syntax=self.kind.name_syntax)
            raise_if_invalid(errs, self.kind.qualified_kind, "")
        return obj

    def _target(self, obj: Obj) -> tuple[str, str, int]:
        """Key, name and expected mod revision of an object to update."""
        m = obj["metadata"]
        name = m.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest("name is required for an update")
        rv = m.get("resourceVersion")
        if not rv:
            errs = ErrorList()
            errs.invalid("metadata.resourceVersion", rv, "must be specified for an update")
            raise_if_invalid(errs, self.kind.qualified_kind, name)
        expected = parse_resource_version(str(rv))
        namespace = str(m.get("namespace") or "") if self.kind.namespaced else ""
        if self.kind.namespaced:
            m["namespace"] = namespace or "default"
        return self._key(namespace, name), name, expected

    async def _current(self, key: str, name: str, expected: int) -> KeyValue:
        current = await self.kv.get(key)
        if current is None:
            raise NotFound(self.kind.resource, name)
        if current.mod_revision != expected:
            raise Conflict(self.kind.resource, name)
        return current


async def ensure_namespaces(
    kv: KV,
    names: list[str] | tuple[str, ...] = DEFAULT_NAMESPACES,
    *,
    clock: WallClock | None = None,
    rng: random.Random | None = None,
    registry: KindRegistry | None = None,
) -> None:
    """Create each Namespace in ``names`` that does not exist yet."""
    client = ResourceClient(kv, "namespaces", clock=clock, rng=rng, registry=registry)
    for name in names:
        try:
            await client.create({"metadata": {"name": name}})
        except AlreadyExists:
            pass


def _range_kvs(responses: tuple[Any, ...]) -> tuple[KeyValue, ...]:
    for resp in responses:
        kvs = getattr(resp, "kvs", None)
        if kvs is not None:
            return tuple(kvs)
    return ()


def _labels(sel: str | LabelSelector | None) -> LabelSelector:
    if sel is None:
        return LabelSelector()
    return sel if isinstance(sel, LabelSelector) else LabelSelector.parse(sel)


def _fields(sel: str | FieldSelector | None) -> FieldSelector:
    if sel is None:
        return FieldSelector()
    return sel if isinstance(sel, FieldSelector) else FieldSelector.parse(sel)
