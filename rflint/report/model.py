"""One model's results, and the JSON document (schema version 1) every other format derives from."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from rflint.engine import Analysis
from rflint.engine.numbers import nums
from rflint.rules import LintResult, Settings, lint
from rflint.rules.base import SEVERITY_RANK, Finding
from rflint.rules.structure import Structure
from rflint.report.clean_size import smallest_clean_input
from rflint.rules.truncation import TruncationPlan, plan_truncation

SCHEMA_VERSION = 1


@dataclass
class ModelReport:
    analysis: Analysis
    result: LintResult
    notes: list[str] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        return self.result.findings

    @property
    def structure(self) -> Structure:
        return self.result.context.structure

    @cached_property
    def truncation(self) -> TruncationPlan | None:
        tail = self.structure.tail
        return plan_truncation(self.analysis, tail) if tail else None

    @cached_property
    def stem(self):
        return self.result.context.stem if self.structure.tail else None

    @cached_property
    def min_clean_input(self) -> tuple[int, ...] | None:
        return smallest_clean_input(self.analysis)

    @property
    def tail_reported(self) -> bool:
        """RF002 (the predicted tail) is among the findings: not ignored, deselected or suppressed.
        The suggested fix goes with it; a user who silenced the tail does not want the fix either."""
        return any(f.code == "RF002" for f in self.findings)

    def worst(self) -> int:
        return max((SEVERITY_RANK[f.severity] for f in self.findings), default=0)

    def document(self) -> dict[str, Any]:
        a, s = self.analysis, self.structure
        tail = s.tail
        return {
            "target": a.target,
            "kwargs": plain_kwargs(a.prepared.factory_kwargs if a.prepared is not None else {}),
            "input": list(a.input_size),
            "channels": a.channels,
            "trace": a.trace_method,
            "params": a.params,
            "macs": a.macs,
            "layers": [self._layer(layer, s.status) for layer in a.layers],
            "tail": None if tail is None else {
                "cut": tail.cut_name,
                "layers": [layer.name for layer in tail.layers],
                "params": tail.params,
                "macs": tail.macs,
            },
            "border": s.border.name if s.border else None,
            "border_max": s.border_max.name if s.border_max else None,
            "truncation": self.truncation.as_dict() if self.truncation else None,
            "findings": [f.as_dict() for f in self.findings],
            "suppressed": self.result.suppressed,
            "resolution": {
                "final_layer": a.final_layer,
                "final_r_min": nums(a.final_r_min),
                "final_r_max": nums(a.final_r_max),
                "min_input_without_unproductive": list(self.min_clean_input) if self.min_clean_input else None,
            },
            "warnings": list(a.warnings) + self.notes,
        }

    @staticmethod
    def _layer(layer, status: dict[str, str]) -> dict[str, Any]:
        return {
            "name": layer.name,
            "op": layer.op,
            "kernel": list(layer.kernel),
            "stride": nums(layer.stride),
            "dilation": list(layer.dilation),
            "in_shape": list(layer.in_shape),
            "out_shape": list(layer.out_shape),
            "r_in_min": nums(layer.r_in_min),
            "r_in_max": nums(layer.r_in_max),
            "r_out_min": nums(layer.r_out_min),
            "r_out_max": nums(layer.r_out_max),
            "params": layer.params,
            "macs": layer.macs,
            "status": status[layer.name],
            "source": layer.source.as_dict() if layer.source else None,
        }


def build_report(analysis: Analysis, settings: Settings | None = None, rules=None,
                 extra_ignore: list[str] | None = None) -> ModelReport:
    result = lint(analysis, settings, rules, extra_ignore)
    return ModelReport(analysis, result, list(result.notes))


def plain_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The factory's keyword arguments as JSON values (a value JSON has no form for, as its repr)."""
    import json

    out = {}
    for key, value in kwargs.items():
        try:
            json.dumps(value)
            out[str(key)] = value
        except (TypeError, ValueError):
            out[str(key)] = repr(value)
    return out
