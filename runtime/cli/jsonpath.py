"""A JSONPath subset, written as kubectl writes one: ``{.status.phase}``.

``parse`` accepts kubectl's relaxed spellings: ``{.status.phase}``,
``{status.phase}``, ``.status.phase`` and ``status.phase`` are one path.
Steps:

- ``.field``, with ``\\.`` for a dot inside the name, or ``['field']`` /
  ``["field"]``;
- ``[N]``, an item of a list (negative: from the end);
- ``[*]`` or ``.*``: every item of a list, every value of a map;
- ``[?(@.path == "value")]``, ``!=``, or ``[?(@.path)]``: the items of a
  list for which the relative path reaches a value equal (or not) to the
  literal (a quoted string, a number, ``true``, ``false``), or reaches anything.

``JsonPath.find`` returns every value the path reaches, in order; a field
that is missing reaches nothing (kubectl's ``AllowMissingKeys``). Anything
else (recursive descent, slices, unions) is a ``JsonPathError``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["JsonPath", "JsonPathError", "format_value", "parse"]


class JsonPathError(ValueError):
    """A path this module cannot read."""


@dataclass(frozen=True, slots=True)
class _Field:
    name: str


@dataclass(frozen=True, slots=True)
class _Index:
    index: int


@dataclass(frozen=True, slots=True)
class _Every:
    """``[*]`` or ``.*``: every item of a list, every value of a map."""


@dataclass(frozen=True, slots=True)
class _Filter:
    path: tuple[_Step, ...]
    op: str  # "==", "!=" or "" (present)
    value: Any = None


_Step = _Field | _Index | _Every | _Filter


@dataclass(frozen=True, slots=True)
class JsonPath:
    """A parsed path; ``text`` is how it was written."""

    text: str
    steps: tuple[_Step, ...]

    def find(self, obj: Any) -> list[Any]:
        """Every value the path reaches in ``obj``."""
        return _walk([obj], self.steps)


def _walk(values: list[Any], steps: Sequence[_Step]) -> list[Any]:
    for step in steps:
        out: list[Any] = []
        for v in values:
            if isinstance(step, _Field):
                if isinstance(v, dict) and step.name in v:
                    out.append(v[step.name])
            elif isinstance(step, _Index):
                if isinstance(v, list) and -len(v) <= step.index < len(v):
                    out.append(v[step.index])
            elif isinstance(step, _Every):
                if isinstance(v, list):
                    out.extend(v)
                elif isinstance(v, dict):
                    out.extend(v.values())
            elif isinstance(v, list):
                out.extend(item for item in v if _passes(item, step))
        values = out
    return values


def _passes(item: Any, f: _Filter) -> bool:
    found = _walk([item], f.path)
    if not f.op:
        return bool(found)
    equal = any(_same(x, f.value) for x in found)
    return equal if f.op == "==" else not equal


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and bool(a == b)


def format_value(value: Any) -> str:
    """A scalar as kubectl prints it (Go's ``%v``): ``true``, ``3``, ``1.5``, ``<nil>``."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def _literal(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    try:
        return json.loads(text) if text else None
    except ValueError:
        raise JsonPathError(f"unrecognized filter value {text!r}") from None


def _split_filter(expr: str) -> _Filter:
    expr = expr.strip()
    if not expr.startswith("@"):
        raise JsonPathError(f"a filter must start with @: {expr!r}")
    for op in ("==", "!="):
        left, sep, right = expr.partition(op)
        if sep:
            return _Filter(_steps(left.strip()[1:]), op, _literal(right))
    if any(c in expr for c in "<>="):
        raise JsonPathError(f"unsupported filter {expr!r} (== and != only)")
    return _Filter(_steps(expr[1:]), "")


def _close(text: str, start: int, closing: str) -> int:
    """The index of ``closing`` at or after ``start``, skipping quoted text."""
    quote = ""
    for i in range(start, len(text)):
        c = text[i]
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif text.startswith(closing, i):
            return i
    raise JsonPathError(f"unclosed {closing[-1]!r} in {text!r}")


def _steps(text: str) -> tuple[_Step, ...]:
    steps: list[_Step] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == ".":
            if text.startswith("..", i):
                raise JsonPathError("recursive descent (..) is not supported")
            i += 1
            if text.startswith("*", i):
                steps.append(_Every())
                i += 1
                continue
            name = []
            while i < len(text) and text[i] not in ".[":
                if text[i] == "\\" and i + 1 < len(text):
                    i += 1
                name.append(text[i])
                i += 1
            if not name:
                raise JsonPathError(f"a field name is missing in {text!r}")
            steps.append(_Field("".join(name)))
        elif c == "[":
            if text.startswith("[?(", i):
                end = _close(text, i + 3, ")]")
                steps.append(_split_filter(text[i + 3:end]))
                i = end + 2
                continue
            end = _close(text, i + 1, "]")
            inner = text[i + 1:end].strip()
            i = end + 1
            if inner == "*":
                steps.append(_Every())
            elif len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
                steps.append(_Field(inner[1:-1]))
            else:
                try:
                    steps.append(_Index(int(inner)))
                except ValueError:
                    raise JsonPathError(f"unsupported subscript [{inner}] "
                                        "(an index, * or a quoted name)") from None
        else:
            raise JsonPathError(f"unexpected {c!r} in {text!r}")
    return tuple(steps)


def parse(text: str) -> JsonPath:
    """The path written as ``text`` (see the module docstring).

    Raises:
        JsonPathError: an empty or unreadable path.
    """
    inner = text.strip()
    if inner.startswith("{"):
        if not inner.endswith("}") or inner.count("{") != 1:
            raise JsonPathError(f"unexpected path string {text!r}, expected a 'name1.name2' or "
                                "'.name1.name2' or '{name1.name2}' or '{.name1.name2}'")
        inner = inner[1:-1].strip()
    if inner.startswith("."):
        inner = inner[1:]
    if not inner:
        raise JsonPathError("jsonpath expression cannot be empty")
    if not inner.startswith("["):
        inner = "." + inner
    return JsonPath(text, _steps(inner))
