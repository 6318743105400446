"""How big each ReplicaSet of a Deployment should be: the arithmetic of rollouts, as pure functions.

- Fenceposts: ``maxSurge`` and ``maxUnavailable`` are counts or percentages
  of ``spec.replicas``; a surge percentage rounds up, an unavailability
  percentage rounds down, and when both come to 0, ``maxUnavailable`` is 1
  (surge might be impossible, e.g. under a quota). Only RollingUpdate has
  fenceposts; Recreate has neither.
- ``new_rs_new_replicas``: how far the new ReplicaSet may grow now
  (never past ``replicas + maxSurge`` pods in all, nor past ``replicas``).
- ``plan_cleanup_unhealthy`` and ``plan_scale_down_old``: which old
  ReplicaSets shrink, oldest first: first the pods that are not available
  anyway, then available ones while at least ``replicas - maxUnavailable``
  stay available.
- Availability budgets count at most ``spec.replicas`` available pods per
  ReplicaSet: a ReplicaSet just shrunk, whose status still counts the pods
  it is about to lose, lends them to no budget. (Kubernetes sums the raw
  status here, which can remove old pods below the minimum while a
  ReplicaSet's status lags its spec.)
- ``plan_proportional_scale``: when the Deployment is resized mid-rollout,
  the new room (``replicas + maxSurge`` minus what exists) is shared among
  the active ReplicaSets in proportion to their size, relative to the
  ``max-replicas`` annotation they were last sized against; what rounding
  leaves over goes to the largest.

ReplicaSets are the API's dicts; nothing here writes anything.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from controllers.api.objects import annotations_of, name_of, parse_timestamp
from controllers.builtin.deployment.annotations import (
    DESIRED_REPLICAS_ANNOTATION,
    max_replicas_annotation,
    revision,
)

__all__ = [
    "InvalidIntOrPercent",
    "actual_replica_count",
    "available_replica_count",
    "by_creation",
    "filter_active",
    "find_active_or_latest",
    "is_rolling_update",
    "is_saturated",
    "max_scaled_down",
    "max_surge",
    "max_unavailable",
    "new_rs_new_replicas",
    "plan_cleanup_unhealthy",
    "plan_proportional_scale",
    "plan_scale_down_old",
    "proportion",
    "ready_replica_count",
    "replica_count",
    "replicas_of",
    "resolve_fenceposts",
    "scaled_value",
    "sorted_by_revision",
    "sorted_by_size_newer",
    "sorted_by_size_older",
]

_PERCENT = re.compile(r"([0-9]+)%")

R = TypeVar("R", bound=Mapping[str, Any])

Plan = list[tuple[R, int]]
"""ReplicaSets with the ``spec.replicas`` each should get, in the order to apply them."""


class InvalidIntOrPercent(ValueError):
    """A fencepost is neither an integer nor a percentage like ``25%``."""


def scaled_value(value: int | str | None, total: int, *, round_up: bool) -> int:
    """``value`` as a count: an int as is, ``"N%"`` of ``total`` rounded up or down.

    Raises:
        InvalidIntOrPercent: ``value`` is neither.
    """
    if value is None:
        return 0
    if isinstance(value, bool):
        raise InvalidIntOrPercent(f"invalid value for an int or percentage: {value!r}")
    if isinstance(value, int):
        return value
    match = _PERCENT.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidIntOrPercent(f"invalid value for an int or percentage: {value!r}")
    product = int(match.group(1)) * total
    return -(-product // 100) if round_up else product // 100


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _status_int(obj: Mapping[str, Any], field: str) -> int:
    status = obj.get("status")
    value = status.get(field) if isinstance(status, Mapping) else None
    return value if isinstance(value, int) else 0


def replicas_of(obj: Mapping[str, Any]) -> int:
    """``spec.replicas`` (1 when unset, the API's default)."""
    value = _spec(obj).get("replicas")
    return value if isinstance(value, int) else 1


def is_rolling_update(deployment: Mapping[str, Any]) -> bool:
    strategy = _spec(deployment).get("strategy")
    kind = strategy.get("type") if isinstance(strategy, Mapping) else None
    return kind in (None, "RollingUpdate")


def resolve_fenceposts(surge: int | str | None, unavailable: int | str | None,
                       desired: int) -> tuple[int, int]:
    """``(maxSurge, maxUnavailable)`` as counts for ``desired`` replicas (see the module)."""
    max_surge_count = scaled_value(surge, desired, round_up=True)
    max_unavailable_count = scaled_value(unavailable, desired, round_up=False)
    if max_surge_count == 0 and max_unavailable_count == 0:
        max_unavailable_count = 1
    return max_surge_count, max_unavailable_count


def _fenceposts(deployment: Mapping[str, Any]) -> tuple[int, int]:
    strategy = _spec(deployment).get("strategy")
    ru = strategy.get("rollingUpdate") if isinstance(strategy, Mapping) else None
    ru = ru if isinstance(ru, Mapping) else {}
    return resolve_fenceposts(ru.get("maxSurge", "25%"), ru.get("maxUnavailable", "25%"),
                              replicas_of(deployment))


def max_surge(deployment: Mapping[str, Any]) -> int:
    """How many pods over ``replicas`` a rolling update may run (0 for Recreate)."""
    if not is_rolling_update(deployment):
        return 0
    return _fenceposts(deployment)[0]


def max_unavailable(deployment: Mapping[str, Any]) -> int:
    """How many of ``replicas`` may be unavailable (0 for Recreate or 0 replicas)."""
    desired = replicas_of(deployment)
    if not is_rolling_update(deployment) or desired == 0:
        return 0
    return min(_fenceposts(deployment)[1], desired)


def replica_count(replicasets: Iterable[Mapping[str, Any] | None]) -> int:
    """The sum of ``spec.replicas``."""
    return sum(replicas_of(rs) for rs in replicasets if rs is not None)


def actual_replica_count(replicasets: Iterable[Mapping[str, Any] | None]) -> int:
    """The sum of ``status.replicas``."""
    return sum(_status_int(rs, "replicas") for rs in replicasets if rs is not None)


def ready_replica_count(replicasets: Iterable[Mapping[str, Any] | None]) -> int:
    """The sum of ``status.readyReplicas``."""
    return sum(_status_int(rs, "readyReplicas") for rs in replicasets if rs is not None)


def available_replica_count(replicasets: Iterable[Mapping[str, Any] | None]) -> int:
    """The sum of ``status.availableReplicas``."""
    return sum(_status_int(rs, "availableReplicas") for rs in replicasets if rs is not None)


def _available_within_spec(rs: Mapping[str, Any]) -> int:
    return min(replicas_of(rs), _status_int(rs, "availableReplicas"))


def filter_active(replicasets: Iterable[R | None]) -> list[R]:
    """The ReplicaSets asked for at least one replica."""
    return [rs for rs in replicasets if rs is not None and replicas_of(rs) > 0]


def by_creation(rs: Mapping[str, Any]) -> tuple[float, str]:
    """Sort key: oldest first, then by name."""
    stamp = (rs.get("metadata") or {}).get("creationTimestamp")
    try:
        created = parse_timestamp(stamp) if isinstance(stamp, str) else 0.0
    except ValueError:
        created = 0.0
    return created, name_of(rs)


def sorted_by_size_newer(replicasets: Iterable[R]) -> list[R]:
    """Largest first; among equals, newest first."""
    by_age = sorted(replicasets, key=by_creation, reverse=True)
    return sorted(by_age, key=replicas_of, reverse=True)


def sorted_by_size_older(replicasets: Iterable[R]) -> list[R]:
    """Largest first; among equals, oldest first."""
    by_age = sorted(replicasets, key=by_creation)
    return sorted(by_age, key=replicas_of, reverse=True)


def sorted_by_revision(replicasets: Iterable[R]) -> list[R]:
    """Lowest revision first; among equals (or unreadable revisions, as 0), oldest first."""
    def key(rs: Mapping[str, Any]) -> tuple[int, tuple[float, str]]:
        try:
            number = revision(rs)
        except ValueError:
            number = 0
        return number, by_creation(rs)
    return sorted(replicasets, key=key)


def find_active_or_latest(new_rs: R | None, old_rss: Sequence[R]) -> R | None:
    """The one active ReplicaSet; else, if none is active, the new (or newest old) one.

    ``None`` when several are active, or there are none at all.
    """
    if new_rs is None and not old_rss:
        return None
    newest_first = sorted(old_rss, key=by_creation, reverse=True)
    active = filter_active([*newest_first, new_rs])
    if len(active) == 1:
        return active[0]
    if not active:
        return new_rs if new_rs is not None else newest_first[0]
    return None


def is_saturated(deployment: Mapping[str, Any], rs: Mapping[str, Any] | None) -> bool:
    """Whether ``rs`` alone is the whole, fully available Deployment."""
    if rs is None:
        return False
    try:
        desired = int(annotations_of(rs).get(DESIRED_REPLICAS_ANNOTATION, ""))
    except ValueError:
        return False
    want = replicas_of(deployment)
    return (replicas_of(rs) == want and desired == want
            and _status_int(rs, "availableReplicas") == want)


def new_rs_new_replicas(deployment: Mapping[str, Any], all_rss: Sequence[Mapping[str, Any]],
                        new_rs: Mapping[str, Any]) -> int:
    """The size the new ReplicaSet may have now (see the module docstring)."""
    desired = replicas_of(deployment)
    if not is_rolling_update(deployment):
        return desired
    current = replica_count(all_rss)
    most = desired + max_surge(deployment)
    if current >= most:
        return replicas_of(new_rs)
    grow = min(most - current, desired - replicas_of(new_rs))
    return replicas_of(new_rs) + grow


def max_scaled_down(deployment: Mapping[str, Any], all_rss: Sequence[Mapping[str, Any]],
                    new_rs: Mapping[str, Any]) -> int:
    """How many old pods may go now without lowering availability (may be <= 0).

    Pods of the new ReplicaSet that are not available yet count against
    it, so that old pods are not removed on their account.
    """
    min_available = replicas_of(deployment) - max_unavailable(deployment)
    new_unavailable = replicas_of(new_rs) - _available_within_spec(new_rs)
    return replica_count(all_rss) - min_available - new_unavailable


def plan_cleanup_unhealthy(old_rss: Sequence[R], max_cleanup: int) -> Plan[R]:
    """Shrink old ReplicaSets by their unavailable replicas, oldest first, up to ``max_cleanup``."""
    plan: Plan[R] = []
    total = 0
    for rs in sorted(old_rss, key=by_creation):
        if total >= max_cleanup:
            break
        size = replicas_of(rs)
        available = _status_int(rs, "availableReplicas")
        if size == 0 or size == available:
            continue
        down = min(max_cleanup - total, size - available)
        if down <= 0:
            continue
        plan.append((rs, size - down))
        total += down
    return plan


def plan_scale_down_old(deployment: Mapping[str, Any], all_rss: Sequence[Mapping[str, Any]],
                        old_rss: Sequence[R]) -> Plan[R]:
    """Shrink old ReplicaSets, oldest first, while ``replicas - maxUnavailable`` stay available."""
    min_available = replicas_of(deployment) - max_unavailable(deployment)
    available = sum(_available_within_spec(rs) for rs in all_rss)
    if available <= min_available:
        return []
    budget = available - min_available
    plan: Plan[R] = []
    total = 0
    for rs in sorted(old_rss, key=by_creation):
        if total >= budget:
            break
        size = replicas_of(rs)
        if size == 0:
            continue
        down = min(size, budget - total)
        plan.append((rs, size - down))
        total += down
    return plan


def _round_half_away(value: float) -> int:
    return math.floor(value + 0.5) if value >= 0 else -math.floor(-value + 0.5)


def _fraction(rs: Mapping[str, Any], deployment: Mapping[str, Any]) -> int:
    """How many replicas ``rs`` gains (or loses) if it keeps its share of the Deployment."""
    desired = replicas_of(deployment)
    if desired == 0:
        return -replicas_of(rs)
    deployment_max = desired + max_surge(deployment)
    annotated = max_replicas_annotation(rs)
    if not annotated:
        status = deployment.get("status")
        known = status.get("replicas") if isinstance(status, Mapping) else None
        annotated = known if isinstance(known, int) else 0
    if annotated <= 0:
        return 0
    return _round_half_away(replicas_of(rs) * deployment_max / annotated) - replicas_of(rs)


def proportion(rs: Mapping[str, Any], deployment: Mapping[str, Any], to_add: int,
               added: int) -> int:
    """The share of ``to_add`` (of which ``added`` is handed out already) that ``rs`` gets."""
    if replicas_of(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = _fraction(rs, deployment)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def plan_proportional_scale(deployment: Mapping[str, Any],
                            rss: Sequence[R | None]) -> tuple[Plan[R], str]:
    """New sizes of the active ReplicaSets after a resize mid-rollout, and "up" or "down".

    The plan lists every active ReplicaSet (sizes may be unchanged).
    """
    active = filter_active(rss)
    desired = replicas_of(deployment)
    allowed = desired + max_surge(deployment) if desired > 0 else 0
    to_add = allowed - replica_count(active)
    operation = ""
    if to_add > 0:
        active = sorted_by_size_newer(active)
        operation = "up"
    elif to_add < 0:
        active = sorted_by_size_older(active)
        operation = "down"
    sizes: list[int] = []
    added = 0
    for rs in active:
        share = proportion(rs, deployment, to_add, added) if to_add != 0 else 0
        sizes.append(replicas_of(rs) + share)
        added += share
    if active and to_add != 0:
        sizes[0] = max(0, sizes[0] + to_add - added)
    return list(zip(active, sizes)), operation
