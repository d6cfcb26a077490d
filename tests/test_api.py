"""The Python API leaves the caller's model and process as it found them (helper-found defects)."""

import sys
import threading

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import rflint
from rflint.errors import RflintError
from rflint.rules import Settings, lint
from rflint.zoo import ZOO


def _net():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Dropout(0.5),
                         *(nn.Conv2d(8, 8, 3, padding=1) for _ in range(4)), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 10))


def test_the_callers_training_flags_are_given_back():
    net = _net().train()
    rflint.analyze(net, 6)
    fixed = rflint.truncate(net, 6)
    assert all(m.training for m in net.modules())  # was: all False, BatchNorm frozen mid-training
    # the fixed copy comes back in the caller's mode: ready to fine-tune, BatchNorm not frozen
    assert fixed.training and not rflint.truncate(_net().eval(), 6).training


def test_truncate_leaves_the_random_stream_alone():
    # the new classifier's initialisation drew from the global generator
    net = _net()  # its own layers' initialisation draws, of course
    torch.manual_seed(0)
    rflint.truncate(net, 6)
    after = torch.rand(3)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(3))


def test_truncate_copies_the_layers_it_keeps():
    net = _net()
    fixed = rflint.truncate(net, 6)
    assert fixed.get_submodule("0") is not net[0]
    assert torch.equal(fixed.get_submodule("0").weight, net[0].weight)
    with torch.no_grad():
        fixed.get_submodule("0").weight.add_(1.0)
    assert not torch.equal(fixed.get_submodule("0").weight, net[0].weight)


def test_a_lazy_layer_of_the_callers_model_stays_lazy():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.LazyConv2d(8, 3, padding=1))
    a = rflint.analyze(net, 16)
    assert [layer.r_out_min for layer in a.layers] == [(3, 3), (5, 5)]
    assert type(net[2]).__name__ == "LazyConv2d"
    assert net(torch.randn(1, 3, 16, 16)).shape == (1, 8, 16, 16)  # still materialises on its first call


def test_a_value_dependent_branch_leaves_the_callers_random_stream_alone():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x):
            return self.conv(x) if x.mean() > 0 else -self.conv(x)

    net = Branchy()  # (building it draws random weights)
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    rflint.analyze(net, 8)
    assert torch.equal(torch.rand(3), expected)


def test_analyses_from_several_threads_at_once():
    # torch.fx's patches of nn.Module.__call__ (and rflint's of torch.as_tensor) were saved and
    # restored by each thread's trace on its own: false errors, and patches left behind
    expected = [a.final_r_max for a in (rflint.analyze(f"zoo:{n}", 64) for n in ("resnet18", "vgg16", "unet"))]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    results, errors = {}, []

    def work(k):
        try:
            results[k] = [rflint.analyze(f"zoo:{n}", 64).final_r_max for n in ("resnet18", "vgg16", "unet")]
        except Exception as err:  # noqa: BLE001 - collected for the assertion
            errors.append(err)

    try:
        threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
    finally:
        sys.setswitchinterval(interval)
    assert errors == [] and list(results.values()) == [expected] * 3
    assert torch.as_tensor.__module__ != "rflint.trace.tracing" and nn.Conv2d(1, 1, 1)(torch.ones(1, 1, 2, 2)).shape


def test_analyze_inside_a_factory_does_not_deadlock():
    def inner():
        return nn.Sequential(nn.Conv2d(3, 8, 3))

    def outer():
        rflint.analyze(inner, 16)
        return nn.Sequential(nn.Conv2d(3, 8, 3))

    done = []
    thread = threading.Thread(target=lambda: done.append(rflint.analyze(outer, 16)), daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert done and done[0].layers[0].r_out_min == (3, 3)


@pytest.mark.parametrize("bad", ["64", 32.5, True, [32, "x"]])
def test_sizes_that_are_not_whole_numbers_are_refused(bad):
    with pytest.raises(RflintError, match="input size must be a whole number or a tuple of them"):
        rflint.analyze(_net(), bad)


def test_numpy_integers_are_sizes():
    import numpy as np

    assert rflint.analyze(_net(), np.int64(6)).input_size == (6, 6)
    assert rflint.analyze(_net(), (np.int32(6), 8)).input_size == (6, 8)


def test_an_unbatched_input_shape_for_a_2d_model_is_an_error():
    # (3, 32, 32) was analysed as a 1-D input (input_size (32,), no RF on the H axis)
    with pytest.raises(RflintError, match=r"expects 2 spatial axes \(its first conv is 2-D\), got input shape 3,32,32"):
        rflint.analyze(_net(), input_shapes=[(3, 32, 32)])


def test_an_input_without_channels_is_advised_in_the_apis_words():
    with pytest.raises(RflintError, match=r"got \[1, 100\]; .* returns model\(x\[:, 0\]\), with input_shapes=\[\(1, 1, L\)\]$"):
        rflint.analyze(_net(), input_shapes=[(1, 100)])


class _PadsOddWidths(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):  # a branch on the input's shape: the symbolic trace fails
        if x.shape[-1] % 2:
            x = F.pad(x, (0, 1))
        return self.conv(x)


def test_an_unbatched_input_shape_is_an_error_where_the_symbolic_trace_fails_too():
    # the trace at the shape given shows the first conv reading the input itself: its rank is the input's
    with pytest.raises(RflintError, match=r"expects 2 spatial axes \(its first conv is 2-D\), got input shape 3,32,32"):
        rflint.analyze(_PadsOddWidths(), input_shapes=[(3, 32, 32)])
    assert rflint.analyze(_PadsOddWidths(), input_shapes=[(1, 3, 32, 31)]).input_size == (32, 31)


def test_input_shapes_give_the_channels_and_remove_stem_takes_a_name():
    pools = nn.Sequential(nn.MaxPool2d(2), nn.AvgPool2d(2))  # no conv to read the channels from
    assert rflint.analyze(pools, input_shapes=[(1, 3, 16, 16)]).channels == 3
    stemless = rflint.remove_stem("zoo:resnet18", 32, layers="conv1")  # was split into c, o, n, v, 1
    assert stemless.get_submodule("conv1").stride == (1, 1)


def test_a_non_model_is_named_by_its_value():
    with pytest.raises(RflintError, match=r"^42 is an int, not an nn.Module, class or factory$"):  # "int is a int"
        rflint.analyze(42, 32)
    assert rflint.analyze(_net(), 6).target == "Sequential"  # a module instance: its class, as before


def _gap_linear():
    """A plain chain with a tail (a stride-2 conv, an 8x8 pool, eight 3x3 convs): no separate stem."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.MaxPool2d(8),
                         *(nn.Conv2d(8, 8, 3, padding=1) for _ in range(8)), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 10))


class _Needs:
    """A class whose constructor needs an argument."""

    def __new__(cls, width):
        return nn.Sequential(nn.Conv2d(3, width, 3))


@pytest.mark.parametrize("call, advice", [
    (lambda: rflint.analyze(_net()), "(pass input_size, e.g. input_size=224)"),
    (lambda: rflint.prepare(_net()).at(None), "(pass input_size, e.g. input_size=224)"),
    (lambda: rflint.analyze(_net(), 16, channels=5), "got 5 (pass channels=3)"),
    (lambda: rflint.prepare(_net(), channels=5).at(16), "got 5 (pass channels=3)"),
    (lambda: rflint.truncate(_net(), 16, channels=5), "got 5 (pass channels=3)"),
    (lambda: rflint.analyze(_Needs, 16), "not given: width (pass them in kwargs={'width': ...})"),
    # a plain chain has no separate stem (rf-semantics.md §5): nothing to remove unless named
    (lambda: rflint.remove_stem(_gap_linear(), 32), "(name them with layers=[...] to force it)"),
])
def test_api_errors_advise_arguments_not_flags(call, advice):
    # the engine words its advice for the command line ("set --channels 3"); a Python caller has
    # no flags to set
    with pytest.raises(RflintError) as err:
        call()
    assert advice in str(err.value) and "--" not in str(err.value)


def test_the_engine_itself_keeps_the_command_lines_words():
    from rflint.engine import analyze

    with pytest.raises(RflintError, match=r"\(set --channels 3\)"):
        analyze(_net(), 16, channels=5)


def test_a_lazy_first_conv_asks_for_the_channels():
    # a LazyConv2d has in_channels 0 until its first call: it said "channels must be positive, got 0"
    net = nn.Sequential(nn.LazyConv2d(8, 3), nn.Conv2d(8, 8, 3))
    with pytest.raises(RflintError, match=r"its first conv is lazy .*; pass channels$"):
        rflint.analyze(net, 16)
    assert rflint.analyze(net, 16, channels=5).layers[0].r_out_min == (3, 3)


def _lazy_net():
    return nn.Sequential(nn.LazyConv2d(16, 3, 2, 1), nn.ReLU(), *[nn.Conv2d(16, 16, 3, padding=1) for _ in range(6)],
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))


@pytest.mark.parametrize("model", [_lazy_net, _lazy_net()], ids=["factory", "instance"])
def test_truncating_a_model_with_a_lazy_first_layer(model):
    # the fixed model needs real weights, which a lazy layer gets at its first call: the factory
    # crashed in the shape pass, the instance came back with weights on the meta device
    fixed = rflint.truncate(model, 8, channels=3)
    assert all(p.device.type == "cpu" for p in fixed.parameters())
    assert fixed(torch.zeros(1, 3, 8, 8)).shape == (1, 10)
    if isinstance(model, nn.Module):
        assert type(model[0]) is nn.LazyConv2d  # the caller's stays lazy


def test_too_small_hint_raises_only_the_sides_that_are_too_small():
    """Two (1, 2, 2) pools and a 2x2x2 pool: H and W need 8 (8 -> 4 -> 2 -> 1), D needs 2.  At
    1x8x8 only D is too small: the smallest cube that runs is 8x8x8, but 2x8x8 runs too (the hint
    said 8x8x8 alone, asking for four times the slices an anisotropic patch needs)."""
    model = nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.MaxPool3d((1, 2, 2)), nn.MaxPool3d((1, 2, 2)),
                          nn.MaxPool3d(2), nn.Conv3d(4, 4, 1))
    with pytest.raises(RflintError) as err:
        rflint.analyze(model, (1, 8, 8))
    assert "the smallest input that runs is 8x8x8 as a cube, or 2x8x8 raising only the sides that are too small" \
        in str(err.value)


def test_a_3d_average_pool_larger_than_its_map_is_a_size_too_small():
    """avg_pool3d words it "input image (T: 2 H: 6 W: 6) smaller than kernel size", which was shown
    raw (torchvision's S3D at 16x112x112).  By hand: the 3x3x3 conv leaves 2x6x6 of 4x8x8, the
    (2, 7, 7) pool needs 7 on H and W: 9x9 in, T's 4 is enough."""
    model = nn.Sequential(nn.Conv3d(3, 4, 3), nn.AvgPool3d((2, 7, 7)))
    with pytest.raises(RflintError) as err:
        rflint.analyze(model, (4, 8, 8))
    assert "is too small" in str(err.value) and "the smallest input that runs is 9x9x9 as a cube, or 4x9x9 raising " \
        "only the sides that are too small" in str(err.value)


def test_a_forward_with_kwargs_takes_one_input():
    # forward(self, x, **kwargs): fx's "**kwargs" placeholder was counted as a second input to give
    # a shape for ("forward() takes 2 inputs (x, **kwargs)"); conv 3, conv 5
    class Kw(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x, **kwargs):
            return self.b(self.a(x))

    assert rflint.analyze(Kw(), 32).final_r_min == (5, 5)
    assert rflint.analyze(Kw(), input_shapes=[(1, 3, 32, 32)]).final_r_min == (5, 5)


def test_a_forward_that_takes_a_dict_is_told_so():
    # batch["image"] on the input tensor: torch read the key as a sequence of indices (a two-line
    # UserWarning, then "too many indices for tensor of dimension 4")
    class DictIn(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, batch):
            return self.conv(batch["image"])

    with pytest.raises(RflintError, match=r"forward\(\) indexes a tensor with the key 'image': it expects a dict"):
        rflint.analyze(DictIn(), 32)


def _mutated(settings, **fields):
    for name, value in fields.items():
        setattr(settings, name, value)
    return settings


@pytest.mark.parametrize("call, message", [
    (lambda: rflint.analyze(_net(), 16, channels="3"), "analyze(): channels must be a positive whole number"),
    (lambda: rflint.analyze(_net(), input_shapes=["1399"]), "analyze(): input_shapes must be a list of full shapes"),
    (lambda: rflint.analyze(_net(), input_shapes=[(1, 3, 32.5, 32)]), "input_shapes must be a list of full shapes"),
    (lambda: rflint.analyze(_net(), input_shapes=(1, 3, 32, 32)), "input_shapes must be a list of full shapes"),
    (lambda: rflint.analyze(_net(), 64, input_shapes=[(1, 3, 32, 32)]), "give either input_size or input_shapes"),
    # at() read the shapes and dropped the size: a 32x32 analysis asked for at 64
    (lambda: rflint.prepare(_net()).at(64, input_shapes=[(1, 3, 32, 32)]), "at(): give either a size or input shapes"),
    # at() took what analyze() refuses: a raw ValueError for "1,3,32,32", and (1, 3, 32.9, 32) analysed at 32x32
    (lambda: rflint.prepare(_net()).at(input_shapes=["1,3,32,32"]), "at(): input_shapes must be a list of full shapes"),
    (lambda: rflint.prepare(_net()).at(input_shapes=[(1, 3, 32.9, 32)]), "at(): input_shapes must be a list of full"),
    (lambda: rflint.prepare(_net()).at(input_shapes=[(1, 3, "48", 48)]), "at(): input_shapes must be a list of full"),
    # the CLI refuses --channels 1 with --input-shape 1,3,...; analyze() used 3 without a word
    (lambda: rflint.analyze(_net(), input_shapes=[(1, 3, 32, 32)], channels=1),
     "analyze(): input_shapes gives the first input 3 channels but channels is 1"),
    # the CLI and [tool.rflint] refuse these; Settings took them and RF007 fired on every branch
    (lambda: Settings(min_tail_layers=-5), "Settings: min_tail_layers must be a whole number >= 1, got -5"),
    (lambda: Settings(dominance_ratio=0.5), "Settings: dominance_ratio must be a number >= 1, got 0.5"),
    (lambda: Settings(dominance_ratio=float("nan")), "dominance_ratio must be a number >= 1, got nan"),
    (lambda: lint(rflint.analyze(_net(), 16), _mutated(Settings(), min_tail_layers=0)), "min_tail_layers must be"),
    (lambda: rflint.analyze(_Needs, 16, kwargs="width=8"), "analyze(): kwargs must be a dict"),
    (lambda: rflint.remove_stem(_net(), 16, layers=5), "remove_stem(): layers must be layer names"),
    (lambda: rflint.truncate(_net(), 16, settings={"min_tail_layers": 2}), "truncate(): settings must be a rflint"),
    (lambda: lint(_net()), "lint(): analysis must be what rflint.analyze returns, got Sequential"),
    # a code where the rules go: "'str' object has no attribute 'check'"
    (lambda: lint(rflint.analyze(_net(), 16), Settings(), "RF001"), "lint(): rules must be a list of rules"),
    (lambda: lint(rflint.analyze(_net(), 16), None, 5), "lint(): rules must be a list of rules"),
])
def test_api_arguments_of_the_wrong_type_are_named(call, message):
    # each was an internal error ("'<=' not supported between 'str' and 'int'", "'dict' object has
    # no attribute 'min_tail_layers'"), or worse, read: "1399" became a 9x9 input
    with pytest.raises(RflintError) as err:
        call()
    assert message in str(err.value)


def test_a_model_analysed_in_overlapping_calls_stays_in_eval_until_the_last_ends():
    # two threads on one instance: the second saw eval everywhere and saved nothing; when the first
    # ended it gave training back while the second still traced (its training branch, 2 in 7 runs)
    from rflint.trace.loading import evaluating, load_model

    model = _net().train()
    loaded = load_model(model)
    first, second = evaluating(loaded), evaluating(loaded)
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not any(m.training for m in model.modules())  # the second analysis still runs
    second.__exit__(None, None, None)
    assert all(m.training for m in model.modules())


def test_one_model_analysed_and_linted_in_two_threads():
    # RF004 read module.weight while the other thread traced: torch.fx's patched __getattr__ gave a
    # Proxy ("unsupported format string passed to Proxy.__format__", about a call in four)
    import threading

    model, errors, codes = ZOO["resnet18"].factory(), [], []

    def work():
        for _ in range(15):
            try:
                codes.append(tuple(sorted(f.code for f in lint(rflint.analyze(model, 32)).findings)))
            except Exception as err:  # noqa: BLE001 - any failure is the bug
                errors.append(repr(err))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(set(codes)) == 1


def test_a_fixed_model_keeps_each_modules_mode():
    # a model training with frozen BatchNorms: truncate and remove_stem gave them back in train mode
    model = ZOO["resnet18"].factory().train()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    for fixed in (rflint.truncate(model, 32), rflint.remove_stem(model, 32)):
        norms = [m for m in fixed.modules() if isinstance(m, nn.BatchNorm2d)]
        assert fixed.training and norms and not any(m.training for m in norms)


def test_a_model_instance_is_located_without_compiling_its_file(monkeypatch):
    # inspect.getsourcelines(type(model)) ast-parses the whole file: compile() from two threads at
    # once fails in CPython 3.11 ("AST constructor recursion depth mismatch"), which the two-thread
    # test above hit about one run in six; the class's own lines say where it is
    import ast

    from rflint.trace.loading import load_model

    parsed, parse = [], ast.parse
    model = ZOO["resnet18"].factory()
    monkeypatch.setattr(ast, "parse", lambda *args, **kwargs: parsed.append(args[1:2]) or parse(*args, **kwargs))
    loaded = load_model(model)
    monkeypatch.undo()
    assert parsed == []
    assert loaded.factory_source.file.endswith("rflint/zoo/resnet.py")
    assert open(loaded.factory_source.file).read().splitlines()[loaded.factory_source.line - 1].startswith("class ResNet")


def test_a_prepared_lazy_model_analyses_every_size():
    # p.at(64) after p.at(32): the LazyLinear had taken 32 px's features, and 64 "did not fit"
    p = rflint.prepare(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(2), nn.Flatten(), nn.LazyLinear(10)))
    assert p.at(32).final_r_min == p.at(64).final_r_min == p.at(32).final_r_min == (4, 4)  # conv 3, pool 3 + 1


def test_a_factory_that_pickles_its_model_pickles_no_rflint():
    # while a factory runs, rflint gives deep copies their layers' lines through nn.Module's
    # __reduce_ex__; a torch.save in the factory wrote rflint's rebuild function into the user's file
    import copy
    import io
    import pickle

    saved = []

    def build():
        net = nn.Sequential(nn.Conv2d(3, 4, 3), copy.deepcopy(nn.Conv2d(4, 4, 3)))
        buffer = io.BytesIO()
        torch.save(net, buffer)
        saved.append(buffer.getvalue())
        return net

    rflint.analyze(build, 16)
    assert b"rflint" not in saved[0]
    assert b"rflint" not in pickle.dumps(nn.Conv2d(3, 4, 3))  # after the factory too


def test_the_readmes_python_api_example_runs():
    # the README's example is the API's first documentation: it must run as written (its one
    # placeholder, the model, filled in)
    import contextlib
    import io
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    code = code.replace("model_or_factory_or_target", '"zoo:resnet18"')
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {})
    lines = printed.getvalue().splitlines()
    assert lines[0].startswith("conv1 (7, 7) (2, 2) (1, 1) (7, 7)")  # ResNet-18's stem conv, by hand
    assert "RF002 layer3.1.conv2 predicted tail at 32x32 px" in printed.getvalue()
