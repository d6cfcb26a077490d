"""Per-phase timings of rflint, median of N runs, one fresh interpreter per case.

    python bench/run.py                      # every case, table on stdout
    python bench/run.py --json bench.json    # ... and everything (incl. every single run) as JSON
    python bench/run.py resnet18@32 unet3d@64 --runs 3
    python bench/run.py --list
    python bench/run.py --profile densenet264@224   # cProfile of one run, top functions per phase

Cases: every zoo model at 32 and 224 (1-D and 3-D zoo models at their natural size), plus the
stress models of bench/models.py: densenet264@224, resnet1000@224, diamond60@32, unet3d@64.

Phases (seconds, each the median over the runs, separately):
  build       load the model (factory called under torch.device("meta"), as the CLI does)
  trace       the rest of rflint.prepare(): torch.fx symbolic trace, networkx DAG, first-conv lookup
  shapes      meta-tensor shape propagation        (Analysis.timings["shapes"])
  rf_program  the RF dynamic program               (Analysis.timings["rf_program"])
  at_rest     the rest of Prepared.at(): Analysis bookkeeping outside the two timed windows
  rules       build_report(): every rule, incl. the stem experiment (which re-analyses the model)
  stem        the part of rules that is the stem experiment (rules/stem.py: one shape pass and RF
              replay per stem candidate); shown on its own, not added again
  clean_size  ModelReport.min_clean_input: re-analyses at the smallest clean size (part of the
              JSON/text report; a column of its own because it is a whole second analysis)
  report      ModelReport.document() + render_json() (min_clean_input already computed)

ratio       = (rf_program + at_rest + rules + report) / (trace + shapes)
ratio+clean = the same with clean_size added to the numerator: everything a JSON report costs
              beyond trace and shapes, the number the 25% goal is about
base        = the same without the two what-if experiments (stem and clean_size): what the
              analysis of the model as written costs.  Not the goal's number (that is ratio+clean),
              but it says how much of the rest is the experiments.
peak MB     = ru_maxrss of the case's own interpreter (torch import included); +MB = growth
              over the RSS right after the imports, i.e. what the case itself costs.
cpu/wall    = process CPU time / wall time of a run (well below 1: the machine was busy)
cold        = wall time of the first run in the fresh interpreter, all phases (first-use costs).

Each child does what the CLI does around a job: ``gc.freeze()`` after the imports, and no cyclic
garbage collection while a run is timed (``gc.collect()`` between runs), see rflint/cli/run.py.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "models.py")
PHASES = ["build", "trace", "shapes", "rf_program", "at_rest", "rules", "stem", "clean_size", "report"]
ANALYSIS_SIDE = ["rf_program", "at_rest", "rules", "report"]
FRONT_SIDE = ["trace", "shapes"]


def _zoo_cases() -> dict[str, tuple[str, tuple[int, ...]]]:
    from rflint.zoo import ZOO  # light: no torch work happens here

    cases: dict[str, tuple[str, tuple[int, ...]]] = {}
    for name, entry in ZOO.items():
        natural = tuple(entry.input_size)
        if len(natural) == 2:
            for side in (32, 224):
                cases[f"{name}@{side}"] = (f"zoo:{name}", (side, side))
        else:  # 1-D audio, 3-D volumes: their natural size
            cases[f"{name}@{'x'.join(map(str, natural))}"] = (f"zoo:{name}", natural)
    return cases


def all_cases() -> dict[str, tuple[str, tuple[int, ...]]]:
    cases = _zoo_cases()
    cases.update({
        "densenet264@224": (f"{MODELS}:densenet264", (224, 224)),
        "resnet1000@224": (f"{MODELS}:resnet1000", (224, 224)),
        "diamond60@32": (f"{MODELS}:diamond_chain", (32, 32)),
        "unet3d@64": (f"{MODELS}:unet3d", (64, 64, 64)),
    })
    return cases


# --------------------------------------------------------------------------- one run (in the child)

_BUILD: list[float] = []
_STEM: list[float] = []


def _time_calls(owner, name: str, sink: list[float]) -> None:
    """Replace ``owner.name`` (a module-level function) by a wrapper that appends each call's
    duration to ``sink``; once per process, so repeated runs do not nest wrappers."""
    original = getattr(owner, name)
    if getattr(original, "_bench_timed", False):
        return

    def timed(*args, **kwargs):
        t = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            sink.append(time.perf_counter() - t)

    timed._bench_timed = True
    setattr(owner, name, timed)


def _timed_prepare():
    """``rflint.prepare`` with its ``load_model`` call timed: build = load_model, trace = the rest of
    prepare (fx trace, networkx DAG, first-conv lookup), whatever prepare does in this version."""
    from rflint.engine import prepare

    _time_calls(sys.modules[prepare.__module__], "load_model", _BUILD)
    return prepare


def _timed_stem() -> None:
    """Time ``rules.stem.stem_experiment`` (LintContext imports it from there when the stem is first
    asked for, so the wrapper is what it calls)."""
    import rflint.rules.stem as stem

    _time_calls(stem, "stem_experiment", _STEM)


def measure(target: str, size: tuple[int, ...]) -> dict:
    from rflint.report import build_report
    from rflint.report.formats import render_json

    prepare = _timed_prepare()
    _timed_stem()
    _BUILD.clear()
    _STEM.clear()
    c0 = time.process_time()
    t0 = time.perf_counter()
    prepared = prepare(target)
    t2 = time.perf_counter()
    t1 = t0 + _BUILD[0]
    analysis = prepared.at(size)
    t3 = time.perf_counter()
    report = build_report(analysis)
    report.findings  # noqa: B018  (the rules ran in build_report)
    t4 = time.perf_counter()
    clean = report.min_clean_input
    t5 = time.perf_counter()
    text = render_json([report.document()])
    t6 = time.perf_counter()
    shapes, rf_program = analysis.timings["shapes"], analysis.timings["rf_program"]
    return {
        "build": t1 - t0, "trace": t2 - t1, "shapes": shapes, "rf_program": rf_program,
        "at_rest": max(0.0, (t3 - t2) - shapes - rf_program),
        "rules": t4 - t3, "stem": sum(_STEM), "clean_size": t5 - t4, "report": t6 - t5,
        "total": t6 - t0, "cpu_total": time.process_time() - c0,
        "nodes": len(analysis.order), "layers": len(analysis.layers),
        "conv_layers": sum(1 for layer in analysis.layers if layer.parametric),
        "findings": sorted({f.code for f in report.findings}),
        "min_clean_input": list(clean) if clean else None,
        "json_chars": len(text), "device": analysis.device, "trace_method": analysis.trace_method,
    }


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(name: str, runs: int) -> dict:
    target, size = all_cases()[name]
    import torch  # noqa: F401  (import cost is not part of any phase)

    import rflint.engine  # noqa: F401
    import rflint.report.formats  # noqa: F401
    import rflint.rules  # noqa: F401
    import rflint.zoo  # noqa: F401

    gc.freeze()  # as the CLI does after its imports (rflint/cli/run.py)
    base = _rss_mb()
    out: dict = {"case": name, "target": target, "size": list(size), "runs": []}
    try:
        for _ in range(runs):
            # The previous run's model, graphs and analyses are reference cycles: without this they
            # pile up until a full collection, which then lands (slower each run) in a random phase
            # of a later run.  A CLI process never carries a previous run's garbage.
            gc.collect()
            gc.disable()  # as the CLI does while a job runs (rflint/cli/run.py, _collector_paused)
            try:
                out["runs"].append(measure(target, size))
            finally:
                gc.enable()
    except Exception as err:  # the model cannot run at this size: say so, don't die
        out["status"] = "skipped"
        out["reason"] = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
    else:
        out["status"] = "ok"
    out["base_rss_mb"], out["peak_rss_mb"] = base, _rss_mb()
    return out


# --------------------------------------------------------------------------- aggregation (parent)

def summarize(raw: dict) -> dict:
    if raw.get("status") != "ok":
        return raw
    runs = raw["runs"]
    med = {k: statistics.median(r[k] for r in runs) for k in PHASES + ["total"]}
    front = sum(med[k] for k in FRONT_SIDE)
    back = sum(med[k] for k in ANALYSIS_SIDE)
    first = runs[0]
    raw.update({
        "median": med,
        "ratio": back / front if front else None,
        "ratio_with_clean": (back + med["clean_size"]) / front if front else None,
        "ratio_base": (back - med["stem"]) / front if front else None,
        "ratio_parts": {k: med[k] / front for k in ANALYSIS_SIDE + ["clean_size"]} if front else None,
        "cold": first["total"],
        "cpu_over_wall": statistics.median(r["cpu_total"] / r["total"] for r in runs),
        "nodes": first["nodes"], "layers": first["layers"], "conv_layers": first["conv_layers"],
        "findings": first["findings"], "min_clean_input": first["min_clean_input"], "device": first["device"],
    })
    return raw


def run_case(name: str, runs: int, timeout: float) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", name, "--runs", str(runs)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"case": name, "status": "skipped", "reason": f"timeout after {timeout:.0f} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"case": name, "status": "skipped", "reason": f"child failed (exit {proc.returncode}): {tail}"}
    return summarize(json.loads(lines[-1]))


HEADER = (f"{'case':24s} {'nodes':>5s} {'RF':>5s} {'build':>7s} {'trace':>7s} {'shapes':>7s} {'rf_prog':>7s} "
          f"{'at_rest':>7s} {'rules':>7s} {'(stem)':>7s} {'clean':>7s} {'report':>7s} {'ratio':>6s} {'+clean':>6s} {'base':>6s} "
          f"{'cold':>6s} {'cpu/w':>5s} {'peakMB':>6s} {'+MB':>5s}")


def row(r: dict) -> str:
    if r.get("status") != "ok":
        return f"{r['case']:24s} SKIPPED: {r.get('reason', '?')}"
    m = r["median"]
    cells = " ".join(f"{m[k]:7.4f}" for k in PHASES)
    return (f"{r['case']:24s} {r['nodes']:5d} {r['layers']:5d} {cells} {r['ratio']:6.3f} {r['ratio_with_clean']:6.3f} {r['ratio_base']:6.3f} "
            f"{r['cold']:6.2f} {r['cpu_over_wall']:5.2f} {r['peak_rss_mb']:6.0f} {r['peak_rss_mb'] - r['base_rss_mb']:5.0f}")


def profile(name: str, top: int, cold: bool = False) -> None:
    """cProfile one run of a case (the second one, or with ``cold`` the first one in this fresh
    interpreter, first-use costs included), then print the heaviest functions."""
    import cProfile
    import pstats

    import torch  # noqa: F401  (as in the timed runs: import cost is not part of any phase)

    target, size = all_cases()[name]
    if not cold:
        measure(target, size)  # warm-up: first-use costs are not what we want to see
        gc.collect()
    prof = cProfile.Profile()
    prof.enable()
    result = measure(target, size)
    prof.disable()
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items()}))
    stats = pstats.Stats(prof, stream=sys.stdout)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


def git_state() -> dict:
    """The code the numbers belong to: HEAD and the files changed on top of it."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=os.path.dirname(HERE), capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    return {"head": git("rev-parse", "HEAD"), "dirty": git("status", "--porcelain").splitlines()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="cases (default: all; see --list)")
    parser.add_argument("--runs", type=int, default=5, help="runs per case; each phase's median is reported")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write every result to FILE")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per case before it is skipped")
    parser.add_argument("--profile", metavar="CASE", help="cProfile one warm run of CASE instead")
    parser.add_argument("--top", type=int, default=30, help="functions shown by --profile")
    parser.add_argument("--cold", action="store_true", help="with --profile: profile the first run (first-use costs)")
    parser.add_argument("--child", metavar="CASE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.runs)))
        return
    cases = all_cases()
    if args.list:
        for name, (target, size) in cases.items():
            print(f"{name:24s} {os.path.relpath(target) if target.startswith('/') else target}  {'x'.join(map(str, size))}")
        return
    if args.profile:
        profile(args.profile, args.top, args.cold)
        return
    names = args.names or list(cases)
    unknown = [n for n in names if n not in cases]
    if unknown:
        parser.error(f"unknown case(s): {', '.join(unknown)} (see --list)")

    started = time.perf_counter()
    print(f"median of {args.runs} runs per phase, seconds; one fresh interpreter per case; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cpus")
    load_start = os.getloadavg()
    print(HEADER, flush=True)
    results = {}
    for name in names:
        results[name] = run_case(name, args.runs, args.timeout)
        print(row(results[name]), flush=True)
    ok = [r for r in results.values() if r.get("status") == "ok"]
    overall_peak = max((r["peak_rss_mb"] for r in ok), default=0.0)
    worst = max(ok, key=lambda r: r["ratio_with_clean"], default=None)
    print(f"peak RSS over all cases: {overall_peak:.0f} MB "
          f"(largest child; children ru_maxrss {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB)")
    if worst is not None:
        # the JSON/text report includes the clean size, so the goal's number is ratio+clean
        for key, label in (("ratio_with_clean", "ratio+clean (all analysis work)"), ("ratio", "ratio without clean size"),
                           ("ratio_base", "base ratio (without the stem and clean-size experiments)")):
            values = sorted(r[key] for r in ok)
            over = [r["case"] for r in ok if r[key] > 0.25]
            print(f"{label}: median {statistics.median(values):.3f}, largest {values[-1]:.3f}; "
                  f"{len(ok) - len(over)}/{len(ok)} cases at most 0.25")
    print(f"wall time {time.perf_counter() - started:.0f} s")
    if args.json:
        import torch

        doc = {
            "runs": args.runs,
            "phases": PHASES,
            "ratio": "(rf_program + at_rest + rules + report) / (trace + shapes), from the medians",
            "ratio_with_clean": "ratio with clean_size added to the numerator (the 25% goal's number)",
            "ratio_base": "ratio without the stem experiment (stem, a part of rules), clean_size left out as in ratio",
            "machine": {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
                        "platform": platform.platform()},
            "git": git_state(),
            "peak_rss_mb": overall_peak,
            "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
            "results": results,
        }
        with open(args.json, "w") as fh:
            json.dump(doc, fh, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
