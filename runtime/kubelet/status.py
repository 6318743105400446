"""Pod status, computed from what the kubelet knows of each container: pure functions.

``ContainerRecord`` is the kubelet's view of one container: its current
state (exactly one of ``waiting``, ``running``, ``terminated``), the state
before it (``lastState``), readiness and restart count. ``pod_status``
turns records into the ``status`` Kubernetes shows:

- ``phase`` as the kubelet decides it: Failed if an init container failed
  for good; Pending while init containers run or any container waits
  without having run before; Running while any container runs (or, having
  stopped, will be restarted); once every container has stopped for good,
  Succeeded if all exited 0, else Failed (``final=True``, for a pod being
  torn down, forces that last rule even under ``restartPolicy: Always``).
- ``conditions``: PodScheduled (kept as the scheduler wrote it, else True),
  Initialized, ContainersReady and Ready, each ``lastTransitionTime`` kept
  from the previous status while its status does not change. Conditions of
  other types are kept as they were.
- ``containerStatuses`` / ``initContainerStatuses``, ``hostIP``,
  ``podIP``, ``startTime`` and ``qosClass``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ContainerRecord", "pod_conditions", "pod_phase", "pod_status", "qos_class"]

_OWN_CONDITIONS = ("PodScheduled", "Initialized", "ContainersReady", "Ready")


@dataclass(slots=True)
class ContainerRecord:
    """The kubelet's view of one container of a pod (mutable: the pod worker updates it)."""

    name: str
    image: str
    state: dict[str, Any] = field(
        default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: dict[str, Any] = field(default_factory=dict)
    ready: bool = False
    restart_count: int = 0
    container_id: str = ""
    # When the current attempt started, on the kubelet's clock.
    started_clock: float = 0.0

    def set_waiting(self, reason: str, message: str = "") -> None:
        if "terminated" in self.state:
            self.last_state = self.state
        waiting = {"reason": reason}
        if message:
            waiting["message"] = message
        self.state = {"waiting": waiting}
        self.ready = False

    def set_running(self, started_at: str, container_id: str, clock_now: float) -> None:
        if "terminated" in self.state:
            self.last_state = self.state
        self.state = {"running": {"startedAt": started_at}}
        self.container_id = container_id
        self.started_clock = clock_now
        self.ready = False

    def set_terminated(self, exit_code: int, *, finished_at: str, reason: str = "",
                       message: str = "") -> None:
        if "terminated" in self.state:
            self.last_state = self.state
        started = self.state.get("running", {}).get("startedAt", finished_at)
        term: dict[str, Any] = {
            "exitCode": exit_code,
            "reason": reason or ("Completed" if exit_code == 0 else "Error"),
            "startedAt": started,
            "finishedAt": finished_at,
        }
        if message:
            term["message"] = message
        if self.container_id:
            term["containerID"] = self.container_id
        self.state = {"terminated": term}
        self.ready = False

    def is_running(self) -> bool:
        return "running" in self.state

    def exit_code(self) -> int | None:
        """The exit code of the latest attempt that ended (None if none has)."""
        for state in (self.state, self.last_state):
            if "terminated" in state:
                return int(state["terminated"]["exitCode"])
        return None

    def as_status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "state": _copy(self.state),
            "lastState": _copy(self.last_state),
            "ready": self.ready,
            "restartCount": self.restart_count,
            "image": self.image,
            "imageID": "",
            "started": self.is_running(),
        }
        if self.container_id:
            out["containerID"] = self.container_id
        return out


def _mapping(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = parent.get(key)
    return value if isinstance(value, Mapping) else {}


def _copy(state: Mapping[str, Any]) -> dict[str, Any]:
    return {k: dict(v) for k, v in state.items()}


def pod_phase(
    restart_policy: str,
    init: Sequence[ContainerRecord],
    app: Sequence[ContainerRecord],
    *,
    init_failed: bool = False,
    final: bool = False,
) -> str:
    """The pod's phase (see the module docstring)."""
    if init_failed:
        return "Failed"
    if any(rec.exit_code() != 0 or "terminated" not in rec.state for rec in init):
        return "Failed" if final else "Pending"
    running = waiting = stopped = succeeded = 0
    for rec in app:
        if rec.is_running():
            running += 1
        elif "terminated" in rec.state or "terminated" in rec.last_state:
            stopped += 1
            succeeded += rec.exit_code() == 0
        else:
            waiting += 1
    if final:
        return "Succeeded" if app and succeeded == len(app) else "Failed"
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if restart_policy == "Always":
            return "Running"
        if succeeded == stopped:
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _condition(type_: str, ok: bool, now: str, previous: Mapping[str, Mapping[str, Any]],
               reason: str = "", message: str = "") -> dict[str, Any]:
    status = "True" if ok else "False"
    prev = previous.get(type_)
    since = prev.get("lastTransitionTime") if prev and prev.get("status") == status else None
    cond: dict[str, Any] = {"type": type_, "status": status,
                            "lastTransitionTime": since or now}
    if not ok and reason:
        cond["reason"] = reason
    if not ok and message:
        cond["message"] = message
    return cond


def pod_conditions(
    previous: Sequence[Mapping[str, Any]],
    *,
    phase: str,
    not_initialized: Sequence[str],
    unready: Sequence[str],
    now: str,
) -> list[dict[str, Any]]:
    """The pod's conditions (see the module docstring)."""
    prev = {str(c.get("type")): c for c in previous if isinstance(c, Mapping)}
    scheduled = dict(prev["PodScheduled"]) if "PodScheduled" in prev else {
        "type": "PodScheduled", "status": "True", "lastTransitionTime": now}
    done = phase in ("Succeeded", "Failed")
    not_ready_reason = "PodCompleted" if done else "ContainersNotReady"
    listed = f"containers with unready status: [{' '.join(unready)}]"
    out = [
        scheduled,
        _condition("Initialized", not not_initialized, now, prev, "ContainersNotInitialized",
                   f"containers with incomplete status: [{' '.join(not_initialized)}]"),
        _condition("ContainersReady", not unready and not done, now, prev, not_ready_reason,
                   "" if done else listed),
        _condition("Ready", not unready and not done, now, prev, not_ready_reason,
                   "" if done else listed),
    ]
    out += [dict(c) for t, c in prev.items() if t not in _OWN_CONDITIONS]
    return out


def qos_class(spec: Mapping[str, Any]) -> str:
    """Guaranteed, Burstable or BestEffort, from the containers' requests and limits."""
    containers = [c for key in ("initContainers", "containers")
                  for c in spec.get(key) or () if isinstance(c, Mapping)]
    any_set = False
    guaranteed = True
    for c in containers:
        res = _mapping(c, "resources")
        limits = _mapping(res, "limits")
        requests = _mapping(res, "requests")
        if limits or requests:
            any_set = True
        for name in ("cpu", "memory"):
            if name not in limits or str(requests.get(name, limits[name])) != str(limits[name]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def pod_status(
    pod: Mapping[str, Any],
    *,
    init: Sequence[ContainerRecord],
    app: Sequence[ContainerRecord],
    init_failed: bool,
    final: bool,
    host_ip: str,
    pod_ip: str,
    start_time: str,
    now: str,
    failure: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The whole ``status`` of ``pod`` (see the module docstring).

    ``failure`` (reason, message) fails the pod whatever its containers did.
    """
    spec = _mapping(pod, "spec")
    previous = _mapping(pod, "status")
    phase = "Failed" if failure else pod_phase(
        str(spec.get("restartPolicy", "Always")), init, app, init_failed=init_failed,
        final=final)
    not_initialized = [r.name for r in init if r.exit_code() != 0 or "terminated" not in r.state]
    unready = [r.name for r in app if not r.ready]
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": pod_conditions(previous.get("conditions") or (), phase=phase,
                                     not_initialized=not_initialized, unready=unready, now=now),
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": start_time,
        "containerStatuses": [r.as_status() for r in app],
        "qosClass": qos_class(spec),
    }
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    if init:
        status["initContainerStatuses"] = [r.as_status() for r in init]
    for key in ("message", "reason", "nominatedNodeName"):
        if key in previous:
            status[key] = previous[key]
    if failure:
        status["reason"], status["message"] = failure
    return status
