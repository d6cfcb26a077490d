"""Words for every layer of the package (trace, engine, rules, reports, CLI), without torch:
counts ("1 input channel", "3 input channels"), layer names and file paths as sentences say them."""

from __future__ import annotations

import os


def count(n, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun, singular for exactly one: "1 parametric layer", "2 parametric layers"."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def named(name: str) -> str:
    """A layer or tensor name in a sentence: "layer 3" for a child of an nn.Sequential model, whose
    name is its index ("after 3 no path ..." read as a count; "1.0" in nested ones, read as a
    number), else the name as it is."""
    if not name[:1].isdigit():  # (nearly every name: a sentence per finding asks)
        return name
    path = name.partition("@")[0]
    return f"layer {name}" if all(part.isascii() and part.isdigit() for part in path.split(".")) else name


def shown_path(path: str) -> str:
    """A file as rflint's messages show it: relative to the working directory unless that climbs
    two levels up (then as it is); "<stdin>"-like names as they are."""
    if path.startswith("<"):
        return path
    relative = os.path.relpath(path)
    return path if relative.startswith(os.pardir + os.sep + os.pardir) else relative
