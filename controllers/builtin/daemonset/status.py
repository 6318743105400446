"""A DaemonSet's status, computed from its nodes and pods as Kubernetes counts.

For every node that should run the pod: ``desiredNumberScheduled``; if it
has a daemon pod, ``currentNumberScheduled``, and judged by its oldest pod
(scheduled first): ``numberReady``, ``numberAvailable`` (ready for
``minReadySeconds`` at the wall time given) and ``updatedNumberScheduled``
(the pod is of the current revision). A node with daemon pods that should
not run one counts in ``numberMisscheduled``. ``numberUnavailable`` is
desired minus available. ``observedGeneration`` is the DaemonSet's
generation once a full sync ran, else what it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from controllers.api.objects import Obj
from controllers.builtin.daemonset.placement import Placement, pod_order_key
from controllers.builtin.daemonset.update import is_pod_updated
from controllers.builtin.podutil import is_pod_available, is_pod_ready
from controllers.informers.store import object_meta, thaw

__all__ = ["STATUS_COUNTS", "calculate_status"]

STATUS_COUNTS = ("desiredNumberScheduled", "currentNumberScheduled", "numberMisscheduled",
                 "numberReady", "numberAvailable", "numberUnavailable",
                 "updatedNumberScheduled")
"""The counters of a DaemonSet's status."""


def calculate_status(ds: Mapping[str, Any], placements: Mapping[str, Placement],
                     node_pods: Mapping[str, Sequence[Mapping[str, Any]]], hash_: str,
                     now: float, *, observed: bool) -> Obj:
    """The status ``ds`` should have (see the module docstring); a mutable dict.

    ``placements`` holds every node by name, ``node_pods`` the daemon pods by
    target node; ``observed`` is whether this sync may set ``observedGeneration``.
    """
    min_ready = float((ds.get("spec") or {}).get("minReadySeconds") or 0)
    counts = dict.fromkeys(STATUS_COUNTS, 0)
    for name in sorted(placements):
        pods = node_pods.get(name) or ()
        if not placements[name].should_run:
            if pods:
                counts["numberMisscheduled"] += 1
            continue
        counts["desiredNumberScheduled"] += 1
        if not pods:
            continue
        counts["currentNumberScheduled"] += 1
        pod = min(pods, key=pod_order_key)
        if is_pod_ready(pod):
            counts["numberReady"] += 1
            if is_pod_available(pod, min_ready, now):
                counts["numberAvailable"] += 1
        if is_pod_updated(pod, hash_):
            counts["updatedNumberScheduled"] += 1
    counts["numberUnavailable"] = counts["desiredNumberScheduled"] - counts["numberAvailable"]
    status: Obj = thaw(ds.get("status") or {})
    status.update(counts)
    if observed:
        status["observedGeneration"] = int(object_meta(ds).get("generation") or 0)
    return status
