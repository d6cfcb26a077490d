"""Parsing the values of --input, --input-shape and --kwarg.  No torch here: --help, and a typo's
error, must stay instant."""

from __future__ import annotations

import ast
import re
from typing import Any

from rflint.errors import RflintError
from rflint.wording import count

_DIGITS = re.compile(r"[0-9]+")  # plain decimal digits: no sign, no underscores, no other scripts' digits


def parse_size(text: str) -> int | tuple[int, ...]:
    """'32' -> 32 (every spatial axis); '32x48' -> (32, 48); '8x16x16' -> (8, 16, 16)."""
    raw = str(text).strip().lower()
    parts = [p.strip() for p in raw.replace("×", "x").split("x")]
    if any(p.startswith("-") and _DIGITS.fullmatch(p[1:]) for p in parts):
        raise RflintError(f"input size must be positive, got {text!r}")
    if not all(_DIGITS.fullmatch(p) for p in parts):  # not int(): it reads "32_0" as 320 and takes "+32"
        raise RflintError(f"input size must be a number like 32 or 32x48, got {text!r}")
    values = [int(p) for p in parts]
    if any(v <= 0 for v in values):
        raise RflintError(f"input size must be positive, got {text!r}")
    if any(v > 1_000_000 for v in values):
        raise RflintError(f"input size {text!r} is implausibly large")
    return values[0] if len(values) == 1 else tuple(values)


def parse_shape(text: str, what: str = "--input-shape") -> tuple[int, ...]:
    """'1,3,32,32' -> (1, 3, 32, 32): a full input shape, batch first (one per forward() argument).
    Commas only, every part an integer: '1,3,x,32' or '1x3x32x32' is a typo to report, not a shape
    to guess (dropping the odd part would silently analyse another rank).  ``what``: the option or
    config key the text comes from, named in the error."""
    parts = [p.strip() for p in str(text).split(",")]
    if not all(_DIGITS.fullmatch(p) for p in parts):
        raise RflintError(f"{what} must be comma-separated integers like 1,3,32,32, got {text!r}")
    values = [int(p) for p in parts]
    if not values or any(v <= 0 for v in values) or len(values) > 5:
        raise RflintError(f"{what} needs 1-5 positive sizes (N, C, *spatial for an image), got {text!r}")
    return tuple(values)


def parse_shapes(texts: list[str], channels: int | None) -> tuple[list[tuple[int, ...]] | None, int | None]:
    """--input-shape values (one per forward() argument, None for none) and the channels: the
    first shape's C, which a --channels given too must agree with."""
    shapes = [parse_shape(text) for text in texts] or None
    if shapes and len(shapes[0]) > 1:
        if channels is not None and shapes[0][1] != channels:
            raise RflintError(f"--input-shape says {count(shapes[0][1], 'channel')} but --channels is {channels}")
        channels = shapes[0][1]
    return shapes, channels


def parse_kwargs(pairs: list[str] | None) -> dict[str, Any]:
    """``["depth=3", "name='x'", "mode=fast"]`` -> dict; values are Python literals, else strings."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise RflintError(f"--kwarg expects key=value with a Python identifier as key, got {pair!r}")
        if key in out:
            raise RflintError(f"--kwarg {key} is given twice ({key}={out[key]!r} and {pair})")
        try:
            out[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError) as err:
            if raw.strip()[:1] in _LITERAL_STARTS:  # meant as a literal: a typo must not become a string
                why = err.msg if isinstance(err, SyntaxError) else str(err)
                raise RflintError(f"--kwarg {pair}: not a Python literal ({why})") from None
            if raw.strip().lower() in _NOT_WORDS:  # "false" as a string is true: a silent opposite
                literal = _NOT_WORDS[raw.strip().lower()]
                raise RflintError(f"--kwarg {pair}: write {key}={literal} for Python's {literal}, or "
                                  f"{key}='{raw.strip()}' for the string")
            out[key] = raw  # a bare word is a string: --kwarg mode=bilinear
    return out


_LITERAL_STARTS = set("[({'\"")  # a bracket or a quote: meant as a literal; a bare word may start with anything else
_NOT_WORDS = {"true": "True", "false": "False", "none": "None", "null": "None"}  # other languages' spellings


TARGET_FORMS = "'path/to/file.py:name', 'package.module:name' or 'zoo:name'"


def target_problem(target: str) -> str | None:
    """Why ``target`` is no TARGET (None: it may be one; whether it loads is another matter), from
    the string alone, so that a hook given file names fails at once, not after importing torch."""
    if target.startswith("zoo:"):
        return None if target[4:] else f"TARGET must be {TARGET_FORMS}, got {target!r}"
    where, sep, attr = target.rpartition(":")
    if sep and where and attr and ("/" in attr or "\\" in attr or attr.endswith(".py")):
        # a colon inside the path (a:b/net.py, C:\\models\\net.py) and no ":name" after it
        return (f"TARGET {target!r} names a file but not the model in it: write {target}:name "
                "(the factory, class or model instance to lint)")
    if not sep or not where or not attr:
        hint = f"; to lint a model in {target}, write {target}:name" if target.endswith(".py") else ""
        return f"TARGET must be {TARGET_FORMS}, got {target!r}{hint}"
    return None


def check_targets(targets: list[str]) -> None:
    """One error for the TARGETs that cannot be any: a list of bare file names is what a
    pre-commit hook with pass_filenames passes, said as such (not one line per file)."""
    bad = [(t, problem) for t in targets if (problem := target_problem(t)) is not None]
    if not bad:
        return
    if len(bad) > 1 and all(t.endswith(".py") and ":" not in t for t, _ in bad):
        raise RflintError(f"{len(bad)} arguments are file names, not TARGETs ({bad[0][0]}, {bad[1][0]}"
                          f"{', ...' if len(bad) > 2 else ''}): a TARGET names the model in a file, path/to/file.py:name. "
                          "As a pre-commit hook rflint takes no file names (pass_filenames: false): it lints the "
                          "models [[tool.rflint.models]] lists")
    raise RflintError(bad[0][1])
