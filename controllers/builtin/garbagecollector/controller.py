"""``GarbageCollector``: deletes what lost its owners, as Kubernetes' garbage collector does.

It watches every kind that can own or be owned (every kind of the registry
but Event, or ``resources=``) and keeps the ``Graph`` of owner references
from those informers' events. Its work queue holds two kinds of key:

- ``delete/<uid>`` ("attempt to delete"): read the object from the store.
  Gone, or another uid under that name: tell the graph (its dependents are
  then checked). Deleting its dependents (``foregroundDeletion``): once no
  dependent with ``blockOwnerDeletion`` is left, remove the finalizer (the
  api then removes the object); until then, check those dependents.
  Otherwise read each owner from the store (an owner seen absent is kept in
  a small cache: uids are never reused) and act on ``decision.decide``:
  drop references to owners that are gone while a live owner remains, or
  delete the object (in the foreground when an owner waits for it and it
  has dependents of its own, else with the policy its finalizers record,
  else in the background), with its uid as a precondition.
- ``orphan/<uid>``: an owner being deleted with the ``orphan`` finalizer:
  remove the reference to it from each dependent, then the finalizer.

A namespaced owner must live in its dependent's namespace; a reference
across namespaces is dangling, and a cluster-scoped object naming a
namespaced owner is left alone. Both get an ``OwnerRefInvalidNamespace``
warning Event on the dependent.

Every leadership term starts from an empty graph built from the informers'
initial lists, and nothing is decided before the graph holds all of them,
so a new manager finishes whatever cascade an old one left half done.
Every write is judged on the object just read from the store, never on the
cache alone.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from controllers.api.deletion import FINALIZER_FOREGROUND, FINALIZER_ORPHAN
from controllers.api.errors import Conflict, NotFound
from controllers.api.kinds import REGISTRY, Kind, KindRegistry
from controllers.api.objects import Obj
from controllers.builtin.garbagecollector import decision
from controllers.builtin.garbagecollector.graph import (
    Changes,
    Graph,
    NodeView,
    ObjectIdentity,
    OwnerReference,
    api_group,
    identity_of,
    owner_references,
)
from controllers.controller import (
    DONE,
    REQUEUE,
    ControllerContext,
    PermanentError,
    Result,
    requeue_after,
)
from controllers.informers.fifo import DeletedFinalStateUnknown
from controllers.informers.shared_informer import (
    ResourceEventHandlerFuncs,
    SharedInformer,
)

__all__ = ["DELETE_KEY", "ORPHAN_KEY", "GarbageCollector", "collected_resources"]

_log = logging.getLogger(__name__)

DELETE_KEY = "delete"
"""Prefix of the work queue keys ``delete/<uid>``."""

ORPHAN_KEY = "orphan"
"""Prefix of the work queue keys ``orphan/<uid>``."""

_EDIT_ATTEMPTS = 8

_AbsentKey = tuple[str, str, str, str, str]


def collected_resources(registry: KindRegistry | None = None) -> tuple[str, ...]:
    """The resource names the collector watches: every kind of ``registry`` but Event."""
    kinds = (registry if registry is not None else REGISTRY).kinds()
    return tuple(k.resource for k in kinds if not (k.group == "" and k.kind == "Event"))


class _UnknownKind(Exception):
    """An owner reference names a kind the registry does not have."""


class GarbageCollector:
    """Kubernetes' garbage collector (see the module docstring)."""

    name = "garbage-collector"
    event_source = "garbage-collector-controller"

    def __init__(self, *, resources: Sequence[str] | None = None,
                 registry: KindRegistry | None = None, absent_owner_cache_size: int = 500,
                 graph_sync_retry_seconds: float = 0.1) -> None:
        if absent_owner_cache_size < 0:
            raise ValueError("absent_owner_cache_size must not be negative")
        self.informers: Sequence[str] = tuple(
            resources if resources is not None else collected_resources(registry))
        self.graph = Graph()
        self.absent_owner_cache_size = absent_owner_cache_size
        self.graph_sync_retry_seconds = graph_sync_retry_seconds
        self._absent: OrderedDict[_AbsentKey, None] = OrderedDict()
        self._context: ControllerContext | None = None
        self._watched: list[SharedInformer] = []
        self._graph_synced = False

    # -- setup and events ------------------------------------------------------------
    def setup(self, context: ControllerContext) -> None:
        self._context = context
        self.graph = Graph()
        self._absent.clear()
        self._graph_synced = False
        self._watched = [context.informer(name) for name in self.informers]
        handler = ResourceEventHandlerFuncs(add=self._on_add, update=self._on_update,
                                            delete=self._on_delete)
        for informer in self._watched:
            informer.add_event_handler(handler)

    def _on_add(self, obj: Any, is_in_initial_list: bool) -> None:
        self._apply(self.graph.upsert(obj))

    def _on_update(self, old: Any, new: Any) -> None:
        self._apply(self.graph.upsert(new))

    def _on_delete(self, obj: Any) -> None:
        if isinstance(obj, DeletedFinalStateUnknown):
            obj = obj.obj
        if isinstance(obj, Mapping):
            self._apply(self.graph.remove(obj))

    def _apply(self, changes: Changes) -> None:
        context = self._ctx()
        for uid in changes.attempt_to_delete:
            context.enqueue(f"{DELETE_KEY}/{uid}")
        for uid in changes.attempt_to_orphan:
            context.enqueue(f"{ORPHAN_KEY}/{uid}")

    def _is_graph_synced(self) -> bool:
        """Whether the graph holds every informer's initial list (sticky once true)."""
        if not self._graph_synced:
            self._graph_synced = all(i.has_synced() and i.handlers_idle() for i in self._watched)
        return self._graph_synced

    # -- reconcile -------------------------------------------------------------------
    async def reconcile(self, key: str) -> Result | None:
        what, _, uid = key.partition("/")
        if what not in (DELETE_KEY, ORPHAN_KEY) or not uid:
            raise PermanentError(f"not a garbage collector key: {key!r}")
        if not self._is_graph_synced():
            return requeue_after(self.graph_sync_retry_seconds)
        try:
            if what == DELETE_KEY:
                return await self._attempt_to_delete(uid)
            return await self._attempt_to_orphan(uid)
        except _UnknownKind as e:
            _log.info("%s: %s: %s; trying again later", self.name, key, e)
            return REQUEUE

    async def _attempt_to_delete(self, uid: str) -> Result:
        node = self.graph.node(uid)
        if node is None or (node.being_deleted and not node.deleting_dependents):
            return DONE
        kind = self._kind(node.identity.api_version, node.identity.kind)
        latest = await self._get(kind, node.identity)
        if latest is None:
            self._remember_absent(kind, node.identity)
            self._apply(self.graph.remove_virtual(node.identity))
            return DONE
        if node.virtual:
            return DONE  # it exists; its informer will show it
        if node.deleting_dependents:
            return await self._process_deleting_dependents(kind, node)
        refs = owner_references(latest)
        if not refs:
            return DONE
        states: dict[str, decision.OwnerState] = {}
        for ref in refs:
            if not kind.namespaced and self._kind(ref.api_version, ref.kind).namespaced:
                self._report_invalid_namespace(latest, ref)
                return DONE
            states[ref.uid] = await self._owner_state(ref, node.identity.namespace)
            if states[ref.uid] is decision.OwnerState.DANGLING:
                self._maybe_report_cross_namespace(latest, ref)
        dependents = self.graph.dependents(uid)
        choice = decision.decide(
            latest, decision.classify(refs, states), has_dependents=bool(dependents),
            dependent_deleting_dependents=any(d.deleting_dependents for d in dependents))
        if choice.action is decision.Action.REMOVE_REFERENCES:
            await self._edit(kind, node.identity,
                             lambda o: decision.without_owner_references(o, choice.remove_uids))
        elif choice.action is decision.Action.DELETE:
            if choice.unblock_first:
                await self._edit(kind, node.identity, decision.with_unblocked_references)
            await self._delete(kind, node.identity, choice)
        return DONE

    async def _process_deleting_dependents(self, kind: Kind, node: NodeView) -> Result:
        blocking = self.graph.blocking_dependents(node.identity.uid)
        if not blocking:
            await self._edit(kind, node.identity,
                             lambda o: decision.without_finalizer(o, FINALIZER_FOREGROUND))
            return DONE
        for dep in blocking:
            if not dep.deleting_dependents:
                self._ctx().enqueue(f"{DELETE_KEY}/{dep.identity.uid}")
        return DONE

    async def _attempt_to_orphan(self, uid: str) -> Result:
        node = self.graph.node(uid)
        if node is None or node.virtual:
            return DONE
        kind = self._kind(node.identity.api_version, node.identity.kind)
        latest = await self._get(kind, node.identity)
        m = (latest or {}).get("metadata") or {}
        if latest is None or not m.get("deletionTimestamp") or \
                FINALIZER_ORPHAN not in (m.get("finalizers") or ()):
            return DONE
        for dep in self.graph.dependents(uid):
            dep_kind = self._kind(dep.identity.api_version, dep.identity.kind)
            await self._edit(dep_kind, dep.identity,
                             lambda o: decision.without_owner_references(o, (uid,)))
        await self._edit(kind, node.identity,
                         lambda o: decision.without_finalizer(o, FINALIZER_ORPHAN))
        return DONE

    # -- the store -------------------------------------------------------------------
    def _ctx(self) -> ControllerContext:
        if self._context is None:
            raise RuntimeError("the garbage collector is used before setup")
        return self._context

    def _kind(self, api_version: str, kind_name: str) -> Kind:
        group = api_group(api_version)
        for kind in self._ctx().clientset.registry.kinds():
            if kind.group == group and kind.kind == kind_name:
                return kind
        raise _UnknownKind(f"no kind {kind_name!r} in group {group!r} is registered")

    async def _get(self, kind: Kind, identity: ObjectIdentity) -> Obj | None:
        """The object named like ``identity`` if it has its uid, else None."""
        client = self._ctx().clientset.resource(kind.resource)
        try:
            live = await client.get(identity.name, identity.namespace if kind.namespaced else "")
        except NotFound:
            return None
        found = identity_of(live)
        return live if found is not None and found.uid == identity.uid else None

    async def _owner_state(self, ref: OwnerReference, namespace: str) -> decision.OwnerState:
        kind = self._kind(ref.api_version, ref.kind)
        key = _absent_key(kind, namespace, ref.name, ref.uid)
        if key in self._absent:
            self._absent.move_to_end(key)
            return decision.OwnerState.DANGLING
        live = await self._get(kind, ObjectIdentity(ref.api_version, ref.kind, namespace,
                                                     ref.name, ref.uid))
        state = decision.owner_state(ref.uid, live)
        if state is decision.OwnerState.DANGLING:
            self._remember(key)
        return state

    def _remember_absent(self, kind: Kind, identity: ObjectIdentity) -> None:
        self._remember(_absent_key(kind, identity.namespace, identity.name, identity.uid))

    def _remember(self, key: _AbsentKey) -> None:
        if self.absent_owner_cache_size == 0:
            return
        self._absent[key] = None
        self._absent.move_to_end(key)
        while len(self._absent) > self.absent_owner_cache_size:
            self._absent.popitem(last=False)

    def is_known_absent(self, kind: Kind, namespace: str, name: str, uid: str) -> bool:
        """Whether an owner was seen absent (and is still in the absent-owner cache)."""
        return _absent_key(kind, namespace, name, uid) in self._absent

    async def _edit(self, kind: Kind, identity: ObjectIdentity,
                    change: Callable[[Obj], Obj | None]) -> None:
        """Write ``change(live)`` over the live object (with CAS retries), if it differs."""
        client = self._ctx().clientset.resource(kind.resource)
        for attempt in range(_EDIT_ATTEMPTS):
            live = await self._get(kind, identity)
            if live is None:
                return
            new = change(live)
            if new is None:
                return
            try:
                await client.update(new)
                return
            except NotFound:
                return
            except Conflict:
                if attempt == _EDIT_ATTEMPTS - 1:
                    raise

    async def _delete(self, kind: Kind, identity: ObjectIdentity,
                      choice: decision.Decision) -> None:
        client = self._ctx().clientset.resource(kind.resource)
        _log.info("%s: deleting %s (propagation %s)", self.name, identity,
                  choice.policy.value if choice.policy else "none")
        try:
            await client.delete(identity.name, identity.namespace if kind.namespaced else "",
                                propagation_policy=choice.policy, uid=identity.uid)
        except (NotFound, Conflict):
            # Gone already, or replaced by another object of the same name: the
            # informer tells the graph either way.
            return

    # -- events ----------------------------------------------------------------------
    def _report_invalid_namespace(self, obj: Obj, ref: OwnerReference) -> None:
        self._ctx().recorder.event(
            obj, "Warning", "OwnerRefInvalidNamespace",
            f"ownerRef [{ref.api_version}/{ref.kind}, namespace: , name: {ref.name}, "
            f"uid: {ref.uid}] is namespaced, but this object is cluster-scoped")

    def _maybe_report_cross_namespace(self, obj: Obj, ref: OwnerReference) -> None:
        owner = self.graph.node(ref.uid)
        namespace = str((obj.get("metadata") or {}).get("namespace") or "")
        if owner is None or owner.virtual or owner.identity.namespace in ("", namespace):
            return
        self._ctx().recorder.event(
            obj, "Warning", "OwnerRefInvalidNamespace",
            f"ownerRef [{ref.api_version}/{ref.kind}, namespace: {namespace}, name: "
            f"{ref.name}, uid: {ref.uid}] does not exist in namespace {namespace!r}")


def _absent_key(kind: Kind, namespace: str, name: str, uid: str) -> _AbsentKey:
    return (kind.group, kind.kind, namespace if kind.namespaced else "", name, uid)
