"""Numbers and places as people read them, shared by the text, HTML and Markdown reports."""

from __future__ import annotations

import os
import re
from types import SimpleNamespace

from rflint.wording import shown_path


_UNITS = (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3), ("", 1))


def human(n: int | float) -> str:
    """11689512 -> '11.7M', three significant digits; 999999 -> '1M' (not '1e+03k': the unit is
    chosen after rounding).  Beyond 999P, scientific notation."""
    for i, (unit, scale) in enumerate(_UNITS):
        if abs(n) >= scale or not unit:
            text = f"{n / scale:.3g}" if unit else str(int(n))
            if unit != "P" and i and abs(float(text)) >= 1000:  # rounded up into the next unit
                unit, scale = _UNITS[i - 1]
                text = f"{n / scale:.3g}"
            return text + unit
    return str(int(n))


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def change(before: int, after: int) -> str:
    """"-25.9%" for a count that falls, "+8.9%" for one that grows (a truncation's new Linear head
    on a model that had none), "-" when there was nothing before."""
    return f"{100 * (after - before) / before:+.1f}%" if before else "-"


def where(source) -> str:
    """'path/to/model.py:12', relative to the working directory unless that climbs two levels up."""
    if source is None:
        return ""
    return f"{shown_path(source.file)}:{source.line}"


# a note about a line starts with its place: a path has no "()" and no ": " in it (a place inside
# the note's text, "forward() branches on tensor values at /src/net.py:19: ...", is not the note's)
_AT_LINE = re.compile(r"(?P<file>(?:(?!\(\)|: )[^\n])+?\.pyw?):(?P<line>\d+): (?P<text>.+)", re.S)


def note_place(note: str) -> tuple[str, int, str] | None:
    """(file, line, the rest) of a note about a line of code ("/src/net.py:15: malformed ignore
    comment ..."), None for a note about the model (a warning of the analysis)."""
    found = _AT_LINE.fullmatch(note)
    return (found["file"], int(found["line"]), found["text"]) if found else None


_ABSOLUTE_PLACE = re.compile(r"(?<![\w.])(?P<file>/[^\s:,;()]+?\.pyw?):(?P<line>\d+)")


def shown_note(note: str) -> str:
    """A note as the findings show places: every file:line in it relative to the working directory
    (where()), the one that starts it ("net.py:15: malformed ignore comment") and those in its text
    ("forward() branches on tensor values at net.py:19")."""
    place = note_place(note)
    if place is not None:
        note = f"{where(SimpleNamespace(file=place[0], line=place[1]))}: {place[2]}"
    return _ABSOLUTE_PLACE.sub(lambda m: where(SimpleNamespace(file=m["file"], line=m["line"])), note)


def where_in(source: dict | None) -> str:
    """:func:`where` of a JSON document's ``source`` ({"file", "line"})."""
    return where(SimpleNamespace(**source)) if source else ""


def with_kwargs(target: str, kwargs: dict | None) -> str:
    """A model's name in reports: its target, and the factory's keyword arguments when it was given
    any ("models/var.py:build (depth=6)"): two configured models that differ only in them are two
    models (report headers, SARIF messages and fingerprints)."""
    if not kwargs:
        return target
    return f"{target} ({', '.join(f'{key}={value!r}' for key, value in kwargs.items())})"


def fixed_file_name(target: str, size: tuple[int, ...], what: str) -> str:
    """A file name for the fixed model of ``target`` at ``size``, one per model and size, so the
    commands suggested for several models do not overwrite each other's file: models/net.py:build
    at 32 -> net_build_32x32_truncated.pt, zoo:resnet18 -> resnet18_32x32_truncated.pt."""
    where, _, name = target.rpartition(":")
    if where in ("", "zoo"):
        stem = ""
    elif where.endswith(".py") or "/" in where or os.sep in where:  # a file: its name
        stem = os.path.splitext(os.path.basename(where))[0]
    else:  # package.module: the module's own name
        stem = where.rpartition(".")[2]
    words = "_".join(w for w in (stem, name.replace(".", "_")) if w)
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", words) or "model"
    return f"{safe}_{'x'.join(map(str, size))}_{what}.pt"


_SHELL_SAFE = re.compile(r"[\w@%+=:,./-]+", re.ASCII)


def _shell_quoted(word: str) -> str:
    """``shlex.quote``, written out: the report is written after the model's code ran, and a model
    that imports a sibling named shlex.py has put that module in sys.modules (the run failed)."""
    if _SHELL_SAFE.fullmatch(word):
        return word
    return "'" + word.replace("'", "'\"'\"'") + "'"


def fix_command(a, fix: str = "--truncate", output: str = "truncated") -> str:
    """The `rflint fix` command that truncates the model ``a`` (an Analysis) analysed: its target
    and size, and the factory's keyword arguments and the channels when they were given (without
    them, fix would build and cut another model); ``output`` names the file (fixed_file_name)."""
    loaded = a.prepared.loaded if a.prepared is not None else None
    # a config's model is named from its pyproject.toml; the command must load it from here
    target = (loaded.target if loaded is not None else None) or a.target
    parts = ["rflint", "fix", _shell_quoted(target)]
    n_axes = a.prepared.n_axes if a.prepared is not None else None
    if len(a.input_shapes) > 1 or (a.input_shapes and (a.input_shapes[0][0] != 1 or (
            n_axes is not None and len(a.input_shapes[0]) - 2 != n_axes))):
        # several inputs, a batch of its own (frames folded into it), or an input of another rank than
        # the first conv's (a waveform the model turns into a spectrogram): every shape
        for shape in a.input_shapes:
            parts += ["--input-shape", ",".join(map(str, shape))]
    else:
        parts += ["--input", "x".join(map(str, a.input_size))]
    prepared = a.prepared
    if prepared is not None:
        for key, value in prepared.factory_kwargs.items():
            parts += ["--kwarg", _shell_quoted(kwarg_text(key, value))]
        if prepared.channels != prepared.default_channels:
            parts += ["--channels", str(prepared.channels)]
    return " ".join(parts + [fix, "-o", _shell_quoted(fixed_file_name(target, a.input_size, output))])


# a word --kwarg reads as the string it is (cli/values.py parse_kwargs): name=resnet18, mode=bilinear
_BARE_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_NOT_BARE = {"true", "false", "none", "null"}  # (Python's literals, or refused as other languages' spellings)


def kwarg_text(key: str, value) -> str:
    """``key=value`` as --kwarg takes it: a string that reads as itself bare (``name=resnet18``,
    as the user typed it), anything else as its Python literal (``name='3'``, ``depth=18``)."""
    if isinstance(value, str) and _BARE_WORD.fullmatch(value) and value.lower() not in _NOT_BARE:
        return f"{key}={value}"
    return f"{key}={value!r}"


def try_it(report) -> str | None:
    """The fix command the text and HTML reports suggest: a truncation when the model ends in a
    classifier (rflint fix can give it a new head), else the stem change RF003 proposes, else
    none (a dense-prediction model's tail: rflint fix cannot cut it)."""
    if report.truncation is not None:
        return fix_command(report.analysis)
    if report.stem is not None:
        return fix_command(report.analysis, "--remove-stem", "stemless")
    return None


# when the clean-size search finds no size (JSON: null): say so rather than leave a dash that
# reads like "not applicable"; the usual reason is a model that runs at one size only (a fixed head)
NO_CLEAN_SIZE = "none found (no size tried that the model runs at is free of unproductive layers)"


def final_rf(a, which: str | None = None) -> str:
    """The final RF as the header shows it: "r_min 139x139, r_max 435x435 px"; ``which`` "r_min"
    or "r_max": that one alone, "139x139 px".  Axes the final tensor no longer has (x[:, :, 0]
    picked a row) are left out and the others named: "r_min 5, r_max 5 px along W", not "-x5"."""
    from rflint.rules.structure import axis_names, fmt_size, unit

    n = len(a.input_size)
    values = {"r_min": a.final_r_min, "r_max": a.final_r_max}
    keep = [i for i in range(n) if any(v is not None and v[i] is not None for v in values.values())]
    if not keep:
        return "-"
    along = "" if len(keep) == n else " along " + "x".join(axis_names(n)[i] for i in keep)
    shown = {name: fmt_size([v[i] for i in keep]) if v is not None else "-" for name, v in values.items()}
    if which is not None:
        return f"{shown[which]} {unit(a.input_size)}{along}"
    return f"r_min {shown['r_min']}, r_max {shown['r_max']} {unit(a.input_size)}{along}"


def removed_layers(tail) -> str:
    """What a truncation removes, in the terms RF002 counts the tail in: "3 RF layers (2 with
    weights)" (a pool in the tail is an RF layer, and RF002 says "its 2 parametric layers")."""
    from rflint.wording import count

    n, weighted = len(tail.layers), len(tail.parametric_layers)
    return count(n, "RF layer") + (f" ({weighted} with weights)" if weighted != n else "")

