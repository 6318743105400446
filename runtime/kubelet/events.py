"""The Events the kubelet records: the real kubelet's reasons and message shapes.

The kubelet writes them through ``controllers.events.EventRecorder``
(component ``kubelet``, host the node's name); anything with the
``EventSink`` shape will do. About a pod (each ``NAME`` is a container):

- ``Created`` "Created container NAME", then ``Started`` "Started container
  NAME", when an attempt starts; ``Failed`` (Warning) "Error: WHY" when it
  cannot be started;
- ``Killing`` "Stopping container NAME" when the pod is stopped (deletion,
  deadline, the kubelet stopping); "Container NAME failed liveness probe[,
  will be restarted]" or "Container NAME definition changed, will be
  restarted" when one container is stopped;
- ``BackOff`` (Warning) "Back-off restarting failed container NAME in pod
  POD_NAMESPACE(UID)" before each crash-loop restart;
- ``Unhealthy`` (Warning) "Liveness probe failed: OUTPUT" / "Readiness probe
  failed: OUTPUT" on each failed probe, "... probe errored: WHY" when a probe
  could not run at all;
- ``DeadlineExceeded`` "Pod was active on the node longer than the specified
  deadline".

About the Node: ``Starting`` "Starting kubelet." once per run, and "Node N
status is now: R" each time a condition the kubelet reports changes, with R
``NodeHasSufficientMemory``, ``NodeHasNoDiskPressure``,
``NodeHasSufficientPID`` or ``NodeReady`` as the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controllers.events import EventSink, NoEvents

__all__ = [
    "BACK_OFF",
    "CREATED",
    "DEADLINE_EXCEEDED",
    "DEADLINE_MESSAGE",
    "EventSink",
    "FAILED",
    "KILLING",
    "NORMAL",
    "NoEvents",
    "STARTED",
    "STARTING",
    "STARTING_MESSAGE",
    "UNHEALTHY",
    "WARNING",
    "back_off_message",
    "node_ref",
    "node_status_message",
    "pod_ref",
    "probe_errored_message",
    "probe_failed_message",
]

NORMAL = "Normal"
WARNING = "Warning"

CREATED = "Created"
STARTED = "Started"
FAILED = "Failed"
KILLING = "Killing"
BACK_OFF = "BackOff"
UNHEALTHY = "Unhealthy"
DEADLINE_EXCEEDED = "DeadlineExceeded"
STARTING = "Starting"

DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
STARTING_MESSAGE = "Starting kubelet."


def pod_ref(pod: Mapping[str, Any]) -> dict[str, Any]:
    """What an Event about ``pod`` refers to (kind and apiVersion even if the copy lacks them)."""
    meta = pod.get("metadata") or {}
    keep = ("name", "namespace", "uid", "resourceVersion")
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {k: meta[k] for k in keep if meta.get(k)}}


def node_ref(name: str, uid: str) -> dict[str, Any]:
    """What an Event about the Node ``name`` refers to."""
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, **({"uid": uid} if uid else {})}}


def back_off_message(container: str, pod: str, namespace: str, uid: str) -> str:
    return f"Back-off restarting failed container {container} in pod {pod}_{namespace}({uid})"


def probe_failed_message(kind: str, output: str) -> str:
    """``kind`` is ``liveness`` or ``readiness``."""
    return f"{kind.capitalize()} probe failed: {output}"


def probe_errored_message(kind: str, error: str) -> str:
    return f"{kind.capitalize()} probe errored: {error}"


def node_status_message(node: str, reason: str) -> str:
    return f"Node {node} status is now: {reason}"
