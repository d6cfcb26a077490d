"""Rule documentation: ``rules/<CODE>.md`` is the single source for ``rflint rule CODE``, the SARIF
rule descriptions and the README's rule table.  Imports nothing heavy (no torch): ``rflint rules``
answers instantly.

A doc looks like::

    # RF001 unproductive-layer

    **Severity:** warning

    One-sentence summary (SARIF shortDescription, README table).

    ## What it does       <- its leading blocks, up to 1024 characters: SARIF fullDescription
    ...
    ## Why it matters
    ## Example
    ```python            <- a complete model file; the tests run it
    ...
    ```
    <!-- example: target=build input=32 expect=RF001:features.10 -->
    ## How to fix
    ## Reference

Example directives: ``target`` (the factory in the code block), ``input`` (as on the CLI),
``expect`` (comma-separated ``CODE:layer`` pairs; the findings of the doc's code must be exactly
these; ``expect=none`` for a model that must pass), optional ``channels``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_TITLE = re.compile(r"^#\s+(RF\d{3})\s+([a-z0-9-]+)\s*$", re.M)
_SEVERITY = re.compile(r"^\*\*Severity:\*\*\s*(error|warning|info)\s*$", re.M)
_SECTION = re.compile(r"^##\s+(.+?)\s*$", re.M)
_CODE_BLOCK = re.compile(r"```python\n(.*?)```\s*\n<!--\s*example:(.*?)-->", re.S)
REQUIRED_SECTIONS = ("What it does", "Why it matters", "Example", "How to fix", "Reference")


@dataclass
class Example:
    code: str
    target: str
    input: str
    expect: list[tuple[str, str]]  # (code, layer); empty: the model must not trigger the rule
    channels: int | None = None


@dataclass
class RuleDoc:
    code: str
    name: str
    severity: str
    summary: str
    text: str
    sections: dict[str, str] = field(default_factory=dict)
    examples: list[Example] = field(default_factory=list)
    path: Path | None = None


def docs_dir() -> Path:
    """Inside a wheel the docs are package data; in a source checkout they sit at the repo root."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_rules", here.parent / "rules"):
        if candidate.is_dir() and any(candidate.glob("RF*.md")):
            return candidate
    raise FileNotFoundError("rflint's rule docs (rules/RF*.md) are missing from this installation")


def parse(text: str, path: Path | None = None) -> RuleDoc:
    title = _TITLE.search(text)
    severity = _SEVERITY.search(text)
    if not title or not severity:
        raise ValueError(f"{path}: a rule doc starts with '# RFnnn name' and a '**Severity:** ...' line")
    after = text[severity.end():].strip()
    summary = after.split("\n\n", 1)[0].replace("\n", " ").strip()
    sections: dict[str, str] = {}
    matches = list(_SECTION.finditer(text))
    for m, nxt in zip(matches, matches[1:] + [None]):
        sections[m.group(1)] = text[m.end(): nxt.start() if nxt else len(text)].strip()
    examples = []
    for block in _CODE_BLOCK.finditer(text):
        opts = dict(kv.split("=", 1) for kv in block.group(2).split())
        expect = [] if opts.get("expect", "none") == "none" else [
            tuple(pair.split(":", 1)) for pair in opts["expect"].split(",")
        ]
        examples.append(Example(block.group(1), opts.get("target", "build"), opts.get("input", "32"),
                                expect, int(opts["channels"]) if "channels" in opts else None))
    return RuleDoc(title.group(1), title.group(2), severity.group(1), summary, text, sections, examples, path)


def load_all() -> dict[str, RuleDoc]:
    docs = {}
    for path in sorted(docs_dir().glob("RF*.md")):
        doc = parse(path.read_text(encoding="utf-8"), path)
        docs[doc.code] = doc
    return docs


def load(code: str) -> RuleDoc:
    """A rule's doc by its code (RF002, rf002) or its name (predicted-tail), as ruff takes either."""
    docs = load_all()
    wanted = code.strip()
    found = docs.get(wanted.upper()) or next((d for d in docs.values() if d.name == wanted.lower()), None)
    if found is None:
        raise KeyError(f"unknown rule {wanted!r}; known rules: "
                       f"{', '.join(f'{d.code} ({d.name})' for d in docs.values())}")
    return found


def readme_table() -> str:
    """The README's rule table (tests keep the README in sync with the docs)."""
    rows = ["| code | name | severity | what it flags |", "|---|---|---|---|"]
    for doc in load_all().values():
        rows.append(f"| [{doc.code}](rules/{doc.code}.md) | {doc.name} | {doc.severity} | {doc.summary} |")
    return "\n".join(rows)


def sync_readme(path: Path) -> bool:
    """Rewrite the table between the rules-table markers; True if the file changed."""
    start, end = "<!-- rules-table:start -->\n", "<!-- rules-table:end -->"
    text = path.read_text(encoding="utf-8")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    new = f"{head}{start}{readme_table()}\n{end}{tail}"
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":  # python -m rflint.ruledocs README.md
    import sys

    changed = sync_readme(Path(sys.argv[1] if len(sys.argv) > 1 else "README.md"))
    print("README rule table updated" if changed else "README rule table up to date")
