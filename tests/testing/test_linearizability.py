"""Tests for the linearizability checker on known histories and generated ones."""

from __future__ import annotations

import itertools
import random
from collections.abc import Hashable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvstore.clock import FakeClock
from kvstore.testing.linearizability import CheckOutcome, check
from kvstore.testing.models import (
    UNKNOWN,
    Add,
    Cas,
    CounterModel,
    Delete,
    Get,
    KvModel,
    Model,
    Operation,
    Put,
    Read,
    RegisterModel,
    Write,
    without_unobserved_writes,
)


def op(client: int, call: float, ret: float | None, input: object,
       output: object = None) -> Operation:
    return Operation(client, call, ret, input, output)


REG = RegisterModel()


def test_empty_history_is_linearizable() -> None:
    assert check([], REG).ok


def test_sequential_history() -> None:
    h = [op(1, 0, 1, Write(1)), op(1, 2, 3, Read(), 1),
         op(1, 4, 5, Write(2)), op(1, 6, 7, Read(), 2)]
    assert check(h, REG).ok


def test_initial_value_read() -> None:
    assert check([op(1, 0, 1, Read(), None)], REG).ok
    assert not check([op(1, 0, 1, Read(), 0)], REG).ok
    assert check([op(1, 0, 1, Read(), 0)], RegisterModel(initial=0)).ok


def test_stale_read_after_completed_write_is_rejected() -> None:
    h = [
        op(1, 0, 1, Write(1)),
        op(1, 2, 3, Write(2)),
        op(2, 4, 5, Read(), 1),
    ]
    res = check(h, REG)
    assert res.outcome is CheckOutcome.ILLEGAL
    assert not res.ok and not res.unknown
    part = res.parts[0]
    assert [o.input for o in part.longest_prefix] == [Write(1), Write(2)]
    assert h[2] in part.unplaced
    assert "not linearizable" in res.explanation
    assert "read() -> 1" in res.explanation
    assert "register = 2" in res.explanation


def test_reads_seeing_writes_in_opposite_orders_are_rejected() -> None:
    h = [
        op(1, 0, 20, Write(1)),
        op(2, 0, 20, Write(2)),
        op(3, 11, 12, Read(), 1),
        op(3, 13, 14, Read(), 2),
        op(4, 11, 12, Read(), 2),
        op(4, 13, 14, Read(), 1),
    ]
    assert not check(h, REG).ok
    # Each reader alone is fine.
    assert check(h[:4], REG).ok
    assert check(h[:2] + h[4:], REG).ok


def test_read_of_a_value_never_written_is_rejected() -> None:
    h = [op(1, 0, 5, Write(1)), op(2, 1, 6, Read(), 7)]
    res = check(h, REG)
    assert res.outcome is CheckOutcome.ILLEGAL
    assert "impossible in this state" in res.explanation


def test_concurrent_overlapping_operations_may_take_either_order() -> None:
    h = [
        op(1, 0, 10, Write(1)),
        op(2, 1, 9, Write(2)),
        op(3, 2, 8, Read(), 1),
        op(4, 3, 7, Read(), 2),
        op(5, 11, 12, Read(), 1),
    ]
    # w2, read 2, w1, read 1, then read 1 after everything.
    assert check(h, REG).ok
    # w1, read 1, w2, read 2, then read 2 after everything.
    assert check(h[:4] + [op(5, 11, 12, Read(), 2)], REG).ok
    # Nothing else was ever written.
    assert not check(h[:4] + [op(5, 11, 12, Read(), None)], REG).ok


def test_touching_intervals_overlap() -> None:
    h = [op(1, 0, 5, Write(1)), op(2, 5, 6, Read(), None)]
    assert check(h, REG).ok
    h = [op(1, 0, 5, Write(1)), op(2, 5.5, 6, Read(), None)]
    assert not check(h, REG).ok


def test_pending_write_may_have_happened() -> None:
    h = [op(1, 0, None, Write(1)), op(2, 10, 11, Read(), 1), op(2, 12, 13, Read(), 1)]
    assert check(h, REG).ok


def test_pending_write_may_not_have_happened() -> None:
    h = [op(1, 0, None, Write(1)), op(2, 10, 11, Read(), None)]
    assert check(h, REG).ok


def test_pending_write_cannot_happen_before_its_call() -> None:
    h = [op(2, 0, 1, Read(), 1), op(1, 2, None, Write(1))]
    assert not check(h, REG).ok


def test_pending_write_takes_effect_once() -> None:
    h = [
        op(1, 0, None, Write(1)),
        op(2, 1, 2, Read(), 1),
        op(2, 3, 4, Write(2)),
        op(2, 5, 6, Read(), 1),
    ]
    assert not check(h, REG).ok


def test_pending_output_is_ignored() -> None:
    h = [op(1, 0, None, Read(), 42), op(2, 1, 2, Write(3)), op(2, 3, 4, Read(), 3)]
    assert check(h, REG).ok


def test_cas() -> None:
    h = [
        op(1, 0, 1, Write(1)),
        op(1, 2, 3, Cas(1, 2), True),
        op(2, 4, 5, Cas(1, 3), False),
        op(2, 6, 7, Read(), 2),
    ]
    assert check(h, REG).ok
    bad = h[:2] + [op(2, 4, 5, Cas(1, 3), True)]
    assert not check(bad, REG).ok
    pending = [op(1, 0, 1, Write(1)), op(2, 2, None, Cas(1, 5)), op(3, 3, 4, Read(), 5)]
    assert check(pending, REG).ok
    pending_failed = [op(1, 0, 1, Write(2)), op(2, 2, None, Cas(1, 5)), op(3, 3, 4, Read(), 5)]
    assert not check(pending_failed, REG).ok


def test_counter() -> None:
    m = CounterModel()
    h = [
        op(1, 0, 10, Add(1), 1),
        op(2, 1, 11, Add(2), 3),
        op(3, 12, 13, Read(), 3),
    ]
    assert check(h, m).ok
    # Both adds claim to have been first.
    assert not check([op(1, 0, 10, Add(1), 1), op(2, 1, 11, Add(2), 2)], m).ok
    # A pending add explains a read; its absence explains the other.
    h = [op(1, 0, None, Add(5)), op(2, 1, 2, Read(), 0), op(2, 3, 4, Read(), 5)]
    assert check(h, m).ok
    assert not check(h + [op(2, 5, 6, Read(), 0)], m).ok
    assert "counter = 5" in check(h + [op(2, 5, 6, Read(), 0)], m).explanation


def test_kv_partitions_by_key() -> None:
    m = KvModel()
    h = [
        op(1, 0, 1, Put("a", 1)),
        op(2, 0, 1, Put("b", 2)),
        op(1, 2, 3, Get("a"), 1),
        op(2, 2, 3, Get("b"), 2),
        op(1, 4, 5, Delete("a"), 1),
        op(1, 6, 7, Get("a"), None),
        op(2, 6, 7, Delete("c"), 0),
    ]
    res = check(h, m)
    assert res.ok
    assert [p.label for p in res.parts] == ["key 'a'", "key 'b'", "key 'c'"]
    bad = h + [op(3, 8, 9, Get("b"), 1)]
    res = check(bad, m)
    assert res.outcome is CheckOutcome.ILLEGAL
    assert "key 'b'" in res.explanation
    assert not check([op(1, 0, 1, Delete("x"), 1)], m).ok


def test_kv_unpartitioned_state_is_a_map() -> None:
    m = KvModel()
    s = m.init()
    (s,) = m.step(s, Put("b", 1), None)
    (s,) = m.step(s, Put("a", 2), None)
    assert s == (("a", 2), ("b", 1))
    assert m.describe_state(s) == "{'a': 2, 'b': 1}"
    assert m.step(s, Get("a"), 2) == (s,)
    assert m.step(s, Get("a"), 1) == ()


def test_operation_returning_before_call_is_refused() -> None:
    with pytest.raises(ValueError):
        check([op(1, 5, 4, Write(1))], REG)


def test_unknown_model_input_is_refused() -> None:
    with pytest.raises(TypeError):
        check([op(1, 0, 1, Add(1))], REG)


def _hard_history(n: int) -> list[Operation]:
    # Many concurrent pending writes then an impossible read: the search must
    # visit every subset of them before it can say no.
    h = [op(i, 0, None, Write(i)) for i in range(n)]
    return h + [op(n, 1, 2, Read(), -1)]


def test_max_steps_gives_up_with_unknown() -> None:
    res = check(_hard_history(16), REG, max_steps=2000)
    assert res.outcome is CheckOutcome.UNKNOWN
    assert res.unknown and not res.ok
    assert res.steps <= 2000 + 512
    assert "gave up" in res.explanation


class _TickingClock(FakeClock):
    """A fake clock that moves one second each time it is read."""

    def now(self) -> float:
        t = super().now()
        self.advance(1.0)
        return t


def test_timeout_gives_up_with_unknown() -> None:
    res = check(_hard_history(16), REG, timeout=5.0, clock=_TickingClock())
    assert res.outcome is CheckOutcome.UNKNOWN


def test_small_hard_history_finishes() -> None:
    res = check(_hard_history(8), REG)
    assert res.outcome is CheckOutcome.ILLEGAL


def test_many_pending_writes_observed_in_order_finish_fast() -> None:
    n = 40
    h = [op(i, 0, None, Write(i)) for i in range(n)]
    h += [op(100, 1 + 2 * i, 2 + 2 * i, Read(), i) for i in range(n)]
    res = check(h, REG, max_steps=200_000)
    assert res.ok


# ---------------------------------------------------------------------------
# Generated histories.


def _brute_force(history: Sequence[Operation], model: Model) -> bool:
    """Try every order and every subset of pending operations (tiny histories only)."""
    done = [o for o in history if o.ret is not None]
    pending = [o for o in history if o.ret is None]
    for k in range(len(pending) + 1):
        for chosen in itertools.combinations(pending, k):
            ops = done + list(chosen)
            for order in itertools.permutations(ops):
                if _respects_real_time(order) and _legal(order, model):
                    return True
    return False


def _respects_real_time(order: Sequence[Operation]) -> bool:
    for i, a in enumerate(order):
        for b in order[i + 1:]:
            if b.ret is not None and b.ret < a.call:
                return False
    return True


def _legal(order: Sequence[Operation], model: Model) -> bool:
    states: list[Hashable] = [model.init()]
    for o in order:
        out = UNKNOWN if o.ret is None else o.output
        states = [t for s in states for t in model.step(s, o.input, out)]
        if not states:
            return False
    return True


@st.composite
def sequential_histories(draw: st.DrawFn, counter: bool) -> list[Operation]:
    """A sequential run whose operations get random windows around their true points."""
    n = draw(st.integers(min_value=1, max_value=30))
    rng = random.Random(draw(st.integers(min_value=0, max_value=2**32)))
    value: int | None = 0 if counter else None
    total = 0
    history = []
    for i in range(n):
        point = 10 * (i + 1)
        call = point - rng.randint(0, 40)
        ret: int | None = point + rng.randint(0, 40)
        kind = rng.random()
        if counter:
            if kind < 0.5:
                delta = rng.randint(1, 5)
                total += delta
                value = total
                inp: object = Add(delta)
                out: object = value
            else:
                inp, out = Read(), value
        elif kind < 0.5:
            value = i
            inp, out = Write(i), None
        else:
            inp, out = Read(), value
        if rng.random() < 0.15 and not isinstance(inp, Read):
            ret = None
        history.append(Operation(rng.randint(0, 4), call, ret, inp, out))
    # Writes that never took effect and were never answered.
    for j in range(rng.randint(0, 3)):
        inp = Add(100 + j) if counter else Write(1000 + j)
        history.append(Operation(9, rng.randint(0, 10 * n), None, inp, None))
    rng.shuffle(history)
    return history


@settings(max_examples=200, deadline=None)
@given(h=sequential_histories(counter=False))
def test_generated_register_histories_are_accepted(h: list[Operation]) -> None:
    res = check(h, REG)
    assert res.ok, res.explanation


@settings(max_examples=200, deadline=None)
@given(h=sequential_histories(counter=True))
def test_generated_counter_histories_are_accepted(h: list[Operation]) -> None:
    res = check(h, CounterModel())
    assert res.ok, res.explanation


@settings(max_examples=200, deadline=None)
@given(h=sequential_histories(counter=False), pick=st.integers(min_value=0))
def test_read_of_unwritten_value_is_rejected(h: list[Operation], pick: int) -> None:
    reads = [i for i, o in enumerate(h) if isinstance(o.input, Read) and o.ret is not None]
    if not reads:
        h = h + [Operation(7, 0, 10_000, Read(), None)]
        reads = [len(h) - 1]
    i = reads[pick % len(reads)]
    h = list(h)
    h[i] = Operation(h[i].client, h[i].call, h[i].ret, Read(), "never written")
    res = check(h, REG)
    assert res.outcome is CheckOutcome.ILLEGAL
    assert h[i] not in res.parts[0].longest_prefix
    assert res.explanation


@st.composite
def small_histories(draw: st.DrawFn) -> list[Operation]:
    """Arbitrary (mostly non-linearizable) tiny register histories."""
    n = draw(st.integers(min_value=1, max_value=5))
    ops = []
    for i in range(n):
        call = draw(st.integers(min_value=0, max_value=8))
        length = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=6)))
        ret = None if length is None else call + length
        kind = draw(st.sampled_from(["w", "r", "cas"]))
        if kind == "w":
            inp: object = Write(draw(st.integers(min_value=1, max_value=3)))
            out: object = None
        elif kind == "r":
            inp, out = Read(), draw(st.sampled_from([None, 1, 2, 3]))
        else:
            expected = draw(st.sampled_from([None, 1, 2]))
            inp = Cas(expected, draw(st.integers(min_value=1, max_value=3)))
            out = draw(st.booleans())
        ops.append(Operation(i, call, ret, inp, out))
    return ops


@settings(max_examples=400, deadline=None)
@given(h=small_histories())
def test_agrees_with_brute_force(h: list[Operation]) -> None:
    assert check(h, REG).ok == _brute_force(h, REG)


@settings(max_examples=200, deadline=None)
@given(h=small_histories())
def test_unknown_never_hides_illegal_with_enough_budget(h: list[Operation]) -> None:
    res = check(h, REG, max_steps=10_000_000)
    assert res.outcome in (CheckOutcome.OK, CheckOutcome.ILLEGAL)
    if res.outcome is CheckOutcome.ILLEGAL:
        assert res.parts[0].unplaced


def test_pending_writes_observed_out_of_call_order_finish() -> None:
    n = 10
    h = [op(i, 0, None, Write(i)) for i in range(n)]
    h += [op(100, 1 + 2 * j, 2 + 2 * j, Read(), n - 1 - j) for j in range(n)]
    assert check(h, REG, max_steps=1_000_000).ok


def test_without_unobserved_writes() -> None:
    h = [
        op(1, 0, None, Write(1)),
        op(2, 0, None, Write(2)),
        op(3, 0, 1, Write(3)),
        op(4, 2, 3, Read(), 1),
        op(5, 2, None, Read(), 2),
    ]
    assert without_unobserved_writes(h) == [h[0], h[2], h[3], h[4]]
    many = [op(i, 0, None, Write(i)) for i in range(200)] + [op(999, 1, 2, Read(), -1)]
    slim = without_unobserved_writes(many)
    assert len(slim) == 1
    assert check(slim, REG).outcome is CheckOutcome.ILLEGAL


def test_an_illegal_part_is_reported_even_after_another_ran_out_of_budget() -> None:
    hard = [op(i, 0, None, Put("a", i)) for i in range(16)] + [op(99, 1, 2, Get("a"), -1)]
    bad = [op(1, 0, 1, Put("b", 1)), op(2, 2, 3, Get("b"), 2)]
    res = check(hard + bad, KvModel(), max_steps=3000)
    assert [p.outcome for p in res.parts] == [CheckOutcome.UNKNOWN, CheckOutcome.ILLEGAL]
    assert res.outcome is CheckOutcome.ILLEGAL
    assert "key 'b'" in res.explanation
