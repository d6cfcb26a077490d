"""Machine formats: json, sarif, github, markdown.  (text lives in text.py.)"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from rflint._version import __version__
from rflint.report.model import SCHEMA_VERSION, ModelReport
from rflint.rules.structure import fmt_size

SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
GITHUB_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def render(fmt: str, reports: list[ModelReport]) -> str:
    return {"json": render_json, "sarif": render_sarif, "github": render_github, "markdown": render_markdown}[fmt](reports)


def render_json(reports: list[ModelReport]) -> str:
    doc = {"version": SCHEMA_VERSION, "rflint": __version__, "models": [r.document() for r in reports]}
    return json.dumps(doc, indent=2)


def relative_uri(file: str) -> str:
    """Paths relative to the working directory (the repository root in CI), as SARIF viewers want."""
    rel = os.path.relpath(file)
    if rel.startswith(".."):
        return Path(file).resolve().as_uri()
    return Path(rel).as_posix()


def fingerprint(report: ModelReport, finding) -> str:
    """Stable across runs and line moves: model target, input size, rule and layer."""
    key = "|".join([report.analysis.target, fmt_size(report.analysis.input_size), finding.code, finding.layer or ""])
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def render_sarif(reports: list[ModelReport]) -> str:
    from rflint.ruledocs import load_all

    docs = load_all()
    codes = list(docs)
    rules = [
        {
            "id": doc.code,
            "name": doc.name,
            "shortDescription": {"text": doc.summary},
            "fullDescription": {"text": doc.sections.get("What it does", doc.summary)},
            "help": {"text": doc.text, "markdown": doc.text},
            "defaultConfiguration": {"level": SARIF_LEVEL[doc.severity]},
        }
        for doc in docs.values()
    ]
    results = []
    for report in reports:
        for f in report.findings:
            result = {
                "ruleId": f.code,
                "level": SARIF_LEVEL[f.severity],
                "message": {"text": f"{f.message} [{report.analysis.target} @ {fmt_size(report.analysis.input_size)}]"},
                "partialFingerprints": {"rflintFinding/v1": fingerprint(report, f)},
                "properties": {"target": report.analysis.target, "input": list(report.analysis.input_size),
                               "layer": f.layer},
            }
            if f.code in codes:
                result["ruleIndex"] = codes.index(f.code)
            if f.source is not None:
                result["locations"] = [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": relative_uri(f.source.file)},
                        "region": {"startLine": f.source.line},
                    },
                    "logicalLocations": [{"fullyQualifiedName": f"{report.analysis.target}/{f.layer}", "kind": "member"}],
                }]
            results.append(result)
    sarif = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "rflint", "version": __version__, "semanticVersion": __version__,
                "informationUri": "https://pypi.org/project/rflint/", "rules": rules,
            }},
            "results": results,
        }],
    }
    return json.dumps(sarif, indent=2)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(reports: list[ModelReport]) -> str:
    """GitHub Actions workflow commands: annotations on the line that builds each layer."""
    lines = []
    for report in reports:
        for f in report.findings:
            props = []
            if f.source is not None:
                props.append(f"file={_escape_property(relative_uri(f.source.file))}")
                props.append(f"line={f.source.line}")
            props.append(f"title={_escape_property(f'{f.code} ' + (f.layer or ''))}")
            message = f"{f.message} [{report.analysis.target} @ {fmt_size(report.analysis.input_size)}]"
            lines.append(f"::{GITHUB_LEVEL[f.severity]} {','.join(props)}::{_escape_data(message)}")
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(reports: list[ModelReport]) -> str:
    """A summary for PR comments and $GITHUB_STEP_SUMMARY."""
    from rflint.report.text import human

    out = ["## rflint", ""]
    out.append("| model | input | params | MACs | border | tail | errors | warnings | info |")
    out.append("|---|---|---:|---:|---|---|---:|---:|---:|")
    for r in reports:
        a, s = r.analysis, r.structure
        count = {sev: sum(1 for f in r.findings if f.severity == sev) for sev in ("error", "warning", "info")}
        tail = f"{len(s.tail.parametric_layers)} layers after `{s.tail.cut_name}`" if s.tail else "none"
        out.append(
            f"| `{_md(a.target)}` | {fmt_size(a.input_size)} | {human(a.params)} | {human(a.macs)} | "
            f"{'`' + s.border.name + '`' if s.border else '-'} | {tail} | {count['error']} | {count['warning']} | {count['info']} |"
        )
    for r in reports:
        if not r.findings:
            continue
        out += ["", f"### `{_md(r.analysis.target)}` @ {fmt_size(r.analysis.input_size)}", "",
                "| severity | code | layer | message |", "|---|---|---|---|"]
        for f in r.findings:
            out.append(f"| {f.severity} | {f.code} | `{_md(f.layer or '')}` | {_md(f.message)} |")
        plan = r.truncation
        if plan is not None:
            out += ["", f"**Suggested truncation:** keep up to `{plan.cut_name}`, then global average pooling + "
                        f"Linear({plan.cut_channels}, {plan.n_out}): params {human(plan.params_before)} -> "
                        f"{human(plan.params_after)}, MACs {human(plan.macs_before)} -> {human(plan.macs_after)}."]
    return "\n".join(out)
