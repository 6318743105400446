"""Defaults, applied as Kubernetes applies them, before validation on every write.

A defaulter fills in only what is missing and never overwrites a value the
caller gave, so applying it twice changes nothing. Values:

- Pod (and every pod template): ``restartPolicy`` Always,
  ``terminationGracePeriodSeconds`` 30, ``dnsPolicy`` ClusterFirst,
  ``schedulerName`` default-scheduler; per container ``imagePullPolicy``
  (Always for ``:latest`` or an untagged image, else IfNotPresent) and
  ``protocol`` TCP on ports. A new Pod's ``status.phase`` is Pending.
- Deployment: ``replicas`` 1, strategy RollingUpdate with ``maxSurge`` and
  ``maxUnavailable`` 25%, ``revisionHistoryLimit`` 10,
  ``progressDeadlineSeconds`` 600.
- ReplicaSet: ``replicas`` 1. DaemonSet: RollingUpdate with
  ``maxUnavailable`` 1 and ``maxSurge`` 0, ``revisionHistoryLimit`` 10.
- Job: ``completions`` and ``parallelism`` 1 (``parallelism`` 1 alone when
  only ``completions`` is unset and ``parallelism`` is given, a work queue),
  ``backoffLimit`` 6, ``completionMode`` NonIndexed, ``suspend`` false;
  unless ``manualSelector`` is true, a selector on the Job's uid and the
  matching template labels (``batch.kubernetes.io/controller-uid``,
  ``batch.kubernetes.io/job-name`` and their short legacy twins).
- CronJob: ``concurrencyPolicy`` Allow, ``successfulJobsHistoryLimit`` 3,
  ``failedJobsHistoryLimit`` 1, ``suspend`` false.
- Service: ``type`` ClusterIP, ``sessionAffinity`` None, per port
  ``protocol`` TCP and ``targetPort`` = ``port``. Endpoints: port protocol TCP.
- Namespace: ``spec.finalizers`` [kubernetes], ``status.phase`` Active.
- Secret: ``type`` Opaque; ``stringData`` is folded into ``data`` (UTF-8 bytes).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "JOB_CONTROLLER_UID_LABEL",
    "JOB_NAME_LABEL",
    "default_cronjob",
    "default_daemonset",
    "default_deployment",
    "default_endpoints",
    "default_job",
    "default_namespace",
    "default_pod",
    "default_pod_spec",
    "default_pod_template",
    "default_replicaset",
    "default_secret",
    "default_service",
]

JOB_CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


def _dict(parent: dict[str, Any], key: str) -> dict[str, Any] | None:
    """``parent[key]``, created empty if missing; ``None`` if it is not a dict (left for validation)."""
    value = parent.setdefault(key, {})
    return value if isinstance(value, dict) else None


def _pull_policy(image: Any) -> str:
    if not isinstance(image, str):
        return "IfNotPresent"
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _default_ports(ports: Any) -> None:
    for port in ports if isinstance(ports, list) else ():
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")


def default_pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    for key in ("initContainers", "containers"):
        containers = spec.get(key)
        for c in containers if isinstance(containers, list) else ():
            if isinstance(c, dict):
                c.setdefault("imagePullPolicy", _pull_policy(c.get("image")))
                _default_ports(c.get("ports"))


def default_pod_template(template: Any) -> None:
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        default_pod_spec(template["spec"])


def default_pod(obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict):
        default_pod_spec(spec)
    status = _dict(obj, "status")
    if status is not None:
        status.setdefault("phase", "Pending")


def default_deployment(obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("replicas", 1)
    strategy = _dict(spec, "strategy")
    if strategy is not None:
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            ru = _dict(strategy, "rollingUpdate")
            if ru is not None:
                ru.setdefault("maxUnavailable", "25%")
                ru.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    default_pod_template(spec.get("template"))


def default_replicaset(obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        default_pod_template(spec.get("template"))


def default_daemonset(obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    strategy = _dict(spec, "updateStrategy")
    if strategy is not None:
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            ru = _dict(strategy, "rollingUpdate")
            if ru is not None:
                ru.setdefault("maxUnavailable", 1)
                ru.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    default_pod_template(spec.get("template"))


def default_job(obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    default_pod_template(spec.get("template"))
    meta = obj.get("metadata")
    uid = meta.get("uid") if isinstance(meta, dict) else None
    if spec.get("manualSelector") is True or spec.get("selector") is not None or not uid:
        return
    spec["selector"] = {"matchLabels": {JOB_CONTROLLER_UID_LABEL: uid}}
    template = spec.get("template")
    if isinstance(template, dict):
        tmeta = _dict(template, "metadata")
        labels = _dict(tmeta, "labels") if tmeta is not None else None
        if labels is not None:
            name = meta.get("name", "") if isinstance(meta, dict) else ""
            labels.setdefault(JOB_CONTROLLER_UID_LABEL, uid)
            labels.setdefault(JOB_NAME_LABEL, name)
            labels.setdefault("controller-uid", uid)
            labels.setdefault("job-name", name)


def default_cronjob(obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    spec.setdefault("suspend", False)
    template = spec.get("jobTemplate")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        default_pod_template(template["spec"].get("template"))


def default_service(obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    ports = spec.get("ports")
    for port in ports if isinstance(ports, list) else ():
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if "port" in port:
                port.setdefault("targetPort", port["port"])


def default_endpoints(obj: dict[str, Any]) -> None:
    subsets = obj.get("subsets")
    for subset in subsets if isinstance(subsets, list) else ():
        if isinstance(subset, dict):
            _default_ports(subset.get("ports"))


def default_namespace(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    if spec is not None:
        spec.setdefault("finalizers", ["kubernetes"])
    status = _dict(obj, "status")
    if status is not None:
        status.setdefault("phase", "Active")


def default_secret(obj: dict[str, Any]) -> None:
    obj.setdefault("type", "Opaque")
    string_data = obj.get("stringData")
    if isinstance(string_data, dict) and all(isinstance(v, str) for v in string_data.values()):
        data = _dict(obj, "data")
        if data is not None:
            for key, value in string_data.items():
                data[key] = value.encode("utf-8")
            del obj["stringData"]
