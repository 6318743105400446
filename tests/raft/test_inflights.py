"""Inflights: a bounded FIFO of unacknowledged appends."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvstore.errors import InvariantError
from kvstore.raft.inflights import Inflights


def test_full_by_count() -> None:
    inf = Inflights(3)
    for i in (1, 2, 3):
        assert not inf.full()
        inf.add(i, 10)
    assert inf.full()
    assert inf.count() == 3
    assert inf.bytes == 30
    with pytest.raises(InvariantError):
        inf.add(4, 10)


def test_free_le_releases_everything_acknowledged() -> None:
    inf = Inflights(10)
    for i in (2, 4, 6, 8):
        inf.add(i, i)
    inf.free_le(5)
    assert inf.count() == 2
    assert inf.bytes == 14
    inf.free_le(5)  # a repeated acknowledgement changes nothing
    assert inf.count() == 2
    inf.free_le(100)
    assert inf.count() == 0
    assert inf.bytes == 0


def test_full_by_bytes() -> None:
    inf = Inflights(100, max_bytes=25)
    inf.add(1, 10)
    inf.add(2, 10)
    assert not inf.full()
    inf.add(3, 10)
    assert inf.full()
    inf.free_le(1)
    assert not inf.full()


def test_zero_max_bytes_means_unlimited() -> None:
    inf = Inflights(2, max_bytes=0)
    inf.add(1, 1 << 40)
    assert not inf.full()


@pytest.mark.parametrize("second", [5, 4])
def test_indexes_must_increase(second: int) -> None:
    inf = Inflights(10)
    inf.add(5, 1)
    with pytest.raises(InvariantError):
        inf.add(second, 1)


def test_reset() -> None:
    inf = Inflights(2, max_bytes=15)
    inf.add(1, 10)
    inf.add(2, 10)
    assert inf.full()
    inf.reset()
    assert (inf.count(), inf.bytes, inf.full()) == (0, 0, False)
    inf.add(1, 1)  # indexes may start over after a reset


@given(
    st.integers(1, 6),
    st.integers(0, 50),
    st.lists(st.tuples(st.booleans(), st.integers(1, 20), st.integers(0, 30)), max_size=40),
)
def test_against_a_list_model(size: int, max_bytes: int, ops: list[tuple[bool, int, int]]) -> None:
    inf = Inflights(size, max_bytes)
    model: list[tuple[int, int]] = []
    last = 0
    for is_add, step, nbytes in ops:
        model_full = len(model) >= size or (
            max_bytes != 0 and sum(b for _, b in model) >= max_bytes
        )
        assert inf.full() == model_full
        if is_add:
            if model_full:
                with pytest.raises(InvariantError):
                    inf.add(last + step, nbytes)
                continue
            last += step
            inf.add(last, nbytes)
            model.append((last, nbytes))
        else:
            to = last - step
            inf.free_le(to)
            model = [(i, b) for i, b in model if i > to]
        assert inf.count() == len(model)
        assert inf.bytes == sum(b for _, b in model)
