"""Taints on nodes and the tolerations of pods that let them past, as Kubernetes matches them.

A toleration tolerates a taint when its ``effect`` is empty or equal to the
taint's, its ``key`` is empty or equal to the taint's, and either its
operator is ``Exists`` or (``Equal``, the default) its ``value`` equals the
taint's. So ``{operator: Exists}`` with no key tolerates every taint.

Well-known taint keys set by the control plane are named here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "NO_EXECUTE",
    "NO_SCHEDULE",
    "PREFER_NO_SCHEDULE",
    "TAINT_NODE_NOT_READY",
    "TAINT_NODE_UNREACHABLE",
    "TAINT_NODE_UNSCHEDULABLE",
    "Taint",
    "Toleration",
    "find_untolerated_taint",
    "parse_taints",
    "parse_tolerations",
    "tolerates",
    "tolerates_any",
]

NO_SCHEDULE = "NoSchedule"
PREFER_NO_SCHEDULE = "PreferNoSchedule"
NO_EXECUTE = "NoExecute"

TAINT_NODE_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_NODE_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_NODE_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"


@dataclass(frozen=True, slots=True)
class Taint:
    """One entry of a node's ``spec.taints``."""

    key: str
    value: str = ""
    effect: str = NO_SCHEDULE

    def describe(self) -> str:
        """``{key: value}``, as Kubernetes prints an untolerated taint."""
        return f"{{{self.key}: {self.value}}}"


@dataclass(frozen=True, slots=True)
class Toleration:
    """One entry of a pod's ``spec.tolerations``."""

    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""


def _str(item: Mapping[str, Any], key: str) -> str:
    found = item.get(key)
    return found if isinstance(found, str) else ""


def parse_taints(node: Mapping[str, Any]) -> tuple[Taint, ...]:
    """The taints of a node object, in the order given."""
    spec = node.get("spec")
    raw = spec.get("taints") if isinstance(spec, Mapping) else None
    if not isinstance(raw, (list, tuple)):
        return ()
    return tuple(Taint(_str(t, "key"), _str(t, "value"), _str(t, "effect") or NO_SCHEDULE)
                 for t in raw if isinstance(t, Mapping))


def parse_tolerations(pod: Mapping[str, Any]) -> tuple[Toleration, ...]:
    """The tolerations of a pod object, in the order given."""
    spec = pod.get("spec")
    raw = spec.get("tolerations") if isinstance(spec, Mapping) else None
    if not isinstance(raw, (list, tuple)):
        return ()
    return tuple(Toleration(_str(t, "key"), _str(t, "operator") or "Equal", _str(t, "value"),
                            _str(t, "effect"))
                 for t in raw if isinstance(t, Mapping))


def tolerates(toleration: Toleration, taint: Taint) -> bool:
    """Whether ``toleration`` tolerates ``taint`` (see the module docstring)."""
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if toleration.key and toleration.key != taint.key:
        return False
    if toleration.operator == "Exists":
        return True
    if toleration.operator == "Equal":
        return toleration.value == taint.value
    return False


def tolerates_any(tolerations: Iterable[Toleration], taint: Taint) -> bool:
    """Whether one of ``tolerations`` tolerates ``taint``."""
    return any(tolerates(t, taint) for t in tolerations)


def find_untolerated_taint(taints: Sequence[Taint], tolerations: Sequence[Toleration],
                           effects: tuple[str, ...] = (NO_SCHEDULE, NO_EXECUTE)) -> Taint | None:
    """The first taint with one of ``effects`` that no toleration tolerates, if any."""
    for taint in taints:
        if taint.effect in effects and not tolerates_any(tolerations, taint):
            return taint
    return None
