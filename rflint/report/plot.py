"""--plot FILE: r_min and r_max of every RF layer's output along the network, against the input size.

One point per non-head RF layer (x: its index in topological order, labelled with its name), on a
log scale.  The input size is a horizontal line; the border layer (b_min) a vertical line; the
predicted tail a shaded band; unproductive layers are marked in red.  Axes whose numbers differ
get their own lines (H, W, ...); when every axis agrees there is one r_min / r_max pair.

matplotlib is optional (``pip install matplotlib``, or rflint's ``plot`` extra) and only imported
here; figures are drawn on the non-interactive Agg canvas, without pyplot.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from rflint.engine.numbers import num
from rflint.errors import RflintError
from rflint.report.model import ModelReport
from rflint.rules.structure import axis_names, fmt_size, unit

PLOT_FORMATS = ("png", "svg")
MISSING = "--plot needs matplotlib: pip install matplotlib"
MAX_TICKS = 40
UNPRODUCTIVE_RED = "#d62728"


def load_matplotlib() -> None:
    """Import what a plot uses now (a missing matplotlib is said when the plot is drawn)."""
    try:
        _matplotlib()
        import matplotlib.ticker  # noqa: F401
    except RflintError:
        pass


def _matplotlib():
    """matplotlib's Figure and Agg canvas.  pyplot is never imported: no GUI backend, and no global
    state changed in the caller's process (a notebook keeps its own backend)."""
    try:
        import matplotlib
    except ImportError:
        raise RflintError(MISSING) from None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    return matplotlib, Figure, FigureCanvasAgg



def _per_axis(layer, values, n_axes: int) -> list[float | None]:
    """The layer's per-kernel-axis values, re-indexed by model-input axis (None where not spatial)."""
    out: list[float | None] = [None] * n_axes
    for v, origin in zip(values, layer.origins):
        if v is not None and origin is not None and origin < n_axes:
            out[origin] = float(num(v))
    return out


def _mantissa(v: float) -> int:
    if v <= 0:
        return 0
    exp = math.floor(math.log10(v) + 1e-9)
    return round(v / 10 ** exp)


def _tick(v: float, _pos=None) -> str:
    return f"{v:g}" if v >= 1 else f"{v:.2g}"


def _common_prefix(names: list[str]) -> str:
    """The dotted module prefix every name shares ('features.' in torchvision's DenseNet)."""
    if len(names) < 2:
        return ""
    parts = [n.split(".") for n in names]
    common: list[str] = []
    for group in zip(*parts):
        if len(set(group)) != 1:
            break
        common.append(group[0])
    if any(len(p) <= len(common) for p in parts):  # never strip a whole name
        common = common[:-1] if common else common
    return ".".join(common) + "." if common else ""


def _groups(items, key) -> list[list[int]]:
    """Items grouped by equal key, in first-seen order."""
    groups: list[tuple[object, list[int]]] = []
    for item in items:
        k = key(item)
        for existing, members in groups:
            if existing == k:
                members.append(item)
                break
        else:
            groups.append((k, [item]))
    return [members for _, members in groups]


def _runs(indices: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for i in sorted(indices):
        if runs and i == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def plot_figure(report: ModelReport):
    """The matplotlib Figure (not registered with pyplot: nothing to close)."""
    _, Figure, FigureCanvasAgg = _matplotlib()
    from matplotlib.ticker import FuncFormatter

    a, s = report.analysis, report.structure
    layers = [layer for layer in a.layers if not layer.head]
    size = [float(v) for v in a.input_size]
    n_axes = len(size)
    names = axis_names(n_axes)
    xs = list(range(len(layers)))
    r_min = [_per_axis(layer, layer.r_out_min, n_axes) for layer in layers]
    r_max = [_per_axis(layer, layer.r_out_max, n_axes) for layer in layers]

    def column(rows, ax):
        return [float("nan") if row[ax] is None else row[ax] for row in rows]

    # Axes with identical numbers share one r_min / r_max pair (and one input line).
    rf_groups = _groups(range(n_axes), key=lambda k: ([row[k] for row in r_min], [row[k] for row in r_max]))
    size_groups = _groups(range(n_axes), key=lambda k: size[k])

    prefix = _common_prefix([layer.name for layer in layers])
    tick_names = [layer.name[len(prefix):] for layer in layers]
    longest = max((len(t) for t in tick_names), default=0)
    width = min(22.0, max(8.0, 3.0 + 0.22 * len(layers)))
    height = min(9.0, 4.6 + 0.05 * longest)
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.set_yscale("log")

    idx = {layer.name: i for i, layer in enumerate(layers)}
    if s.tail is not None:
        tail_idx = [idx[layer.name] for layer in s.tail.layers if layer.name in idx]
        for k, (lo, hi) in enumerate(_runs(tail_idx)):
            ax.axvspan(lo - 0.5, hi + 0.5, color="#f4978e", alpha=0.22, lw=0,
                       label=f"predicted tail (truncate after {s.tail.cut_label})" if k == 0 else None)

    colours = ("#1f77b4", "#2ca02c", "#9467bd")
    for g, group in enumerate(rf_groups if layers else []):
        colour = colours[g % len(colours)]
        suffix = "" if len(rf_groups) == 1 else f" ({', '.join(names[k] for k in group)})"
        k = group[0]
        ax.plot(xs, column(r_min, k), marker="o", ms=3.5, lw=1.6, color=colour, label=f"r_min{suffix}")
        ax.plot(xs, column(r_max, k), marker="^", ms=3.5, lw=1.2, ls="--", color=colour, label=f"r_max{suffix}")

    unproductive = [i for i, layer in enumerate(layers) if s.status.get(layer.name) == "unproductive"]
    if unproductive:
        ys = [next((v for v in r_min[i] if v is not None), float("nan")) for i in unproductive]
        ax.scatter(unproductive, ys, s=60, facecolors="none", edgecolors=UNPRODUCTIVE_RED, linewidths=1.6,
                   zorder=5, label="unproductive layer")

    line_styles = (":", "-.", (0, (5, 1)))
    for g, group in enumerate(size_groups):
        where = "" if len(size_groups) == 1 else f" {', '.join(names[k] for k in group)} ="
        value = fmt_size(a.input_size) if len(size_groups) == 1 else fmt_size((a.input_size[group[0]],))
        ax.axhline(size[group[0]], color="black", lw=1.3, ls=line_styles[g % len(line_styles)],
                   label=f"input{where} {value} px")

    border = s.border
    if border is not None and border.name in idx:
        bx = idx[border.name]
        ax.axvline(bx, color=UNPRODUCTIVE_RED, lw=1.8)
        right = bx > 0.75 * len(layers)
        ax.annotate("border (b_min)", xy=(bx, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(-4 if right else 4, -4), textcoords="offset points", ha="right" if right else "left",
                    va="top", color=UNPRODUCTIVE_RED, fontsize=10,
                    fontweight="bold")

    ax.set_xlim(-0.7, max(len(layers) - 0.3, 0.7))
    step = max(1, -(-len(layers) // MAX_TICKS))
    ticks = set(range(0, len(layers), step))
    if border is not None and border.name in idx:
        ticks = {t for t in ticks if abs(t - idx[border.name]) >= max(1, step // 2) or t == idx[border.name]}
        ticks.add(idx[border.name])
    ticks_sorted = sorted(ticks)
    ax.set_xticks(ticks_sorted)
    ax.set_xticklabels([tick_names[t] for t in ticks_sorted], rotation=60, ha="right", rotation_mode="anchor",
                       fontsize=8 if len(layers) <= MAX_TICKS else 7)
    if border is not None and border.name in idx:
        for label, t in zip(ax.get_xticklabels(), ticks_sorted):
            if t == idx[border.name]:
                label.set_color(UNPRODUCTIVE_RED)
                label.set_fontweight("bold")

    xlabel = "RF layer (topological order)"
    if prefix:
        xlabel += f", names after {prefix!r}"
    if step > 1:
        xlabel += f", every {step}th labelled"
    ax.set_xlabel(xlabel)
    ax.set_ylabel("receptive field of the layer's output (input px, log scale)")
    ax.set_title(f"{a.target} @ {fmt_size(a.input_size)} {unit(a.input_size)}")
    ax.grid(True, which="major", axis="y", alpha=0.3)
    ax.yaxis.set_major_formatter(FuncFormatter(_tick))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _pos: _tick(v) if _mantissa(v) in (2, 5) else ""))
    ax.legend(loc="best", fontsize=8, framealpha=0.9)
    return fig


def plot_bytes(report: ModelReport, fmt: str) -> bytes:
    """The plot as PNG or SVG bytes."""
    matplotlib, _, _ = _matplotlib()
    buf = io.BytesIO()
    # a fixed salt keeps the SVG's element ids (and so the HTML report) the same from run to run
    with matplotlib.rc_context({"svg.hashsalt": "rflint"}):
        fig = plot_figure(report)
        fig.savefig(buf, format=fmt, dpi=110, metadata=_metadata(fmt))
    return buf.getvalue()


def _metadata(fmt: str) -> dict:
    # No creator/date stamps: the output stays reproducible (and the SVG free of URLs).
    if fmt == "svg":
        return {"Creator": None, "Date": None, "Format": None, "Type": None}
    return {"Software": None}


def render_plot(report: ModelReport, path: str | Path) -> None:
    """Write the RF plot to ``path`` (``.png`` or ``.svg``)."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in PLOT_FORMATS:
        raise RflintError(f"--plot {path}: unknown format {path.suffix or '(none)'!r}; use .png or .svg")
    data = plot_bytes(report, fmt)
    try:
        path.write_bytes(data)
    except OSError as err:
        raise RflintError(f"--plot {path}: cannot write: {err.strerror or err}") from None


__all__ = ["render_plot", "plot_bytes", "plot_figure"]
