"""The command line.  `rflint TARGET --input 32` is short for `rflint check TARGET --input 32`.

Exit codes (ruff's contract): 0 no finding at or above --fail-on; 1 there are; 2 usage,
configuration or model-loading error (one line on stderr; --debug shows the traceback).
Nothing here imports torch at module level, so --help and --version answer instantly.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import warnings
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer
from typer.core import TyperCommand

from rflint._version import __version__
from rflint.errors import RflintError, first_sentence

app = typer.Typer(
    name="rflint",
    add_completion=False,
    no_args_is_help=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help=(
        "Static receptive-field linter for CNNs: finds layers that cannot see anything new at your input "
        "size (unproductive layers, predicted tails) before you spend a GPU-hour on training.\n\n"
        "`rflint TARGET --input 32` is short for `rflint check TARGET --input 32`. "
        "TARGET is path/to/file.py:name, package.module:name or zoo:name.\n\n"
        "Exit codes: 0 no finding at or above --fail-on (default: error), 1 findings at or above it, "
        "2 usage, config or model error."
    ),
)


class _Command(TyperCommand):
    """Usage lines as click and most tools write them: a required argument as TARGET, not the
    {TARGET} of newer typer versions (read as a set of choices)."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        return [p[1:-1] if p.startswith("{") and p.endswith("}") else p for p in super().collect_usage_pieces(ctx)]


class Format(str, Enum):
    text = "text"
    json = "json"
    sarif = "sarif"
    github = "github"
    markdown = "markdown"


class SweepFormat(str, Enum):  # a sweep is a table of sizes: no findings to annotate (SARIF, GitHub)
    text = "text"
    json = "json"


class FailOn(str, Enum):
    error = "error"
    warning = "warning"
    info = "info"
    never = "never"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rflint {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    pass


def _error(message: str) -> None:
    # one line whatever the message (a factory's RuntimeError from load_state_dict has hundreds)
    one_line = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
    typer.echo(f"rflint: error: {one_line}", err=True)


def _fail(message: str, debug: bool, err: BaseException | None = None) -> None:
    """The one-line error and exit code 2; with --debug, the traceback before it (the exit code
    stays 2: --debug shows more, it does not change the outcome)."""
    if debug and err is not None:
        import traceback

        traceback.print_exception(type(err), err, err.__traceback__, file=sys.stderr)
    _error(message)
    raise typer.Exit(2)


def _guarded(run, debug: bool):
    """Run a command body: user errors (and exceptions from the user's model code) become one line
    on stderr and exit code 2; --debug lets the traceback through."""
    try:
        return run()
    except RflintError as err:
        _fail(str(err), debug, err)
    except typer.Exit:
        raise
    except OSError as err:  # a file rflint cannot read or write (-o into a missing directory ...)
        text = f"{err.strerror}: {err.filename}" if err.strerror and err.filename else f"{type(err).__name__}: {err}"
        _fail(text, debug, err)
    except Exception as err:
        _fail(f"{type(err).__name__}: {err}" + ("" if debug else " (run with --debug for the traceback)"), debug, err)
    except SystemExit as err:  # the model's forward() called sys.exit (sweep, fix; check says so per target)
        from rflint.trace.loading import exit_call

        _fail(f"the model's code called {exit_call(err)} while rflint traced or ran it", debug, err)


@app.command()
def check(
    # described in the docstring: typer's argument table shows a Python type ("<list[str]>") next to it
    targets: List[str] = typer.Argument(None, metavar="TARGET", hidden=True),
    inputs: List[str] = typer.Option(
        None, "--input", "-i", metavar="SIZE",
        help="Input size: 32 (every spatial axis), 32x48 (H x W), 8x16x16 (D x H x W). Repeat to analyze several sizes. Needed except for zoo: targets, which default to the size `rflint zoo` lists, and models the config lists, which take its sizes.",
    ),
    input_shapes: List[str] = typer.Option(None, "--input-shape", metavar="N,C,H,W", help="Full input shape, e.g. 1,3,32,32 (sets the channels too). Repeat once per forward() argument for models with several inputs."),
    channels: Optional[int] = typer.Option(None, "--channels", "-c", min=1, metavar="N", help="Input channels (default: the first conv's in_channels)."),
    kwarg: List[str] = typer.Option(None, "--kwarg", "-k", metavar="KEY=VALUE", help="Keyword argument for the factory/class; VALUE is a Python literal. Repeatable."),
    fmt: Format = typer.Option(Format.text, "--format", "-f", help="Output format."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", metavar="FILE", help="Write the report to FILE instead of stdout (- is stdout)."),
    select: List[str] = typer.Option(None, "--select", metavar="CODES", help="Only these rule codes or prefixes, comma-separated or repeated (RF001,RF005 or RF00; ALL for every rule). Overrides the config."),
    ignore: List[str] = typer.Option(None, "--ignore", metavar="CODES", help="Skip these rule codes or prefixes, comma-separated or repeated. Added to the config's ignore."),
    fail_on: Optional[FailOn] = typer.Option(None, "--fail-on", help="Lowest severity that makes the exit code 1 (default: config, else error)."),
    min_tail_layers: Optional[int] = typer.Option(None, "--min-tail-layers", min=1, metavar="N", help="Parametric layers a tail needs to count (default 1)."),
    dominance_ratio: Optional[float] = typer.Option(None, "--dominance-ratio", min=1.0, metavar="RATIO", help="Depth ratio for RF007 (default 4)."),
    config: Optional[Path] = typer.Option(None, "--config", metavar="FILE", help="pyproject.toml to read [tool.rflint] from (default: the nearest one that has it)."),
    layers: bool = typer.Option(True, "--layers/--no-layers", help="Show the per-layer table in text output."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, metavar="N", help="Analyze targets (and sizes) in N parallel worker processes."),
    plot: Optional[Path] = typer.Option(None, "--plot", metavar="FILE.png|FILE.svg", help="Plot r_min/r_max per layer against the input size (needs matplotlib: pip install matplotlib)."),
    graph: Optional[Path] = typer.Option(None, "--graph", metavar="FILE.dot|FILE.svg|FILE.png", help="The architecture graph coloured by layer status (.svg/.png need Graphviz's dot)."),
    html: Optional[Path] = typer.Option(None, "--html", metavar="FILE", help="One self-contained HTML report: summary, findings, layers, plot and graph."),
    warn_unused_ignores: bool = typer.Option(False, "--warn-unused-ignores", help="Report each ignore comment (or code in one) that silenced no finding of this run, and exit 1 for it, as mypy's flag does (default: config, else off)."),
    debug: bool = typer.Option(False, "--debug", help="Print each error's traceback before its line (the exit code stays 2)."),
) -> None:
    """Analyze models and report unproductive layers, predicted tails and other RF findings.

    TARGET is path/to/file.py:name, package.module:name or zoo:name; several may be given. Without
    one, the models listed in [[tool.rflint.models]] of the nearest pyproject.toml with a
    [tool.rflint] table (or of --config's file) are checked.

    With several models or sizes, --plot and --graph write one file each, named FILE-<target>-<size>.EXT."""
    code = _guarded(lambda: _check(
        targets or [], inputs or [], input_shapes or [], channels, kwarg or [], fmt, output, select or None,
        ignore or [], fail_on, min_tail_layers, dominance_ratio, config, layers, jobs, debug, plot, graph, html,
        warn_unused_ignores,
    ), debug)
    raise typer.Exit(code)


def _check(targets, inputs, input_shapes, channels, kwarg, fmt, output, select, ignore, fail_on,
           min_tail_layers, dominance_ratio, config, layers, jobs, debug, plot=None, graph=None, html=None,
           warn_unused_ignores=False) -> int:
    from rflint.cli.run import (
        Pictures, TextStyle, exit_code, make_jobs, run_jobs, split_sizes_into_jobs, unmatched_declarations,
        unused_ignores,
    )
    from rflint.cli.values import check_targets, parse_kwargs

    check_targets(targets)
    cfg = _loaded_config(config)
    work = make_jobs(targets, inputs, input_shapes, channels, parse_kwargs(kwarg), cfg)
    output = _dash_is_stdout(output)
    _check_output(output, "report.txt" if fmt is Format.text else f"report.{fmt.value}",
                  targets=tuple(job.target for job in work))
    settings, rules = _rule_settings(cfg, select, ignore, min_tail_layers, dominance_ratio)
    console = _console(output) if fmt is Format.text else None
    style = None
    if console is not None:
        style = TextStyle(console.width, console.color_system, console.is_terminal, layers, console.encoding)
    several = len(work) > 1 or any(len(job.sizes) > 1 for job in work)  # errors then say whose
    if jobs > 1:
        work = split_sizes_into_jobs(work, jobs)
    pictures = None
    if plot or graph or html:
        _check_pictures(plot, graph, html, tuple(job.target for job in work))
        named = [(flag, path.resolve()) for flag, path in (("--plot", plot), ("--graph", graph), ("--html", html),
                                                            ("--output", output)) if path is not None]
        for i, (flag, path) in enumerate(named):  # one would overwrite the other, silently
            other = next((f for f, p in named[i + 1:] if p == path), None)
            if other is not None:
                raise RflintError(f"{flag} and {other} name the same file, {path.name}: give each its own")
        pictures = Pictures(str(plot) if plot else None, str(graph) if graph else None, bool(html))
    warn_unused_ignores = warn_unused_ignores or cfg.warn_unused_ignores
    outcomes = run_jobs(work, settings, rules, cfg.layers, style, jobs, debug, pictures, warn_unused_ignores)
    errors = _unique(error for outcome in outcomes for error in outcome.errors)
    if html:
        from rflint.report.html import html_page, write_html

        write_html(html_page([e for outcome in outcomes for e in outcome.html_entries],
                             [error.document() for error in errors]), html)
    skipped = _unique_skipped(item for outcome in outcomes for item in outcome.skipped)
    if errors and not (skipped or any(outcome.docs for outcome in outcomes)) and fmt is Format.text:
        _report_errors(errors, several, debug)  # nothing else to show: the errors alone, as for a usage error
        return 2
    docs = [doc for outcome in outcomes for doc in outcome.docs]
    for item in skipped:
        typer.echo(f"rflint: {item['message']}", err=True)
    for name in unmatched_declarations(outcomes, cfg.layers):
        typer.echo(f"rflint: [tool.rflint.layers] {name!r} matches no class in the models checked (a typo in the path?)", err=True)
    if docs or fmt is not Format.text:  # a machine format is a valid document even with no model in it
        _emit(outcomes, docs, fmt, output, console, [error.document() for error in errors], skipped)
    from rflint.wording import shown_path

    unused = unused_ignores(outcomes) if warn_unused_ignores else []
    for file, line, code in unused:
        comment = "the bare ignore comment" if code == "*" else f"ignore[{code}]"
        typer.echo(f"rflint: {shown_path(file)}:{line}: unused ignore: {comment} silenced no finding of this run", err=True)
    _report_errors(errors, several, debug)
    if errors:
        return 2
    gate = fail_on.value if fail_on else cfg.fail_on
    # as mypy's --warn-unused-ignores: a comment that silences nothing fails the run (unless it never fails)
    return max(exit_code(docs, gate), 1 if unused and gate != "never" else 0)


def _unique(errors) -> list:
    """Each error once: a model that does not load fails in every chunk of sizes --jobs gave it."""
    seen: set = set()
    unique = []
    for error in errors:
        key = (error.target, repr(error.kwargs), tuple(error.input or ()), error.message)
        if key not in seen:
            seen.add(key)
            unique.append(error)
    return unique


def _unique_skipped(items) -> list[dict]:
    """Each model with nothing to lint once (--jobs splits a target's sizes into chunks)."""
    unique: dict[tuple[str, str], dict] = {}
    for item in items:
        unique.setdefault((item["target"], item["message"]), item)
    return list(unique.values())


def _report_errors(errors, several: bool, debug: bool) -> None:
    """One line per target or size that failed, after the reports of the others (so they end the
    terminal's output); under --jobs with --debug, the worker's traceback first."""
    for error in errors:
        if debug and error.traceback:
            typer.echo(error.traceback, err=True)
        _error(error.line(several, debug))


def _rule_settings(cfg, select=None, ignore=(), min_tail_layers=None, dominance_ratio=None):
    """The rule settings and the rules to run: [tool.rflint], each option given overriding it
    (check's --select, --ignore (added to the config's), --min-tail-layers, --dominance-ratio).
    sweep and fix read the config alone, so they judge tails as check does."""
    from rflint.rules import Settings, known_codes, select_rules

    settings = Settings(min_tail_layers=min_tail_layers or cfg.min_tail_layers,
                        dominance_ratio=dominance_ratio or cfg.dominance_ratio)
    for key, codes in (("select", cfg.select or []), ("ignore", cfg.ignore)):  # a typo there: say where
        try:
            known_codes(codes)
        except RflintError as err:
            raise RflintError(f"{cfg.path} [tool.rflint] {key}: {err}") from None
    try:
        return settings, select_rules(select or cfg.select, list(cfg.ignore) + list(ignore))
    except RflintError as err:  # say which of the codes came from the config, and from which file
        parts = [f"{key} = [{', '.join(map(json.dumps, codes))}]" for key, codes in (("select", None if select else cfg.select), ("ignore", cfg.ignore))
                 if codes]
        if cfg.path is None or not parts:
            raise
        raise RflintError(f"{err} ({' and '.join(parts)} from {cfg.path} [tool.rflint])") from None


def _loaded_config(config: Optional[Path]):
    """[tool.rflint] (config.load_config) with every [[tool.rflint.models]] entry's codes, sizes
    and shapes checked, whichever models this run checks: a typo in an entry other than the one
    run must fail now, not on the CI run that first checks that model (a per-model ignore with a
    typo would silently ignore nothing; a model may ignore every rule: an exemption, not a gate
    turned off).  The one place these are checked: check, sweep and fix read the config here."""
    from rflint.cli.values import parse_shape, parse_size
    from rflint.config import load_config
    from rflint.rules import known_codes

    cfg = load_config(config)
    for model in cfg.models:
        try:
            known_codes(model.ignore)
            for size in model.inputs:
                parse_size(size)
            for shape in model.input_shapes:
                parse_shape(shape, "input-shape")
        except RflintError as err:
            raise RflintError(f"{cfg.path} [[tool.rflint.models]] target {model.label or model.target}: {err}") from None
    return cfg


def _dash_is_stdout(output: Optional[Path]) -> Optional[Path]:
    """-o - is standard output, as for most command-line tools (not a file named "-")."""
    return None if output is not None and str(output) == "-" else output


def _check_output(output: Optional[Path], example: str, flag: str = "-o", targets: tuple[str, ...] = ()) -> None:
    """-o (or a picture's file) that cannot be written: said before the work, not after minutes of
    it (and its errors).  Nor may it be the file of a model the run analyses (``targets``): `-o
    models.py` replaced the model's source by its report."""
    if output is None:
        return
    from rflint.cli.run import model_file

    for target in targets:
        path = model_file(target)  # a module target's too (pkg.a:build is pkg/a.py)
        if path is not None and output.exists() and os.path.samefile(path, output):
            raise RflintError(f"{flag} {output} is the file of {target}: the report would replace the model's "
                              f"code; give another file, e.g. {example}")
    if output.is_dir():
        raise RflintError(f"{flag} {output}: is a directory; give a file name, e.g. {output / example}")
    if not output.parent.is_dir():
        raise RflintError(f"{flag} {output}: no such directory {output.parent}")
    import tempfile

    try:  # a file of our own in that directory (opening OUTPUT itself would empty it before the work)
        with tempfile.TemporaryFile(dir=output.parent):
            pass
    except OSError as err:
        raise RflintError(f"{flag} {output}: cannot write in {output.parent} ({err.strerror or err})") from None
    if output.exists() and not os.access(output, os.W_OK):
        raise RflintError(f"{flag} {output}: not writable (permission denied)")


def _check_pictures(plot: Optional[Path], graph: Optional[Path], html: Optional[Path], targets: tuple[str, ...] = ()) -> None:
    """Fail before any analysis runs, not after minutes of it."""
    for flag, path, example in (("--plot", plot, "rf.png"), ("--graph", graph, "graph.svg"), ("--html", html, "report.html")):
        _check_output(path, example, flag, targets)
    if plot is not None and plot.suffix.lower() not in (".png", ".svg"):
        raise RflintError(f"--plot {plot}: use a .png or .svg file name")
    if graph is not None and graph.suffix.lower() not in (".dot", ".gv", ".svg", ".png"):
        raise RflintError(f"--graph {graph}: use a .dot, .svg or .png file name")
    if plot is not None:
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:
            raise RflintError("--plot needs matplotlib: pip install matplotlib")
    if graph is not None and graph.suffix.lower() in (".svg", ".png"):
        import shutil

        if shutil.which("dot") is None:
            raise RflintError(f"--graph {graph.name} needs Graphviz's `dot` (apt-get install graphviz); write FILE.dot instead")


def _console(output: Optional[Path]):
    """The console the text report goes to.  With -o, a buffer written to the file at the end
    (:func:`_finish`): opening the file here would empty it before the analysis, also when the
    analysis then fails (or reads that very file: -o model.py)."""
    from rich.console import Console

    from rflint.cli.run import text_buffer

    if output is not None:
        return Console(file=text_buffer("utf-8"), width=160, color_system=None, emoji=False)
    console = _stdout_console(emoji=False)
    if not console.is_terminal:  # CI logs and pipes: don't squeeze the table into 80 columns
        # (unless COLUMNS says how wide: rich reads it on a terminal, and a user who sets it on a
        # pipe means it; main() dropped a COLUMNS that is no number)
        wanted = int(os.environ.get("COLUMNS") or 0)
        console = _stdout_console(width=wanted if wanted > 0 else 140, emoji=False)
    return console


def _finish(console, output: Optional[Path]) -> None:
    if output is not None:
        output.write_text(console.file.getvalue(), encoding="utf-8")


def _write_stdout(text: str) -> None:
    """A report on stdout.  Nothing when stdout is closed (>&-); a reader that stops early
    (| head) is not an error of the run, so the exit code stays the findings'."""
    if sys.stdout is None:
        return
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        _stdout_to_devnull()


def _stdout_console(**options):
    """A rich Console on stdout: a reader that stops early (| head) ends the output, not the run
    (rich exits 1 then: the exit code must stay the findings', and fix's model guard read it as
    the model's own sys.exit(1), exit code 2)."""
    from rich.console import Console

    console = Console(**options)
    console.on_broken_pipe = _stdout_to_devnull
    return console


def _stdout_to_devnull() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)  # Python flushes stdout again at exit: let that go nowhere
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _emit(outcomes, docs, fmt: Format, output: Optional[Path], console, errors: list[dict],
          skipped: list[dict]) -> None:
    if fmt is Format.text:
        from rflint.report.text import render_summary

        if console.file is None:  # stdout closed
            return
        try:  # the sections were rendered in the jobs: written as they are (rich's own prints
            # handle a broken pipe with the console's on_broken_pipe)
            for text in (t for outcome in outcomes for t in outcome.texts):
                console.file.write(text)
        except BrokenPipeError:
            _stdout_to_devnull()
        render_summary(docs, console, len(errors))
        _finish(console, output)
        _said_where(docs, output, len(errors))
        return
    from rflint.report.formats import render

    text = render(fmt.value, docs, errors, skipped)
    text += "" if text.endswith("\n") else "\n"
    if output is not None:
        output.write_text(text, encoding="utf-8")
        _said_where(docs, output, len(errors))
    else:
        _write_stdout(text)


def _said_where(docs, output: Optional[Path], failed: int) -> None:
    """With the report in a file, its summary line on stderr: a CI gate step that writes SARIF for
    a later upload step failed with exit code 1 and not a word in its own log."""
    if output is not None:
        from rflint.report.text import summary_line

        typer.echo(f"rflint: {summary_line(docs, failed)}; report written to {output}", err=True)


@app.command("sweep", cls=_Command)
def sweep_cmd(
    target: str = typer.Argument(..., metavar="TARGET", hidden=True),  # described in the docstring
    sizes: Optional[str] = typer.Option(None, "--sizes", metavar="S,S,...", help="Comma-separated input sizes, e.g. 32,64,128,224 (or 32x48,64x96)."),
    start: Optional[int] = typer.Option(None, "--from", min=1, metavar="SIZE", help="Smallest size of a geometric range (with --to)."),
    stop: Optional[int] = typer.Option(None, "--to", min=1, metavar="SIZE", help="Largest size of a geometric range (with --from)."),
    steps: Optional[int] = typer.Option(None, "--steps", min=2, metavar="N", help="Number of sizes from --from to --to, both included, log-spaced (default 10)."),
    channels: Optional[int] = typer.Option(None, "--channels", "-c", min=1, metavar="N", help="Input channels (default: the first conv's in_channels)."),
    input_shapes: List[str] = typer.Option(None, "--input-shape", metavar="N,C,H,W", help="For a model with several inputs: one full shape per forward() argument. The first input's spatial size is swept; other image inputs are scaled with it."),
    kwarg: List[str] = typer.Option(None, "--kwarg", "-k", metavar="KEY=VALUE", help="Keyword argument for the factory/class; VALUE is a Python literal. Repeatable."),
    fmt: SweepFormat = typer.Option(SweepFormat.text, "--format", "-f", help="Output format."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", metavar="FILE", help="Write to FILE instead of stdout (- is stdout)."),
    config: Optional[Path] = typer.Option(None, "--config", metavar="FILE", help="pyproject.toml with [tool.rflint] (default: the nearest one that has it): rule options, and a listed model's kwargs, channels, shapes and directory."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, metavar="N", help="Spread the sizes over N worker processes."),
    debug: bool = typer.Option(False, "--debug", help="Print each error's traceback before its line (the exit code stays 2)."),
) -> None:
    """Analyze one model at many input sizes: border, tail and findings per size.

    TARGET is path/to/file.py:name, package.module:name or zoo:name.

    The size range without a predicted tail comes last. The model is traced once (per worker).

    A size the model cannot run at is listed with the reason. Exit code 0, or 2 on an error (also when no size runs)."""
    _guarded(lambda: _sweep(target, sizes, start, stop, steps, channels, kwarg or [], fmt, output, config, jobs,
                            input_shapes or []), debug)


def _sweep(target, sizes, start, stop, steps, channels, kwarg, fmt, output, config, jobs, input_shapes=()) -> None:
    from rflint.cli.values import check_targets, parse_shapes, parse_size
    from rflint.report.sweep import geometric_sizes

    check_targets([target])
    if sizes and (start or stop):
        raise RflintError("give either --sizes or --from/--to, not both")
    if steps is not None and not (start and stop):
        raise RflintError("--steps goes with --from and --to")
    if sizes:
        if any(not s.strip() for s in sizes.rstrip(",").split(",")):
            raise RflintError(f"--sizes {sizes}: an empty size between commas")
        size_list = [parse_size(s) for s in sizes.split(",") if s.strip()]
    elif start and stop:
        if start > stop:
            raise RflintError(f"--from {start} is larger than --to {stop}")
        size_list = geometric_sizes(start, stop, steps or 10)
    elif start or stop:
        raise RflintError(f"{'--from needs --to' if start else '--to needs --from'}: a range has both ends, "
                          "e.g. --from 16 --to 512")
    else:
        raise RflintError("give the sizes to sweep: --sizes 32,64,224 or --from 16 --to 512")
    from rflint.cli.run import run_sweep
    from rflint.cli.values import parse_kwargs

    cfg = _loaded_config(config)
    output = _dash_is_stdout(output)
    _check_output(output, "sweep.txt" if fmt is SweepFormat.text else "sweep.json", targets=(target,))
    # each once, smallest first: by the longest side, then side by side (64x128 before 96x128 before
    # 128x128; by the text, "128x128" came first and the clean range ran "from 128x128 to 96x128")
    size_list = sorted(set(size_list), key=lambda s: (s, (s,)) if isinstance(s, int) else (max(s), tuple(s)))
    shapes, channels = parse_shapes(list(input_shapes), channels)
    settings, rules = _rule_settings(cfg)
    from rflint.report.humanize import with_kwargs
    from rflint.report.model import plain_kwargs

    kwargs = parse_kwargs(kwarg)
    try:
        kwargs, channels, shapes, root, _ = _as_configured(cfg, target, kwargs, channels, shapes)
        with _exit_is_an_error(target):
            rows = run_sweep(target, size_list, channels, kwargs, settings, rules, cfg.layers, jobs, shapes, root)
    except RflintError as err:  # the model did not load: a JSON reader still gets a document saying why
        from rflint.engine.prepare import NothingToLint
        from rflint.report.formats import error_text

        nothing = isinstance(err, NothingToLint)  # no error, as in check: said, and exit code 0
        # the model named with its kwargs, as check names it ("kw.py:build (fail=True) raised ...")
        message = error_text({"target": target, "kwargs": plain_kwargs(kwargs), "input": None, "message": str(err)},
                             several=False)
        if fmt is SweepFormat.json:
            _write_sweep_json({"version": 1, "target": target, "kwargs": plain_kwargs(kwargs), "sizes": [],
                               "no_tail_from": None, "no_tail_to": None,
                               "skipped" if nothing else "error": message}, output)
        if not nothing:
            raise RflintError(message) from err
        typer.echo(f"rflint: {message}", err=True)
        return
    from rflint.report.sweep import clean_range

    lo, hi = clean_range(rows)
    if fmt is SweepFormat.json:  # also when no size runs: a CI step reading the file finds every reason
        _write_sweep_json({"version": 1, "target": target, "kwargs": plain_kwargs(kwargs), "sizes": rows,
                           "no_tail_from": lo, "no_tail_to": hi}, output)
    if all("error" in r for r in rows):  # nothing ran (wrong channels, or no size fits the model)
        first = rows[0]["error"]
        raise RflintError(first if len(rows) == 1 else f"none of the {len(rows)} swept sizes runs; the first: {first}")
    if fmt is SweepFormat.json:
        return
    from rflint.report.text import render_sweep

    console = _console(output)
    render_sweep(with_kwargs(target, kwargs), rows, lo, hi, console)  # a broken pipe: the console's on_broken_pipe
    _finish(console, output)


@contextlib.contextmanager
def _exit_is_an_error(target: str):
    """sys.exit() or os._exit() in the model's code (forward(), while traced) is the model's error,
    named as check names it, not the end of the run (sweep, fix)."""
    try:
        yield
    except SystemExit as err:
        from rflint.trace.loading import exited_while_run

        raise RflintError(exited_while_run(target, err)) from None


def _as_configured(cfg, target: str, kwargs: dict, channels, shapes):
    """sweep's and fix's model as check builds it when the config lists it: the entry's kwargs
    under the ones given, its channels and input shapes where none are given, its directory to
    import from (without them a target fails on the factory's missing arguments, or on an import
    of the project's package, where check runs), and the entry itself (None: not listed)."""
    from rflint.cli.run import configured_entries
    from rflint.cli.values import parse_shape

    entries = configured_entries(cfg, target, kwargs)
    if not entries:
        return kwargs, channels, shapes, None, None
    m = entries[0]
    if not shapes and m.input_shapes:
        shapes = [parse_shape(s, "input-shape") for s in m.input_shapes]
    channels = channels or m.channels or (shapes[0][1] if shapes and len(shapes[0]) > 1 else None)
    return {**m.kwargs, **kwargs}, channels, shapes, m.root, m


def _configured_size(cfg, target: str, entry):
    """The config entry's size for fix, when it lists exactly one (with several, fix must be told)."""
    from rflint.cli.values import parse_size

    if entry is not None and len(entry.inputs) == 1:
        return parse_size(entry.inputs[0])
    if entry is not None and entry.inputs:
        raise RflintError(f"{cfg.path} lists {target} at {len(entry.inputs)} sizes "
                          f"({', '.join(entry.inputs)}): give the one to fix with --input")
    return None


def _write_sweep_json(doc: dict, output) -> None:
    """As check's JSON: the rflint version next to the schema's, one line per size."""
    from rflint.report.formats import dumps

    doc = {"version": doc.pop("version"), "rflint": __version__, **doc}
    text = dumps(doc, depth=2) + "\n"
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        _write_stdout(text)


@app.command("fix", cls=_Command)
def fix_cmd(
    target: str = typer.Argument(..., metavar="TARGET", hidden=True),  # described in the docstring
    inputs: List[str] = typer.Option(None, "--input", "-i", metavar="SIZE", help="Input size, e.g. 32 or 32x48 (zoo: targets default to the size `rflint zoo` lists; a model the config lists at one size, to that size)."),
    truncate: bool = typer.Option(False, "--truncate", help="Cut the predicted tail: keep up to the cut, then global average pooling + a new Linear."),
    remove_stem: bool = typer.Option(False, "--remove-stem", help="Make the stem downsamplings RF003 proposes stride 1 / identity."),
    layers: Optional[str] = typer.Option(None, "--layers", metavar="A,B", help="With --remove-stem: exactly these layers (e.g. conv1,maxpool)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", metavar="FILE", help="Save the fixed model here (torch.save; load with torch.load(path, weights_only=False))."),
    print_code: bool = typer.Option(False, "--print-code", help="Print the fixed model's generated forward() code."),
    channels: Optional[int] = typer.Option(None, "--channels", "-c", min=1, metavar="N", help="Input channels (default: the first conv's in_channels)."),
    input_shapes: List[str] = typer.Option(None, "--input-shape", metavar="N,C,H,W", help="Full input shape instead of --input; repeat once per forward() argument for a model with several inputs."),
    kwarg: List[str] = typer.Option(None, "--kwarg", "-k", metavar="KEY=VALUE", help="Keyword argument for the factory/class; VALUE is a Python literal. Repeatable."),
    config: Optional[Path] = typer.Option(None, "--config", metavar="FILE", help="pyproject.toml to read [tool.rflint] from (default: the nearest one that has it), as check does."),
    debug: bool = typer.Option(False, "--debug", help="Print each error's traceback before its line (the exit code stays 2)."),
) -> None:
    """Build the fixed model (truncated, or without stem downsampling) and compare it with the original.

    TARGET is path/to/file.py:name, package.module:name or zoo:name.

    --output saves it. Kept layers keep their weights; a new classifier is freshly initialised, so retrain or fine-tune the result.

    The tail and the findings follow [tool.rflint] (select, ignore, min-tail-layers), as in check."""
    _guarded(lambda: _fix(target, inputs or [], truncate, remove_stem, layers, output, print_code, channels,
                          kwarg or [], input_shapes or [], config), debug)


def _fix(target, inputs, truncate, remove_stem, layers, output, print_code, channels, kwarg, input_shapes=(),
         config=None) -> None:
    from rflint.cli.values import check_targets, parse_shapes, parse_size

    check_targets([target])
    if layers is not None and not remove_stem:  # (before "choose one fix": --layers says which one was meant)
        raise RflintError(f"--layers goes with --remove-stem: rflint fix {target} --remove-stem --layers "
                          f"{layers.strip(' ,') or 'conv1,maxpool'}")
    if truncate == remove_stem:
        raise RflintError("choose one fix: --truncate or --remove-stem")
    if layers is not None and not layers.strip(" ,"):  # not RF003's proposal in its place, silently
        raise RflintError("--layers names no layer; give layer names (--layers conv1,maxpool) or leave it out "
                          "for the layers RF003 proposes")
    if len(inputs) > 1:
        raise RflintError("fix takes one --input size")
    shapes, channels = parse_shapes(list(input_shapes), channels)
    if shapes and inputs:
        raise RflintError("give either --input or --input-shape, not both")
    if output is not None and str(output) == "-":
        raise RflintError("-o -: the fixed model is a binary file (torch.save), not text; give a file name, e.g. fixed.pt")
    _check_output(output, "fixed.pt", targets=(target,))
    size = parse_size(inputs[0]) if inputs else None
    import torch

    from rflint import fixes
    from rflint.engine import analyze
    from rflint.engine.costs import module_params
    from rflint.report import build_report
    from rflint.report.formats import error_text
    from rflint.report.text import render_fix
    from rflint.cli.values import parse_kwargs
    from rflint.trace.tracing import VALUE_AWARE

    from rflint.trace.loading import imports_from

    cfg = _loaded_config(config)
    settings, rules = _rule_settings(cfg)
    kwargs = parse_kwargs(kwarg)
    given_shapes = bool(shapes)
    kwargs, channels, shapes, root, entry = _as_configured(cfg, target, kwargs, channels, shapes)
    if size is None and not given_shapes:  # the config's one size for this model, as check takes it
        size = _configured_size(cfg, target, entry)
    if size is not None and shapes:  # the entry's shapes, the first input at this size (as check does)
        from rflint.engine.prepare import scaled_shapes

        spatial = (size,) * (len(shapes[0]) - 2) if isinstance(size, int) else tuple(size)
        shapes, size = list(scaled_shapes(shapes, spatial)), None
    from rflint.cli.isolation import model_code_guarded

    # the model's print()s: not into the comparison or the code; nor may it end the run (isolation.py)
    with _exit_is_an_error(target), contextlib.redirect_stdout(sys.stderr), model_code_guarded(), imports_from(root):
        try:
            before = build_report(analyze(target, size, channels, kwargs, input_shapes=shapes), settings, rules)
        except RflintError as err:  # whose error it is, as check says it ("net.py:Net: torch.fx cannot trace ...")
            raise RflintError(error_text({"target": target, "input": None, "message": str(err)})) from err
        size = before.analysis.input_size
        build_size = None if shapes else size  # the shapes say it all (a waveform for a 2-D net has no 2-D size)
        if truncate:
            fixed = fixes.truncate(target, build_size, channels, kwargs, settings, input_shapes=shapes)
            what = "truncated"
        else:
            names = [n.strip() for n in layers.split(",") if n.strip()] if layers else None
            fixed = fixes.remove_stem(target, build_size, names, channels, kwargs, settings, input_shapes=shapes)
            what = "stem downsampling removed"
        try:
            after = build_report(analyze(fixed, build_size, before.analysis.channels, input_shapes=shapes), settings, rules)
        except RflintError as err:  # the fix broke the model (a join of a changed and an unchanged branch)
            change = "truncated" if truncate else f"with the downsampling of {', '.join(names)} removed" if names \
                else "with its stem downsampling removed"
            raise fixes.fix_broke(f"{before.analysis.target} {change}", size, err) from None
    from rflint.report.humanize import with_kwargs

    after.analysis.target = f"{with_kwargs(before.analysis.target, kwargs)} ({what})"  # named as check names it
    console = _stdout_console(emoji=False)
    for warning in before.analysis.warnings:  # a value-dependent branch: the fixed graph keeps one path
        console.print(f"note: {warning}", markup=False, highlight=False, style="yellow")
    if before.analysis.trace_method == VALUE_AWARE:
        console.print("note: the fixed model is built from that trace, so it has only that branch of forward()",
                      markup=False, highlight=False, style="yellow")
    if before.analysis.traced is not None and before.analysis.traced.specialized:
        # a trace that answered forward()'s shape questions (zeros(n, c, h, w), len(x.shape)) holds
        # their answers as constants: the fixed model runs at this input shape only
        shape = ",".join(map(str, before.analysis.input_shapes[0]))
        console.print(f"note: forward() asks about shapes, so the fixed model is built from a trace made for input "
                      f"shape {shape} and runs at that shape (batch size included) only",
                      markup=False, highlight=False, style="yellow")
    root = before.analysis.prepared.loaded.module if before.analysis.prepared else None
    if root is not None and (root._forward_pre_hooks or root._forward_hooks):  # not in the graph: not in the fix
        console.print("note: the fixed model does not have the hooks registered on the model (an input-normalising "
                      "pre-hook): register them on it again", markup=False, highlight=False, style="yellow")
    dependent = fixes.training_dependent(root) if root is not None else []
    if dependent:
        console.print(f"note: forward() of {', '.join(dependent[:3])}{' ...' if len(dependent) > 3 else ''} reads "
                      "self.training (functional dropout, drop-path, an `if self.training:` branch): the fixed "
                      "model is traced in eval mode and keeps that path in training too; nn.Dropout modules still "
                      "follow the mode", markup=False, highlight=False, style="yellow")
    # fx's GraphModule keeps only what the trace calls or reads (modules, and bare parameters such
    # as a cls_token through get_attr): the rest of "params" is not a change the fix made
    uncalled = before.analysis.params - module_params(before.analysis.traced.gm)
    if uncalled > 0:
        console.print(f"note: the fixed model leaves out {uncalled:,} params of modules forward() never calls",
                      markup=False, highlight=False, style="yellow")
    unused = [node.target for node in fixed.graph.nodes  # (*args, **kwargs: never a dropped input)
              if node.op == "placeholder" and not node.users and not str(node.target).startswith("*")]
    if unused:  # a second input joined after the cut: its branch went with the tail
        them = "it" if len(unused) == 1 else "them"
        console.print(f"note: the fixed model still takes {', '.join(map(str, unused))} but no longer uses {them} "
                      f"(the branch that read {them} joined after the cut)", markup=False, highlight=False, style="yellow")
    render_fix(before, after, console)
    if output is None:  # (before the code: --print-code's output ends with the code, to be pasted)
        console.print("not saved: give -o FILE to save the fixed model", markup=False, highlight=False, style="dim")
    if print_code:  # never wrapped at the terminal's width: the code must stay valid Python
        console.print(fixed.code, markup=False, highlight=False, soft_wrap=True)
    if output is not None:
        import os

        partial = output.with_name(output.name + ".partial")
        try:  # into a file of our own first: a model that cannot be pickled leaves no broken OUTPUT
            with open(partial, "wb") as f:  # an OSError in words (torch.save on a path raises RuntimeError)
                try:
                    torch.save(fixed, f)
                except Exception as err:  # noqa: BLE001 - pickling fails in many ways; each gets one line
                    raise _unsaveable(fixed, err) from err
            os.replace(partial, output)
        finally:
            if partial.exists():
                partial.unlink()
        console.print(f"saved to {output} (load with torch.load({str(output)!r}, weights_only=False)); "
                      "retrain or fine-tune it before use", markup=False)



def _unsaveable(fixed, err: Exception) -> RflintError:
    """Why torch.save could not pickle the fixed model, in one line, with what to do instead."""
    import torch
    from torch.nn.utils import parametrize

    in_python = "build it with rflint.truncate / rflint.remove_stem in Python"
    scripted = [name for name, m in fixed.named_modules() if isinstance(m, torch.jit.ScriptModule)]
    if scripted:
        return RflintError(f"cannot save the fixed model: torch.save cannot pickle its TorchScript submodule "
                           f"{scripted[0]} inside a GraphModule; {in_python}, or script the whole fixed model yourself")
    parametrized = [name for name, m in fixed.named_modules() if parametrize.is_parametrized(m)]
    if parametrized:  # weight_norm / spectral_norm of torch.nn.utils.parametrizations (a TCN's convs)
        return RflintError(f"cannot save the fixed model: torch.save cannot pickle modules with parametrizations "
                           f"(weight_norm, spectral_norm, ...) such as {parametrized[0]}; {in_python} and save "
                           "its state_dict()")
    first = first_sentence(err)
    return RflintError(f"cannot save the fixed model: torch.save failed ({type(err).__name__}: {first}); "
                       f"{in_python} and save its state_dict()")


@app.command("rules")
def rules_list() -> None:
    """List every rule with its code, name, default severity and summary."""
    from rich.table import Table

    from rflint.ruledocs import load_all

    table = Table(show_edge=False)
    for col in ("code", "name", "severity", "summary"):
        table.add_column(col, overflow="fold")
    for doc in load_all().values():
        table.add_row(doc.code, doc.name, doc.severity, doc.summary)
    _guarded(lambda: _stdout_console().print(table), False)  # (stdout unwritable: one line, exit 2)


@app.command("rule", cls=_Command)
def rule_show(code: str = typer.Argument(..., metavar="CODE", hidden=True)) -> None:
    """Print a rule's documentation.

    CODE is a rule's code or name, e.g. RF002 or predicted-tail (`rflint rules` lists them)."""
    from rich.markdown import Markdown

    from rflint.ruledocs import load

    try:
        doc = load(code)
    except KeyError as err:
        _fail(str(err.args[0]), False)
        return
    _guarded(lambda: _stdout_console().print(Markdown(doc.text)), False)


@app.command("zoo")
def zoo_list() -> None:
    """List the built-in reference architectures (use them as zoo:NAME)."""
    from rich.table import Table

    from rflint.zoo import ZOO

    table = Table(show_edge=False)
    for col in ("name", "input", "channels", "description"):
        table.add_column(col, overflow="fold")
    for entry in ZOO.values():
        table.add_row(f"zoo:{entry.name}", "x".join(map(str, entry.input_size)), str(entry.channels), entry.description)
    _guarded(lambda: _stdout_console().print(table), False)


COMMANDS = {"check", "rules", "rule", "zoo", "sweep", "fix"}


def main(argv: list[str] | None = None) -> None:
    """Entry point: inserts the implicit `check` so `rflint TARGET ...` works like ruff's `ruff check`.

    Usage errors (an unknown option, --format xml, --channels abc) are one line on stderr with exit
    code 2, like every other bad input, instead of click's boxed usage screen."""
    # The click typer raises from: typer 0.29 carries its own (typer._click). A click installed
    # beside it (black, flask, dask... depend on one) is another module whose UsageError typer
    # never raises, and a usage error went out as exit 1 instead of 2.
    try:
        from typer import _click as click  # type: ignore[no-redef]
    except ImportError:
        import click

    from rflint.cli.isolation import standard_descriptors_open
    from rflint.cli.run import Terminated

    standard_descriptors_open()
    _unencodable_replaced()
    # torch's CPU wheels do not depend on NumPy, and where it is missing the first import of
    # torch.fx warns "Failed to initialize NumPy: No module named 'numpy'" (two lines on stderr, at
    # the top of every blocked commit). rflint never hands a tensor to NumPy; a model that does
    # imports numpy itself and gets its own ImportError. (Workers are forked: they inherit this.)
    warnings.filterwarnings("ignore", message="Failed to initialize NumPy", category=UserWarning)
    for name in ("COLUMNS", "LINES"):  # rich reads them with str.isdigit, which "²" passes and int() refuses
        value = os.environ.get(name)
        if value is not None and not (value.isascii() and value.isdigit()):
            del os.environ[name]
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0].isidentifier() and args[0] not in COMMANDS:
        # every TARGET has a colon: a bare word is a mistyped command, said before anything loads
        # (a path without its ":name", "net.py", gets the TARGET message)
        import difflib

        close = difflib.get_close_matches(args[0], sorted(COMMANDS), n=1, cutoff=0.6)
        hint = f"did you mean `rflint {close[0]}`?" if close else "see `rflint --help`"
        typer.echo(f"rflint: error: unknown command {args[0]!r} ({hint}); a TARGET is "
                   "path/to/file.py:name, package.module:name or zoo:name", err=True)
        sys.exit(2)
    if not args or (args[0] not in COMMANDS and args[0] not in ("-h", "--help", "--version")):
        args.insert(0, "check")
    try:
        code = app(args=args, prog_name="rflint", standalone_mode=False)
    except click.exceptions.UsageError as err:
        hint = f" (see `rflint {err.ctx.info_name} --help`)" if err.ctx is not None and err.ctx.info_name != "rflint" else ""
        # typer checks choices and numbers with pydantic, whose messages start "Value error, "
        message = " ".join(err.format_message().split()).replace(": Value error, ", ": ")
        if isinstance(err, click.exceptions.NoSuchOption) and err.ctx is not None:
            message = _no_such_option(err.option_name, err.ctx.command)
        typer.echo(f"rflint: error: {message}{hint}", err=True)
        sys.exit(2)
    except (getattr(click.exceptions, "Abort", typer.Abort), typer.Abort, KeyboardInterrupt):
        code = 130
    except Terminated as stop:  # SIGTERM or SIGHUP while --jobs workers ran: they are stopped
        _exit_now(128 + stop.signum)
    if code == 130:  # typer turns a KeyboardInterrupt inside a command into a silent exit code 130
        typer.echo("rflint: aborted", err=True)
        _exit_now(130)
    code = code if isinstance(code, int) else 0
    if argv is None:
        # rflint's own process (the console script, python -m rflint): the exit code is the gate's.
        # Leaving through the interpreter's shutdown let the model's code have the last word: an
        # atexit handler of a model file (`atexit.register(lambda: os._exit(0))`) made a run with a
        # predicted tail exit 0, and a thread it left running (a prefetcher, a watchdog) kept the
        # process, and the CI step, alive after the report.  Everything is written and flushed.
        _exit_now(code)
    sys.exit(code)


def _no_such_option(name: str, command) -> str:
    """The unknown option with the options it may have meant.  click compares whole names, "--"
    included, so that --bogus got "(Possible options: --jobs)"; here the names without their dashes
    are compared, and only a close one is offered."""
    import difflib

    known = {opt.lstrip("-"): opt for param in command.params if not getattr(param, "hidden", False)
             for opt in (*param.opts, *param.secondary_opts) if opt.startswith("--")}
    typed = name.lstrip("-")
    # a name cut short or run on (--out, --min-tail, --fail-on-warning), else a close spelling
    close = [bare for bare in known if typed and (bare.startswith(typed) or typed.startswith(bare))]
    close = close or difflib.get_close_matches(typed, list(known), n=2, cutoff=0.75)
    return f"No such option: {name}" + (f" (did you mean {' or '.join(known[c] for c in close[:2])}?)" if close else "")


def _unencodable_replaced() -> None:
    """A character the terminal's or pipe's encoding cannot hold (a path with "ü" on an ASCII
    locale, a Chinese directory name on a Windows runner's cp1252 pipe) is written escaped
    (\\xfc) instead of ending the run with UnicodeEncodeError: the report, and the exit code of
    its findings, must not be lost to a file name.  JSON and SARIF escape such characters anyway."""
    for stream in (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("_", "-")
        if encoding not in ("utf-8", "utf8") and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a detached or closed stream: nothing to write to anyway
                pass


def _exit_now(code: int) -> None:
    """Leave without the interpreter's exit handlers: an interrupted run, and (main()) every run of
    rflint's own process, whose exit code no model's handler may change.  concurrent.futures' handler
    wakes and joins the pool's manager thread, which races with that thread closing its pipes once
    the workers were killed: a stray "OSError: Bad file descriptor" traceback was seen under load
    (CPython's pool shutdown races, gh-132969 and gh-125451, fixed in later versions).  Nothing of
    an aborted run is left to write (-o and the pictures are written at the end of a run)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # closed, or None
            pass
    os._exit(code)
