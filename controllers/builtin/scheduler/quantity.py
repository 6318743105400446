"""Kubernetes resource quantities: ``"100m"``, ``"0.5"``, ``"128Mi"``, ``"1G"``, ``"1e3"``.

A quantity is a signed decimal number with an optional suffix:

- binary SI: ``Ki Mi Gi Ti Pi Ei`` (powers of 1024);
- decimal SI: ``n u m`` (10^-9, 10^-6, 10^-3), none, ``k M G T P E``;
- a decimal exponent: ``e3``, ``E-2``.

``parse_quantity`` gives the exact value as a ``Fraction``; ``milli_value``
and ``value`` give integers rounded up, as Kubernetes' ``MilliValue`` and
``Value`` do (so ``"1.5m"`` CPU asks for 2 millicores, never 1). Plain ints
and floats are taken as they are written (``0.1`` is one tenth).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

__all__ = ["Quantity", "milli_value", "parse_quantity", "value"]

Quantity = str | int | float
"""What a resource amount may be in an object: a quantity string or a plain number."""

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15,
            "E": 18}
_SYNTAX = re.compile(
    r"(?P<sign>[+-]?)(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+|[numkMGTPE]?)")


def parse_quantity(text: Quantity) -> Fraction:
    """The exact value of a quantity.

    Raises:
        ValueError: ``text`` is not a quantity (or is a bool, NaN or infinite).
    """
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a quantity")  # noqa: TRY004 - one error for bad input
    if isinstance(text, int):
        return Fraction(text)
    if isinstance(text, float):
        if not math.isfinite(text):
            raise ValueError(f"{text!r} is not a quantity")
        return Fraction(repr(text))
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a quantity")  # noqa: TRY004 - one error for bad input
    found = _SYNTAX.fullmatch(text.strip())
    if found is None:
        raise ValueError(f"quantities must match the regular expression "
                         f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {text!r}")
    number = Fraction(found["number"])
    if found["sign"] == "-":
        number = -number
    suffix = found["suffix"]
    if suffix in _BINARY:
        return number * Fraction(1 << (10 * _BINARY[suffix]))
    if suffix and suffix[0] in "eE" and len(suffix) > 1:
        return number * _power_of_ten(int(suffix[1:]))
    return number * _power_of_ten(_DECIMAL[suffix])


def _power_of_ten(exponent: int) -> Fraction:
    if abs(exponent) > 100:
        raise ValueError(f"quantity exponent {exponent} is out of range")
    return Fraction(10 ** exponent) if exponent >= 0 else Fraction(1, 10 ** -exponent)


def milli_value(text: Quantity) -> int:
    """The quantity in thousandths, rounded up (CPU in millicores)."""
    return math.ceil(parse_quantity(text) * 1000)


def value(text: Quantity) -> int:
    """The quantity as a whole number, rounded up (memory in bytes, counts)."""
    return math.ceil(parse_quantity(text))
