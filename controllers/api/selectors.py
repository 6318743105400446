"""Label and field selectors: parse, match, and convert between forms.

Label selectors come in two forms that say the same thing:

- the string form kubectl takes with ``-l``:
  ``app=nginx,tier!=db,env in (a,b),release notin (x),canary,!legacy``
  (``=`` and ``==`` are equality; a bare key means "exists", ``!key``
  "does not exist"). Whitespace around tokens is ignored;
- the ``metav1.LabelSelector`` dict objects carry: ``matchLabels`` plus
  ``matchExpressions`` with ``In``, ``NotIn``, ``Exists``, ``DoesNotExist``.

Rules, as in Kubernetes: every requirement must hold; ``!=`` and ``notin``
also match objects without the label; an empty selector matches everything,
while a missing (``None``) selector in an object matches nothing
(``LabelSelector.from_dict(None)``). ``str(selector)`` is canonical:
requirements sorted by key, set values sorted, so equal selectors print
equally.

Field selectors live in ``field_selectors`` and are re-exported here.

Malformed selectors raise ``BadRequest``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from controllers.api.errors import BadRequest
from controllers.api.field_selectors import FIELD_SELECTOR_FIELDS, FieldRequirement, FieldSelector
from controllers.api.validation import label_value, qualified_name

__all__ = [
    "FIELD_SELECTOR_FIELDS",
    "FieldRequirement",
    "FieldSelector",
    "LabelSelector",
    "Operator",
    "Requirement",
]


class Operator(str, enum.Enum):
    """How a requirement relates a label to its values (spelled as in the string form)."""

    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"


_SET_OPS = (Operator.IN, Operator.NOT_IN)
_EQ_OPS = (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.NOT_EQUALS)
_EXPR_OPS = {"In": Operator.IN, "NotIn": Operator.NOT_IN, "Exists": Operator.EXISTS,
             "DoesNotExist": Operator.DOES_NOT_EXIST}


@dataclass(frozen=True, slots=True)
class Requirement:
    """One condition on one label key; ``values`` is sorted and has no duplicates."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    @classmethod
    def new(cls, key: str, operator: Operator, values: Iterable[str] = ()) -> Requirement:
        """A checked requirement.

        Raises:
            BadRequest: a bad key or value, or a value count the operator does not take.
        """
        vals = tuple(sorted(set(values)))
        bad = qualified_name(key)
        if bad:
            raise BadRequest(f"invalid label key {key!r}: {'; '.join(bad)}")
        if operator in _SET_OPS and not vals:
            raise BadRequest(f"for '{operator.value}' on {key!r} the values set can't be empty")
        if operator in _EQ_OPS and len(vals) != 1:
            raise BadRequest(f"exact-match operator on {key!r} needs exactly one value")
        if operator in (Operator.EXISTS, Operator.DOES_NOT_EXIST) and vals:
            raise BadRequest(f"values not allowed for existence requirement on {key!r}")
        for v in vals:
            bad = label_value(v)
            if bad:
                raise BadRequest(f"invalid label value {v!r}: {'; '.join(bad)}")
        return cls(key, operator, vals)

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op is Operator.EXISTS:
            return self.key in labels
        if op is Operator.DOES_NOT_EXIST:
            return self.key not in labels
        present = self.key in labels and labels[self.key] in self.values
        if op in (Operator.NOT_EQUALS, Operator.NOT_IN):
            return not present
        return present

    def __str__(self) -> str:
        op = self.operator
        if op is Operator.EXISTS:
            return self.key
        if op is Operator.DOES_NOT_EXIST:
            return f"!{self.key}"
        if op in _SET_OPS:
            return f"{self.key} {op.value} ({','.join(self.values)})"
        return f"{self.key}{op.value}{self.values[0]}"


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """Requirements that must all hold; ``nothing`` makes a selector that matches no object."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    @classmethod
    def everything(cls) -> LabelSelector:
        return cls()

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        """The selector written as ``text`` (see the module docstring).

        Raises:
            BadRequest: ``text`` is not a valid selector.
        """
        return cls(_sorted(_Parser(text).parse()))

    @classmethod
    def from_set(cls, labels: Mapping[str, str]) -> LabelSelector:
        """The selector matching objects that carry every one of ``labels``."""
        return cls(_sorted(Requirement.new(k, Operator.EQUALS, [v]) for k, v in labels.items()))

    @classmethod
    def from_dict(cls, sel: Mapping[str, Any] | None) -> LabelSelector:
        """A ``metav1.LabelSelector``; ``None`` matches nothing, ``{}`` everything.

        Raises:
            BadRequest: a malformed selector.
        """
        if sel is None:
            return cls(nothing=True)
        if not isinstance(sel, Mapping):
            raise BadRequest("a label selector must be an object")
        reqs = [Requirement.new(k, Operator.EQUALS, [v])
                for k, v in (sel.get("matchLabels") or {}).items()]
        for expr in sel.get("matchExpressions") or ():
            if not isinstance(expr, Mapping):
                raise BadRequest("a selector expression must be an object")
            op = _EXPR_OPS.get(expr.get("operator", ""))
            if op is None:
                raise BadRequest(f"{expr.get('operator')!r} is not a valid selector operator")
            reqs.append(Requirement.new(str(expr.get("key", "")), op, expr.get("values") or ()))
        return cls(_sorted(reqs))

    def to_dict(self) -> dict[str, Any]:
        """This selector as a ``metav1.LabelSelector`` dict.

        Raises:
            BadRequest: the selector matches nothing, which the dict form cannot say.
        """
        if self.nothing:
            raise BadRequest("a selector that matches nothing has no dict form")
        labels: dict[str, str] = {}
        exprs: list[dict[str, Any]] = []
        for r in self.requirements:
            op = r.operator
            if op in (Operator.EQUALS, Operator.DOUBLE_EQUALS) and r.key not in labels:
                labels[r.key] = r.values[0]
            elif op in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN):
                exprs.append({"key": r.key, "operator": "In", "values": list(r.values)})
            elif op in (Operator.NOT_EQUALS, Operator.NOT_IN):
                exprs.append({"key": r.key, "operator": "NotIn", "values": list(r.values)})
            elif op is Operator.EXISTS:
                exprs.append({"key": r.key, "operator": "Exists"})
            else:
                exprs.append({"key": r.key, "operator": "DoesNotExist"})
        out: dict[str, Any] = {}
        if labels:
            out["matchLabels"] = labels
        if exprs:
            out["matchExpressions"] = exprs
        return out

    def is_empty(self) -> bool:
        """True if the selector matches every object."""
        return not self.requirements and not self.nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _sorted(reqs: Iterable[Requirement]) -> tuple[Requirement, ...]:
    return tuple(sorted(reqs, key=lambda r: (r.key, r.operator.value, r.values)))


_TOKEN_RE = re.compile(r"\s*(==|!=|=|!|\(|\)|,|[^\s=!(),]+)")


class _Parser:
    """A recursive-descent parser over the tokens of a selector string."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[str] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN_RE.match(text, pos)
            if m is None:
                raise BadRequest(f"unable to parse label selector {text!r} at {pos}")
            self.tokens.append(m.group(1))
            pos = m.end()
        self.i = 0

    def _peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _next(self, what: str) -> str:
        tok = self._peek()
        if tok is None:
            raise BadRequest(f"label selector {self.text!r}: expected {what}, found the end")
        self.i += 1
        return tok

    def _ident(self, what: str) -> str:
        tok = self._next(what)
        if tok in ("==", "!=", "=", "!", "(", ")", ","):
            raise BadRequest(f"label selector {self.text!r}: expected {what}, found {tok!r}")
        return tok

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        if not self.tokens:
            return reqs
        while True:
            reqs.append(self._requirement())
            tok = self._peek()
            if tok is None:
                return reqs
            if tok != ",":
                raise BadRequest(f"label selector {self.text!r}: expected ',' found {tok!r}")
            self.i += 1

    def _requirement(self) -> Requirement:
        if self._peek() == "!":
            self.i += 1
            return Requirement.new(self._ident("a label key"), Operator.DOES_NOT_EXIST)
        key = self._ident("a label key")
        tok = self._peek()
        if tok is None or tok == ",":
            return Requirement.new(key, Operator.EXISTS)
        self.i += 1
        if tok in ("=", "==", "!="):
            nxt = self._peek()
            value = "" if nxt is None or nxt == "," else self._ident("a label value")
            return Requirement.new(key, Operator(tok), [value])
        if tok in ("in", "notin"):
            return Requirement.new(key, Operator(tok), self._values())
        raise BadRequest(f"label selector {self.text!r}: unexpected {tok!r} after {key!r}")

    def _values(self) -> list[str]:
        if self._next("'('") != "(":
            raise BadRequest(f"label selector {self.text!r}: expected '(' after in/notin")
        values: list[str] = []
        expect_value = True
        while True:
            tok = self._next("')'")
            if tok == ")":
                if values and expect_value:
                    values.append("")
                return values
            if tok == ",":
                if expect_value:
                    values.append("")
                expect_value = True
                continue
            if not expect_value:
                raise BadRequest(f"label selector {self.text!r}: expected ',' between values")
            values.append(self._check_ident(tok))
            expect_value = False

    def _check_ident(self, tok: str) -> str:
        if tok in ("==", "!=", "=", "!", "("):
            raise BadRequest(f"label selector {self.text!r}: unexpected {tok!r} in values")
        return tok
