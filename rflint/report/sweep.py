"""`rflint sweep`: one model over many input sizes (traced once, shapes re-propagated per size)."""

from __future__ import annotations

from dataclasses import dataclass

from rflint.engine import Prepared
from rflint.report.model import ModelReport, build_report


@dataclass
class SweepRow:
    size: tuple[int, ...]
    report: ModelReport

    def as_dict(self) -> dict:
        r = self.report
        s, a = r.structure, r.analysis
        tail = s.tail
        convs = [layer.name for layer in a.layers if layer.parametric]
        return {
            "input": list(self.size),
            "border": s.border.name if s.border else None,
            "border_index": convs.index(s.border.name) + 1 if s.border else None,
            "cut": tail.cut_name if tail else None,
            "tail_layers": len(tail.parametric_layers) if tail else 0,
            "tail_params": tail.params if tail else 0,
            "tail_params_pct": round(100 * tail.params / a.params, 1) if tail and a.params else 0.0,
            "counts": {code: sum(1 for f in r.findings if f.code == code) for code in sorted({f.code for f in r.findings})},
        }


def geometric_sizes(start: int, stop: int, steps: int) -> list[int]:
    """``steps`` sizes from start to stop, evenly spaced on a log scale, rounded, deduplicated."""
    if steps <= 1 or start == stop:
        return [start]
    ratio = (stop / start) ** (1 / (steps - 1))
    return sorted({round(start * ratio**i) for i in range(steps)})


def sweep(prepared: Prepared, sizes: list, settings=None, rules=None) -> list[SweepRow]:
    rows = []
    for size in sizes:
        analysis = prepared.at(size)
        rows.append(SweepRow(analysis.input_size, build_report(analysis, settings, rules)))
    return rows


def clean_range(rows: list[SweepRow]) -> tuple[tuple[int, ...] | None, tuple[int, ...] | None]:
    """The smallest and the largest swept size without a predicted tail (RF002)."""
    clean = [row.size for row in rows if not any(f.code == "RF002" for f in row.report.findings)]
    return (clean[0], clean[-1]) if clean else (None, None)
