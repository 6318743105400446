"""``NamespaceController``: empties a terminating namespace, then lets it go, as Kubernetes does.

A namespace being deleted (``deletionTimestamp`` set, phase Terminating)
keeps ``kubernetes`` in ``spec.finalizers`` until this controller has
removed everything in it. Each reconcile of a namespace that still holds
that finalizer:

1. deletes, with Background propagation, every object of every namespaced
   kind of the registry in it that is not being deleted yet (objects held by
   their own finalizers or a pod's grace period stay until released);
2. lists what remains and writes the deletion conditions Kubernetes writes
   to ``status.conditions`` (``NamespaceDeletionDiscoveryFailure``,
   ``NamespaceDeletionGroupVersionParsingFailure``,
   ``NamespaceDeletionContentFailure``, ``NamespaceContentRemaining``,
   ``NamespaceFinalizersRemaining``), only when they change;
3. if anything remains, looks again after ``estimate // 2 + 1`` seconds,
   where the estimate is the longest grace a remaining pod still has, at
   least ``finalizer_estimate_seconds`` when something waits on finalizers
   and 1 otherwise; if a delete failed, tries again rate limited;
4. once nothing remains, removes ``kubernetes`` from ``spec.finalizers`` with
   an update; the api removes the namespace when nothing else holds it.

The api refuses new objects in a terminating namespace (``Forbidden``), so
once emptied it stays empty. Only the namespaces informer is watched; the
content is read and deleted in the store directly, as Kubernetes' dynamic
client does.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controllers.api.errors import ApiError, Conflict, NotFound
from controllers.api.objects import Obj, format_timestamp, parse_timestamp
from controllers.controller import (
    DONE,
    REQUEUE,
    ControllerContext,
    Result,
    requeue_after,
)
from controllers.informers.fifo import DeletedFinalStateUnknown
from controllers.informers.shared_informer import (
    ResourceEventHandlerFuncs,
    SharedInformer,
)
from controllers.informers.store import thaw

__all__ = [
    "CONDITION_TYPES",
    "FINALIZER_KUBERNETES",
    "ContentSummary",
    "NamespaceController",
    "deletion_conditions",
    "requeue_seconds",
    "summarize",
    "without_kubernetes_finalizer",
]

_log = logging.getLogger(__name__)

FINALIZER_KUBERNETES = "kubernetes"
"""The ``spec.finalizers`` entry this controller owns."""

DISCOVERY_FAILURE = "NamespaceDeletionDiscoveryFailure"
GROUP_VERSION_PARSING_FAILURE = "NamespaceDeletionGroupVersionParsingFailure"
CONTENT_FAILURE = "NamespaceDeletionContentFailure"
CONTENT_REMAINING = "NamespaceContentRemaining"
FINALIZERS_REMAINING = "NamespaceFinalizersRemaining"

CONDITION_TYPES = (DISCOVERY_FAILURE, GROUP_VERSION_PARSING_FAILURE, CONTENT_FAILURE,
                   CONTENT_REMAINING, FINALIZERS_REMAINING)
"""The namespace conditions the controller maintains, in the order it writes them."""

# (reason, message) of each condition when all is well.
_OK = {
    DISCOVERY_FAILURE: ("ResourcesDiscovered", "All resources successfully discovered"),
    GROUP_VERSION_PARSING_FAILURE: ("ParsedGroupVersions",
                                    "All legacy kube types successfully parsed"),
    CONTENT_FAILURE: ("ContentDeleted",
                      "All content successfully deleted, may be waiting on finalization"),
    CONTENT_REMAINING: ("ContentRemoved", "All content successfully removed"),
    FINALIZERS_REMAINING: ("ContentHasNoFinalizers", "All content-preserving finalizers finished"),
}

_CAS_ATTEMPTS = 8


@dataclass(frozen=True, slots=True)
class ContentSummary:
    """What a terminating namespace still holds after a round of deletes."""

    # (resource, count) for each resource with objects left, in resource order.
    remaining: tuple[tuple[str, int], ...] = ()
    # (finalizer, count of objects it holds), sorted by finalizer.
    finalizers: tuple[tuple[str, int], ...] = ()
    # One message per failed delete or list.
    failures: tuple[str, ...] = ()
    # Seconds until the remaining content may be gone (0: nothing remains).
    estimate_seconds: int = 0

    @property
    def is_empty(self) -> bool:
        return not self.remaining and not self.failures


def _pod_grace_left(obj: Mapping[str, Any], now: float) -> int:
    m = obj.get("metadata") or {}
    deadline = m.get("deletionTimestamp")
    if isinstance(deadline, str):
        try:
            return max(0, math.ceil(parse_timestamp(deadline) - now))
        except ValueError:
            return 0
    grace = (obj.get("spec") or {}).get("terminationGracePeriodSeconds")
    return grace if isinstance(grace, int) and not isinstance(grace, bool) and grace > 0 else 0


def summarize(remaining: Mapping[str, Sequence[Mapping[str, Any]]], *, now: float,
              failures: Sequence[str] = (), finalizer_estimate_seconds: int = 15
              ) -> ContentSummary:
    """Summarize ``remaining`` (resource -> objects still there) at wall-clock ``now``."""
    counts = tuple((res, len(objs)) for res, objs in remaining.items() if objs)
    held: dict[str, int] = {}
    estimate = 1 if counts or failures else 0
    for resource, objs in remaining.items():
        for obj in objs:
            for fin in (obj.get("metadata") or {}).get("finalizers") or ():
                held[str(fin)] = held.get(str(fin), 0) + 1
            if resource == "pods":
                estimate = max(estimate, _pod_grace_left(obj, now))
    if held:
        estimate = max(estimate, finalizer_estimate_seconds)
    return ContentSummary(counts, tuple(sorted(held.items())), tuple(failures), estimate)


def requeue_seconds(summary: ContentSummary) -> float:
    """How long to wait before looking at the namespace again (Kubernetes' estimate/2 + 1)."""
    return float(summary.estimate_seconds // 2 + 1)


def _wanted(summary: ContentSummary) -> dict[str, tuple[str, str, str]]:
    """Condition type -> (status, reason, message) for ``summary``."""
    out = {t: ("False", *_OK[t]) for t in CONDITION_TYPES}
    if summary.failures:
        message = (f"Failed to delete all resource types, {len(summary.failures)} remaining: "
                   f"{'; '.join(summary.failures)}")
        out[CONTENT_FAILURE] = ("True", "ContentDeletionFailed", message)
    if summary.remaining:
        parts = ", ".join(f"{res} has {n} resource instances" for res, n in summary.remaining)
        out[CONTENT_REMAINING] = ("True", "SomeResourcesRemain",
                                  f"Some resources are remaining: {parts}")
    if summary.finalizers:
        parts = ", ".join(f"{fin} in {n} resource instances" for fin, n in summary.finalizers)
        message = f"Some content in the namespace has finalizers remaining: {parts}"
        out[FINALIZERS_REMAINING] = ("True", "SomeFinalizersRemain", message)
    return out


def deletion_conditions(old: Sequence[Mapping[str, Any]], summary: ContentSummary, *,
                        now: float) -> list[dict[str, Any]]:
    """``status.conditions`` after a round: the five deletion conditions, others kept.

    A condition whose status is unchanged keeps its ``lastTransitionTime``.
    """
    by_type = {str(c.get("type")): c for c in old if isinstance(c, Mapping)}
    out = [thaw(c) for c in old if isinstance(c, Mapping) and c.get("type") not in CONDITION_TYPES]
    for type_, (status, reason, message) in _wanted(summary).items():
        before = by_type.get(type_)
        since = (str(before.get("lastTransitionTime")) if before is not None
                 and before.get("status") == status and before.get("lastTransitionTime")
                 else format_timestamp(now))
        out.append({"type": type_, "status": status, "lastTransitionTime": since,
                    "reason": reason, "message": message})
    return out


def without_kubernetes_finalizer(namespace: Mapping[str, Any]) -> Obj | None:
    """A copy of ``namespace`` without ``kubernetes`` in ``spec.finalizers``; None if absent."""
    finalizers = list((namespace.get("spec") or {}).get("finalizers") or ())
    if FINALIZER_KUBERNETES not in finalizers:
        return None
    new: Obj = thaw(namespace)
    # An empty list, not a missing one: the defaulter would put "kubernetes" back.
    new["spec"]["finalizers"] = [f for f in finalizers if f != FINALIZER_KUBERNETES]
    return new


def _is_terminating(namespace: Mapping[str, Any]) -> bool:
    return bool((namespace.get("metadata") or {}).get("deletionTimestamp"))


class NamespaceController:
    """Kubernetes' namespace controller (see the module docstring)."""

    name = "namespace"
    event_source = "namespace-controller"
    informers: Sequence[str] = ("namespaces",)

    def __init__(self, *, finalizer_estimate_seconds: int = 15) -> None:
        if finalizer_estimate_seconds < 0:
            raise ValueError("finalizer_estimate_seconds must not be negative")
        self.finalizer_estimate_seconds = finalizer_estimate_seconds
        self._context: ControllerContext | None = None
        self._namespaces: SharedInformer | None = None

    def setup(self, context: ControllerContext) -> None:
        self._context = context
        self._namespaces = context.informer("namespaces")

        def maybe_enqueue(obj: Any, *_: Any) -> None:
            obj = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
            if isinstance(obj, Mapping) and _is_terminating(obj):
                context.enqueue(str(obj["metadata"]["name"]))

        self._namespaces.add_event_handler(ResourceEventHandlerFuncs(
            add=maybe_enqueue, update=lambda old, new: maybe_enqueue(new)))

    async def reconcile(self, key: str) -> Result | None:
        context, namespaces = self._context, self._namespaces
        if context is None or namespaces is None:
            raise RuntimeError("reconcile before setup")
        try:
            cached = namespaces.lister().get("", key)
        except NotFound:
            return DONE
        if not _is_terminating(cached):
            return DONE
        client = context.clientset.resource("namespaces")
        try:
            namespace = await client.get(key)
        except NotFound:
            return DONE
        if namespace["metadata"].get("uid") != cached["metadata"].get("uid") or \
                without_kubernetes_finalizer(namespace) is None:
            return DONE
        summary = await self._delete_content(key)
        namespace = await self._write_conditions(namespace, summary)
        if summary.failures:
            context.recorder.event(namespace, "Warning", "NamespaceDeletionContentFailure",
                                   "; ".join(summary.failures))
            return REQUEUE
        if summary.remaining:
            return requeue_after(requeue_seconds(summary))
        await self._finalize(key, str(namespace["metadata"]["uid"]))
        return DONE

    async def _delete_content(self, namespace: str) -> ContentSummary:
        clientset = self._ctx().clientset
        remaining: dict[str, list[Obj]] = {}
        failures: list[str] = []
        for kind in clientset.registry.kinds():
            if not kind.namespaced:
                continue
            client = clientset.resource(kind.resource)
            try:
                items = (await client.list(namespace))["items"]
                for obj in items:
                    m = obj["metadata"]
                    if m.get("deletionTimestamp"):
                        continue
                    try:
                        await client.delete(m["name"], namespace, propagation_policy="Background",
                                            uid=m.get("uid"))
                    except (NotFound, Conflict):
                        continue
                left = (await client.list(namespace))["items"] if items else []
            except ApiError as e:
                failures.append(f"{kind.resource}: {e}")
                continue
            if left:
                remaining[kind.resource] = left
        return summarize(remaining, now=clientset.clock.now(), failures=failures,
                         finalizer_estimate_seconds=self.finalizer_estimate_seconds)

    async def _write_conditions(self, namespace: Obj, summary: ContentSummary) -> Obj:
        client = self._ctx().clientset.resource("namespaces")
        now = self._ctx().clientset.clock.now()
        for attempt in range(_CAS_ATTEMPTS):
            status = namespace.get("status") or {}
            old = status.get("conditions") or []
            conditions = deletion_conditions(old, summary, now=now)
            if _same_conditions(old, conditions):
                return namespace
            new = thaw(namespace)
            new.setdefault("status", {})["conditions"] = conditions
            try:
                return await client.update_status(new)
            except Conflict:
                if attempt == _CAS_ATTEMPTS - 1:
                    raise
                namespace = await client.get(str(namespace["metadata"]["name"]))
        return namespace

    async def _finalize(self, name: str, uid: str) -> None:
        """Remove ``kubernetes`` from the namespace's ``spec.finalizers`` (CAS, retried)."""
        client = self._ctx().clientset.resource("namespaces")
        for attempt in range(_CAS_ATTEMPTS):
            try:
                namespace = await client.get(name)
            except NotFound:
                return
            new = without_kubernetes_finalizer(namespace)
            if namespace["metadata"].get("uid") != uid or new is None:
                return
            try:
                await client.update(new)
                _log.info("%s: namespace %s emptied and finalized", self.name, name)
                return
            except NotFound:
                return
            except Conflict:
                if attempt == _CAS_ATTEMPTS - 1:
                    raise

    def _ctx(self) -> ControllerContext:
        if self._context is None:
            raise RuntimeError("reconcile before setup")
        return self._context


def _same_conditions(old: Sequence[Any], new: Sequence[Mapping[str, Any]]) -> bool:
    return [thaw(c) for c in old] == [dict(c) for c in new]
