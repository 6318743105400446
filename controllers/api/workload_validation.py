"""Rules for workloads: Deployment, ReplicaSet, DaemonSet, Job, CronJob.

Each needs a pod template; Deployment, ReplicaSet and DaemonSet need a
non-empty ``spec.selector`` that the template's labels satisfy (otherwise
the controller would never see the pods it makes), and their templates
must restart ``Always``; a Job's template restarts ``OnFailure`` or
``Never``. Counts are non-negative integers; rolling-update bounds are
integers or percentages and may not both be zero. Selectors of Deployment,
ReplicaSet, DaemonSet and Job are immutable, as is a Job's template.
"""

from __future__ import annotations

import re
from typing import Any

from controllers.api.errors import BadRequest
from controllers.api.pod_validation import validate_pod_template
from controllers.api.selectors import LabelSelector
from controllers.api.validation import ErrorList, validate_label_selector

__all__ = [
    "validate_cron_schedule",
    "validate_cronjob",
    "validate_daemonset",
    "validate_deployment",
    "validate_job",
    "validate_job_update",
    "validate_replicaset",
    "validate_selector_immutable",
]

_PERCENT_RE = re.compile(r"[0-9]+%")
_CRON_FIELD_RE = re.compile(r"(\*|\?|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?(,(\*|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?)*")
_CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def _selector_and_template(errs: ErrorList, spec: dict[str, Any], *, required: bool = True
                           ) -> None:
    """``spec.selector`` is valid, non-empty, and matches ``spec.template.metadata.labels``."""
    sel = spec.get("selector")
    before = len(errs)
    validate_label_selector(errs, sel, "spec.selector", required=required)
    if sel is not None and isinstance(sel, dict) and len(errs) == before:
        if not sel.get("matchLabels") and not sel.get("matchExpressions"):
            errs.invalid("spec.selector", sel, "empty selector is invalid for this kind")
            return
        template = spec.get("template")
        labels = template.get("metadata", {}).get("labels") if isinstance(template, dict) else None
        if not isinstance(labels, dict):
            labels = {}
        try:
            matched = LabelSelector.from_dict(sel).matches(labels)
        except BadRequest:
            return
        if not matched:
            errs.invalid("spec.template.metadata.labels", labels,
                         "`selector` does not match template `labels`")


def _int_or_percent(errs: ErrorList, obj: dict[str, Any], key: str, path: str) -> int | None:
    """An int or ``"N%"``; returns the number (percent or count) to compare with zero."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        errs.type_invalid(path, value, "an integer or a percentage")
        return None
    if isinstance(value, int):
        if value < 0:
            errs.invalid(path, value, "must be greater than or equal to 0")
        return value
    if isinstance(value, str) and _PERCENT_RE.fullmatch(value):
        pct = int(value[:-1])
        if pct > 100:
            errs.invalid(path, value, "must not be greater than 100%")
        return pct
    errs.invalid(path, value, "a valid percent string must be a numeric string followed by "
                 "an ending '%' (e.g. '10%') or an integer")
    return None


def _rolling_update(errs: ErrorList, ru: dict[str, Any], path: str, *, surge: bool) -> None:
    unavailable = _int_or_percent(errs, ru, "maxUnavailable", f"{path}.maxUnavailable")
    if surge:
        max_surge = _int_or_percent(errs, ru, "maxSurge", f"{path}.maxSurge")
        if max_surge == 0 and unavailable == 0:
            errs.invalid(f"{path}.maxUnavailable", ru.get("maxUnavailable"),
                         "may not be 0 when `maxSurge` is 0")


def validate_deployment(obj: dict[str, Any], errs: ErrorList) -> None:
    spec = errs.dict_at(obj, "spec", "spec", required=True)
    if spec is None:
        return
    errs.int_at(spec, "replicas", "spec.replicas", minimum=0)
    _selector_and_template(errs, spec)
    validate_pod_template(errs, spec.get("template"), "spec.template", ("Always",))
    strategy = errs.dict_at(spec, "strategy", "spec.strategy")
    if strategy is not None:
        kind = errs.enum_at(strategy, "type", "spec.strategy.type", ("RollingUpdate", "Recreate"))
        ru = errs.dict_at(strategy, "rollingUpdate", "spec.strategy.rollingUpdate")
        if kind == "Recreate" and ru is not None:
            errs.forbidden("spec.strategy.rollingUpdate",
                           "may not be specified when strategy `type` is 'Recreate'")
        elif ru is not None:
            _rolling_update(errs, ru, "spec.strategy.rollingUpdate", surge=True)
    errs.int_at(spec, "revisionHistoryLimit", "spec.revisionHistoryLimit", minimum=0)
    min_ready = errs.int_at(spec, "minReadySeconds", "spec.minReadySeconds", minimum=0)
    deadline = errs.int_at(spec, "progressDeadlineSeconds", "spec.progressDeadlineSeconds",
                           minimum=1)
    if deadline is not None and min_ready is not None and deadline <= min_ready:
        errs.invalid("spec.progressDeadlineSeconds", deadline,
                     "must be greater than minReadySeconds")
    errs.bool_at(spec, "paused", "spec.paused")
    rollback = errs.dict_at(spec, "rollbackTo", "spec.rollbackTo")
    if rollback is not None:
        errs.int_at(rollback, "revision", "spec.rollbackTo.revision", minimum=0)


def validate_replicaset(obj: dict[str, Any], errs: ErrorList) -> None:
    spec = errs.dict_at(obj, "spec", "spec", required=True)
    if spec is None:
        return
    errs.int_at(spec, "replicas", "spec.replicas", minimum=0)
    errs.int_at(spec, "minReadySeconds", "spec.minReadySeconds", minimum=0)
    _selector_and_template(errs, spec)
    validate_pod_template(errs, spec.get("template"), "spec.template", ("Always",))


def validate_daemonset(obj: dict[str, Any], errs: ErrorList) -> None:
    spec = errs.dict_at(obj, "spec", "spec", required=True)
    if spec is None:
        return
    _selector_and_template(errs, spec)
    validate_pod_template(errs, spec.get("template"), "spec.template", ("Always",))
    errs.int_at(spec, "minReadySeconds", "spec.minReadySeconds", minimum=0)
    errs.int_at(spec, "revisionHistoryLimit", "spec.revisionHistoryLimit", minimum=0)
    strategy = errs.dict_at(spec, "updateStrategy", "spec.updateStrategy")
    if strategy is not None:
        kind = errs.enum_at(strategy, "type", "spec.updateStrategy.type",
                            ("RollingUpdate", "OnDelete"))
        ru = errs.dict_at(strategy, "rollingUpdate", "spec.updateStrategy.rollingUpdate")
        if kind == "OnDelete" and ru is not None:
            errs.forbidden("spec.updateStrategy.rollingUpdate",
                           "may not be specified when strategy `type` is 'OnDelete'")
        elif ru is not None:
            path = "spec.updateStrategy.rollingUpdate"
            unavailable = _int_or_percent(errs, ru, "maxUnavailable", f"{path}.maxUnavailable")
            surge = _int_or_percent(errs, ru, "maxSurge", f"{path}.maxSurge")
            if unavailable == 0 and not surge:
                errs.invalid(f"{path}.maxUnavailable", ru.get("maxUnavailable"),
                             "may not be 0 when `maxSurge` is 0")


def _job_spec(errs: ErrorList, spec: dict[str, Any], prefix: str) -> None:
    errs.int_at(spec, "parallelism", f"{prefix}.parallelism", minimum=0)
    completions = errs.int_at(spec, "completions", f"{prefix}.completions", minimum=0)
    errs.int_at(spec, "backoffLimit", f"{prefix}.backoffLimit", minimum=0)
    errs.int_at(spec, "activeDeadlineSeconds", f"{prefix}.activeDeadlineSeconds", minimum=1)
    errs.int_at(spec, "ttlSecondsAfterFinished", f"{prefix}.ttlSecondsAfterFinished", minimum=0)
    mode = errs.enum_at(spec, "completionMode", f"{prefix}.completionMode",
                        ("NonIndexed", "Indexed"))
    if mode == "Indexed" and completions is None:
        errs.required(f"{prefix}.completions", "when completion mode is Indexed")
    errs.bool_at(spec, "suspend", f"{prefix}.suspend")
    errs.bool_at(spec, "manualSelector", f"{prefix}.manualSelector")
    validate_pod_template(errs, spec.get("template"), f"{prefix}.template", ("OnFailure", "Never"))


def validate_job(obj: dict[str, Any], errs: ErrorList) -> None:
    spec = errs.dict_at(obj, "spec", "spec", required=True)
    if spec is None:
        return
    _job_spec(errs, spec, "spec")
    _selector_and_template(errs, spec)


def validate_cron_schedule(schedule: str) -> str | None:
    """Why ``schedule`` is not a 5-field cron line or a macro like ``@hourly`` (``None``: fine)."""
    text = schedule.strip()
    if text.startswith("@"):
        return None if text in _CRON_MACROS else "unknown macro"
    fields = text.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}"
    for f in fields:
        if not _CRON_FIELD_RE.fullmatch(f):
            return f"invalid field {f!r}"
    return None


def validate_cronjob(obj: dict[str, Any], errs: ErrorList) -> None:
    spec = errs.dict_at(obj, "spec", "spec", required=True)
    if spec is None:
        return
    schedule = errs.str_at(spec, "schedule", "spec.schedule", required=True)
    if schedule is not None:
        reason = validate_cron_schedule(schedule)
        if reason:
            errs.invalid("spec.schedule", schedule, reason)
    errs.enum_at(spec, "concurrencyPolicy", "spec.concurrencyPolicy", ("Allow", "Forbid", "Replace"))
    errs.int_at(spec, "startingDeadlineSeconds", "spec.startingDeadlineSeconds", minimum=0)
    errs.int_at(spec, "successfulJobsHistoryLimit", "spec.successfulJobsHistoryLimit", minimum=0)
    errs.int_at(spec, "failedJobsHistoryLimit", "spec.failedJobsHistoryLimit", minimum=0)
    errs.bool_at(spec, "suspend", "spec.suspend")
    errs.str_at(spec, "timeZone", "spec.timeZone")
    template = errs.dict_at(spec, "jobTemplate", "spec.jobTemplate", required=True)
    if template is not None:
        jspec = errs.dict_at(template, "spec", "spec.jobTemplate.spec", required=True)
        if jspec is not None:
            _job_spec(errs, jspec, "spec.jobTemplate.spec")


def validate_selector_immutable(new: dict[str, Any], old: dict[str, Any], errs: ErrorList) -> None:
    """``spec.selector`` may not change."""
    if (new.get("spec") or {}).get("selector") != (old.get("spec") or {}).get("selector"):
        errs.immutable("spec.selector")


def validate_job_update(new: dict[str, Any], old: dict[str, Any], errs: ErrorList) -> None:
    """A Job's selector, template and completions are immutable."""
    validate_selector_immutable(new, old, errs)
    new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    if new_spec.get("template") != old_spec.get("template"):
        errs.immutable("spec.template")
    if new_spec.get("completions") != old_spec.get("completions"):
        errs.immutable("spec.completions")
