"""Exact numbers out: Fractions become ints when whole, floats otherwise (JSON has no rationals)."""

from __future__ import annotations

from fractions import Fraction
from typing import Iterable


def num(value) -> int | float | None:
    if value is None or type(value) is int:  # the common case: RF sizes are ints until upsampling
        return value
    value = Fraction(value)
    return value.numerator if value.denominator == 1 else float(value)


def nums(values: Iterable | None) -> list | None:
    if values is None:
        return None
    values = list(values)
    for v in values:
        if v is not None and type(v) is not int:  # a Fraction or float somewhere: convert each
            return [num(v) for v in values]
    return values
