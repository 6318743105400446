"""Field selectors: ``metadata.name=web,status.phase!=Running``.

A field selector is a comma-separated list of ``field=value``,
``field==value`` or ``field!=value``, all of which must hold. Supported
fields: ``metadata.name``, ``metadata.namespace``, ``spec.nodeName`` and
``status.phase``; a field the object lacks reads as ``""``. In values,
``\\,``, ``\\=`` and ``\\\\`` stand for ``,``, ``=`` and ``\\``. Malformed
selectors and unsupported fields raise ``BadRequest``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from controllers.api.errors import BadRequest

__all__ = ["FIELD_SELECTOR_FIELDS", "FieldRequirement", "FieldSelector"]

FIELD_SELECTOR_FIELDS = ("metadata.name", "metadata.namespace", "spec.nodeName", "status.phase")
"""The fields a field selector may name."""


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    """``field = value`` (``negate=False``) or ``field != value``."""

    field: str
    value: str
    negate: bool = False

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return (_field_value(obj, self.field) == self.value) != self.negate

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
        return f"{self.field}{'!=' if self.negate else '='}{escaped}"


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return ""
        node = node.get(part)
    return node if isinstance(node, str) else ""


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """Field requirements that must all hold; empty matches everything."""

    requirements: tuple[FieldRequirement, ...] = ()

    @classmethod
    def parse(cls, text: str, supported: Iterable[str] = FIELD_SELECTOR_FIELDS) -> FieldSelector:
        """The selector written as ``text``.

        Raises:
            BadRequest: malformed, or a field outside ``supported``.
        """
        allowed = tuple(supported)
        reqs = []
        for part in _split_unescaped(text, ","):
            if not part.strip():
                continue
            reqs.append(_field_requirement(part.strip(), allowed, text))
        return cls(tuple(sorted(reqs, key=lambda r: (r.field, r.negate, r.value))))

    def is_empty(self) -> bool:
        return not self.requirements

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all(r.matches(obj) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, cur, i = [], [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            cur.append(text[i:i + 2])
            i += 2
            continue
        if c == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def _unescape(value: str, text: str) -> str:
    out, i = [], 0
    while i < len(value):
        c = value[i]
        if c == "\\":
            if i + 1 >= len(value) or value[i + 1] not in "\\,=":
                raise BadRequest(f"field selector {text!r}: invalid escape in {value!r}")
            out.append(value[i + 1])
            i += 2
            continue
        if c == "=":
            raise BadRequest(f"field selector {text!r}: unescaped '=' in value {value!r}")
        out.append(c)
        i += 1
    return "".join(out)


def _field_requirement(part: str, allowed: tuple[str, ...], text: str) -> FieldRequirement:
    m = re.match(r"([^=!\s]+)\s*(==|!=|=)\s*(.*)", part, re.DOTALL)
    if m is None:
        raise BadRequest(f"field selector {text!r}: {part!r} is not field=value or field!=value")
    field, op, raw = m.group(1), m.group(2), m.group(3)
    if field not in allowed:
        raise BadRequest(f'field label not supported: "{field}"')
    return FieldRequirement(field, _unescape(raw, text), negate=op == "!=")
