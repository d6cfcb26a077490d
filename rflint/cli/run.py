"""What `rflint check` does: resolve the jobs (CLI targets or configured models), analyze each at
each size, lint, and compute the exit code.  Imports torch lazily, when there is work to do."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rflint.cli.sizes import parse_shape, parse_size
from rflint.config import Config
from rflint.errors import RflintError

SEVERITY_RANK = {"info": 1, "warning": 2, "error": 3}
FAIL_RANK = {"info": 1, "warning": 2, "error": 3, "never": 99}


@dataclass
class Job:
    target: str
    sizes: list[Any]  # int or tuple per size; [None] = the model's natural size (zoo)
    channels: int | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    ignore: list[str] = field(default_factory=list)
    shapes: list[tuple[int, ...]] | None = None  # --input-shape: one full shape per forward() argument


def make_jobs(targets: list[str], inputs: list[str], input_shapes: list[str], channels: int | None,
              kwargs: dict[str, Any], cfg: Config) -> list[Job]:
    sizes: list[Any] = [parse_size(s) for s in inputs]
    shapes = [parse_shape(text) for text in input_shapes] or None
    if shapes and sizes:
        raise RflintError("give either --input sizes or --input-shape shapes, not both")
    if shapes and channels is not None and len(shapes[0]) > 1 and shapes[0][1] != channels:
        raise RflintError(f"--input-shape says {shapes[0][1]} channels but --channels is {channels}")
    if shapes and len(shapes[0]) > 1:
        channels = shapes[0][1]
    if targets:
        return [Job(t, sizes or [None], channels, dict(kwargs), shapes=shapes) for t in targets]
    if not cfg.models:
        where = f" in {cfg.path}" if cfg.path else ""
        raise RflintError(
            f"no TARGET given and no [[tool.rflint.models]]{where}; try `rflint zoo:resnet18 --input 32`"
        )
    jobs = []
    for m in cfg.models:
        job_sizes = sizes or [parse_size(s) for s in m.inputs] or [None]
        model_shapes = shapes or ([parse_shape(s) for s in m.input_shapes] or None)
        model_channels = channels or m.channels or (model_shapes[0][1] if model_shapes and len(model_shapes[0]) > 1 else None)
        jobs.append(Job(m.target, job_sizes, model_channels, {**m.kwargs, **kwargs}, list(m.ignore),
                        model_shapes))
    return jobs


def run_jobs(jobs: list[Job], settings: Any, rules: Any, notes: list[str] | None = None) -> list:
    """Analyze and lint every job; models with nothing to lint (no spatial layer) become notes."""
    from rflint.engine import prepare
    from rflint.engine.prepare import NothingToLint
    from rflint.report import build_report

    reports = []
    for job in jobs:
        try:
            prepared = prepare(job.target, job.channels, job.kwargs)
        except NothingToLint as note:
            if notes is not None:
                notes.append(str(note))
            continue
        if job.shapes:
            reports.append(build_report(prepared.at(shapes=job.shapes), settings, rules, job.ignore))
            continue
        for size in job.sizes:
            reports.append(build_report(prepared.at(size), settings, rules, job.ignore))
    return reports


def exit_code(reports: list, fail_on: str) -> int:
    threshold = FAIL_RANK[fail_on]
    worst = max((SEVERITY_RANK[f.severity] for r in reports for f in r.findings), default=0)
    return 1 if worst >= threshold else 0
