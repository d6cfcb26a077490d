"""Numbers and places as people read them, shared by the text, HTML and Markdown reports."""

from __future__ import annotations

import os


def human(n: int | float) -> str:
    """11689512 -> '11.7M'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return str(int(n))


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def where(source) -> str:
    """'path/to/model.py:12', relative to the working directory unless that climbs two levels up."""
    if source is None:
        return ""
    path = source.file
    if not path.startswith("<"):
        rel = os.path.relpath(path)
        if not rel.startswith(".." + os.sep + ".."):
            path = rel
    return f"{path}:{source.line}"


# when the clean-size search finds no size (JSON: null): say so rather than leave a dash that
# reads like "not applicable"; the usual reason is a model that runs at one size only (a fixed head)
NO_CLEAN_SIZE = "none found (no size the model runs at is free of unproductive layers)"
