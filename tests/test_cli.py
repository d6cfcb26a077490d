"""The command line: exit codes, one-line errors, config-driven runs, suppression, fast --help."""

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rflint.cli.app import app

runner = CliRunner()

MODEL = textwrap.dedent("""
    import torch.nn as nn


    def build(width=8):
        return nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1),
            nn.Conv2d(width, width, 3, padding=1),
            nn.MaxPool2d(2),
            nn.Conv2d(width, width, 3, padding=1),
            nn.Conv2d(width, width, 3, padding=1),  # rflint: ignore[RF001]
            nn.Conv2d(width, width, 3, padding=1),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(width, 10),
        )


    def needs_args(depth, width):
        return build()


    def broken():
        raise ValueError("no such depth")


    def not_a_module():
        return 42


    def quits():
        import sys
        sys.exit(5)
""")
# Layers 0..5: conv, conv, pool, conv, conv, conv.  r_out: 3, 5, 6 (pool: 5+1, j 2), 6+4 = 10,
# 14, 18; so their input RFs are 1, 3, 5, 6, 10, 14.  At --input 8 the convs "4" (input RF 10) and
# "5" (input RF 14) are unproductive; "4" carries an inline ignore for RF001 (file line 11).


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "net.py").write_text(MODEL)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(*args):
    return runner.invoke(app, list(args))


def test_json_and_inline_suppression(project):
    result = invoke("check", "net.py:build", "--input", "8", "--format", "json")
    assert result.exit_code == 1
    m = json.loads(result.stdout)["models"][0]
    rf001 = [f["layer"] for f in m["findings"] if f["code"] == "RF001"]
    assert rf001 == ["5"]  # "4" is suppressed on its construction line
    assert m["suppressed"] >= 1
    assert m["border"] == "4" and m["tail"]["cut"] == "3"
    src = [f["source"] for f in m["findings"] if f["code"] == "RF001"][0]
    assert src["file"].endswith("net.py") and src["line"] == 12  # the line that builds layer "5"


def test_kwargs_are_passed(project):
    result = invoke("check", "net.py:build", "--input", "32", "--kwarg", "width=4", "--format", "json")
    m = json.loads(result.stdout)["models"][0]
    assert m["layers"][0]["out_shape"] == [1, 4, 32, 32]


def test_config_driven_run_without_target(project):
    (project / "pyproject.toml").write_text(textwrap.dedent("""
        [tool.rflint]
        fail-on = "error"

        [[tool.rflint.models]]
        target = "net.py:build"
        input = [8, 64]
    """))
    result = invoke("check", "--format", "json")
    doc = json.loads(result.stdout)
    assert [m["input"] for m in doc["models"]] == [[8, 8], [64, 64]]
    assert result.exit_code == 1  # the 8 px run has a tail
    (project / "pyproject.toml").write_text(
        '[tool.rflint]\n[[tool.rflint.models]]\ntarget = "net.py:build"\ninput = 64\n')
    assert invoke("check").exit_code == 0


def test_config_search_passes_over_a_pyproject_without_rflint_settings(project, monkeypatch):
    # A monorepo: the root's pyproject.toml has [tool.rflint], the sub-package's has none.  rflint
    # run from the sub-package judged by the sub-package's file (defaults) and reported the tail the
    # repository's min-tail-layers hides: another gate than CI's.  At --input 8 the tail is the two
    # convs "4" and "5" (see MODEL), so min-tail-layers = 3 hides it and the exit code is 0.
    (project / "pyproject.toml").write_text('[tool.rflint]\nmin-tail-layers = 3\n')
    sub = project / "packages" / "vision"
    sub.mkdir(parents=True)
    (sub / "pyproject.toml").write_text('[project]\nname = "vision"\ndependencies = ["torch"]\n')
    monkeypatch.chdir(sub)
    assert invoke("check", "../../net.py:build", "--input", "8").exit_code == 0
    # a sub-package whose pyproject.toml has its own [tool.rflint] is judged by it
    (sub / "pyproject.toml").write_text('[project]\nname = "vision"\n[tool.rflint]\nfail-on = "error"\n')
    assert invoke("check", "../../net.py:build", "--input", "8").exit_code == 1
    # one that mentions rflint but does not parse is taken, so its error is reported, not skipped
    (sub / "pyproject.toml").write_text('[tool.rflint\nfail-on = "error"\n')
    result = invoke("check", "../../net.py:build", "--input", "8")
    assert result.exit_code == 2 and "invalid TOML" in result.output


@pytest.mark.parametrize("args, message", [
    (["missing.py:build", "--input", "32"], "model file not found: missing.py"),
    (["net.py:nope", "--input", "32"], "has no attribute 'nope'"),
    (["net.py:broken", "--input", "32"], "raised ValueError: no such depth"),
    (["net.py:not_a_module", "--input", "32"], "returned int, not a torch.nn.Module"),
    # SystemExit is no Exception: it went through, and rflint exited 5 without a word
    (["net.py:quits", "--input", "32"], "net.py:quits called sys.exit(5)"),
    (["net.py:needs_args", "--input", "32"], "needs arguments that were not given: depth, width"),
    (["net.py:build", "--input", "0"], "input size must be positive"),
    (["net.py:build", "--input", "-4"], "input size must be positive"),
    (["net.py:build", "--input", "abc"], "input size must be a number"),
    (["net.py:build", "--input", "32x32x32"], "expects 2 spatial axes"),
    (["zoo:audio1d", "--input", "32x32"], "zoo:audio1d expects 1 spatial axis (its first conv is 1-D), got input 32x32"),
    # torch reads (1, 3, 32) as an unbatched map with 1 channel and blames the channels
    (["net.py:build", "--input-shape", "1,3,32"], "net.py:build expects 2 spatial axes (its first conv is 2-D), got input shape 1,3,32"),
    # an odd part is a typo, not a part to skip: it read 1,3,x,32 as 1,3,32 and 1,3,32,32,x as 1,3,32,32
    (["net.py:build", "--input-shape", "1,3,x,32"], "--input-shape must be comma-separated integers like 1,3,32,32, got '1,3,x,32'"),
    (["net.py:build", "--input-shape", "1,3,32,32,x"], "--input-shape must be comma-separated integers"),
    (["net.py:build", "--input-shape", "1x3x32x32"], "--input-shape must be comma-separated integers"),
    (["net.py:build", "--input-shape", "1,3,,32"], "--input-shape must be comma-separated integers"),
    (["net.py:build", "--input", "32", "--format", "json", "-o", "no/such/dir/out.json"],
     "-o no/such/dir/out.json: no such directory no/such/dir"),
    (["net.py:build", "--input", "32", "--channels", "5"], "0 expects 3 input channels, got 5 (set --channels 3)"),
    # --input-shape sets the channels: --channels is not the thing to change
    (["net.py:build", "--input-shape", "1,1,32,32"], "0 expects 3 input channels, got 1 (the C of --input-shape N,C,... must be 3)"),
    (["net.py:build", "--input", "1"], "input 1x1 is too small for net.py:build: the feature map vanishes at layer 2"),
    # M5 at 300 samples: conv1 (k 80, s 4) 56, pool1 14, conv2 12, pool2 3, conv3 1, pool3 (4) 0; the
    # smallest that runs keeps 1 after pool4: 4 <- 6 <- 24 <- 26 <- 104 <- 106 <- 424 -> 4*423 + 80
    (["zoo:audio1d", "--input", "300"],
     "input 300 is too small for zoo:audio1d: the feature map vanishes at pool3; the smallest input that runs is 1772"),
    # the U-Net's three 2x pools take 9 to 4, 2, 1; the decoder doubles back to 2, 4, 8, which meets
    # enc1's 9 at the last cat; same-padded convs, so it runs at the multiples of 8
    # the U-Net's three 2x pools take 6 to 3, 1, 0; 7 to 3, 1, 0; 8 is the smallest side that runs (it
    # said 24x24: doubling and bisecting assumed running is monotone, which the joins are not)
    (["zoo:unet", "--input", "6"],
     "input 6x6 is too small for zoo:unet: the feature map vanishes at pool3; the smallest input that runs is 8x8"),
    # VGG-11's five 2x pools need 32 on each axis; the 300 px width is kept (it said 301x301)
    (["zoo:vgg11", "--input", "16x300"],
     "the smallest input that runs is 32x32 as a square, or 32x300 raising only the sides that are too small"),
    # height 17 does not line up (8, 4, 2 and back up to 16), width 32 does: per axis (it said 8x8 and 24x24)
    (["zoo:unet", "--input", "17x32"], "the nearest sizes that run are 16x32 and 24x32"),
    (["zoo:unet", "--input", "9"],
     "input 9x9 does not fit zoo:unet: the maps joined at cat_2 differ in size (the input must line up with the "
     "downsampling before the join); the nearest sizes that run are 8x8 and 16x16"),
    (["net.py:build", "--input", "32", "--select", "RF999"], "unknown rule code or prefix 'RF999'"),
    (["net.py:build", "--input", "32", "--select", ""], "select names no rule"),
    # int() reads "32_0" as 320 and takes "+32": a typo became another size
    (["net.py:build", "--input", "32_0"], "input size must be a number like 32 or 32x48, got '32_0'"),
    (["net.py:build", "--input", "+32"], "input size must be a number like 32 or 32x48, got '+32'"),
    (["net.py:build", "--input-shape", "1,3,3_2,32"], "--input-shape must be comma-separated integers"),
    # every rule ignored: "No findings." and exit 0 from no rule at all
    (["net.py:build", "--input", "32", "--ignore", "RF"], "no rule left to run: ignore (RF) takes every rule select (ALL)"),
    (["net.py:build", "--input", "32", "--select", "RF001", "--ignore", "RF001"], "no rule left to run"),
    (["zoo:nosuchnet", "--input", "32"], "nosuchnet"),
    # said "model file not found: net.py:build", and "has no attribute" without what there is
    (["net.py:build:extra", "--input", "32"], "TARGET 'net.py:build:extra' has more than one colon"),
    (["net.py:nope", "--input", "32"], "net.py has no attribute 'nope'; it defines build"),
    (["justaword", "--input", "32"], "TARGET must be"),
    # a colon in the directory (or a Windows drive) took the path for "module:name": "cannot import module 'a'"
    (["a:b/net.py", "--input", "32"], "TARGET 'a:b/net.py' names a file but not the model in it: write a:b/net.py:name"),
    (["net.py", "--input", "32"], "got 'net.py'; to lint a model in net.py, write net.py:name"),
    # a pre-commit hook with pass_filenames: one line per file, after torch's import
    (["a.py", "b.py", "c.py"], "3 arguments are file names, not TARGETs (a.py, b.py, ...)"),
    # a bracket starts a literal: a typo in one is an error, not the string "[1,2"
    (["net.py:build", "--input", "32", "--kwarg", "x=[1,2"], "--kwarg x=[1,2: not a Python literal ('[' was never closed)"),
    (["net.py:build", "--input", "32", "--kwarg", "x=1", "--kwarg", "x=2"], "--kwarg x is given twice (x=1 and x=2)"),
    # a bare word is a string, and the string 'false' is true: pretrained=false loaded the weights
    (["net.py:build", "--input", "32", "--kwarg", "pretrained=false"],
     "--kwarg pretrained=false: write pretrained=False for Python's False, or pretrained='false' for the string"),
    # the report and the graph would overwrite each other
    (["net.py:build", "--input", "32", "--graph", "a.dot", "-o", "a.dot"], "--graph and --output name the same file, a.dot"),
    # a directory that exists but takes no files (procfs): found at the end, naming rflint's temporary file
    (["net.py:build", "--input", "32", "-o", "/proc/report.txt"], "-o /proc/report.txt: cannot write in /proc"),
])
def test_bad_input_is_one_line_and_exit_2(project, args, message):
    result = invoke("check", *args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rflint: error: ")
    assert message in lines[0]
    assert "Traceback" not in result.output and "--debug" not in lines[0]


WAVEFORM = textwrap.dedent("""
    import torch.nn as nn


    class Encoder(nn.Module):  # takes (N, L), as fairseq's wav2vec 2.0 does: the channel dim is its own
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(1, 4, 10, 5)

        def forward(self, source):
            return self.conv(source[:, None])


    class Wrapped(nn.Module):  # what the message advises: (N, 1, L) in, model(x[:, 0])
        def __init__(self):
            super().__init__()
            self.model = Encoder()

        def forward(self, x):
            return self.model(x[:, 0])
""")


@pytest.mark.parametrize("args, message", [
    # "the first input must be (N, C, *spatial), got [1, 16000]", and nothing on what to do
    (["--input-shape", "1,16000"], "got [1, 16000]; a vector (a generator's latent) has no receptive field to lint; "
                                   "for a model that takes (N, L) signals without channels, lint a wrapper "
                                   "whose forward(x) returns model(x[:, 0]), with --input-shape 1,1,L"),
    # torch's "Expected 2D (unbatched) or 3D (batched) input to conv1d, but got input of size: [1, 1, 1, 16000]"
    (["--input", "16000"], "conv gets a map of 4 dims from the input 1,1,16000: the model adds a dim before its "
                           "first conv, so it takes its input without channels, (N, *spatial); rflint reads an input "
                           "as (N, C, *spatial): lint a wrapper whose forward(x) returns model(x[:, 0])"),
])
def test_a_model_that_takes_a_waveform_without_channels_is_told_what_to_do(project, args, message):
    (project / "wav.py").write_text(WAVEFORM)
    result = invoke("check", "wav.py:Encoder", *args)
    assert result.exit_code == 2 and message in result.stderr, result.output
    # the advice works: the conv 10/5 reads 10 samples
    doc = json.loads(invoke("check", "wav.py:Wrapped", "--input-shape", "1,1,16000", "--format", "json").stdout)
    assert doc["models"][0]["layers"][0]["r_out_min"] == [10]


@pytest.mark.parametrize("flag, path", [("--html", "nodir/x.html"), ("--graph", "nodir/g.dot"), ("--plot", "nodir/p.png")])
def test_a_picture_that_cannot_be_written_stops_the_run_before_the_analysis(project, flag, path):
    # -o was checked before the analysis, the pictures after it: the whole report, then the error
    result = invoke("check", "net.py:build", "--input", "32", flag, path)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == f"rflint: error: {flag} {path}: no such directory nodir"


@pytest.mark.parametrize("command", [["check"], ["fix", "--truncate"], ["sweep", "--sizes", "32"]])
def test_a_factorys_multi_line_error_is_one_line_in_every_command(project, command):
    # check joined the lines; fix printed a load_state_dict failure over 190 lines
    (project / "multi.py").write_text("def build():\n    raise RuntimeError('Error(s) in loading state_dict:\\n\\tone\\n\\ttwo')\n")
    args = [command[0], "multi.py:build", *command[1:]] + (["--input", "32"] if command[0] != "sweep" else [])
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["rflint: error: multi.py:build raised RuntimeError: Error(s) in loading "
                                          "state_dict: one two"]


def test_a_factorys_own_error_is_reported_not_the_meta_devices(project):
    # the meta attempt fails at .item() ("cannot be called on meta tensors", rflint's doing); the
    # CPU attempt then finds the missing checkpoint, which is the error to show.  A missing file is
    # no device problem: the factory is not called a second time for it (a download ran twice)
    (project / "ckpt.py").write_text(textwrap.dedent("""
        import torch
        from torch import nn

        CALLS = []


        def build():
            m = nn.Conv2d(3, 4, 3)
            assert m.weight.abs().sum().item() > 0
            return torch.load("missing.pt")


        def download():
            CALLS.append(1)
            if len(CALLS) > 1:
                raise RuntimeError("called twice")
            raise ConnectionError("could not reach the hub")
    """))
    result = invoke("check", "ckpt.py:build", "--input", "32")
    assert result.exit_code == 2 and "ckpt.py:build raised FileNotFoundError:" in result.stderr
    result = invoke("check", "ckpt.py:download", "--input", "32")
    assert result.exit_code == 2 and "raised ConnectionError: could not reach the hub" in result.stderr


def test_syntax_error_in_model_file(project):
    (project / "bad.py").write_text("def build(:\n    pass\n")
    result = invoke("check", "bad.py:build", "--input", "32")
    assert result.exit_code == 2 and "syntax error in" in result.stderr and "bad.py:1" in result.stderr


@pytest.mark.parametrize("section, message", [
    ('select = []', "select names no rule"),  # ran every rule, where --select "" is an error
    # which codes came from the config, and from which file: the command line has only --select
    ('ignore = ["RF001"]', "no rule left to run: ignore (RF001) takes every rule select (RF001) names "
                           '(ignore = ["RF001"] from PROJECT/pyproject.toml [tool.rflint])'),
])
def test_a_config_that_leaves_no_rule_is_an_error(project, section, message):
    (project / "pyproject.toml").write_text(f"[tool.rflint]\n{section}\n")
    result = invoke("check", "net.py:build", "--input", "32", *(["--select", "RF001"] if "ignore" in section else []))
    assert result.exit_code == 2 and message.replace("PROJECT", str(project)) in result.stderr


def test_a_configured_model_may_ignore_every_rule(project):
    (project / "pyproject.toml").write_text('[tool.rflint]\n[[tool.rflint.models]]\ntarget = "net.py:build"\n'
                                            'input = [8]\nignore = ["RF"]\n')
    result = invoke("check", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["models"][0]["findings"] == []


# the module form named the file's model too, but lost the entry: "no input size given", and with
# --input the entry's ignore was dropped (the README presents both forms as ways to name a target)
@pytest.mark.parametrize("spelling", ["net.py:build", "./net.py:build", "{project}/net.py:build", "net:build"])
def test_a_target_the_config_lists_keeps_its_entry_when_named_on_the_command_line(project, spelling):
    # the entry's ignore was dropped (RF002 came back, exit 1) and without --input the run stopped
    # with "no input size given": the gate said pass in CI and fail on the developer's command.  At
    # 8 px net.py has RF002 and RF001 on "5" (MODEL above); the entry ignores RF002
    (project / "pyproject.toml").write_text('[tool.rflint]\n[[tool.rflint.models]]\ntarget = "net.py:build"\n'
                                            'input = 8\nignore = ["RF002"]\n')
    target = spelling.format(project=project)
    for extra in ([], ["--input", "8"]):
        result = invoke("check", target, *extra, "--format", "json")
        doc = json.loads(result.stdout)["models"]
        assert result.exit_code == 0, result.stderr
        assert [(m["target"], m["input"]) for m in doc] == [("net.py:build", [8, 8])]  # as the config names it
        assert {f["code"] for f in doc[0]["findings"]} == {"RF001"}
    # the command line's size still wins over the entry's: at 64 px nothing is unproductive
    doc = json.loads(invoke("check", target, "--input", "64", "--format", "json").stdout)["models"]
    assert [m["input"] for m in doc] == [[64, 64]]


def test_one_file_named_twice_by_different_paths_is_analysed_once(project):
    doc = json.loads(invoke("check", "net.py:build", "./net.py:build", f"{project}/net.py:build", "net:build",
                            "--input", "8", "--format", "json").stdout)
    assert [m["target"] for m in doc["models"]] == ["net.py:build"]


def test_a_config_file_given_without_a_tool_rflint_table_is_an_error(project):
    # a ruff.toml-style file (settings at the top level) was read as "no settings": --select and
    # fail-on silently from the defaults, the gate passing on warnings it was set to fail on
    (project / "rflint.toml").write_text('fail-on = "warning"\n')
    result = invoke("check", "net.py:build", "--input", "8", "--config", "rflint.toml")
    assert result.exit_code == 2
    assert result.stderr == ("rflint: error: config file rflint.toml has no [tool.rflint] table (its top-level keys: "
                             "fail-on); put rflint's settings under [tool.rflint], as in pyproject.toml\n")


def test_a_model_whose_findings_are_all_silenced_says_so(project):
    # its section read "No findings." (the count was only in the closing line) and the Markdown
    # table had no count: a model exempted from every rule looked like a clean one.  At 8 px
    # net.py has RF001 on "4" and "5" and its tail (RF002), at least
    (project / "pyproject.toml").write_text('[tool.rflint]\n[[tool.rflint.models]]\ntarget = "net.py:build"\n'
                                            'input = [8]\nignore = ["RF"]\n')
    hidden = json.loads(invoke("check", "--format", "json").stdout)["models"][0]["suppressed"]
    assert hidden >= 3
    assert f"No findings ({hidden} suppressed)." in invoke("check", "--no-layers").stdout
    markdown = invoke("check", "--format", "markdown").stdout
    assert "| info | suppressed |" in markdown and markdown.splitlines()[4].endswith(f"| 0 | 0 | 0 | {hidden} |")


def test_bad_config_key(project):
    (project / "pyproject.toml").write_text('[tool.rflint]\nfail_on = "error"\n')
    result = invoke("check", "net.py:build", "--input", "32")
    assert result.exit_code == 2 and "unknown key fail_on" in result.stderr


@pytest.mark.parametrize("toml, message", [
    ("[tool]\nrflint = 3\n", "[tool.rflint]: must be a table, got int"),
    ("[tool.rflint]\nmodels = 3\n", "models must be a list of [[tool.rflint.models]] tables, got int"),
    ('[tool.rflint.models]\ntarget = "net.py:build"\n', "write each model as [[tool.rflint.models]] (two brackets"),
    ('[tool.rflint]\n[[tool.rflint.models]]\ntarget = "net.py:build"\nignore = ["RF999"]\n',
     "unknown rule code or prefix 'RF999'"),
    ("[tool.rflint]\ndominance-ratio = 0.5\n", "dominance-ratio must be a number >= 1, got 0.5"),
    ("[tool.rflint]\ndominance-ratio = nan\n", "dominance-ratio must be a number >= 1, got nan"),
    # the QA pass of a CI gate set-up: where the typo is, and what was meant
    ('[tool.rflint]\nignore = ["RF07"]\n[[tool.rflint.models]]\ntarget = "net.py:build"\n', "pyproject.toml [tool.rflint] ignore: unknown rule code or prefix 'RF07'"),
    ('[tool.rflint]\nselect = ["RF0001"]\n[[tool.rflint.models]]\ntarget = "net.py:build"\n', "pyproject.toml [tool.rflint] select: unknown rule code or prefix 'RF0001'"),
    ('[tool.rflint]\n[[tool.rflint.models]]\ntarget = "net.py:build"\nkwarg = { width = 4 }\n',
     "[[tool.rflint.models]] #1: unknown key kwarg (did you mean kwargs?)"),
    ('[tool.rflint]\nignroe = ["RF007"]\n', "[tool.rflint]: unknown key ignroe (did you mean ignore?)"),
    ('[tool.rflint]\n[[tool.rflint.models]]\ntarget = "net.py"\ninput = 8\n',
     "[[tool.rflint.models]] #1: target 'net.py' names no model; write path/to/file.py:name"),
    # one model twice: run twice, with findings of one SARIF fingerprint
    ('[tool.rflint]\n[[tool.rflint.models]]\ntarget = "net.py:build"\ninput = 8\n'
     '[[tool.rflint.models]]\ntarget = "net.py:build"\ninput = 16\n',
     "[[tool.rflint.models]] #2 repeats #1 (net.py:build): give one entry its sizes as a list"),
    # a model that failed at no size (the run went on, exit 2) instead of a config error
    ('[tool.rflint]\n[[tool.rflint.models]]\ntarget = "net.py:build"\ninput = []\n',
     "[[tool.rflint.models]] #1: 'input' lists no size"),
    # an entry's size that --input replaces in this run was never read: the typo passed until a run
    # without --input (CI's); and a bad input-shape was blamed on --input-shape, which nobody gave
    ('[tool.rflint]\n[[tool.rflint.models]]\ntarget = "net.py:build"\ninput = "32y48"\n',
     "[[tool.rflint.models]] target net.py:build: input size must be a number like 32 or 32x48, got '32y48'"),
    ('[tool.rflint]\n[[tool.rflint.models]]\ntarget = "net.py:build"\ninput-shape = "1,3,x"\n',
     "[[tool.rflint.models]] target net.py:build: input-shape must be comma-separated integers like 1,3,32,32, "
     "got '1,3,x'"),
])
def test_bad_config_values(project, toml, message):
    # each was a Python error (TypeError: 'int' object is not iterable) or passed silently
    (project / "pyproject.toml").write_text(toml)
    result = invoke("check", "--input", "32")
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_config_that_is_a_directory_says_so(project):
    result = invoke("check", "net.py:build", "--input", "32", "--config", str(project))
    assert result.exit_code == 2
    assert result.stderr == (f"rflint: error: config file {project} is a directory; give the pyproject.toml in it, "
                             f"e.g. {project / 'pyproject.toml'}\n")


def test_config_edge_values(project):
    # dominance-ratio 1 is allowed, as on the command line (rules/RF007.md: "at least 1")
    (project / "pyproject.toml").write_text('[tool.rflint]\ndominance-ratio = 1\n')
    assert invoke("check", "net.py:build", "--input", "32").exit_code == 0
    (project / "pyproject.toml").write_bytes(b"[tool.rflint]\n# caf\xe9\n")
    result = invoke("check", "net.py:build", "--input", "32")
    # "[tool.rflint]\n" is bytes 0-13, "# caf" 14-18: the Latin-1 e-acute is byte 19
    assert result.exit_code == 2 and "pyproject.toml: not UTF-8 text (byte 19)" in result.stderr


def test_debug_shows_the_traceback(project):
    result = invoke("check", "net.py:broken", "--input", "32", "--debug")
    assert result.exit_code == 2 and "Traceback (most recent call last)" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("rflint: error: net.py:broken")


def test_debug_changes_neither_the_exit_code_nor_the_other_reports(project):
    # it used to re-raise the first error: exit 1 and no report of the models that did run
    for extra in ([], ["--debug"]):
        result = invoke("check", "net.py:broken", "net.py:build", "missing.py:build", "--input", "8", *extra)
        assert result.exit_code == 2, extra
        assert "net.py:build @ 8x8" in result.stdout and "predicted tail" in result.stdout, extra
        assert sum(line.startswith("rflint: error: ") for line in result.stderr.splitlines()) == 2, extra
        assert ("Traceback" in result.stderr) == bool(extra)
    result = invoke("check", "missing.py:build", "--input", "32x", "--debug")
    assert result.exit_code == 2 and result.stderr.splitlines()[-1].startswith("rflint: error: ")


def test_rules_and_rule_docs():
    result = invoke("rules")
    assert result.exit_code == 0
    for code in ("RF001", "RF002", "RF003", "RF004", "RF005", "RF006", "RF007"):
        assert code in result.stdout
    result = invoke("rule", "RF002")
    assert result.exit_code == 0 and "predicted-tail" in result.stdout
    assert invoke("rule", "RF999").exit_code == 2
    # by name too, as ruff takes either; the message keeps what the user wrote (it said 'PREDICTED-TAIL')
    assert invoke("rule", "predicted-tail").stdout == result.stdout
    unknown = invoke("rule", "predicted-tails")
    assert unknown.exit_code == 2 and "unknown rule 'predicted-tails'" in unknown.stderr and "RF002 (predicted-tail)" in unknown.stderr


@pytest.mark.parametrize("fmt", ["text", "github", "markdown"])
def test_a_path_the_output_encoding_cannot_hold_is_escaped_not_a_crash(tmp_path, fmt):
    # on an ASCII (or a Windows runner's cp1252) stdout, "ünï/net.py" ended the run with
    # UnicodeEncodeError: the report lost and exit 2 instead of the findings' 1
    (tmp_path / "ünï").mkdir()
    (tmp_path / "ünï" / "net.py").write_text(MODEL)
    proc = subprocess.run([sys.executable, "-m", "rflint", "ünï/net.py:build", "--input", "8", "-f", fmt],
                          capture_output=True, cwd=tmp_path, env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert proc.returncode == 1, proc.stderr
    assert b"\\xfcn\\xef/net.py" in proc.stdout and b"RF002" in proc.stdout


def test_help_and_version_do_not_import_torch():
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    for args in (["--help"], ["--version"], ["check", "--help"]):
        proc = subprocess.run([sys.executable, "-m", "rflint", *args], capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr
        imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line]
        assert "rflint" in imported and "torch" not in imported
    assert subprocess.run([sys.executable, "-m", "rflint", "--version"], capture_output=True, text=True).stdout.startswith("rflint ")


def test_readme_rule_table_matches_the_docs():
    from rflint.ruledocs import readme_table

    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md"), encoding="utf-8").read()
    start, end = "<!-- rules-table:start -->\n", "<!-- rules-table:end -->"
    assert readme.split(start, 1)[1].split(end, 1)[0].strip() == readme_table()


def test_jobs_give_the_same_results_as_one_process():
    args = ["check", "zoo:vgg11", "zoo:resnet18_cifar", "--input", "32", "--input", "64", "--format", "json"]
    serial = json.loads(invoke(*args).stdout)
    parallel = json.loads(invoke(*args, "--jobs", "2").stdout)
    assert [(m["target"], m["input"]) for m in parallel["models"]] == [
        ("zoo:vgg11", [32, 32]), ("zoo:vgg11", [64, 64]), ("zoo:resnet18_cifar", [32, 32]), ("zoo:resnet18_cifar", [64, 64]),
    ]
    assert parallel == serial


def test_sweep_jobs_keep_size_order():
    args = ["sweep", "zoo:vgg11", "--sizes", "64,32,128,48", "--format", "json"]
    serial = json.loads(invoke(*args).stdout)
    parallel = json.loads(invoke(*args, "--jobs", "2").stdout)
    assert [row["input"][0] for row in parallel["sizes"]] == [32, 48, 64, 128]
    assert parallel == serial


def test_sweep_lists_the_sizes_that_do_not_run_and_goes_on():
    """VGG-16's five 2x2 pools take 16 px to 8, 4, 2, 1, 0: it vanishes at the fifth (features.30)
    and 32 is the smallest size that runs; at 32 the border is the 8th conv (issue 4).  In worker
    processes the rows come back the same, in size order."""
    args = ["sweep", "zoo:vgg16", "--sizes", "32,16", "--format", "json"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["sizes"][0] == {"input": [16, 16], "error": "input 16x16 is too small for zoo:vgg16: the feature map "
                                                             "vanishes at features.30; the smallest input that runs is 32x32"}
    assert doc["sizes"][1]["input"] == [32, 32] and doc["sizes"][1]["border_index"] == 8
    assert doc["no_tail_from"] is None  # 32 has a tail and 16 does not count
    assert json.loads(invoke(*args, "--jobs", "2").stdout) == doc
    text = invoke("sweep", "zoo:vgg16", "--sizes", "16,32").stdout
    assert "does not run" in text and "16x16: input 16x16 is too small for zoo:vgg16" in text


def test_sweep_where_no_size_runs_is_an_error():
    """8 px vanishes one pool earlier than 16 (8, 4, 2, 1, 0 at features.23)."""
    result = invoke("sweep", "zoo:vgg16", "--sizes", "8,16")
    assert result.exit_code == 2
    assert result.stderr.strip() == ("rflint: error: none of the 2 swept sizes runs; the first: input 8x8 is too small "
                                     "for zoo:vgg16: the feature map vanishes at features.23; the smallest input that "
                                     "runs is 32x32")


def test_picture_flags(tmp_path):
    pytest.importorskip("matplotlib")
    html, plot, graph = tmp_path / "r.html", tmp_path / "p.png", tmp_path / "g.dot"
    result = invoke("check", "zoo:resnet18", "--input", "32", "--no-layers",
                    "--html", str(html), "--plot", str(plot), "--graph", str(graph))
    assert result.exit_code == 1, result.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and graph.read_text().startswith("digraph")
    assert "layer3.1.conv2" in html.read_text()
    # several runs: one file per run, named after target and size
    invoke("check", "zoo:vgg11", "--input", "32", "--input", "64", "--graph", str(tmp_path / "v.dot"))
    assert sorted(p.name for p in tmp_path.glob("v-*.dot")) == ["v-zoo_vgg11-32x32.dot", "v-zoo_vgg11-64x64.dot"]
    result = invoke("check", "zoo:vgg11", "--input", "32", "--plot", str(tmp_path / "p.jpg"))
    assert result.exit_code == 2 and "use a .png or .svg file name" in result.stderr


def test_the_html_report_lists_what_could_not_be_analysed(tmp_path):
    """VGG-11 runs at 32 px and vanishes at 8 (8, 4, 2, 1, then a pool of nothing)."""
    html = tmp_path / "r.html"
    result = invoke("check", "zoo:vgg11", "--input", "32", "--input", "8", "--no-layers", "--html", str(html))
    assert result.exit_code == 2
    page = html.read_text()
    assert "Could not be analysed" in page and "input 8x8 is too small for zoo:vgg11" in page
    result = invoke("check", "zoo:vgg11", "--input", "8", "--html", str(html))  # nothing ran: the page still says why
    assert result.exit_code == 2 and "input 8x8 is too small for zoo:vgg11" in html.read_text()


GC_PROBE = textwrap.dedent("""
    import gc

    import torch.nn as nn

    SEEN = []


    def build():
        SEEN.append(gc.isenabled())
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3))


    def broken():
        SEEN.append(gc.isenabled())
        raise ValueError("no such depth")
""")


def test_cyclic_gc_is_paused_during_a_job_and_back_on_after(tmp_path, monkeypatch):
    import gc
    import importlib

    (tmp_path / "gcprobe.py").write_text(GC_PROBE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    probe = importlib.import_module("gcprobe")  # a module target: the CLI gets this very module
    assert gc.isenabled()
    ok = invoke("check", "gcprobe:build", "--input", "16", "--format", "json")
    bad = invoke("check", "gcprobe:broken", "--input", "16")
    assert ok.exit_code == 0 and bad.exit_code == 2, (ok.output, bad.output)
    assert len(probe.SEEN) >= 2 and not any(probe.SEEN)  # both factories ran with the collector paused
    assert gc.isenabled()  # and it is back on after a clean run and after a failing factory


FIXED_HEAD = textwrap.dedent("""
    import torch
    from torch import nn


    class Net(nn.Module):
        # five 3x3 convs (the fifth reads an RF of 9 > 8 px) into a Linear sized for an 8x8 map:
        # it runs at 8x8 only, so no size is free of unproductive layers
        def __init__(self):
            super().__init__()
            self.convs = nn.Sequential(*[nn.Conv2d(3 if i == 0 else 4, 4, 3, padding=1) for i in range(5)])
            self.fc = nn.Linear(4 * 8 * 8, 10)

        def forward(self, x):
            return self.fc(torch.flatten(self.convs(x), 1))


    def build():
        return Net()
""")


def test_no_clean_size_is_said_in_words(project):
    (project / "fixed.py").write_text(FIXED_HEAD)
    result = runner.invoke(app, ["check", "fixed.py:build", "--input", "8", "--format", "json"])
    assert json.loads(result.stdout)["models"][0]["resolution"]["min_input_without_unproductive"] is None
    result = runner.invoke(app, ["check", "fixed.py:build", "--input", "8"], env={"COLUMNS": "200"})
    assert result.exit_code == 1 and "no unproductive or partial layer from  none found (no size tried that the model runs at" in result.stdout


def test_help_shows_the_pyproject_tables():
    # rich markup read [tool.rflint] as a style tag and dropped it unless it was escaped
    check = runner.invoke(app, ["check", "--help"], env={"COLUMNS": "200"})
    sweep = runner.invoke(app, ["sweep", "--help"], env={"COLUMNS": "200"})
    assert "the models listed in [[tool.rflint.models]] of the nearest pyproject.toml with a [tool.rflint] table" in " ".join(check.stdout.split())
    assert "pyproject.toml to read [tool.rflint] from" in " ".join(check.stdout.split())
    assert "pyproject.toml with [tool.rflint] (default: the nearest one that has it): rule options" in " ".join(sweep.stdout.split())
    # (rflint is no PyPI project: `pip install 'rflint[plot]'` would look for it there)
    assert "(needs matplotlib: pip install matplotlib)" in " ".join(check.stdout.split())
    # a sweep has no findings to annotate: its --format offers what it writes
    assert "<text|json>" in sweep.stdout and "sarif" not in sweep.stdout


@pytest.mark.parametrize("command", [[], ["check"], ["sweep"], ["fix"], ["rule"], ["rules"], ["zoo"]])
def test_help_reads_at_80_columns(command):
    # typer's rich help squeezed every option's text into 21 columns at 80, and wrote Python types
    # where a user wants a placeholder: "--debug <bool>", "[TARGET]... <list[str]>", "<int range>",
    # "rflint fix [OPTIONS] {TARGET}", "rflint rule [OPTIONS] {code}", a literal "[bold]"
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    text = result.stdout
    for noise in ("<bool>", "<list[str]>", "<str>", "<int range>", "<float range>", "<path>", "{", "[bold]", "\\[", "╭"):
        assert noise not in text, noise
    assert all(len(line) <= 80 for line in text.splitlines())
    usage = text.splitlines()[0]
    if command in (["sweep"], ["fix"]):
        assert usage == f"Usage: rflint {command[0]} [OPTIONS] TARGET"
    if command == ["check"]:
        assert usage == "Usage: rflint check [OPTIONS] [TARGET]..."
        # every option's help starts in one column that leaves it most of the line
        assert "  -c, --channels N                Input channels (default: the first conv's" in text
    if command in (["check"], ["sweep"], ["fix"], ["rule"]):  # the argument is explained in the text
        assert ("CODE is a rule's code or name" if command == ["rule"] else "TARGET is path/to/file.py:name") in text


@pytest.mark.parametrize("typed, hint", [("--inpt", "(did you mean --input?)"), ("--formt", "(did you mean --format?)"),
                                         ("--no-layer", "(did you mean --no-layers?)"), ("--bogus", None),
                                         # cut short or run on: as click offered them
                                         ("--out", "(did you mean --output?)"), ("--min-tail", "(did you mean --min-tail-layers?)"),
                                         ("--html-file", "(did you mean --html?)"), ("--fail-on-warning", "(did you mean --fail-on?)")])
def test_an_unknown_option_gets_a_close_name_or_none(typed, hint):
    # click compared whole names with their "--": --bogus got "(Possible options: --jobs)"
    result = subprocess.run([str(Path(sys.executable).with_name("rflint")), "zoo:vgg11", typed, "1"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and result.stdout == ""
    line = result.stderr.strip()
    assert line.startswith(f"rflint: error: No such option: {typed}") and "\n" not in line
    assert "Possible options" not in line
    if hint is None:
        assert "did you mean" not in line
    else:
        assert hint in line


def test_a_usage_error_exits_2_with_another_click_installed_beside_typer(tmp_path):
    # typer 0.29 raises from its own copy of click (typer._click); with a click package installed
    # too (black, flask and dask depend on one), rflint caught that one's UsageError, which typer
    # never raises: an unknown option exited 1, as a finding does.  (A package named click stands
    # for the installed one: this venv has none, and the test does not install packages.)
    if importlib.util.find_spec("typer._click") is None:
        pytest.skip("this typer uses the click package itself")
    stub = tmp_path / "click"
    stub.mkdir()
    (stub / "__init__.py").write_text("from . import exceptions\n")
    (stub / "exceptions.py").write_text(
        "class UsageError(Exception):\n    pass\n\n\nclass NoSuchOption(UsageError):\n    pass\n\n\n"
        "class Abort(RuntimeError):\n    pass\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "rflint", "zoo:vgg11", "--inpt", "32"], capture_output=True,
                            text=True, env=env, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().startswith("rflint: error: No such option: --inpt (did you mean --input?)")
    assert "\n" not in result.stderr.strip()


def test_a_package_target_imports_from_the_working_directory(tmp_path):
    # `python -m rflint` puts the working directory on sys.path; the installed `rflint` script did
    # not, so `rflint mypkg.models:build` failed with "No module named 'mypkg'" in the repo root
    script = Path(sys.executable).with_name("rflint")
    assert script.exists(), "the rflint console script (pip install -e .) is missing"
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "models.py").write_text(MODEL)
    proc = subprocess.run([str(script), "mypkg.models:build", "--input", "32", "--format", "json"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["models"][0]["target"] == "mypkg.models:build"


def test_a_config_target_keeps_its_config_name_wherever_rflint_runs(project):
    # the [[tool.rflint.models]] target is the model's name in every report and in SARIF's
    # fingerprints: as the pyproject.toml writes it, not the checkout's absolute path, and not
    # renamed when rflint runs from a subdirectory (the fingerprints would change)
    (project / "models").mkdir()
    (project / "models" / "net.py").write_text(MODEL)
    (project / "pyproject.toml").write_text('[tool.rflint]\n[[tool.rflint.models]]\ntarget = "./models/net.py:build"\ninput = 8\n')
    doc = json.loads(invoke("check", "--format", "json").stdout)
    assert doc["models"][0]["target"] == "models/net.py:build"
    os.chdir(project / "models")
    result = invoke("check")
    assert "models/net.py:build @ 8x8" in result.stdout
    # ... while the command it suggests loads the model from here
    assert "Try it: rflint fix net.py:build --input 8x8" in result.stdout
    doc = json.loads(invoke("check", "--format", "json").stdout)
    assert doc["models"][0]["target"] == "models/net.py:build"


def test_a_config_package_target_imports_from_the_configs_directory(project):
    # target = "mypkg.models:build" in the root's pyproject.toml, rflint run from a subdirectory:
    # the package is found where the config is, as from the root
    (project / "mypkg").mkdir()
    (project / "mypkg" / "__init__.py").write_text("")
    (project / "mypkg" / "models.py").write_text(MODEL)
    (project / "pyproject.toml").write_text('[tool.rflint]\n[[tool.rflint.models]]\ntarget = "mypkg.models:build"\ninput = 8\n')
    os.chdir(project / "mypkg")
    result = invoke("check", "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    assert json.loads(result.stdout)["models"][0]["target"] == "mypkg.models:build"


def test_an_ignore_on_the_class_line_of_what_a_factory_returns(project):
    # README: the comment on "the factory's def line or the model's class line" silences codes for
    # the whole model; with a factory as the target, the class line was never read
    (project / "e.py").write_text(textwrap.dedent("""
        import torch.nn as nn


        class Net(nn.Sequential):  # rflint: ignore[RF001,RF002]
            def __init__(self):
                super().__init__(*[nn.Conv2d(3 if i == 0 else 4, 4, 3, padding=1) for i in range(6)])


        def build():
            return Net()
    """))
    # at 8 px conv k reads r 1 + 2k: convs 4 and 5 are unproductive, a tail: all of it silenced
    doc = json.loads(invoke("check", "e.py:build", "--input", "8", "--format", "json").stdout)["models"][0]
    assert [f["code"] for f in doc["findings"]] == [] and doc["suppressed"] == 3
    # on a decorator of that class too (README: "or its decorators"): the lookup started at `class`
    (project / "d.py").write_text((project / "e.py").read_text().replace(
        "class Net(nn.Sequential):  # rflint: ignore[RF001,RF002]",
        "@tag  # rflint: ignore[RF001,RF002]\nclass Net(nn.Sequential):").replace(
        "import torch.nn as nn", "import torch.nn as nn\n\n\ndef tag(cls):\n    return cls"))
    doc = json.loads(invoke("check", "d.py:build", "--input", "8", "--format", "json").stdout)["models"][0]
    assert [f["code"] for f in doc["findings"]] == [] and doc["suppressed"] == 3


def test_a_deep_copied_layer_keeps_its_line_and_its_ignore_comment(project):
    # the factory returns copy.deepcopy(net): the copies had no construction site, so every finding
    # pointed at the factory's def line and the ignore comment on conv 4's line silenced nothing
    (project / "c.py").write_text(textwrap.dedent("""
        import copy

        import torch.nn as nn


        def net():
            return nn.Sequential(
                nn.Conv2d(3, 4, 3, padding=1),
                nn.Conv2d(4, 4, 3, padding=1),
                nn.Conv2d(4, 4, 3, padding=1),
                nn.Conv2d(4, 4, 3, padding=1),  # rflint: ignore[RF001]
            )


        def copied():
            return copy.deepcopy(net())
    """))
    # at 5 px the convs read r 1, 3, 5, 7: conv 3 (input RF 7 > 5) is unproductive, a tail of one
    doc = json.loads(invoke("check", "c.py:copied", "--input", "5", "--format", "json").stdout)["models"][0]
    assert [(f["code"], f["source"]["line"]) for f in doc["findings"]] == [("RF002", 12)]  # conv 3's line
    assert doc["suppressed"] == 1


def _rflint(*args, cwd, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "rflint", *args], cwd=cwd, text=True, **kwargs)


def test_output_file_is_written_only_at_the_end(project):
    # -o opened (and emptied) the file before the analysis: a failing run left it empty, and
    # "-o model.py" destroyed the model before loading it
    keep = project / "keep.txt"
    keep.write_text("old\n")
    result = invoke("check", "missing.py:build", "--input", "8", "-o", str(keep))
    assert result.exit_code == 2 and keep.read_text() == "old\n"
    assert invoke("check", "net.py:build", "--input", "8", "-o", str(keep)).exit_code == 1
    assert "net.py:build @ 8x8" in keep.read_text()


def test_a_reader_that_stops_early_or_a_closed_stdout_keeps_the_exit_code(project):
    # `| head -1` made rich exit 1 (or rflint say "BrokenPipeError", exit 2); a closed stdout gave
    # "AttributeError: 'NoneType' object has no attribute 'write'". The exit code is the findings'
    for fmt in ("text", "json"):
        proc = _rflint("net.py:build", "zoo:vgg11", "--input", "32", "--fail-on", "never", "-f", fmt,
                       cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.stdout.readline()
        proc.stdout.close()
        assert proc.wait(timeout=120) == 0 and proc.stderr.read() == "", fmt
        closed = subprocess.run([sys.executable, "-m", "rflint", "net.py:build", "--input", "8", "-f", fmt],
                                cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: os.close(1), timeout=120)
        assert closed.returncode == 1 and closed.stderr == "", fmt


def test_text_report_on_an_ascii_only_output(project):
    # a cp1252 console (Windows) got UnicodeEncodeError: the composed layer table wrote box lines
    proc = subprocess.run([sys.executable, "-m", "rflint", "net.py:build", "--input", "8"], cwd=project,
                          capture_output=True, env={**os.environ, "PYTHONIOENCODING": "cp1252"}, timeout=120)
    assert proc.returncode == 1 and proc.stderr == b""
    assert proc.stdout.isascii() and b"unproductive" in proc.stdout


def test_print_in_the_model_code_does_not_spoil_json(project):
    (project / "noisy.py").write_text(MODEL.replace("def build(width=8):", "def build(width=8):\n    print('hello')"))
    for jobs in ("1", "2"):
        proc = subprocess.run([sys.executable, "-m", "rflint", "noisy.py:build", "--input", "8", "--input", "16",
                               "-f", "json", "-j", jobs], cwd=project, capture_output=True, text=True, timeout=120)
        assert len(json.loads(proc.stdout)["models"]) == 2 and "hello" in proc.stderr, jobs


# SIGHUP: the terminal (or ssh session) closed under a hook; the workers were left running for good
@pytest.mark.parametrize("signame, code", [("SIGINT", 130), ("SIGTERM", 143), ("SIGHUP", 129)])
def test_an_interrupted_parallel_run_stops_its_workers(project, signame, code):
    # under --jobs, Ctrl-C waited for every queued job, and SIGTERM left the workers running
    import signal
    import time

    (project / "slow.py").write_text(MODEL.replace("def build(width=8):", "def build(width=8):\n    import time\n    time.sleep(60)"))
    # SIGINT as a terminal would leave it: a shell starts background jobs with SIGINT ignored, and
    # Python then installs no KeyboardInterrupt handler (the suite run with `&` hung here)
    proc = _rflint("slow.py:build", "--input", "8", "--input", "16", "--input", "32", "-j", "2", cwd=project,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(8)  # the workers are in the 60 s factory by now
    os.killpg(proc.pid, getattr(signal, signame)) if signame == "SIGINT" else proc.send_signal(getattr(signal, signame))
    assert proc.wait(timeout=30) == code  # not after the 60 s sleeps
    assert proc.stderr.read() == ("rflint: aborted\n" if signame == "SIGINT" else "")
    time.sleep(1)
    left = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert left == [], left


def test_jobs_split_a_models_sizes_only_over_idle_workers():
    # one job per size made every size load and trace the model again: with -j 2, one model at 4
    # sizes is 2 jobs of 2 consecutive sizes, and 2 models need no split at all
    from rflint.cli.run import Job, split_sizes_into_jobs

    one = [Job("zoo:vgg11", [32, 48, 64, 96])]
    assert [job.sizes for job in split_sizes_into_jobs(one, 2)] == [[32, 48], [64, 96]]
    assert [job.sizes for job in split_sizes_into_jobs(one, 3)] == [[32], [48, 64], [96]]
    two = [Job("zoo:vgg11", [32, 64]), Job("zoo:vgg13", [32, 64])]
    assert split_sizes_into_jobs(two, 2) == two
    # and the order of the reports is the serial one
    args = ["check", "zoo:vgg11", "--input", "32", "--input", "48", "--input", "64", "--format", "json"]
    assert json.loads(invoke(*args, "--jobs", "2").stdout) == json.loads(invoke(*args).stdout)


def test_picture_names_of_two_targets_with_one_file_name(tmp_path, monkeypatch):
    # ca/model.py and cb/model.py wrote one graph file: the name took the file's base name only
    monkeypatch.chdir(tmp_path)
    for d in ("ca", "cb"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "model.py").write_text(MODEL)
    invoke("check", "ca/model.py:build", "cb/model.py:build", "--input", "8", "--graph", "g.dot")
    assert sorted(p.name for p in tmp_path.glob("g-*.dot")) == ["g-ca_model.py_build-8x8.dot",
                                                                "g-cb_model.py_build-8x8.dot"]


def test_debug_under_jobs_shows_the_models_traceback(project):
    proc = subprocess.run([sys.executable, "-m", "rflint", "net.py:broken", "net.py:build", "--input", "8", "-j", "2",
                           "--debug"], cwd=project, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and 'net.py", line' in proc.stderr and "no such depth" in proc.stderr


def test_a_failing_target_or_size_does_not_hide_the_others(project):
    # net.py:build at 8 px has a tail (exit 1 alone); missing.py cannot load; at 1 px net's first
    # conv (k 3, padding 1) still runs, but the max pool's window 2 does not fit: "too small"
    result = invoke("check", "net.py:build", "missing.py:build", "net.py:broken", "--input", "8", "--input", "1")
    assert result.exit_code == 2
    assert result.stdout.count("net.py:build @ 8x8") == 1 and "predicted tail" in result.stdout
    assert "1 model run:" in result.stdout and "3 could not be analysed" in result.stdout
    lines = result.stderr.splitlines()
    assert lines == [
        "rflint: error: input 1x1 is too small for net.py:build: the feature map vanishes at layer 2; the smallest input that runs is 2x2",
        "rflint: error: missing.py:build: model file not found: missing.py",
        "rflint: error: net.py:broken raised ValueError: no such depth",
    ]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_failures_are_listed_in_the_json_document(project, jobs):
    result = invoke("check", "net.py:build", "missing.py:build", "--input", "8", "--input", "1",
                    "--format", "json", "--jobs", jobs)
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert [(m["target"], m["input"]) for m in document["models"]] == [("net.py:build", [8, 8])]
    assert document["errors"] == [
        {"target": "net.py:build", "kwargs": {}, "input": [1, 1],
         "message": "input 1x1 is too small for net.py:build: the feature map vanishes at layer 2; the smallest input that runs is 2x2"},
        {"target": "missing.py:build", "kwargs": {}, "input": None, "message": "model file not found: missing.py"},
    ]
    assert len(result.stderr.splitlines()) == 2
    # with --jobs a model's sizes are split over the workers: its load error is still said once
    split = invoke("check", "missing.py:build", "--input", "8", "--input", "16", "--jobs", jobs)
    assert split.stderr == "rflint: error: missing.py:build: model file not found: missing.py\n"


def test_a_run_where_everything_fails_is_one_line_and_no_report(project):
    result = invoke("check", "missing.py:build", "--input", "8")
    assert (result.exit_code, result.stdout, result.stderr) == (
        2, "", "rflint: error: missing.py:build: model file not found: missing.py\n")
    clean = invoke("check", "net.py:build", "--input", "8", "--format", "json")
    assert json.loads(clean.stdout)["errors"] == []


def test_forward_with_starred_inputs_takes_one_shape_each(project):
    # fx traces forward(*xs) as one placeholder that takes the rest of the arguments: it got one shape
    # only ("takes 1 inputs").  Here conv a (3x3) reads xs[0], conv b (5x5) xs[1]: r_out 3 and 5
    (project / "star.py").write_text(textwrap.dedent("""
        import torch.nn as nn

        class Two(nn.Module):
            def __init__(self):
                super().__init__()
                self.a, self.b = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(1, 8, 5, padding=2)

            def forward(self, *xs):
                return self.a(xs[0]) + self.b(xs[1])
    """))
    result = invoke("check", "star.py:Two", "--input-shape", "1,3,16,16", "--input-shape", "1,1,16,16", "-f", "json")
    layers = {layer["name"]: layer for layer in json.loads(result.stdout)["models"][0]["layers"]}
    assert (layers["a"]["in_shape"], layers["a"]["r_out_min"]) == ([1, 3, 16, 16], [3, 3])
    assert (layers["b"]["in_shape"], layers["b"]["r_out_min"]) == ([1, 1, 16, 16], [5, 5])
    one = invoke("check", "net.py:build", "--input-shape", "1,3,16,16", "--input-shape", "1,1,16,16")
    assert one.stderr == "rflint: error: net.py:build: forward() takes 1 input, got 2 shapes\n"


def test_a_saved_graph_module_is_not_blamed_on_rflint_or_typer(project):
    # a fixed model saved with torch.save and loaded by a factory: its layers were built by rflint's
    # tracer and its forward() is generated code, so the findings pointed at rflint/engine/prepare.py
    # (and, once that was skipped, at typer): neither is a line the user can edit
    import torch

    torch.save(rflint_truncate("zoo:vgg11", 32), project / "vgg.pt")
    (project / "load.py").write_text("import torch\n\n\ndef load():\n    return torch.load('vgg.pt', weights_only=False)\n")
    doc = json.loads(invoke("check", "load.py:load", "--input", "16", "--format", "json").stdout)["models"][0]
    places = {(x["source"] or {}).get("file") for x in doc["findings"] + doc["layers"]}
    assert doc["findings"] and places <= {None, str(project / "load.py")}, places


def rflint_truncate(target, size):
    from rflint import truncate

    return truncate(target, size)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_each_target_imports_its_own_sibling_modules(tmp_path, monkeypatch, jobs):
    # exp1/model.py and exp2/model.py both `from blocks import head`; exp1/blocks.py has one conv,
    # exp2/blocks.py six.  With -j 1 exp2 got exp1's blocks from sys.modules.  Params by hand: stem
    # 3*16*9 + 16 = 448, each head conv 16*16*9 + 16 = 2320, Linear(16, 2) 34: 2802 and 14402
    monkeypatch.chdir(tmp_path)
    model = ("import torch.nn as nn\nfrom blocks import head\n\n\ndef build():\n    return nn.Sequential("
             "nn.Conv2d(3, 16, 3, stride=2, padding=1), *head(16), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2))\n")
    for name, n in (("exp1", 1), ("exp2", 6)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.py").write_text(model)
        (tmp_path / name / "blocks.py").write_text(
            f"import torch.nn as nn\n\n\ndef head(c):\n    return [nn.Conv2d(c, c, 3, padding=1) for _ in range({n})]\n")
    result = invoke("check", "exp1/model.py:build", "exp2/model.py:build", "--input", "16", "-f", "json", "-j", jobs)
    assert [m["params"] for m in json.loads(result.stdout)["models"]] == [2802, 14402]


def _blocks_file(n: int) -> str:
    return f"import torch.nn as nn\n\n\ndef head(c):\n    return [nn.Conv2d(c, c, 3, padding=1) for _ in range({n})]\n"


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_module_an_earlier_target_took_from_the_project_root_is_not_reused(tmp_path, monkeypatch, jobs):
    # exp1 has no blocks.py, so its `from blocks import head` found the project root's (six convs);
    # only modules from the target's own directory were forgotten, so exp2 (whose own blocks.py
    # has one conv) was linted with the root's.  Params as in the test above: 14402 and 2802
    monkeypatch.chdir(tmp_path)
    model = ("import torch.nn as nn\nfrom blocks import head\n\n\ndef build():\n    return nn.Sequential("
             "nn.Conv2d(3, 16, 3, stride=2, padding=1), *head(16), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2))\n")
    (tmp_path / "blocks.py").write_text(_blocks_file(6))
    for name in ("exp1", "exp2"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.py").write_text(model)
    (tmp_path / "exp2" / "blocks.py").write_text(_blocks_file(1))
    result = invoke("check", "exp1/model.py:build", "exp2/model.py:build", "--input", "16", "-f", "json", "-j", jobs)
    assert [m["params"] for m in json.loads(result.stdout)["models"]] == [14402, 2802]


def test_a_file_target_is_linted_from_that_file_not_from_an_installed_copy(tmp_path, monkeypatch):
    # An installed (here: on sys.path) copy of mypkg with one conv, the checkout's src/mypkg with
    # six.  The dotted target imports the installed copy first; the file target then got it from
    # sys.modules, and its findings pointed into the copy.  Params: 2802 (one conv), 14402 (six)
    repo, installed = tmp_path / "repo", tmp_path / "venv" / "lib" / "site-packages"
    for where, n in ((installed, 1), (repo / "src", 6)):
        package = where / "mypkg"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "blocks.py").write_text(_blocks_file(n))
        (package / "models.py").write_text(
            "import torch.nn as nn\nfrom .blocks import head\n\n\ndef build():\n    return nn.Sequential("
            "nn.Conv2d(3, 16, 3, stride=2, padding=1), *head(16), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2))\n")
    monkeypatch.syspath_prepend(str(installed))
    monkeypatch.chdir(repo)
    result = invoke("check", "mypkg.models:build", "src/mypkg/models.py:build", "--input", "16", "-f", "json")
    models = json.loads(result.stdout)["models"]
    assert [m["params"] for m in models] == [2802, 14402]
    assert models[1]["layers"][0]["source"]["file"] == str(repo / "src" / "mypkg" / "models.py")


def test_a_config_target_imports_its_project_when_run_with_config_from_elsewhere(tmp_path, monkeypatch):
    # ml/pyproject.toml lists scripts/net.py, which imports the project's package mlpkg (in ml/).
    # Run from the repository's root with --config, as the README's pre-commit section does, the
    # project directory put on sys.path was the working directory's, and mlpkg was not found
    ml = tmp_path / "ml"
    (ml / "mlpkg").mkdir(parents=True)
    (ml / "scripts").mkdir()
    (ml / "mlpkg" / "__init__.py").write_text(_blocks_file(1))
    (ml / "scripts" / "net.py").write_text(
        "import torch.nn as nn\nfrom mlpkg import head\n\n\ndef build():\n    return nn.Sequential("
        "nn.Conv2d(3, 16, 3, stride=2, padding=1), *head(16), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2))\n")
    (ml / "pyproject.toml").write_text('[[tool.rflint.models]]\ntarget = "scripts/net.py:build"\ninput = 16\n')
    monkeypatch.chdir(tmp_path)
    result = invoke("check", "--config", "ml/pyproject.toml", "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert [m["params"] for m in json.loads(result.stdout)["models"]] == [2802]


def test_a_global_hook_one_target_registers_is_not_noted_in_the_next(tmp_path, monkeypatch):
    # ga.py registers a global forward pre-hook at import: it stayed registered for gb.py, whose
    # report noted it (and whose modules it ran around); the note called it a "forward hook"
    from torch.nn.modules import module as module_globals

    monkeypatch.chdir(tmp_path)
    chain = "\ndef build():\n    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1))\n"
    (tmp_path / "ga.py").write_text("import torch.nn as nn\n\n\ndef watch(module, args):\n    return None\n\n\n"
                                    "nn.modules.module.register_module_forward_pre_hook(watch)\n" + chain)
    (tmp_path / "gb.py").write_text("import torch.nn as nn\n" + chain)
    before = set(module_globals._global_forward_pre_hooks)
    try:
        models = json.loads(invoke("check", "ga.py:build", "gb.py:build", "--input", "8", "-f", "json").stdout)["models"]
    finally:
        for key in set(module_globals._global_forward_pre_hooks) - before:
            del module_globals._global_forward_pre_hooks[key]
    assert [m["warnings"] for m in models] == [
        ["a global forward pre-hook (watch) runs around every module: rflint does not analyse it, so if it changes "
         "tensors the RFs are not what runs"], []]


def test_a_module_forward_imports_lazily_is_the_targets_own(tmp_path, monkeypatch):
    # x/net.py and y/net.py import `helper` inside forward(), while they are traced: after the load,
    # so it was never forgotten, and y was linted with x's helper (a 3x3 pool instead of 7x7)
    monkeypatch.chdir(tmp_path)
    for name, k in (("x", 3), ("y", 7)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "helper.py").write_text(f"import torch.nn.functional as F\n\n\ndef pool(x):\n"
                                                   f"    return F.max_pool2d(x, {k}, 1, {k // 2})\n")
        (tmp_path / name / "net.py").write_text(
            "import torch.nn as nn\n\n\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
            "        self.c = nn.Conv2d(3, 4, 3, padding=1)\n\n    def forward(self, x):\n        import helper\n\n"
            "        return helper.pool(self.c(x))\n\n\ndef build():\n    return Net()\n")
    models = json.loads(invoke("check", "x/net.py:build", "y/net.py:build", "--input", "32", "-f", "json").stdout)["models"]
    assert [[layer["kernel"] for layer in m["layers"]] for m in models] == [[[3, 3], [3, 3]], [[3, 3], [7, 7]]]


def test_a_config_entry_keeps_its_directory_first_and_its_sizes_yield_to_given_shapes(tmp_path, monkeypatch):
    # ml/pyproject.toml lists models/net.py, which does `import utils`: ml/utils.py (3x3 pool), not
    # the repository root's utils.py (9x9).  From the root with --config the working directory came
    # first (the 9x9 one), and a target named on the command line lost the config's directory
    # altogether; --input-shape on the command line gave way to the entry's input (32, not 16)
    (tmp_path / "ml" / "models").mkdir(parents=True)
    for where, k in ((tmp_path, 9), (tmp_path / "ml", 3)):
        (where / "utils.py").write_text(f"import torch.nn as nn\n\n\ndef pool():\n    return nn.MaxPool2d({k}, 1, {k // 2})\n")
    (tmp_path / "ml" / "models" / "net.py").write_text(
        "import torch.nn as nn\nimport utils\n\n\ndef build(width):\n"
        "    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), utils.pool())\n")
    (tmp_path / "ml" / "pyproject.toml").write_text(
        '[[tool.rflint.models]]\ntarget = "models/net.py:build"\ninput = 32\nkwargs = { width = 4 }\n')
    monkeypatch.chdir(tmp_path)
    for target in ([], ["ml/models/net.py:build"]):
        models = json.loads(invoke("check", "--config", "ml/pyproject.toml", *target, "-f", "json").stdout)["models"]
        assert [(m["target"], m["input"], m["layers"][1]["kernel"]) for m in models] == [("models/net.py:build", [32, 32], [3, 3])]
    models = json.loads(invoke("check", "--config", "ml/pyproject.toml", "ml/models/net.py:build", "--input-shape", "1,3,16,16",
                               "-f", "json").stdout)["models"]
    assert [m["input"] for m in models] == [[16, 16]]
    # sweep and fix build the model as check does: the entry's kwargs (width has no default), its directory
    sweep = json.loads(invoke("sweep", "--config", "ml/pyproject.toml", "ml/models/net.py:build", "--sizes", "8,16",
                              "-f", "json").stdout)
    assert [row.get("error") for row in sweep["sizes"]] == [None, None]


def test_two_entries_the_given_kwarg_makes_one_model_run_once(project):
    # entries depth... here width 4 and width 8; --kwarg width=2 agrees with neither: the model as
    # given, once, with the first entry's settings (it ran twice, two findings of one fingerprint)
    (project / "pyproject.toml").write_text(
        '[[tool.rflint.models]]\ntarget = "net.py:build"\ninput = 8\nkwargs = { width = 4 }\n'
        '[[tool.rflint.models]]\ntarget = "net.py:build"\ninput = 16\nkwargs = { width = 8 }\n')
    models = json.loads(invoke("check", "net.py:build", "--kwarg", "width=2", "-f", "json").stdout)["models"]
    assert [(m["input"], m["kwargs"]) for m in models] == [([8, 8], {"width": 2})]
    # one that agrees picks its entry
    models = json.loads(invoke("check", "net.py:build", "--kwarg", "width=8", "-f", "json").stdout)["models"]
    assert [(m["input"], m["kwargs"]) for m in models] == [([16, 16], {"width": 8})]


@pytest.mark.parametrize("imported", [False, True])
def test_a_sibling_shlex_does_not_break_the_report(tmp_path, monkeypatch, imported):
    # rflint quoted the "Try it" command with shlex: a sibling shlex.py came first on sys.path
    # (ImportError, exit 2), and one the model imports itself was in sys.modules (AttributeError)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "shlex", raising=False)
    (tmp_path / "shlex.py").write_text("SPLIT = True\n" if imported else "raise ImportError('the model directory shlex.py')\n")
    (tmp_path / "net.py").write_text(("import shlex\n" if imported else "") + "import torch.nn as nn\n\n\ndef build():\n"
                                     "    return nn.Sequential(" + "nn.Conv2d(3, 3, 3, padding=1), " * 6 + "nn.Flatten(), nn.Linear(192, 2))\n")
    try:
        result = invoke("check", "net.py:build", "--input", "8")
    finally:
        sys.modules.pop("shlex", None)
    assert result.exit_code == 1 and "Try it: rflint fix net.py:build" in result.stdout, result.stderr


@pytest.mark.parametrize("comment, silenced", [
    ("# rflint: ignore[RF001]", {"RF001"}),
    ("# rflint: ignore[RF001, RF002]  # known", {"RF001", "RF002"}),
    ("# rflint: ignore  # all of it", {"RF001", "RF002"}),
    ("# rflint: ignore[RF001 - known, tracked in #12]", set()),
    ("# rflint: ignore [RF001]", set()),
    ("# rflint: ignore[]", set()),
    ("# rflint: ignore: RF001", set()),
    ("# rflint: ignore=RF001", set()),
])
def test_a_malformed_directive_silences_nothing(project, comment, silenced):
    # malformed lists were read as a bare ignore: every finding of the model, the tail too, gone.
    # At 8 px net.py's layer "5" has RF001 and the model RF002 (see MODEL); the comment goes on the
    # factory's def line, so it applies to the whole model
    text = MODEL.replace("    # rflint: ignore[RF001]", "").replace("def build(width=8):", f"def build(width=8):  {comment}")
    (project / "sup.py").write_text(text)
    found = {f["code"] for f in json.loads(invoke("check", "sup.py:build", "--input", "8", "-f", "json").stdout)["models"][0]["findings"]}
    assert {"RF001", "RF002"} - found == silenced


def test_every_model_error_is_one_line_that_names_the_model(project):
    (project / "m.py").write_text(textwrap.dedent("""
        import torch.nn as nn

        def multiline():
            raise ValueError("bad config:\\n  depth=7 not supported\\n  see docs")

        def mismatch():
            return nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(4, 8, 3))
    """))
    result = invoke("check", "m.py:multiline", "--input", "16")
    assert result.stderr == "rflint: error: m.py:multiline raised ValueError: bad config: depth=7 not supported see docs\n"
    result = invoke("check", "m.py:mismatch", "--input", "16")
    assert result.stderr.startswith("rflint: error: m.py:mismatch: shape propagation failed at 1: RuntimeError:")
    assert len(result.stderr.splitlines()) == 1


def test_config_errors_in_layers_and_sizes_stop_the_run_and_name_the_file(project):
    (project / "pyproject.toml").write_text(textwrap.dedent("""
        [tool.rflint]
        [[tool.rflint.models]]
        target = "net.py:build"
        input = 8
        [tool.rflint.layers]
        "models.blocks.Down" = { kernal = 3, stride = 2 }
    """))
    result = invoke("check")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (f"rflint: error: {project / 'pyproject.toml'} [tool.rflint.layers] models.blocks.Down: "
                             "unknown key kernal\n")
    (project / "pyproject.toml").write_text('[[tool.rflint.models]]\ntarget = "net.py:build"\ninput = "32x"\n')
    result = invoke("check")
    assert result.stderr == (f"rflint: error: {project / 'pyproject.toml'} [[tool.rflint.models]] target net.py:build: "
                             "input size must be a number like 32 or 32x48, got '32x'\n")


def test_output_into_a_missing_directory_is_refused_before_the_analysis(project):
    result = invoke("check", "net.py:build", "missing.py:build", "--input", "8", "-o", "no/such/dir/r.json", "-f", "json")
    assert (result.exit_code, result.stderr) == (2, "rflint: error: -o no/such/dir/r.json: no such directory no/such/dir\n")


def test_select_and_ignore_take_comma_separated_codes(project):
    # as ruff does, and as the ignore comments do: "--select RF001,RF002" is two codes, not one
    # unknown one; resnet18 at 32 has a tail (RF002) and unproductive layers (RF001)
    doc = json.loads(invoke("check", "zoo:resnet18", "--input", "32", "-f", "json", "--select", "RF001,RF002").stdout)
    assert {f["code"] for f in doc["models"][0]["findings"]} == {"RF001", "RF002"}
    doc = json.loads(invoke("check", "zoo:resnet18", "--input", "32", "-f", "json", "--ignore", "rf001, RF002").stdout)
    assert {f["code"] for f in doc["models"][0]["findings"]}.isdisjoint({"RF001", "RF002"})


def test_dash_output_is_stdout(project):
    # -o - writes to standard output, not to a file named "-"
    result = invoke("check", "zoo:resnet18", "--input", "32", "-f", "json", "-o", "-")
    assert json.loads(result.stdout)["models"][0]["target"] == "zoo:resnet18"
    result = invoke("sweep", "zoo:resnet18", "--sizes", "32,64", "-f", "json", "-o", "-")
    assert [s["input"] for s in json.loads(result.stdout)["sizes"]] == [[32, 32], [64, 64]]
    assert not (project / "-").exists()
    result = invoke("fix", "zoo:resnet18", "--input", "32", "--truncate", "-o", "-")
    assert result.exit_code == 2 and "the fixed model is a binary file" in result.stderr


def test_an_empty_sweep_size_is_an_error(project):
    result = invoke("sweep", "zoo:resnet18", "--sizes", "32,,64")
    assert result.exit_code == 2 and "--sizes 32,,64: an empty size between commas" in result.stderr


def test_a_target_or_size_given_twice_is_analysed_once(project):
    doc = json.loads(invoke("check", "zoo:vgg11", "zoo:vgg11", "--input", "32", "-i", "32", "-f", "json").stdout)
    assert [(m["target"], m["input"]) for m in doc["models"]] == [("zoo:vgg11", [32, 32])]


def test_an_ignore_on_a_cached_factory(project):
    # @functools.lru_cache hides the function from inspect (an _lru_cache_wrapper): the comment on
    # its def line was never read
    (project / "c.py").write_text(textwrap.dedent("""
        import functools
        import torch.nn as nn


        @functools.lru_cache()
        def build():  # rflint: ignore
            return nn.Sequential(*[nn.Conv2d(3 if i == 0 else 4, 4, 3, padding=1) for i in range(6)])
    """))
    doc = json.loads(invoke("check", "c.py:build", "--input", "8", "-f", "json").stdout)["models"][0]
    assert doc["findings"] == [] and doc["suppressed"] > 0


def test_the_suggested_command_is_one_line_outside_the_box(project):
    # inside the panel it wrapped at the panel's width, and a copy picked up the border and a break
    name = "a_model_file_with_a_rather_long_name_to_make_the_command_wrap.py"
    (project / name).write_text(MODEL)
    result = runner.invoke(app, ["check", f"{name}:build", "--input", "8", "--kwarg", "width=8"], env={"COLUMNS": "60"})
    line = next(line for line in result.stdout.splitlines() if line.startswith("Try it: "))
    assert line == (f"Try it: rflint fix {name}:build --input 8x8 --kwarg width=8 --truncate "
                    f"-o {name[:-3]}_build_8x8_truncated.pt")  # a file per model and size


def test_a_submodule_named_meta_gets_a_hint(project):
    # fx's GraphModule has a dict attribute called meta: the trace fails on a child module of that name
    (project / "m.py").write_text("from torch import nn\n\n\ndef build():\n"
                                  "    net = nn.Sequential()\n    net.add_module('meta', nn.Conv2d(3, 8, 3))\n    return net\n")
    result = invoke("check", "m.py:build", "--input", "16")
    assert result.exit_code == 2 and "GraphModule has an attribute of its own named meta: rename that submodule" in result.stderr


_BLOCKS = "from torch import nn\n\ndef conv(c_in, c):\n    return nn.Conv2d(c_in, c, 3, padding=1)\n"
_PACKAGED = "from torch import nn\n\nfrom {imp} import conv\n\ndef net():\n    return nn.Sequential(conv(3, 8), conv(8, 8))\n"


def test_file_targets_in_a_package_and_scripts_import_like_the_repository(tmp_path, monkeypatch):
    """A research repository: mynet/ (a package with relative imports), src/othernet/ (src layout),
    scripts/ importing mynet absolutely.  File targets in packages imported as loose files failed
    ("attempted relative import with no known parent package", "No module named 'mynet'")."""
    for package in ("mynet", "mynet/models", "src/othernet"):
        (tmp_path / package).mkdir(parents=True, exist_ok=True)
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'mynet'\n")
    (tmp_path / "mynet" / "blocks.py").write_text(_BLOCKS)
    (tmp_path / "src" / "othernet" / "blocks.py").write_text(_BLOCKS)
    (tmp_path / "mynet" / "models" / "rel.py").write_text(_PACKAGED.format(imp="..blocks"))
    (tmp_path / "mynet" / "models" / "absolute.py").write_text(_PACKAGED.format(imp="mynet.blocks"))
    (tmp_path / "src" / "othernet" / "net.py").write_text(_PACKAGED.format(imp=".blocks"))
    (tmp_path / "scripts" / "export.py").write_text(_PACKAGED.format(imp="mynet.blocks"))
    monkeypatch.chdir(tmp_path)
    for target in ("mynet/models/rel.py:net", "mynet/models/absolute.py:net", "src/othernet/net.py:net",
                   "scripts/export.py:net", "mynet.models.rel:net"):
        result = invoke("check", target, "--input", "8")
        assert result.exit_code == 0, (target, result.output)
    # from a subdirectory, a package.module target resolves from the project's root (the "Try it"
    # command rflint prints there names it so)
    monkeypatch.chdir(tmp_path / "mynet" / "models")
    for target in ("mynet.models.rel:net", "rel.py:net", "../../scripts/export.py:net"):
        result = invoke("check", target, "--input", "8")
        assert result.exit_code == 0, (target, result.output)


def test_a_config_model_without_a_size_is_told_where_to_give_it(project):
    (project / "pyproject.toml").write_text('[[tool.rflint.models]]\ntarget = "net.py:build"\n')
    result = invoke("check")
    assert result.exit_code == 2
    assert ("net.py:build: no input size given (add `input = 224` to its [[tool.rflint.models]] entry in "
            f"{project / 'pyproject.toml'}, or pass --input)") in result.stderr
    assert invoke("check", "--input", "64").exit_code == 0


def test_file_targets_in_packages_still_import_like_loose_files(tmp_path, monkeypatch):
    """A package file with a sibling import (`from blocks import conv`, as `python net.py` runs it),
    one whose package __init__ needs a missing extension, and one in a package named like a
    standard module ("types"): importing them as package modules alone broke all three."""
    for name, init in (("sib", ""), ("ext", "from .cuda_ops import fused\n"), ("types", "")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(init)
        (tmp_path / name / "blocks.py").write_text(_BLOCKS)
        (tmp_path / name / "net.py").write_text(_PACKAGED.format(imp="blocks"))
    monkeypatch.chdir(tmp_path)
    for target in ("sib/net.py:net", "ext/net.py:net", "types/net.py:net"):
        result = invoke("check", target, "--input", "8")
        assert result.exit_code == 0, (target, result.output)


VALUE_BRANCH = textwrap.dedent("""
    import torch.nn as nn


    class ValueDep(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 8, 3, padding=1)
            self.b = nn.Conv2d(8, 8, 3, padding=1)  # rflint: ignore[RF005]
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))

        def forward(self, x):
            x = self.a(x)
            if x.sum() > -1e30:
                x = self.b(x)
            return self.head(x)


    lazy = nn.Sequential(nn.LazyConv2d(8, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
""")


def test_findings_on_copied_models_point_at_the_building_line(tmp_path, monkeypatch):
    """The value-aware tracer runs a CPU copy with real weights, and a module instance with lazy
    layers is analysed on a copy: their layers still point at the lines that built them (where a
    suppression comment sits), not at forward() or inside torch."""
    (tmp_path / "vd.py").write_text(VALUE_BRANCH)
    monkeypatch.chdir(tmp_path)
    result = invoke("check", "vd.py:ValueDep", "--input", "32", "--format", "json")
    m = json.loads(result.stdout)["models"][0]
    assert m["trace"].startswith("torch.fx with concrete values")
    assert [layer["source"]["line"] for layer in m["layers"]] == [8, 9]  # self.a =, self.b =
    assert m["findings"] == [] and m["suppressed"] == 1  # RF005 on b, ignored on its line
    result = invoke("check", "vd.py:lazy", "--input", "32", "--channels", "3", "--format", "json")
    m = json.loads(result.stdout)["models"][0]
    assert [f["source"] for f in m["findings"]] == [{"file": str(tmp_path / "vd.py"), "line": 19}]


def test_sweep_of_a_model_that_does_not_load_still_writes_its_json(tmp_path):
    out = tmp_path / "sweep.json"
    result = invoke("sweep", str(tmp_path / "nosuch.py") + ":X", "--sizes", "8,16", "--format", "json", "-o", str(out))
    assert result.exit_code == 2 and "model file not found" in result.stderr
    doc = json.loads(out.read_text())
    assert doc["sizes"] == [] and doc["error"] == f"{tmp_path}/nosuch.py:X: model file not found: {tmp_path}/nosuch.py"


def test_sweep_where_no_size_runs_still_writes_its_json(tmp_path):
    """The JSON lists every size with its reason (8 and 16 px vanish in VGG-16), then exit 2."""
    out = tmp_path / "sweep.json"
    result = invoke("sweep", "zoo:vgg16", "--sizes", "8,16", "--format", "json", "-o", str(out))
    assert result.exit_code == 2 and "none of the 2 swept sizes runs" in result.stderr
    doc = json.loads(out.read_text())
    assert [row["input"] for row in doc["sizes"]] == [[8, 8], [16, 16]]
    assert all("too small" in row["error"] for row in doc["sizes"]) and doc["no_tail_from"] is None


def test_a_mistyped_command_is_named_before_anything_loads(capsys):
    # `rflint chek zoo:vgg11` took "chek" for a TARGET: it analysed vgg11, then failed on "chek"
    from rflint.cli.app import main

    for argv, hint in ((["chek", "zoo:vgg11", "-i", "32"], "did you mean `rflint check`?"),
                       (["swep", "zoo:vgg11"], "did you mean `rflint sweep`?"), (["help"], "see `rflint --help`")):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        captured = capsys.readouterr()
        assert stop.value.code == 2 and captured.out == ""
        assert captured.err == (f"rflint: error: unknown command {argv[0]!r} ({hint}); a TARGET is "
                                "path/to/file.py:name, package.module:name or zoo:name\n")
    with pytest.raises(SystemExit) as stop:  # a file without its ":name" is a TARGET, said as such
        main(["net.py", "-i", "32"])
    assert stop.value.code == 2 and "TARGET must be 'path/to/file.py:name'" in capsys.readouterr().err


def test_ignore_comments_that_silence_nothing_are_reported(tmp_path, monkeypatch):
    """A typo in a code or in the comment's form silenced nothing without a word."""
    (tmp_path / "sup.py").write_text(textwrap.dedent("""
        import torch.nn as nn


        def build():
            return nn.Sequential(
                nn.Conv2d(3, 8, 3, padding=1),
                nn.Conv2d(8, 8, 3, padding=1),  # rflint: ignore[RF999]
                nn.Conv2d(8, 8, 3, padding=1),  # rflint: ignore [RF001]
                nn.Conv2d(8, 8, 3, padding=1),  # rflint: ignore[RF00] (a prefix: fine)
            )
    """))
    monkeypatch.chdir(tmp_path)
    m = json.loads(invoke("check", "sup.py:build", "--input", "32", "--format", "json").stdout)["models"][0]
    file = str(tmp_path / "sup.py")
    assert m["warnings"] == [
        f"{file}:8: ignore comment names no rule: RF999 (the codes are RF001..RF007, see `rflint rules`)",
        f"{file}:9: malformed ignore comment, it silences nothing (write # rflint: ignore[RF001] or a bare "
        "# rflint: ignore)"]  # the code it names, not a stock example


def test_a_malformed_ignore_comment_is_answered_with_the_code_it_means(tmp_path, monkeypatch):
    # RF0002, rf_002 or RF-2 matched no code, and the note suggested a stock ignore[RF001,RF004]:
    # pasted back, it silenced two rules nobody meant and left the tail alone
    (tmp_path / "typo.py").write_text(textwrap.dedent("""
        import torch.nn as nn


        def build():
            return nn.Sequential(
                nn.Conv2d(3, 8, 3, padding=1),  # rflint: ignore[RF0002]
                nn.Conv2d(8, 8, 3, padding=1),  # rflint: ignore: rf_002, RF-4
                nn.Conv2d(8, 8, 3, padding=1),  # rflint: ignore(the tail)
            )
    """))
    monkeypatch.chdir(tmp_path)
    m = json.loads(invoke("check", "typo.py:build", "--input", "32", "--format", "json").stdout)["models"][0]
    file = str(tmp_path / "typo.py")
    assert m["warnings"] == [
        f"{file}:{line}: malformed ignore comment, it silences nothing (write # rflint: ignore[{meant}] or a bare "
        "# rflint: ignore)" for line, meant in ((7, "RF002"), (8, "RF002,RF004"), (9, "CODE,..."))]


MERGES = """
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.body = nn.Sequential(*[nn.Conv2d(4, 4, 3, padding=1) for _ in range(4)])

    def forward(self, x):
        x = self.stem(x)
        return x + self.body(x)  # rflint: ignore [RF007]


def traced():
    return torch.fx.symbolic_trace(Net())
"""


def test_comments_on_the_lines_findings_point_at_are_checked_and_every_finding_has_a_line(tmp_path, monkeypatch):
    # The merge (identity vs 4 convs: ratio 4 >= 4) is RF007's, on the forward() line of the add,
    # which builds no layer: its malformed comment silenced nothing without a note.  A model fx built
    # (a GraphModule) has no forward() line: its RF007 had no source, and a SARIF result without a
    # location makes GitHub reject the whole upload.  It points at the factory now, as layers do.
    (tmp_path / "merges.py").write_text(MERGES)
    monkeypatch.chdir(tmp_path)
    m = json.loads(invoke("check", "merges.py:Net", "--input", "64", "--format", "json").stdout)["models"][0]
    rf007 = [f for f in m["findings"] if f["code"] == "RF007"]
    assert len(rf007) == 1 and rf007[0]["source"]["line"] == 14
    assert m["warnings"] == [f"{tmp_path / 'merges.py'}:14: malformed ignore comment, it silences nothing "
                             "(write # rflint: ignore[RF007] or a bare # rflint: ignore)"]
    result = invoke("check", "merges.py:traced", "--input", "64", "--format", "sarif")
    results = [r for r in json.loads(result.stdout)["runs"][0]["results"] if r["ruleId"] == "RF007"]
    assert len(results) == 1
    location = results[0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "merges.py" and location["region"]["startLine"] == 17


def test_ignore_comments_are_read_in_any_case(tmp_path, monkeypatch):
    # as ruff reads # NOQA: "# RFLINT: IGNORE[RF001]" was no directive at all, silent either way
    (tmp_path / "upper.py").write_text(MODEL.replace("# rflint: ignore[RF001]", "# RFLINT: Ignore[rf001]"))
    monkeypatch.chdir(tmp_path)
    m = json.loads(invoke("check", "upper.py:build", "--input", "8", "--format", "json").stdout)["models"][0]
    assert [f["layer"] for f in m["findings"] if f["code"] == "RF001"] == ["5"] and m["suppressed"] == 1


UNUSED = """
import torch.nn as nn


def build(width=8):  # rflint: ignore[RF005]
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1),  # rflint: ignore[RF004]
        nn.Conv2d(width, width, 3, padding=1),
        nn.MaxPool2d(2),
        nn.Conv2d(width, width, 3, padding=1),
        nn.Conv2d(width, width, 3, padding=1),  # rflint: ignore[RF001,RF006]
        nn.Conv2d(width, width, 3, padding=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(width, 10),
    )
"""


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_warn_unused_ignores_reports_comments_that_silenced_nothing_in_the_whole_run(tmp_path, monkeypatch, jobs):
    # The layers as in MODEL: input RFs 1, 3, 5, 6, 10, 14, the last one's output 18.  At 8 px the
    # convs on line 11 (RF 10) and 12 (RF 14) are unproductive: line 11's RF001 is used, its RF006
    # (no axis differs) is not.  No conv has a tap that only reads padding (3x3, padding 1, on maps
    # of at least 4x4): line 7's RF004 is unused.  RF005 fires where the final RF (18) is smaller
    # than the image: at 64 px, not at 8, so the def line's (5) comment is used once 64 is in the run.
    (tmp_path / "net.py").write_text(UNUSED)
    monkeypatch.chdir(tmp_path)

    def notes(*sizes, extra=()):
        args = ["check", "net.py:build", *[a for size in sizes for a in ("--input", size)], "-j", jobs, *extra]
        result = invoke(*args, "--format", "json")
        return result.exit_code, [line.split(": ", 1)[1] for line in result.stderr.splitlines() if "unused ignore" in line]

    assert notes("8") == (1, [])  # not asked for: nothing said (exit 1: the tail)
    code, said = notes("8", extra=["--warn-unused-ignores"])
    assert code == 1 and said == [f"net.py:{line}: unused ignore: ignore[{code}] silenced no finding of this run"
                                  for line, code in ((5, "RF005"), (7, "RF004"), (11, "RF006"))]
    code, said = notes("64", "8", extra=["--warn-unused-ignores", "--fail-on", "never"])
    assert code == 0 and [s.split(":")[1] for s in said] == ["7", "11"]  # RF005 used at 64
    # no finding at 64 px but RF005: the unused comments alone make the exit code 1, as in mypy
    assert notes("64", extra=["--warn-unused-ignores"])[0] == 1
    # a rule the run deselected is not judged
    assert [s.split(":")[1] for s in notes("8", extra=["--warn-unused-ignores", "--select", "RF001,RF002"])[1]] == []
    (tmp_path / "pyproject.toml").write_text("[tool.rflint]\nwarn-unused-ignores = true\n")
    assert len(notes("8")[1]) == 3
    (tmp_path / "pyproject.toml").write_text('[tool.rflint]\nwarn-unused-ignores = "yes"\n')
    result = invoke("check", "net.py:build", "--input", "8")
    assert result.exit_code == 2 and "warn-unused-ignores must be true or false, got 'yes'" in result.stderr


def test_an_ignore_comment_on_a_call_that_builds_layers_covers_them(tmp_path, monkeypatch):
    # `self.b = conv_bn(8, 8)  # rflint: ignore[RF004]` silenced nothing (the finding points at the
    # conv's line inside the helper), and --warn-unused-ignores did not see it either.  Convs of 3x3,
    # padding 1, reading 1, 3, 5, 7, 9 at 4 px: "c" reads 5 > 4, "d" 7, "e" 9: RF001 on c, d and e.
    (tmp_path / "helpers.py").write_text("import torch.nn as nn\n\n\ndef conv(cin, cout):\n"
                                         "    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1))\n")
    (tmp_path / "net.py").write_text(textwrap.dedent("""
        import torch.nn as nn
        from helpers import conv


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.a = conv(3, 8)
                self.b = conv(8, 8)
                self.c = conv(8, 8)  # rflint: ignore[RF001]
                self.d = conv(8, 8)  # rflint: ignore[RF004]
                self.e = conv(8, 8)  # rflint: ignore [RF001]

            def forward(self, x):
                return self.e(self.d(self.c(self.b(self.a(x)))))


        def build():
            return Net()
    """))
    monkeypatch.chdir(tmp_path)
    result = invoke("check", "net.py:build", "--input", "4", "--format", "json", "--warn-unused-ignores")
    m = json.loads(result.stdout)["models"][0]
    rf001 = [f for f in m["findings"] if f["code"] == "RF001"]
    assert [f["layer"] for f in rf001] == ["d.0", "e.0"] and m["suppressed"] == 1
    # the finding points at the conv's own line, and says which lines called it, innermost first
    assert rf001[0]["source"] == {"file": str(tmp_path / "helpers.py"), "line": 5}
    assert rf001[0]["called_from"] == [{"file": str(tmp_path / "net.py"), "line": 12},
                                       {"file": str(tmp_path / "net.py"), "line": 20}]
    assert m["warnings"] == [f"{tmp_path / 'net.py'}:13: malformed ignore comment, it silences nothing "
                             "(write # rflint: ignore[RF001] or a bare # rflint: ignore)"]
    assert "net.py:12: unused ignore: ignore[RF004] silenced no finding of this run" in result.stderr


def test_a_class_header_covers_the_layers_helpers_build_in_its_body(tmp_path, monkeypatch):
    # `class Block:  # rflint: ignore[RF001]` silenced `self.b = nn.Conv2d(...)` but not
    # `self.a = conv3x3(...)`, built by a helper called in Block's body.  At 4 px the chain's input
    # RFs are 1, 3, 5, 7: both convs of the second block (inputs 5 and 7) are unproductive.
    (tmp_path / "net.py").write_text(textwrap.dedent("""
        import torch.nn as nn


        def conv3x3(cin, cout):
            return nn.Conv2d(cin, cout, 3, padding=1)


        class Block(nn.Module):  # rflint: ignore[RF001]
            def __init__(self, cin):
                super().__init__()
                self.a = conv3x3(cin, 8)
                self.b = nn.Conv2d(8, 8, 3, padding=1)

            def forward(self, x):
                return self.b(self.a(x))


        def build():
            return nn.Sequential(Block(3), Block(8))
    """))
    monkeypatch.chdir(tmp_path)
    m = json.loads(invoke("check", "net.py:build", "--input", "4", "--format", "json").stdout)["models"][0]
    assert [f["layer"] for f in m["findings"] if f["code"] == "RF001"] == [] and m["suppressed"] >= 2


BLOCKS_AND_HELPERS = """
import torch.nn as nn


def conv_bn(cin, cout):  # rflint: ignore[RF001]
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout))


class Block(nn.Module):  # rflint: ignore[RF001]
    def __init__(self, c):
        super().__init__()
        self.a = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return x + self.a(x)


class Odd(nn.Module):  # rflint: ignore [RF001]
    def __init__(self, c):
        super().__init__()
        self.a = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.a(x)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.convs = nn.Sequential(*[conv_bn(8, 8) for _ in range(4)])
        self.blocks = nn.Sequential(*[Block(8) for _ in range(3)])
        self.down = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.odd = Odd(8)

    def forward(self, x):
        return self.odd(self.down(self.blocks(self.convs(self.stem(x)))))
"""


def test_an_ignore_comment_on_a_block_class_or_a_helper_def_covers_the_layers_built_in_it(tmp_path, monkeypatch):
    """Such a comment silenced nothing, without a note.  By hand at 8 px: the stem (3x3 /2) gives r 3,
    jump 2; the conv_bn convs read 3, 7, 11, 15, the blocks' convs 19 (the identity keeps r_min at
    19), down 19, odd.a 19 + 2*2 = 23: RF001 for convs.2.0, convs.3.0, blocks.0-2.a, down and odd.a.
    conv_bn's def line and Block's class line silence five; Odd's malformed comment none, with a note."""
    (tmp_path / "m.py").write_text(BLOCKS_AND_HELPERS)
    monkeypatch.chdir(tmp_path)
    m = json.loads(invoke("check", "m.py:Net", "--input", "8", "--format", "json").stdout)["models"][0]
    assert [f["layer"] for f in m["findings"] if f["code"] == "RF001"] == ["down", "odd.a"]
    assert m["suppressed"] == 5
    assert m["warnings"] == [f"{tmp_path / 'm.py'}:18: malformed ignore comment, it silences nothing "
                             "(write # rflint: ignore[RF001] or a bare # rflint: ignore)"]


def test_ignore_comments_where_black_puts_them(tmp_path, monkeypatch):
    """black splits a long call and moves its trailing comment after the closing parenthesis; a
    multi-line def header ends on its own line.  Only the first line of each was read.  By hand:
    four stride-2 convs and then c4..c6 at 8 px: maps 4, 2, 1, then c4 reads r_min 15 > 8."""
    (tmp_path / "black.py").write_text(textwrap.dedent("""
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.c1 = nn.Conv2d(3, 8, 3, padding=1, stride=2)
                self.c2 = nn.Conv2d(8, 8, 3, padding=1, stride=2)
                self.c3 = nn.Conv2d(8, 8, 3, padding=1, stride=2)
                self.c4 = nn.Conv2d(
                    8, 8, 3, padding=1,
                )  # rflint: ignore[RF001]
                self.c5 = nn.Conv2d(
                    8, 8, 3,  # rflint: ignore[RF001]
                    padding=1)
                self.c6 = nn.Conv2d(8, 8, 3, padding=1)
                self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))

            def forward(self, x):
                return self.head(self.c6(self.c5(self.c4(self.c3(self.c2(self.c1(x)))))))


        def build(
            width=8,
        ):  # rflint: ignore[RF002]
            return Net()
    """))
    monkeypatch.chdir(tmp_path)
    m = json.loads(invoke("check", "black.py:build", "--input", "8", "--select", "RF001,RF002",
                          "--format", "json").stdout)["models"][0]
    assert [(f["code"], f["layer"]) for f in m["findings"]] == [("RF001", "c6")]
    assert m["suppressed"] == 3 and m["warnings"] == []
    assert {f["source"]["line"] for f in m["findings"]} == {17}  # still the line the call starts on


def test_a_malformed_ignore_on_a_decorated_factory_is_reported(tmp_path, monkeypatch):
    # the note read the decorator line only; model_level_codes reads down to the def line
    (tmp_path / "deco.py").write_text(textwrap.dedent("""
        import functools

        import torch.nn as nn


        @functools.lru_cache
        def build():  # rflint: ignore [RF002]
            return nn.Sequential(*[nn.Conv2d(3, 3, 3, padding=1) for _ in range(6)])
    """))
    monkeypatch.chdir(tmp_path)
    m = json.loads(invoke("check", "deco.py:build", "--input", "8", "--format", "json").stdout)["models"][0]
    assert m["warnings"] == [f"{tmp_path / 'deco.py'}:8: malformed ignore comment, it silences nothing "
                             "(write # rflint: ignore[RF002] or a bare # rflint: ignore)"]


@pytest.mark.filterwarnings("ignore::FutureWarning")  # the old weight_norm, on purpose
def test_a_model_files_module_level_code_does_not_touch_the_run(project):
    # argparse at import read rflint's own flags ("unrecognized arguments: --input 32"); an os.chdir
    # made the next target "not found"; warnings.filterwarnings("error") failed the next targets
    (project / "args.py").write_text(textwrap.dedent("""
        import argparse

        import torch.nn as nn

        depth = argparse.ArgumentParser().parse_args().__dict__.get("depth", 2)


        def build():
            return nn.Sequential(*[nn.Conv2d(3, 3, 3, padding=1) for _ in range(depth)])
    """))
    (project / "sub").mkdir()
    (project / "sub" / "moves.py").write_text(textwrap.dedent("""
        import os
        import warnings

        import torch.nn as nn

        os.chdir(os.path.dirname(os.path.abspath(__file__)))
        warnings.filterwarnings("error")


        def build():
            return nn.Sequential(nn.Conv2d(3, 3, 3, padding=1))
    """))
    # the old weight_norm warns (FutureWarning): an error under the moved filters
    (project / "normed.py").write_text(textwrap.dedent("""
        import torch.nn as nn


        def build():
            return nn.Sequential(nn.utils.weight_norm(nn.Conv2d(3, 3, 3, padding=1)))
    """))
    result = invoke("check", "args.py:build", "sub/moves.py:build", "normed.py:build", "--input", "32",
                    "--format", "json", "-o", "report.json")
    assert result.exit_code == 0, result.output
    doc = json.loads((project / "report.json").read_text())
    # two 3x3 convs: 5; one: 3 (twice)
    assert [m["resolution"]["final_r_min"] for m in doc["models"]] == [[5, 5], [3, 3], [3, 3]]
    assert os.getcwd() == str(project)


LAZY_HEAD = """
import torch.nn as nn


def build():
    return nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.Conv2d(4, 4, 3, padding=1),
                         nn.Flatten(), nn.LazyLinear(10))
"""


def test_a_lazy_head_takes_each_sizes_shape(project):
    # the LazyLinear took 64 px's features (4 * 32 * 32) and 100 px "did not fit the size its head was
    # built for"; a sweep failed every size after the first; conv s2 r 3, j 2, conv 3 + 2 * 2 = 7
    (project / "lazy.py").write_text("open('imported.log', 'a').write('x')\n" + LAZY_HEAD)
    result = invoke("check", "lazy.py:build", "--input", "64", "--input", "100", "--format", "json")
    # the model anew is the factory called again, not the file imported again (its module-level
    # code ran once per size)
    assert (project / "imported.log").read_text() == "x"
    assert result.exit_code == 0, result.output
    docs = json.loads(result.stdout)["models"]
    assert [(d["input"], d["resolution"]["final_r_min"]) for d in docs] == [([64, 64], [7, 7]), ([100, 100], [7, 7])]
    rows = json.loads(invoke("sweep", "lazy.py:build", "--sizes", "5,16,40", "--format", "json").stdout)["sizes"]
    assert [("error" in row) for row in rows] == [False, False, False]
    # the smallest size that runs, tried on the model anew: conv3, pool 2, conv3 keep a pixel from
    # (s - 2) // 2 - 2 >= 1, s >= 8; the probes shaped the head at the first size that reached it, and
    # later sizes named others
    (project / "small.py").write_text(LAZY_HEAD.replace(
        "nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.Conv2d(4, 4, 3, padding=1)",
        "nn.Conv2d(3, 4, 3), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3)"))
    rows = json.loads(invoke("sweep", "small.py:build", "--sizes", "4,6,9", "--format", "json").stdout)["sizes"]
    assert [row.get("error", "runs").rpartition("; ")[2] for row in rows] == [
        "the smallest input that runs is 8x8", "the smallest input that runs is 8x8", "runs"]


def test_a_model_file_that_exits_hard_or_holds_a_nul_byte_is_an_error(project):
    # os._exit(0) at import ended rflint on the spot: exit 0, no output, the next target never linted;
    # a NUL byte in the source said "syntax error in bad.py:None"
    (project / "hard.py").write_text("import os\nos._exit(0)\n")
    (project / "nul.py").write_bytes(b"import torch\x00\n")
    result = invoke("check", "hard.py:build", "nul.py:build", "net.py:build", "--input", "32", "--format", "json")
    assert result.exit_code == 2
    assert "hard.py:build: importing " in result.stderr and "hard.py called os._exit(0)" in result.stderr
    assert "nul.py: source code string cannot contain null bytes" in result.stderr and ":None" not in result.stderr
    assert [m["target"] for m in json.loads(result.stdout)["models"]] == ["net.py:build"]


POOLED_JOIN = '''
import torch
from torch import nn


class UNet(nn.Module):
    def __init__(self, depth=2):
        super().__init__()
        self.enc = nn.Conv2d(3, 4, 3, padding=1)
        self.down = nn.Sequential(*[nn.MaxPool2d(2) for _ in range(depth)])
        self.up = nn.Upsample(scale_factor=2 ** depth)
        self.out = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        e = self.enc(x)
        return self.out(torch.cat([e, self.up(self.down(e))], 1))
'''


def test_an_error_names_the_model_with_its_kwargs(tmp_path, monkeypatch):
    # two config entries of one factory: the report named "unet.py:UNet (depth=2)", the error of the
    # other "unet.py:UNet" alone, in every format, so which entry failed was anyone's guess.  60 px:
    # depth 2 pools to 15 and back to 60 (runs), depth 3 to 7 and back to 56 (the join fails)
    (tmp_path / "unet.py").write_text(POOLED_JOIN)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.rflint]\n\n[[tool.rflint.models]]\ntarget = "unet.py:UNet"\ninput = 60\nkwargs = { depth = 2 }\n\n'
        '[[tool.rflint.models]]\ntarget = "unet.py:UNet"\ninput = 60\nkwargs = { depth = 3 }\n')
    monkeypatch.chdir(tmp_path)
    text = invoke("check", "--no-layers")
    assert text.exit_code == 2
    assert text.stderr.startswith("rflint: error: input 60x60 does not fit unet.py:UNet (depth=3): the maps joined")
    doc = json.loads(invoke("check", "--format", "json").stdout)
    assert [(e["target"], e["kwargs"], e["input"]) for e in doc["errors"]] == [("unet.py:UNet", {"depth": 3}, [60, 60])]
    assert [m["kwargs"] for m in doc["models"]] == [{"depth": 2}]
    github = invoke("check", "--format", "github").stdout
    assert "::error title=rflint model error::input 60x60 does not fit unet.py:UNet (depth=3): " in github


def test_a_report_written_to_a_file_leaves_its_summary_on_stderr(project):
    # a CI gate step writing SARIF for a later upload step failed with exit code 1 and not a word in
    # its own log; at 8 px net.py's tail is one error (RF002), and stdout stays empty
    for fmt in ("sarif", "json", "text"):
        result = invoke("check", "net.py:build", "--input", "8", "-f", fmt, "-o", f"out.{fmt}")
        assert result.exit_code == 1 and result.stdout == ""
        line = result.stderr.strip()
        assert line.startswith("rflint: 1 model run: 1 error,") and line.endswith(f"; report written to out.{fmt}")
    assert "rflint:" not in invoke("check", "net.py:build", "--input", "8", "-f", "sarif").stderr  # on stdout: no line


def test_a_kwarg_picks_the_entry_that_sets_it(project):
    # Two entries of one factory: width 8 (no kwargs: the default) at 8 px ignoring RF001, width 4 at
    # 64 px.  --kwarg width=4 took the first (it sets no width, so "agreed"): another model's size
    # and ignore.  At 64 px MODEL has no unproductive layer, at 8 px RF001 on "5" and RF002.
    (project / "pyproject.toml").write_text(
        '[tool.rflint]\n[[tool.rflint.models]]\ntarget = "net.py:build"\ninput = 8\nignore = ["RF001"]\n'
        '[[tool.rflint.models]]\ntarget = "net.py:build"\ninput = 64\nkwargs = { width = 4 }\n')
    [doc] = json.loads(invoke("check", "net.py:build", "--kwarg", "width=4", "--format", "json").stdout)["models"]
    assert (doc["input"], doc["kwargs"], doc["suppressed"]) == ([64, 64], {"width": 4}, 0)
    [doc] = json.loads(invoke("check", "net.py:build", "--kwarg", "width=6", "--format", "json").stdout)["models"]
    # none sets width 6: the first entry, which does not contradict it; at 8 px its RF001 on "5" and
    # the comment's on "4" are suppressed
    assert doc["input"] == [8, 8] and doc["suppressed"] == 2


def test_sweep_orders_sizes_by_their_sides_and_counts_what_comments_silence(project):
    # by the text, "128x128" sorted before "64x128", and the clean range ran "from 128x128 to 96x128";
    # and RF001 on layer "4", silenced by its comment (MODEL), was not counted, though a sweep counts
    # every finding.  At 8 px layers "4" (input RF 10) and "5" (14) are unproductive: RF001 x2.
    doc = json.loads(invoke("sweep", "net.py:build", "--sizes", "64x128,128x128,96x128", "-f", "json").stdout)
    assert [row["input"] for row in doc["sizes"]] == [[64, 128], [96, 128], [128, 128]]
    [row] = json.loads(invoke("sweep", "net.py:build", "--sizes", "8", "-f", "json").stdout)["sizes"]
    assert row["counts"]["RF001"] == 2


def test_sweep_and_fix_name_the_model_with_its_kwargs(project):
    # check named it "net.py:build (width=4)", sweep and fix "net.py:build" (README: a model given
    # kwargs is named with them in the reports)
    sweep = invoke("sweep", "net.py:build", "--kwarg", "width=4", "--sizes", "8")
    assert sweep.exit_code == 0 and sweep.stdout.lstrip().startswith("net.py:build (width=4): receptive field")
    doc = json.loads(invoke("sweep", "net.py:build", "--kwarg", "width=4", "--sizes", "8", "-f", "json").stdout)
    assert doc["target"] == "net.py:build" and doc["kwargs"] == {"width": 4}
    fix = invoke("fix", "net.py:build", "--kwarg", "width=4", "--input", "8", "--truncate", "-o", "t.pt")
    assert "net.py:build (width=4) (truncated)" in fix.stdout
    # a sweep whose model fails to build: its JSON dropped the kwargs, its message named the model without them
    failed = invoke("sweep", "net.py:build", "--kwarg", "width=-1", "--sizes", "8", "-f", "json")
    doc = json.loads(failed.stdout)
    assert failed.exit_code == 2 and doc["kwargs"] == {"width": -1}
    assert doc["error"].startswith("net.py:build (width=-1) raised RuntimeError") and doc["error"] in failed.stderr


def test_a_file_target_is_not_replaced_by_a_copy_the_caller_imported(tmp_path, monkeypatch):
    # the caller imported a/models (one conv) before rflint.analyze("b/models/net.py:build"): the
    # package was in the snapshot of what came before the first target, protected like torch, and b
    # was analysed as a's copy.  Only installed packages (site-packages, the standard library) are
    import rflint

    for where, n in (("a", 1), ("b", 2)):
        package = tmp_path / where / "models"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "net.py").write_text("import torch.nn as nn\n\n\ndef build():\n    return nn.Sequential("
                                        + "nn.Conv2d(3, 3, 3), " * n + ")\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path / "a"))
    for name in [n for n in sys.modules if n == "models" or n.startswith("models.")]:  # an earlier test's
        monkeypatch.delitem(sys.modules, name)
    try:
        import models.net  # noqa: F401  (the caller's own import of copy a)

        assert len(rflint.analyze("b/models/net.py:build", 16).layers) == 2
    finally:
        for name in [n for n in sys.modules if n == "models" or n.startswith("models.")]:
            del sys.modules[name]


def test_a_finding_line_keeps_its_place_whole_however_long_the_path(tmp_path, monkeypatch):
    # a path longer than the width was broken across lines ("error   RF002" alone, the path cut in
    # two), and `grep '^error.*net.py:'` found nothing; a short one keeps the message beside it
    deep = tmp_path / ("a" * 70) / ("b" * 70)
    deep.mkdir(parents=True)
    (deep / "net.py").write_text(MODEL)
    monkeypatch.chdir(tmp_path)
    target = f"{'a' * 70}/{'b' * 70}/net.py:build"
    lines = invoke("check", target, "--input", "8", "--no-layers").stdout.splitlines()
    assert f"error   RF002 {'a' * 70}/{'b' * 70}/net.py:11" in lines
    assert any(line.startswith("        predicted tail at 8x8 px: after layer 3") for line in lines)
    (tmp_path / "net.py").write_text(MODEL)
    lines = invoke("check", "net.py:build", "--input", "8", "--no-layers").stdout.splitlines()
    assert any(line.startswith("error   RF002 net.py:11 predicted tail at 8x8 px") for line in lines)


def test_a_relative_import_without_a_package_says_how_to_name_the_model(tmp_path, monkeypatch):
    # pkg/ has no __init__.py (a namespace package): as a file, net.py's `from .blocks import`
    # failed with Python's "no known parent package" alone; as a module, pkg.net:build, it runs
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "blocks.py").write_text("import torch.nn as nn\n\n\ndef blk():\n    return nn.Conv2d(3, 3, 3)\n")
    (tmp_path / "pkg" / "net.py").write_text("import torch.nn as nn\n\nfrom .blocks import blk\n\n\ndef build():\n"
                                             "    return nn.Sequential(blk())\n")
    monkeypatch.chdir(tmp_path)
    result = invoke("check", "pkg/net.py:build", "--input", "8")
    assert result.exit_code == 2 and ("(its relative imports need the package it is in: name it as a module, "
                                      "pkg.net:NAME, from the directory above pkg/, or add pkg/__init__.py)") in result.stderr
    assert invoke("check", "pkg.net:build", "--input", "8").exit_code == 0


def test_two_entries_of_one_file_import_it_once(tmp_path, monkeypatch):
    # a registry (mmcv's style) that refuses a second registration: the second entry re-imported
    # the file and failed with "Net is already registered"; targets with the same directories
    # import the same modules, so they stay
    monkeypatch.chdir(tmp_path)
    (tmp_path / "registry.py").write_text("SEEN = set()\n\n\ndef register(cls):\n    if cls.__name__ in SEEN:\n"
                                          "        raise KeyError(f'{cls.__name__} is already registered')\n"
                                          "    SEEN.add(cls.__name__)\n    return cls\n")
    (tmp_path / "net.py").write_text("import torch.nn as nn\nfrom registry import register\n\n\n@register\nclass Net(nn.Sequential):\n"
                                     "    def __init__(self, depth):\n        super().__init__(*[nn.Conv2d(3, 3, 3, padding=1)"
                                     " for _ in range(depth)])\n\n\ndef build(depth):\n    return Net(depth)\n")
    (tmp_path / "pyproject.toml").write_text(
        '[[tool.rflint.models]]\ntarget = "net.py:build"\ninput = 32\nkwargs = { depth = 1 }\n'
        '[[tool.rflint.models]]\ntarget = "net.py:build"\ninput = 32\nkwargs = { depth = 2 }\n')
    result = invoke("check", "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert [len(m["layers"]) for m in json.loads(result.stdout)["models"]] == [1, 2]


def test_fix_takes_a_config_entrys_shapes_at_the_size_given(tmp_path, monkeypatch):
    # an entry with input-shape (two inputs) and fix --input 64: "at(): give either a size or
    # input shapes, not both", an internal call's words.  As check: the shapes, the first at 64
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.py").write_text(
        "import torch\nimport torch.nn as nn\n\n\nclass Two(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.a = nn.Conv2d(3, 4, 3, padding=1)\n\n    def forward(self, x, y):\n"
        "        return self.a(x).mean((2, 3)) + self.a(y).mean((2, 3))\n\n\ndef build():\n    return Two()\n")
    (tmp_path / "pyproject.toml").write_text('[[tool.rflint.models]]\ntarget = "net.py:build"\n'
                                            'input-shape = ["1,3,32,32", "1,3,16,16"]\n')
    result = invoke("fix", "net.py:build", "--input", "64", "--truncate")
    assert result.stderr == "rflint: error: net.py:build has no predicted tail at 64x64 px: nothing to truncate\n"


@pytest.mark.parametrize("call", ["helpers.pool(x)", "helpers.Tools.spool(x)"])
def test_compiled_helpers_of_another_module_are_traced(tmp_path, monkeypatch, call):
    # only the model's own module was looked at: a compiled function reached as helpers.pool, or a
    # compiled static method of a class there, failed with fx's "dynamo-optimized function".
    # conv 3, a 2x2 max pool 4 (jump 2), conv 3 + 2 * 2 = 8
    monkeypatch.chdir(tmp_path)
    (tmp_path / "helpers.py").write_text(
        "import torch\nimport torch.nn.functional as F\n\n\n@torch.compile\ndef pool(x):\n    return F.max_pool2d(x, 2)\n\n\n"
        "class Tools:\n    @staticmethod\n    @torch.compile\n    def spool(x):\n        return F.max_pool2d(x, 2)\n")
    (tmp_path / "net.py").write_text(
        "import torch.nn as nn\n\nimport helpers\n\n\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.a = nn.Conv2d(3, 4, 3, padding=1)\n        self.b = nn.Conv2d(4, 4, 3, padding=1)\n\n"
        f"    def forward(self, x):\n        x = self.a(x)\n        return self.b({call})\n\n\ndef build():\n    return Net()\n")
    result = invoke("check", "net.py:build", "--input", "16", "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["models"][0]["resolution"]["final_r_min"] == [8, 8]


def test_rflint_imports_no_standard_module_once_a_target_is_loaded(tmp_path):
    # the target's directories are first on sys.path while rflint works on it (its code's imports
    # are as under `python train.py`), so a standard module rflint (or matplotlib) imported after
    # the load would be a sibling of the model's of that name.  A new lazy import of one fails here
    script = tmp_path / "spy.py"
    script.write_text(textwrap.dedent("""
        import contextlib, sys
        import torch  # noqa: F401
        import rflint.trace.loading as loading
        from typer.testing import CliRunner
        from rflint.cli.app import app

        real, before = loading._own_imports, []

        @contextlib.contextmanager
        def spy(roots, key=None):
            with real(roots, key):  # (the target's directories now first on sys.path)
                before.append(set(sys.modules)) if not before else None
                yield

        loading._own_imports = spy
        res = CliRunner().invoke(app, sys.argv[1:])
        assert res.exit_code in (0, 1), res.output
        new = set(sys.modules) - before[0]
        print(sorted({n.partition(".")[0] for n in new if n.partition(".")[0] in sys.stdlib_module_names}))
    """))
    (tmp_path / "net.py").write_text(MODEL)
    runs = [["check", "net.py:build", "--input", "8", "-f", fmt] for fmt in ("text", "json", "sarif", "github", "markdown")]
    runs += [["check", "net.py:build", "--input", "8", "--plot", "p.png", "--html", "r.html", "--graph", "g.dot"],
             ["sweep", "net.py:build", "--sizes", "8,16"], ["fix", "net.py:build", "--input", "8", "--truncate", "-o", "f.pt"]]
    for args in runs:
        proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.strip().splitlines()[-1] == "[]", (args, proc.stdout[-500:])


def test_a_sibling_named_like_a_standard_module_is_the_models_in_forward(tmp_path, monkeypatch):
    # forward() imports `statistics` lazily and gets its sibling statistics.py, as `python
    # train.py` would; with the directory moved behind the standard library it got the real one
    # and failed ("module 'statistics' has no attribute 'pool'").  conv 3, 3x3 pool (stride 1) 5
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "statistics", raising=False)
    (tmp_path / "statistics.py").write_text("import torch.nn.functional as F\n\n\ndef pool(x):\n"
                                            "    return F.max_pool2d(x, 3, 1, 1)\n")
    (tmp_path / "net.py").write_text(
        "import torch.nn as nn\n\n\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.c = nn.Conv2d(3, 4, 3, padding=1)\n\n    def forward(self, x):\n        import statistics\n\n"
        "        return statistics.pool(self.c(x))\n\n\ndef build():\n    return Net()\n")
    try:
        result = invoke("check", "net.py:build", "--input", "16", "-f", "json")
    finally:
        sys.modules.pop("statistics", None)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["models"][0]["resolution"]["final_r_min"] == [5, 5]


def test_a_sibling_named_like_a_module_torchs_libraries_import_late_is_not_taken_for_it(tmp_path):
    # torch's meta kernel of F.max_pool2d loads sympy on first use, and sympy imports unicodedata:
    # with the model's directory first on sys.path that was the model's unicodedata.py, and the
    # run failed ("module 'unicodedata' has no attribute 'lookup'").  A fresh interpreter: the
    # late imports happen once per process
    (tmp_path / "unicodedata.py").write_text("def normalize(s):\n    return s.strip().lower()\n")
    (tmp_path / "net.py").write_text(
        "import torch.nn as nn\nimport torch.nn.functional as F\n\n\nclass Net(nn.Module):\n    def __init__(self):\n"
        "        super().__init__()\n        self.c = nn.Conv2d(3, 4, 3, padding=1)\n\n    def forward(self, x):\n"
        "        return F.max_pool2d(self.c(x), 3, 1, 1)\n\n\ndef build():\n    return Net()\n")
    # (the installed script: `python -m` itself puts the working directory first, for every import)
    script = Path(sys.executable).with_name("rflint")
    proc = subprocess.run([str(script), "net.py:build", "--input", "16", "-f", "json"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("pool", ["nn.LPPool2d(2, 2)", "Functional()"])
def test_an_lp_pool_does_not_make_torch_import_modules_a_sibling_may_shadow(tmp_path, pool):
    # torch ran nn.LPPool2d (and F.lp_pool2d) on meta, which imports torch._dynamo mid-analysis, and
    # with it statistics, profile, cProfile ...: a sibling statistics.py of the model's failed the
    # run.  LP pools have shape rules now (an average pool's shape, no padding).  A fresh interpreter
    (tmp_path / "statistics.py").write_text("raise RuntimeError('the model directory statistics.py')\n")
    (tmp_path / "net.py").write_text(
        "import torch.nn as nn\nimport torch.nn.functional as F\n\n\nclass Functional(nn.Module):\n"
        "    def forward(self, x):\n        return F.lp_pool2d(x, 2, 2)\n\n\ndef build():\n"
        f"    return nn.Sequential(nn.Conv2d(3, 8, 3), {pool}, nn.Conv2d(8, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())\n")
    script = Path(sys.executable).with_name("rflint")
    proc = subprocess.run([str(script), "net.py:build", "--input", "32", "-f", "json"], capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_piped_output_takes_the_width_columns_gives():
    # a pipe was always 140 wide, whatever COLUMNS said; without COLUMNS it still is
    script = str(Path(sys.executable).with_name("rflint"))
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    wide = subprocess.run([script, "zoo:vgg11", "--input", "32"], capture_output=True, text=True, env=env)
    narrow = subprocess.run([script, "zoo:vgg11", "--input", "32"], capture_output=True, text=True,
                            env={**env, "COLUMNS": "80"})
    assert wide.returncode == narrow.returncode == 1
    assert max(len(line) for line in wide.stdout.splitlines()) == 140  # the title rule spans the width
    # every line within 80, but the "Try it" command, which is never broken (it is copied whole),
    # and a finding's "severity code path:line" on a line of its own: never broken either (grep), so
    # where rflint is installed (site-packages/rflint/zoo/vgg.py:34) it may be wider than 80
    unbroken = re.compile(r"(error|warning|info) +RF\d{3} \S+:\d+")
    lines = [line for line in narrow.stdout.splitlines()
             if not line.startswith("Try it: ") and not unbroken.fullmatch(line)]
    assert max(map(len, lines)) == 80
    # a COLUMNS that is no number is no width ("²" passes str.isdigit: rich's int() then failed, exit 2)
    for junk in ("\u00b2", "\u0663", "0", "-5", "abc"):
        odd = subprocess.run([script, "zoo:vgg11", "--input", "32"], capture_output=True, text=True,
                             env={**env, "COLUMNS": junk, "PYTHONIOENCODING": "utf-8"})
        assert odd.returncode == 1 and odd.stderr == "", junk
        assert max(len(line) for line in odd.stdout.splitlines()) == 140, junk


@pytest.mark.parametrize("width", [60, 80])
def test_a_narrow_sweep_table_folds_names_and_keeps_numbers_whole(width):
    # at 80 columns every cell was cut: "16…" and "12…" for the sizes, "max…" for the cut, "…" headers
    script = str(Path(sys.executable).with_name("rflint"))
    out = subprocess.run([script, "sweep", "zoo:resnet18", "--sizes", "16,32,64,128"], capture_output=True, text=True,
                         env={**os.environ, "COLUMNS": str(width)}).stdout
    assert "…" not in out and all(len(line) <= width for line in out.splitlines())
    # the sizes swept, and at 32 px the cut and the tail's share of ResNet-18's params (spec §6:
    # after layer3.0, 9,574,400 of 11,689,512 = 81.9%)
    for cell in ("16x16", "32x32", "64x64", "128x128", "layer3.0", "81.9%"):
        assert cell in out, cell
    caption = " ".join(out.split())
    assert "left out to fit" in caption and "(--format json has them)" in caption


def test_fix_into_a_reader_that_stops_early_is_not_the_models_exit(tmp_path):
    # `rflint fix ... -o r.pt | head -1` exited 2: "the model's code called sys.exit(1)" (rich exits 1
    # on a broken pipe, which the model guard took for the model's own sys.exit)
    script = str(Path(sys.executable).with_name("rflint"))
    saved = tmp_path / "r.pt"
    proc = subprocess.Popen([script, "fix", "zoo:resnet18", "--input", "32", "--truncate", "-o", str(saved)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()  # the reader goes away after one line, as head -1 does
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0 and first.startswith(b"zoo:resnet18 (truncated)")
    assert "sys.exit" not in stderr and saved.exists()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("command", [["rules"], ["rule", "RF002"], ["zoo"]])
def test_an_unwritable_stdout_is_one_line_and_exit_2_for_the_listing_commands(command):
    # rich's boxed traceback ending in "OSError: [Errno 28] No space left on device", and exit 1,
    # which says findings; check, sweep and fix said it in one line with exit 2
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "rflint", *command], stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr == "rflint: error: OSError: [Errno 28] No space left on device\n"


def test_no_numpy_warning_where_numpy_is_missing(tmp_path):
    # torch's CPU wheels need no NumPy, and without it the first import of torch.fx warned "Failed
    # to initialize NumPy: No module named 'numpy'" on stderr, at the top of every blocked commit.
    # A stand-in numpy package that fails to import as a missing one does.
    stub = tmp_path / "site" / "numpy"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'numpy'\", name='numpy')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(stub.parent), os.environ.get("PYTHONPATH", "")])}
    probe = subprocess.run([sys.executable, "-c", "import torch.fx"], capture_output=True, text=True, env=env)
    assert "Failed to initialize NumPy" in probe.stderr  # the stand-in is a missing NumPy to torch
    script = str(Path(sys.executable).with_name("rflint"))
    for jobs in ("1", "2"):
        run = subprocess.run([script, "zoo:vgg11", "zoo:vgg13", "--input", "32", "--no-layers", "--jobs", jobs],
                             capture_output=True, text=True, env=env, cwd=tmp_path)
        assert run.returncode == 1 and "RF002" in run.stdout, run.stderr  # (their tails at 32 px)
        assert run.stderr == "", jobs
