"""`rflint sweep`: one model over many input sizes (traced once per process, shapes re-propagated per
size).  Rows are plain dicts so worker processes (--jobs) can compute them."""

from __future__ import annotations

from typing import Any

from rflint.errors import RflintError
from rflint.report.model import ModelReport, build_report


def row(report: ModelReport) -> dict[str, Any]:
    s, a = report.structure, report.analysis
    tail = s.tail
    parametric = [layer.name for layer in a.layers if layer.parametric]
    return {
        "input": list(a.input_size),
        "border": s.border.name if s.border else None,
        "border_index": parametric.index(s.border.name) + 1 if s.border else None,
        "cut": tail.cut_name if tail else None,
        "tail_layers": len(tail.parametric_layers) if tail else 0,
        "tail_params": tail.params if tail else 0,
        "tail_params_pct": round(100 * tail.params / a.params, 1) if tail and a.params else 0.0,
        # every finding, as the README says of sweep: what comments or a config's ignore silence is
        # check's business (the tail column did not go away with RF002's comment either)
        "counts": {code: sum(1 for f in report.result.all_findings if f.code == code)
                   for code in sorted({f.code for f in report.result.all_findings})},
    }


def geometric_sizes(start: int, stop: int, steps: int) -> list[int]:
    """``steps`` sizes from start to stop, evenly spaced on a log scale, rounded, deduplicated."""
    if steps <= 1 or start == stop:
        return [start]
    ratio = (stop / start) ** (1 / (steps - 1))
    return sorted({round(start * ratio**i) for i in range(steps)})


def sweep_rows(target: Any, sizes: list, channels=None, kwargs=None, settings=None, rules=None,
               input_shapes=None) -> list[dict]:
    """Trace once, then one row per size (in the order given).  A size the model cannot run at (too
    small, or not lined up with its downsampling) is a row ``{"input", "error"}`` saying why: a
    sweep is how one finds the sizes that work, so one that does not is a result, not the end.
    ``input_shapes``: one shape per forward() argument, for a model with several inputs; the first
    input's spatial size is swept, the other image inputs scaled with it (prepare.scaled_shapes)."""
    from rflint.engine import prepare
    from rflint.engine.prepare import scaled_shapes

    prepared = prepare(target, channels, kwargs, n_inputs=len(input_shapes) if input_shapes else 1)
    rows = []
    for size in sizes:  # (a model with lazy layers is prepared anew per size by at())
        spatial = prepared.input_size(size)  # a size of the wrong rank is an error of the whole sweep
        try:
            analysis = (prepared.at(shapes=list(scaled_shapes(input_shapes, spatial))) if input_shapes
                        else prepared.at(spatial))
        except RflintError as err:
            rows.append({"input": list(spatial), "error": str(err)})
            continue
        rows.append(row(build_report(analysis, settings, rules)))
    return rows


def clean_range(rows: list[dict]) -> tuple[list[int] | None, list[int] | None]:
    """The smallest and the largest swept size that runs without a predicted tail; rows sorted by
    size.  The tail as the table shows it (the structure's, with min-tail-layers), not RF002's
    findings: a config that does not select RF002, or a comment that silences it, does not make
    the tail go away."""
    clean = [r["input"] for r in rows if "error" not in r and r["cut"] is None]
    return (clean[0], clean[-1]) if clean else (None, None)
