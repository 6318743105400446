"""Sequential specifications for the linearizability checker.

A model says what one operation does to the object when it runs alone:
``step(state, input, output)`` returns every state the object may be in
afterwards, or an empty tuple when ``output`` is impossible from ``state``.
``output`` is :data:`UNKNOWN` for an operation whose outcome the client never
learned; the model must then accept any outcome it could have had.

States must be hashable and compare by value: the checker memoizes
``(linearized operations, state)`` pairs.

Three models ship here:

- :class:`RegisterModel`: ``Write(v)``, ``Read() -> v``, ``Cas(expected, new) -> bool``.
- :class:`CounterModel`: ``Add(n) -> new value``, ``Read() -> value``.
- :class:`KvModel`: ``Put(k, v)``, ``Get(k) -> v | None``, ``Delete(k) -> deleted count``;
  split by key, since operations on different keys never constrain each other.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "UNKNOWN",
    "Add",
    "Cas",
    "CounterModel",
    "Delete",
    "Get",
    "KvModel",
    "Model",
    "Operation",
    "Put",
    "Read",
    "RegisterModel",
    "Unknown",
    "Write",
    "without_unobserved_writes",
]


class Unknown(enum.Enum):
    """The type of :data:`UNKNOWN`."""

    UNKNOWN = "?"

    def __repr__(self) -> str:
        return "?"


UNKNOWN = Unknown.UNKNOWN
"""The output of an operation whose outcome is unknown (it timed out, its server crashed)."""


@dataclass(frozen=True, slots=True)
class Operation:
    """One call in a concurrent history.

    ``call`` and ``ret`` are times on one shared scale; ``ret`` is ``None``
    when the outcome is unknown: the operation may then have taken effect at
    any moment after ``call``, or never, and ``output`` is ignored.
    """

    client: int
    call: float
    ret: float | None
    input: object
    output: object = None

    def describe(self) -> str:
        ret = "?" if self.ret is None else f"{self.ret:g}"
        out = "?" if self.ret is None else repr(self.output)
        return f"client {self.client} [{self.call:g}, {ret}] {self.input} -> {out}"


@dataclass(frozen=True, slots=True)
class Write:
    value: Hashable

    def __str__(self) -> str:
        return f"write({self.value!r})"


@dataclass(frozen=True, slots=True)
class Read:
    def __str__(self) -> str:
        return "read()"


@dataclass(frozen=True, slots=True)
class Cas:
    expected: Hashable
    new: Hashable

    def __str__(self) -> str:
        return f"cas({self.expected!r}, {self.new!r})"


@dataclass(frozen=True, slots=True)
class Add:
    delta: int

    def __str__(self) -> str:
        return f"add({self.delta})"


@dataclass(frozen=True, slots=True)
class Put:
    key: str | bytes
    value: Hashable

    def __str__(self) -> str:
        return f"put({self.key!r}, {self.value!r})"


@dataclass(frozen=True, slots=True)
class Get:
    key: str | bytes

    def __str__(self) -> str:
        return f"get({self.key!r})"


@dataclass(frozen=True, slots=True)
class Delete:
    key: str | bytes

    def __str__(self) -> str:
        return f"delete({self.key!r})"


class Model(Protocol):
    """A sequential specification; see the module docstring."""

    def init(self) -> Hashable:
        """The state before any operation."""
        ...

    def step(self, state: Hashable, input: object, output: object) -> tuple[Hashable, ...]:
        """Every state ``input`` may lead to from ``state`` while producing ``output``."""
        ...

    def partition(self, history: Sequence[Operation]) -> list[tuple[str, list[Operation]]]:
        """Independent parts of ``history`` (label, operations), checked one by one."""
        ...

    def describe_state(self, state: Hashable) -> str:
        """One short line for explanations."""
        ...


def _whole(history: Sequence[Operation]) -> list[tuple[str, list[Operation]]]:
    return [("all", list(history))]


def _bad_input(input: object) -> TypeError:
    return TypeError(f"operation not understood by this model: {input!r}")


class RegisterModel:
    """A single register holding any hashable value (``initial`` before the first write)."""

    def __init__(self, initial: Hashable = None) -> None:
        self.initial = initial

    def init(self) -> Hashable:
        return self.initial

    def step(self, state: Hashable, input: object, output: object) -> tuple[Hashable, ...]:
        if isinstance(input, Read):
            return (state,) if output is UNKNOWN or output == state else ()
        if isinstance(input, Write):
            return (input.value,)
        if isinstance(input, Cas):
            swapped = state == input.expected
            if output is not UNKNOWN and output != swapped:
                return ()
            return (input.new,) if swapped else (state,)
        raise _bad_input(input)

    def partition(self, history: Sequence[Operation]) -> list[tuple[str, list[Operation]]]:
        return _whole(history)

    def describe_state(self, state: Hashable) -> str:
        return f"register = {state!r}"


class CounterModel:
    """An integer counter starting at ``initial``; ``Add`` answers the new value."""

    def __init__(self, initial: int = 0) -> None:
        self.initial = initial

    def init(self) -> Hashable:
        return self.initial

    def step(self, state: Hashable, input: object, output: object) -> tuple[Hashable, ...]:
        if not isinstance(state, int):
            raise TypeError(f"counter state must be an int, not {state!r}")
        if isinstance(input, Read):
            return (state,) if output is UNKNOWN or output == state else ()
        if isinstance(input, Add):
            new = state + input.delta
            return (new,) if output is UNKNOWN or output is None or output == new else ()
        raise _bad_input(input)

    def partition(self, history: Sequence[Operation]) -> list[tuple[str, list[Operation]]]:
        return _whole(history)

    def describe_state(self, state: Hashable) -> str:
        return f"counter = {state!r}"


KvState = tuple[tuple[str | bytes, Hashable], ...]


class KvModel:
    """A map from keys to values; a state is the sorted tuple of its (key, value) pairs.

    ``Delete`` may answer the number of keys it removed (0 or 1) or ``None``
    when the caller did not ask. Keys must all be ``str`` or all ``bytes``.
    """

    def init(self) -> Hashable:
        return ()

    def step(self, state: Hashable, input: object, output: object) -> tuple[Hashable, ...]:
        items: KvState = state  # type: ignore[assignment]
        if isinstance(input, Get):
            current = _lookup(items, input.key)
            return (items,) if output is UNKNOWN or output == current else ()
        if isinstance(input, Put):
            return (_store(items, input.key, input.value, present=True),)
        if isinstance(input, Delete):
            existed = any(k == input.key for k, _ in items)
            if output is not UNKNOWN and output is not None and output != int(existed):
                return ()
            return (_store(items, input.key, None, present=False),)
        raise _bad_input(input)

    def partition(self, history: Sequence[Operation]) -> list[tuple[str, list[Operation]]]:
        parts: dict[str | bytes, list[Operation]] = {}
        for op in history:
            key = getattr(op.input, "key", None)
            if not isinstance(key, (str, bytes)):
                raise _bad_input(op.input)
            parts.setdefault(key, []).append(op)
        return [(f"key {key!r}", ops) for key, ops in parts.items()]

    def describe_state(self, state: Hashable) -> str:
        items: KvState = state  # type: ignore[assignment]
        return "{" + ", ".join(f"{k!r}: {v!r}" for k, v in items) + "}"


def _lookup(items: KvState, key: str | bytes) -> Hashable:
    for k, v in items:
        if k == key:
            return v
    return None


def _store(items: KvState, key: str | bytes, value: Hashable, *, present: bool) -> KvState:
    rest = [(k, v) for k, v in items if k != key]
    if present:
        rest.append((key, value))
        rest.sort(key=lambda kv: kv[0])
    return tuple(rest)


def without_unobserved_writes(history: Sequence[Operation]) -> list[Operation]:
    """Drop the register writes of unknown outcome whose value no completed read returned.

    Sound for a :class:`RegisterModel` history whose writes all carry distinct
    values, none equal to the initial value, with no ``Cas``: such a write can
    always be linearized last (it then never happened), so removing it keeps a
    linearizable history linearizable, and the checker no longer has to try it
    at every point of the search.
    """
    observed = {
        op.output for op in history if op.ret is not None and isinstance(op.input, Read)
    }
    return [
        op
        for op in history
        if not (op.ret is None and isinstance(op.input, Write) and op.input.value not in observed)
    ]
