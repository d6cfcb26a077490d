"""Per-phase timings of rflint, median of N runs:  python bench/run.py [--runs 5] [--json out.json] [names...]

Phases: build (load the model, meta device), trace (torch.fx), shapes (meta propagation),
rf_program (the RF dynamic program), rules (all rules, incl. the stem experiment), report (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from models import diamond_chain  # noqa: E402

CASES = {
    "diamond60@32": (diamond_chain, 32),
    "resnet18@32": ("zoo:resnet18", 32),
    "resnet18@224": ("zoo:resnet18", 224),
    "vgg16@224": ("zoo:vgg16", 224),
    "densenet121@224": ("zoo:densenet121", 224),
}


def measure(target, size) -> dict[str, float]:
    from rflint.engine.analysis import Prepared, _first_conv
    from rflint.report import build_report
    from rflint.report.formats import render_json
    from rflint.trace import fx_trace, load_model

    t0 = time.perf_counter()
    loaded = load_model(target)
    t1 = time.perf_counter()
    traced = fx_trace(loaded.module)
    t2 = time.perf_counter()
    channels, n_axes = _first_conv(traced.gm, loaded.module)
    prepared = Prepared(loaded, traced, channels, n_axes)
    analysis = prepared.at(size)
    t3 = time.perf_counter()
    report = build_report(analysis)
    report.findings  # noqa: B018  (rules run in build_report)
    t4 = time.perf_counter()
    render_json([report])
    t5 = time.perf_counter()
    return {
        "build": t1 - t0, "trace": t2 - t1,
        "shapes": analysis.timings["shapes"], "rf_program": analysis.timings["rf_program"],
        "rules": t4 - t3, "report": t5 - t4, "layers": len(analysis.layers), "nodes": len(analysis.order),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help=f"cases (default: all): {', '.join(CASES)}")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()
    names = args.names or list(CASES)
    results = {}
    print(f"{'case':18s} {'nodes':>6s} {'build':>8s} {'trace':>8s} {'shapes':>8s} {'rf_prog':>8s} {'rules':>8s} {'report':>8s}  (median of {args.runs}, seconds)")
    for name in names:
        target, size = CASES[name]
        runs = [measure(target, size) for _ in range(args.runs)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        results[name] = med
        print(f"{name:18s} {int(med['nodes']):6d} {med['build']:8.4f} {med['trace']:8.4f} {med['shapes']:8.4f} "
              f"{med['rf_program']:8.4f} {med['rules']:8.4f} {med['report']:8.4f}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak_mb:.0f} MB")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"runs": args.runs, "peak_rss_mb": peak_mb, "results": results}, fh, indent=2)


if __name__ == "__main__":
    main()
