"""Which nodes a pod's ``nodeSelector`` and node affinity accept, as Kubernetes decides it.

- ``spec.nodeSelector``: every label must be on the node with that value.
- ``spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution``:
  ``nodeSelectorTerms`` are ORed; within a term every ``matchExpressions`` and
  ``matchFields`` requirement must hold. A term with no requirement, or an
  unknown operator, matches no node; so does an empty list of terms.
- Operators: ``In``/``NotIn`` (a missing label is "not in"), ``Exists``,
  ``DoesNotExist``, ``Gt``/``Lt`` (the label and the single value read as
  integers; anything unreadable does not match). ``matchFields`` knows only
  ``metadata.name``.
- ``preferredDuringSchedulingIgnoredDuringExecution``: each term whose
  ``preference`` matches adds its ``weight`` to the node's score.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "NodeAffinity",
    "NodeSelectorRequirement",
    "NodeSelectorTerm",
    "parse_node_affinity",
]

_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")


@dataclass(frozen=True, slots=True)
class NodeSelectorRequirement:
    """``key operator values`` over labels (or fields)."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy the requirement (see the module docstring)."""
        op = self.operator
        present = self.key in labels
        if op == "In":
            return present and labels[self.key] in self.values
        if op == "NotIn":
            return not present or labels[self.key] not in self.values
        if op == "Exists":
            return present
        if op == "DoesNotExist":
            return not present
        if op in ("Gt", "Lt"):
            if not present or len(self.values) != 1:
                return False
            try:
                have, bound = int(labels[self.key]), int(self.values[0])
            except ValueError:
                return False
            return have > bound if op == "Gt" else have < bound
        return False


@dataclass(frozen=True, slots=True)
class NodeSelectorTerm:
    """Requirements that must all hold: on labels and on fields (``metadata.name``)."""

    match_expressions: tuple[NodeSelectorRequirement, ...] = ()
    match_fields: tuple[NodeSelectorRequirement, ...] = ()

    def matches(self, labels: Mapping[str, str], node_name: str) -> bool:
        if not self.match_expressions and not self.match_fields:
            return False
        if not all(r.matches(labels) for r in self.match_expressions):
            return False
        fields = {"metadata.name": node_name}
        return all(r.matches(fields) for r in self.match_fields)


@dataclass(frozen=True, slots=True)
class NodeAffinity:
    """A pod's node selector, required terms (None: no requirement) and weighted preferences."""

    node_selector: tuple[tuple[str, str], ...] = ()
    required: tuple[NodeSelectorTerm, ...] | None = None
    preferred: tuple[tuple[int, NodeSelectorTerm], ...] = ()

    def matches(self, labels: Mapping[str, str], node_name: str) -> bool:
        """Whether a node with ``labels`` and ``node_name`` passes the selector and required terms."""
        if not self.node_selector and self.required is None:
            return True
        for key, want in self.node_selector:
            if labels.get(key) != want:
                return False
        if self.required is None:
            return True
        return any(term.matches(labels, node_name) for term in self.required)

    def preferred_score(self, labels: Mapping[str, str], node_name: str) -> int:
        """The sum of the weights of the preferred terms the node matches."""
        return sum(weight for weight, term in self.preferred if term.matches(labels, node_name))


def _requirements(raw: Any) -> tuple[NodeSelectorRequirement, ...] | None:
    """Parsed requirements; None when one of them is malformed (the term then matches nothing)."""
    if raw is None:
        return ()
    if not isinstance(raw, (list, tuple)):
        return None
    found: list[NodeSelectorRequirement] = []
    for item in raw:
        if not isinstance(item, Mapping):
            return None
        key, op, values = item.get("key"), item.get("operator"), item.get("values") or ()
        if not isinstance(key, str) or op not in _OPERATORS or not isinstance(values, (list, tuple)):
            return None
        found.append(NodeSelectorRequirement(key, str(op), tuple(str(v) for v in values)))
    return tuple(found)


_NEVER = NodeSelectorTerm()
"""A term that matches no node: what a malformed term becomes."""


def _term(raw: Any) -> NodeSelectorTerm:
    if not isinstance(raw, Mapping):
        return _NEVER
    exprs, fields = _requirements(raw.get("matchExpressions")), _requirements(raw.get("matchFields"))
    if exprs is None or fields is None:
        return _NEVER
    return NodeSelectorTerm(exprs, fields)


def parse_node_affinity(pod: Mapping[str, Any]) -> NodeAffinity:
    """The node selector and node affinity of a pod object."""
    spec = pod.get("spec")
    if not isinstance(spec, Mapping):
        return NodeAffinity()
    raw_selector = spec.get("nodeSelector")
    selector = tuple(sorted((str(k), str(v)) for k, v in raw_selector.items())) \
        if isinstance(raw_selector, Mapping) else ()
    affinity = spec.get("affinity")
    node_affinity = affinity.get("nodeAffinity") if isinstance(affinity, Mapping) else None
    if not isinstance(node_affinity, Mapping):
        return NodeAffinity(selector)
    required: tuple[NodeSelectorTerm, ...] | None = None
    raw_required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if isinstance(raw_required, Mapping):
        terms = raw_required.get("nodeSelectorTerms")
        required = tuple(_term(t) for t in terms) if isinstance(terms, (list, tuple)) else ()
    preferred: list[tuple[int, NodeSelectorTerm]] = []
    raw_preferred = node_affinity.get("preferredDuringSchedulingIgnoredDuringExecution")
    for item in raw_preferred if isinstance(raw_preferred, (list, tuple)) else ():
        if not isinstance(item, Mapping):
            continue
        weight = item.get("weight")
        if isinstance(weight, int) and not isinstance(weight, bool) and weight > 0:
            preferred.append((weight, _term(item.get("preference"))))
    return NodeAffinity(selector, required, tuple(preferred))
