"""End-to-end timings, each a fresh process (interpreter start-up and imports included), median of N:

    python bench/e2e.py [--runs 5] [--json e2e.json] [--quick]

1. `rflint bench/models.py:densenet264 --input 224 --format json` against just building and
   fx-tracing the same model in a fresh interpreter (`import torch; from models import densenet264;
   torch.fx.symbolic_trace(...)`).  The fair baseline builds under torch.device("meta"), as rflint
   does; the CPU build (real weights, initialised) is shown for reference.  Target: < 2.5x.
2. `rflint sweep TARGET --from 32 --to 512 --steps 10` (10 sizes) against a single-size run
   `rflint TARGET --input 224 --format json`, and against a one-size sweep.  Target: < 3x.
3. `rflint --version`.  Target: < 0.5 s.

Also shown: `python -c "import torch"`, the floor every torch-using process pays.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BIN = os.path.dirname(sys.executable)
RFLINT = os.path.join(BIN, "rflint") if os.path.exists(os.path.join(BIN, "rflint")) else None
PY = sys.executable

SWEEP_TARGETS = ["bench/models.py:densenet264", "zoo:resnet18", "zoo:densenet121", "bench/models.py:resnet1000"]


def rflint_cmd(*args: str) -> list[str]:
    return [RFLINT, *args] if RFLINT else [PY, "-m", "rflint", *args]


def baseline_cmd(device: str | None) -> list[str]:
    build = "with torch.device('meta'):\n    m = densenet264()\n" if device == "meta" else "m = densenet264()\n"
    code = ("import sys, torch\nsys.path.insert(0, 'bench')\nfrom models import densenet264\n"
            f"{build}torch.fx.symbolic_trace(m)\n")
    return [PY, "-c", code]


def _cpu_children() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _check_output(cmd: list[str], text: str) -> str | None:
    """Why the output of an rflint command is not what a real run prints (None: it is)."""
    if "--version" in cmd:
        return None if text.startswith("rflint ") else "no version line"
    if "json" not in cmd:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return "stdout is not JSON"
    if "sweep" in cmd:
        want = 1 if "--sizes" in cmd else 10
        return None if len(doc.get("sizes", [])) == want else f"sweep has {len(doc.get('sizes', []))} sizes, not {want}"
    return None if doc.get("models") and doc["models"][0].get("layers") else "no analysed model in the JSON"


def run_once(cmd: list[str]) -> tuple[float, float]:
    """(wall, cpu) seconds of one fresh process; cpu = user + sys of the child (less sensitive than
    wall time to other load on the machine).  rflint's output is checked, so a run that failed
    quickly cannot pass for a fast one."""
    c0, t0 = _cpu_children(), time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, _cpu_children() - c0
    problem = f"exit code {proc.returncode}" if proc.returncode not in (0, 1) else None  # 1 = findings
    if problem is None and (cmd[0] == RFLINT or cmd[1:3] == ["-m", "rflint"]):
        problem = _check_output(cmd, proc.stdout)
    if problem:
        raise SystemExit(f"bench/e2e.py: {' '.join(cmd)}: {problem}\n{proc.stderr.strip()[-2000:]}")
    return wall, cpu


def timed_group(cmds: dict[str, list[str]], runs: int, warmup: int) -> dict[str, dict]:
    """Round-robin over the commands (A B C A B C ...), so drifting load hits all of them alike; the
    first ``warmup`` rounds (cold file caches) are not counted."""
    walls: dict[str, list[float]] = {k: [] for k in cmds}
    cpus: dict[str, list[float]] = {k: [] for k in cmds}
    for i in range(warmup + runs):
        for key, cmd in cmds.items():
            wall, cpu = run_once(cmd)
            if i >= warmup:
                walls[key].append(wall)
                cpus[key].append(cpu)
    return {k: {"cmd": " ".join(c if "\n" not in c else repr(c) for c in cmds[k]),
                "median": statistics.median(walls[k]), "cpu_median": statistics.median(cpus[k]),
                "runs": walls[k], "cpu_runs": cpus[k]} for k in cmds}


def verdict(value: float, limit: float) -> str:
    return "PASS" if value < limit else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1, help="uncounted rounds first (cold caches)")
    parser.add_argument("--json", default=None, metavar="FILE")
    parser.add_argument("--quick", action="store_true", help="sweep only DenseNet-264 and zoo:resnet18")
    args = parser.parse_args()
    n = args.runs
    sys.path.insert(0, HERE)
    from run import git_state

    out: dict = {"runs": n, "warmup": args.warmup, "cpus": os.cpu_count(), "loadavg_start": os.getloadavg(),
                 "git": git_state()}

    def show(label: str, r: dict) -> dict:
        print(f"  {label:62s} {r['median']:7.3f} s  cpu {r['cpu_median']:7.3f} s   "
              f"runs: {' '.join(f'{t:.2f}' for t in r['runs'])}", flush=True)
        return r

    def ratio(a: dict, b: dict) -> tuple[float, float]:
        return a["median"] / b["median"], a["cpu_median"] / b["cpu_median"]

    print(f"median of {n} fresh processes (after {args.warmup} uncounted round), wall and user+sys cpu seconds; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cpus")
    print("1. DenseNet-264 at 224: rflint CLI vs build + fx trace (interleaved)")
    g = timed_group({
        "import_torch": [PY, "-c", "import torch"],
        "rflint": rflint_cmd("bench/models.py:densenet264", "--input", "224", "--format", "json"),
        "baseline_meta": baseline_cmd("meta"),
        "baseline_cpu": baseline_cmd(None),
    }, n, args.warmup)
    show("python -c 'import torch'   (floor)", g["import_torch"])
    show("rflint bench/models.py:densenet264 --input 224 --format json", g["rflint"])
    show("build (meta) + torch.fx.symbolic_trace", g["baseline_meta"])
    show("build (cpu, real weights) + torch.fx.symbolic_trace", g["baseline_cpu"])
    r1, r1cpu = ratio(g["rflint"], g["baseline_meta"])
    rc, _ = ratio(g["rflint"], g["baseline_cpu"])
    print(f"  => rflint / (meta build + trace) = {r1:.2f}x wall, {r1cpu:.2f}x cpu  (target < 2.5x: {verdict(r1, 2.5)});"
          f"  vs cpu build + trace {rc:.2f}x")
    out["densenet264"] = {**g, "ratio": r1, "ratio_cpu": r1cpu, "ratio_vs_cpu_build": rc, "pass": r1 < 2.5}

    print("2. sweep over 10 sizes (--from 32 --to 512 --steps 10) vs one size (interleaved per target)")
    out["sweep"] = {}
    for target in SWEEP_TARGETS[:2] if args.quick else SWEEP_TARGETS:
        g = timed_group({
            "single_check": rflint_cmd(target, "--input", "224", "--format", "json"),
            "single_sweep": rflint_cmd("sweep", target, "--sizes", "224", "--format", "json"),
            "sweep10": rflint_cmd("sweep", target, "--from", "32", "--to", "512", "--steps", "10", "--format", "json"),
        }, n, args.warmup)
        show(f"rflint {target} --input 224 -f json", g["single_check"])
        show(f"rflint sweep {target} --sizes 224 -f json", g["single_sweep"])
        show(f"rflint sweep {target} --from 32 --to 512 --steps 10 -f json", g["sweep10"])
        r2, r2cpu = ratio(g["sweep10"], g["single_check"])
        r3, _ = ratio(g["sweep10"], g["single_sweep"])
        print(f"  => sweep(10) / check(1) = {r2:.2f}x wall, {r2cpu:.2f}x cpu  (target < 3x: {verdict(r2, 3.0)});"
              f"  sweep(10) / sweep(1) = {r3:.2f}x")
        out["sweep"][target] = {**g, "ratio": r2, "ratio_cpu": r2cpu, "ratio_vs_sweep1": r3, "pass": r2 < 3.0}

    print("3. rflint --version")
    ver = timed_group({"version": rflint_cmd("--version")}, n, args.warmup)["version"]
    show("rflint --version", ver)
    out["version"] = {**ver, "pass": ver["median"] < 0.5}
    print(f"  => {ver['median']:.3f} s  (target < 0.5 s: {verdict(ver['median'], 0.5)})")
    out["loadavg_end"] = os.getloadavg()

    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
