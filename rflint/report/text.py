"""--format text: the rich terminal report people read (header, layer table, findings, fixes)."""

from __future__ import annotations

from typing import Iterator

from rich import box
from rich.console import Console
from rich.panel import Panel
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from rflint.engine.numbers import num
from rflint.engine.surgery import changed_phrase
from rflint.report.humanize import NO_CLEAN_SIZE, change, final_rf, human, removed_layers, shown_note, try_it, where, with_kwargs
from rflint.report.model import ModelReport
from rflint.rules.base import SEVERITY_RANK
from rflint.rules.structure import fmt_size, sized, unit
from rflint.rules.truncation import no_plan_reason
from rflint.trace.sources import installed_file
from rflint.wording import count, named

STATUS_STYLE = {"productive": "green", "partial": "yellow", "unproductive": "bold red", "head": "dim"}
SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def _kernel(layer, k: int) -> str:
    kernel = "x".join(map(str, layer.kernel[:k]))
    s = fmt_size(layer.stride[:k])
    return f"{kernel} /{s}" if any(x != 1 for x in layer.stride[:k]) else kernel


def _shown_axes(layer) -> int:
    """How many of the layer's kernel axes the table shows: all but the trailing ones no input axis
    reaches, which on a channels-last map (B, H, W, C) are its channels (an op fx keeps whole, read
    from the shapes, spans them too).  A leading one (a conv over a spectrogram's frequencies, which
    no input axis became) is a real kernel axis and stays."""
    k = len(layer.origins)
    while k > 1 and layer.origins[k - 1] is None:
        k -= 1
    return k if layer.origins[k - 1] is not None else len(layer.origins)


def _compact(values) -> str:
    """(43, 43) -> '43': in the table, equal axes collapse to one number."""
    text = fmt_size(values)
    parts = set(text.split("x"))
    return parts.pop() if len(parts) == 1 else text


def _rf_pair(lo, hi) -> str:
    a, b = _compact(lo), _compact(hi)
    return a if a == b else f"{a}-{b}"


def header(report: ModelReport) -> Table:
    a = report.analysis
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("input", f"{fmt_size(a.input_size)} {unit(a.input_size)}, {a.channels} channel{'s' if a.channels != 1 else ''}")
    grid.add_row("size", f"{human(a.params)} params, {human(a.macs)} MACs")
    if a.final_r_min is not None:
        grid.add_row("final RF", f"{final_rf(a)} (after {named(a.final_layer)})")
    clean = report.min_clean_input
    grid.add_row("no unproductive or partial layer from", f"{fmt_size(clean)} {unit(a.input_size)}" if clean else NO_CLEAN_SIZE)
    s = report.structure
    grid.add_row("border (r_min / r_max)", f"{named(s.border.name) if s.border else '-'} / "
                                           f"{named(s.border_max.name) if s.border_max else '-'}")
    if a.trace_method != "torch.fx.symbolic_trace":
        grid.add_row("traced with", a.trace_method)
    return grid


_COLUMNS = (("layer", "left"), ("op", "left"), ("k /s", "left"), ("out", "left"),
            ("RF in", "right"), ("RF out", "right"), ("params", "right"), ("status", "left"))
_CAPTION = "RF in / RF out: r_min-r_max in input {units} (one number when all axes agree)"


def layer_table(report: ModelReport) -> LayerTable:
    """The per-layer table of the text report."""
    status = report.structure.status
    border = report.structure.border
    rows = []
    for layer in report.analysis.layers:
        k = _shown_axes(layer) if layer.origins else len(layer.kernel)
        out = layer.out_shape[2:] if k == len(layer.kernel) else \
            layer.out_shape[len(layer.out_shape) - len(layer.kernel):][:k]
        rows.append((
            layer.name, layer is border, layer.op, _kernel(layer, k), "x".join(map(str, out)),
            "-" if layer.head else _rf_pair(layer.r_in_min[:k], layer.r_in_max[:k]),
            "-" if layer.head else _rf_pair(layer.r_out_min[:k], layer.r_out_max[:k]),
            human(layer.params) if layer.params else "", status[layer.name],
        ))
    return LayerTable(rows, "samples" if len(report.analysis.input_size) == 1 else "pixels")


_BORDER_MARK = " <- border"
# Left out, in this order, while the table is wider than the console: the op and kernel are in the
# code (and in --format json), the RFs and statuses are what the table is for.  Never the numbers
# squeezed to "43-…", which is what rich does to a table that does not fit.
_DROP_ORDER = ("op", "k /s", "out", "params")


class LayerTable:
    """The layer table exactly as ``rich.table.Table`` draws it (:meth:`as_rich_table`: box
    SIMPLE_HEAD, no edge, columns that never wrap), composed segment by segment.

    rich measures and renders every cell as a renderable of its own, at about 80 microseconds a
    cell here: 170 ms for DenseNet-264's 268 layers, twice the time of tracing the model, and
    0.6 s for ResNet-1000.  Every cell of this table is one line of plain text, so the columns
    are as wide as their widest cell and each row is a few strings.

    A table wider than the console loses columns (``_DROP_ORDER``; the caption says which) until it
    fits.  When even the layer, RF and status columns do not fit (rich then folds long layer names),
    a cell is not plain ASCII (its width in terminal cells is not its length) or the output is not
    Unicode (rich then draws ASCII lines), rich's Table draws it.  When not even the RFs and statuses
    fit beside ``_NAME_MIN`` cells of the name, it is a list of entries instead (``_as_entries``).
    tests/test_formats.py checks that both print the same, colours included."""

    def __init__(self, rows: list[tuple], units: str = "pixels"):
        self.rows = rows  # (name, is border, op, kernel, out, RF in, RF out, params, status)
        self.units = units  # what the RFs count: pixels, or samples of a 1-D signal

    def as_rich_table(self, keep: list[int] | None = None, width: int = 0) -> Table:
        """rich's Table of the columns ``keep`` (indices into _COLUMNS; default all), left out for
        a console ``width`` columns wide."""
        keep = list(range(len(_COLUMNS))) if keep is None else keep
        t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, caption=_caption(keep, width, self.units))
        widths = _column_widths(self._cells())
        for i in keep:
            col, justify = _COLUMNS[i]
            if col == "layer":  # the one column that gives way: a long name folds onto a second line
                t.add_column(col, justify=justify, overflow="fold")
            else:  # never a number cut short to "39-10…" (rich shrinks every column that has no minimum)
                t.add_column(col, justify=justify, no_wrap=True, min_width=widths[i])
        for name, is_border, *cells, st in self.rows:
            label = Text(name, style="bold" if is_border else "")
            if is_border:
                label.append(_BORDER_MARK, style="bold red")
            row = [label, *cells, Text(st, style=STATUS_STYLE.get(st, ""))]
            t.add_row(*(row[i] for i in keep))
        return t

    def _cells(self) -> list[list[str]]:
        """Every row's cells as text, the layer's with its border mark."""
        return [[name + _BORDER_MARK if is_border else name, *rest] for name, is_border, *rest in self.rows]

    def fitting(self, cells: list[list[str]], max_width: int) -> tuple[list[int], list[int]]:
        """The columns kept (indices) and their widths, after leaving out what the console has no
        room for.  Widths in terminal cells (a wide character takes two)."""
        headers = [col for col, _ in _COLUMNS]
        widths = _column_widths(cells)
        keep = list(range(len(_COLUMNS)))
        for name in _DROP_ORDER:
            if sum(widths[i] for i in keep) + 3 * (len(keep) - 1) <= max_width:
                break
            keep.remove(headers.index(name))
        return keep, [widths[i] for i in keep]

    def __rich_console__(self, console: Console, options) -> Iterator[Segment]:
        escaped = _encodable(self.rows, options.encoding)
        if escaped is not self.rows:  # laid out as printed: "\u043a" is six cells, not one
            yield from console.render(LayerTable(escaped, self.units), options)
            return
        cells = self._cells()
        keep, widths = self.fitting(cells, options.max_width)
        table_width = sum(widths) + 3 * (len(widths) - 1)
        if table_width - widths[0] + _NAME_MIN > options.max_width:
            # not even the numbers and statuses fit beside a few letters of the name: rich's table
            # dropped the layer column and cut "productive" to "productiv", rows of bare numbers
            yield from self._as_entries(console, options)
            return
        if table_width > options.max_width or options.ascii_only or not all(c.isascii() for row in cells for c in row):
            yield from console.render(self.as_rich_table(keep, options.max_width), options)  # see the class doc
            return
        head = console.get_style("table.header")
        right = [_COLUMNS[i][1] == "right" for i in keep]
        pad, gap, newline = Segment(" ", head), Segment(" "), Segment.line()
        for k, (i, width) in enumerate(zip(keep, widths)):  # header: cell, its padding bold
            if k:
                yield from (pad, gap, pad)
            text = _COLUMNS[i][0]
            yield Segment(text.rjust(width) if right[k] else text.ljust(width), head)
        yield newline
        yield Segment("\u2500" * table_width)
        yield newline
        styles = {st: console.get_style(style) for st, style in STATUS_STYLE.items()}
        bold, bold_red, last = console.get_style("bold"), console.get_style("bold red"), len(_COLUMNS) - 1
        spacer = Segment("   ")
        middle = list(zip(keep[1:-1], widths[1:-1], right[1:-1]))  # the layer comes first, the status last
        for (name, is_border, *_), row in zip(self.rows, cells):
            if is_border:  # the name in bold, the mark in bold red, the rest of the cell bold
                yield Segment(name, bold)
                yield Segment(_BORDER_MARK, bold_red)
                if len(row[0]) < widths[0]:
                    yield Segment(" " * (widths[0] - len(row[0])), bold)
            else:
                yield Segment(row[0].ljust(widths[0]))
            for i, width, justify_right in middle:
                yield spacer
                yield Segment(row[i].rjust(width) if justify_right else row[i].ljust(width))
            yield spacer
            st = row[last]
            yield Segment(st.ljust(widths[-1]), styles.get(st))
            yield newline
        caption = console.render_str(_caption(keep, options.max_width, self.units), style="table.caption", highlight=False)
        yield from console.render(caption, options.update(width=table_width, justify="center", height=None,
                                                          highlight=False))


    def _as_entries(self, console: Console, options) -> Iterator[Segment]:
        """One entry per layer, for a console too narrow for the table's columns: the name on a
        line of its own, then its RFs and status (each wrapped by rich where even that is long)."""
        i_in, i_out = (next(i for i, (col, _) in enumerate(_COLUMNS) if col == name) for name in ("RF in", "RF out"))
        indented = options.update(width=max(options.max_width - 2, 8))
        for name, is_border, *cells, st in self.rows:
            row = [name, *cells, st]
            line = Text(name, style="bold" if is_border else "")
            if is_border:
                line.append(_BORDER_MARK, style="bold red")
            yield from console.render(line, options)
            detail = Text.assemble(f"RF {row[i_in]} -> {row[i_out]}, ", (st, STATUS_STYLE.get(st, "")))
            for segments in console.render_lines(detail, indented, pad=False):  # wrapped lines indented too
                yield Segment("  ")
                yield from segments
                yield Segment.line()
        caption = (f"RF: r_min-r_max in input {self.units}, in -> out; one entry per layer to fit "
                   f"{options.max_width} columns (--format json has every column)")
        yield from console.render(Text(caption, style="table.caption"), options)


def _encodable(rows: list[tuple], encoding: str) -> list[tuple]:
    """The rows with each character the output's encoding cannot hold written as its escape
    (``\\u043a``), as the CLI's output stream then writes it (app._unencodable_replaced); the same
    list when every character can be written."""
    try:
        "".join(str(cell) for row in rows for cell in row).encode(encoding or "utf-8")
        return rows
    except UnicodeEncodeError:
        return [tuple(cell.encode(encoding, "backslashreplace").decode(encoding) if isinstance(cell, str) else cell
                      for cell in row) for row in rows]
    except LookupError:  # an encoding Python does not know: left to the stream
        return rows


_NAME_MIN = 14  # terminal cells the layer column needs for a table to be worth drawing (names fold)


def _column_widths(cells: list[list[str]]) -> list[int]:
    """Each column's width in terminal cells (a wide character takes two): its widest cell or header."""
    from rich.cells import cell_len

    return [max(map(cell_len, column)) for column in zip([col for col, _ in _COLUMNS], *cells)]


def _caption(keep: list[int], width: int, units: str = "pixels") -> str:
    left_out = [col for i, (col, _) in enumerate(_COLUMNS) if i not in keep]
    caption = _CAPTION.format(units=units)
    if not left_out:
        return caption
    return f"{caption}; {', '.join(left_out)} left out to fit {width} columns (--format json has them)"


_SEVERITY_WIDTH = 8  # "warning " : the column a finding's wrapped lines are indented to


class HangingFindings:
    """Findings, one per entry, each wrapped at the console's width with its continuation lines
    indented past the severity column, so the codes and places stay a column of their own.  The
    severity, code and place are never broken: however long the path, "error   RF002 path:12" is
    one line's start, so grep finds it (a long path is left to overflow, its message below)."""

    def __init__(self, entries: list[tuple[Text, Text, Text]]):
        self.entries = entries  # (severity column, code and place, message)

    def __rich_console__(self, console: Console, options) -> Iterator[Text]:
        from rich.cells import cell_len

        width = max(options.max_width - _SEVERITY_WIDTH, 20)
        for head, lead, message in self.entries:
            out = head.copy()
            out.append_text(lead)
            room = width - lead.cell_len
            first_word = cell_len(message.plain.split(" ", 1)[0])
            if room >= 20 and first_word <= room:  # the first words beside the place, the rest at the full width
                # (not a layer name broken in two where the room ends: "features.denseblock4.denselay")
                first = message.wrap(console, room)[0]
                rest = message[len(first.plain):]
                rest = rest[len(rest.plain) - len(rest.plain.lstrip()):]
                lines = [first, *(rest.wrap(console, width) if rest.plain else [])]
            else:
                out.rstrip()
                lines = [Text(), *message.wrap(console, width)]
            for i, line in enumerate(lines):
                if i:
                    out.append("\n" + " " * _SEVERITY_WIDTH)
                line.rstrip()  # the space the line was broken at
                out.append_text(line)
            out.no_wrap, out.overflow = True, "ignore"  # (a line longer than the width: whole, not cropped)
            yield out


def findings_block(report: ModelReport) -> HangingFindings | Text:
    if not report.findings:  # a model whose findings are all silenced says so: not a clean one
        hidden = report.result.suppressed
        return Text(f"No findings ({hidden} suppressed)." if hidden else "No findings.", style="green")
    entries = []
    for f in sorted(report.findings, key=lambda f: -SEVERITY_RANK[f.severity]):
        head = Text(f"{f.severity:<{_SEVERITY_WIDTH - 1}} ", style=SEVERITY_STYLE[f.severity])
        lead = Text()
        lead.append(f"{f.code} ", style="bold")
        place = where(_users_line(f.source))
        if place:
            lead.append(place + " ", style="dim")
        entries.append((head, lead, Text(f.message)))
    return HangingFindings(entries)


def _users_line(source):
    """Where a finding shows in the terminal: its own line, or for a layer an installed package
    built (torchvision's ConvNormActivation in ops/misc.py) the first line of the user's code that
    called it, the factory's ``return mobilenet_v3_large(...)``: the line an ignore comment goes on,
    and one the user can open (SARIF and annotations do the same, formats.checkout_place)."""
    if source is None or not installed_file(source.file):
        return source
    return next((caller for caller in source.callers if not installed_file(caller.file)), source)


def fix_panel(report: ModelReport) -> Panel | None:
    tail = report.structure.tail
    if tail is None or not report.tail_reported:
        return None
    a = report.analysis
    plan = report.truncation
    body = Text()
    body.append("Why: ", style="bold")
    body.append(
        f"after {tail.cut_label}, every path to the output that could grow the receptive field runs into a "
        f"layer whose smallest input RF already exceeds the {sized(a.input_size)} input (the first is "
        f"{named(tail.border.name)}), so the tail only re-mixes what earlier layers saw; networks trained with "
        "such a tail are usually no more accurate, often less, than without it.\n"
    )
    body.append("Truncate: ", style="bold")
    if plan is not None:
        body.append(
            f"keep everything up to {tail.cut_label}, then global average pooling + Linear({plan.cut_channels}, "
            f"{plan.n_out}). Removes {removed_layers(tail)}; params {human(a.params)} -> "
            f"{human(plan.params_after)} ({change(a.params, plan.params_after)}), MACs {human(a.macs)} -> "
            f"{human(plan.macs_after)} ({change(a.macs, plan.macs_after)}).{plan.head_text()}\n"
        )
    else:
        reason = no_plan_reason(report.analysis, tail)
        body.append(f"end the feature extractor at {tail.cut_label} ({human(tail.params)} params, "
                    f"{human(tail.macs)} MACs in the tail)" + (f"; no automatic truncation: {reason}" if reason else "")
                    + ".\n")
    stem = report.stem
    if stem is not None:
        body.append("Or remove stem downsampling: ", style="bold")
        result = "no tail" if stem.removes_tail else f"a tail of {count(stem.tail_layers_after, 'parametric layer')}"
        body.append(
            f"{changed_phrase(stem.layers)}, {result} is left; MACs {human(stem.macs_before)} -> "
            f"{human(stem.macs_after)} (x{stem.macs_after / max(stem.macs_before, 1):.1f}).\n"
        )
    body.rstrip()
    return Panel(body, title="suggested fix", title_align="left", border_style="red")


def render_model(report: ModelReport, console: Console, show_layers: bool = True) -> None:
    """One model's section: header, notes, layer table, findings, suggested fix."""
    a = report.analysis
    name = with_kwargs(a.target, a.prepared.factory_kwargs if a.prepared is not None else None)
    console.rule(Text(f"{name} @ {fmt_size(a.input_size)}", style="bold"))
    console.print(header(report))
    for warning in a.warnings:
        console.print(Text(f"note: {shown_note(warning)}", style="yellow"))
    for note in report.notes:
        console.print(Text(f"note: {shown_note(note)}", style="dim"))
    if show_layers:
        console.print(layer_table(report))
    console.print(findings_block(report), crop=False)  # (a path longer than the width: whole)
    panel = fix_panel(report)
    if panel is not None:
        console.print(panel)
        command = try_it(report)
        if command is not None:  # outside the box and never wrapped: it is there to be pasted
            console.print(Text.assemble(("Try it: ", "bold"), command), soft_wrap=True)


def render_summary(docs: list[dict], console: Console, failed: int = 0) -> None:
    """The closing line: counts by severity over every model run, and the runs that failed (their
    errors are on stderr)."""
    console.print(Text(summary_line(docs, failed), style="bold"))


def summary_line(docs: list[dict], failed: int = 0) -> str:
    """"2 model runs: 1 error, 8 warnings, 0 info (3 suppressed); 1 could not be analysed ..." """
    counts = {sev: sum(1 for d in docs for f in d["findings"] if f["severity"] == sev) for sev in SEVERITY_RANK}
    summary = ", ".join(f"{n} {sev}{'s' if n != 1 and sev != 'info' else ''}" for sev, n in
                        sorted(counts.items(), key=lambda kv: -SEVERITY_RANK[kv[0]]))
    suppressed = sum(d["suppressed"] for d in docs)
    return (f"{len(docs)} model run{'s' if len(docs) != 1 else ''}: {summary}"
            + (f" ({suppressed} suppressed)" if suppressed else "")
            + (f"; {failed} could not be analysed (see the errors on stderr)" if failed else ""))


def render_text(reports: list[ModelReport], console: Console, show_layers: bool = True) -> None:
    for report in reports:
        render_model(report, console, show_layers)
    render_summary([r.document() for r in reports], console)


def render_sweep(label: str, rows: list[dict], lo, hi, console: Console) -> None:
    codes = sorted({code for r in rows for code in r.get("counts", ())})
    # Text, not a str: rich reads "emo.py:fire: ..." as markup with an emoji code (":fire:")
    t = Table(title=Text(f"{label}: receptive field vs input size"), box=box.SIMPLE_HEAD, title_justify="left",
              padding=(0, 1), pad_edge=False, show_edge=False)
    cells = []
    for r in rows:
        if "error" in r:  # the reason follows the table: it is longer than a cell
            cells.append([fmt_size(r["input"]), Text("does not run", style="red"), *["-"] * (3 + len(codes))])
            continue
        border = f"{named(r['border'])} (#{r['border_index']} parametric)" if r["border"] else "-"
        cells.append([
            fmt_size(r["input"]), border, named(r["cut"]) if r["cut"] else "-",
            str(r["tail_layers"]) if r["tail_layers"] else "-", f"{r['tail_params_pct']}%" if r["tail_layers"] else "-",
            *[str(r["counts"].get(code, 0) or "") for code in codes],
        ])
    columns = ("input", "border (b_min)", "cut", "tail layers", "tail params", *codes)
    widest_cell = [max((len(str(row[i])) for row in cells), default=1) for i in range(len(columns))]
    widest = [max(cell, len(col)) for cell, col in zip(widest_cell, columns)]
    # numbers are never cut short ("12…" for 128): as wide as their widest cell and their header's
    # longest word (the header wraps at its space: "tail" / "layers"); the names take what is left
    # and fold; rule columns are left out, the last first, while even 12 columns of names do not fit
    fixed = [max(cell, *map(len, col.split())) for cell, col in zip(widest_cell, columns)]
    keep = len(columns)
    def room(k: int) -> int:  # what the two name columns get with the first k columns shown
        return console.width - sum(fixed[i] for i in range(k) if i not in (1, 2)) - 3 * (k - 1)  # (a space, the box's, a space)
    while keep > 5 and room(keep) < 24:
        keep -= 1
    names = max(room(keep), 12)
    cut_width = min(widest[2], max(8, names // 3))
    border_width = max(min(widest[1], names - cut_width), 4)
    for i, col in enumerate(columns[:keep]):
        if i == 1 or i == 2:
            t.add_column(col, justify="left", overflow="fold", width=border_width if i == 1 else cut_width)
        else:
            t.add_column(col, justify="right", width=fixed[i])
    if keep < len(columns):
        t.caption = f"{', '.join(columns[keep:])} left out to fit {console.width} columns (--format json has them)"
    for row in cells:
        t.add_row(*row[:keep])
    console.print(t)
    for r in rows:
        if "error" in r:
            console.print(Text(f"{fmt_size(r['input'])}: {r['error']}", style="red"))
    ran = [r for r in rows if "error" not in r]
    inside = ran[next(i for i, r in enumerate(ran) if r["input"] == lo):] if lo is not None else []
    inside = inside[:next(i for i, r in enumerate(inside) if r["input"] == hi) + 1] if inside else []
    tailed = [r["input"] for r in inside if r["cut"] is not None]
    if lo is None:
        console.print(Text("A tail is predicted at every swept size that runs.", style="bold red"))
    elif not tailed:
        span = f"at {fmt_size(lo)}" if lo == hi else f"from {fmt_size(lo)} to {fmt_size(hi)}"
        console.print(Text(f"No predicted tail {span} {unit(lo)} among the swept sizes.",
                           style="bold green"))
    else:  # clean sizes with tails between them: name both, a range would hide the tails
        clean = ", ".join(fmt_size(r["input"]) for r in inside if r["cut"] is None)
        console.print(Text(f"No predicted tail at {clean} {unit(lo)}; a tail at {', '.join(map(fmt_size, tailed))} "
                           f"{unit(lo)} between them.",
                           style="bold yellow"))


def render_fix(before: ModelReport, after: ModelReport, console: Console) -> None:
    """Before/after comparison of a fix."""
    t = Table(title=Text(after.analysis.target), box=box.SIMPLE_HEAD, title_justify="left")
    for col in ("", "before", "after"):
        t.add_column(col, justify="right" if col else "left")
    a, b = before.analysis, after.analysis

    def findings(r: ModelReport) -> str:  # every finding, as sweep counts them (comments are check's)
        made = r.result.all_findings
        codes = sorted({f.code for f in made})
        return ", ".join(f"{c} x{sum(1 for f in made if f.code == c)}" for c in codes) or "none"

    t.add_row("params", f"{a.params:,}", f"{b.params:,}")
    t.add_row("MACs", f"{a.macs:,}", f"{b.macs:,}")
    t.add_row("final r_min", final_rf(a, "r_min"), final_rf(b, "r_min"))
    t.add_row("final r_max", final_rf(a, "r_max"), final_rf(b, "r_max"))
    t.add_row("border", before.structure.border.name if before.structure.border else "-",
              after.structure.border.name if after.structure.border else "-")
    t.add_row("findings", findings(before), findings(after))
    console.print(t)


__all__ = ["render_fix", "render_model", "render_summary", "render_sweep", "render_text", "human", "num"]
