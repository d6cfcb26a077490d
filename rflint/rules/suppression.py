"""Inline suppression: ``# rflint: ignore[RF001,RF004]`` or a bare ``# rflint: ignore``.

The comment goes on the line that constructs the layer (where findings point), or on the
factory / class line (including its decorators) to silence a code for the whole model.
"""

from __future__ import annotations

import linecache
import re

from rflint.rules.base import Finding
from rflint.trace import Source

_PATTERN = re.compile(r"#\s*rflint:\s*ignore(?:\[([A-Za-z0-9_,\s]+)\])?")


def _codes_on(file: str, line: int) -> set[str] | None:
    """None: no directive; empty set: bare ignore (everything); else the listed codes."""
    text = linecache.getline(file, line)
    match = _PATTERN.search(text)
    if not match:
        return None
    if match.group(1) is None:
        return set()
    return {c.strip().upper() for c in match.group(1).split(",") if c.strip()}


def _matches(codes: set[str] | None, code: str) -> bool:
    return codes is not None and (not codes or any(code.startswith(c) for c in codes))


def model_level_codes(factory: Source | None) -> set[str] | None:
    """Directives on the factory/class header lines (decorators through the def/class line)."""
    if factory is None:
        return None
    found: set[str] | None = None
    for line in range(factory.line, factory.line + 20):
        text = linecache.getline(factory.file, line)
        codes = _codes_on(factory.file, line)
        if codes is not None and not codes:
            return set()  # a bare ignore silences everything
        if codes:
            found = (found or set()) | codes
        if text.lstrip().startswith(("def ", "class ", "async def ")) or not text:
            break
    return found


def is_suppressed(finding: Finding, model_codes: set[str] | None) -> bool:
    if _matches(model_codes, finding.code):
        return True
    src = finding.source
    return src is not None and _matches(_codes_on(src.file, src.line), finding.code)
