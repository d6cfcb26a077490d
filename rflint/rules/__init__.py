"""Layer 3: rules.  One module per rule (rfNNN_<name>.py); docs in rules/<CODE>.md at the repo root.

``lint()`` runs the selected rules over an Analysis and returns the findings that are not
suppressed, most severe first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rflint.engine import Analysis
from rflint.errors import RflintError
from rflint.rules.base import SEVERITY_RANK, Finding, Rule, Settings
from rflint.rules.context import LintContext
from rflint.rules.rf001_unproductive_layer import UnproductiveLayer
from rflint.rules.rf002_predicted_tail import PredictedTail
from rflint.rules.rf003_removable_stem import RemovableStem
from rflint.rules.rf004_dead_kernel_taps import DeadKernelTaps
from rflint.rules.rf005_insufficient_receptive_field import InsufficientReceptiveField
from rflint.rules.rf006_partially_unproductive_layer import PartiallyUnproductiveLayer
from rflint.rules.rf007_non_dominant_branch import NonDominantBranch
from rflint.rules.suppression import directive_problems, ignore_usage, is_suppressed, model_codes_of
from rflint.trace.sources import Source, class_header, installed_file

RULES: list[Rule] = [
    UnproductiveLayer(),
    PredictedTail(),
    RemovableStem(),
    DeadKernelTaps(),
    InsufficientReceptiveField(),
    PartiallyUnproductiveLayer(),
    NonDominantBranch(),
]
RULES_BY_CODE = {rule.code: rule for rule in RULES}

__all__ = ["RULES", "RULES_BY_CODE", "Finding", "LintContext", "LintResult", "Rule", "Settings", "lint", "select_rules"]


def _matches(code: str, patterns: list[str]) -> bool:
    return any(p == "ALL" or code.startswith(p) for p in patterns)


def _codes(items: list[str] | str) -> list[str]:
    """Codes and prefixes, each item possibly several: "RF001,RF005" as ruff takes them (a bare
    string too: select_rules("RF001") read it letter by letter)."""
    if isinstance(items, str):
        items = [items]
    return [code.strip().upper() for item in items for code in item.split(",") if code.strip()]


def known_codes(items: list[str]) -> list[str]:
    """The codes and prefixes of ``items`` (select / ignore lists), each checked to name a rule: a
    typo would silently select or ignore nothing."""
    codes = _codes(items)
    for pattern in codes:
        if pattern != "ALL" and not any(code.startswith(pattern) for code in RULES_BY_CODE):
            raise RflintError(f"unknown rule code or prefix {pattern!r} (see `rflint rules`)")
    return codes


def select_rules(select: list[str] | None = None, ignore: list[str] | None = None) -> list[Rule]:
    """ruff-style selection: codes or prefixes ("RF00", "RF"), "ALL"; ignore wins over select."""
    chosen = _codes(select or ["ALL"])
    if not chosen:  # --select "": a gate that checks nothing would pass silently
        raise RflintError("select names no rule; give codes or prefixes (RF001, RF00) or ALL")
    select = chosen
    ignore = known_codes(ignore or [])
    known_codes(select)
    chosen_rules = [r for r in RULES if _matches(r.code, select) and not _matches(r.code, ignore)]
    if not chosen_rules:  # as with an empty select: "No findings." from no rule would pass the gate
        raise RflintError(f"no rule left to run: ignore ({', '.join(ignore)}) takes every rule select "
                          f"({', '.join(select)}) names")
    return chosen_rules


@dataclass
class LintResult:
    context: LintContext
    findings: list[Finding]
    suppressed: int
    notes: list[str] = field(default_factory=list)  # ignore comments that silence nothing (suppression.py)
    # what ignore_usage() needs: every finding the rules made (suppressed too), the sources and
    # headers whose lines may hold ignore comments, and the codes of the rules that ran
    all_findings: list[Finding] = field(default_factory=list)
    sources: list = field(default_factory=list)
    headers: tuple = ()
    codes_run: list[str] = field(default_factory=list)

    def ignore_usage(self) -> dict[tuple[str, int, str], bool]:
        """Each ignore comment's codes on this model's lines, and whether one of this run's findings
        was silenced by it (suppression.ignore_usage); worked out only when asked (--warn-unused-ignores)."""
        return ignore_usage(self.sources, self.headers, self.all_findings, self.codes_run)


def lint(analysis: Analysis, settings: Settings | None = None, rules: list[Rule] | None = None,
         extra_ignore: list[str] | None = None) -> LintResult:
    if not isinstance(analysis, Analysis):
        raise RflintError(f"lint(): analysis must be what rflint.analyze returns, got {type(analysis).__name__}")
    if settings is not None and not isinstance(settings, Settings):
        raise RflintError(f"lint(): settings must be a rflint.rules.Settings, e.g. Settings(min_tail_layers=2), "
                          f"got {settings!r}")
    if settings is not None:
        settings.validate()
    if rules is not None and not (isinstance(rules, (list, tuple)) and all(isinstance(r, Rule) for r in rules)):
        raise RflintError(f"lint(): rules must be a list of rules, e.g. select_rules([\"RF001\"]), got {rules!r}")
    ctx = LintContext(analysis, settings)
    extra_ignore = _codes(extra_ignore) if extra_ignore else None
    loaded = analysis.prepared.loaded if analysis.prepared else None
    # the target's header, and the header of the class a factory returned
    headers = (loaded.factory_source, class_header(type(loaded.module))) if loaded else ()
    model_codes = model_codes_of(*headers) if loaded else None
    fallback = loaded.factory_source if loaded else None
    findings, suppressed, seen, pointed_at, made = [], 0, {}, [], []
    ran = rules if rules is not None else RULES
    for rule in ran:
        for finding in rule.check(ctx):
            made.append(finding)
            if finding.source is None:
                # a merge of a model fx built (a GraphModule, prepare_qat_fx's) has no line of its
                # own: the factory's, as a layer's.  A SARIF result without a location fails the
                # whole upload to GitHub code scanning, the gate's finding with it.
                finding.source = fallback
            elif fallback is not None and not finding.source.callers and installed_file(finding.source.file):
                # a merge in an installed package's forward(): no call of the user's led to it, so
                # the factory is where a comment covers it and where a checkout shows it
                src = finding.source
                finding.source = Source(src.file, src.line, src.end, (fallback,))
            if finding.source is not None:
                pointed_at.append(finding.source)  # (directive_problems takes each place once)
            if is_suppressed(finding, model_codes, seen) or (extra_ignore and _matches(finding.code, extra_ignore)):
                suppressed += 1
            else:
                findings.append(finding)
    findings.sort(key=lambda f: -SEVERITY_RANK[f.severity])
    # the comments on every line a finding points at (a merge's forward() line, which builds no
    # layer) as well as on the layers' lines: a typo in any of them must not go unnoticed
    sources = [layer.source for layer in analysis.layers] + pointed_at
    notes = directive_problems(sources, headers, sorted(rule.code for rule in RULES))
    return LintResult(ctx, findings, suppressed, notes, made, sources, headers, [rule.code for rule in ran])
