"""--graph FILE: the traced graph as Graphviz DOT, coloured by layer status.

``FILE.dot`` is plain DOT text and needs nothing installed.  ``FILE.svg`` / ``FILE.png`` run
Graphviz's ``dot`` on that text.

Nodes are the fx nodes on some input -> output path that carry a tensor (weights, ``get_attr`` and
pure shape arithmetic are left out; edges through a left-out node are contracted).  RF layers are
boxes (name, op, kernel/stride, r_min / r_max of the output, feature-map size), filled by status:
productive green, partial yellow, unproductive red, head grey.  Every other op is a small white
ellipse.  The predicted tail is a dashed red cluster and the border layer has a thick outline.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from rflint.errors import RflintError
from rflint.report.model import ModelReport
from rflint.rules.structure import fmt_size, unit

STATUS_FILL = {
    "productive": "#b7e1a1",
    "partial": "#ffe28a",
    "unproductive": "#f4978e",
    "head": "#d0d0d0",
}
NEUTRAL_FILL = "#ffffff"
TAIL_BACKGROUND = "#fdeeee"
DOT_FORMATS = ("svg", "png")
LEGEND_ID = "__rflint_legend__"  # the colour key drawn beside the graph (not a graph node)
DOT_TIMEOUT = 300  # seconds; DenseNet-121 lays out in a few


def dot_quote(text: str) -> str:
    """A DOT double-quoted string.  Backslashes are doubled (Graphviz would read ``\\l`` or ``\\N``
    as escapes), quotes escaped, newlines become ``\\n`` (a centred line break)."""
    text = str(text).replace("\\", "\\\\").replace('"', '\\"')
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return f'"{text}"'


def compact(values) -> str:
    """(43, 43) -> '43'; (43, 51) -> '43x51' (equal axes collapse to one number)."""
    text = fmt_size(values)
    parts = set(text.split("x"))
    return parts.pop() if len(parts) == 1 else text


def kernel_text(layer) -> str:
    k = "x".join(map(str, layer.kernel))
    if any(s != 1 for s in layer.stride):
        return f"{k} /{compact(layer.stride)}"
    return k


def rf_text(layer) -> str:
    """'r 75 / 211 px': r_min / r_max of the layer's output."""
    if layer.head:
        return "head (input already global)"
    return f"r {compact(layer.r_out_min)} / {compact(layer.r_out_max)} px"


def map_text(shape) -> str:
    return "x".join(map(str, shape[2:])) if shape is not None and len(shape) > 2 else "-"


def _op_name(a, fx_node) -> str:
    if fx_node is None:
        return "?"
    if fx_node.op == "placeholder":
        return "input"
    if fx_node.op == "output":
        return "output"
    if fx_node.op == "call_module" and a.traced is not None:
        try:
            return type(a.traced.gm.get_submodule(str(fx_node.target))).__name__
        except AttributeError:
            return str(fx_node.target)
    target = fx_node.target
    return getattr(target, "__name__", None) or str(target)


def graph_nodes(report: ModelReport) -> list[str]:
    """fx node names drawn, in topological order: on an input -> output path and carrying a tensor."""
    a = report.analysis
    relevant = report.structure.relevant
    return [n for n in a.order if n in relevant and a.shapes.get(n) is not None]


def _edges(report: ModelReport, kept: list[str]) -> list[tuple[str, str]]:
    """Edges between kept nodes; a path through left-out nodes becomes one edge."""
    g = report.analysis.graph
    keep = set(kept)
    position = {n: i for i, n in enumerate(kept)}
    edges: list[tuple[str, str]] = []
    for node in kept:
        seen: set[str] = set()
        sources: list[str] = []
        stack = list(g.predecessors(node)) if node in g else []
        while stack:
            p = stack.pop()
            if p in seen:
                continue
            seen.add(p)
            if p in keep:
                sources.append(p)
            else:
                stack.extend(g.predecessors(p))
        for src in sorted(set(sources), key=position.__getitem__):
            edges.append((src, node))
    return edges


def build_dot(report: ModelReport) -> str:
    a, s = report.analysis, report.structure
    kept = graph_nodes(report)
    fx_nodes = {n.name: n for n in a.traced.order} if a.traced is not None else {}
    names = a.tensor_names  # every tooltip names its tensor: the table once, not a scan per node
    big = len(kept) > 200
    small_font = 7 if big else 8
    border = s.border
    tail_nodes: set[str] = set()
    if s.tail is not None:
        tail_nodes = {n for seg in s.tail.segments for n in seg.nodes} & set(kept)

    def node_line(n: str) -> str:
        layer = a.layer_by_node.get(n)
        shape = a.shapes.get(n)
        if layer is not None:
            status = s.status.get(layer.name, "head")
            lines = [layer.name, f"{layer.op} {kernel_text(layer)}", rf_text(layer), f"map {map_text(layer.out_shape)}"]
            attrs = {
                "label": "\n".join(lines),
                "shape": "box",
                "style": "filled,rounded",
                "fillcolor": STATUS_FILL.get(status, NEUTRAL_FILL),
                "tooltip": f"{layer.name}: {status}",
            }
            if border is not None and layer is border:
                attrs["label"] += "\nborder (b_min)"
                attrs["penwidth"] = "3"
                attrs["color"] = "#b00000"
        else:
            op = _op_name(a, fx_nodes.get(n))
            label = op
            if op == "input":
                label = f"input {'x'.join(map(str, shape[1:]))}"
            attrs = {
                "label": label,
                "shape": "ellipse",
                "style": "filled",
                "fillcolor": NEUTRAL_FILL,
                "fontsize": str(small_font),
                "height": "0.2",
                "margin": "0.03,0.01",
                "tooltip": f"{names.get(n, n)} ({op}) {'x'.join(map(str, shape))}",
            }
        body = ", ".join(f"{k}={dot_quote(v)}" for k, v in attrs.items())
        return f"{dot_quote(n)} [{body}];"

    title = f"{a.target} @ {fmt_size(a.input_size)} {unit(a.input_size)}"
    out = [
        "digraph rflint {",
        f"  graph [label={dot_quote(title)}, labelloc=t, fontsize=14, fontname=\"Helvetica\", "
        f"rankdir=TB, nodesep={0.12 if big else 0.2}, ranksep={0.18 if big else 0.25}];",
        "  node [fontname=\"Helvetica\", fontsize=9, margin=\"0.08,0.03\"];",
        "  edge [arrowsize=0.5, color=\"#555555\"];",
    ]
    for n in kept:
        if n not in tail_nodes:
            out.append("  " + node_line(n))
    if tail_nodes:
        label = f"predicted tail (truncate after {s.tail.cut_label})"
        out.append("  subgraph cluster_tail {")
        out.append(f"    graph [label={dot_quote(label)}, style=\"dashed,filled\", color=\"#c00000\", "
                   f"fillcolor={dot_quote(TAIL_BACKGROUND)}, fontcolor=\"#c00000\", fontsize=11];")
        for n in kept:
            if n in tail_nodes:
                out.append("    " + node_line(n))
        out.append("  }")
    for src, dst in _edges(report, kept):
        out.append(f"  {dot_quote(src)} -> {dot_quote(dst)};")
    out.append("  " + _legend())
    out.append("}")
    return "\n".join(out) + "\n"


def _legend() -> str:
    cells = "".join(
        f'<TD BGCOLOR="{colour}">{status}</TD>' for status, colour in STATUS_FILL.items()
    )
    return (f"{dot_quote(LEGEND_ID)} [shape=plaintext, fontsize=8, "
            'label=<<TABLE BORDER="0" CELLBORDER="1" '
            f'CELLSPACING="0" CELLPADDING="3"><TR>{cells}</TR></TABLE>>];')


def dot_executable() -> str | None:
    return shutil.which("dot")


def run_dot(dot_text: str, fmt: str, out: Path | None = None) -> bytes:
    """Run Graphviz ``dot -T<fmt>``; returns the output bytes (and writes ``out`` when given)."""
    exe = dot_executable()
    if exe is None:
        raise RflintError("--graph FILE.svg needs Graphviz's `dot` (apt-get install graphviz); write FILE.dot instead")
    try:
        proc = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode("utf-8"), capture_output=True,
                              timeout=DOT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise RflintError(f"Graphviz `dot` did not finish within {DOT_TIMEOUT} s; write FILE.dot instead") from None
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RflintError(f"Graphviz `dot` failed: {msg[0] if msg else f'exit code {proc.returncode}'}")
    if out is not None:
        out.write_bytes(proc.stdout)
    return proc.stdout


def render_graph(report: ModelReport, path: str | Path) -> None:
    """Write the graph to ``path``: ``.dot`` (DOT text), ``.svg`` or ``.png`` (through Graphviz)."""
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in ("dot", "gv", *DOT_FORMATS):
        raise RflintError(f"--graph {path}: unknown format {path.suffix or '(none)'!r}; use .dot, .svg or .png")
    text = build_dot(report)
    try:
        if suffix in ("dot", "gv"):
            path.write_text(text, encoding="utf-8")
        else:
            run_dot(text, suffix, path)
    except OSError as err:
        raise RflintError(f"--graph {path}: cannot write: {err.strerror or err}") from None


__all__ = ["render_graph", "build_dot", "LEGEND_ID", "run_dot", "dot_executable", "STATUS_FILL", "NEUTRAL_FILL"]
