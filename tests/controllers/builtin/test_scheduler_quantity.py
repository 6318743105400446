"""Kubernetes quantities: exact values, rounding up, and what is refused."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controllers.builtin.scheduler.quantity import milli_value, parse_quantity, value
from controllers.builtin.scheduler.resources import amount


@pytest.mark.parametrize("text, expected", [
    ("100m", Fraction(1, 10)),
    ("0.5", Fraction(1, 2)),
    ("1", Fraction(1)),
    ("2", Fraction(2)),
    (".5", Fraction(1, 2)),
    ("1.", Fraction(1)),
    ("+3", Fraction(3)),
    ("-2k", Fraction(-2000)),
    ("128Mi", Fraction(128 * 1024 ** 2)),
    ("1Ki", Fraction(1024)),
    ("1Gi", Fraction(1024 ** 3)),
    ("2Ti", Fraction(2 * 1024 ** 4)),
    ("1Pi", Fraction(1024 ** 5)),
    ("1Ei", Fraction(1024 ** 6)),
    ("1G", Fraction(10 ** 9)),
    ("1M", Fraction(10 ** 6)),
    ("1k", Fraction(1000)),
    ("1T", Fraction(10 ** 12)),
    ("1P", Fraction(10 ** 15)),
    ("1E", Fraction(10 ** 18)),
    ("1e3", Fraction(1000)),
    ("1E3", Fraction(1000)),
    ("1.5e-3", Fraction(3, 2000)),
    ("5n", Fraction(5, 10 ** 9)),
    ("7u", Fraction(7, 10 ** 6)),
    (" 250m ", Fraction(1, 4)),
    (3, Fraction(3)),
    (0.1, Fraction(1, 10)),
    (2.5, Fraction(5, 2)),
])
def test_parse_gives_the_exact_value(text: str | float, expected: Fraction) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize("text", ["", "m", "1mi", "1KiB", "1e", "1.2.3", "abc", "1 Gi", "--1",
                                  "1K", "0x10", "1e-", True, None, float("nan"), float("inf"),
                                  [1], "1e1000"])
def test_bad_quantities_are_refused(text: object) -> None:
    with pytest.raises(ValueError):
        parse_quantity(text)  # type: ignore[arg-type]


@pytest.mark.parametrize("text, millis, units", [
    ("100m", 100, 1),
    ("1.5m", 2, 1),  # rounded up, never down
    ("0.5", 500, 1),
    ("2", 2000, 2),
    ("1Mi", 1024 ** 2 * 1000, 1024 ** 2),
    ("-1.5", -1500, -1),
])
def test_milli_value_and_value_round_up(text: str, millis: int, units: int) -> None:
    assert milli_value(text) == millis
    assert value(text) == units


def test_cpu_amounts_are_millicores_and_the_rest_whole_units() -> None:
    assert amount("cpu", "250m") == 250
    assert amount("cpu", 2) == 2000
    assert amount("memory", "1Gi") == 1024 ** 3
    assert amount("memory", "1.5") == 2
    assert amount("nvidia.com/gpu", "1") == 1


@given(st.integers(min_value=0, max_value=10 ** 6),
       st.sampled_from(["", "k", "M", "G", "Ki", "Mi", "Gi", "m"]))
def test_integers_with_suffixes_scale_exactly(n: int, suffix: str) -> None:
    scale: Fraction = {"": Fraction(1), "k": Fraction(10 ** 3), "M": Fraction(10 ** 6),
                       "G": Fraction(10 ** 9), "Ki": Fraction(1024), "Mi": Fraction(1024 ** 2),
                       "Gi": Fraction(1024 ** 3), "m": Fraction(1, 1000)}[suffix]
    assert parse_quantity(f"{n}{suffix}") == n * scale
