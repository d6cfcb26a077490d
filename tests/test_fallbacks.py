"""Tracing fallbacks, declared layers, several inputs and the bad-input messages of the engine."""

import json
import os
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from typer.testing import CliRunner

import rflint
from rflint.cli.app import app
from rflint.errors import RflintError
from rflint.report import build_report
from rflint.rules import lint

runner = CliRunner()


class ValueBranch(nn.Module):
    """forward() branches on x.sum() > 0: only value-aware tracing can follow it."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 5, padding=2)
        self.c = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        x = self.a(x)
        if x.sum() > 0:
            x = self.b(x)
        return self.c(x)


def test_value_dependent_branch_is_followed_and_named():
    a = rflint.analyze(ValueBranch, 32)
    assert "concrete values" in a.trace_method
    assert any("branches on tensor values" in w and "test_fallbacks.py" in w for w in a.warnings)
    names = [layer.name for layer in a.layers]
    assert names[0] == "a" and names[-1] == "c"
    # whichever branch ran: c's input RF is 3 (a only) or 3 + 4 = 7 (a then b)
    assert a.layer("c").r_in_min in ((3, 3), (7, 7))


class _TwoConvs(nn.Module):
    """a: 3x3 conv, b: a k x k conv after it."""

    def __init__(self, k: int = 3):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, k, padding=k // 2)


class ItemLoop(_TwoConvs):
    """The number of repeats comes from a value: int(x.abs().sum().item()) (an int() of a proxy,
    then range())."""

    def forward(self, x):
        x = self.a(x)
        for _ in range(int(x.abs().sum().item()) % 2 + 1):  # 1 or 2 times
            x = self.b(x)
        return x


class NumpyGate(nn.Module):
    """A branch on a NumPy mean of the input (meta tensors have no NumPy view)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        if np.mean(x.detach().numpy()) > 100:  # never, for a standard normal input
            x = x * 2
        return self.a(x)


class NonzeroCount(_TwoConvs):
    """torch.nonzero, whose output shape depends on the values: fx traces it symbolically, but
    the shape pass cannot run it on meta tensors.  b is 5x5."""

    def __init__(self):
        super().__init__(k=5)

    def forward(self, x):
        y = self.a(x)
        return self.b(y) * (torch.nonzero(y > 0).shape[0] > 0)


def test_values_read_by_item_numpy_or_nonzero_are_traced_on_real_tensors():
    # each failed with "Tensor.item() cannot be called on meta tensors" (or NumPy's and nonzero's
    # versions of it): the concrete-values fallback (README) was only tried for a branch on a tensor
    item = rflint.analyze(ItemLoop, 16)
    assert "concrete values" in item.trace_method
    assert any("branches on tensor values" in w and "test_fallbacks.py" in w for w in item.warnings)
    # a reads r 1, the first b 3, a second b (if the input made two) 5
    assert [layer.r_in_min for layer in item.layers][:2] == [(1, 1), (3, 3)] and len(item.layers) in (2, 3)
    gate = rflint.analyze(NumpyGate, 16)
    assert "concrete values" in gate.trace_method and [layer.r_in_min for layer in gate.layers] == [(1, 1)]
    count = rflint.analyze(NonzeroCount, 16)
    assert "concrete values" in count.trace_method
    assert [(layer.name, layer.r_in_min, layer.r_out_min) for layer in count.layers] == \
        [("a", (1, 1), (3, 3)), ("b", (3, 3), (7, 7))]


class LazyHeadValueBranch(nn.Module):
    """A value branch (so the model runs on real CPU copies) and a LazyLinear head, whose weight
    has no shape until its first forward."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.LazyLinear(10)

    def forward(self, x):
        x = self.a(x)
        if x.sum() > 0:
            x = -x
        return self.head(self.pool(x).flatten(1))


def test_lazy_layers_are_materialized_for_value_aware_tracing():
    a = rflint.analyze(LazyHeadValueBranch, 16)
    assert "concrete values" in a.trace_method
    # conv 3*4*3*3 + 4 = 112; the head learns in_features = 4 from the pooled map: 4*10 + 10 = 50
    assert a.params == 112 + 50
    assert [layer.name for layer in a.layers][0] == "a"


class ShapeQuestions(nn.Module):
    """forward() asks len(x.shape) and compares sizes: shape-aware tracing answers."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        x = self.a(x)
        if len(x.shape) == 4 and x.shape[-1] == x.shape[-2]:
            x = self.b(x)
        return x


def test_shape_questions_are_answered():
    a = rflint.analyze(ShapeQuestions, 16)
    assert "concrete shapes" in a.trace_method
    assert a.layer("b").r_out_min == (5, 5)  # 3 + 2: the square-input branch was taken
    a = rflint.analyze(ShapeQuestions, (16, 24))
    assert [layer.name for layer in a.layers] == ["a"]  # non-square: the branch is skipped


class Opaque(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.conv(torch.as_tensor(x, dtype=torch.float32))  # fx cannot trace as_tensor(proxy, dtype)


class WithOpaque(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.mid = Opaque()
        self.b = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.b(self.mid(self.a(x)))


def test_untraceable_submodule_becomes_an_opaque_leaf():
    a = rflint.analyze(WithOpaque, 16)
    assert "opaque leaves" in a.trace_method and "mid" in a.trace_method
    assert any(w.startswith("mid: ") and "opaque" in w for w in a.warnings)
    # the opaque block keeps the size: identity, so b's input RF is a's 3 (a lower bound, as warned)
    assert a.layer("b").r_in_min == (3, 3)


def test_declared_layer_decorator():
    @rflint.layer(kernel=3, stride=2)
    class Down(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(4, 4, 3, 3))

        def forward(self, x):
            return torch.nn.functional.conv2d(x, self.w, stride=2, padding=1)

    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), Down(), nn.Conv2d(4, 4, 3, padding=1))
    a = rflint.analyze(net, 32)
    # conv3: 3; Down k3 s2: 3 + 2 = 5, j 2; conv3: 5 + 2*2 = 9
    assert a.layer("1").kernel == (3, 3) and a.layer("1").r_out_min == (5, 5)
    assert a.layer("2").r_out_min == (9, 9) and a.warnings == []


def test_declared_layer_in_config(tmp_path, monkeypatch):
    (tmp_path / "blocks.py").write_text(textwrap.dedent("""
        import torch.nn as nn
        import torch.nn.functional as F


        class Blur(nn.Module):
            def forward(self, x):
                return F.avg_pool2d(x, 5, stride=1, padding=2)


        def build():
            return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), Blur(), nn.Conv2d(4, 4, 3, padding=1))
    """))
    (tmp_path / "pyproject.toml").write_text(
        '[tool.rflint.layers]\n"blocks.Blur" = { kernel = 5 }\n')
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["check", "blocks.py:build", "--input", "32", "--format", "json"])
    assert result.exit_code == 0, result.output
    import json

    layers = {layer["name"]: layer for layer in json.loads(result.stdout)["models"][0]["layers"]}
    assert layers["1"]["op"] == "Blur" and layers["1"]["kernel"] == [5, 5]
    assert layers["2"]["r_out_min"] == [9, 9]  # 3 + 4 + 2
    assert "tool.rflint.layers" not in result.stderr
    # a class path no model has (a typo) did nothing without a word
    (tmp_path / "pyproject.toml").write_text('[tool.rflint.layers]\n"blocks.Blurr" = { kernel = 5 }\n')
    for jobs in ("1", "2"):
        result = runner.invoke(app, ["check", "blocks.py:build", "--input", "32", "--jobs", jobs])
        assert "rflint: [tool.rflint.layers] 'blocks.Blurr' matches no class in the models checked" in result.stderr, jobs


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.embed = nn.Linear(10, 4)
        self.out = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, image, meta):
        return self.out(self.conv(image) + self.embed(meta)[:, :, None, None])


def test_several_inputs(tmp_path):
    a = rflint.analyze(TwoInputs, input_shapes=[(1, 3, 32, 32), (1, 10)])
    # the metadata vector is broadcast onto the map: modulation, so out sees 3 + 2 = 5
    assert a.input_size == (32, 32) and a.layer("out").r_out_min == (5, 5) and a.layer("out").r_out_max == (5, 5)
    with pytest.raises(RflintError, match=r"takes 2 inputs \(image, meta\)"):
        rflint.analyze(TwoInputs, 32)


TWO_INPUTS = textwrap.dedent('''
    import torch.nn as nn


    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.embed = nn.Linear(10, 4)

        def forward(self, image, meta):
            return self.conv(image) + self.embed(meta)[:, :, None, None]
''')


def test_input_on_the_command_line_sizes_a_configured_model_with_input_shapes(tmp_path, monkeypatch):
    # -i 16 was silently ignored for a [[tool.rflint.models]] entry with input-shape (and applied
    # to the others): it sets the image's size, the vector input keeps its shape
    import json

    (tmp_path / "m.py").write_text(TWO_INPUTS)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.rflint]\n[[tool.rflint.models]]\ntarget = "m.py:TwoInputs"\ninput-shape = ["1,3,8,8", "1,10"]\n')
    monkeypatch.chdir(tmp_path)
    assert [m["input"] for m in json.loads(runner.invoke(app, ["check", "-f", "json"]).stdout)["models"]] == [[8, 8]]
    doc = json.loads(runner.invoke(app, ["check", "--input", "16", "--input", "24", "-f", "json"]).stdout)
    assert [m["input"] for m in doc["models"]] == [[16, 16], [24, 24]]


def test_several_inputs_cli(tmp_path, monkeypatch):
    (tmp_path / "m.py").write_text(TWO_INPUTS)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["check", "m.py:TwoInputs", "--input-shape", "1,3,16,16", "--input-shape", "1,10",
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["check", "m.py:TwoInputs", "--input", "16"])
    assert result.exit_code == 2 and "give one --input-shape per input" in result.stderr


def test_mlp_has_nothing_to_lint(tmp_path, monkeypatch):
    (tmp_path / "mlp.py").write_text("import torch.nn as nn\n\ndef build():\n    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))\n")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["check", "mlp.py:build", "--input", "4"])
    assert result.exit_code == 0 and "nothing to lint" in result.stderr


def test_a_sweep_of_a_model_with_nothing_to_lint_says_so_as_check_does(tmp_path, monkeypatch):
    # check said so and exited 0; sweep called it an error (exit 2, JSON "error")
    (tmp_path / "mlp.py").write_text("import torch.nn as nn\n\ndef build():\n    return nn.Sequential(nn.Linear(4, 2))\n")
    monkeypatch.chdir(tmp_path)
    said = "mlp.py:build has no convolution, pooling or resampling layer: nothing to lint"
    text = runner.invoke(app, ["sweep", "mlp.py:build", "--sizes", "8,16"])
    assert (text.exit_code, text.stdout, text.stderr) == (0, "", f"rflint: {said}\n")
    doc = json.loads(runner.invoke(app, ["sweep", "mlp.py:build", "--sizes", "8,16", "-f", "json"]).stdout)
    assert doc["sizes"] == [] and doc["skipped"] == said and "error" not in doc


_EXITS = """
import sys

import torch.nn as nn


class Exits(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        sys.exit(3)


def fine():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1))
"""


def test_a_forward_that_calls_sys_exit_is_that_targets_error(tmp_path, monkeypatch):
    # a factory's or an import's sys.exit was caught, forward()'s was not: the run ended with exit
    # code 3 and no output, the other target's report lost too
    (tmp_path / "ex.py").write_text(_EXITS)
    monkeypatch.chdir(tmp_path)
    said = "ex.py:Exits: its code called sys.exit(3) while rflint traced or ran it"
    for jobs in ("1", "2"):
        result = runner.invoke(app, ["check", "ex.py:Exits", "ex.py:fine", "--input", "8", "-f", "json", "-j", jobs])
        assert result.exit_code == 2 and result.stderr == f"rflint: error: {said}\n"
        assert [m["target"] for m in json.loads(result.stdout)["models"]] == ["ex.py:fine"]
    for command in (["sweep", "ex.py:Exits", "--sizes", "8,16"], ["fix", "ex.py:Exits", "--input", "8", "--truncate"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2 and result.stderr == f"rflint: error: {said}\n"  # named, as check names it


def test_nothing_to_lint_is_named_in_every_machine_format(tmp_path, monkeypatch):
    # it was on stderr only: a CI report (JSON, SARIF, annotations, a PR comment) of a model rflint
    # never looked into was the report of a clean one
    (tmp_path / "mlp.py").write_text("import torch.nn as nn\n\ndef build():\n    return nn.Sequential(nn.Linear(4, 2))\n")
    monkeypatch.chdir(tmp_path)
    said = "mlp.py:build has no convolution, pooling or resampling layer: nothing to lint"

    def run(fmt):
        result = runner.invoke(app, ["check", "mlp.py:build", "zoo:vgg11", "--input", "32", "-f", fmt])
        assert result.exit_code == 1, result.output  # vgg11's tail at 32 px; the MLP is no error
        return result.stdout

    doc = json.loads(run("json"))
    assert doc["skipped"] == [{"target": "mlp.py:build", "message": said}] and doc["errors"] == []
    assert [m["target"] for m in doc["models"]] == ["zoo:vgg11"]
    invocation = json.loads(run("sarif"))["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is True
    assert {"level": "note", "message": {"text": said}, "descriptor": {"id": "rflint/nothing-to-lint"}} in \
        invocation["toolExecutionNotifications"]
    assert f"::notice title=rflint nothing to lint::{said}" in run("github").splitlines()
    markdown = run("markdown")
    assert f"### Nothing to lint\n\n- {said}" in markdown


def test_input_too_small_names_the_layer_and_the_smallest_size():
    # The M5 audio net (no padding): conv1 k80 s4, pool1 /4, conv2 k3, pool2 /4, conv3 k3, pool3 /4,
    # conv4 k3, pool4 /4.  Backwards from pool4 (needs 4): conv4 in 6; pool3 in 24; conv3 in 26;
    # pool2 in 104; conv2 in 106; pool1 in 424; conv1: 80 + 4*(424-1) = 1772.
    # At 500: conv1 106, pool1 26, conv2 24, pool2 6, conv3 4, pool3 1: conv4's 3 taps find 1 sample.
    with pytest.raises(RflintError) as err:
        rflint.analyze("zoo:audio1d", 500)
    assert str(err.value) == ("input 500 is too small for zoo:audio1d: the feature map vanishes at conv4; "
                              "the smallest input that runs is 1772")


def test_wrong_channel_count():
    with pytest.raises(RflintError, match=r"conv1 expects 3 input channels, got 5 \(pass channels=3\)"):
        rflint.analyze("zoo:resnet18", 32, channels=5)


def test_effnet_and_highresnet_from_monai():
    nets = pytest.importorskip("monai.networks.nets")
    warnings.filterwarnings("ignore")
    a = rflint.analyze(lambda: nets.EfficientNetBN("efficientnet-b0", spatial_dims=2, pretrained=False), 224)
    assert a.layers and a.trace_method
    a = rflint.analyze(lambda: nets.HighResNet(spatial_dims=2, in_channels=1, out_channels=2), 64)
    assert a.layers and a.warnings == []


class _UpWithShapeCheck(nn.Module):
    """Upsample x 2 and concatenate the skip; the shape comparison stops the symbolic trace."""

    def __init__(self, c):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2)
        self.conv = nn.Conv2d(2 * c, c, 3, padding=1)

    def forward(self, x, skip):
        x = self.up(x)
        if x.shape[-1] != skip.shape[-1]:
            x = nn.functional.pad(x, (0, skip.shape[-1] - x.shape[-1], 0, skip.shape[-2] - x.shape[-2]))
        return self.conv(torch.cat([x, skip], 1))


class _NormedUNet(nn.Module):
    """Two 2x2 max pools, an instance norm at the bottom: at 4-7 px the bottom map is 1x1 (4 -> 2 -> 1,
    7 -> 3 -> 1), which InstanceNorm2d (no running stats) refuses, in eval mode too; 8 px runs."""

    def __init__(self, c=4):
        super().__init__()
        self.inc = nn.Conv2d(1, c, 3, padding=1)
        self.d1 = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(c, c, 3, padding=1))
        self.d2 = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(c, c, 3, padding=1), nn.InstanceNorm2d(c))
        self.u2, self.u1 = _UpWithShapeCheck(c), _UpWithShapeCheck(c)

    def forward(self, x):
        x0 = self.inc(x)
        x1 = self.d1(x0)
        return self.u1(self.u2(self.d2(x1), x1), x0)


def test_a_size_that_does_not_run_leaves_the_next_size_its_own_trace():
    # at 4 px the trace with concrete shapes failed (the instance norm), the opaque-leaves fallback was
    # taken and then kept for 8 px too: its report depended on whether 4 px came first
    with pytest.raises(ValueError, match="Expected more than 1 spatial element"):
        _NormedUNet().eval()(torch.randn(1, 1, 7, 7))
    prepared = rflint.prepare(_NormedUNet())
    with pytest.raises(RflintError) as why:
        prepared.at(4)
    assert str(why.value).startswith("input 4x4 is too small for ") and str(why.value).endswith(
        "the map reaching d2.2 is down to one pixel, and an instance norm needs more than one; "
        "the smallest input that runs is 8x8")
    after = prepared.at(8)
    alone = rflint.analyze(_NormedUNet(), 8)
    assert after.trace_method == alone.trace_method == "torch.fx with concrete shapes (forward() inspects shapes)"
    assert [layer.name for layer in after.layers] == [layer.name for layer in alone.layers]


def test_an_instance_norm_with_running_stats_runs_on_one_pixel():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.InstanceNorm2d(4, track_running_stats=True), nn.Conv2d(4, 4, 1))
    net.eval()(torch.randn(1, 3, 3, 3))  # torch runs it: statistics from the buffers
    assert rflint.analyze(net, 3).layers[-1].out_shape == (1, 4, 1, 1)


def _chain():
    """Convs k3 p1: input RFs 1, 3, 5, 7, 9, so at 6 px convs 3 and 4 (input RF 7, 9 > 6) are the tail."""
    return nn.Sequential(*(nn.Conv2d(3, 3, 3, padding=1) for _ in range(5)), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(3, 4))


@pytest.mark.parametrize("wrap", ["DataParallel", "compile", "half", "bfloat16", "complex64"])
def test_wrapped_and_half_precision_models_are_analysed(wrap):
    # DataParallel and torch.compile wrappers could not be traced; a half model got float32 inputs,
    # which torch refuses ("Input type (float) and bias type (c10::Half) should be the same"), and
    # a complex-valued one too, with no way to ask for a complex input
    model = {"DataParallel": lambda m: nn.DataParallel(m), "compile": torch.compile,
             "half": lambda m: m.half(), "bfloat16": lambda m: m.to(torch.bfloat16),
             "complex64": lambda m: m.to(torch.complex64)}[wrap](_chain())
    a = rflint.analyze(model, 6)
    assert [layer.r_in_min for layer in a.layers][:5] == [(1, 1), (3, 3), (5, 5), (7, 7), (9, 9)]
    if wrap in ("half", "bfloat16"):  # the truncated model keeps the dtype, its new head too
        fixed = rflint.truncate(model, 6)
        dtype = next(model.parameters()).dtype
        assert fixed(torch.randn(1, 3, 6, 6, dtype=dtype)).dtype == dtype


class _Features(nn.Module):
    """_chain()'s convs as a features block and a head, the way torchvision's AlexNet / VGG are."""

    def __init__(self):
        super().__init__()
        chain = _chain()
        self.features, self.head = chain[:5], chain[5:]

    def forward(self, x):
        return self.head(self.features(x))


@pytest.mark.parametrize("wrap", ["DataParallel", "compile", "AveragedModel"])
def test_a_wrapper_on_a_part_of_the_model_is_looked_through(wrap):
    # model.features = nn.DataParallel(model.features) (pytorch/examples' ImageNet script): the whole
    # block became one "unknown layer, kernel 1, stride" and the tail and RF001s were gone (exit 0)
    from torch.optim.swa_utils import AveragedModel

    model = _Features()
    model.features = {"DataParallel": nn.DataParallel, "compile": torch.compile, "AveragedModel": AveragedModel}[wrap](
        model.features)
    a = rflint.analyze(model, 6)
    assert [layer.r_in_min for layer in a.layers] == [(1, 1), (3, 3), (5, 5), (7, 7), (9, 9)]
    assert "RF002" in {f.code for f in lint(a).findings}


class _PassThrough(nn.Module):
    """A wrapper that hands its inputs on, as EMA and generic model wrappers do."""

    def __init__(self):
        super().__init__()
        self.model = _chain()

    def forward(self, *xs, **kwargs):
        return self.model(*xs, **kwargs)


def test_wrappers_that_pass_args_and_kwargs_through_are_analysed():
    # the *xs placeholder was given one tensor, not a tuple of them, and **kwargs None: "cannot
    # iterate over Tensor value of _xs"; torch.optim.swa_utils.AveragedModel (an EMA) is such a wrapper
    from torch.optim.swa_utils import AveragedModel

    for model in (_PassThrough(), AveragedModel(_chain())):
        a = rflint.analyze(model, 6)
        assert [layer.r_in_min for layer in a.layers][:5] == [(1, 1), (3, 3), (5, 5), (7, 7), (9, 9)]


def test_a_freed_operator_id_does_not_make_scripting_fail():
    """The workaround the scripting tests use (tests/stale_jit_ids.py), on the failure CI hit: an
    id left in torch.jit's builtin table that a conv's padding list now has.  Without the cleanup
    the script fails; after it, the entry is gone and the conv scripts."""
    from torch.jit import _builtins

    from stale_jit_ids import drop_stale_jit_builtin_ids

    conv = nn.Conv2d(3, 8, 3, padding=1)
    table, key = _builtins._get_builtin_table(), id(conv._reversed_padding_repeated_twice)
    table[key] = "aten::pad"  # what a freed op at this address left behind
    try:
        with pytest.raises(RuntimeError, match="builtin cannot be used as a value"):
            torch.jit.script(conv)
        assert drop_stale_jit_builtin_ids() >= 1
        assert key not in table
        torch.jit.script(conv)
    finally:
        table.pop(key, None)


@pytest.mark.usefixtures("scriptable")
def test_a_torchscript_module_is_an_error_that_says_what_to_give():
    with pytest.raises(RflintError, match="is a TorchScript module, which torch.fx cannot trace; give rflint "
                                          "the nn.Module it was scripted or traced from"):
        rflint.analyze(torch.jit.script(_chain()), 6)


class _CoordConv(torch.nn.Module):
    """CoordConv: two coordinate maps made in forward() without a device, concatenated to the input."""

    def __init__(self):
        super().__init__()
        self.c = torch.nn.Conv2d(5, 8, 3, stride=2, padding=1)
        self.d = torch.nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        n, _, h, w = x.shape
        yy = torch.linspace(-1, 1, h).view(1, 1, h, 1).expand(n, 1, h, w)
        xx = torch.linspace(-1, 1, w).view(1, 1, 1, w).expand(n, 1, h, w)
        out = torch.zeros(n, 8, h // 2, w // 2)  # a CPU tensor met by a meta one, the other way round
        return out + self.d(self.c(torch.cat([x, yy, xx], 1)))


def test_tensors_made_in_forward_without_a_device():
    # the shape pass runs on meta tensors; torch refused to mix them with forward()'s own CPU ones
    # ("Tensor on device cpu is not on the expected device meta!").  c: r 3, j 2; d: 3 + 2*2 = 7
    a = rflint.analyze(_CoordConv(), 32, channels=3)
    assert a.layer("d").r_out_min == (7, 7)


class _LoopedInner(torch.nn.Module):
    """fx cannot trace it (a loop over the batch); it has a child of its own."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(8, 8, 3, stride=2, padding=1)

    def forward(self, x):
        return torch.stack([self.conv(r[None])[0] for r in x])


class _ShapeBranch(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.inner, self.b = torch.nn.Conv2d(3, 8, 3, padding=1), _LoopedInner(), torch.nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        if x.shape[-1] > 4:  # a shape question: traced with concrete shapes, inner an opaque leaf
            x = self.a(x)
        return self.b(self.inner(x))


def test_an_opaque_leaf_with_children_of_its_own():
    # running the leaf's copy called its conv through fx's patched nn.Module.__call__, which failed
    # ("module is not installed as a submodule").  a: r 3; inner (from shapes): stride 2; b: 3 + 2*2 = 7
    a = rflint.analyze(_ShapeBranch(), 32)
    assert "opaque leaves (inner)" in a.trace_method
    assert a.layer("inner").stride == (2, 2) and a.layer("b").r_out_min == (7, 7)


def test_swin_unetr_too_small_names_the_instance_norm():
    # at 32 px encoder10's input is 1x1 and its InstanceNorm refuses a single pixel; the model runs
    # from 64 (it checks for multiples of 32 itself)
    nets = pytest.importorskip("monai.networks.nets")
    pytest.importorskip("einops")
    model = nets.SwinUNETR(in_channels=1, out_channels=2, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1),
                           window_size=4, feature_size=12, spatial_dims=2)
    with pytest.raises(RflintError) as err:
        rflint.analyze(model, 32, channels=1)
    assert str(err.value).endswith("the map reaching encoder10.layer.norm1 is down to one pixel, and an instance "
                                   "norm needs more than one; the smallest input that runs is 64x64")


def test_a_head_built_for_one_size_names_it():
    # Flatten + Linear(8*56*56): two 2x pools, so 224 px gives 56x56x8 = 25,088 features; 32 px gives
    # 8x8x8 = 512.  torch said "a and b must have same reduction dim, but got [1, 512] X [25088, 10]"
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.MaxPool2d(2),
                              torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.MaxPool2d(2),
                              torch.nn.Flatten(), torch.nn.Linear(8 * 56 * 56, 10))
    with pytest.raises(RflintError) as err:
        rflint.analyze(net, 32)
    # floor(s / 4) = 56 from 224 to 227 px
    assert str(err.value) == ("input 32x32 does not fit Sequential: layer 5 (Linear) expects 25,088 input features and gets "
                              "512, a flattened feature map of this input size; the model runs only at the input sizes "
                              "its head was built for, such as 224x224 to 227x227")


@pytest.mark.parametrize("size, sizes", [
    # four 2x pools and 32 channels: Linear(128) needs floor(s / 16) = 2 per side, 32 to 47 px.  Scaling
    # by sqrt(128 / features) named 34x34 from 51, 33x33 from 100, and no size at all from 24
    (24, "32x32 to 47x47"), (51, "32x32 to 47x47"), (100, "32x32 to 47x47"),
    # in proportion: floor(s / 16) * floor(2s / 16) = 4 needs 2 and 2: s from 32, 2s below 48, so 32x64 is
    # 2 x 4 and no s gives it; squares do
    ((16, 32), "32x32 to 47x47"),
    # 17x51 gives 1 x 3 cells; 1 x 4 in the proportion 1:3 needs t from 16 to 31 and 3t from 64 to 79:
    # t from 22 (66) to 26 (78)
    ((17, 51), "22x66 to 26x78"),
])
def test_a_head_built_for_one_size_names_the_sizes_that_run(size, sizes):
    layers = []
    for c_in, c_out in ((3, 8), (8, 16), (16, 32), (32, 32)):
        layers += [torch.nn.Conv2d(c_in, c_out, 3, padding=1), torch.nn.MaxPool2d(2)]
    net = torch.nn.Sequential(*layers, torch.nn.Flatten(), torch.nn.Linear(32 * 2 * 2, 10))
    with pytest.raises(RflintError) as err:
        rflint.analyze(net, size)
    assert str(err.value).endswith(f"its head was built for, such as {sizes}")


class _JoinedThenFlattened(nn.Module):
    """A skip join that needs even sides, then two 2x pools, a flatten and Linear(8 * 8 * 8)."""

    def __init__(self):
        super().__init__()
        self.c0, self.c1, self.fc = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1), nn.Linear(512, 10)

    def forward(self, x):
        a = self.c0(x)
        y = a + F.interpolate(self.c1(F.max_pool2d(a, 2)), scale_factor=2.0)
        return self.fc(F.max_pool2d(F.max_pool2d(y, 2), 2).flatten(1))


def test_a_head_built_for_one_size_behind_a_join_names_one_that_runs():
    # 8 x 8 cells after the two pools need 32 to 35 px, of which the join takes the even ones: the
    # bisection gave up at its first odd midpoint and named nothing; the range would name 33
    with pytest.raises(RflintError) as err:
        rflint.analyze(_JoinedThenFlattened(), 40)
    assert str(err.value).endswith("its head was built for, such as 32x32")


class _TwoMaps(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(1, 4, 3, padding=1)

    def forward(self, x, y):
        return self.a(x) + self.b(y)


def test_inputs_that_do_not_fit_each_other():
    # a 32x32 and a 16x16 map added: not "the input must line up with the downsampling"
    with pytest.raises(RflintError) as err:
        rflint.analyze(_TwoMaps, input_shapes=[(1, 3, 32, 32), (1, 1, 16, 16)])
    assert str(err.value) == ("input shapes 1,3,32,32 and 1,1,16,16 do not fit _TwoMaps: the maps joined at add "
                              "differ in size (do the inputs' sizes fit each other, and the downsampling before the join?)")


class _MapAndVector(nn.Module):
    def __init__(self):
        super().__init__()
        self.f, self.g = nn.Conv2d(3, 16, 3, padding=1), nn.Linear(10, 16)

    def forward(self, x, v):
        return (self.f(x) * self.g(v)[:, :, None, None]).mean((2, 3))


def test_a_side_input_of_the_wrong_size_is_named_as_such():
    # the 11 features are the second input's, no flattened map: not "the model runs only at the
    # input size its head was built for"
    with pytest.raises(RflintError) as err:
        rflint.analyze(_MapAndVector, input_shapes=[(1, 3, 32, 32), (1, 11)])
    assert str(err.value) == ("input shapes 1,3,32,32 and 1,11 do not fit _MapAndVector: g (Linear) expects 10 input "
                              "features and gets 11 (does each input's shape match what forward() takes?)")


class _PositionEmbedded(nn.Module):
    """4x4/4 patches, a position embedding for 16x16 inputs (4 x 4 = 16 tokens), sliced as timm does."""

    def __init__(self):
        super().__init__()
        self.patches = nn.Conv2d(3, 8, 4, stride=4)
        self.pos_embed = nn.Parameter(torch.zeros(1, 16, 8))

    def forward(self, x):
        x = self.patches(x).flatten(2).transpose(1, 2)
        return (x + self.pos_embed[:, :x.shape[1]]).mean(1)


def test_a_fixed_size_position_embedding_is_named_not_the_downsampling():
    # at 32 px: 64 tokens meet 16; "the input must line up with the downsampling before the join"
    # sent the user looking for a stride.  16..19 px give 4x4 patches: 19 is the nearest that runs.
    with pytest.raises(RflintError) as err:
        rflint.analyze(_PositionEmbedded, 32)
    assert str(err.value) == ("input 32x32 does not fit _PositionEmbedded: at add what the input made meets pos_embed, "
                              "a parameter of a fixed size (a position embedding?): the model runs only at the input "
                              "size it was built for; the nearest size that runs is 19x19")


class _ComposedEmbedding(nn.Module):
    """torchvision's MViT: the position embedding is computed from several parameters (one per
    axis, repeated and added up) before it meets the tokens, made for 16x16 inputs."""

    def __init__(self):
        super().__init__()
        self.patches = nn.Conv2d(3, 8, 4, stride=4)
        self.row_pos, self.col_pos = nn.Parameter(torch.zeros(4, 8)), nn.Parameter(torch.zeros(4, 8))

    def forward(self, x):
        x = self.patches(x).flatten(2).transpose(1, 2)
        pos = torch.repeat_interleave(self.row_pos, 4, dim=0) + self.col_pos.repeat(4, 1)
        return (x + pos.unsqueeze(0)).mean(1)


def test_a_position_embedding_computed_from_parameters_is_named():
    # "the maps joined at add_1 differ in size at 32x32, at every input size within 64 px of it ...:
    # its branches change the size differently (one lacks the padding or stride of the other?), which
    # no input size makes up for": but 16x16 runs.  (16..19 px give 4x4 patches: 19 is the nearest.)
    with pytest.raises(RflintError) as err:
        rflint.analyze(_ComposedEmbedding, 32)
    assert ("what the input made meets a fixed-size tensor computed from the parameters col_pos, row_pos alone "
            "(a position embedding?): the model runs only at the input size it was built for; the nearest size "
            "that runs is 19x19") in str(err.value)


class _ItemBranch(ValueBranch):
    """The branch decided by a Python number made from the values: .item(), or NumPy."""

    def __init__(self, how: str):
        super().__init__()
        self.how = how

    def forward(self, x):
        x = self.a(x)
        total = x.sum().item() if self.how == "item" else x.detach().numpy().sum()
        if total > -1e9:  # the line the warning must name
            x = self.b(x)
        return self.c(x)


@pytest.mark.parametrize("how", ["item", "numpy"])
def test_a_branch_on_a_number_read_from_the_values_is_named(how):
    # the branch was taken on real values (the header said so) but no warning named its line: only
    # a branch on a tensor was recorded, not one on the number .item() or NumPy made of it
    import inspect

    a = rflint.analyze(_ItemBranch(how), 16)
    line = inspect.getsourcelines(_ItemBranch.forward)[1] + 3
    assert any(w.startswith("forward() branches on tensor values at") and f"test_fallbacks.py:{line}" in w
               for w in a.warnings), a.warnings


class _ScriptedDown(nn.Module):
    """conv 3x3 /2, a scripted block of two 3x3 /2 convs, two 3x3 convs."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, 2, 1)
        self.down = torch.jit.script(nn.Sequential(nn.Conv2d(8, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, 2, 1)))
        self.c, self.d = nn.Conv2d(8, 8, 3, 1, 1), nn.Conv2d(8, 8, 3, 1, 1)

    def forward(self, x):
        return self.d(self.c(self.down(self.a(x))))


@pytest.mark.usefixtures("scriptable")
def test_a_torchscript_submodule_is_an_opaque_leaf_not_lost():
    """fx traced into the scripted block as a method call on a constant: the block, c and d vanished
    from the report and a tail at 8 px went unreported.  As a leaf, by hand: a 3x3 /2 gives r 3,
    jump 2, 8 -> 4 px; the block (4 -> 1 px) is inferred as kernel 1, stride 4: r 3, jump 8; c reads
    3 (productive) -> 3 + 2*8 = 19; d reads 19 > 8: unproductive, the border of a tail."""
    a = rflint.analyze(_ScriptedDown(), 8)
    layers = {layer.name: layer for layer in a.layers}
    assert list(layers) == ["a", "down", "c", "d"]
    assert layers["down"].stride == (4, 4) and layers["d"].r_in_min == (19, 19)
    assert any("down: TorchScript module (Sequential), opaque to torch.fx" in w for w in a.warnings)
    assert ("RF002", "d") in {(f.code, f.layer) for f in lint(a).findings}


def test_a_declared_pointwise_layer_without_weights_is_no_rf_layer():
    """Three 3x3 /2 convs (r 3, 7, 15; jump 8), then a residual branch of two 3x3 convs and a
    parameter-free scale.  The branch convs read 15 and 15 + 2*8 = 31 <= 32: productive, so the
    block is productive and there is no tail.  Declared kernel=1, stride=1, the scale (reading
    31 + 16 = 47 > 32) was an unproductive RF layer that blocked the branch: a false RF002 whose
    border had no weights."""

    @rflint.layer(kernel=1, stride=1)
    class Scale(nn.Module):
        def forward(self, x):
            return x * 0.5

    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(*[nn.Conv2d(3 if i == 0 else 8, 8, 3, 2, 1) for i in range(3)])
            self.b3, self.b4, self.gate = nn.Conv2d(8, 8, 3, 1, 1), nn.Conv2d(8, 8, 3, 1, 1), Scale()

        def forward(self, x):
            x = self.stem(x)
            return x + self.gate(self.b4(self.b3(x)))

    a = rflint.analyze(Res(), 32)
    assert [layer.name for layer in a.layers] == ["stem.0", "stem.1", "stem.2", "b3", "b4"]
    assert a.layer("b4").r_in_min == (31, 31)
    assert [f.code for f in lint(a).findings if f.code == "RF002"] == []


class _ScriptedAsksShape(nn.Module):
    """conv 3x3 /2, a scripted block (3x3 /2 conv, ReLU), and a forward() that asks a shape."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, 2, 1)
        self.down = torch.jit.script(nn.Sequential(nn.Conv2d(8, 8, 3, 2, 1), nn.ReLU()))
        self.c, self.d = nn.Conv2d(8, 8, 3, 1, 1), nn.Conv2d(8, 8, 3, 1, 1)

    def forward(self, x):
        x = self.down(self.stem(x))
        if x.shape[-1] > 4:
            x = self.c(x)
        return self.d(x)


@pytest.mark.usefixtures("scriptable")
def test_a_torchscript_submodule_on_the_concrete_shapes_tier():
    # the shape-aware tracer made a meta copy of the scripted block (it has none) and crashed with
    # a raw AttributeError.  By hand: stem r 3, jump 2; the block, 16 -> 8 px, kernel 1 stride 2: r 3,
    # jump 4; c (8 > 4 px, so it runs) 3 + 2*4 = 11; d 11 + 8 = 19
    a = rflint.analyze(_ScriptedAsksShape(), 32)
    assert [layer.name for layer in a.layers] == ["stem", "down", "c", "d"]
    assert a.layer("d").r_out_min == (19, 19)


def test_the_smallest_size_of_a_1d_model_is_found_past_16384_samples():
    # ten stride-3 stages (a SampleCNN): floor(L / 3) ten times stays >= 1 from 3^10 = 59049 on; the
    # search stopped at 16384 px, which bounds a side of an image, not a waveform
    model = nn.Sequential(nn.Conv1d(1, 4, 3, stride=3), *[nn.MaxPool1d(3) for _ in range(9)])
    with pytest.raises(RflintError) as err:
        rflint.analyze(model, 20000)
    assert str(err.value).endswith("the smallest input that runs is 59049")


class _ScaledSkip(nn.Module):
    """A U-Net level whose skip is scaled by a learned gamma before the join."""

    def __init__(self):
        super().__init__()
        self.enc, self.down = nn.Conv2d(3, 8, 3, 1, 1), nn.Conv2d(8, 8, 3, 2, 1)
        self.up, self.gamma = nn.ConvTranspose2d(8, 8, 2, 2), nn.Parameter(torch.ones(1, 8, 1, 1))

    def forward(self, x):
        skip = self.enc(x)
        return self.up(self.down(skip)) + self.gamma * skip


def test_a_scaled_skip_that_does_not_line_up_is_no_fixed_size_parameter():
    # 33 px: down to 17, up to 34, joined with the 33 px skip; gamma * skip is a map, not a
    # position embedding (the message said "meets gamma, a parameter of a fixed size")
    with pytest.raises(RflintError) as err:
        rflint.analyze(_ScaledSkip, 33)
    assert "the maps joined at add differ in size (the input must line up with the downsampling" in str(err.value)


class _FlatHeadAndVector(nn.Module):
    def __init__(self):
        super().__init__()
        self.c, self.fc, self.side = nn.Conv2d(3, 4, 3, 2, 1), nn.Linear(4 * 8 * 8, 10), nn.Linear(16, 10)

    def forward(self, x, v):
        return self.fc(self.c(x).flatten(1)) + self.side(v)


def test_with_several_inputs_a_head_built_for_one_image_size_is_still_named():
    # the side vector is right (16); the image's flattened 16x16 map (1,024) is not what fc was built
    # for (8x8: 256 px from 16 px inputs)
    with pytest.raises(RflintError) as err:
        rflint.analyze(_FlatHeadAndVector, input_shapes=[(1, 3, 32, 32), (1, 16)])
    assert "fc (Linear) expects 256 input features and gets 1,024, a flattened feature map of this input size" \
        in str(err.value)


class _SpaceToDepth7(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        x = self.conv(x)
        b, c, h, w = x.shape
        return x.view(b, c, h // 7, 7, w // 7, 7).permute(0, 1, 3, 5, 2, 4).reshape(b, c * 49, h // 7, w // 7)


def test_a_size_a_reshape_cannot_split_names_the_nearest_sizes():
    # 30 px into 7 px blocks: torch's "shape [1, 4, 4, 7, 4, 7] is invalid for input of size 3600"
    # was all the user got; the multiples of 7 around 30 are 28 and 35
    with pytest.raises(RflintError) as err:
        rflint.analyze(_SpaceToDepth7, 30)
    assert str(err.value) == ("input 30x30 does not fit _SpaceToDepth7: the reshape at view needs a size this input "
                              "does not give (blocks the map does not divide into, or a head built for one size); "
                              "the nearest sizes that run are 28x28 and 35x35")


class _Partitioned(nn.Module):
    """The same reshape in a submodule's forward(), as MaxViT's window partition is."""

    def __init__(self):
        super().__init__()
        self.stage = nn.Sequential(nn.Identity(), _SpaceToDepth7())


def test_a_reshape_in_a_submodule_is_named_with_its_module():
    # "the reshape at view": one of many views in a real model (MaxViT's partition_op.reshape)
    model = _Partitioned().stage
    with pytest.raises(RflintError, match=r"the reshape at 1\.view needs a size this input does not give"):
        rflint.analyze(model, 30)


def _three_convs():
    return nn.Sequential(*[nn.Conv2d(3 if i == 0 else 4, 4, 3, padding=1) for i in range(3)])


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


def test_hooks_the_trace_leaves_out_are_noted():
    # a pre-hook that halves the last conv's input: the conv's RF then grows by 2 * 2, not 2; fx
    # records the conv as one call and its hook never runs, so the report said 7 without a word
    model = _three_convs()
    model[2].register_forward_pre_hook(lambda module, args: (F.avg_pool2d(args[0], 2),))
    a = rflint.analyze(model, 16)
    assert a.warnings == ["2 has a forward pre-hook (a lambda) that rflint does not analyse: if that code changes "
                          "the tensors, the RFs from there on are not what runs"]
    # torch's own hooks (the old weight_norm API is a pre-hook) change weights, not maps: no note
    normed = _three_convs()
    with warnings.catch_warnings():  # deprecated for torch.nn.utils.parametrizations.weight_norm
        warnings.simplefilter("ignore", FutureWarning)
        torch.nn.utils.weight_norm(normed[1])
    assert rflint.analyze(normed, 16).warnings == []


def test_a_hook_of_a_users_submodule_is_traced_not_noted():
    # fx calls a submodule of the user's own through its __call__, hooks and all: conv 3, the block's
    # conv 5, the hook's 3x3 max pool 7, the last conv 9
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), _Block(), nn.Conv2d(4, 4, 3, padding=1))
    model[1].register_forward_hook(lambda module, args, out: F.max_pool2d(out, 3, 1, 1))
    a = rflint.analyze(model, 32)
    assert a.warnings == [] and a.final_r_min == (9, 9)


@rflint.layer(kernel=3, stride=1)
class _DeclaredBlur(nn.Module):
    def forward(self, x):
        return F.avg_pool2d(x, 3, 1, 1)


@rflint.layer(kernel=3, stride=1)
class _DeclaredWrongly(nn.Module):  # really a 3x3 pool with stride 2
    def forward(self, x):
        return F.avg_pool2d(x, 3, 2, 1)


def test_a_hook_on_a_declared_layer_is_noted():
    # a declared layer is one call for fx, as a torch layer is, so its hook never runs; only torch
    # layers' hooks were noted, and a pre-hook that halves the map went by without a word
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), _DeclaredBlur(), nn.Conv2d(4, 4, 3, padding=1))
    model[1].register_forward_pre_hook(lambda module, args: (F.max_pool2d(args[0], 2),))
    # (the shapes come from calling the layer, hook and all: its 8x8 output contradicts the
    # declaration too)
    assert rflint.analyze(model, 16).warnings == [
        "1 has a forward pre-hook (a lambda) that rflint does not analyse: if that code changes the tensors, the RFs "
        "from there on are not what runs",
        "1: declared layer _DeclaredBlur: its kernel 3x3, stride 1x1 cannot take 16x16 to 8x8 (with any padding up to "
        "the kernel's); the RFs use the declaration"]


def test_a_declaration_the_shapes_contradict_is_said():
    # declared 3x3 stride 1, it makes 8x8 of 16x16: no padding from 0 to 2 gives that with stride 1
    # (16 - 3 + 1 = 14 at the least).  The declaration is used (3 + 2 = 5, then 7), with a note
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), _DeclaredWrongly(), nn.Conv2d(4, 4, 3, padding=1))
    a = rflint.analyze(model, 16)
    assert a.final_r_min == (7, 7)
    assert a.warnings == ["1: declared layer _DeclaredWrongly: its kernel 3x3, stride 1x1 cannot take 16x16 to 8x8 "
                          "(with any padding up to the kernel's); the RFs use the declaration"]
    # one that fits (the blur keeps 16x16, as padding 1 gives) is not noted
    assert rflint.analyze(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), _DeclaredBlur()), 16).warnings == []


class _CallOverride(nn.Sequential):
    def __call__(self, x):  # one more conv around forward(), which fx's trace of forward() leaves out
        return self.extra(super().__call__(x))


def test_a_model_that_overrides_call_is_noted():
    model = _CallOverride(nn.Conv2d(3, 4, 3, padding=1))
    model.extra = nn.Conv2d(4, 4, 3, padding=1)
    assert rflint.analyze(model, 16).warnings == [
        "_CallOverride overrides __call__; rflint analyses _CallOverride.forward, which fx traces without it: if "
        "that code changes the tensors, the RFs from there on are not what runs"]


def test_a_forward_set_on_the_instance_is_noted():
    # fx traces type(model).forward: the instance's own forward (one more conv) was silently not it
    model = _three_convs()
    extra = nn.Conv2d(4, 4, 3, padding=1)
    model.forward = lambda x: extra(nn.Sequential.forward(model, x))
    a = rflint.analyze(model, 16)
    assert a.warnings == ["Sequential has a forward() set on the instance; rflint analyses Sequential.forward "
                          "instead: if that code changes the tensors, the RFs from there on are not what runs"]


class _WriteRow(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        y = self.a(x)
        y[:, :, 0] = 0
        y[y < 0] = 0
        return self.b(y)


class _WriteInto(nn.Module):
    """A map allocated from sizes, then written: torch.zeros(n, 4, h, w) is a constant once the
    concrete-shapes tracer has answered x.shape."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 5, padding=2), nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        out = torch.zeros(x.shape[0], 4, x.shape[2], x.shape[3])
        out[:, :2] = self.a(x)[:, :2]
        return self.b(out)


class _WriteOver(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.c = nn.Conv2d(3, 4, 5, padding=2), nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        y = self.c(x)
        y[:, :2] = self.a(x)[:, :2]
        return self.b(y)


def test_item_assignment_is_traced():
    # "'Proxy' object does not support item assignment" and a raw fx node for the mask: no analysis
    a = rflint.analyze(_WriteRow(), 16)
    assert [layer.name for layer in a.layers] == ["a", "b"] and a.final_r_min == (5, 5)  # 3, then 3 + 2
    # a's 5x5 output written into zeros: b reads r 5 and makes 7.  The write was run on the real
    # zeros, a constant: a vanished from the graph and the report had no layer, without a word
    a = rflint.analyze(_WriteInto(), 16)
    assert [layer.name for layer in a.layers] == ["a", "b"] and a.final_r_min == (7, 7)
    # written over a 3x3 conv's map: b reads both, 3 and 5, and makes 5 and 7
    a = rflint.analyze(_WriteOver(), 16)
    assert (a.final_r_min, a.final_r_max) == ((5, 5), (7, 7))


class _WrittenThenRead(nn.Module):
    """Writes into a tensor made from sizes and into a buffer, each read by an op before a conv."""

    def __init__(self, into, read):
        super().__init__()
        self.into, self.read = into, read
        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.register_buffer("memory", torch.zeros(1, 4, 16, 16))

    def forward(self, x):
        out = self.memory if self.into == "buffer" else torch.zeros(x.shape[0], 4, x.shape[2], x.shape[3])
        out[:, :2] = self.a(x)[:, :2]
        return self.b(out.relu() + 0 if self.read == "ops" else out)


@pytest.mark.parametrize("into, read", [("zeros", "ops"), ("buffer", "ops"), ("zeros", "module")])
def test_a_written_tensor_read_through_ops_keeps_its_content(into, read):
    # out.relu() ran on the stale zeros (or buffer): a vanished from the graph, b read a constant,
    # and the report had no layer a, without a word; the concrete-shapes tracer ran b on the stale
    # CPU zeros.  a 3, b 3 + 2 = 5
    a = rflint.analyze(_WrittenThenRead(into, read), 16)
    assert [layer.name for layer in a.layers] == ["a", "b"] and a.final_r_min == (5, 5)


def test_a_model_with_item_assignment_truncates_and_runs():
    # the graph's assignment is a function of rflint's: the truncated model runs it like the original
    model = nn.Sequential(_WriteRow(), *[nn.Conv2d(4, 4, 3, padding=1) for _ in range(4)],
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    fixed = rflint.truncate(model, 8)
    assert fixed(torch.randn(2, 3, 8, 8)).shape == (2, 2)


def _float_convs():
    import torch.ao.quantization as q

    return nn.Sequential(q.QuantStub(), nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(4, 4, 3, stride=2, padding=1), q.DeQuantStub())


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")  # torch.ao's own
def test_a_quantized_model_is_told_to_lint_its_float_model():
    # converted, its convs are torch.ao.nn.quantized.Conv2d: "no convolution ...: nothing to lint",
    # exit 0; quantize_dynamic's Linear failed on meta with a caffe2 "fake impl" message
    import torch.ao.quantization as q

    model = _float_convs().eval()
    model.qconfig = q.get_default_qconfig("fbgemm")
    q.prepare(model, inplace=True)
    model(torch.randn(1, 3, 8, 8))
    q.convert(model, inplace=True)
    with pytest.raises(RflintError, match=r"holds quantized layers \(torch\.ao\.nn\.quantized\..*lint the model before "
                                          r"convert\(\) / quantize_dynamic\(\)"):
        rflint.analyze(model, 16)
    dynamic = q.quantize_dynamic(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 14 * 14, 2)),
                                 {nn.Linear}, dtype=torch.qint8)
    with pytest.raises(RflintError, match="holds quantized layers"):
        rflint.analyze(dynamic, 16)


class _QuantizableBlock(nn.Module):
    """torchvision's quantizable basic block: the residual sum through a FloatFunctional, so that
    convert() can swap in its quantized twin."""

    def __init__(self, c):
        super().__init__()
        from torch.ao.nn.quantized import FloatFunctional

        self.conv1, self.conv2 = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)
        self.add_relu = FloatFunctional()

    def forward(self, x):
        return self.add_relu.add_relu(self.conv2(self.conv1(x)), x)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")  # torch.ao's own
@pytest.mark.parametrize("qat", [False, True])
def test_a_quantizable_model_before_convert_is_linted(qat):
    # FloatFunctional lives in torch.ao.nn.quantized but computes on floats: every torchvision
    # quantization model, and prepare_qat of one, was refused as converted.  By hand: stem 3x3 r 3;
    # block 1's convs read 3, 5 (the sum: 3..7); block 2's read 3..7, 5..9, the last layer's out 7..11
    import torch.ao.quantization as q

    model = nn.Sequential(q.QuantStub(), nn.Conv2d(3, 4, 3), _QuantizableBlock(4), _QuantizableBlock(4),
                          q.DeQuantStub())
    if qat:
        model.train()
        model.qconfig = q.get_default_qat_qconfig("fbgemm")
        q.prepare_qat(model, inplace=True)
    a = rflint.analyze(model, 16)
    assert [(layer.r_in_min[0], layer.r_in_max[0]) for layer in a.layers] == [(1, 1), (3, 3), (5, 5), (3, 7), (5, 9)]
    assert (a.final_r_min, a.final_r_max) == ((7, 7), (11, 11))


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")  # torch.ao's own
def test_qat_layers_point_at_the_line_that_made_them(tmp_path, monkeypatch):
    # prepare_qat builds the QAT convs inside torch, called through typing_extensions' @deprecated
    # wrapper: every finding pointed at site-packages/typing_extensions.py, then at the prepare_qat
    # line, where the float layer's ignore comment did not reach; a fused conv + bn as well
    (tmp_path / "qat.py").write_text(textwrap.dedent("""
        import torch.ao.quantization as q
        from torch import nn


        def build():
            model = nn.Sequential(
                nn.Conv2d(3, 4, 3, padding=1),
                nn.BatchNorm2d(4),
                nn.Conv2d(4, 4, 3, padding=1),  # rflint: ignore[RF001]
            )
            model.qconfig = q.get_default_qat_qconfig("fbgemm")
            model.train()
            q.fuse_modules_qat(model, [["0", "1"]], inplace=True)
            q.prepare_qat(model, inplace=True)
            return model
    """))
    monkeypatch.chdir(tmp_path)
    a = rflint.analyze("qat.py:build", 2)  # the second conv reads r 3 > 2 px: RF001, silenced
    assert [(os.path.basename(layer.source.file), layer.source.line) for layer in a.layers] == [("qat.py", 8),
                                                                                                ("qat.py", 10)]
    assert [(layer.name, layer.op) for layer in a.layers] == [("0", "ConvBn2d"), ("2", "Conv2d")]
    report = build_report(a)
    assert "RF001" not in {f.code for f in report.findings} and report.result.suppressed >= 1


class _StemResNet(nn.Module):
    """A 7x7 /2 conv + bn + relu, a 3x3 /2 max-pool, two residual blocks of two 3x3 convs."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1, self.relu = nn.Conv2d(3, 8, 7, stride=2, padding=3), nn.BatchNorm2d(8), nn.ReLU()
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.blocks = nn.ModuleList([nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1))
                                     for _ in range(2)])
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))

    def forward(self, x):
        x = self.pool(self.relu(self.bn1(self.conv1(x))))
        for block in self.blocks:
            x = x + block(x)
        return self.head(x)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")  # torch.ao's own
def test_a_fused_qat_conv_is_one_layer_the_stem_experiment_can_change():
    """torch.ao's fused ConvBnReLU2d is an nn.Sequential too, which fx traced into: its conv was an
    F.conv2d "conv1.conv2d", which RF003 cannot set to stride 1, so the QAT model lost RF003.  By
    hand at 16 px: conv1 r 7 (jump 2), the pool 11 (jump 4), each block's second conv reads
    11 + 8 = 19 > 16: a tail.  With conv1 at stride 1: 7, the pool 9 (jump 2), 9 + 4 = 13 <= 16."""
    import torch.ao.quantization as q

    model = _StemResNet().train()
    q.fuse_modules_qat(model, [["conv1", "bn1", "relu"]], inplace=True)
    model.qconfig = q.get_default_qat_qconfig("fbgemm")
    q.prepare_qat(model, inplace=True)
    a = rflint.analyze(model, 16)
    assert (a.layers[0].name, a.layers[0].op, a.layers[0].r_out_min) == ("conv1", "ConvBnReLU2d", (7, 7))
    [stem] = [f for f in lint(a).findings if f.code == "RF003"]
    assert stem.layer == "conv1" and stem.data["changes"] == ["conv1: stride 2x2 -> 1"] and stem.data["removes_tail"]


class _ChunkedJoin(nn.Module):
    """A 3x3 /4 conv, its channels chunked (fx then traces with concrete shapes), one half through
    a 3x3 /8 conv + BatchNorm and x8 upsampling, joined with the other half."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, 4, 1)
        self.c = nn.Sequential(nn.Conv2d(4, 4, 3, 8, 1), nn.BatchNorm2d(4))
        self.up = nn.Upsample(scale_factor=8)

    def forward(self, x):
        y1, y2 = list(self.a(x).chunk(2, 1))
        return torch.cat([y1, self.up(self.c(y2))], 1)


def test_the_sizes_a_misfit_hint_offers_are_tried_in_eval_mode():
    """The hint's size tries ran an instance in training mode, where the BatchNorm refuses the 1x1
    map of 32 px, so 32 was not offered (the QA pass of real-world architectures: YOLOv8's C2f).
    By hand: the join lines up where the /4 map (floor((H - 1) / 4) + 1) is a multiple of 8: 8 at
    32 px, 10 at 40 (no), 16 from 61 px."""
    model = _ChunkedJoin().train()
    with pytest.raises(RflintError, match="the nearest sizes that run are 32x32 and 61x61$"):
        rflint.analyze(model, 40)
    assert model.training and model.c[1].training  # handed back as it came


def test_a_parametrized_layer_takes_its_layers_shape_rule():
    # orthogonal() of a non-square weight cannot run on meta ("None @ Tensor" in shape propagation),
    # though its output has the plain Linear's shape: conv 3, conv 5, then the 10 logits
    def build():  # a factory: rflint builds it on meta
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1),
                              nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
        torch.nn.utils.parametrizations.orthogonal(model[4])
        return model

    a = rflint.analyze(build, 16)
    assert a.device == "meta"
    assert a.final_r_min == (5, 5) and a.layers[-1].name == "1"


class _LinearPatches(nn.Module):
    """A 4x4 patch embedding written with a Linear on 3 channels' patches, then a conv on 32 channels."""

    def __init__(self):
        super().__init__()
        self.proj, self.conv = nn.Linear(3 * 4 * 4, 32), nn.Conv2d(32, 32, 3, padding=1)

    def forward(self, x):
        b, c, h, w = x.shape
        x = x.view(b, c, h // 4, 4, w // 4, 4).permute(0, 2, 4, 1, 3, 5).reshape(b, h // 4, w // 4, c * 16)
        return self.conv(self.proj(x).permute(0, 3, 1, 2))


class _RgbD(nn.Module):
    def __init__(self):
        super().__init__()
        self.rgb, self.depth, self.out = nn.Conv2d(3, 8, 3), nn.Conv2d(1, 8, 3), nn.Conv2d(8, 8, 3)

    def forward(self, x):
        return self.out(self.rgb(x[:, :3]) + self.depth(x[:, 3:]))


def test_channels_read_from_a_conv_that_does_not_read_the_input_are_suspected():
    # the 32 channels came from conv: the Linear's 48 = 3 * 16 features were blamed on the input size
    # ("the model runs only at the input sizes its head was built for"), and the RGB-D net's x[:, 3:]
    # of 3 channels (none left) gave torch's bare "Invalid channel dimensions"
    guess = "which does not read the input but a map made from it: if the input has others, set --channels"
    with pytest.raises(RflintError) as err:
        rflint.analyze(_LinearPatches(), 32)
    assert str(err.value) == ("input 32x32 does not fit _LinearPatches: proj (Linear) expects 48 input features and "
                              f"gets 512; the input's 32 channels were read from conv (in_channels 32), {guess}")
    with pytest.raises(RflintError) as err:
        rflint.analyze(_RgbD(), 32)
    assert str(err.value) == ("_RgbD: the map reaching depth does not have the channels it takes; the input's 3 "
                              f"channels were read from rgb (in_channels 3), {guess}")
    assert rflint.analyze(_LinearPatches(), 32, channels=3).final_r_min == (12, 12)  # 4, then 4 + 2 * 4
    assert rflint.analyze(_RgbD(), 32, channels=4).final_r_min == (5, 5)


class _NumpyZeros(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        x = self.a(x)
        return self.b(x + torch.from_numpy(np.zeros_like(x.detach().numpy())))


class _Views(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, views):
        return self.b(torch.cat([self.a(views[0]), self.a(views[1])], 1))


def test_numpy_on_a_traced_tensor_and_a_list_input():
    # np.zeros_like(x.numpy()) iterated the proxy: "cannot iterate over ndarray value of numpy"; on
    # values it is a constant added to a's map: b reads 3, makes 5
    a = rflint.analyze(_NumpyZeros(), 16)
    assert a.final_r_min == (5, 5) and a.warnings[0].startswith("forward() branches on tensor values at ")
    # views[1] of the one tensor rflint passes: torch's "index 1 is out of bounds for dimension 0"
    with pytest.raises(RflintError, match=r"forward\(\) takes views\[1\] of its input views: it expects a list or "
                                          r"tuple of tensors"):
        rflint.analyze(_Views(), 16)


def test_a_torch_export_module_is_told_to_give_the_original():
    # its eval() raised NotImplementedError ("Calling eval() is not supported yet"), shown as a crash
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3))
    exported = torch.export.export(model, (torch.randn(1, 3, 16, 16),)).module()
    with pytest.raises(RflintError, match="comes from torch.export .*give rflint the nn.Module it was exported from"):
        rflint.analyze(exported, 16)


def _sizes_tried(monkeypatch, where: str, name: str) -> list:
    """The spatial sizes function ``name`` of module ``where`` (the size hints' probe, the
    clean-size search's input_needs) is called with, filled as the test runs."""
    module = sys.modules[where]  # (by sys.modules: rflint.engine.prepare is also the function)
    original, tried = getattr(module, name), []

    def counted(prepared, shapes, *args, **kwargs):
        tried.append(tuple(shapes[0][2:]))
        return original(prepared, shapes, *args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return tried


class _Period32From64(nn.Module):
    """A skip joined with its 32x pooled and upsampled self (multiples of 32), gated by a 64x64 max
    pool (which vanishes below 64): runs at 64, 96, ..."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        joined = torch.cat([y, F.interpolate(F.max_pool2d(y, 32), scale_factor=32)], 1)
        return joined * F.max_pool2d(y, 64).mean((2, 3), keepdim=True).repeat(1, 2, 1, 1)


def test_the_nearest_sizes_stop_where_the_map_vanishes(monkeypatch):
    # from 50: nothing below runs (32 vanishes in the 64 px pool), 64 above.  Every side from 49 down
    # to 1 was tried (SwinUNETR at 50: 46 re-traces, 19 s); the search down ends at the first side
    # where the map vanishes, 32, and the one up at 64, found among the multiples of 1, 2, 4 ...
    trials = _sizes_tried(monkeypatch, "rflint.engine.size_hints", "probe")
    with pytest.raises(RflintError, match="the nearest size that runs is 64x64$"):
        rflint.analyze(_Period32From64(), 50)
    assert trials and (31, 31) not in trials and len(trials) < 40, trials


def test_the_nearest_sizes_are_the_nearest_also_off_the_multiples():
    # MONAI's UNet with strides 2, 2: 11 -> 6 -> 3 -> up to 6 meets the skip; it runs where
    # ceil(n / 2) is even (8, 11, 12, 15, 16 ...).  Only the multiples of 1, 2, 4 ... were tried
    # when each way had one: "8x8 and 12x12"
    nets = pytest.importorskip("monai.networks.nets")
    with pytest.raises(RflintError) as err:
        rflint.analyze(lambda: nets.UNet(spatial_dims=2, in_channels=1, out_channels=2, channels=(4, 8, 16),
                                         strides=(2, 2)), 9)
    assert str(err.value).endswith("the nearest sizes that run are 8x8 and 11x11")


def test_a_padded_stem_too_small_is_not_a_channels_problem():
    # TF-style padding before the first conv, which so reads no input: torch's "Calculated padded
    # input size per channel" was taken for a channels error ("set --channels").  8 -> 9 -> 4 -> 1,
    # too small for the 3x3; 14 -> 15 -> 7 -> 3 -> 1 runs, 13 -> 14 -> 6 -> 2 -> 0 does not
    model = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(3, 8, 3, stride=2), nn.Conv2d(8, 8, 3, stride=2),
                          nn.Conv2d(8, 8, 3))
    with pytest.raises(RflintError) as err:
        rflint.analyze(model, 8)
    assert str(err.value) == ("input 8x8 is too small for Sequential: the feature map vanishes at layer 3; the smallest "
                              "input that runs is 14x14")


class _ValueBranchFixedHead(nn.Module):
    """Branches on values (traced on real tensors) and has a Linear head built for 32 px."""

    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, padding=1),
                               nn.MaxPool2d(2))
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        y = self.f(x)
        if y.mean() > 0:
            y = y * 2
        return self.fc(y.flatten(1))


def test_size_searches_on_a_model_traced_on_values_stay_near_the_size(monkeypatch):
    # the clean-size search raised the size until it ran, doubling to 16384 px, each trial computing
    # on real tensors: 3 GB allocations and an out-of-memory kill.  On values it stops at 4x (>= 1024)
    tried = _sizes_tried(monkeypatch, "rflint.engine.prepare", "input_needs")
    report = build_report(rflint.analyze(_ValueBranchFixedHead(), 32))
    report.min_clean_input  # noqa: B018  (the search runs here)
    trials = [max(size) for size in tried]
    assert trials and max(trials) < 2048, trials  # (offsets up to 1024 from the candidate)


def test_a_model_whose_kernels_run_over_no_input_axis_says_nothing_was_checked():
    # (batch, time, channels) in, as Conformer code takes it, transposed for its convs: rflint reads
    # the time steps as channels, every conv is head, and the report said "No findings." (exit 0)
    class ChannelsLast(nn.Module):
        def __init__(self):
            super().__init__()
            self.pw, self.dw = nn.Conv1d(16, 16, 1), nn.Conv1d(16, 16, 31, padding=15, groups=16)

        def forward(self, x):
            return self.dw(self.pw(x.transpose(1, 2))).transpose(1, 2)

    a = rflint.analyze(ChannelsLast(), input_shapes=[(1, 200, 16)])
    assert any(w.startswith("no RF layer reads a spatial map") for w in a.warnings)
    assert not any(w.startswith("no RF layer") for w in rflint.analyze(_chain(), 6).warnings)


class _CheckedSize(nn.Module):
    """Two 3x3 convs behind the model's own size check, as monai's SwinUNETR has one."""

    def __init__(self):
        super().__init__()
        self.convs = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1))

    def forward(self, x):
        if any(s % 8 for s in x.shape[2:]):
            raise ValueError(f"spatial dimensions {list(x.shape[2:])} of input image must be divisible by 8.")
        return self.convs(x)


@pytest.mark.parametrize("size, nearest", [((20, 16), "16x16 and 24x16"), ((20, 30), "16x24 and 24x32"), ((4, 4), "8x8")])
def test_a_models_own_size_check_is_quoted_with_the_multiples_that_run(size, nearest):
    # it said "the maps joined at a layer differ in size", and SwinUNETR at 96x96x40 missed 96x96x32
    # (each side was tried as a square: 32x32x32 vanishes in it)
    with pytest.raises(RflintError) as err:
        rflint.analyze(_CheckedSize(), size)
    text = "x".join(map(str, size))
    assert str(err.value) == (f"input {text} does not fit {type(_CheckedSize()).__name__}: its own check says "
                              f"\"spatial dimensions {list(size)} of input image must be divisible by 8\"; "
                              f"{'the nearest sizes that run are' if ' and ' in nearest else 'the nearest size that runs is'} {nearest}")


def test_compiled_forward_and_helpers_are_traced_as_the_code_they_wrap():
    # fx refuses "a dynamo-optimized function": a @torch.compile forward() or helper made the model
    # untraceable (exit 2).  c1 3, a 2x2 max pool 4 (jump 2), c2 8, c3 12; the patch is undone after
    @torch.compile
    def down(x):
        return F.max_pool2d(x, 2)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2, self.c3 = (nn.Conv2d(3 if i == 0 else 4, 4, 3, padding=1) for i in range(3))
            self.down = down

        @torch.compile
        def forward(self, x):
            return self.c3(self.c2(self.down(self.c1(x)))).mean((2, 3))

    compiled_forward = Net.__dict__["forward"]
    a = rflint.analyze(Net(), 16)
    assert a.final_r_min == (12, 12) and a.warnings == []
    assert Net.__dict__["forward"] is compiled_forward


def test_a_tensor_default_argument_is_named_in_the_error():
    # fx writes the default into the code it generates by a name it never defines: the error was
    # "NameError: name '_tensor_constant0' is not defined", naming neither the argument nor a way out
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x, bias=torch.zeros(1)):
            return self.conv(x + bias)

    with pytest.raises(RflintError) as err:
        rflint.analyze(Net(), 16)
    assert ("forward()'s argument bias has a tensor as its default, which torch.fx cannot trace: default it to None "
            "and make the tensor inside forward()") in str(err.value)


def test_a_required_keyword_only_argument_is_named_with_a_way_out():
    # the message said "forward() takes 2 inputs (x, scale); give one --input-shape per input", and
    # a second shape then went to scale as a tensor ("kernel_size must be tuple of ints")
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x, *, scale):
            return self.conv(F.avg_pool2d(x, scale))

    with pytest.raises(RflintError) as err:
        rflint.analyze(Net(), 16)
    assert "forward() needs the keyword-only argument scale, which rflint cannot give" in str(err.value)


def test_a_module_made_inside_forward_is_named_once():
    # fx said "module is not installed as a submodule", twice (symbolic and concrete tracing)
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return nn.Conv2d(4, 4, 3)(self.stem(x))

    with pytest.raises(RflintError) as err:
        rflint.analyze(Net(), 16, channels=3)
    message = str(err.value)
    assert "forward() calls a Conv2d that is no submodule of the model (one made inside forward()" in message
    assert message.endswith("tracing with concrete shapes failed the same way")


class _SpectralNet(nn.Module):
    """A complex conv on the 2-D FFT of a real image: its only parameters are complex, its input real."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, dtype=torch.cfloat)

    def forward(self, x):
        return self.conv(torch.fft.rfft2(x)).abs()


def test_a_complex_model_that_takes_a_real_signal_gets_a_real_input():
    # given a complex input for its complex parameters, rfft2 refused it ("expects a real-valued
    # input"): the other dtype is tried once.  rfft2 mixes both axes (global): the conv is a head
    a = rflint.analyze(_SpectralNet(), 16)
    assert [layer.head for layer in a.layers] == [True]


class _RaisesItself(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        raise RuntimeError("boom")


class _ChecksItsInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        assert x.shape[-1] == 224, "input must be 224 px"
        return self.c(x)


class _Misspelt(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        return self.cc(x)


@pytest.mark.parametrize("model, said", [
    (_RaisesItself, "RuntimeError: boom"),
    (_ChecksItsInput, "AssertionError: input must be 224 px"),
    (_Misspelt, "AttributeError: '_Misspelt' object has no attribute 'cc'"),
])
def test_an_error_of_the_models_own_code_is_not_blamed_on_fx(model, said):
    # "torch.fx cannot trace Raises: RuntimeError: boom; tracing with concrete shapes failed the same
    # way": the model's code raised it, whatever rflint traced it with; the line is the model's
    import inspect

    line = next(i for i, text in enumerate(inspect.getsource(model).splitlines())
                if "raise RuntimeError" in text or "assert x.shape" in text or "self.cc(x)" in text)
    where = f"{os.path.relpath(__file__)}:{inspect.getsourcelines(model)[1] + line}"
    with pytest.raises(RflintError) as err:
        rflint.analyze(model(), 32)
    assert str(err.value) == f"run on tensors of the input's shape, the model's code at {where} raised {said}"
    assert "torch.fx" not in str(err.value)


def test_a_bare_assert_of_the_models_is_said_without_a_message(tmp_path):
    # "raised AssertionError: AssertionError".  (Written to a file: pytest rewrites the asserts of
    # test modules, and gives them a message.)
    (tmp_path / "net.py").write_text("import torch.nn as nn\n\n\nclass Net(nn.Module):\n"
                                     "    def __init__(self):\n        super().__init__()\n"
                                     "        self.c = nn.Conv2d(3, 8, 3)\n\n"
                                     "    def forward(self, x):\n        assert x.shape[-1] == 224\n"
                                     "        return self.c(x)\n")
    with pytest.raises(RflintError) as err:
        rflint.analyze(f"{tmp_path / 'net.py'}:Net", 32)
    assert str(err.value).endswith("net.py:10 raised AssertionError (without a message)")


class _BranchesThatNeverMeet(nn.Module):
    """A 3x3/2 conv without padding (n -> (n - 3) // 2 + 1) beside a padded 3x3 (n -> n): the two
    maps differ at every n > 1, so no input size fixes the join."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, stride=2)
        self.b = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        return torch.cat([self.a(x), self.b(x)], 1)


class _LinesUpAt256(nn.Module):
    """Eight 3x3/2 convs (n -> ceil(n / 2) each), upsampled by 256 and added to the full map: the
    two meet where n is a multiple of 256 only (400 -> 2 -> 512)."""

    def __init__(self):
        super().__init__()
        self.down = nn.Sequential(*[nn.Conv2d(3, 3, 3, stride=2, padding=1) for _ in range(8)])
        self.up = nn.Upsample(scale_factor=256)

    def forward(self, x):
        return x + self.up(self.down(x))


def test_a_join_no_input_size_can_fix_does_not_ask_for_another_size():
    # it said "the input must line up with the downsampling before the join", with no size to offer
    with pytest.raises(RflintError) as err:
        rflint.analyze(_BranchesThatNeverMeet(), 16)
    message = str(err.value)
    assert message.startswith("_BranchesThatNeverMeet: the maps joined at cat differ in size at 16x16, at every "
                              "input size within 64 px of it and at its next multiple of 2, 4, 8, ... up to 4096 px")
    assert "no input size makes up for" in message and "must line up" not in message
    # a model that lines up at multiples of 256 only, further than 64 px away: it was told no size fits
    with pytest.raises(RflintError) as err:
        rflint.analyze(_LinesUpAt256(), 400)
    assert str(err.value) == ("input 400x400 does not fit _LinesUpAt256: the maps joined at add differ in size (the "
                              "input must line up with the downsampling before the join); it runs at 512x512")
    # a U-Net at 30 joins maps that line up at multiples of its downsampling: that hint stays
    with pytest.raises(RflintError) as err:
        rflint.analyze("zoo:unet", 30)
    assert "must line up with the downsampling before the join); the nearest sizes that run are" in str(err.value)


class _ChannelsLastSequence(nn.Module):
    """forward(x) with x (batch, length, 16): a Linear over the last axis, then a Conv1d over the length."""

    def __init__(self):
        super().__init__()
        self.l = nn.Linear(16, 8)
        self.c = nn.Conv1d(8, 8, 3, padding=1)

    def forward(self, x):
        return self.c(self.l(x).transpose(1, 2)).mean(2)


@pytest.mark.parametrize("channels", [None, 16])
def test_a_linear_on_the_input_itself_says_the_model_is_channels_last(channels):
    # "set --channels", then with --channels 16 "a head built for one size, such as 16": advice in a
    # circle for a model that takes (batch, length, channels)
    with pytest.raises(RflintError) as err:
        rflint.analyze(_ChannelsLastSequence(), 100, channels=channels)
    assert str(err.value) == ("_ChannelsLastSequence: l (Linear) reads the input's last axis (100) as its 16 input "
                              "features: the model takes its input channels-last, (batch, ..., 16); rflint reads an "
                              "input as (batch, channels, *spatial), so it cannot analyse a model that takes its "
                              "positions before its channels")


class _ListOfImages(nn.Module):
    """torchvision's detection models: forward(images) takes a list of (C, H, W) tensors."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, images):
        return [self.conv(image[None]) for image in images]


def test_iterating_over_the_input_says_a_list_of_images_is_expected():
    # was "cannot iterate over Tensor value of images"
    with pytest.raises(RflintError, match=r"forward\(\) iterates over its input images: it expects a list of tensors "
                                          r"\(a detection model's images\).*shape \(1, 3, 16, 16\).*model\.backbone"):
        rflint.analyze(_ListOfImages(), 16)


class _ChecksItsSize(nn.Module):
    """torchvision's ViT: the message is formatted while fx traces, with the proxy in it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 4, stride=4)

    def forward(self, x):
        h = x.shape[2]
        torch._assert(h == 224, f"Wrong image height! Expected 224 but got {h}!")
        return self.conv(x)


def test_a_size_check_formatted_while_tracing_names_the_size():
    with pytest.raises(RflintError, match=r"Expected 224 but got 32!") as err:
        rflint.analyze(_ChecksItsSize(), 32)
    assert "Proxy(" not in str(err.value)


def test_a_message_cut_at_its_line_break_keeps_its_sentence():
    from rflint.errors import first_sentence

    fx_words = NotImplementedError("'immutable_list' object does not support mutation. If you are attempting to "
                                   "modify the kwargs or args of a torch.fx.Node object,\ninstead create a new copy "
                                   "of it and assign the copy to the node:\n    new_args = ... # copy and mutate\n")
    assert first_sentence(fx_words).endswith("a torch.fx.Node object, instead create a new copy of it and assign the "
                                             "copy to the node:")
    assert first_sentence(RuntimeError("one line.\nanother")) == "one line."
    assert first_sentence(ValueError("")) == "ValueError"
