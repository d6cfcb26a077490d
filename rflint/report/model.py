"""One model's results, and the JSON document (schema version 1) every other format derives from."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from rflint.engine import Analysis
from rflint.engine.prepare import first_success
from rflint.engine.program import needs_of
from rflint.engine.numbers import nums
from rflint.rules import LintResult, Settings, lint
from rflint.rules.base import SEVERITY_RANK, Finding
from rflint.rules.structure import Structure
from rflint.rules.truncation import TruncationPlan, plan_truncation
from rflint.trace.size_bound import input_size_bound

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

    def worst(self) -> int:
        return max((SEVERITY_RANK[f.severity] for f in self.findings), default=0)

    def document(self) -> dict[str, Any]:
        a, s = self.analysis, self.structure
        tail = s.tail
        return {
            "target": a.target,
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
            "warnings": list(a.warnings),
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
    return ModelReport(analysis, lint(analysis, settings, rules, extra_ignore))


def smallest_clean_input(a: Analysis, max_rounds: int = 8, max_steps: int = 8) -> tuple[int, ...] | None:
    """The smallest input at which no RF layer is unproductive and the model runs.

    Per axis the largest input r_min of any layer is the candidate; it is re-checked at that size
    (shapes, and so adaptive pools, change with the size) until it is stable.  A candidate the model
    cannot run at is raised: first to the size below which some map certainly vanishes
    (trace/size_bound.py: nothing smaller can run, so it is not probed), then one pixel per axis at a
    time, up to ``max_steps`` (a U-Net needs a multiple of 2^depth), then by doubling and bisecting
    the offset (a model whose feature map vanishes below some size the bound does not see).  None
    when that does not settle.  The re-checks run the RF program alone (``Prepared.needs_at``), not
    a whole analysis, reusing this analysis's RFs wherever the size cannot change them."""
    if a.prepared is None:
        return None
    size, need = a.input_size, needs_of(a)
    bound: tuple[int, ...] | None = None
    bound_known = False  # the bound is worked out only when a candidate first fails to run
    for _ in range(max_rounds):
        candidate = need
        if candidate == size:
            return candidate
        found = _at(a, candidate)
        if found is None:
            if not bound_known:
                bound, bound_known = _runnable_bound(a), True
            skip = max([0] + [b - c for b, c in zip(bound, candidate)]) if bound else 0
            found = (_first_running(a, candidate, range(max(skip, 1), skip + max_steps))
                     or _smallest_running(a, candidate, skip + max_steps - 1))
        if found is None:
            return None
        size, need = found
        if size != candidate and all(n <= s for n, s in zip(need, size)):
            return size  # raised to a size that runs, and nothing is unproductive there
    return None


def _runnable_bound(a: Analysis) -> tuple[int, ...] | None:
    """Per input axis, a size below which the model certainly does not run (size_bound.py)."""
    if a.traced is None or not a.inputs:
        return None
    return input_size_bound(a.traced.order, a.traced.modules, a.shapes, a.inputs[0])


Trial = tuple[tuple[int, ...], tuple[int, ...]]  # (size, what it needs), for a size that runs


def _at(a: Analysis, size: tuple[int, ...]) -> Trial | None:
    need = a.prepared.needs_at(size, base=a)
    return None if need is None else (size, need)


def _first_running(a: Analysis, candidate: tuple[int, ...], offsets) -> Trial | None:
    for d in offsets:
        found = _at(a, tuple(c + d for c in candidate))
        if found is not None:
            return found
    return None


def _smallest_running(a: Analysis, candidate: tuple[int, ...], failing: int, limit: int = 1 << 14) -> Trial | None:
    """candidate + d for the smallest offset d > ``failing`` (an offset that does not run) that runs."""
    found = first_success(lambda d: _at(a, tuple(c + d for c in candidate)), failing, limit=limit)
    return found[1] if found else None
