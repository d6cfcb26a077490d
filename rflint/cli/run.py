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


def make_jobs(targets: list[str], inputs: list[str], input_shapes: list[str], channels: int | None,
              kwargs: dict[str, Any], cfg: Config) -> list[Job]:
    sizes: list[Any] = [parse_size(s) for s in inputs]
    for text in input_shapes:
        c, spatial = parse_shape(text)
        if channels is not None and channels != c:
            raise RflintError(f"--input-shape {text} says {c} channels but --channels is {channels}")
        channels = c
        sizes.append(spatial)
    if targets:
        return [Job(t, sizes or [None], channels, dict(kwargs)) for t in targets]
    if not cfg.models:
        where = f" in {cfg.path}" if cfg.path else ""
        raise RflintError(
            f"no TARGET given and no [[tool.rflint.models]]{where}; try `rflint zoo:resnet18 --input 32`"
        )
    jobs = []
    for m in cfg.models:
        job_sizes = sizes or [parse_size(s) for s in m.inputs] or [None]
        jobs.append(Job(m.target, job_sizes, channels or m.channels, {**m.kwargs, **kwargs}, list(m.ignore)))
    return jobs


def run_jobs(jobs: list[Job], settings: Any, rules: Any, progress=None) -> list:
    from rflint.engine import prepare
    from rflint.report import build_report

    reports = []
    for job in jobs:
        prepared = prepare(job.target, job.channels, job.kwargs)
        for size in job.sizes:
            analysis = prepared.at(size)
            reports.append(build_report(analysis, settings, rules, job.ignore))
    return reports


def exit_code(reports: list, fail_on: str) -> int:
    threshold = FAIL_RANK[fail_on]
    worst = max((SEVERITY_RANK[f.severity] for r in reports for f in r.findings), default=0)
    return 1 if worst >= threshold else 0
