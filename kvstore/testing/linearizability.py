"""Linearizability checking of concurrent histories.

``check(history, model)`` answers whether some total order of the operations
(1) respects real time: an operation that returned before another was called
comes first, and (2) is a legal sequential run of ``model``. Contract:

- An operation whose ``ret`` is ``None`` has an unknown outcome: it may have
  taken effect at any moment after its call, or never. Its output is ignored.
- Times are plain numbers on one scale. An operation that returns at the same
  time another is called overlaps it (the lenient reading).
- The answer is ``OK``, ``ILLEGAL`` (with an explanation: the longest
  linearizable prefix found and the operations that could not be placed after
  it) or ``UNKNOWN`` when ``max_steps`` or ``timeout`` ran out first. The
  search never runs past its budget.
- The model may split the history into independent parts (a key-value map by
  key); the history is linearizable iff every part is (Herlihy & Wing's
  locality). One illegal part makes the whole illegal.

The search is Wing & Gong's, with Lowe's just-in-time linearization and the
refinements Porcupine popularized: call and return events sit in one doubly
linked list in time order; the search walks it, linearizing the first call it
can, lifting that operation out of the list, and backtracking when it reaches
the return of an operation it has not linearized. Each ``(set of linearized
operations, model state)`` pair is explored once. Models may be
nondeterministic: the search then tracks the set of states the object may be
in, as a tuple in first-reached order so runs are reproducible.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from kvstore.clock import Clock, MonotonicClock
from kvstore.testing.models import UNKNOWN, Model, Operation

__all__ = ["CheckOutcome", "CheckResult", "PartResult", "check"]

_HEAD = 0
_PENDING_HEAD = 1
_END = -1
_CLOCK_EVERY = 512


class CheckOutcome(enum.Enum):
    OK = "ok"
    ILLEGAL = "illegal"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class PartResult:
    """The verdict on one independent part of the history."""

    label: str
    outcome: CheckOutcome
    operations: int
    steps: int
    longest_prefix: tuple[Operation, ...] = ()
    unplaced: tuple[Operation, ...] = ()
    explanation: str = ""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The verdict on a whole history; ``explanation`` is empty when it is linearizable."""

    outcome: CheckOutcome
    parts: tuple[PartResult, ...]
    steps: int
    explanation: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome is CheckOutcome.OK

    @property
    def unknown(self) -> bool:
        return self.outcome is CheckOutcome.UNKNOWN


class _OutOfBudget(Exception):
    """The search used up its step or time budget."""


class _Budget:
    """Steps and wall time shared by every part of one check."""

    def __init__(self, max_steps: int | None, timeout: float | None, clock: Clock) -> None:
        self.max_steps = max_steps
        self.clock = clock
        self.deadline = None if timeout is None else clock.now() + timeout
        self.steps = 0

    def spend(self, steps: int) -> None:
        self.steps += steps
        if self.max_steps is not None and self.steps > self.max_steps:
            raise _OutOfBudget
        if self.deadline is not None and self.clock.now() >= self.deadline:
            raise _OutOfBudget


def check(
    history: Sequence[Operation],
    model: Model,
    *,
    max_steps: int | None = None,
    timeout: float | None = None,
    clock: Clock | None = None,
) -> CheckResult:
    """Decide whether ``history`` is linearizable with respect to ``model``.

    Args:
        history: the operations, in any order.
        model: the sequential specification (see ``kvstore.testing.models``).
        max_steps: give up with ``UNKNOWN`` after this many search steps in all.
        timeout: give up with ``UNKNOWN`` after this many seconds of ``clock``.
        clock: the clock ``timeout`` is measured on (the monotonic clock by default).

    Raises:
        ValueError: an operation returns before it is called.
    """
    for op in history:
        if op.ret is not None and op.ret < op.call:
            raise ValueError(f"operation returns before its call: {op.describe()}")
    budget = _Budget(max_steps, timeout, clock or MonotonicClock())
    parts: list[PartResult] = []
    for label, ops in model.partition(history):
        before = budget.steps
        try:
            part = _check_part(model, label, ops, budget)
        except _OutOfBudget:
            part = PartResult(label, CheckOutcome.UNKNOWN, len(ops), budget.steps - before,
                              explanation=f"{label}: gave up after {budget.steps} steps")
        parts.append(part)
        if part.outcome is CheckOutcome.ILLEGAL:
            break
    outcomes = [p.outcome for p in parts]
    if CheckOutcome.ILLEGAL in outcomes:
        outcome = CheckOutcome.ILLEGAL
    elif CheckOutcome.UNKNOWN in outcomes:
        outcome = CheckOutcome.UNKNOWN
    else:
        outcome = CheckOutcome.OK
    explanation = "\n".join(p.explanation for p in parts if p.explanation)
    return CheckResult(outcome, tuple(parts), budget.steps, explanation)


def _check_part(model: Model, label: str, ops: list[Operation], budget: _Budget) -> PartResult:
    n = len(ops)
    # Two doubly linked lists over node ids; node 0 heads the main list, node
    # 1 the pending list. The main list holds, in time order, the call and
    # return events of operations that completed; the pending list holds the
    # calls of operations with unknown outcome, by call time.
    events: list[tuple[float, int, int]] = []
    pending_calls: list[tuple[float, int]] = []
    for i, op in enumerate(ops):
        if op.ret is None:
            pending_calls.append((op.call, i))
        else:
            events.append((op.call, 0, i))
            events.append((op.ret, 1, i))
    events.sort()
    pending_calls.sort()
    size = 2 + len(events) + len(pending_calls)
    nxt = [_END] * size
    prv = [0] * size
    time = [0.0] * size
    is_call = [False] * size
    op_of = [0] * size
    call_node = [0] * n
    ret_node = [0] * n
    k = 2
    for head, seq in ((_HEAD, [(t, kind, i) for t, kind, i in events]),
                      (_PENDING_HEAD, [(t, 0, i) for t, i in pending_calls])):
        last = head
        for t, kind, i in seq:
            nxt[last], prv[k] = k, last
            time[k], op_of[k], is_call[k] = t, i, kind == 0
            if kind == 0:
                call_node[i] = k
            else:
                ret_node[i] = k
            last = k
            k += 1
    outputs = [UNKNOWN if op.ret is None else op.output for op in ops]

    def unlink(k: int) -> None:
        nxt[prv[k]] = nxt[k]
        if nxt[k] != _END:
            prv[nxt[k]] = prv[k]

    def relink(k: int) -> None:
        nxt[prv[k]] = k
        if nxt[k] != _END:
            prv[nxt[k]] = k

    step = model.step
    states: tuple[Hashable, ...] = (model.init(),)
    linearized = 0
    unresolved = len(events) // 2
    seen: set[tuple[int, Hashable]] = set()
    # (operation, states before it, barrier time when it was a pending call)
    stack: list[tuple[int, tuple[Hashable, ...], float]] = []
    best: list[int] = []
    best_states = states
    steps = 0
    # The walk tries, before the first return event of the main list (the
    # barrier), first the completed calls, then the pending calls made by
    # then: an operation of unknown outcome is linearized only when nothing
    # else can go next.
    node = nxt[_HEAD]
    barrier = math.inf
    while unresolved:
        steps += 1
        if steps % _CLOCK_EVERY == 0:
            budget.spend(_CLOCK_EVERY)
        if node != _END and is_call[node] and time[node] <= barrier:
            i = op_of[node]
            if len(states) == 1:
                after = step(states[0], ops[i].input, outputs[i])
            else:
                after = tuple(dict.fromkeys(
                    t for s in states for t in step(s, ops[i].input, outputs[i])))
            if after:
                mask = linearized | (1 << i)
                key = (mask, after[0] if len(after) == 1 else frozenset(after))
                if key not in seen:
                    seen.add(key)
                    stack.append((i, states, barrier))
                    states = after
                    linearized = mask
                    unlink(call_node[i])
                    if ops[i].ret is not None:
                        unresolved -= 1
                        unlink(ret_node[i])
                    node = nxt[_HEAD]
                    barrier = math.inf
                    continue
            node = nxt[node]
        elif barrier == math.inf and node != _END and not is_call[node]:
            barrier = time[node]
            node = nxt[_PENDING_HEAD]
        else:
            # A dead end: the deepest one yet is the longest linearizable prefix.
            if len(stack) > len(best):
                best = [j for j, _, _ in stack]
                best_states = states
            if not stack:
                budget.steps += steps % _CLOCK_EVERY
                return _illegal(model, label, ops, steps, best, best_states)
            i, states, barrier = stack.pop()
            linearized &= ~(1 << i)
            if ops[i].ret is not None:
                unresolved += 1
                relink(ret_node[i])
            relink(call_node[i])
            node = nxt[call_node[i]]
    budget.steps += steps % _CLOCK_EVERY
    return PartResult(label, CheckOutcome.OK, n, steps)


def _illegal(
    model: Model,
    label: str,
    ops: list[Operation],
    steps: int,
    best: list[int],
    best_states: tuple[Hashable, ...],
) -> PartResult:
    placed = set(best)
    rest = [i for i in range(len(ops)) if i not in placed]
    # The first completed operation to return among the rest: it, or some
    # operation called before it returned, had to come next, and none fit.
    deadline = min((i for i in rest if ops[i].ret is not None),
                   key=lambda i: (ops[i].ret, i))
    deadline_ret = ops[deadline].ret
    if deadline_ret is None:
        raise ValueError("unreachable: the deadline operation has a return time")
    candidates = [i for i in rest if ops[i].call <= deadline_ret]
    lines = [
        f"{label}: not linearizable; the longest linearizable prefix places "
        f"{len(best)} of {len(ops)} operations:",
    ]
    lines += [f"  {n}. {ops[i].describe()}" for n, i in enumerate(best, start=1)]
    shown = " or ".join(model.describe_state(s) for s in best_states)
    lines.append(f"  then {shown}")
    lines.append(f"  {ops[deadline].describe()} must take effect before it returns, "
                 f"but none of these can come next:")
    for i in candidates:
        output = UNKNOWN if ops[i].ret is None else ops[i].output
        legal = any(model.step(s, ops[i].input, output) for s in best_states)
        why = "fits here, but nothing can follow it" if legal else "impossible in this state"
        lines.append(f"    {ops[i].describe()}: {why}")
    return PartResult(
        label,
        CheckOutcome.ILLEGAL,
        len(ops),
        steps,
        longest_prefix=tuple(ops[i] for i in best),
        unplaced=tuple(ops[i] for i in candidates),
        explanation="\n".join(lines),
    )
