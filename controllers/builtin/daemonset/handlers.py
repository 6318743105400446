"""How the DaemonSet controller learns what to reconcile: its informers' event handlers.

- DaemonSets: added or changed -> enqueued; deleted (or replaced under the
  same name) -> their expectations dropped, enqueued.
- Pods: a pod controlled by a DaemonSet enqueues it; its creation and
  deletion (a deletion timestamp counts) are observed in the expectations.
  A pod turning ready enqueues its DaemonSet again after
  ``minReadySeconds`` + 1 s. An orphan enqueues every DaemonSet of its
  namespace whose selector matches it (a candidate for adoption).
- Nodes: added -> the DaemonSets that should run there; changed -> those
  whose placement on it changed; deleted -> every DaemonSet.
- ControllerRevisions: as pods, without expectations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controllers.api.errors import BadRequest, NotFound
from controllers.api.objects import Obj
from controllers.api.selectors import LabelSelector
from controllers.builtin.daemonset.placement import should_run_daemon_pod
from controllers.builtin.expectations import UIDTrackingControllerExpectations
from controllers.builtin.podutil import controller_ref, is_pod_ready
from controllers.controller import ControllerContext
from controllers.informers.fifo import DeletedFinalStateUnknown
from controllers.informers.shared_informer import (
    ResourceEventHandlerFuncs,
    SharedInformer,
)
from controllers.informers.store import (
    meta_namespace_key_func,
    object_labels,
    object_meta,
    object_namespace,
    object_resource_version,
)

__all__ = ["DaemonSetEventHandlers", "min_ready_seconds"]


def _unwrap(obj: Any) -> Any:
    return obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj


def min_ready_seconds(ds: Mapping[str, Any]) -> int:
    """A DaemonSet's ``spec.minReadySeconds`` (0 if unset)."""
    value = (ds.get("spec") or {}).get("minReadySeconds") or 0
    return value if isinstance(value, int) else 0


class DaemonSetEventHandlers:
    """The handlers of one leadership term (see the module docstring)."""

    def __init__(self, context: ControllerContext,
                 expectations: UIDTrackingControllerExpectations,
                 informers: Mapping[str, SharedInformer]) -> None:
        self.context = context
        self.expectations = expectations
        self.informers = informers

    def register(self) -> None:
        """Add the handlers to the informers (before they run)."""
        context = self.context
        self.informers["daemonsets"].add_event_handler(ResourceEventHandlerFuncs(
            add=lambda obj, _initial: context.enqueue(meta_namespace_key_func(obj)),
            update=self._update_ds, delete=self._delete_ds))
        self.informers["pods"].add_event_handler(ResourceEventHandlerFuncs(
            add=lambda obj, _initial: self._add_pod(obj), update=self._update_pod,
            delete=self._delete_pod))
        self.informers["nodes"].add_event_handler(ResourceEventHandlerFuncs(
            add=lambda obj, _initial: self._add_node(obj), update=self._update_node,
            delete=lambda _obj: self._enqueue_all()))
        self.informers["controllerrevisions"].add_event_handler(ResourceEventHandlerFuncs(
            add=lambda obj, _initial: self._on_revision(obj, None),
            update=lambda old, new: self._on_revision(new, old),
            delete=lambda obj: self._on_revision(_unwrap(obj), None)))

    def _daemonsets(self, namespace: str | None = None) -> list[Obj]:
        return self.informers["daemonsets"].lister().list(namespace=namespace)

    def _update_ds(self, old: Any, new: Any) -> None:
        if object_meta(old).get("uid") != object_meta(new).get("uid"):
            self._delete_ds(DeletedFinalStateUnknown(meta_namespace_key_func(old), old))
        self.context.enqueue(meta_namespace_key_func(new))

    def _delete_ds(self, obj: Any) -> None:
        context, expectations = self.context, self.expectations
        key = obj.key if isinstance(obj, DeletedFinalStateUnknown) else meta_namespace_key_func(obj)
        expectations.delete_expectations(key)
        context.enqueue(key)

    def _resolve(self, namespace: str, ref: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """The cached DaemonSet a controller reference names, if it is one and still exists."""
        if ref is None or ref.get("kind") != "DaemonSet":
            return None
        try:
            ds = self.informers["daemonsets"].lister().get(namespace, str(ref.get("name", "")))
        except NotFound:
            return None
        return ds if object_meta(ds).get("uid") == ref.get("uid") else None

    def _matching(self, obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """DaemonSets of the (orphan) object's namespace whose selector matches it."""
        labels = object_labels(obj)
        found: list[Mapping[str, Any]] = []
        if not labels:
            return found
        for ds in self._daemonsets(object_namespace(obj)):
            try:
                selector = LabelSelector.from_dict((ds.get("spec") or {}).get("selector"))
            except BadRequest:
                continue
            if not selector.is_empty() and selector.matches(labels):
                found.append(ds)
        return found

    def _add_pod(self, pod: Any) -> None:
        context, expectations = self.context, self.expectations
        if object_meta(pod).get("deletionTimestamp"):
            self._delete_pod(pod)
            return
        ref = controller_ref(pod)
        if ref is not None:
            ds = self._resolve(object_namespace(pod), ref)
            if ds is not None:
                key = meta_namespace_key_func(ds)
                expectations.creation_observed(key)
                context.enqueue(key)
            return
        for ds in self._matching(pod):
            context.enqueue(meta_namespace_key_func(ds))

    def _update_pod(self, old: Any, cur: Any) -> None:
        context = self.context
        if object_resource_version(old) == object_resource_version(cur):
            return
        if object_meta(cur).get("deletionTimestamp"):
            self._delete_pod(cur)
            return
        cur_ref, old_ref = controller_ref(cur), controller_ref(old)
        namespace = object_namespace(cur)
        if cur_ref != old_ref and old_ref is not None:
            previous = self._resolve(namespace, old_ref)
            if previous is not None:
                context.enqueue(meta_namespace_key_func(previous))
        if cur_ref is not None:
            ds = self._resolve(namespace, cur_ref)
            if ds is None:
                return
            key = meta_namespace_key_func(ds)
            context.enqueue(key)
            min_ready = min_ready_seconds(ds)
            if min_ready > 0 and not is_pod_ready(old) and is_pod_ready(cur):
                context.enqueue_after(key, min_ready + 1.0)
            return
        if cur_ref != old_ref or object_labels(old) != object_labels(cur):
            for ds in self._matching(cur):
                context.enqueue(meta_namespace_key_func(ds))

    def _delete_pod(self, obj: Any) -> None:
        context, expectations = self.context, self.expectations
        pod = _unwrap(obj)
        if not isinstance(pod, Mapping):
            return
        ds = self._resolve(object_namespace(pod), controller_ref(pod))
        if ds is None:
            return
        key = meta_namespace_key_func(ds)
        expectations.deletion_observed(key, meta_namespace_key_func(pod))
        context.enqueue(key)

    def _add_node(self, node: Any) -> None:
        context = self.context
        for ds in self._daemonsets():
            if should_run_daemon_pod(node, ds).should_run:
                context.enqueue(meta_namespace_key_func(ds))

    def _update_node(self, old: Any, cur: Any) -> None:
        context = self.context
        for ds in self._daemonsets():
            if should_run_daemon_pod(old, ds) != should_run_daemon_pod(cur, ds):
                context.enqueue(meta_namespace_key_func(ds))

    def _enqueue_all(self) -> None:
        context = self.context
        for ds in self._daemonsets():
            context.enqueue(meta_namespace_key_func(ds))

    def _on_revision(self, cur: Any, old: Any) -> None:
        context = self.context
        if not isinstance(cur, Mapping):
            return
        namespace = object_namespace(cur)
        if old is not None:
            previous = self._resolve(namespace, controller_ref(old))
            if previous is not None and controller_ref(old) != controller_ref(cur):
                context.enqueue(meta_namespace_key_func(previous))
        ref = controller_ref(cur)
        if ref is not None:
            ds = self._resolve(namespace, ref)
            if ds is not None:
                context.enqueue(meta_namespace_key_func(ds))
            return
        for ds in self._matching(cur):
            context.enqueue(meta_namespace_key_func(ds))
