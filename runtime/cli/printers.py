"""kubectl's table columns: what ``steer get`` prints for each kind, and how it spells ages.

``columns(kind, wide)`` names the columns and ``row(kind, obj, now, wide)``
fills them, both as kubectl's built-in printers do (pods: NAME READY
STATUS RESTARTS AGE; deployments: NAME READY UP-TO-DATE AVAILABLE AGE...);
a kind without a printer of its own gets NAME AGE. ``now`` is seconds
since the epoch, so ages are reproducible. ``human_duration`` spells a
duration like kubectl (``5s``, ``3m2s``, ``4h``, ``2d``), and
``format_rows`` lays out a table: left-aligned columns three spaces apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from controllers.api import ApiError, Kind, LabelSelector
from controllers.api.objects import Obj, labels_of, meta, name_of, parse_timestamp

__all__ = [
    "age",
    "column_widths",
    "columns",
    "format_rows",
    "human_duration",
    "pod_status",
    "qualified_name",
    "row",
    "selector_text",
]

NONE = "<none>"


def human_duration(seconds: float) -> str:
    """A duration as kubectl spells it: precise when short, coarser as it grows."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    if hours < 24 * 365 * 2:
        return f"{days}d"
    years = days // 365
    if hours < 24 * 365 * 8:
        rest = days % 365
        return f"{years}y{rest}d" if rest else f"{years}y"
    return f"{years}y"


def age(timestamp: Any, now: float) -> str:
    """The time since an RFC 3339 ``timestamp``; ``<unknown>`` when there is none."""
    if not isinstance(timestamp, str) or not timestamp:
        return "<unknown>"
    try:
        return human_duration(now - parse_timestamp(timestamp))
    except ValueError:
        return "<unknown>"


def qualified_name(kind: Kind, obj: Obj) -> str:
    """``deployment.apps/web``, ``pod/web-1``: kubectl's ``-o name`` form."""
    prefix = f"{kind.singular}.{kind.group}" if kind.group else kind.singular
    return f"{prefix}/{name_of(obj)}"


def selector_text(selector: Any) -> str:
    """A ``metav1.LabelSelector`` dict as ``app=web,tier in (a,b)``; ``<none>`` if empty."""
    if not isinstance(selector, Mapping):
        return NONE
    try:
        text = str(LabelSelector.from_dict(selector))
    except ApiError:  # a malformed selector is shown as it is
        return str(dict(selector))
    return text or NONE


def column_widths(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    """The width of each column: its longest cell, header included."""
    cells = [list(headers)] + [list(r) for r in rows]
    n = max(len(r) for r in cells)
    return [max((len(r[i]) for r in cells if i < len(r)), default=0) for i in range(n)]


def format_rows(headers: Sequence[str], rows: Sequence[Sequence[str]],
                widths: Sequence[int] | None = None) -> list[str]:
    """Lines of a table (header first, if any): left-aligned, three spaces apart.

    ``widths`` are minimum widths, so rows printed later line up with a table printed before.
    """
    cells = ([list(headers)] if headers else []) + [list(r) for r in rows]
    if not cells:
        return []
    w = column_widths(headers, rows)
    if widths is not None:
        w = [max(a, b) for a, b in zip(w, list(widths) + [0] * len(w))]
    return ["   ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip() for r in cells]


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _n(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# -- pods -----------------------------------------------------------------------------------
def _terminated_reason(term: dict[str, Any], prefix: str = "") -> str:
    if term.get("reason"):
        return prefix + str(term["reason"])
    if _n(term.get("signal")):
        return f"{prefix}Signal:{_n(term.get('signal'))}"
    return f"{prefix}ExitCode:{_n(term.get('exitCode'))}"


def pod_status(pod: Obj, now: float) -> tuple[str, str, str]:
    """READY, STATUS and RESTARTS of a pod, reasoned as kubectl's pod printer does."""
    spec, status = _d(pod.get("spec")), _d(pod.get("status"))
    total = len(_l(spec.get("containers")))
    reason = str(status.get("reason") or status.get("phase") or "Pending")
    restarts, ready = 0, 0
    last_restart = ""
    initializing = False
    inits = _l(status.get("initContainerStatuses"))
    for i, cs in enumerate(inits):
        cs = _d(cs)
        state = _d(cs.get("state"))
        restarts += _n(cs.get("restartCount"))
        term, waiting = state.get("terminated"), state.get("waiting")
        if isinstance(term, dict) and _n(term.get("exitCode")) == 0:
            continue
        initializing = True
        if isinstance(term, dict):
            reason = _terminated_reason(term, "Init:")
        elif isinstance(waiting, dict) and waiting.get("reason") and \
                waiting.get("reason") != "PodInitializing":
            reason = f"Init:{waiting['reason']}"
        else:
            reason = f"Init:{i}/{len(_l(spec.get('initContainers')))}"
        break
    if not initializing:
        restarts = 0
        has_running = False
        for cs in reversed(_l(status.get("containerStatuses"))):
            cs = _d(cs)
            state = _d(cs.get("state"))
            restarts += _n(cs.get("restartCount"))
            finished = _d(_d(cs.get("lastState")).get("terminated")).get("finishedAt")
            if isinstance(finished, str) and finished > last_restart:
                last_restart = finished
            term, waiting = state.get("terminated"), state.get("waiting")
            if isinstance(waiting, dict) and waiting.get("reason"):
                reason = str(waiting["reason"])
            elif isinstance(term, dict):
                reason = _terminated_reason(term)
            elif cs.get("ready") and isinstance(state.get("running"), dict):
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            conditions = _l(status.get("conditions"))
            pod_ready = any(_d(c).get("type") == "Ready" and _d(c).get("status") == "True"
                            for c in conditions)
            reason = "Running" if pod_ready else "NotReady"
    if meta(pod).get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    restart_text = str(restarts)
    if restarts and last_restart:
        restart_text += f" ({age(last_restart, now)} ago)"
    return f"{ready}/{total}", reason, restart_text


def _pod_row(obj: Obj, now: float, wide: bool) -> list[str]:
    ready, status, restarts = pod_status(obj, now)
    out = [ready, status, restarts]
    if wide:
        gates = _l(_d(obj.get("spec")).get("readinessGates"))
        out += [str(_d(obj.get("status")).get("podIP") or NONE),
                str(_d(obj.get("spec")).get("nodeName") or NONE), NONE,
                str(len(gates)) if gates else NONE]
    return out


# -- workloads ------------------------------------------------------------------------------
def _template_wide(spec: dict[str, Any]) -> list[str]:
    containers = [_d(c) for c in _l(_d(_d(spec.get("template")).get("spec")).get("containers"))]
    return [",".join(str(c.get("name", "")) for c in containers) or NONE,
            ",".join(str(c.get("image", "")) for c in containers) or NONE,
            selector_text(spec.get("selector"))]


def _deployment_row(obj: Obj, now: float, wide: bool) -> list[str]:
    spec, st = _d(obj.get("spec")), _d(obj.get("status"))
    out = [f"{_n(st.get('readyReplicas'))}/{_n(spec.get('replicas'))}",
           str(_n(st.get("updatedReplicas"))), str(_n(st.get("availableReplicas")))]
    return out + (_template_wide(spec) if wide else [])


def _replicaset_row(obj: Obj, now: float, wide: bool) -> list[str]:
    spec, st = _d(obj.get("spec")), _d(obj.get("status"))
    out = [str(_n(spec.get("replicas"))), str(_n(st.get("replicas"))),
           str(_n(st.get("readyReplicas")))]
    return out + (_template_wide(spec) if wide else [])


def _daemonset_row(obj: Obj, now: float, wide: bool) -> list[str]:
    spec, st = _d(obj.get("spec")), _d(obj.get("status"))
    node_selector = _d(_d(_d(spec.get("template")).get("spec")).get("nodeSelector"))
    out = [str(_n(st.get(k))) for k in ("desiredNumberScheduled", "currentNumberScheduled",
                                        "numberReady", "updatedNumberScheduled",
                                        "numberAvailable")]
    out.append(",".join(f"{k}={v}" for k, v in sorted(node_selector.items())) or NONE)
    return out + (_template_wide(spec) if wide else [])


def _job_row(obj: Obj, now: float, wide: bool) -> list[str]:
    spec, st = _d(obj.get("spec")), _d(obj.get("status"))
    succeeded = _n(st.get("succeeded"))
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{_n(spec.get('completions'))}"
    elif _n(spec.get("parallelism")) > 1:
        completions = f"{succeeded}/1 of {_n(spec.get('parallelism'))}"
    else:
        completions = f"{succeeded}/1"
    start, end = st.get("startTime"), st.get("completionTime")
    if not isinstance(start, str):
        duration = ""
    elif isinstance(end, str):
        duration = human_duration(parse_timestamp(end) - parse_timestamp(start))
    else:
        duration = age(start, now)
    return [completions, duration] + (_template_wide(spec) if wide else [])


def _cronjob_row(obj: Obj, now: float, wide: bool) -> list[str]:
    spec, st = _d(obj.get("spec")), _d(obj.get("status"))
    suspend = spec.get("suspend")
    last = st.get("lastScheduleTime")
    return [str(spec.get("schedule", "")),
            "<unset>" if suspend is None else str(bool(suspend)),
            str(len(_l(st.get("active")))),
            age(last, now) if last else NONE]


# -- cluster and core objects ---------------------------------------------------------------
def _node_row(obj: Obj, now: float, wide: bool) -> list[str]:
    spec, st = _d(obj.get("spec")), _d(obj.get("status"))
    status = "Unknown"
    for c in _l(st.get("conditions")):
        c = _d(c)
        if c.get("type") == "Ready":
            status = "Ready" if c.get("status") == "True" else "NotReady"
    if spec.get("unschedulable"):
        status += ",SchedulingDisabled"
    roles = []
    for key, value in labels_of(obj).items():
        if key.startswith("node-role.kubernetes.io/") and key != "node-role.kubernetes.io/":
            roles.append(key.split("/", 1)[1])
        elif key == "kubernetes.io/role" and value:
            roles.append(str(value))
    info = _d(st.get("nodeInfo"))
    out = [status, ",".join(sorted(set(roles))) or NONE, age(meta(obj).get("creationTimestamp"),
                                                                now),
           str(info.get("kubeletVersion") or "")]
    if wide:
        addrs = [_d(a) for a in _l(st.get("addresses"))]
        internal = [str(a.get("address")) for a in addrs if a.get("type") == "InternalIP"]
        external = [str(a.get("address")) for a in addrs if a.get("type") == "ExternalIP"]
        out += [internal[0] if internal else NONE, external[0] if external else NONE,
                str(info.get("osImage") or "<unknown>"),
                str(info.get("kernelVersion") or "<unknown>"),
                str(info.get("containerRuntimeVersion") or "<unknown>")]
    return out


def _namespace_row(obj: Obj, now: float, wide: bool) -> list[str]:
    return [str(_d(obj.get("status")).get("phase") or "Active")]


def _service_row(obj: Obj, now: float, wide: bool) -> list[str]:
    spec, st = _d(obj.get("spec")), _d(obj.get("status"))
    svc_type = str(spec.get("type") or "ClusterIP")
    external = [str(ip) for ip in _l(spec.get("externalIPs"))]
    if svc_type == "LoadBalancer":
        ingress = [_d(i) for i in _l(_d(st.get("loadBalancer")).get("ingress"))]
        external += [str(i.get("ip") or i.get("hostname")) for i in ingress]
        ext_text = ",".join(external) or "<pending>"
    elif svc_type == "ExternalName":
        ext_text = str(spec.get("externalName") or NONE)
    else:
        ext_text = ",".join(external) or NONE
    ports = []
    for p in _l(spec.get("ports")):
        p = _d(p)
        node_port = f":{p['nodePort']}" if p.get("nodePort") else ""
        ports.append(f"{p.get('port')}{node_port}/{p.get('protocol') or 'TCP'}")
    out = [svc_type, str(spec.get("clusterIP") or NONE), ext_text, ",".join(ports) or NONE]
    if wide:
        sel = _d(spec.get("selector"))
        out.append(",".join(f"{k}={v}" for k, v in sorted(sel.items())) or NONE)
    return out


def _endpoints_row(obj: Obj, now: float, wide: bool) -> list[str]:
    found: list[str] = []
    total = 0
    for subset in _l(obj.get("subsets")):
        subset = _d(subset)
        addrs = [str(_d(a).get("ip", "")) for a in _l(subset.get("addresses"))]
        ports = [_d(p).get("port") for p in _l(subset.get("ports"))]
        for port in ports or [None]:
            for ip in addrs:
                total += 1
                if len(found) < 3:
                    found.append(ip if port is None else f"{ip}:{port}")
    text = ",".join(found) or NONE
    if total > 3:
        text += f" + {total - 3} more..."
    return [text]


def _configmap_row(obj: Obj, now: float, wide: bool) -> list[str]:
    return [str(len(_d(obj.get("data"))) + len(_d(obj.get("binaryData"))))]


def _secret_row(obj: Obj, now: float, wide: bool) -> list[str]:
    return [str(obj.get("type") or "Opaque"), str(len(_d(obj.get("data"))))]


def _lease_row(obj: Obj, now: float, wide: bool) -> list[str]:
    return [str(_d(obj.get("spec")).get("holderIdentity") or "")]


def _event_row(obj: Obj, now: float, wide: bool) -> list[str]:
    series = _d(obj.get("series"))
    last = (series.get("lastObservedTime") or obj.get("lastTimestamp") or obj.get("eventTime")
            or meta(obj).get("creationTimestamp"))
    involved = _d(obj.get("involvedObject"))
    target = f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}"
    message = str(obj.get("message") or "").strip().replace("\n", " ")
    return [age(last, now), str(obj.get("type") or ""), str(obj.get("reason") or ""), target,
            message]


_Printer = Callable[[Obj, float, bool], list[str]]
# resource -> (columns after NAME and before AGE, wide columns, printer, whether AGE is last)
_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], _Printer, bool]] = {
    "pods": (("READY", "STATUS", "RESTARTS"), ("IP", "NODE", "NOMINATED NODE",
                                               "READINESS GATES"), _pod_row, True),
    "deployments.apps": (("READY", "UP-TO-DATE", "AVAILABLE"),
                         ("CONTAINERS", "IMAGES", "SELECTOR"), _deployment_row, True),
    "replicasets.apps": (("DESIRED", "CURRENT", "READY"), ("CONTAINERS", "IMAGES", "SELECTOR"),
                         _replicaset_row, True),
    "daemonsets.apps": (("DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE",
                         "NODE SELECTOR"), ("CONTAINERS", "IMAGES", "SELECTOR"),
                        _daemonset_row, True),
    "jobs.batch": (("COMPLETIONS", "DURATION"), ("CONTAINERS", "IMAGES", "SELECTOR"),
                   _job_row, True),
    "cronjobs.batch": (("SCHEDULE", "SUSPEND", "ACTIVE", "LAST SCHEDULE"), (), _cronjob_row,
                       True),
    "nodes": (("STATUS", "ROLES", "AGE", "VERSION"), ("INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE",
                                                      "KERNEL-VERSION", "CONTAINER-RUNTIME"),
              _node_row, False),
    "namespaces": (("STATUS",), (), _namespace_row, True),
    "services": (("TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)"), ("SELECTOR",), _service_row,
                 True),
    "endpoints": (("ENDPOINTS",), (), _endpoints_row, True),
    "configmaps": (("DATA",), (), _configmap_row, True),
    "secrets": (("TYPE", "DATA"), (), _secret_row, True),
    "leases.coordination.k8s.io": (("HOLDER",), (), _lease_row, True),
}
_EVENT_COLUMNS = ("LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE")


def _is_events(kind: Kind) -> bool:
    return kind.resource == "events"


def columns(kind: Kind, wide: bool = False) -> list[str]:
    """The column headers ``steer get`` prints for ``kind``."""
    if _is_events(kind):
        return list(_EVENT_COLUMNS)
    entry = _KINDS.get(kind.resource)
    if entry is None:
        return ["NAME", "AGE"]
    cols, wide_cols, _, age_last = entry
    return ["NAME", *cols, *(["AGE"] if age_last else []), *(wide_cols if wide else ())]


def row(kind: Kind, obj: Obj, now: float, wide: bool = False, *, name: str | None = None
        ) -> list[str]:
    """The cells of ``obj``'s row under ``columns(kind, wide)``; ``name`` overrides NAME."""
    if _is_events(kind):
        return _event_row(obj, now, wide)
    shown = name if name is not None else name_of(obj)
    created = age(meta(obj).get("creationTimestamp"), now)
    entry = _KINDS.get(kind.resource)
    if entry is None:
        return [shown, created]
    cols, _wide_cols, printer, age_last = entry
    cells = printer(obj, now, wide)
    if not age_last:
        return [shown, *cells]
    return [shown, *cells[:len(cols)], created, *cells[len(cols):]]
