"""Inline suppression: ``# rflint: ignore[RF001,RF004]`` or a bare ``# rflint: ignore``.

The comment goes on the line that constructs the layer (where findings point), on the header of
a def or class the layer is built in (a block's ``class`` line, a helper's ``def`` line: the layers
built in its body), or on the factory / class line (including its decorators) to silence a code
for the whole model: the target's own header, and the class of the model a factory returns.
"""

from __future__ import annotations

import linecache
import re
import tokenize
from typing import Iterable

from rflint.rules.base import Finding
from rflint.trace import Source

# ``ignore`` followed by a list of codes or prefixes in brackets, or by nothing (the end of the line,
# or another comment): a bare ignore.  Anything else (``ignore[RF001 - tracked in #12]``, ``ignore
# [RF001]``, ``ignore: RF001``, ``ignore[]``) is malformed and silences nothing: read as a bare
# ignore, a typo would hide every finding, the predicted tail too, and the CI gate would pass.
# Case-insensitive, as ruff's ``# NOQA``: ``# RFLINT: IGNORE[RF001]`` read as no directive at all
# silenced nothing and was not reported either.
_PATTERN = re.compile(r"#\s*rflint:\s*ignore(?:\[\s*([A-Za-z]{2}\d{0,3}(?:\s*,\s*[A-Za-z]{2}\d{0,3})*)\s*,?\s*\]"
                      r"|(?=\s*(?:#|$)))", re.I)


_CODE = re.compile(r"\b(rf\d{1,3})\b", re.I)


def _codes_on(file: str, line: int) -> set[str] | None:
    """None: no directive (or a malformed one); empty set: bare ignore (everything); else the
    listed codes."""
    text = linecache.getline(file, line)
    match = _PATTERN.search(text)
    if not match:
        return None
    if match.group(1) is None:
        return set()
    return {c.strip().upper() for c in match.group(1).split(",") if c.strip()}


def _together(directives: Iterable[set[str] | None]) -> set[str] | None:
    """Several directives' codes as one: None when none has any, the empty set (everything) as soon
    as one is a bare ignore, else the union of the codes they list."""
    found: set[str] | None = None
    for codes in directives:
        if codes is not None and not codes:
            return set()  # a bare ignore silences everything
        if codes:
            found = (found or set()) | codes
    return found


def _codes_at(src: Source) -> set[str] | None:
    """:func:`_codes_on` over every line of a call that spans several (its directive may sit on
    any of them: black puts a trailing comment after the closing parenthesis), and over the header
    lines of every def and class the call is written in (a ``class BasicBlock`` or a helper ``def
    conv_bn`` line covers the layers built in its body, as pylint reads a disable on a def line),
    together."""
    return _together(_codes_on(file, line) for file, line in _lines_of(src))


def _lines_of(src: Source) -> list[tuple[str, int]]:
    """The (file, line) places an ignore comment for a layer built at ``src`` may sit on: the
    call's lines, the headers of the defs and classes around it, and the lines of the calls
    further out that led to it (``self.b2 = conv_bn(...)``, the factory's ``return Net()``)."""
    lines = [(src.file, n) for n in (*src.lines(), *enclosing_header_lines(src.file, src.line))]
    lines += _chain_lines(src.callers)
    return lines


def _chain_lines(chain) -> list[tuple[str, int]]:
    """The callers' lines, and the headers of the defs and classes around each (a `class Block`
    line covers the layers a helper builds when called in Block's body)."""
    return [(caller.file, n) for caller in chain
            for n in (*caller.lines(), *enclosing_header_lines(caller.file, caller.line))]


# file -> (its lines as linecache holds them, per line the header lines of the blocks around it)
_BLOCKS: dict[str, tuple[list[str], list[tuple[int, ...]]]] = {}


def enclosing_header_lines(file: str, line: int) -> tuple[int, ...]:
    """The header lines (decorators through the colon) of the defs and classes of ``file`` whose
    body holds ``line``.  Only a file with a directive in it is parsed, once per version of it
    that linecache holds (a file rewritten and reloaded is parsed again): most have none."""
    lines = linecache.getlines(file)
    cached = _BLOCKS.get(file)
    if cached is None or cached[0] is not lines:
        cached = _BLOCKS[file] = (lines, _headers_per_line(file, lines))
    per_line = cached[1]
    return per_line[line] if 0 <= line < len(per_line) else ()


def _headers_per_line(file: str, lines: list[str]) -> list[tuple[int, ...]]:
    """Per line number, the header lines of every block whose body holds it.  Made once per file in
    one pass over the blocks, outer ones first (defs and classes nest), so each layer's lookup is
    an index: a file of 1600 block classes with a directive in it took 1600 steps per layer."""
    blocks = _blocks(file, lines)
    per_line: list[tuple[int, ...]] = [()] * (len(lines) + 2)
    for first, last, end in sorted(blocks, key=lambda b: (b[0], -b[2])):  # outer before inner
        around = per_line[first]  # the headers of the blocks this one's header sits in
        own = around + tuple(range(first, last + 1))
        for n in range(last + 1, min(end, len(lines)) + 1):
            per_line[n] = own
    return per_line


def _blocks(file: str, lines: list[str]) -> list[tuple[int, int, int]]:
    """(first header line, last header line, last line) of every def and class of a file with a
    directive in it; none for the rest."""
    import ast

    text = "".join(lines)
    if not _DIRECTIVE.search(text):
        return []
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            out.append((first, _header_end(file, node.lineno), node.end_lineno or node.lineno))
    return out


def _matches(codes: set[str] | None, code: str) -> bool:
    return codes is not None and (not codes or any(code.startswith(c) for c in codes))


def model_level_codes(factory: Source | None) -> set[str] | None:
    """Directives on the factory/class header lines (decorators through the def/class line)."""
    if factory is None:
        return None
    return _together(_codes_on(line.file, line.line) for line in _header_lines(factory))


def model_codes_of(*headers: Source | None) -> set[str] | None:
    """:func:`model_level_codes` of several headers (a factory's ``def`` and the class of the
    model it returns), together."""
    return _together(model_level_codes(header) for header in headers)


def is_suppressed(finding: Finding, model_codes: set[str] | None, seen: dict | None = None) -> bool:
    """``seen``: the directives of the sources looked at so far in this lint run, by place (the
    findings of one model point at a few lines, many at each: RF001 on every block of a stage)."""
    if _matches(model_codes, finding.code):
        return True
    src = finding.source
    if src is None:
        return False
    if seen is None:
        return _matches(_codes_at(src), finding.code)
    key = (src.file, src.line, src.end, id(src.callers))  # (one helper line, reached from two call
    # sites: two chains; a chain is one object, trace/sources.py _CHAINS)
    if key not in seen:
        seen[key] = _codes_at(src)
    return _matches(seen[key], finding.code)


_DIRECTIVE = re.compile(r"#\s*rflint:\s*ignore", re.I)


def _header_lines(header: Source) -> list[Source]:
    """The lines of a model's header: its decorators through the def/class line, and on to the
    colon that ends it when its parameters span several lines (``def build(\n    depth=18,\n):``)."""
    lines = []
    for line in range(header.line, header.line + 20):
        text = linecache.getline(header.file, line)
        lines.append(Source(header.file, line))
        if text.lstrip().startswith(("def ", "class ", "async def ")):
            end = _header_end(header.file, line)
            lines += [Source(header.file, n) for n in range(line + 1, end + 1)]
            break
        if not text:
            break
    return lines


def _header_end(file: str, line: int) -> int:
    """The line of the colon that ends the def/class statement starting at ``line``."""
    if _colon_on_line(linecache.getline(file, line)):
        return line  # what the tokens say, without tokenizing (tens of microseconds, per header)
    source = iter(linecache.getlines(file)[line - 1:line + 199])
    depth = 0
    try:
        for token in tokenize.generate_tokens(lambda: next(source, "")):
            if token.type == tokenize.OP and token.string in _OPENING:
                depth += 1
            elif token.type == tokenize.OP and token.string in _CLOSING:
                depth -= 1
            elif token.type == tokenize.OP and token.string == ":" and depth == 0:
                return line + token.start[0] - 1
    except (tokenize.TokenError, SyntaxError):
        pass
    return line


_OPENING, _CLOSING = frozenset("([{"), frozenset(")]}")


def _colon_on_line(text: str) -> bool:
    """The line ends its def/class statement itself: a colon outside brackets, in a line without
    strings, comments or backslashes, where brackets and colons are tokens as they stand (so the
    tokenizer would find that colon first; a ``:=`` is another token).  False: tokenize decides."""
    if "'" in text or '"' in text or "#" in text or "\\" in text:
        return False
    depth = 0
    for i, char in enumerate(text):
        if char in _OPENING:
            depth += 1
        elif char in _CLOSING:
            depth -= 1
        elif char == ":" and depth == 0 and text[i + 1:i + 2] != "=":
            return True
    return False


_LOOSE_CODE = re.compile(r"\brf[\s_-]*(\d+)", re.I)


def _meant_codes(text: str) -> list[str]:
    """The rule codes a malformed comment means, as they are written: RF001 from ``RF001``, but also
    from ``RF0001``, ``rf_001``, ``RF-1`` (a code is RF and three digits)."""
    return [f"RF{int(digits):03d}" for digits in _LOOSE_CODE.findall(text) if int(digits) < 1000]


def _directive_lines(sources, headers) -> set[tuple[str, int]]:
    """Every line an ignore comment for these sources may sit on: the lines of each call, the
    headers of the defs and classes around it, and the model's headers."""
    # (file, line) pairs, not Sources: a model's layers are built on a few lines, each source seen
    # once (a Source per layer line cost more than reading the lines)
    places = {(s.file, s.line, s.end) for s in sources if s is not None}
    lines = {(file, line) for file, first, end in places for line in range(first, max(first, end) + 1)}
    lines.update((file, line) for file, first, _ in places for line in enclosing_header_lines(file, first))
    chains = {id(s.callers): s.callers for s in sources if s is not None and s.callers}  # each chain once
    for chain in chains.values():
        lines.update(_chain_lines(chain))
    lines.update(_header_places(headers))
    return lines


def _header_places(headers) -> list[tuple[str, int]]:
    """The (file, line) places of the model's headers (the factory's, its class's)."""
    return [(line.file, line.line) for header in headers if header is not None for line in _header_lines(header)]


def ignore_usage(sources, headers, findings: list[Finding], codes_run: list[str]) -> dict[tuple[str, int, str], bool]:
    """Each code of each well-formed ignore comment on the lines of ``sources`` and ``headers``
    (``"*"`` for a bare ignore), keyed (file, line, code), and whether it silenced one of
    ``findings`` (all of them, suppressed or not).  Only codes of rules that ran (``codes_run``):
    a comment for a rule deselected in this run cannot be judged.  For --warn-unused-ignores: a
    stale ``ignore[RF002]`` on a shared block would hide a tail that appears later."""
    listed: dict[tuple[str, int, str], bool] = {}
    for file, number in _directive_lines(sources, headers):
        codes = _codes_on(file, number)
        if codes is None:  # none, or malformed (directive_problems says so)
            continue
        for code in codes or {"*"}:
            if code == "*" or any(run.startswith(code) for run in codes_run):
                listed[(file, number, code)] = False
    if not listed:
        return listed
    model_lines = _header_places(headers)
    for finding in findings:
        src = finding.source
        lines = model_lines + (_lines_of(src) if src is not None else [])
        for file, number in lines:
            codes = _codes_on(file, number)
            for code in (codes or {"*"}) if codes is not None else ():
                key = (file, number, code)
                if key in listed and (code == "*" or finding.code.startswith(code)):
                    listed[key] = True
    return listed


def directive_problems(sources, headers, codes: list[str]) -> list[str]:
    """What is wrong with the ignore comments on the layers' lines and the model's headers: a
    malformed one (``ignore [RF001]``) or one naming no rule (``ignore[RF999]``) silences nothing,
    which a user would not notice without being told."""
    problems = []
    lines = _directive_lines(sources, headers)
    for file, number in sorted(lines):
        text = linecache.getline(file, number)
        if not _DIRECTIVE.search(text):
            continue
        where = f"{file}:{number}"
        listed = _codes_on(file, number)
        if listed is None:
            # the codes the comment names, as the comment should have written them; without any, a
            # placeholder (a real code pasted back would silence a rule nobody meant)
            meant = ",".join(dict.fromkeys(_meant_codes(text[_DIRECTIVE.search(text).end():])))
            problems.append(f"{where}: malformed ignore comment, it silences nothing "
                            f"(write # rflint: ignore[{meant or 'CODE,...'}] or a bare # rflint: ignore)")
            continue
        unknown = sorted(c for c in listed if not any(code.startswith(c) for code in codes))
        if unknown:
            problems.append(f"{where}: ignore comment names no rule: {', '.join(unknown)} (the codes are "
                            f"{codes[0]}..{codes[-1]}, see `rflint rules`)")
    return problems

