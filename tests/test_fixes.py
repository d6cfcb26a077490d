"""From finding to fix: truncated and stem-less models run, and match what the report predicted."""

import collections
import dataclasses
import json
import textwrap

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import rflint
from rflint import zoo
from rflint.cli.app import app
from rflint.fixes import remove_stem, truncate
from rflint.errors import RflintError
from rflint.report import build_report


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", ["resnet18", "vgg16", "densenet121"])
def test_truncated_model_matches_the_prediction(name):
    predicted = build_report(rflint.analyze(f"zoo:{name}", 32)).truncation
    model = truncate(f"zoo:{name}", 32)
    with torch.no_grad():
        y = model(torch.randn(2, 3, 32, 32))
    assert y.shape == (2, 1000)  # the original output size
    assert n_params(model) == predicted.params_after
    after = build_report(rflint.analyze(model, 32))
    assert not [f for f in after.findings if f.code == "RF002"]


def test_truncation_keeps_trained_weights():
    torch.manual_seed(0)
    net = zoo.get("vgg11").factory(num_classes=10)  # a real-weight instance: weights are kept
    model = truncate(net, 32)
    assert torch.equal(model.get_submodule("features.0").weight, net.features[0].weight)


def test_resnet18_without_stem():
    stem = [f for f in build_report(rflint.analyze("zoo:resnet18", 32)).findings if f.code == "RF003"][0]
    model = remove_stem("zoo:resnet18", 32)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 1000)
    after = rflint.analyze(model, 32)
    assert after.macs == stem.data["macs_after"]
    # and RF003's figure is the hand-derived one (see test_acceptance_rules: 563,793,920)
    assert after.macs == 32 * 32 * 64 * 147 + 1_695_547_392 * 1024 // 3136 + 512_000
    assert not [f for f in build_report(after).findings if f.code == "RF002"]
    assert model.get_submodule("conv1").stride == (1, 1) and isinstance(model.get_submodule("maxpool"), nn.Identity)


def test_remove_stem_of_named_layers_that_break_a_join_is_an_error_in_python_too():
    # the CLI said so (it analysed the fixed model); rflint.remove_stem returned a GraphModule that
    # failed when called: layer1.0.conv1 of resnet18 is stride 1, layer2.0.conv1 stride 2 and its
    # shortcut layer2.0.downsample.0 still downsamples, so add at the block's end gets 8x8 and 4x4
    torch.manual_seed(0)
    net = zoo.get("resnet18").factory(num_classes=10)
    with pytest.raises(RflintError, match="with the downsampling of layer2.0.conv1 removed does not run at 32x32: "
                                          "the maps joined at .* differ in size"):
        rflint.remove_stem(net, 32, layers=["layer2.0.conv1"])


def test_fix_cli_writes_a_loadable_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["fix", "zoo:resnet18", "--input", "32", "--truncate", "-o", "t.pt", "--print-code"])
    assert result.exit_code == 0, result.output
    assert "1,859,112" in result.stdout and "def forward" in result.stdout
    loaded = torch.load(tmp_path / "t.pt", weights_only=False)
    with torch.no_grad():
        assert loaded(torch.randn(2, 3, 32, 32)).shape == (2, 1000)


def test_fix_errors():
    runner = CliRunner()
    assert runner.invoke(app, ["fix", "zoo:resnet18", "--input", "32"]).exit_code == 2  # no fix chosen
    result = runner.invoke(app, ["fix", "zoo:resnet18_cifar", "--input", "32", "--truncate"])
    assert result.exit_code == 2 and "no predicted tail" in result.stderr
    result = runner.invoke(app, ["fix", "zoo:resnet18", "--input", "32", "--remove-stem", "--layers", "nope"])
    assert result.exit_code == 2 and "no RF layer named nope" in result.stderr
    # layer2.0.conv1 (stride 2) at stride 1: its block's residual branch keeps 8x8 while the
    # projection shortcut (layer2.0.downsample, stride 2) makes 4x4; they meet at add_2. It said
    # "input 32x32 does not fit GraphModule", blaming the size and naming the traced copy
    result = runner.invoke(app, ["fix", "zoo:resnet18", "--input", "32", "--remove-stem", "--layers", "layer2.0.conv1"])
    assert result.exit_code == 2
    assert result.stderr.startswith("rflint: error: zoo:resnet18 with the downsampling of layer2.0.conv1 removed "
                                    "does not run at 32x32: the maps joined at add_2 differ in size")


def test_fix_names_the_target_of_an_error_as_check_does(tmp_path, monkeypatch):
    # check said "net.py:Untraceable: torch.fx cannot trace ...", fix the same line without whose it was
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.py").write_text(textwrap.dedent("""
        import torch.nn as nn

        class Untraceable(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 4, 3)

            def forward(self, x):
                raise OSError("no tracing here")
    """))
    runner = CliRunner()
    for command in (["check"], ["fix", "--truncate"]):
        result = runner.invoke(app, [*command, "net.py:Untraceable", "--input", "32"])
        assert result.exit_code == 2
        # (the model's own raise, named as such: it failed with fx's proxies and with meta tensors alike)
        assert result.stderr.startswith("rflint: error: net.py:Untraceable: run on tensors of the input's shape, "
                                        "the model's code at net.py:10 raised OSError: no tracing here"), command


def test_fix_output_it_cannot_write(tmp_path):
    # torch.save raised "RuntimeError: [enforce fail at inline_container.cc:747] ..." after the
    # comparison had printed; now one line first, nothing analysed
    runner = CliRunner()
    result = runner.invoke(app, ["fix", "zoo:resnet18", "--input", "32", "--truncate", "-o", str(tmp_path)])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == f"rflint: error: -o {tmp_path}: is a directory; give a file name, e.g. {tmp_path / 'fixed.pt'}"
    missing = tmp_path / "no" / "t.pt"
    result = runner.invoke(app, ["fix", "zoo:resnet18", "--input", "32", "--truncate", "-o", str(missing)])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == f"rflint: error: -o {missing}: no such directory {missing.parent}"


def test_stride_one_copy_shares_weights_and_leaves_the_original():
    """The stem experiment's changed conv: stride 1, the very same weight tensor, and a module that
    runs like a Conv2d built with stride 1; the original keeps its stride."""
    import torch
    from torch import nn

    from rflint.engine.surgery import _changed

    conv = nn.Conv2d(3, 5, 3, stride=2, padding=1)
    copy_ = _changed(conv, "conv")
    assert conv.stride == (2, 2) and copy_.stride == (1, 1)
    assert copy_.weight is conv.weight and copy_.bias is conv.bias and type(copy_) is nn.Conv2d
    x = torch.randn(1, 3, 9, 9)
    want = nn.functional.conv2d(x, conv.weight, conv.bias, stride=1, padding=1)
    assert torch.equal(copy_(x), want) and conv(x).shape == (1, 5, 5, 5)


def test_the_suggested_fix_command_builds_the_model_that_was_analysed(tmp_path, monkeypatch):
    # the text report's "Try it" line dropped --kwarg: the suggested fix built a 1000-class ResNet
    import shlex

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    report = runner.invoke(app, ["check", "zoo:resnet18", "--input", "32", "--kwarg", "num_classes=10"],
                           env={"COLUMNS": "300"})
    [line] = [ln for ln in report.stdout.splitlines() if "Try it:" in ln]
    command = shlex.split(line.split("Try it:")[1].strip(" │"))
    assert command[:2] == ["rflint", "fix"] and "num_classes=10" in command
    result = runner.invoke(app, command[1:])
    assert result.exit_code == 0, result.output
    loaded = torch.load(tmp_path / "resnet18_32x32_truncated.pt", weights_only=False)
    with torch.no_grad():
        assert loaded(torch.randn(1, 3, 32, 32)).shape == (1, 10)


@pytest.mark.parametrize("value, text", [
    ("mobilenet_v3_large", "name=mobilenet_v3_large"),  # was 'name='"'"'mobilenet_v3_large'"'"'' once shell-quoted
    ("v1.5-b", "name=v1.5-b"), ("3", "name='3'"), ("true", "name='true'"), ("None", "name='None'"),
    ("two words", "name='two words'"), ("", "name=''"), (3, "name=3"), ([1, 2], "name=[1, 2]"), (None, "name=None"),
])
def test_the_fix_command_spells_a_kwarg_as_the_user_would(value, text):
    from rflint.cli.values import parse_kwargs
    from rflint.report.humanize import kwarg_text

    assert kwarg_text("name", value) == text
    assert parse_kwargs([text]) == {"name": value}  # and --kwarg reads it back as the same value


WITH_VECTOR = '''
import torch.nn as nn


class WithVector(nn.Module):
    """An image through six 3x3 convs and a classifier, plus a vector added to the logits."""

    def __init__(self):
        super().__init__()
        self.convs = nn.Sequential(*[nn.Conv2d(3 if i == 0 else 4, 4, 3, padding=1) for i in range(6)])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 10)

    def forward(self, x, v):
        return self.fc(self.pool(self.convs(x)).flatten(1)) + v
'''


def test_fix_and_sweep_take_the_shapes_of_several_inputs(tmp_path, monkeypatch):
    # they said "give one --input-shape per input" and had no --input-shape. convs.k reads r 1 + 2k:
    # at 8 px convs.4 (9) and convs.5 (11) are the tail, cut after convs.3; at 12 px nothing is
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.py").write_text(WITH_VECTOR)
    runner = CliRunner()
    shapes = ["--input-shape", "1,3,8,8", "--input-shape", "1,10"]
    result = runner.invoke(app, ["fix", "net.py:WithVector", *shapes, "--truncate", "-o", "t.pt"])
    assert result.exit_code == 0, result.output
    cut = torch.load(tmp_path / "t.pt", weights_only=False)
    with torch.no_grad():
        assert cut(torch.randn(1, 3, 8, 8), torch.randn(1, 10)).shape == (1, 10)
    result = runner.invoke(app, ["sweep", "net.py:WithVector", *shapes, "--sizes", "8,12", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["sizes"]
    assert [(row["input"], row["cut"]) for row in rows] == [([8, 8], "convs.3"), ([12, 12], None)]
    # the text report's "Try it" names every shape
    report = runner.invoke(app, ["check", "net.py:WithVector", *shapes], env={"COLUMNS": "300"})
    assert "rflint fix net.py:WithVector --input-shape 1,3,8,8 --input-shape 1,10 --truncate" in report.stdout


class _WithUnusedHead(nn.Module):
    """forward() never calls fc_b (a subclass that dropped an output, say).  At 4 px the convs read
    r 1, 3, 5, 7: features.2 and .3 are the tail, the cut is features.1.  Params: convs 112 + 3 x 148,
    fc_a 50, fc_b 15: 621.  Truncated: the two first convs (260) and a new Linear(4, 10) (50): 310,
    without fc_b, which the truncated GraphModule does not have."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), *(nn.Conv2d(4, 4, 3, padding=1) for _ in range(3)))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc_a, self.fc_b = nn.Linear(4, 10), nn.Linear(4, 3)

    def forward(self, x):
        return self.fc_a(torch.flatten(self.pool(self.features(x)), 1))


def test_the_prediction_leaves_out_modules_forward_never_calls():
    plan = build_report(rflint.analyze(_WithUnusedHead(), 4)).truncation
    assert (plan.params_before, plan.params_after, plan.cut_name) == (621, 310, "features.1")
    assert n_params(truncate(_WithUnusedHead(), 4)) == 310


def test_fix_follows_the_config_as_check_does(tmp_path, monkeypatch):
    # ResNet-18 at 64 px has a tail of 2 parametric layers (border layer4.1.conv2, rf-semantics.md §6);
    # with min-tail-layers = 3 check reports none, so fix has nothing to truncate; ignored rules are
    # not in fix's findings either (RF004 fires at 32 px: layer4's convs on 2x2 and 1x1 maps)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.rflint]\nmin-tail-layers = 3\nignore = ["RF004"]\n')
    result = CliRunner().invoke(app, ["fix", "zoo:resnet18", "--input", "64", "--truncate"])
    assert result.exit_code == 2 and "no predicted tail at 64x64 px" in result.stderr
    text = CliRunner().invoke(app, ["fix", "zoo:resnet18", "--input", "32", "--truncate"]).stdout
    assert "RF002 x1" in text and "RF004" not in text


def test_fix_print_code_is_python_at_any_width(monkeypatch):
    # rich wrapped the generated code at the terminal's width, which broke its indentation
    import ast

    monkeypatch.setenv("COLUMNS", "60")
    out = CliRunner().invoke(app, ["fix", "zoo:resnet18", "--input", "32", "--truncate", "--print-code"]).stdout
    ast.parse(out[out.index("def forward"):])


def test_fix_says_the_model_keeps_one_branch_of_a_value_dependent_if(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "branchy.py").write_text(
        "import torch.nn as nn\n\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.body = nn.Sequential(*(nn.Conv2d(3, 3, 3, padding=1) for _ in range(6)))\n"
        "        self.alt = nn.Conv2d(3, 3, 1)\n"
        "        self.fc = nn.Linear(3, 5)\n\n"
        "    def forward(self, x):\n"
        "        if x.mean() > 0:\n"
        "            x = self.alt(x)\n"
        "        return self.fc(self.body(x).mean((2, 3)))\n")
    out = CliRunner().invoke(app, ["fix", "branchy.py:Net", "--input", "8", "--truncate"]).stdout
    assert "note: forward() branches on tensor values at" in out
    assert "so it has only that branch of forward()" in " ".join(out.split())


def test_remove_stem_of_a_layer_that_does_not_downsample_is_an_error():
    result = CliRunner().invoke(app, ["fix", "zoo:resnet18", "--input", "32", "--remove-stem", "--layers", "conv1,layer1.0.conv1"])
    assert result.exit_code == 2
    assert result.stderr == ("rflint: error: layer1.0.conv1 in zoo:resnet18 does not downsample (stride 1): "
                             "nothing to remove; name layers with a stride above 1\n")


def test_fix_saves_a_model_whose_layers_are_classes_of_a_sibling_module(tmp_path, monkeypatch):
    # a declared layer class from blocks.py stays a module of the fixed graph, so saving pickles it by
    # reference: the model's own imports were forgotten by then (PicklingError, and a broken t.pt)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "blocks.py").write_text(
        "import torch.nn as nn\nimport rflint\n\n\n@rflint.layer(kernel=3)\nclass Block(nn.Module):\n"
        "    def __init__(self, c):\n        super().__init__()\n        self.conv = nn.Conv2d(c, c, 3, padding=1)\n\n"
        "    def forward(self, x):\n        return self.conv(x).relu()\n")
    (tmp_path / "model.py").write_text(
        "import torch.nn as nn\nfrom blocks import Block\n\n\ndef build():\n    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), "
        "*[Block(8) for _ in range(6)], nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))\n")
    result = CliRunner().invoke(app, ["fix", "model.py:build", "--input", "8", "--truncate", "-o", "t.pt"])
    assert result.exit_code == 0, result.output
    assert [p.name for p in tmp_path.iterdir() if p.suffix in (".pt", ".partial")] == ["t.pt"]
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = torch.load(tmp_path / "t.pt", weights_only=False)
    assert type(loaded.get_submodule("1")).__name__ == "Block"


_SIDE_MODELS = '''
import torch
from torch import nn


class Gated(nn.Module):
    """Eight 3x3 convs (a tail at 8 px), global mean, a gate from a second input, a classifier, and a
    Linear(10, 10) forward() never calls."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(*[nn.Conv2d(3 if i == 0 else 8, 8, 3, padding=1) for i in range(8)])
        self.side, self.fc, self.spare = nn.Linear(10, 8), nn.Linear(8, 10), nn.Linear(10, 10)

    def forward(self, x, m):
        return self.fc(self.features(x).mean((2, 3)) * torch.sigmoid(self.side(m)))
'''


def test_fix_notes_what_the_fixed_model_no_longer_uses(tmp_path, monkeypatch):
    # the gate joins after the cut: the truncated model takes m and ignores it; and the fixed model is
    # an fx GraphModule, which keeps only called modules: spare's 10*10 + 10 = 110 params.  Both were
    # silent (the params showed up as a change the fix made)
    (tmp_path / "side.py").write_text(_SIDE_MODELS)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["fix", "side.py:Gated", "--input-shape", "1,3,8,8", "--input-shape", "1,10",
                                      "--truncate"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "note: the fixed model still takes m but no longer uses it" in result.stdout
    assert "note: the fixed model leaves out 110 params of modules forward() never calls" in result.stdout


_SCALED = '''
import torch
from torch import nn


class Scaled(nn.Module):
    """Eight 3x3 convs (a tail at 8 px) with a layer-scale vector read as a bare parameter, a
    global mean and a classifier: every parameter is used by forward()."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(*[nn.Conv2d(3 if i == 0 else 8, 8, 3, padding=1) for i in range(8)])
        self.gamma = nn.Parameter(torch.ones(8, 1, 1))
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        return self.fc((self.features(x) * self.gamma).mean((2, 3)))
'''


def test_fix_does_not_count_bare_parameters_as_never_called(tmp_path, monkeypatch):
    # gamma (8 params) is read through get_attr, not by a module call: it was counted as "left out"
    (tmp_path / "scaled.py").write_text(_SCALED)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["fix", "scaled.py:Scaled", "--input", "8", "--truncate"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "leaves out" not in result.stdout


_NOISY = '''
from torch import nn


class Noisy(nn.Module):
    """Eight 3x3 convs (a tail at 8 px) that print while they are built and run."""

    def __init__(self):
        super().__init__()
        print("building Noisy")
        self.features = nn.Sequential(*[nn.Conv2d(3 if i == 0 else 8, 8, 3, padding=1) for i in range(8)])
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        print("forward of Noisy")
        return self.fc(self.features(x).mean((2, 3)))
'''


def test_fix_keeps_the_models_prints_out_of_its_output(tmp_path, monkeypatch):
    # check and sweep sent them to stderr; fix let them into the comparison and the --print-code code
    (tmp_path / "noisy.py").write_text(_NOISY)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["fix", "noisy.py:Noisy", "--input", "8", "--truncate", "--print-code"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Noisy" not in result.stdout.replace("noisy.py:Noisy", "")
    assert "building Noisy" in result.stderr


class _ScaledBackboneWithEncoder(nn.Module):
    """Eight 3x3 convs with a layer-scale vector in the kept part (a bare parameter), tokens from
    the map, a two-layer MLP "encoder" on the pooled tokens, and a classifier."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(*[nn.Conv2d(3 if i == 0 else 8, 8, 3, padding=1) for i in range(8)])
        self.gamma = nn.Parameter(torch.ones(8, 1, 1))
        self.enc1, self.enc2, self.head = nn.Linear(8, 16), nn.Linear(16, 8), nn.Linear(8, 10)

    def forward(self, x):
        x = self.features[0](x) * self.gamma
        for i in range(1, 8):
            x = self.features[i](x)
        return self.head(self.enc2(torch.relu(self.enc1(x.mean((2, 3))))))


def test_truncation_counts_bare_parameters_and_names_a_larger_head():
    # 8 px: conv i reads 2i + 1, so convs 4.. (reading 9, 11, ...) are the tail and the cut is after
    # conv 3; kept: convs 0-3 (3*8*9 + 8 + 3 * (8*8*9 + 8) = 224 + 1752 = 1976) and gamma (8) = 1984,
    # plus the new Linear(8, 10) = 90: 2074.  gamma was left out of the kept count (2066 predicted).
    # The head that goes with the tail: enc1, enc2, head (144 + 136 + 90 = 370 params)
    model = _ScaledBackboneWithEncoder()
    plan = build_report(rflint.analyze(model, 8)).truncation
    assert plan.params_after == 2074 == n_params(truncate(model, 8))
    assert plan.head_layers == ("enc1", "enc2", "head") and plan.head_params == 370
    assert "It also removes the head that read the feature map: 3 layers with weights (enc1, enc2, head; 370 params)" \
        in plan.head_text()


class _ConvGRU(nn.Module):
    """A CRNN: three 3x3 convs on a (frequency, time) map, the mean over frequency, a GRU over the
    frames, a Linear per frame, the mean over the frames."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.c3 = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.gru, self.fc = nn.GRU(4, 3, batch_first=True), nn.Linear(3, 5)

    def forward(self, x):
        h, _ = self.gru(self.c3(self.c2(self.c1(x))).mean(2).transpose(1, 2))
        return self.fc(h).mean(1)


def test_the_head_a_truncation_removes_names_the_layer_that_made_the_map_global():
    # the GRU reads the frames (a map) and makes them global: it was left out of the head named,
    # although the truncation removes it ("Removes 1 RF layer", not a word of a 74k-param GRU).
    # 4 px: c1 reads 1, c2 3, c3 5 > 4: the tail is c3 (4*4*9 + 4 = 148), the cut after c2.  The
    # head: the GRU (3 gates: weight_ih 9x4, weight_hh 9x3, two 9-biases = 81) and fc (3*5 + 5 =
    # 20): 101.  The new Linear(4, 5): 25.  Model: 40 + 148 + 148 + 81 + 20 = 437; after: 437 -
    # 148 - 101 + 25 = 213
    model = _ConvGRU()
    plan = build_report(rflint.analyze(model, 4)).truncation
    assert plan.head_layers == ("gru", "fc") and plan.head_params == 101
    assert plan.params_before == 437 and plan.params_after == 213 == n_params(truncate(model, 4))


def test_no_classifier_for_a_flattened_map_of_scores():
    # a patch discriminator's output is its map flattened, one score per position (16 at 4x4 px):
    # a "truncation" to a Linear(4, 16) added parameters ("params +0.1%") and answered another
    # question.  4 px: the third conv reads 5 > 4, the tail; no plan, and RF002 says why
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 1, 3, padding=1),
                        nn.Flatten())
    report = build_report(rflint.analyze(net, 4))
    assert report.truncation is None
    (rf002,) = [f for f in report.findings if f.code == "RF002"]
    assert rf002.data["truncation"] is None
    assert "its output is a feature map flattened to (batch, positions)" in rf002.message
    # a Linear over the flattened map makes classes of them: that model ends in a classifier
    classifier = build_report(rflint.analyze(nn.Sequential(*net, nn.Linear(16, 5)), 4))
    assert classifier.truncation is not None


class _FrameConsensus(nn.Module):
    """A TSN-style net: 8 frames folded into the batch, eight 3x3 convs (a tail at 8 px), a global
    mean per frame, the mean over the frames (the consensus), a classifier."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(*[nn.Conv2d(3 if i == 0 else 8, 8, 3, padding=1) for i in range(8)])
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        f = self.features(x).mean((2, 3))
        return self.fc(f.view(-1, 8, 8).mean(1))


def test_no_truncation_is_offered_when_the_head_folds_the_batch():
    # the cut tensor has 8 rows (frames), the output 1: global pooling + Linear after the cut gave
    # an (8, 10) output for the (1, 10) of the model; the tail is still reported
    report = build_report(rflint.analyze(_FrameConsensus(), input_shapes=[(8, 3, 8, 8)]))
    assert "RF002" in {f.code for f in report.findings}
    assert report.truncation is None
    with pytest.raises(RflintError) as err:  # said why: the output *is* a (batch, classes) vector
        rflint.truncate(_FrameConsensus(), None, input_shapes=[(8, 3, 8, 8)])
    assert str(err.value).endswith("its head folds 8 rows of the cut into 1 (frames or crops in the batch, averaged "
                                   "by the head): a new classifier after the cut would give one row per frame")


def test_what_ifs_and_the_fix_command_keep_a_batch_of_its_own():
    # 8 frames folded into the batch (view(-1, 8, C) in forward): the clean-size search and the stem
    # experiment ran at batch 1 (view failed: no clean size, no RF003) and "Try it" said --input.
    # Eight 3x3 convs: conv i reads 2i + 1, so 15 px is clean (conv 7, the last, reads 15)
    from rflint.report.humanize import fix_command

    a = rflint.analyze(_FrameConsensus(), input_shapes=[(8, 3, 8, 8)])
    assert build_report(a).min_clean_input == (15, 15)
    assert "--input-shape 8,3,8,8" in fix_command(a)


class _FoldedClip(_FrameConsensus):
    """_FrameConsensus fed a (N, C, T, H, W) clip, folded into the batch in forward()."""

    def forward(self, x):
        n, c, t, h, w = x.shape
        return super().forward(x.transpose(1, 2).reshape(n * t, c, h, w))


def test_a_clip_folded_into_the_batch_by_forward_is_analysed():
    # a 5-D input for 2-D convs was refused ("expects 2 spatial axes"); T folds into the batch (no
    # RF), H and W go on: conv i reads 2i + 1, so at 8 px convs 4.. are the tail (conv 4 reads 9)
    a = rflint.analyze(_FoldedClip(), input_shapes=[(1, 3, 8, 8, 8)])
    report = build_report(a)
    assert a.layer("features.4").r_in_min == (9, 9)
    assert [f.layer for f in report.findings if f.code == "RF002"] == ["features.4"]


_SCRIPTED = '''
import torch
from torch import nn


class Scripted(nn.Module):
    """A scripted block (3x3 conv, ReLU), then eight 3x3 convs (a tail at 8 px), a global mean, a
    classifier."""

    def __init__(self):
        super().__init__()
        self.first = torch.jit.script(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()))
        self.features = nn.Sequential(*[nn.Conv2d(8, 8, 3, padding=1) for i in range(8)])
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(self.features(self.first(x)).mean((2, 3)))
'''


@pytest.mark.usefixtures("scriptable")
def test_fix_says_why_a_model_with_a_torchscript_submodule_cannot_be_saved(tmp_path, monkeypatch):
    # torch.save's own RuntimeError ("does not have a __getstate__") named no way out
    (tmp_path / "scripted.py").write_text(_SCRIPTED)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["fix", "scripted.py:Scripted", "--input", "8", "-c", "3", "--truncate",
                                      "-o", "out.pt"])
    assert result.exit_code == 2
    assert "torch.save cannot pickle its TorchScript submodule first" in result.stderr
    assert not (tmp_path / "out.pt").exists() and not (tmp_path / "out.pt.partial").exists()


_WEIGHT_NORMED = '''
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


def build():
    """A weight-normed 3x3 conv (a TCN's), eight 3x3 convs (a tail at 8 px), a global mean."""
    return nn.Sequential(weight_norm(nn.Conv2d(3, 8, 3, padding=1)),
                         *[nn.Conv2d(8, 8, 3, padding=1) for i in range(8)], nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 10))
'''


def test_fix_says_why_a_model_with_parametrizations_cannot_be_saved(tmp_path, monkeypatch):
    # torch.save's own RuntimeError took two lines ("... only supported through state_dict(). See:" + a URL)
    (tmp_path / "normed.py").write_text(_WEIGHT_NORMED)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["fix", "normed.py:build", "--input", "8", "--truncate", "-o", "out.pt"])
    assert result.exit_code == 2
    line = "rflint: error: cannot save the fixed model: torch.save cannot pickle modules with parametrizations"
    assert result.stderr.startswith(line) and result.stderr.count("\n") == 1
    assert not (tmp_path / "out.pt").exists() and not (tmp_path / "out.pt.partial").exists()


SIZE_ASKING = """
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Sequential(*[nn.Conv2d(4, 4, 3, padding=1) for _ in range(4)])
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        y = self.a(x)
        z = torch.zeros(y.shape[0], 4, y.shape[2], y.shape[3])  # sizes asked: a trace for one shape
        z[:, :, 1:] = y[:, :, 1:]
        return self.fc(self.b(z).mean((2, 3)))
"""


def test_fix_says_a_model_traced_for_one_shape_runs_at_that_shape(tmp_path, monkeypatch):
    # the truncated model holds zeros(1, ...) as a constant: it failed at batch 4 without a word
    (tmp_path / "asks.py").write_text(SIZE_ASKING)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["fix", "asks.py:Net", "--input", "8", "--truncate"])
    assert result.exit_code == 0, result.output
    assert ("note: forward() asks about shapes, so the fixed model is built from a trace made for input shape "
            "1,3,8,8 and runs at that shape (batch size included) only") in " ".join(result.stdout.split())


class _DictNet(nn.Module):
    """Six 3x3 convs (the fifth and sixth read 9 and 11 > 8 px), global pool and Linear, in a dict;
    forward() reads self.training for a functional dropout."""

    def __init__(self):
        super().__init__()
        self.convs = nn.Sequential(*[nn.Conv2d(3 if i == 0 else 4, 4, 3, padding=1) for i in range(6)])
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        y = torch.flatten(nn.functional.adaptive_avg_pool2d(self.convs(x), 1), 1)
        return {"logits": self.fc(nn.functional.dropout(y, 0.5, training=self.training))}


def test_a_truncated_model_returns_what_the_original_returns():
    # a {"logits": ...} model came back returning the bare tensor: out["logits"] failed in the
    # caller's training code
    torch.manual_seed(0)
    fixed = rflint.truncate(_DictNet(), 8)
    with torch.no_grad():
        out = fixed(torch.randn(2, 3, 8, 8))
    assert isinstance(out, dict) and list(out) == ["logits"] and out["logits"].shape == (2, 10)


_Logits = collections.namedtuple("_Logits", "logits aux")


@dataclasses.dataclass
class _LogitsOut:
    logits: torch.Tensor
    note: str = "x"


class _BuiltOutputNet(_DictNet):
    def __init__(self, make):
        super().__init__()
        self.make = make

    def forward(self, x):
        return self.make(self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.convs(x), 1), 1)))


@pytest.mark.parametrize("make, kind", [(lambda t: _Logits(t, None), _Logits), (lambda t: _LogitsOut(t), _LogitsOut)])
def test_a_truncated_model_returns_the_namedtuple_or_dataclass_the_original_returns(make, kind):
    # Out(logits, None) came back as the bare tensor: out.logits failed in the caller's code
    fixed = rflint.truncate(_BuiltOutputNet(make), 8)
    with torch.no_grad():
        out = fixed(torch.randn(2, 3, 8, 8))
    assert isinstance(out, kind) and out.logits.shape == (2, 10)


def _conv_chain_file(path, name: str, channels: int, n: int, forward: str) -> None:
    """A model file: class ``name`` with ``n`` 3x3 convs (``channels`` in, 4 out) and Linear(4, 10),
    whose forward(self, x) is ``forward`` (its body, indented 8)."""
    path.write_text(textwrap.dedent(f"""
        import torch
        from torch import nn


        class {name}(nn.Module):
            def __init__(self):
                super().__init__()
                self.convs = nn.Sequential(*[nn.Conv2d({channels} if i == 0 else 4, 4, 3, padding=1) for i in range({n})])
                self.fc = nn.Linear(4, 10)

            def forward(self, x):""") + forward + "\n")


def test_fix_says_when_forward_reads_the_training_flag(tmp_path, monkeypatch):
    # F.dropout(training=self.training) is traced in eval mode: the fixed model never drops, also
    # after .train(), and nothing said so
    monkeypatch.chdir(tmp_path)
    _conv_chain_file(tmp_path / "dictnet.py", "DictNet", 3, 6, """
        y = torch.flatten(nn.functional.adaptive_avg_pool2d(self.convs(x), 1), 1)
        return self.fc(nn.functional.dropout(y, 0.5, training=self.training))""")
    result = CliRunner().invoke(app, ["fix", "dictnet.py:DictNet", "--input", "8", "--truncate"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "note: forward() of DictNet reads self.training" in result.stdout
    plain = CliRunner().invoke(app, ["fix", "zoo:resnet18", "--input", "32", "--truncate"], env={"COLUMNS": "300"})
    assert "self.training" not in plain.stdout  # torch's own modules follow the mode


def test_fix_options_that_say_nothing_are_errors_or_said(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    # --layers "" fell back to RF003's proposal without a word
    empty = runner.invoke(app, ["fix", "zoo:resnet18", "--input", "32", "--remove-stem", "--layers", ""])
    assert empty.exit_code == 2 and "--layers names no layer" in empty.stderr
    with pytest.raises(RflintError, match="layers names no layer"):
        rflint.remove_stem("zoo:resnet18", 32, layers=[])
    # without -o nothing said the model was not saved
    unsaved = runner.invoke(app, ["fix", "zoo:resnet18", "--input", "32", "--truncate"])
    assert unsaved.exit_code == 0 and "not saved: give -o FILE to save the fixed model" in unsaved.stdout
    # -o in a directory that takes no files: the whole comparison, then "No such file: /proc/a.pt.partial"
    proc = runner.invoke(app, ["fix", "zoo:resnet18", "--input", "32", "--truncate", "-o", "/proc/a.pt"])
    assert proc.exit_code == 2 and proc.stdout == "" and "-o /proc/a.pt: cannot write in /proc" in proc.stderr


class _ChannelsLastBlocks(nn.Module):
    """Conv1d k9 twice (r 17), then (batch, time, channels) as a Conformer keeps it: a Linear over
    the channels and a block of two depthwise k5 convs (each applied channels-first) added."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv1d(1, 8, 9, padding=4), nn.Conv1d(8, 8, 9, padding=4)
        self.proj = nn.Linear(8, 8)
        self.a, self.b = nn.Conv1d(8, 8, 5, padding=2, groups=8), nn.Conv1d(8, 8, 5, padding=2, groups=8)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        y = self.proj(self.c2(self.c1(x)).transpose(1, 2))  # (batch, time, channels)
        y = self.a(y.transpose(1, 2)).transpose(1, 2) + self.b(y.transpose(1, 2)).transpose(1, 2)
        return self.fc(y.mean(1))


def test_no_truncation_is_built_at_a_channels_last_cut():
    # at 16 samples a and b read r 17 > 16: the tail starts after proj, whose output is (1, 16, 8).
    # The plan pooled dims 2.. (the channels) and put Linear(16, 10) over the time steps: a model
    # that ran at 16 samples only, and averaged away what it should keep
    report = build_report(rflint.analyze(_ChannelsLastBlocks(), 16))
    assert report.structure.tail is not None and report.structure.tail.cut_name == "proj"
    assert report.truncation is None
    with pytest.raises(RflintError, match="the cut tensor proj is not laid out \\(batch, channels, \\*spatial\\)"):
        rflint.truncate(_ChannelsLastBlocks(), 16)


def test_a_model_that_makes_its_own_spectrogram_is_fixed_from_its_input_shape(tmp_path, monkeypatch):
    # a waveform in, 2-D convs on torch.stft's spectrogram: check takes --input-shape 1,1,N, but the
    # suggested command said --input N (an error) and fix --input-shape failed ("expects 2 spatial axes")
    monkeypatch.chdir(tmp_path)
    _conv_chain_file(tmp_path / "spec.py", "SpecNet", 1, 8, """
        s = torch.stft(x.squeeze(1), n_fft=32, hop_length=32, window=torch.ones(32, device=x.device),
                       return_complex=True).abs().unsqueeze(1)
        return self.fc(self.convs(s).mean((2, 3)))""")
    runner = CliRunner()
    check = runner.invoke(app, ["check", "spec.py:SpecNet", "--input-shape", "1,1,256"], env={"COLUMNS": "300"})
    assert check.exit_code == 1, check.output
    [line] = [ln for ln in check.stdout.splitlines() if ln.startswith("Try it: ")]
    assert line.startswith("Try it: rflint fix spec.py:SpecNet --input-shape 1,1,256 --truncate -o ")
    fixed = runner.invoke(app, line[len("Try it: rflint "):].split())
    assert fixed.exit_code == 0, fixed.output


def test_fix_says_the_fixed_model_has_no_hooks(tmp_path, monkeypatch):
    # an input-normalising pre-hook on the model: the fixed model (a new GraphModule) has none, and
    # its kept conv1 read raw inputs; fix said only that rflint does not analyse the hook
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hooked.py").write_text(textwrap.dedent("""
        from rflint.zoo import ZOO


        def build():
            model = ZOO["resnet18"].factory()
            model.register_forward_pre_hook(lambda module, args: (args[0] * 2 - 1,))
            return model
    """))
    result = CliRunner().invoke(app, ["fix", "hooked.py:build", "--input", "32", "--truncate"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "note: the fixed model does not have the hooks registered on the model" in result.stdout


def test_a_model_with_the_deprecated_weight_norm_is_truncated():
    # torch.nn.utils.weight_norm keeps `weight` as a computed tensor (a grad_fn), which deepcopy
    # refuses: `rflint fix` failed with torch's "Only Tensors created explicitly by the user ..."
    # right after `check` had suggested it.  Five 3x3 convs at 8 px: the input RFs 1, 3, 5, 7, 9,
    # so the last is unproductive and the cut is after the fourth
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        convs = [torch.nn.utils.weight_norm(nn.Conv2d(3 if i == 0 else 4, 4, 3, padding=1)) for i in range(5)]
    model = nn.Sequential(*convs, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    fixed = truncate(model, 8)
    assert [type(m).__name__ for m in fixed.modules()].count("Conv2d") == 4
    assert fixed(torch.zeros(1, 3, 8, 8)).shape == (1, 2)


def test_a_model_returning_several_tensors_is_not_truncated(tmp_path, monkeypatch):
    # (logits, features): the truncated model would return the new classifier's output alone, and a
    # cut chosen for the tail may drop what another output needs (a stem map returned beside the
    # logits put the cut after the stem): refused, saying why
    monkeypatch.chdir(tmp_path)
    _conv_chain_file(tmp_path / "two.py", "Two", 3, 6, """
        y = self.convs(x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1)), y""")
    result = CliRunner().invoke(app, ["fix", "two.py:Two", "--input", "8", "--truncate"])
    assert result.exit_code == 2
    assert "it returns 2 tensors, and a truncated model would return one classifier's output alone" in result.stderr
    # and check's RF002 says so too (it read as if no truncation had been tried)
    found = json.loads(CliRunner().invoke(app, ["check", "two.py:Two", "--input", "8", "-f", "json"]).stdout)
    tail = [f["message"] for f in found["models"][0]["findings"] if f["code"] == "RF002"]
    assert len(tail) == 1 and "(no automatic truncation: it returns 2 tensors" in tail[0]


def test_layers_without_remove_stem_says_what_it_goes_with():
    # "fix --layers conv1" said "choose one fix: --truncate or --remove-stem", not that --layers needs
    # --remove-stem (the fix it was meant for)
    result = CliRunner().invoke(app, ["fix", "zoo:resnet18", "--input", "32", "--layers", "conv1"])
    assert result.exit_code == 2
    assert result.stderr.strip() == ("rflint: error: --layers goes with --remove-stem: rflint fix zoo:resnet18 "
                                     "--remove-stem --layers conv1")
