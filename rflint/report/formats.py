"""Machine formats: json, sarif, github, markdown.  (text lives in text.py.)

Every format renders from the version-1 JSON documents (``ModelReport.document()``), plain dicts,
so results computed in parallel worker processes (--jobs) render exactly like in-process ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from rflint._version import __version__
from rflint.report.humanize import note_place, shown_note, where_in, with_kwargs
from rflint.report.model import SCHEMA_VERSION

SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
GITHUB_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}

Doc = dict[str, Any]


def render(fmt: str, docs: list[Doc], errors: list[Doc] = (), skipped: list[Doc] = ()) -> str:
    """``errors``: the targets or sizes that could not be analysed ({"target", "input", "message"};
    input None when the model did not load): every format says so, next to the others' results.
    ``skipped``: the targets with nothing to lint ({"target", "message"}: no convolution, pooling or
    resampling layer), not an error, but named, so that a CI report does not pass a model in
    silence that rflint never looked into (a model converted to quantized layers, say)."""
    return {"json": render_json, "sarif": render_sarif, "github": render_github,
            "markdown": render_markdown}[fmt](docs, list(errors), list(skipped))


def size_text(values) -> str:
    return "x".join(str(v) for v in values)


def render_json(docs: list[Doc], errors: list[Doc] = (), skipped: list[Doc] = ()) -> str:
    return dumps({"version": SCHEMA_VERSION, "rflint": __version__, "models": docs, "errors": list(errors),
                  "skipped": list(skipped)})


_LEAF = json.JSONEncoder(ensure_ascii=True, separators=(", ", ": "))


def _one_line_encoder():
    """``_LEAF.encode`` without its per-call set-up: ``JSONEncoder.encode`` builds a new C encoder
    (and a circular-reference memo) for every value, which costs more than encoding one layer's
    line.  Documents are trees of plain dicts, lists, strings and numbers, so one C encoder without
    the circular check serves every call; where the C accelerator is missing, ``_LEAF.encode``."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return _LEAF.encode
    encoder = make(None, _LEAF.default, json.encoder.encode_basestring_ascii, None, ": ", ", ",
                   False, False, True)

    def encode(value: Any) -> str:
        if isinstance(value, str):
            return json.encoder.encode_basestring_ascii(value)
        return "".join(encoder(value, 0))
    return encode


_encode = _one_line_encoder()


def dumps(value: Any, depth: int = 4, level: int = 0) -> str:
    """JSON indented two spaces for the first ``depth`` levels, each deeper value (and every list of
    plain numbers or strings) on one line.

    For a report that is one line per layer and per finding: as easy to read and diff as fully
    indented JSON, and many times faster to write, because ``json.dumps(indent=...)`` falls back to
    the pure-Python encoder while one-line values use the C one."""
    if level >= depth or not isinstance(value, (dict, list)) or not value or (
            isinstance(value, list) and not any(isinstance(v, (dict, list)) for v in value)):
        return _encode(value)
    pad, inner = "  " * level, "  " * (level + 1)
    if level + 1 >= depth:  # every item on one line (a report's layers and findings): no call per item
        encode = _encode
        if isinstance(value, dict):
            items = [f"{inner}{encode(str(k))}: {encode(v)}" for k, v in value.items()]
            return "{\n" + ",\n".join(items) + f"\n{pad}}}"
        return "[\n" + ",\n".join([inner + encode(v) for v in value]) + f"\n{pad}]"
    if isinstance(value, dict):
        items = [f"{inner}{_encode(str(k))}: {dumps(v, depth, level + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    items = [inner + dumps(v, depth, level + 1) for v in value]
    return "[\n" + ",\n".join(items) + f"\n{pad}]"


def _in_workspace(file: str) -> str | None:
    """The path relative to the checkout (GitHub Actions' $GITHUB_WORKSPACE, else the working
    directory), None for a file outside it.  rflint run from a subdirectory of the checkout still
    names files as GitHub and code scanning know them."""
    root = os.environ.get("GITHUB_WORKSPACE") or os.getcwd()
    try:
        return Path(file).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return None


def checkout_place(finding: Doc) -> tuple[Doc | None, Doc | None]:
    """Where a finding shows in a checkout (SARIF, annotations, a job summary), and the line it is
    about when that is elsewhere: its source when that is a file of the checkout, else the first
    line further out that is (the factory's ``return DenseNet121(...)`` for a layer an installed
    package builds: a place in site-packages is one code scanning cannot show, nor the user edit).
    (None, None) for a finding without a source; (source, None) when no line is in the checkout."""
    source = finding["source"]
    if source is None or _of_checkout(source["file"]):
        return source, None
    inside = next((c for c in finding.get("called_from", ()) if _of_checkout(c["file"])), None)
    return (inside, source) if inside is not None else (source, None)


def _of_checkout(file: str) -> bool:
    """A file of the checkout's own code: inside it, and not an installed package (a `.venv` in the
    repository, as uv makes it, holds site-packages inside the checkout)."""
    return _in_workspace(file) is not None and "site-packages" not in file and "dist-packages" not in file


def relative_uri(file: str) -> str:
    """Paths relative to the checkout (``_in_workspace``), as SARIF viewers want, percent-encoded as
    a URI reference must be ("models dir/net.py" -> "models%20dir/net.py"); a file outside it as a
    file:// URI."""
    from urllib.parse import quote

    relative = _in_workspace(file)
    return quote(relative) if relative is not None else Path(file).resolve().as_uri()


def _name(doc: Doc) -> str:
    return with_kwargs(doc["target"], doc.get("kwargs"))


def fingerprint(doc: Doc, finding: Doc) -> str:
    """Stable across runs and line moves: model target (and the factory's keyword arguments, when
    it has any), input size, rule and layer.  The target is the model's name in reports: a config's
    name for a model it lists, a file target's path relative to the working directory however the
    command line spelled it (cli/run.py, _plain_spelling)."""
    key = "|".join([_name(doc), size_text(doc["input"]), finding["code"], finding["layer"] or ""])
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _where(doc: Doc) -> str:
    return f"[{_name(doc)} @ {size_text(doc['input'])}]"


def model_notes(docs: list[Doc]) -> list[tuple[Doc, str]]:
    """Each model's notes (the JSON ``warnings``: what rflint could not follow, ignore comments that
    silence nothing) once per model, not once per size: the CI formats show them next to the
    findings, where a malformed ignore comment would otherwise go unseen."""
    seen, out = set(), []
    for doc in docs:
        for note in doc.get("warnings", ()):
            key = (_name(doc), note)
            if key not in seen:
                seen.add(key)
                out.append((doc, note))
    return out


def error_text(error: Doc, several: bool = True) -> str:
    """An error's message and whose it is ("net.py:net: ..."; with several sizes in the run also
    which size, "net.py:net @ 2x2: ..."), unless the message says so already (most do: "input 2x2
    is too small for net.py:net ...").  A model given keyword arguments is named with them, as in
    its report ("net.py:net (depth=3)"): two configured entries of one factory are two models."""
    size = size_text(error["input"]) if several and error["input"] else None
    target, message = error["target"], error["message"]
    name = with_kwargs(target, error.get("kwargs"))
    if name != target and target in message:  # the message names the model: with its kwargs
        at = message.index(target)
        message = message[:at] + name + message[at + len(target):]
    if name in message and (size is None or size in message):
        return message
    if size is not None and message.startswith(name + ": "):  # not "net.py @ 32x32: net.py: ..."
        return f"{name} @ {size}{message[len(name):]}"
    name = name if name.isprintable() else repr(name)  # one line, always
    return f"{name}{f' @ {size}' if size else ''}: {message}"


# GitHub code scanning documents short and full rule descriptions as at most 1024 characters; the
# whole rule doc goes in ``help``, which has no such limit
SARIF_DESCRIPTION_LIMIT = 1024


def _leading_blocks(text: str, limit: int) -> str:
    """The first Markdown blocks of ``text`` (paragraphs, list items, fenced code: never cut inside
    one) that fit in ``limit`` characters, without a last one that ends in a colon (it announces
    what was left out); at least the first sentence when even the first block is longer."""
    prefixes = [""]  # the text of the first k blocks, k = 0, 1, ...
    for before, block in _blocks_of(text):
        joined = f"{prefixes[-1]}{before}{block}" if len(prefixes) > 1 else block
        if len(joined) > limit:
            break
        prefixes.append(joined)
    if len(prefixes) > 2 and prefixes[-1].rstrip().endswith(":"):
        prefixes.pop()
    if len(prefixes) > 1:
        return prefixes[-1]
    sentence = re.match(r".*?[.!?](?=\s+[A-Z(`*]|\s*$)", text, re.S)
    return sentence.group(0) if sentence and len(sentence.group(0)) <= limit else text[:limit - 3] + "..."


_LIST_ITEM = re.compile(r"(?:- |\d+\. )")  # a top-level item of a list, bulleted or numbered


def _blocks_of(text: str) -> list[tuple[str, str]]:
    """``text`` as (what precedes it, block) pairs: a block ends at a blank line, and each
    top-level list item is one; a fenced code block is one whatever it holds (blank lines too)."""
    pieces: list[tuple[str, list[str]]] = []
    fenced = blank = False
    for line in text.split("\n"):
        if fenced:
            pieces[-1][1].append(line)
            fenced = not line.lstrip().startswith("```")
            continue
        if not line.strip():
            blank = True
            continue
        opens_fence = line.lstrip().startswith("```")
        if not pieces or blank or _LIST_ITEM.match(line) or opens_fence:
            pieces.append(("\n\n" if blank else "\n" if pieces else "", [line]))
        else:
            pieces[-1][1].append(line)
        blank, fenced = False, opens_fence
    return [(before, "\n".join(lines)) for before, lines in pieces]


def render_sarif(docs: list[Doc], errors: list[Doc] = (), skipped: list[Doc] = ()) -> str:
    from rflint.ruledocs import load_all

    rule_docs = load_all()
    codes = list(rule_docs)
    rules = [
        {
            "id": d.code,
            "name": d.name,
            "shortDescription": {"text": d.summary},
            "fullDescription": {"text": _leading_blocks(d.sections.get("What it does", d.summary), SARIF_DESCRIPTION_LIMIT)},
            "help": {"text": d.text, "markdown": d.text},
            "defaultConfiguration": {"level": SARIF_LEVEL[d.severity]},
        }
        for d in rule_docs.values()
    ]
    results = []
    for doc in docs:
        for f in doc["findings"]:
            result = {
                "ruleId": f["code"],
                "level": SARIF_LEVEL[f["severity"]],
                "message": {"text": f"{f['message']} {_where(doc)}"},
                "partialFingerprints": {"rflintFinding/v1": fingerprint(doc, f)},
                "properties": {"target": _name(doc), "input": doc["input"], "layer": f["layer"]},
            }
            if f["code"] in codes:
                result["ruleIndex"] = codes.index(f["code"])
            place, built_at = checkout_place(f)
            if place is not None:
                result["locations"] = [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": relative_uri(place["file"])},
                        "region": {"startLine": place["line"]},
                    },
                    "logicalLocations": [{"fullyQualifiedName": f"{_name(doc)}/{f['layer']}", "kind": "member"}],
                }]
            if built_at is not None:  # the layer's own line, in an installed package
                result["relatedLocations"] = [{
                    "id": 1,
                    "physicalLocation": {"artifactLocation": {"uri": relative_uri(built_at["file"])},
                                         "region": {"startLine": built_at["line"]}},
                    "message": {"text": "the line that builds the layer"},
                }]
            results.append(result)
    sarif = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            # (no informationUri: rflint has no public home page yet, and the PyPI address it named
            # was no project's; each rule's full documentation travels in its help text)
            "tool": {"driver": {
                "name": "rflint", "version": __version__, "semanticVersion": __version__, "rules": rules,
            }},
            "results": results,
            # a target that could not be analysed: the run was not a success, whatever the results
            "invocations": [{
                "executionSuccessful": not errors,
                "toolExecutionNotifications": [
                    {"level": "error", "message": {"text": error_text(e)}, "descriptor": {"id": "rflint/model-error"}}
                    for e in errors
                ] + [_sarif_note(doc, note) for doc, note in model_notes(docs)] + [
                    {"level": "note", "message": {"text": s["message"]}, "descriptor": {"id": "rflint/nothing-to-lint"}}
                    for s in skipped
                ],
            }],
        }],
    }
    return json.dumps(sarif, indent=2)


def _sarif_note(doc: Doc, note: str) -> Doc:
    place = note_place(note)
    text = place[2] if place else note
    out: Doc = {"level": "note", "message": {"text": f"{text} [{_name(doc)}]"}, "descriptor": {"id": "rflint/note"}}
    if place:
        out["locations"] = [{"physicalLocation": {"artifactLocation": {"uri": relative_uri(place[0])},
                                                  "region": {"startLine": place[1]}}}]
    return out


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(docs: list[Doc], errors: list[Doc] = (), skipped: list[Doc] = ()) -> str:
    """GitHub Actions workflow commands: annotations on the line that builds each layer.  GitHub
    attaches an annotation to a file of the checkout only; one built outside it (an installed
    package's model) gets no file property, and its place goes into the message instead."""
    lines = []
    for doc in docs:
        for f in doc["findings"]:
            props, message = [], f["message"] + " " + _where(doc)
            source, built_at = checkout_place(f)
            if source is not None:
                path = _in_workspace(source["file"])
                if path is not None:
                    props += [f"file={_escape_property(path)}", f"line={source['line']}"]
                else:
                    message += f" ({source['file']}:{source['line']})"
            if built_at is not None:
                message += f" (built at {built_at['file']}:{built_at['line']})"
            props.append(f"title={_escape_property(f['code'] + ' ' + (f['layer'] or ''))}")
            lines.append(f"::{GITHUB_LEVEL[f['severity']]} {','.join(props)}::{_escape_data(message)}")
    for doc, note in model_notes(docs):
        place, props, message = note_place(note), [], note
        if place is not None and _in_workspace(place[0]) is not None:
            props, message = [f"file={_escape_property(_in_workspace(place[0]))}", f"line={place[1]}"], place[2]
        props.append("title=rflint note")
        lines.append(f"::notice {','.join(props)}::{_escape_data(message + ' [' + _name(doc) + ']')}")
    for s in skipped:
        lines.append(f"::notice title=rflint nothing to lint::{_escape_data(s['message'])}")
    for error in errors:  # no file: the model's own file may be outside the checkout, or missing
        lines.append(f"::error title=rflint model error::{_escape_data(error_text(error))}")
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    """``text`` as a Markdown code span: fenced with more backticks than it holds in a row (a
    --kwarg tag='a`b' broke the span), padded when it starts or ends with one."""
    if not text:
        return ""
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or fence != "`" else ""
    return f"{fence}{pad}{_md(text)}{pad}{fence}"


def _checkout_place(finding: Doc) -> str:
    """A finding's file and line in a PR comment or job summary: relative to the checkout, as the
    SARIF and annotations name it, wherever rflint ran from (else as the text report names it)."""
    source, _ = checkout_place(finding)
    path = _in_workspace(source["file"]) if source else None
    return f"{path}:{source['line']}" if path is not None else where_in(source)


def render_markdown(docs: list[Doc], errors: list[Doc] = (), skipped: list[Doc] = ()) -> str:
    """A summary for PR comments and $GITHUB_STEP_SUMMARY."""
    from rflint.report.humanize import human
    from rflint.wording import count

    out = ["## rflint", ""]
    out.append("| model | input | params | MACs | border | tail | errors | warnings | info | suppressed |")
    out.append("|---|---|---:|---:|---|---|---:|---:|---:|---:|")
    for doc in docs:
        found = {sev: sum(1 for f in doc["findings"] if f["severity"] == sev) for sev in ("error", "warning", "info")}
        tail = doc["tail"]
        weighted = next((f["data"].get("parametric_layers") for f in doc["findings"] if f["code"] == "RF002"), None)
        tail_text = (f"{count(len(tail['layers']), 'RF layer')}"
                     + (f" ({weighted} with weights)" if weighted is not None and weighted != len(tail["layers"]) else "")
                     + f" after {_code(tail['cut'])}") if tail else "none"
        border = _code(doc["border"]) if doc["border"] else "-"
        out.append(
            f"| {_code(_name(doc))} | {size_text(doc['input'])} | {human(doc['params'])} | {human(doc['macs'])} | "
            f"{border} | {tail_text} | {found['error']} | {found['warning']} | {found['info']} | {doc['suppressed']} |"
        )
    for doc in docs:
        if not doc["findings"]:
            continue
        out += ["", f"### {_code(_name(doc))} @ {size_text(doc['input'])}", "",
                "| severity | code | layer | line | message |", "|---|---|---|---|---|"]
        for f in doc["findings"]:
            out.append(f"| {f['severity']} | {f['code']} | {_code(f['layer'] or '')} | {_md(_checkout_place(f))} | "
                       f"{_md(f['message'])} |")
        plan = doc["truncation"]
        if plan is not None and any(f["code"] == "RF002" for f in doc["findings"]):  # not when RF002 is silenced
            out += ["", f"**Suggested truncation:** keep up to {_code(plan['cut'])}, then {_md(plan['new_head'])}: params "
                        f"{human(plan['params_before'])} -> {human(plan['params_after'])}, MACs "
                        f"{human(plan['macs_before'])} -> {human(plan['macs_after'])}."]
    notes = model_notes(docs)
    if notes:
        out += ["", "### Notes", ""] + [f"- {_code(_name(doc))}: {_md(shown_note(note))}" for doc, note in notes]
    if skipped:
        out += ["", "### Nothing to lint", ""] + [f"- {_md(s['message'])}" for s in skipped]
    if errors:
        out += ["", "### Could not be analysed", ""] + [f"- {_md(error_text(e))}" for e in errors]
    return "\n".join(out)
