"""Exact numbers out: Fractions become ints when whole, floats otherwise (JSON has no rationals)."""

from __future__ import annotations

from fractions import Fraction
from typing import Iterable


def num(value) -> int | float | None:
    if value is None:
        return None
    value = Fraction(value)
    return value.numerator if value.denominator == 1 else float(value)


def nums(values: Iterable | None) -> list | None:
    return None if values is None else [num(v) for v in values]
