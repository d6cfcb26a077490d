"""The arithmetic shape rules agree with torch's own meta kernels, and step aside whenever torch would
raise: seeded random layer configurations and input sizes, the oracle being the layer called on a
meta tensor."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from rflint.trace.metaspec import is_tensor_like
from rflint.trace.shape_rules import MODULE_SHAPE_RULES


def _torch_shape(module: nn.Module, x: torch.Tensor):
    try:
        out = module(x)
    except Exception:  # noqa: BLE001  (torch rejects this call: the rule must not answer)
        return None
    return tuple(out.shape) if isinstance(out, torch.Tensor) else "not a tensor"


def _torch_error(module: nn.Module, x: torch.Tensor) -> str:
    try:
        module(x)
    except Exception as err:  # noqa: BLE001
        return str(err)
    return ""


def _check(module: nn.Module, shape: tuple[int, ...], dtype=torch.float32) -> str:
    x = torch.empty(shape, device="meta", dtype=dtype)
    expected = _torch_shape(module, x)
    try:
        got = MODULE_SHAPE_RULES[type(module)](module, (x,), {})
    except RuntimeError as err:  # a window that leaves no output: torch's error, in torch's words
        assert expected is None, f"{module} on {shape}: torch gives {expected}, the rule raised {err}"
        if type(module) is not nn.MaxPool1d:  # max_pool1d words it differently (shape_rules.pool_too_small)
            assert str(err) == _torch_error(module, x), module
        return "raised"
    got_shape = tuple(got.shape) if got is not None else None
    if got is not None:
        assert got.is_meta and got.dtype == dtype, module
    if expected is None or expected == "not a tensor":
        assert got is None, f"{module} on {shape}: torch rejects it, the rule answered {got_shape}"
        return "declined"
    assert got_shape in (None, expected), f"{module} on {shape}: torch {expected}, rule {got_shape}"
    return "answered" if got is not None else "declined"


def _sizes(rng: random.Random, n: int) -> tuple[int, ...]:
    return tuple(rng.choice([1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 32]) for _ in range(n))


def _conv(rng: random.Random, n: int, transposed: bool) -> nn.Module:
    cls = ([nn.Conv1d, nn.Conv2d, nn.Conv3d], [nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d])[transposed][n - 1]
    groups = rng.choice([1, 1, 2])
    k = tuple(rng.randint(1, 5) for _ in range(n))
    s = tuple(rng.randint(1, 3) for _ in range(n))
    d = tuple(rng.randint(1, 2) for _ in range(n))
    kw = dict(stride=s, dilation=d, groups=groups)
    if transposed:
        kw["padding"] = tuple(rng.randint(0, 2) for _ in range(n))
        kw["output_padding"] = tuple(rng.randint(0, min(si, di) - 1) if max(si, di) > 1 else 0 for si, di in zip(s, d))
    else:
        kw["padding"] = rng.choice([0, 1, 2, tuple(rng.randint(0, 3) for _ in range(n)), "valid"]
                                   + (["same"] if s == (1,) * n else []))
        kw["padding_mode"] = rng.choice(["zeros", "zeros", "zeros", "reflect", "circular"])
        if kw["padding"] == "valid" or kw["padding_mode"] == "reflect" and kw["padding"] == "same":
            kw["padding_mode"] = "zeros"
    return cls(2 * groups, 4 * groups, k, device="meta", **kw)


def _pool(rng: random.Random, n: int) -> nn.Module:
    k = rng.randint(1, 4)
    kw = dict(stride=rng.choice([None, 1, 2, 3]), padding=rng.randint(0, 2), ceil_mode=rng.random() < 0.5)
    if rng.random() < 0.5:
        return [nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d][n - 1](k, dilation=rng.randint(1, 2), **kw)
    return [nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d][n - 1](k, **kw)


def _lp_pool(rng: random.Random, n: int) -> nn.Module:
    cls = [nn.LPPool1d, nn.LPPool2d, nn.LPPool3d][n - 1]
    return cls(rng.choice([1, 2, 3.0]), rng.randint(1, 4), stride=rng.choice([None, 1, 2, 3]), ceil_mode=rng.random() < 0.5)


def _adaptive(rng: random.Random, n: int) -> nn.Module:
    cls = rng.choice([[nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d],
                      [nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d]])[n - 1]
    size = rng.choice([1, 3, 7, tuple(rng.choice([None, 1, 2, 5]) for _ in range(n))])
    return cls(size)


@pytest.mark.parametrize("kind", ["conv", "transposed", "pool", "adaptive", "lp_pool"])
def test_spatial_rules_match_torch_meta(kind):
    rng = random.Random(f"shape-rules-{kind}")
    outcomes = {"answered": 0, "declined": 0, "raised": 0}
    for _ in range(400):
        n = rng.randint(1, 3)
        module = {"conv": lambda: _conv(rng, n, False), "transposed": lambda: _conv(rng, n, True),
                  "pool": lambda: _pool(rng, n), "adaptive": lambda: _adaptive(rng, n),
                  "lp_pool": lambda: _lp_pool(rng, n)}[kind]()
        channels = module.in_channels if hasattr(module, "in_channels") else 3
        if rng.random() < 0.1:
            channels += 1  # a channel mismatch torch must reject
        outcomes[_check(module, (2, channels, *_sizes(rng, n)))] += 1
    # the rules must actually answer most valid calls (else the fast path is dead code), and the
    # configurations must include calls torch rejects (else the declining is untested), among them
    # windows that leave nothing (convs and pools raise torch's error themselves)
    # (adaptive pools take any channels and almost any size: only the 1-D None case is declined)
    # (an LP pool that leaves nothing is declined, torch saying so, not raised by the rule)
    assert outcomes["answered"] > 150 and outcomes["declined"] > (1 if kind == "adaptive" else 20), outcomes
    assert outcomes["raised"] > (10 if kind in ("conv", "pool") else -1), outcomes


def test_rules_decline_what_they_do_not_model():
    conv = nn.Conv2d(3, 8, 3, device="meta")
    assert _check(conv, (3, 8, 8)) == "declined"  # unbatched
    assert _check(conv, (1, 3, 8, 8), dtype=torch.float16) == "declined"  # dtype differs from the weights
    assert _check(conv, (1, 3, 2, 2)) == "raised"  # the map vanishes: torch's error
    assert _check(nn.MaxPool2d(2, return_indices=True), (1, 3, 8, 8)) == "declined"
    assert _check(nn.MaxPool2d(2, padding=2), (1, 3, 8, 8)) == "declined"  # pad > kernel/2
    assert _check(nn.Conv2d(3, 8, 3, padding=1), (1, 3, 8, 8)) == "answered"


def test_linear_and_flatten():
    assert _check(nn.Linear(12, 5, device="meta"), (2, 7, 12)) == "answered"
    assert _check(nn.Linear(12, 5, device="meta"), (2, 7, 11)) == "declined"
    for start, end in [(1, -1), (0, -1), (2, 3), (1, 1), (-2, -1), (3, 1)]:
        _check(nn.Flatten(start, end), (2, 3, 4, 5))


def test_elementwise_broadcasting_matches_torch():
    import operator

    from rflint.trace.shape_rules import FUNCTION_SHAPE_RULES, elementwise

    functions = sorted((f for f, rule in FUNCTION_SHAPE_RULES.items() if rule is elementwise), key=str)
    rng = random.Random("shape-rules-elementwise")
    outcomes = {"answered": 0, "declined": 0, "raised": 0}
    for _ in range(400):
        fn = rng.choice(functions)
        rank = rng.randint(0, 4)
        a = tuple(rng.choice([1, 2, 3]) for _ in range(rank))
        b = tuple(rng.choice([1, 2, 3, d]) for d in a[rng.randint(0, rank):])  # a suffix, maybe mismatched
        dtypes = [torch.float32, torch.float32, torch.float16, torch.int64]
        x = torch.empty(a, device="meta", dtype=rng.choice(dtypes))
        y = rng.choice([torch.empty(b, device="meta", dtype=rng.choice(dtypes)), 2, 0.5, True])
        args = (x, y) if rng.random() < 0.7 else (y, x)
        try:
            expected = fn(*args)
        except Exception:  # noqa: BLE001
            expected = None
        got = elementwise(*args)
        if got is None:
            outcomes["declined"] += 1
            continue
        outcomes["answered"] += 1
        assert expected is not None, (fn, args)
        assert (tuple(got.shape), got.dtype) == (tuple(expected.shape), expected.dtype), (fn, args)
    assert outcomes["answered"] > 100 and outcomes["declined"] > 50, outcomes
    assert operator.add in functions


def test_interpolation_matches_torch():
    import torch.nn.functional as F

    from rflint.trace.shape_rules import interpolated

    rng = random.Random("shape-rules-interpolate")
    outcomes = {"answered": 0, "declined": 0, "raised": 0}
    modes = ["nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area", "bogus"]
    for _ in range(500):
        n = rng.randint(1, 3)
        x = torch.empty((1, 2, *_sizes(rng, n)), device="meta")
        kw = {"mode": rng.choice(modes)}
        if rng.random() < 0.5:
            kw["scale_factor"] = rng.choice([2, 0.5, 1.7, 3, (2,) * n, (1.5,) * n, (2,) * (n + 1), -1])
        else:
            kw["size"] = rng.choice([4, 9, (5,) * n, (3,) * (n + 1)])
        if rng.random() < 0.3:
            kw["align_corners"] = rng.random() < 0.5
        try:
            expected = tuple(F.interpolate(x, **kw).shape)
        except Exception:  # noqa: BLE001
            expected = None
        got = interpolated(x, **kw)
        if got is None:
            outcomes["declined"] += 1
            continue
        outcomes["answered"] += 1
        assert expected == tuple(got.shape), kw
        if "scale_factor" in kw or kw["mode"] not in ("linear", "bilinear", "bicubic", "trilinear"):
            continue
        # nn.Upsample goes through the same rule
        up = nn.Upsample(size=kw["size"], mode=kw["mode"], align_corners=kw.get("align_corners"))
        assert _check(up, tuple(x.shape)) == "answered"
    assert outcomes["answered"] > 100 and outcomes["declined"] > 100, outcomes


def _compare(fn, rule, args, kwargs, outcomes) -> None:
    try:
        expected = fn(*args, **kwargs)
    except Exception as err:  # noqa: BLE001
        expected = err
    try:
        got = rule(*args, **kwargs)
    except TypeError:
        got = None  # the interpreter treats a TypeError as "not mine"
    except RuntimeError as err:
        assert isinstance(expected, RuntimeError) and str(err) == str(expected).splitlines()[0], (fn, kwargs)
        outcomes["raised"] += 1
        return
    if got is None:
        outcomes["declined"] += 1
        return
    assert not isinstance(expected, Exception), (fn, [getattr(a, "shape", a) for a in args], kwargs, expected)
    assert (tuple(got.shape), got.dtype) == (tuple(expected.shape), expected.dtype), (fn, kwargs)
    outcomes["answered"] += 1


def test_reductions_concatenation_and_adaptive_functions_match_torch():
    import torch.nn.functional as F

    from rflint.trace.shape_rules import FUNCTION_SHAPE_RULES, METHOD_SHAPE_RULES

    rng = random.Random("shape-rules-functions")
    outcomes = {"answered": 0, "declined": 0, "raised": 0}
    for _ in range(900):
        rank = rng.randint(1, 5)
        x = torch.empty(tuple(rng.choice([0, 1, 2, 3, 5] if rng.random() < 0.1 else [1, 2, 3, 5]) for _ in range(rank)),
                        device="meta", dtype=rng.choice([torch.float32, torch.float32, torch.int64]))
        kind = rng.choice(["mean", "sum", "amax", "amin", "method", "flatten", "cat", "adaptive"])
        if kind == "flatten":
            kw = {k: rng.choice([0, 1, 2, -1, -2, rank, -rank - 1]) for k in ("start_dim", "end_dim") if rng.random() < 0.7}
            if rng.random() < 0.5:
                _compare(lambda t, **k: t.flatten(**k), METHOD_SHAPE_RULES["flatten"], (x,), kw, outcomes)
            else:
                _compare(torch.flatten, FUNCTION_SHAPE_RULES[torch.flatten], (x,), kw, outcomes)
        elif kind in ("mean", "sum", "amax", "amin", "method"):
            kw = {}
            if rng.random() < 0.8:
                kw["dim"] = rng.choice([0, 1, -1, rank, -rank - 1, (1, 2), (0, -1), [1, 1], (), None])
            if rng.random() < 0.5:
                kw["keepdim"] = rng.random() < 0.5
            if kind == "method":
                name = rng.choice(["mean", "sum", "amax", "amin"])
                _compare(lambda t, **k: getattr(t, name)(**k), METHOD_SHAPE_RULES[name], (x,), kw, outcomes)
            else:
                fn = getattr(torch, kind)
                _compare(fn, FUNCTION_SHAPE_RULES[fn], (x,), kw, outcomes)
        elif kind == "cat":
            others = [torch.empty(tuple(d if rng.random() < 0.8 else d + 1 for d in x.shape), device="meta",
                                  dtype=x.dtype) for _ in range(rng.randint(1, 3))]
            _compare(torch.cat, FUNCTION_SHAPE_RULES[torch.cat], ([x, *others],),
                     {"dim": rng.choice([0, 1, -1, rank, -rank])}, outcomes)
        else:
            n = rng.randint(1, 3)
            y = torch.empty((2, 3, *_sizes(rng, n)), device="meta")
            fn = rng.choice([getattr(F, f"adaptive_avg_pool{n}d"), getattr(F, f"adaptive_max_pool{n}d")])
            size = rng.choice([1, 4, (2,) * n, (None,) * n, (3,) * (n + 1)])
            _compare(fn, FUNCTION_SHAPE_RULES[fn], (y, size), {}, outcomes)
    assert outcomes["answered"] > 200 and outcomes["declined"] > 50 and outcomes["raised"] > 10, outcomes


def _all_shapes(traced, size, channels):
    from rflint.trace.shapes import propagate

    values = propagate(traced.gm, [torch.empty((1, channels, *size), device="meta")], traced.modules)
    return {n.name: (tuple(v.shape), v.dtype) for n, v in values.items() if is_tensor_like(v)}


def _without_rules(monkeypatch):
    import rflint.trace.shapes as S

    for name in ("FUNCTION_SHAPE_RULES", "METHOD_SHAPE_RULES", "MODULE_SHAPE_RULES"):
        monkeypatch.setattr(S, name, {})
    monkeypatch.setattr(S, "SAME_SHAPE_MODULES", frozenset())


@pytest.mark.parametrize("name", ["vgg16", "resnet50", "densenet121", "inception", "cbam_resnet18", "unet",
                                  "mpnet18", "audio1d", "cnn3d"])
def test_propagation_with_rules_equals_torch_meta_end_to_end(name, monkeypatch):
    """Every node of a real network gets the same shape and dtype with the arithmetic rules as with
    torch's meta kernels alone (the rules switched off)."""
    from rflint.engine import prepare
    from rflint.zoo import ZOO

    prepared = prepare(f"zoo:{name}")
    natural = tuple(ZOO[name].input_size)
    sizes = [natural, tuple(2 * s for s in natural)]
    fast = [_all_shapes(prepared.traced, size, prepared.channels) for size in sizes]
    _without_rules(monkeypatch)
    slow = [_all_shapes(prepared.traced, size, prepared.channels) for size in sizes]
    assert fast == slow


def _random_dags() -> list:
    """(prepared model, its own input size) for 40 seeded random DAGs (tests/dagzoo.py)."""
    import os
    import sys

    from rflint.engine import prepare

    sys.path.insert(0, os.path.dirname(__file__))
    import dagzoo

    cases = []
    for seed in range(40):
        spec = dagzoo.generate(seed)
        cases.append((prepare(dagzoo.build_module(spec), channels=spec["channels"]), tuple(spec["input_size"])))
    return cases


def test_propagation_with_rules_equals_torch_meta_on_random_dags(monkeypatch):
    cases = _random_dags()
    fast = [_all_shapes(p.traced, size, p.channels) for p, size in cases]
    _without_rules(monkeypatch)
    slow = [_all_shapes(p.traced, size, p.channels) for p, size in cases]
    assert fast == slow


def _stepped_shapes(traced, size, channels, steps):
    from rflint.trace.metaspec import MetaSpec
    from rflint.trace.shapes import propagate

    values = propagate(traced.gm, [MetaSpec((1, channels, *size), torch.float32)], traced.modules, steps)
    return {n.name: (tuple(v.shape), v.dtype) for n, v in values.items() if is_tensor_like(v)}


def _step_cases():
    from rflint.engine import prepare
    from rflint.zoo import ZOO

    cases = []
    for name in ("vgg16", "resnet50", "densenet121", "inception", "unet", "mpnet18", "audio1d", "cnn3d"):
        natural = tuple(ZOO[name].input_size)
        cases.append((prepare(f"zoo:{name}"), [natural, tuple(s + 5 for s in natural), tuple(2 * s + 1 for s in natural)]))
    cases += [(prepared, [size, tuple(s + 3 for s in size)]) for prepared, size in _random_dags()]
    return cases


def test_compiled_steps_give_the_rules_shapes(monkeypatch):
    """The compiled steps (shapes.compile_steps, fast conv/pool/sum/cat steps among them) answer
    exactly what the interpreter with the shape rules answers, and what torch's meta kernels
    answer with the rules switched off, node by node, at sizes other than the trace's (odd ones
    included, where windows round); and they do take part (a step that always declined would pass
    the comparison)."""
    from rflint.trace.shapes import compile_steps

    checked, fast = [], 0
    for prepared, sizes in _step_cases():
        traced = prepared.traced
        steps = compile_steps(traced.gm, traced.modules)
        fast += sum(1 for step in steps if step is not None and step.__qualname__.startswith("_fast_"))
        for size in sizes:
            try:
                stepped = _stepped_shapes(traced, size, prepared.channels, steps)
            except Exception as err:  # noqa: BLE001  the model does not run at this size: neither may the rules
                with pytest.raises(type(err)):
                    _stepped_shapes(traced, size, prepared.channels, None)
                continue
            assert stepped == _stepped_shapes(traced, size, prepared.channels, None)
            checked.append((traced, size, prepared.channels, stepped))
    assert fast > 100 and len(checked) > 60
    _without_rules(monkeypatch)
    for traced, size, channels, stepped in checked:
        assert stepped == _all_shapes(traced, size, channels)



def test_calls_with_constant_keywords_are_compiled():
    """torch.cat(xs, dim=1) (the zoo U-Net's joins) takes the fast concatenation step, and a
    reduction with keywords (CBAM's x.mean(dim=1, keepdim=True) as torch.mean) a compiled rule
    step; test_compiled_steps_give_the_rules_shapes checks their answers."""
    from rflint.engine import prepare
    from rflint.trace.shapes import compile_steps

    for target, name, kind in (("zoo:unet", "cat", "_fast_function_step"), ("zoo:cbam_resnet18", "mean", "_step")):
        traced = prepare(target).traced
        steps = dict(zip(traced.gm.graph.nodes, compile_steps(traced.gm, traced.modules)))
        calls = [n for n in steps if n.op == "call_function" and n.target.__name__ == name and n.kwargs]
        assert calls and all(steps[n] is not None and steps[n].__qualname__.startswith(kind) for n in calls)

def test_compiled_concatenation_of_two_dtypes_promotes_like_torch():
    """cat of a float and a double map: the fast step declines and the rule promotes (float64)."""
    from rflint.engine import analyze

    class TwoDtypes(nn.Module):
        def __init__(self):
            super().__init__()
            self.single = nn.Conv2d(3, 4, 3, padding=1)
            self.wide = nn.Conv2d(3, 4, 3, padding=1).double()

        def forward(self, x):
            return torch.cat([self.single(x), self.wide(x.double())], 1)

    a = analyze(TwoDtypes(), 8)
    node = next(n for n in a.values if n.name == "cat")
    assert tuple(a.values[node].shape) == (1, 8, 8, 8) and a.values[node].dtype == torch.float64


@pytest.mark.parametrize("build,size", [
    (lambda: nn.Sequential(nn.Conv2d(3, 4, 5)), (3, 3)),
    (lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, dilation=2), nn.ReLU()), (2, 6)),
    (lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(4)), (3, 3)),
    (lambda: nn.Sequential(nn.Conv1d(3, 4, 3), nn.AvgPool1d(4)), (5,)),
])
def test_a_vanishing_map_fails_in_torchs_words_with_or_without_compiled_steps(build, size, monkeypatch):
    """The compiled steps and the rules raise torch's own error where a window leaves no output
    (the same text torch's meta kernel gives), so the user's message (size_hints.explain_failure) does
    not depend on which of them ran."""
    import rflint
    import rflint.engine.program as program
    from rflint.errors import RflintError

    model = build()
    x = torch.empty(1, 3, *size, device="meta")
    words = _torch_error(model.to("meta"), x)
    assert "too small" in words or "can't be greater" in words  # the case is one torch rejects so
    with pytest.raises(RflintError) as fast:
        rflint.prepare(build(), channels=3).probe(size)
    monkeypatch.setattr(program, "compile_steps", lambda gm, modules: [None] * len(gm.graph.nodes))
    with pytest.raises(RflintError) as slow:
        rflint.prepare(build(), channels=3).probe(size)
    assert words in str(fast.value) and str(fast.value) == str(slow.value)


def test_a_channel_mismatch_inside_the_network_gives_the_numbers():
    # the meta kernel says only "Invalid channel dimensions"; the message now has torch's CPU words
    import rflint
    from rflint.errors import RflintError

    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(16, 8, 3))
    with pytest.raises(RflintError, match=r"shape propagation failed at 1: RuntimeError: Given groups=1, weight of size "
                                          r"\[8, 16, 3, 3\], expected input\[1, 8, 30, 30\] to have 16 channels, but "
                                          r"got 8 channels instead"):
        rflint.analyze(net, 32)


def test_functional_lp_pools_match_torch_meta():
    # F.lp_pool*d takes the module's rule; torch ran them on meta, importing torch._dynamo mid-analysis
    import torch.nn.functional as F

    from rflint.trace.shape_rules import FUNCTION_SHAPE_RULES

    rng = random.Random("lp-pool-functions")
    answered = 0
    for _ in range(150):
        n = rng.randint(1, 3)
        k, stride, ceil = rng.randint(1, 4), rng.choice([None, 1, 2, 3]), rng.random() < 0.5
        x = torch.empty((2, 3, *_sizes(rng, n)), device="meta")
        fn = getattr(F, f"lp_pool{n}d")
        try:
            expected = tuple(fn(x, 2.0, k, stride, ceil).shape)
        except Exception:  # noqa: BLE001  (torch rejects it: the rule must not answer)
            expected = None
        got = FUNCTION_SHAPE_RULES[fn](x, 2.0, k, stride, ceil)
        assert (tuple(got.shape) if got is not None else None) in ((None, expected) if expected else (None,)), (n, k, stride, ceil, x.shape)
        answered += got is not None
    assert answered > 60
