"""What a rule is, what it reports, and the settings rules read.

A rule is a small object with a stable ``code`` (never reused), a kebab-case ``name``, a default
``severity`` and a ``check(ctx)`` that yields findings.  Its documentation lives in
``rules/<CODE>.md`` (see docs.py), not in the code, so the CLI, SARIF and README share one text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

from rflint.errors import RflintError
from rflint.trace import Source
from rflint.trace.sources import callers_as_dicts

if TYPE_CHECKING:
    from rflint.rules.context import LintContext

from rflint.severity import SEVERITIES, SEVERITY_RANK  # noqa: F401  (re-exported for the rules)


@dataclass
class Settings:
    """Rule options, from [tool.rflint] (min-tail-layers, dominance-ratio) or the API."""

    min_tail_layers: int = 1
    dominance_ratio: float = 4.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """The limits [tool.rflint] and the CLI enforce, for settings made in Python too (lint()
        checks again: the fields may be set after construction).  "not >= 1" also refuses nan."""
        tail = self.min_tail_layers
        if isinstance(tail, bool) or not isinstance(tail, int) or tail < 1:
            raise RflintError(f"Settings: min_tail_layers must be a whole number >= 1, got {tail!r}")
        ratio = self.dominance_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not ratio >= 1:
            raise RflintError(f"Settings: dominance_ratio must be a number >= 1, got {ratio!r}")


@dataclass
class Finding:
    code: str
    severity: str
    layer: str | None  # the layer (or merge) the finding is about
    message: str
    source: Source | None
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "layer": self.layer,
            "message": self.message,
            "source": self.source.as_dict() if self.source else None,
            # the user-code lines whose calls built it, innermost first (trace/sources.py, Source.callers)
            "called_from": callers_as_dicts(self.source.callers) if self.source else [],
            "data": self.data,
        }


class Rule:
    code: str = ""
    name: str = ""
    severity: str = "warning"

    def check(self, ctx: LintContext) -> Iterator[Finding]:
        raise NotImplementedError

    def finding(self, layer: str | None, message: str, source: Source | None, **data: Any) -> Finding:
        return Finding(self.code, self.severity, layer, message, source, data)
