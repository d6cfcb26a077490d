"""bench/run.py end to end on one case: every phase is measured, and the parts add up as its
docstring says (the stem experiment is part of the rules phase, the base ratio leaves it and the
clean-size search out).  Timings themselves are not asserted: speed is the benchmark's job."""

from __future__ import annotations

import json
import os
import subprocess
import sys

RUN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "run.py")


def test_bench_reports_every_phase_and_the_stem_inside_rules(tmp_path):
    out = tmp_path / "bench.json"
    # resnet18 at 32 px has a tail and a stem (conv1, maxpool), so the stem experiment runs
    proc = subprocess.run([sys.executable, RUN, "resnet18@32", "--runs", "2", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    result = doc["results"]["resnet18@32"]
    assert result["status"] == "ok", result
    med = result["median"]
    header = next(line for line in proc.stdout.splitlines() if line.startswith("case"))
    assert "(stem)" in header.split() and "base" in header.split()
    assert all(med[k] > 0 for k in ("trace", "shapes", "rf_program", "rules", "stem", "clean_size", "report"))
    for run in result["runs"]:
        assert 0 < run["stem"] <= run["rules"]
    front = med["trace"] + med["shapes"]
    back = med["rf_program"] + med["at_rest"] + med["rules"] + med["report"]
    assert abs(result["ratio"] - back / front) < 1e-9
    assert abs(result["ratio_with_clean"] - (back + med["clean_size"]) / front) < 1e-9
    assert abs(result["ratio_base"] - (back - med["stem"]) / front) < 1e-9
    assert "RF003" in result["findings"]  # the stem experiment found the removable stem it timed
    assert "base ratio" in proc.stdout and "resnet18@32" in proc.stdout
