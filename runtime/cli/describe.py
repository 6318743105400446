"""``steer describe``: one object as readable sections, its Events last, like kubectl's.

Pods, Deployments, ReplicaSets, Nodes, Services and ConfigMaps have their
own layouts (kubectl's); any other kind shows its metadata, then ``spec``
and ``status`` as nested ``Key:  value`` lines. Every description ends with
the Events whose ``involvedObject`` names the object (by uid, or by kind
and name), oldest first: ``Type Reason Age From Message``, or
``Events:  <none>``. ``Sections`` aligns the values of neighbouring fields
of one level, as kubectl's tab writer does.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from typing import Any

import click

from controllers.api import ApiError, Clientset, Kind, LabelSelector
from controllers.api.objects import (
    Obj,
    annotations_of,
    labels_of,
    meta,
    name_of,
    parse_timestamp,
)
from runtime.cli.printers import age, format_rows, pod_status, selector_text
from runtime.cli.session import lookup_kind, run_api
from runtime.cli.targets import split_slash

__all__ = ["Sections", "describe", "describe_object", "write_pod_template"]

NONE = "<none>"


class Sections:
    """Lines of ``Key:  value`` at indentation levels, aligned per run of one level."""

    def __init__(self) -> None:
        self._items: list[tuple[int, str, str | None]] = []

    def field(self, level: int, key: str, value: Any = None) -> None:
        """``Key:`` alone (a heading, when ``value`` is None) or ``Key:  value``."""
        self._items.append((level, f"{key}:", None if value is None else str(value)))

    def text(self, level: int, line: str) -> None:
        self._items.append((level, line, None))

    def table(self, level: int, headers: list[str], rows: list[list[str]]) -> None:
        """A table with a dashed rule (at least four dashes) under its headers."""
        for line in format_rows(headers, [["-" * max(4, len(h)) for h in headers], *rows]):
            self.text(level, line)

    def lines(self) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(self._items):
            level = self._items[i][0]
            j = i
            while j < len(self._items) and self._items[j][0] == level and \
                    self._items[j][2] is not None:
                j += 1
            if j == i:
                lvl, key, _ = self._items[i]
                out.append("  " * lvl + key)
                i += 1
                continue
            width = max(len(self._items[k][1]) for k in range(i, j)) + 2
            for k in range(i, j):
                lvl, key, value = self._items[k]
                first, *rest = (value or "").split("\n")
                out.append(("  " * lvl + key.ljust(width) + first).rstrip())
                out += ["  " * lvl + " " * width + r for r in rest]
            i = j
        return out


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _pairs(m: Mapping[str, Any], sep: str = "=") -> str:
    return "\n".join(f"{k}{sep}{v}" for k, v in sorted(m.items())) or NONE


def _time(ts: Any) -> str:
    if not isinstance(ts, str) or not ts:
        return NONE
    try:
        return email.utils.formatdate(parse_timestamp(ts)).replace("-0000", "+0000")
    except ValueError:
        return ts


def _common(s: Sections, obj: Obj, *, namespaced: bool) -> None:
    m = meta(obj)
    s.field(0, "Name", m.get("name", ""))
    if namespaced:
        s.field(0, "Namespace", m.get("namespace", ""))


def _labels_annotations(s: Sections, obj: Obj, level: int = 0) -> None:
    s.field(level, "Labels", _pairs(labels_of(obj)))
    s.field(level, "Annotations", _pairs(annotations_of(obj), ": "))


def _controlled_by(s: Sections, obj: Obj) -> None:
    for ref in _l(meta(obj).get("ownerReferences")):
        ref = _d(ref)
        if ref.get("controller"):
            s.field(0, "Controlled By", f"{ref.get('kind')}/{ref.get('name')}")


def _container(s: Sections, level: int, c: dict[str, Any], cs: dict[str, Any]) -> None:
    s.field(level, str(c.get("name", "")))
    s.field(level + 1, "Image", c.get("image", ""))
    ports = [_d(p) for p in _l(c.get("ports"))]
    s.field(level + 1, "Port", ", ".join(f"{p.get('containerPort')}/{p.get('protocol', 'TCP')}"
                                         for p in ports) or NONE)
    if c.get("command"):
        s.field(level + 1, "Command", "\n".join(map(str, c["command"])))
    if c.get("args"):
        s.field(level + 1, "Args", "\n".join(map(str, c["args"])))
    if cs:
        state = _d(cs.get("state"))
        for name in ("running", "waiting", "terminated"):
            if name in state:
                detail = _d(state[name])
                s.field(level + 1, "State", name.capitalize())
                if detail.get("reason"):
                    s.field(level + 2, "Reason", detail["reason"])
                if "exitCode" in detail:
                    s.field(level + 2, "Exit Code", detail["exitCode"])
                if detail.get("startedAt"):
                    s.field(level + 2, "Started", _time(detail["startedAt"]))
                if detail.get("finishedAt"):
                    s.field(level + 2, "Finished", _time(detail["finishedAt"]))
        s.field(level + 1, "Ready", str(bool(cs.get("ready"))).capitalize())
        s.field(level + 1, "Restart Count", cs.get("restartCount", 0))
    env = [_d(e) for e in _l(c.get("env"))]
    s.field(level + 1, "Environment",
            "\n".join(f"{e.get('name')}:  {e.get('value', '')}" for e in env) or NONE)
    mounts = [_d(v) for v in _l(c.get("volumeMounts"))]
    s.field(level + 1, "Mounts", "\n".join(f"{v.get('mountPath')} from {v.get('name')}"
                                           for v in mounts) or NONE)


def write_pod_template(s: Sections, level: int, template: dict[str, Any]) -> None:
    """A ``Pod Template:`` section: labels, containers and volumes."""
    s.field(level, "Pod Template")
    s.field(level + 1, "Labels", _pairs(labels_of(template)))
    spec = _d(template.get("spec"))
    s.field(level + 1, "Containers")
    for c in _l(spec.get("containers")):
        _container(s, level + 2, _d(c), {})
    volumes = [_d(v) for v in _l(spec.get("volumes"))]
    s.field(level + 1, "Volumes", ", ".join(str(v.get("name")) for v in volumes) or NONE)


def _conditions(s: Sections, status: dict[str, Any], extra: tuple[str, ...] = ()) -> None:
    conditions = [_d(c) for c in _l(status.get("conditions"))]
    if not conditions:
        return
    s.field(0, "Conditions")
    s.table(1, ["Type", "Status", *extra],
            [[str(c.get("type", "")), str(c.get("status", "")),
              *[str(c.get(e[0].lower() + e[1:], "")) for e in extra]] for c in conditions])


async def _describe_pod(api: Clientset, s: Sections, obj: Obj) -> None:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    node = spec.get("nodeName")
    s.field(0, "Node", f"{node}/{status.get('hostIP', '')}" if node else NONE)
    s.field(0, "Start Time", _time(status.get("startTime")))
    _labels_annotations(s, obj)
    s.field(0, "Status", pod_status(obj, api.clock.now())[1])
    s.field(0, "IP", status.get("podIP") or "")
    _controlled_by(s, obj)
    statuses = {str(_d(c).get("name")): _d(c) for c in _l(status.get("containerStatuses"))}
    s.field(0, "Containers")
    for c in _l(spec.get("containers")):
        _container(s, 1, _d(c), statuses.get(str(_d(c).get("name")), {}))
    _conditions(s, status)
    volumes = [_d(v) for v in _l(spec.get("volumes"))]
    s.field(0, "Volumes", ", ".join(str(v.get("name")) for v in volumes) or NONE)
    s.field(0, "Node-Selectors", _pairs(_d(spec.get("nodeSelector"))))
    tolerations = [_d(t) for t in _l(spec.get("tolerations"))]
    s.field(0, "Tolerations", "\n".join(
        f"{t.get('key', '')}{'=' + str(t['value']) if t.get('value') else ''}"
        f":{t.get('effect', '')} op={t.get('operator', 'Equal')}" for t in tolerations) or NONE)


async def _owned_replicasets(api: Clientset, deploy: Obj) -> list[Obj]:
    uid = meta(deploy).get("uid")
    lst = await api.resource("replicasets").list(meta(deploy).get("namespace") or "default")
    return [rs for rs in lst["items"]
            if any(_d(r).get("uid") == uid and _d(r).get("controller")
                   for r in _l(meta(rs).get("ownerReferences")))]


async def _describe_deployment(api: Clientset, s: Sections, obj: Obj) -> None:
    spec, st = _d(obj.get("spec")), _d(obj.get("status"))
    s.field(0, "CreationTimestamp", _time(meta(obj).get("creationTimestamp")))
    _labels_annotations(s, obj)
    s.field(0, "Selector", selector_text(spec.get("selector")))
    total, updated = st.get("replicas", 0), st.get("updatedReplicas", 0)
    available = st.get("availableReplicas", 0)
    s.field(0, "Replicas", f"{spec.get('replicas', 0)} desired | {updated} updated | {total} "
            f"total | {available} available | {st.get('unavailableReplicas', 0)} unavailable")
    strategy = _d(spec.get("strategy"))
    s.field(0, "StrategyType", strategy.get("type", "RollingUpdate"))
    s.field(0, "MinReadySeconds", spec.get("minReadySeconds", 0))
    ru = _d(strategy.get("rollingUpdate"))
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        s.field(0, "RollingUpdateStrategy", f"{ru.get('maxUnavailable', '25%')} max "
                f"unavailable, {ru.get('maxSurge', '25%')} max surge")
    write_pod_template(s, 0, _d(spec.get("template")))
    _conditions(s, st, ("Reason",))
    sets = await _owned_replicasets(api, obj)
    template = _strip_hash(_d(spec.get("template")))
    new = [rs for rs in sets if _strip_hash(_d(_d(rs.get("spec")).get("template"))) == template]
    old = [rs for rs in sets if rs not in new and _d(rs.get("spec")).get("replicas")]

    def show(rs: Obj) -> str:
        return (f"{name_of(rs)} ({_d(rs.get('status')).get('replicas', 0)}/"
                f"{_d(rs.get('spec')).get('replicas', 0)} replicas created)")

    s.field(0, "OldReplicaSets", ", ".join(show(rs) for rs in old) or NONE)
    s.field(0, "NewReplicaSet", show(new[0]) if new else NONE)


def _strip_hash(template: dict[str, Any]) -> dict[str, Any]:
    out = dict(template)
    labels = dict(labels_of(template))
    labels.pop("pod-template-hash", None)
    out["metadata"] = {**_d(template.get("metadata")), "labels": labels}
    return out


async def _describe_replicaset(api: Clientset, s: Sections, obj: Obj) -> None:
    spec, st = _d(obj.get("spec")), _d(obj.get("status"))
    s.field(0, "Selector", selector_text(spec.get("selector")))
    _labels_annotations(s, obj)
    _controlled_by(s, obj)
    s.field(0, "Replicas", f"{st.get('replicas', 0)} current / {spec.get('replicas', 0)} desired")
    try:
        selector = LabelSelector.from_dict(_d(spec.get("selector")))
        pods = await api.resource("pods").list(meta(obj).get("namespace") or "default",
                                               label_selector=selector)
        phases = [_d(p.get("status")).get("phase", "Pending") for p in pods["items"]]
    except ApiError:  # a bad selector only hides the pod counts
        phases = []
    s.field(0, "Pods Status", f"{phases.count('Running')} Running / "
            f"{phases.count('Pending')} Waiting / {phases.count('Succeeded')} Succeeded / "
            f"{phases.count('Failed')} Failed")
    write_pod_template(s, 0, _d(spec.get("template")))
    _conditions(s, st, ("Reason",))


async def _describe_node(api: Clientset, s: Sections, obj: Obj) -> None:
    spec, st = _d(obj.get("spec")), _d(obj.get("status"))
    roles = sorted(k.split("/", 1)[1] for k in labels_of(obj)
                   if k.startswith("node-role.kubernetes.io/"))
    s.field(0, "Roles", ",".join(roles) or NONE)
    _labels_annotations(s, obj)
    s.field(0, "CreationTimestamp", _time(meta(obj).get("creationTimestamp")))
    taints = [_d(t) for t in _l(spec.get("taints"))]
    s.field(0, "Taints", "\n".join(f"{t.get('key')}{'=' + str(t['value']) if t.get('value') else ''}"
                                   f":{t.get('effect')}" for t in taints) or NONE)
    s.field(0, "Unschedulable", str(bool(spec.get("unschedulable"))).lower())
    _conditions(s, st, ("LastHeartbeatTime", "Reason", "Message"))
    s.field(0, "Addresses")
    for a in _l(st.get("addresses")):
        s.field(1, str(_d(a).get("type")), _d(a).get("address"))
    for section in ("capacity", "allocatable"):
        if _d(st.get(section)):
            s.field(0, section.capitalize())
            for k, v in sorted(_d(st.get(section)).items()):
                s.field(1, k, v)
    info = _d(st.get("nodeInfo"))
    if info:
        s.field(0, "System Info")
        for k, v in info.items():
            s.field(1, k[0].upper() + k[1:], v)
    pods = await api.resource("pods").list(None, field_selector=f"spec.nodeName={name_of(obj)}")
    live = [p for p in pods["items"]
            if _d(p.get("status")).get("phase") not in ("Succeeded", "Failed")]
    s.field(0, "Non-terminated Pods", f"({len(live)} in total)")
    if live:
        s.table(1, ["Namespace", "Name", "Age"],
                [[str(meta(p).get("namespace")), name_of(p),
                  age(meta(p).get("creationTimestamp"), api.clock.now())] for p in live])


async def _describe_service(api: Clientset, s: Sections, obj: Obj) -> None:
    spec = _d(obj.get("spec"))
    _labels_annotations(s, obj)
    s.field(0, "Selector", ",".join(f"{k}={v}" for k, v in sorted(_d(spec.get("selector"))
                                                                    .items())) or NONE)
    s.field(0, "Type", spec.get("type", "ClusterIP"))
    s.field(0, "IP", spec.get("clusterIP") or NONE)
    for p in _l(spec.get("ports")):
        p = _d(p)
        s.field(0, "Port", f"{p.get('name') or '<unset>'}  {p.get('port')}/"
                f"{p.get('protocol', 'TCP')}")
        s.field(0, "TargetPort", f"{p.get('targetPort', p.get('port'))}/"
                f"{p.get('protocol', 'TCP')}")
        if p.get("nodePort"):
            s.field(0, "NodePort", f"{p.get('name') or '<unset>'}  {p['nodePort']}/"
                    f"{p.get('protocol', 'TCP')}")
    s.field(0, "Session Affinity", spec.get("sessionAffinity", "None"))


async def _describe_configmap(api: Clientset, s: Sections, obj: Obj) -> None:
    _labels_annotations(s, obj)
    s.text(0, "")
    s.text(0, "Data")
    s.text(0, "====")
    for k, v in sorted(_d(obj.get("data")).items()):
        s.text(0, f"{k}:")
        s.text(0, "----")
        s.text(0, str(v))
        s.text(0, "")
    s.text(0, "BinaryData")
    s.text(0, "====")
    for k, v in sorted(_d(obj.get("binaryData")).items()):
        s.text(0, f"{k}: {len(str(v)) * 3 // 4} bytes")


def _nested(s: Sections, level: int, key: str, value: Any) -> None:
    title = key[:1].upper() + key[1:]
    if isinstance(value, dict):
        s.field(level, title)
        for k, v in value.items():
            _nested(s, level + 1, str(k), v)
    elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        s.field(level, title)
        for item in value:
            if isinstance(item, dict):
                for k, v in item.items():
                    _nested(s, level + 1, str(k), v)
            else:
                s.text(level + 1, str(item))
    elif isinstance(value, list):
        s.field(level, title, ", ".join(map(str, value)) or NONE)
    else:
        s.field(level, title, value)


async def _describe_generic(api: Clientset, s: Sections, obj: Obj) -> None:
    _labels_annotations(s, obj)
    s.field(0, "API Version", obj.get("apiVersion", ""))
    s.field(0, "Kind", obj.get("kind", ""))
    m = meta(obj)
    s.field(0, "Metadata")
    for k in ("creationTimestamp", "generation", "resourceVersion", "uid"):
        if k in m:
            s.field(1, k[:1].upper() + k[1:], m[k])
    for k, v in obj.items():
        if k not in ("apiVersion", "kind", "metadata"):
            _nested(s, 0, k, v)


_DESCRIBERS = {"pods": _describe_pod, "deployments.apps": _describe_deployment,
               "replicasets.apps": _describe_replicaset, "nodes": _describe_node,
               "services": _describe_service, "configmaps": _describe_configmap}


async def _events(api: Clientset, kind: Kind, obj: Obj) -> list[Obj]:
    ns = meta(obj).get("namespace") if kind.namespaced else None
    lst = await api.resource("events").list(ns or None)
    uid, name = meta(obj).get("uid"), name_of(obj)

    def about(ev: Obj) -> bool:
        inv = _d(ev.get("involvedObject"))
        if inv.get("uid"):
            return bool(inv.get("uid") == uid)
        return bool(inv.get("kind") == kind.kind and inv.get("name") == name)

    found = [e for e in lst["items"] if about(e)]
    # Timestamps have whole seconds: events of one second keep the order they
    # were written in (their resourceVersion).
    return sorted(found, key=lambda e: (str(e.get("lastTimestamp") or e.get("eventTime")
                                            or meta(e).get("creationTimestamp") or ""),
                                        _revision(e)))


def _revision(obj: Obj) -> int:
    rv = meta(obj).get("resourceVersion")
    return int(rv) if isinstance(rv, str) and rv.isdigit() else 0


def _event_age(ev: Obj, now: float) -> str:
    last = ev.get("lastTimestamp") or ev.get("eventTime") or meta(ev).get("creationTimestamp")
    count = ev.get("count")
    count = count if isinstance(count, int) else 1
    first = ev.get("firstTimestamp")
    if count > 1 and first:
        return f"{age(last, now)} (x{count} over {age(first, now)})"
    return age(last, now)


async def describe_object(api: Clientset, kind: Kind, obj: Obj) -> list[str]:
    """The lines ``describe`` prints for ``obj``."""
    s = Sections()
    _common(s, obj, namespaced=kind.namespaced)
    await _DESCRIBERS.get(kind.resource, _describe_generic)(api, s, obj)
    events = await _events(api, kind, obj)
    now = api.clock.now()
    if not events:
        s.field(0, "Events", NONE)
    else:
        s.field(0, "Events")
        s.table(1, ["Type", "Reason", "Age", "From", "Message"],
                [[str(e.get("type", "")), str(e.get("reason", "")), _event_age(e, now),
                  str(_d(e.get("source")).get("component") or e.get("reportingComponent")
                      or ""), str(e.get("message", "")).strip()] for e in events])
    return s.lines()


@click.command()
@click.argument("args", nargs=-1, required=True)
@click.option("-n", "--namespace", default=None)
@click.pass_context
def describe(ctx: click.Context, args: tuple[str, ...], namespace: str | None) -> None:
    """Show details of objects: describe TYPE NAME... | TYPE/NAME..."""

    async def go(api: Clientset) -> None:
        if "/" in args[0]:
            pairs = [split_slash(a) for a in args]
        else:
            pairs = [(args[0], n) for n in args[1:]]
        if not pairs:
            kind = lookup_kind(api, args[0])
            lst = await api.resource(kind.resource).list(
                (namespace or "default") if kind.namespaced else None)
            pairs = [(args[0], name_of(o)) for o in lst["items"]]
        for i, (kind_name, name) in enumerate(pairs):
            kind = lookup_kind(api, kind_name)
            obj = await api.resource(kind.resource).get(name, namespace or "default")
            if i:
                click.echo("\n")
            for line in await describe_object(api, kind, obj):
                click.echo(line)

    run_api(ctx, go)
