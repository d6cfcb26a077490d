"""--html FILE: one self-contained HTML report for every model run.

The file references nothing outside itself: the CSS is inline, the plot and the graph are inline
SVG (their ``xmlns`` declarations, DTD and metadata are stripped: HTML5 needs none of them), and
there are no scripts, fonts, links or images to fetch.  Without matplotlib the plot is replaced by
a note; without Graphviz's ``dot`` the graph is given as DOT text in a ``<details>`` block.

Per model: summary, findings, the suggested fix (truncation and the stem alternative), the layer
table coloured by status, the plot and the graph.
"""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

from rflint._version import __version__
from rflint.engine.surgery import changed_phrase
from rflint.errors import RflintError
from rflint.report import graph as graph_mod
from rflint.report import plot as plot_mod
from rflint.report.humanize import NO_CLEAN_SIZE, change, final_rf, human, pct, removed_layers, try_it, where
from rflint.report.model import ModelReport
from rflint.rules.base import SEVERITY_RANK
from rflint.rules.structure import fmt_size, unit
from rflint.wording import count, named

STATUS_BG = dict(graph_mod.STATUS_FILL)
ROW_BG = {"productive": "#eef8e9", "partial": "#fff6d6", "unproductive": "#fde0dc", "head": "#f0f0f0"}
SEVERITY_BG = {"error": "#c62828", "warning": "#e0a100", "info": "#1976d2"}

CSS = """
:root { --fg: #1d1f21; --muted: #5f6368; --line: #d9dce0; --bg: #ffffff; --panel: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px 48px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto,
       "Helvetica Neue", Arial, sans-serif; color: var(--fg); background: var(--bg); }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 36px 0 10px; padding-bottom: 6px; border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; margin: 22px 0 8px; }
code, .mono, td.num, td.mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas,
       "DejaVu Sans Mono", monospace; font-size: 12.5px; }
.muted { color: var(--muted); }
nav ul { margin: 6px 0 0; padding-left: 20px; }
table { border-collapse: collapse; margin: 4px 0 8px; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: var(--panel); font-weight: 600; }
td.num { text-align: right; white-space: nowrap; }
table.summary th { width: 230px; }
table.findings td.msg { max-width: 760px; }
.badge { display: inline-block; min-width: 62px; padding: 1px 6px; border-radius: 3px; color: #fff;
         font-size: 12px; font-weight: 600; text-align: center; }
.status { display: inline-block; padding: 0 6px; border-radius: 3px; font-size: 12px; }
tr.border-row td { font-weight: 600; }
.fix { background: #fff5f5; border: 1px solid #f0b4b4; border-left: 4px solid #c62828; padding: 10px 14px;
       border-radius: 4px; max-width: 1000px; }
.fix p { margin: 4px 0; }
.ok { background: #f1f8ee; border: 1px solid #b7e1a1; border-left: 4px solid #4caf50; padding: 10px 14px;
      border-radius: 4px; max-width: 1000px; }
.note { background: #fffbe6; border: 1px solid #ffe28a; padding: 8px 12px; border-radius: 4px; max-width: 1000px; }
.legend span { margin-right: 10px; }
.plot svg { max-width: 100%; height: auto; }
.graph { overflow: auto; max-height: 1400px; border: 1px solid var(--line); padding: 6px; background: #fff; }
.graph svg { max-width: 100%; height: auto; }
pre { background: var(--panel); padding: 10px; overflow: auto; max-height: 500px; font-size: 12px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
"""


# --------------------------------------------------------------------------- helpers

def _e(value) -> str:
    return escape(str(value), quote=True)


def _rf_pair(lo, hi) -> str:
    a, b = graph_mod.compact(lo), graph_mod.compact(hi)
    return a if a == b else f"{a}-{b}"


_PROLOG = re.compile(r"\A.*?(?=<svg[\s>])", re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_METADATA = re.compile(r"<metadata\b.*?</metadata>", re.S)
_XMLNS = re.compile(r"\s+xmlns(?::[\w.-]+)?\s*=\s*(\"[^\"]*\"|'[^']*')")
_ID = re.compile(r"\bid=\"([^\"]+)\"")
_REF = re.compile(r"(url\(#|href=\"#)([^)\"]+)")


def inline_svg(svg: str, prefix: str) -> str:
    """An SVG document made fit to sit inside HTML: no XML prolog or DOCTYPE (which name the W3C DTD),
    no comments or metadata, no ``xmlns`` declarations (HTML5 puts <svg> in the SVG namespace by
    itself), and ids prefixed so that two pictures in one page cannot clash."""
    svg = _PROLOG.sub("", svg, count=1)
    svg = _COMMENT.sub("", svg)
    svg = _METADATA.sub("", svg)
    svg = _XMLNS.sub("", svg)
    svg = _ID.sub(lambda m: f'id="{prefix}{m.group(1)}"', svg)
    svg = _REF.sub(lambda m: f"{m.group(1)}{prefix}{m.group(2)}", svg)
    return svg.strip()


# --------------------------------------------------------------------------- sections

def _summary(report: ModelReport) -> str:
    a, s = report.analysis, report.structure
    rows = [
        ("target", _e(a.target)),
        ("input", f"{_e(fmt_size(a.input_size))} {unit(a.input_size)}, {a.channels} channel{'s' if a.channels != 1 else ''}"),
        ("params", f"{a.params:,} ({human(a.params)})"),
        ("MACs (per sample)", f"{a.macs:,} ({human(a.macs)})"),
    ]
    if a.final_r_min is not None:
        rows.append(("final RF",
                     f"{_e(final_rf(a))} <span class=\"muted\">(output of {_e(named(a.final_layer))})</span>"))
    else:
        rows.append(("final RF", "-"))
    clean = report.min_clean_input
    rows.append(("smallest input with no unproductive layer", f"{_e(fmt_size(clean))} {unit(a.input_size)}" if clean else _e(NO_CLEAN_SIZE)))
    rows.append(("border b_min / b_max",
                 f"{_e(s.border.name) if s.border else '-'} / {_e(s.border_max.name) if s.border_max else '-'}"))
    tail = s.tail
    if tail is not None:
        rows.append(("predicted tail",
                     f"{len(tail.layers)} RF layers ({len(tail.parametric_layers)} with weights) after "
                     f"{_e(tail.cut_label)}: {tail.params:,} params ({pct(tail.params, a.params)}), "
                     f"{tail.macs:,} MACs ({pct(tail.macs, a.macs)})"))
    else:
        rows.append(("predicted tail", "none"))
    rows.append(("trace", _e(a.trace_method)))
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    out = f'<table class="summary">{body}</table>'
    notes = [f"note: {w}" for w in a.warnings] + [f"note: {n}" for n in report.notes]
    if notes:
        out += "".join(f'<p class="note">{_e(n)}</p>' for n in notes)
    return out


def _findings(report: ModelReport) -> str:
    if not report.findings:
        hidden = report.result.suppressed
        return f'<p class="ok">No findings{f" ({hidden} suppressed)" if hidden else ""}.</p>'
    rows = []
    for f in sorted(report.findings, key=lambda f: -SEVERITY_RANK[f.severity]):
        colour = SEVERITY_BG.get(f.severity, "#555")
        rows.append(
            f'<tr class="finding {_e(f.severity)}"><td><span class="badge" style="background:{colour}">'
            f"{_e(f.severity)}</span></td><td class=\"mono\">{_e(f.code)}</td>"
            f"<td class=\"mono\">{_e(f.layer or '')}</td><td class=\"mono\">{_e(where(f.source))}</td>"
            f'<td class="msg">{_e(f.message)}</td></tr>'
        )
    head = "<tr><th>severity</th><th>code</th><th>layer</th><th>location</th><th>message</th></tr>"
    return f'<table class="findings">{head}{"".join(rows)}</table>'


def _fix(report: ModelReport) -> str:
    s = report.structure
    tail = s.tail
    a = report.analysis
    if tail is None:
        return '<p class="ok">No predicted tail at this input size: nothing to truncate.</p>'
    if not report.tail_reported:
        return "<p>The predicted tail is not reported here (RF002 is ignored, not selected or suppressed).</p>"
    parts = [
        f"<p><b>Why:</b> after <code>{_e(tail.cut_label)}</code>, every path to the output that could grow the "
        f"receptive field runs into a layer whose smallest input RF already exceeds the "
        f"{_e(fmt_size(a.input_size))} {unit(a.input_size)} image (the first is <code>{_e(tail.border.name)}</code>), so the "
        "tail only re-mixes what earlier layers saw.</p>"
    ]
    plan = report.truncation
    if plan is not None:
        parts.append(
            f"<p><b>Truncate:</b> keep everything up to <code>{_e(tail.cut_label)}</code>, then global average "
            f"pooling + Linear({plan.cut_channels}, {plan.n_out}). Removes {_e(removed_layers(tail))}; "
            f"params {plan.params_before:,} &rarr; {plan.params_after:,} "
            f"({change(plan.params_before, plan.params_after)}), "
            f"MACs {plan.macs_before:,} &rarr; {plan.macs_after:,} "
            f"({change(plan.macs_before, plan.macs_after)}).{_e(plan.head_text())}</p>"
        )
    else:
        parts.append(
            f"<p><b>Truncate:</b> end the feature extractor at <code>{_e(tail.cut_label)}</code> "
            f"({tail.params:,} params and {tail.macs:,} MACs are in the tail; the output is not a class vector, "
            "so no new head is proposed).</p>"
        )
    stem = report.stem
    if stem is not None:
        result = "no tail" if stem.removes_tail else f"a tail of {count(stem.tail_layers_after, 'parametric layer')}"
        factor = stem.macs_after / max(stem.macs_before, 1)
        parts.append(
            f"<p><b>Or remove stem downsampling:</b> {_e(changed_phrase(stem.layers))}, {result} is left; MACs "
            f"{stem.macs_before:,} &rarr; {stem.macs_after:,} (x{factor:.1f}).</p>"
        )
    command = try_it(report)
    if command is not None:
        parts.append(f"<p><b>Try it:</b> <code>{_e(command)}</code></p>")
    return f'<div class="fix">{"".join(parts)}</div>'


def _layers(report: ModelReport) -> str:
    s = report.structure
    border = s.border
    head = ("<tr><th>#</th><th>layer</th><th>op</th><th>k /s</th><th>out</th><th>RF in</th><th>RF out</th>"
            "<th>params</th><th>status</th></tr>")
    rows = []
    for i, layer in enumerate(report.analysis.layers):
        st = s.status.get(layer.name, "head")
        is_border = border is not None and layer is border
        name = _e(layer.name) + (' <span style="color:#c62828">&larr; border (b_min)</span>' if is_border else "")
        rows.append(
            f'<tr class="{"border-row" if is_border else ""}" style="background:{ROW_BG.get(st, "#fff")}">'
            f'<td class="num">{i}</td><td class="mono">{name}</td><td>{_e(layer.op)}</td>'
            f'<td class="mono">{_e(graph_mod.kernel_text(layer))}</td>'
            f'<td class="mono">{_e(graph_mod.map_text(layer.out_shape))}</td>'
            f'<td class="num">{"-" if layer.head else _e(_rf_pair(layer.r_in_min, layer.r_in_max))}</td>'
            f'<td class="num">{"-" if layer.head else _e(_rf_pair(layer.r_out_min, layer.r_out_max))}</td>'
            f'<td class="num">{f"{layer.params:,}" if layer.params else ""}</td>'
            f'<td><span class="status" style="background:{STATUS_BG.get(st, "#fff")}">{_e(st)}</span></td></tr>'
        )
    legend = "".join(
        f'<span><span class="status" style="background:{c}">{_e(k)}</span></span>' for k, c in STATUS_BG.items()
    )
    units = "samples" if len(report.analysis.input_size) == 1 else "pixels"
    return (f'<p class="legend muted">RF in / RF out: r_min-r_max in input {units} (one number when all axes '
            f"agree). {legend}</p><table class=\"layers\">{head}{''.join(rows)}</table>")


def _plot(report: ModelReport, prefix: str) -> str:
    try:
        svg = plot_mod.plot_bytes(report, "svg").decode("utf-8")
    except RflintError as err:  # matplotlib is not installed
        return f'<p class="note">No plot: {_e(err)}</p>'
    return f'<div class="plot">{inline_svg(svg, prefix)}</div>'


def _graph(report: ModelReport, prefix: str) -> str:
    dot = graph_mod.build_dot(report)
    if graph_mod.dot_executable() is not None:
        try:
            svg = graph_mod.run_dot(dot, "svg").decode("utf-8")
            return f'<div class="graph">{inline_svg(svg, prefix)}</div>'
        except RflintError as err:
            reason = str(err)
    else:
        reason = "Graphviz's `dot` is not installed (apt-get install graphviz) to draw it"
    return (f'<p class="note">{_e(reason)}; the graph is given as DOT text '
            "(render it with <code>dot -Tsvg</code>).</p>"
            f"<details><summary>graph (DOT)</summary><pre>{_e(dot)}</pre></details>")


def _model(report: ModelReport, i) -> str:
    a = report.analysis
    title = f"{a.target} @ {fmt_size(a.input_size)} {unit(a.input_size)}"
    return "".join([
        f'<section class="model" id="model-{i}">',
        f"<h2>{_e(title)}</h2>",
        "<h3>Summary</h3>", _summary(report),
        "<h3>Findings</h3>", _findings(report),
        "<h3>Suggested fix</h3>", _fix(report),
        "<h3>Layers</h3>", _layers(report),
        "<h3>Receptive field along the network</h3>", _plot(report, f"m{i}p-"),
        "<h3>Graph</h3>", _graph(report, f"m{i}g-"),
        "</section>",
    ])


def page_entry(report: ModelReport, key: str) -> dict:
    """One model's part of the page, as plain data (worker processes under --jobs build these)."""
    a = report.analysis
    return {
        "key": key,
        "title": f"{a.target} @ {fmt_size(a.input_size)} {unit(a.input_size)}",
        "severities": [f.severity for f in report.findings],
        "html": _model(report, key),
    }


def html_page(entries: list[dict], errors: list[dict] = ()) -> str:
    """``errors``: the targets or sizes that could not be analysed (formats.render's), listed after
    the models, as every other format lists them."""
    counts = {sev: sum(1 for e in entries for s in e["severities"] if s == sev) for sev in SEVERITY_RANK}
    summary = ", ".join(f"{n} {sev}{'s' if n != 1 and sev != 'info' else ''}"
                        for sev, n in sorted(counts.items(), key=lambda kv: -SEVERITY_RANK[kv[0]]))
    nav = "".join(
        f'<li><a href="#model-{e["key"]}">{_e(e["title"])}</a> '
        f'<span class="muted">({len(e["severities"])} finding{"s" if len(e["severities"]) != 1 else ""})</span></li>'
        for e in entries
    )
    body = "".join(e["html"] for e in entries)
    failed = f'; <a href="#errors">{len(errors)} could not be analysed</a>' if errors else ""
    if errors:
        from rflint.report.formats import error_text

        items = "".join(f"<li>{_e(error_text(error))}</li>" for error in errors)
        body += f'<section id="errors"><h2>Could not be analysed</h2><ul>{items}</ul></section>'
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>rflint report</title><style>{CSS}</style></head><body>"
        f"<h1>rflint report</h1><p class=\"muted\">{len(entries)} model run{'s' if len(entries) != 1 else ''}: "
        f"{_e(summary)}{failed}</p><nav><ul>{nav}</ul></nav>{body}"
        f"<footer>Generated by rflint {_e(__version__)}. Self-contained: this file loads nothing else.</footer>"
        "</body></html>\n"
    )


def html_document(reports: list[ModelReport]) -> str:
    return html_page([page_entry(r, str(i)) for i, r in enumerate(reports)])


def write_html(text: str, path: str | Path) -> None:
    path = Path(path)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        raise RflintError(f"--html {path}: cannot write: {err.strerror or err}") from None


def render_html(reports: list[ModelReport], path: str | Path) -> None:
    """Write one self-contained HTML report for ``reports`` to ``path``."""
    write_html(html_document(list(reports)), path)


__all__ = ["html_document", "html_page", "inline_svg", "page_entry", "render_html", "write_html"]
