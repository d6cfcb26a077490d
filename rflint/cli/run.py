"""What `rflint check` does: resolve the jobs (CLI targets or configured models), analyze each at
each size, lint, and compute the exit code.  Imports torch lazily, when there is work to do."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

from rflint.cli.isolation import model_code_guarded
from rflint.cli.values import parse_shape, parse_shapes, parse_size
from rflint.config import Config
from rflint.errors import RflintError
from rflint.severity import SEVERITY_RANK

FAIL_RANK = {**SEVERITY_RANK, "never": 99}


@dataclass
class Job:
    target: str
    sizes: list[Any]  # int or tuple per size; [None] = the model's natural size (zoo)
    channels: int | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    ignore: list[str] = field(default_factory=list)
    shapes: list[tuple[int, ...]] | None = None  # --input-shape: one full shape per forward() argument
    label: str | None = None  # the model's name in reports when it is not the target (a config's)
    root: str | None = None  # where a package.module target imports from (a config's directory)
    config: str | None = None  # the pyproject.toml that lists the model (where a missing size goes)

    @property
    def name(self) -> str:
        return self.label or self.target


def make_jobs(targets: list[str], inputs: list[str], input_shapes: list[str], channels: int | None,
              kwargs: dict[str, Any], cfg: Config) -> list[Job]:
    # a size or target given twice is analysed once (as ruff checks a file named twice once)
    sizes: list[Any] = list(dict.fromkeys(parse_size(s) for s in inputs))
    distinct: dict[str, str] = {}
    for t in targets:  # ./net.py:build is net.py:build (and net:build): the first spelling kept, in its place
        distinct.setdefault(_model_key(t, (os.getcwd(),)), t)
    targets = list(distinct.values())
    shapes, channels = parse_shapes(input_shapes, channels)
    if shapes and sizes:
        raise RflintError("give either --input sizes or --input-shape shapes, not both")
    if targets:
        # A target the config lists is that model: its entry's ignore applies, and its sizes,
        # shapes, channels and kwargs where the command line gives none (the gate must not pass in
        # CI and fail on a developer's `rflint models/net.py:build`, or the other way round)
        jobs = []
        for t in targets:
            entries = configured_entries(cfg, t, kwargs)
            jobs += [_configured(m, cfg, sizes, shapes, channels, kwargs, t) for m in entries] or \
                [Job(t, sizes or [None], channels, dict(kwargs), shapes=shapes, label=_plain_spelling(t))]
        return _distinct(jobs)
    if not cfg.models:
        where = f" in {cfg.path}" if cfg.path else ""
        raise RflintError(
            f"no TARGET given and no [[tool.rflint.models]]{where}; try `rflint zoo:resnet18 --input 32`"
        )
    return [_configured(m, cfg, sizes, shapes, channels, kwargs) for m in cfg.models]


def configured_entries(cfg: Config, target: str, kwargs: dict[str, Any]) -> list:
    """The config's entries for a target named on the command line: those of the same model (any
    path to the same file) whose kwargs are the ones given; else those whose kwargs do not
    contradict them (an entry without the key builds the factory's default, which may be it);
    if none agrees, the first (its ignore and sizes still apply: it is that model, built
    otherwise).  `--kwarg name=efficientnet-b2` took the b0 entry, which sets no name, over the
    entry that sets it: another model's sizes and ignores."""
    roots = (os.getcwd(), str(cfg.path.parent)) if cfg.path else (os.getcwd(),)
    entries = [m for m in cfg.models if _same_target(m.target, target, roots)]
    exact = [m for m in entries if all(k in m.kwargs and m.kwargs[k] == v for k, v in kwargs.items())]
    agreeing = [m for m in entries if all(m.kwargs.get(k, v) == v for k, v in kwargs.items())]
    return exact or agreeing or entries[:1]


def _configured(m, cfg: Config, sizes: list[Any], shapes, channels: int | None, kwargs: dict[str, Any],
                target: str | None = None) -> Job:
    """The job of a config's model entry, what the command line gives overriding it (sizes or
    shapes given there replace the entry's both).  ``target``: the path the command line names it
    by (loaded so); it keeps the entry's name in reports (and so its SARIF fingerprints) and its
    directory as the project's."""
    # (the entry's sizes and shapes parse: app._loaded_config checked every entry's)
    job_sizes = sizes or ([] if shapes else [parse_size(s) for s in m.inputs]) or [None]
    model_shapes = shapes or ([parse_shape(s, "input-shape") for s in m.input_shapes] or None)
    model_channels = channels or m.channels or (model_shapes[0][1] if model_shapes and len(model_shapes[0]) > 1 else None)
    label = m.label or (m.target if target is not None and target != m.target else None)
    return Job(target or m.target, job_sizes, model_channels, {**m.kwargs, **kwargs}, list(m.ignore),
               model_shapes, label, m.root, str(cfg.path) if cfg.path else None)


def _distinct(jobs: list[Job]) -> list[Job]:
    """Each model (target, kwargs, channels, shapes) once, the first job's settings kept: two
    config entries that --kwarg makes one model ran it twice, with one SARIF fingerprint."""
    seen: set[str] = set()
    out = []
    for job in jobs:
        key = repr((_model_key(job.target, (job.root or os.getcwd(),)), sorted(job.kwargs.items(), key=str),
                    job.channels, job.shapes))
        if key not in seen:
            seen.add(key)
            out.append(job)
    return out


def _plain_spelling(target: str) -> str | None:
    """A file target's name in reports when it is spelled otherwise: its path relative to the
    working directory (``./net.py:build``, ``$PWD/net.py:build`` -> ``net.py:build``), so that the
    SARIF fingerprints, made of the name, do not change with the spelling a workflow uses (code
    scanning closed every alert and opened it again, dismissed ones included).  None: as given
    (already plain, outside the working directory, or no file)."""
    path, colon, name = target.rpartition(":")
    if not colon or not path.endswith(".py") or not os.path.isfile(path):
        return None
    relative = os.path.relpath(os.path.realpath(path), os.path.realpath(os.getcwd()))
    if relative.startswith(os.pardir + os.sep) or relative == os.pardir:
        return None
    plain = f"{relative.replace(os.sep, '/')}:{name}"
    return plain if plain != target else None


def _model_key(target: str, roots: tuple[str, ...] = ()) -> str:
    """What a target names: its file's real path and name for a file target; for a module target
    (``mynet.models.net:build``) the same, when the module is a file under one of ``roots`` (found
    by its path, nothing imported); else the target itself (a zoo model, an installed module)."""
    where, _, name = target.rpartition(":")
    if where.endswith(".py"):
        return f"{os.path.realpath(where)}:{name}"
    if roots and where and not target.startswith("zoo:") and all(part.isidentifier() for part in where.split(".")):
        relative = os.path.join(*where.split("."))
        for root in roots:
            for candidate in (f"{relative}.py", os.path.join(relative, "__init__.py")):
                path = os.path.join(root, candidate)
                if os.path.isfile(path):
                    return f"{os.path.realpath(path)}:{name}"
    return target


def model_file(target: str) -> str | None:
    """The file a target's model is in, as far as its path says (a module target's under the
    working directory); None for a zoo model or an installed module."""
    where, _, _ = _model_key(target, (os.getcwd(),)).rpartition(":")
    return where if where.endswith(".py") and os.path.isfile(where) else None


def _same_target(configured: str, given: str, roots: tuple[str, ...] = ()) -> bool:
    """A config's target (its file relative to the working directory, see config.py) and one from
    the command line name the same model: the same file (however the path is spelled, or a module
    that is that file: ``mynet.models.net:build`` for ``mynet/models/net.py:build``) and name, or the
    same module:name / zoo:name.  ``roots``: where a module target is looked for (the working
    directory and the config's, as it is imported from there)."""
    return _model_key(configured, roots) == _model_key(given, roots)


@dataclass
class TextStyle:
    """How a worker renders its text section so the parent can print it verbatim."""

    width: int
    color_system: str | None
    force_terminal: bool
    show_layers: bool = True
    encoding: str = "utf-8"  # the real output's: rich draws ASCII boxes for an ASCII-only one


@dataclass
class Pictures:
    """--plot / --graph / --html: files are written by the process that analyzed the model."""

    plot: str | None = None
    graph: str | None = None
    html: bool = False
    many: bool = False  # several runs: plot/graph file names get "-<target>-<size>" inserted

    def path(self, base: str, target: str, size: tuple[int, ...]) -> str:
        if not self.many:
            return base
        import re
        from pathlib import Path

        p = Path(base)
        # the whole target, directories too: ca/model.py and cb/model.py must not share a file
        slug = re.sub(r"[^A-Za-z0-9_.]+", "_", target).strip("_")
        return str(p.with_name(f"{p.stem}-{slug}-{'x'.join(map(str, size))}{p.suffix}"))


@dataclass
class JobError:
    """A target that could not be loaded or traced (``input`` None), or one size it could not be
    analysed at.  The run goes on with the other targets and sizes, as a linter goes on past a file
    it cannot parse; the exit code is 2 all the same."""

    target: str
    input: list[int] | None
    message: str
    traceback: str = ""
    unexpected: bool = False  # raised by the model's code (or a bug), not one of rflint's messages
    kwargs: dict = field(default_factory=dict)  # the factory's, as JSON values: part of the model's name

    def line(self, several: bool, debug: bool = False) -> str:
        """The one line for stderr (see formats.error_text); for an unexpected error without
        --debug, where its traceback is."""
        from rflint.report.formats import error_text

        hint = " (run with --debug for the traceback)" if self.unexpected and not debug else ""
        return error_text(self.document(), several) + hint

    def document(self) -> dict:
        return {"target": self.target, "kwargs": self.kwargs, "input": self.input, "message": self.message}


@dataclass
class JobOutcome:
    docs: list[dict] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    html_entries: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {target, message}: a model with nothing to lint
    errors: list[JobError] = field(default_factory=list)
    loaded: bool = False  # the model was built and traced (so declared_seen is known)
    declared_seen: set[str] = field(default_factory=set)  # [tool.rflint.layers] names some module had
    # --warn-unused-ignores: (file, line, code) of each ignore comment seen -> whether it silenced a
    # finding; None when not asked for (worked out only then)
    ignore_usage: dict[tuple[str, int, str], bool] | None = None


_FROZEN = False


def _imported_and_frozen() -> None:
    """Import torch and the engine, then ``gc.freeze()``: torch leaves some 500k objects that live
    until exit, and every full collection during the analysis would scan them all again (10-15% of
    a DenseNet analysis).  The CLI owns its process (and its workers), so it may; the Python API
    never does this to its caller.  Once per process: a later freeze would also pin the garbage of
    earlier runs (the CLI called in-process, as the tests do)."""
    global _FROZEN
    import gc

    import rflint.engine  # noqa: F401  (torch)
    import rflint.report  # noqa: F401
    import rich.color  # noqa: F401  (imports colorsys: before a target's directory is first on sys.path,
    import rich.table  # noqa: F401   where a sibling colorsys.py would be taken; see test_cli's
    import rich.panel  # noqa: F401   test_rflint_imports_no_standard_module_once_a_target_is_loaded;
    import rich.console  # noqa: F401  rich before 14.3.4 imports getpass, termios and configparser
    import rich.theme  # noqa: F401    when these load)

    if not _FROZEN:
        _FROZEN = True
        gc.freeze()
        from rflint.trace.loading import own_process

        own_process()


def run_job(job: Job, settings: Any, rules: Any, declared: dict, style: TextStyle | None,
            debug: bool = False, pictures: Pictures | None = None, index: int = 0,
            warn_unused_ignores: bool = False) -> JobOutcome:
    """Analyze and lint one target at each of its sizes.  Runs in a worker process under --jobs, so
    it returns plain data: JSON documents and pre-rendered text."""
    _imported_and_frozen()
    outcome = JobOutcome(ignore_usage={} if warn_unused_ignores else None)
    # print() in the user's model code must not mix into a JSON or SARIF report on stdout, nor may
    # the model end the run or change the next target's analysis (isolation.py)
    with _collector_paused(), contextlib.redirect_stdout(sys.stderr), model_code_guarded():
        return _run_job(job, settings, rules, declared, style, debug, pictures, index, outcome)


@contextmanager
def _collector_paused():
    """No cyclic garbage collection while one job runs.  A job allocates tens of thousands of
    long-lived objects (the model, its fx graph, the analyses), so the collector's generation
    thresholds trip over and over and each full collection re-scans all of them: 20-30% of the
    analysis time of a 1000-layer ResNet, for nothing, since almost none of it is garbage before the
    job ends.  Memory freed by reference counting is unaffected; the little cyclic garbage a job
    leaves (old fx graphs) is collected once the collector is back on.  Like ``gc.freeze()`` this is
    the CLI's own process: the Python API never does it to its caller."""
    import gc

    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _run_job(job: Job, settings: Any, rules: Any, declared: dict, style: TextStyle | None, debug: bool,
             pictures: Pictures | None, index: int, outcome: JobOutcome) -> JobOutcome:
    from rflint.declared import declare
    from rflint.engine import prepare
    from rflint.engine.prepare import NothingToLint
    from rflint.report import build_report

    try:
        for name, values in declared.items():
            declare(name, values)
        if pictures is not None and (pictures.plot or pictures.html):
            # matplotlib imports standard modules (plistlib) on first use: before the model's
            # directory is first on sys.path, where a sibling of that name would be taken
            from rflint.report.plot import load_matplotlib

            load_matplotlib()
        try:
            prepared = prepare(job.target, job.channels, job.kwargs, label=job.label, root=job.root,
                               n_inputs=len(job.shapes) if job.shapes else 1)
        except NothingToLint as note:
            outcome.skipped.append({"target": job.name, "message": str(note)})
            return outcome
        outcome.loaded = True
        if declared:
            outcome.declared_seen = _declared_in(prepared.loaded.module, declared)
        runs = _shapes_per_size(prepared, job) if job.shapes else job.sizes
    except BaseException as err:  # noqa: BLE001 - a model that cannot be loaded or traced: see _failed
        _reraise_if_ours(err)
        outcome.errors.append(_failed(job, None, err, debug))
        return outcome
    for k, run in enumerate(runs):  # one size that fails (too small, misfit) leaves the others' reports
        try:
            if run is None and job.config and prepared.loaded.suggested_input is None:
                raise RflintError(f"{job.name}: no input size given (add `input = 224` to its "
                                  f"[[tool.rflint.models]] entry in {job.config}, or pass --input)")
            analysis = prepared.at(shapes=run) if job.shapes else prepared.at(run)
            report = build_report(analysis, settings, rules, job.ignore)
            outcome.docs.append(report.document())
            if outcome.ignore_usage is not None:
                for key, used in report.result.ignore_usage().items():
                    outcome.ignore_usage[key] = outcome.ignore_usage.get(key, False) or used
            if style is not None:
                outcome.texts.append(_render_section(report, style))
            if pictures is not None:
                _draw(report, pictures, f"{index}-{k}", outcome)
        except BaseException as err:  # noqa: BLE001 - see _failed
            _reraise_if_ours(err)
            outcome.errors.append(_failed(job, _size_of(prepared, job, run), err, debug))
    return outcome


_IN_WORKER = [False]  # set in --jobs workers (_worker_started)


def _reraise_if_ours(err: BaseException) -> None:
    """What a job lets through: an interruption of rflint itself (SIGTERM under --jobs, a Ctrl-C in
    the main process, a generator closed).  Anything else the model's code raised, an exception of
    its own deriving from BaseException included, is that target's error, not the end of the run
    (it escaped as a traceback with the findings' exit code, or as a worker "killed by SIGTERM").
    A worker ignores SIGINT, so a KeyboardInterrupt there is the model's own."""
    if isinstance(err, (Terminated, GeneratorExit)) or (isinstance(err, KeyboardInterrupt) and not _IN_WORKER[0]):
        raise err


def _failed(job: Job, size: list[int] | None, err: Exception, debug: bool) -> JobError:
    """An error of one target (size None) or one size.  RflintErrors are rflint's one-line messages;
    anything else is the user's model code (or a bug), named by its type.  The traceback travels
    with the error (from a worker too); with --debug it is printed before the error's line, and the
    run goes on with the other targets and sizes either way (exit code 2 at the end)."""
    import traceback

    unexpected = not isinstance(err, (RflintError, SystemExit))
    if isinstance(err, SystemExit):  # forward() called sys.exit while traced or run: not rflint's exit code
        from rflint.trace.loading import exited_while_run

        message = exited_while_run(job.name, err)
    else:
        message = f"{type(err).__name__}: {err}" if unexpected else str(err)
    message = " ".join(message.split())  # one line: a model's own message may span several
    return JobError(job.name, size, message, traceback.format_exc(), unexpected, _plain_kwargs(job))


def _size_of(prepared: Any, job: Job, run: Any) -> list[int] | None:
    """The spatial size of one run, for its error: a shape list's first input, else the size (None
    when even that cannot be worked out, e.g. a zoo model's natural size of a broken entry)."""
    if job.shapes:
        return list(run[0][2:])
    try:
        return list(prepared.input_size(run))
    except Exception:  # noqa: BLE001 - the size itself is the error; the message says so
        return None if run is None else list(run) if isinstance(run, tuple) else [run]


def _shapes_per_size(prepared: Any, job: Job) -> list[list[tuple[int, ...]]]:
    """A job with input shapes (a model with several inputs): those shapes, or, when sizes are
    given too (--input on the command line, input in the config), the shapes at each size: the
    first input's spatial size set, the other image inputs scaled with it."""
    from rflint.engine.prepare import scaled_shapes

    if all(size is None for size in job.sizes):
        return [job.shapes]
    return [list(scaled_shapes(job.shapes, prepared.input_size(size))) for size in job.sizes]


def _declared_in(model: Any, declared: dict) -> set[str]:
    """The [tool.rflint.layers] names that some module of ``model`` is an instance of."""
    from rflint.declared import qualified_name

    return {qualified_name(type(m)) for m in model.modules()} & set(declared)


def unmatched_declarations(outcomes: list[JobOutcome], declared: dict) -> list[str]:
    """[tool.rflint.layers] names no module of any model checked had: most likely a typo in the
    class path (the declaration then silently does nothing)."""
    if any(not outcome.loaded and outcome.errors for outcome in outcomes):
        return []  # a model that did not load may well have been the one with that class
    seen = set().union(*(outcome.declared_seen for outcome in outcomes)) if outcomes else set()
    return sorted(set(declared) - seen)


def _draw(report: Any, pictures: Pictures, key: str, outcome: JobOutcome) -> None:
    a = report.analysis
    if pictures.plot:
        from rflint.report.plot import render_plot

        render_plot(report, pictures.path(pictures.plot, a.target, a.input_size))
    if pictures.graph:
        from rflint.report.graph import render_graph

        render_graph(report, pictures.path(pictures.graph, a.target, a.input_size))
    if pictures.html:
        from rflint.report.html import page_entry

        outcome.html_entries.append(page_entry(report, key))


def _render_section(report: Any, style: TextStyle) -> str:
    from rich.console import Console

    from rflint.report.text import render_model

    buffer = text_buffer(style.encoding)
    console = Console(file=buffer, width=style.width, color_system=style.color_system,
                      force_terminal=style.force_terminal, soft_wrap=False, emoji=False)
    render_model(report, console, style.show_layers)
    return buffer.getvalue()


def text_buffer(encoding: str):
    """A string buffer that says it is ``encoding``: rich picks its characters by the file's
    encoding (box lines or ASCII), and the text is written to a file of that encoding later."""
    import io

    class Buffer(io.StringIO):
        @property
        def encoding(self) -> str:  # io.StringIO's is a read-only None
            return encoding

    return Buffer()


def run_jobs(jobs: list[Job], settings: Any, rules: Any, declared: dict, style: TextStyle | None,
             n_workers: int = 1, debug: bool = False, pictures: Pictures | None = None,
             warn_unused_ignores: bool = False) -> list[JobOutcome]:
    """Run the jobs, in parallel worker processes when n_workers > 1 (results keep job order)."""
    if pictures is not None:
        pictures.many = sum(1 if job.shapes else len(job.sizes) for job in jobs) > 1
    if n_workers <= 1 or len(jobs) <= 1:
        return [run_job(job, settings, rules, declared, style, debug, pictures, i, warn_unused_ignores)
                for i, job in enumerate(jobs)]
    run = functools.partial(run_job, settings=settings, rules=rules, declared=declared, style=style, debug=False,
                            pictures=pictures, warn_unused_ignores=warn_unused_ignores)
    done = _pooled(run, list(enumerate(jobs)), n_workers)
    return [done[i] for i in range(len(jobs))]


def _pooled(run: Callable[..., JobOutcome], jobs: list[tuple[int, Job]], n_workers: int) -> dict[int, JobOutcome]:
    """The jobs' outcomes by index, from a pool of ``n_workers`` processes.  A worker that dies (a
    segfault in native code, the OOM killer) breaks the pool, and every job not done yet fails with
    it.  The first ``n_workers`` of those were running: each runs again in a worker of its own, so
    the one whose worker dies again is named; the rest had not started and go to a new pool."""
    from concurrent.futures.process import BrokenProcessPool

    outcomes: dict[int, JobOutcome] = {}
    broken: list[tuple[int, Job]] = []
    with worker_pool(min(n_workers, len(jobs))) as pool:
        futures = [(i, job, pool.submit(run, job, index=i)) for i, job in jobs]
        for i, job, future in futures:
            try:
                outcomes[i] = future.result()
            except BrokenProcessPool:
                broken.append((i, job))
    suspects, waiting = broken[:n_workers], broken[n_workers:]
    for i, job in suspects:
        outcomes[i] = _alone(run, job, i)
    if waiting:
        outcomes.update(_pooled(run, waiting, n_workers))
    return outcomes


def _alone(run: Callable[..., JobOutcome], job: Job, index: int) -> JobOutcome:
    from concurrent.futures.process import BrokenProcessPool

    with worker_pool(1) as pool:
        future = pool.submit(run, job, index=index)
        workers = _workers(pool)
        try:
            return future.result()
        except BrokenProcessPool:
            outcome = JobOutcome()
            message = f"{job.name}: {died(workers)} while it analysed the model; the other targets were analysed"
            outcome.errors.append(JobError(job.name, None, message, "", False, _plain_kwargs(job)))
            return outcome


def _workers(pool: Any) -> list:
    """The pool's worker processes (CPython's table of them; none where it has no such table)."""
    return list((getattr(pool, "_processes", None) or {}).values())


def unused_ignores(outcomes: list[JobOutcome]) -> list[tuple[str, int, str]]:
    """The ignore comments' codes (file, line, code; "*" for a bare ignore) that silenced no finding
    of any model or size of the run: a comment on a shared block counts as used when one model's
    finding needed it, one meant for another size when any size checked did."""
    usage: dict[tuple[str, int, str], bool] = {}
    for outcome in outcomes:
        for key, used in (outcome.ignore_usage or {}).items():
            usage[key] = usage.get(key, False) or used
    return sorted(key for key, used in usage.items() if not used)


def died(workers: list) -> str:
    """How a worker process ended: "the worker process was killed by SIGKILL (out of memory?)"."""
    import signal

    for process in workers:
        process.join(timeout=5)
    codes = [process.exitcode for process in workers if process.exitcode not in (None, 0)]
    if not codes:
        return "the worker process died"
    code = codes[0]
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        why = {"SIGKILL": " (out of memory?)", "SIGSEGV": " (a crash in native code)"}.get(name, "")
        return f"the worker process was killed by {name}{why}"
    return f"the worker process exited with status {code}"


def _plain_kwargs(job: Job) -> dict:
    from rflint.report.model import plain_kwargs

    return plain_kwargs(job.kwargs)


class Terminated(BaseException):
    """SIGTERM or SIGHUP while worker processes run (a CI timeout, pre-commit killed, the terminal
    closed): like Ctrl-C, the workers are stopped first.  A BaseException, so no `except Exception`
    turns it into a result.  ``signum``: the signal, for the exit code (128 + signum)."""

    def __init__(self, signum: int = 15):
        super().__init__(signum)
        self.signum = signum


def _worker_started(parent: int | None = None) -> None:
    """In a worker: Ctrl-C is ignored (the parent stops the workers; each would otherwise catch the
    terminal's Ctrl-C, report it as a result and go on with the next job), SIGTERM and SIGHUP kill,
    as by default (a forked worker inherits the parent's handlers, which only raise), and the
    worker gets SIGTERM when the parent dies (Linux): a parent killed by SIGKILL left its workers
    blocked on their pipes, re-parented to init, for good."""
    import signal

    _IN_WORKER[0] = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        # The signal comes when the *thread* that forked the worker ends: with a fork context,
        # ProcessPoolExecutor forks its workers in the thread that submits (the one that waits for
        # the results); given max_tasks_per_child it would fork from its manager thread, whose end
        # would then stop the workers.
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # no libc to ask: the parent's handlers still stop us
            return
        if parent is not None and os.getppid() != parent:  # the parent died before the prctl: no
            os.kill(os.getpid(), signal.SIGTERM)  # signal will come (its pid, from the parent itself)


@contextmanager
def worker_pool(n: int):
    """A process pool whose workers are terminated, not waited for, when the run is interrupted
    (Ctrl-C, SIGTERM) or fails: ProcessPoolExecutor's own exit waits for every queued job."""
    import multiprocessing
    import signal
    import threading
    from concurrent.futures import ProcessPoolExecutor

    # fork before torch is imported here: each worker imports it once, with no inherited threads.
    # (Called in a process that already ran torch, the CLI in-process as the tests do, Python 3.12+
    # warns that fork() with threads may deadlock: the workers only trace and run meta tensors.)
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    pool = ProcessPoolExecutor(max_workers=n, mp_context=context, initializer=_worker_started,
                               initargs=(os.getpid(),))
    main_thread = threading.current_thread() is threading.main_thread()

    def terminated(signum, frame):
        raise Terminated(signum)

    stops = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    previous = {sig: signal.signal(sig, terminated) for sig in stops} if main_thread else {}
    try:
        yield pool
    except BaseException as err:
        # reaped here: an interrupted CLI leaves by os._exit (app._exit_now)
        _stopped(_workers(pool), grace=0)
        if isinstance(err, Exception):
            # Not after Ctrl-C or SIGTERM: with workers killed mid-job, shutdown() can wait forever
            # for the lock the pool's manager thread holds while it joins its feeder thread
            # (CPython gh-125451, fixed in 3.12.8 and 3.13.1); the CLI exits right away anyway.
            pool.shutdown(wait=False, cancel_futures=True)
        raise
    else:
        # Every result is in.  A worker exits once told to, unless the model's code left a thread
        # running in it (a prefetcher, a watchdog), which the worker's exit waits for: the run hung
        # there, its reports never printed.  So: a moment's grace, then such a worker is stopped.
        workers = _workers(pool)
        pool.shutdown(wait=False)
        if not _stopped(workers, grace=3.0):
            pool.shutdown(wait=True)  # (after a worker was killed, see gh-125451 above: not waited for)
    finally:
        for sig, handler in previous.items():
            if handler is not None:  # None: a handler not set from Python, left alone
                signal.signal(sig, handler)


def _stopped(workers: list, grace: float) -> bool:
    """Wait up to ``grace`` seconds for the workers to exit, then terminate (and if need be kill)
    the rest.  True if any had to be stopped."""
    import time

    deadline = time.monotonic() + grace
    for process in workers:
        process.join(timeout=max(0.0, deadline - time.monotonic()))
    alive = [process for process in workers if process.is_alive()]
    for process in alive:
        process.terminate()
    for process in alive:
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
            process.join(timeout=5)
    return bool(alive)


def exit_code(docs: list[dict], fail_on: str) -> int:
    threshold = FAIL_RANK[fail_on]
    worst = max((SEVERITY_RANK[f["severity"]] for d in docs for f in d["findings"]), default=0)
    return 1 if worst >= threshold else 0


def split_sizes_into_jobs(jobs: list[Job], n_workers: int) -> list[Job]:
    """With fewer targets than workers, a target's sizes split into consecutive chunks, so that
    --jobs spreads one model's sizes over the idle workers too.  Each chunk loads and traces the
    model again, so no more chunks than that: one job per size made a 4-size run of one model
    slower with -j 2 than without (every size paid its own trace)."""
    if len(jobs) >= n_workers:
        return jobs
    per_job = -(-n_workers // len(jobs))  # ceil
    out = []
    for job in jobs:
        k = len(job.sizes)
        chunks = 1 if job.shapes else min(k, per_job)
        if chunks <= 1:
            out.append(job)
            continue
        bounds = [round(i * k / chunks) for i in range(chunks + 1)]
        out.extend(dataclasses.replace(job, sizes=job.sizes[a:b]) for a, b in zip(bounds, bounds[1:]))
    return out


def _sweep_chunk(target, sizes, channels, kwargs, settings, rules, declared, input_shapes=None, root=None) -> list[dict]:
    _imported_and_frozen()
    from rflint.declared import declare
    from rflint.report.sweep import sweep_rows
    from rflint.trace.loading import imports_from

    for name, values in declared.items():
        declare(name, values)
    # the user's print()s: not into the report; nor may the model end the run (isolation.py)
    with contextlib.redirect_stdout(sys.stderr), model_code_guarded(), imports_from(root):
        return sweep_rows(target, sizes, channels, kwargs, settings, rules, input_shapes)


def run_sweep(target, sizes, channels, kwargs, settings, rules, declared, n_workers=1, input_shapes=None,
              root=None) -> list[dict]:
    """Rows in size order; with n_workers > 1 the sizes are dealt round-robin to worker processes
    (each traces the model once).  ``root``: a config's directory, for a model it lists."""
    if n_workers <= 1 or len(sizes) <= 1:
        return _sweep_chunk(target, sizes, channels, kwargs, settings, rules, declared, input_shapes, root)
    from concurrent.futures.process import BrokenProcessPool

    n = min(n_workers, len(sizes))
    chunks = [sizes[i::n] for i in range(n)]
    with worker_pool(n) as pool:
        workers = []
        try:
            results = pool.map(_sweep_chunk, [target] * n, chunks, [channels] * n, [kwargs] * n,
                               [settings] * n, [rules] * n, [declared] * n, [input_shapes] * n, [root] * n)
            workers = _workers(pool)
            parts = list(results)
        except BrokenProcessPool:  # one model, so no other target's results to save: say what happened
            raise RflintError(f"{target}: {died(workers)} while it swept the model") from None
    rows = [None] * len(sizes)
    for i, part in enumerate(parts):
        rows[i::n] = part
    return rows
