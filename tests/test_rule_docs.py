"""The rule docs (rules/RF*.md) are executable: every example model in them is linted and must
produce exactly the findings its ``<!-- example: ... expect=... -->`` line documents (fixit-style).

Each example is its own test id, e.g. ``test_example[RF001-1-triggers]``.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import uuid

import pytest

import rflint
from rflint.ruledocs import REQUIRED_SECTIONS, load_all
from rflint.rules import RULES, lint

DOCS = load_all()

EXAMPLES = [
    pytest.param(doc, i, ex, id=f"{code}-{i + 1}-{'triggers' if ex.expect else 'passes'}")
    for code, doc in DOCS.items()
    for i, ex in enumerate(doc.examples)
]

_DIRECTIVE = re.compile(r"<!--\s*example:.*?-->", re.S)
_TEXT_BLOCK = re.compile(r"```text\n(.*?)```", re.S)
_FINDING_LINE = re.compile(r"^(error|warning|info)\s+(RF\d{3})\s")


def parse_input(text: str) -> int | tuple[int, ...]:
    """The CLI's --input syntax: "32" -> 32, "32x48" -> (32, 48), "8x16x16" -> (8, 16, 16)."""
    sizes = tuple(int(part) for part in text.lower().split("x"))
    return sizes[0] if len(sizes) == 1 else sizes


def import_example(code: str, directory) -> object:
    """Write the example to ``model.py`` (as a user would) and import it as a fresh module, so
    findings point at real file lines and inline ``# rflint: ignore`` comments work."""
    path = directory / "model.py"
    path.write_text(code, encoding="utf-8")
    name = f"rflint_doc_example_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and friends look their module up here
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


def run_example(ex, directory):
    module = import_example(ex.code, directory)
    assert hasattr(module, ex.target), f"the example defines no {ex.target!r}"
    analysis = rflint.analyze(getattr(module, ex.target), input_size=parse_input(ex.input), channels=ex.channels)
    return lint(analysis)


# --------------------------------------------------------------------------- structure


def test_docs_exist():
    assert DOCS, "no rule docs found (rules/RF*.md)"


@pytest.mark.parametrize("doc", DOCS.values(), ids=list(DOCS))
def test_doc_structure(doc):
    assert doc.path is not None and doc.path.stem == doc.code, f"{doc.path}: file name must be {doc.code}.md"
    missing = [s for s in REQUIRED_SECTIONS if s not in doc.sections]
    assert not missing, f"{doc.code}: missing sections {missing}"
    for section in REQUIRED_SECTIONS:
        assert doc.sections[section].strip(), f"{doc.code}: section {section!r} is empty"
    assert doc.summary, f"{doc.code}: no summary paragraph after the severity line"
    assert not doc.summary.startswith(("#", "```", "<!--")), f"{doc.code}: the summary must be a plain paragraph"
    assert any(ex.expect for ex in doc.examples), f"{doc.code}: needs at least one triggering example"
    assert any(not ex.expect for ex in doc.examples), f"{doc.code}: needs at least one passing example"
    # Every python block must be an example: a ```python block without a directive right after it
    # would not run, and would make the parser swallow text up to the next directive.
    assert doc.text.count("```python") == len(doc.examples), (
        f"{doc.code}: every ```python block must be followed by an <!-- example: ... --> line"
    )
    for ex in doc.examples:
        for code, layer in ex.expect:
            assert code == doc.code, f"{doc.code}: an example may only expect its own code, got {code}"
            assert layer, f"{doc.code}: expect entries are CODE:layer"
        assert len(set(ex.expect)) == len(ex.expect), f"{doc.code}: duplicate expect entries"


@pytest.mark.parametrize("doc", DOCS.values(), ids=list(DOCS))
def test_arithmetic_in_prose_is_in_backticks(doc):
    # Markdown reads "7 + 2*2 = 11 ... 11 + 2*16" as "7 + 22 = 11 ... 11 + 216" with italics between
    # (`rflint rule`, GitHub alike): a * between two word characters belongs in a code span
    prose = re.sub(r"```.*?```", "", doc.text, flags=re.S)
    bare = [line for line in prose.splitlines() if re.search(r"\w\*\w", re.sub(r"`[^`]*`", "", line))]
    assert not bare, f"{doc.code}: put the arithmetic in backticks: {bare}"


def test_every_rule_has_a_doc_and_vice_versa():
    rules = {rule.code: rule for rule in RULES}
    assert set(rules) == set(DOCS), (
        f"rules without docs: {sorted(set(rules) - set(DOCS))}; docs without rules: {sorted(set(DOCS) - set(rules))}"
    )
    for code, rule in rules.items():
        assert DOCS[code].name == rule.name, f"{code}: doc name {DOCS[code].name!r} != rule name {rule.name!r}"
        assert DOCS[code].severity == rule.severity, (
            f"{code}: doc severity {DOCS[code].severity!r} != rule severity {rule.severity!r}"
        )


# --------------------------------------------------------------------------- examples


@pytest.mark.parametrize("doc, index, ex", EXAMPLES)
def test_example(doc, index, ex, tmp_path):
    result = run_example(ex, tmp_path)
    got = sorted((f.code, f.layer) for f in result.findings if f.code == doc.code)
    want = sorted(tuple(pair) for pair in ex.expect)
    assert got == want, (
        f"{doc.code} example {index + 1}: documented {want or 'none'}, rflint reports {got or 'none'}:\n"
        + "\n".join(f.message for f in result.findings if f.code == doc.code)
    )


_DATA_KEY = re.compile(r"`([a-z][a-z_]*)`")


@pytest.mark.parametrize("doc, index, ex", [p for p in EXAMPLES if p.values[2].expect])
def test_data_fields_are_the_documented_ones(doc, index, ex, tmp_path):
    """The README sends readers of findings[].data to each rule's "Data" section: it must name
    exactly the keys the rule reports."""
    bullets = doc.sections.get("Data", "").partition("\n\n")[2]  # after the intro line
    documented = set(_DATA_KEY.findall(bullets))
    for finding in (f for f in run_example(ex, tmp_path).findings if f.code == doc.code):
        assert set(finding.data) == documented, f"{doc.code}: reports {sorted(finding.data)}, documents {sorted(documented)}"


def _shown_output(doc, index: int) -> str | None:
    """The ```text block shown right after example ``index`` (before the next code block), if any."""
    directives = list(_DIRECTIVE.finditer(doc.text))
    start = directives[index].end()
    nxt = doc.text.find("```python", start)
    window = doc.text[start: nxt if nxt != -1 else len(doc.text)]
    block = _TEXT_BLOCK.search(window)
    return block.group(1) if block else None


@pytest.mark.parametrize("doc, index, ex", [p for p in EXAMPLES if p.values[2].expect])
def test_shown_output_is_current(doc, index, ex, tmp_path):
    """The finding lines a doc shows for a triggering example are what rflint prints for it now
    (the file is saved as model.py, as the docs assume)."""
    shown = _shown_output(doc, index)
    assert shown is not None, f"{doc.code} example {index + 1}: show rflint's output in a ```text block"
    lines = [line.rstrip() for line in shown.splitlines() if _FINDING_LINE.match(line)]
    assert lines, f"{doc.code} example {index + 1}: the ```text block shows no finding line"
    result = run_example(ex, tmp_path)
    printed = {
        f"{f.severity:<7} {f.code} model.py:{f.source.line} {f.message}" if f.source else
        f"{f.severity:<7} {f.code} {f.message}"
        for f in result.findings
    }
    for line in lines:
        assert line in printed, f"{doc.code} example {index + 1}: stale output line\n  {line}\nrflint prints:\n  " + "\n  ".join(sorted(printed))
