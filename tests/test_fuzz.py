"""Property-based fuzzing (hypothesis) of the command line and of the RF engine on random models.

CLI contract (README "Exit codes"): the exit code is 0, 1 or 2; with 2, stderr is one line starting
with "rflint: error: " per target or size that failed (and "rflint: " notes); no traceback is ever
printed.  Engine contract: ``rflint.analyze``
returns an Analysis or raises RflintError, nothing else; and the numbers it returns are sane
(r_out_min <= r_out_max, every r_in >= 1).

Random models are generated as Python source (so the very same model can be written to a file and
run through the full CLI): a chain of layers from a menu (convs with random kernel/stride/dilation/
padding/groups/padding_mode, transposed convs, pools, adaptive pools, upsampling, pixel (un)shuffle,
norms, activations, residual and concat blocks, flatten+linear heads) at random input sizes,
including sizes too small for the network.
"""

from __future__ import annotations

import importlib.util
import itertools
import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import rflint
from rflint.cli.app import app
from rflint.errors import RflintError

runner = CliRunner()

FUZZ_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

TINY_MODEL = textwrap.dedent("""
    import torch.nn as nn


    def build(width=4, depth=2):
        layers = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU()]
        for _ in range(depth):
            layers += [nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU()]
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))


    model = build()
    not_a_module = 42


    def broken():
        raise ValueError("no such depth")


    def returns_none():
        return None
""")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("fuzz_models")
    (d / "tiny.py").write_text(TINY_MODEL)
    (d / "syntax_error.py").write_text("def build(:\n")
    (d / "raises_on_import.py").write_text("raise RuntimeError('boom at import')\n")
    return d


# ---------------------------------------------------------------------------------------- the CLI

def check_cli_contract(result, args) -> None:
    out, err = result.stdout, result.stderr
    context = f"args={args!r}\nexit={result.exit_code}\nstdout={out[-2000:]!r}\nstderr={err[-2000:]!r}"
    assert result.exit_code in (0, 1, 2), context
    if "--debug" in args:
        # --debug prints tracebacks before the error lines, by design, and changes nothing else:
        # the same exit code, and the run without it keeps the one-line contract
        plain = [a for a in args if a != "--debug"]
        again = runner.invoke(app, plain)
        assert result.exit_code == again.exit_code, context
        return check_cli_contract(again, plain)
    assert "Traceback" not in out and "Traceback" not in err, context
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"exception escaped the CLI: {result.exception!r}\n{context}")
    if result.exit_code == 2:
        if err.startswith("Usage:"):
            # click/typer rejected the option itself (bad --format/--fail-on choice, --channels not a
            # positive int, unknown option): a multi-line usage box, not "rflint: error: ...".
            # (CliRunner calls the typer app directly; the real entry point, main(), makes it one
            # line: test_option_parse_errors_are_one_line)
            return
        # one line per target or size that could not be analysed (the others are still reported,
        # and so are notes about them: "rflint: X has no convolution ...: nothing to lint")
        lines = err.splitlines()
        assert any(line.startswith("rflint: error: ") for line in lines), context
        assert all(line.startswith("rflint: ") for line in lines), context
        # rflint turns non-RflintError exceptions into "Type: msg (run with --debug ...)": for the
        # targets fuzzed here (zoo models and a tiny valid model) that means a bug in rflint itself
        assert "run with --debug for the traceback" not in err, context


def _target(model_dir: Path):
    tiny = str(model_dir / "tiny.py")
    curated = st.sampled_from([
        "zoo:vgg11", "zoo:resnet18_cifar", "zoo:audio1d", "zoo:cnn3d", "zoo:unet",
        "zoo:", "zoo", "zoo:VGG11", "zoo:vgg11 ", "zoo:nope", "zoo:zoo:vgg11",
        "", ":", "::", "nonsense", "a:b:c", ".py:build", "nope.py:build", "/no/such/dir/model.py:build",
        f"{tiny}:build", f"{tiny}:model", f"{tiny}:nope", f"{tiny}:", f"{tiny}", f"{tiny}:build.x",
        f"{tiny}:not_a_module", f"{tiny}:broken", f"{tiny}:returns_none", f"{tiny}::build",
        f"{model_dir}:build", f"{model_dir / 'syntax_error.py'}:build", f"{model_dir / 'raises_on_import.py'}:x",
        "torch.nn:Conv2d", "torch.nn:Identity", "torch:nn", "no_such_pkg_xyz:build", "math:pi", "json:loads",
    ])
    junk = st.text(st.characters(blacklist_characters=":\x00", blacklist_categories=("Cs",)), max_size=12)
    good = st.sampled_from(["zoo:vgg11", "zoo:resnet18_cifar", "zoo:audio1d", f"{tiny}:build", f"{tiny}:model"])
    return st.one_of(good, good, good, curated, curated, junk)


SIZE_TEXT = st.one_of(
    st.integers(1, 64).map(str),
    st.integers(1, 64).map(str),
    st.tuples(st.integers(1, 64), st.integers(1, 64)).map(lambda t: f"{t[0]}x{t[1]}"),
    st.integers(-5, 80).map(str),
    st.integers(-10**12, 10**12).map(str),
    st.sampled_from(["32x", "x32", "3x3x3x3", "32x32", "8x16x16", "32x0", "0", "-0", "+32", " 32 ", "32.5", "1e3",
                     "0x20", "nan", "inf", "", "x", "32X32", "32×32", "٣٢", "３２", "32x-1", "1000001", "999999x1",
                     "2**5", "32,32", "32 32", "¼", "²"]),
    st.text(max_size=8),
)
CHANNELS_TEXT = st.one_of(st.integers(-3, 70).map(str), st.sampled_from(["abc", "1.5", "", "1e2", "３"]))
KWARG_TEXT = st.sampled_from([
    "width=8", "width=2", "depth=0", "depth=1", "width=0", "width=-1", "width=abc", "width=[1,2", "width=None",
    "=3", "a b=1", "width", "1x=2", "width=1.5", "width=(1,)", "nope=1", "depth=True", "width=__import__('os')",
    "width==2", "width= 4", "width=\U0001F600",
])
CODE_TEXT = st.one_of(st.sampled_from(["RF001", "RF002", "RF00", "RF", "RF999", "rf001", "ALL", "", "E501", "RF0010"]),
                      st.text(max_size=6))


@st.composite
def cli_args(draw, model_dir: Path):
    args = ["check"]
    args += draw(st.lists(_target(model_dir), min_size=draw(st.sampled_from([0, 1, 1, 1])), max_size=2))
    for value in draw(st.lists(SIZE_TEXT, min_size=draw(st.sampled_from([0, 1, 1, 1])), max_size=2)):
        args += ["--input", value]
    options = [
        ("--channels", CHANNELS_TEXT), ("--kwarg", KWARG_TEXT), ("--select", CODE_TEXT), ("--ignore", CODE_TEXT),
        ("--format", st.sampled_from(["text", "json", "sarif", "github", "markdown", "xml", "JSON", ""])),
        ("--fail-on", st.sampled_from(["error", "warning", "info", "never", "fatal", ""])),
        ("--input-shape", st.sampled_from(["1,3,32,32", "1,3,32", "1,3", "3,32,32", "1,0,32,32", "a,b", "1,1,16000"])),
        ("--min-tail-layers", st.sampled_from(["1", "0", "3", "x"])),
        ("--no-layers", None),
    ]
    for flag, values in draw(st.lists(st.sampled_from(options), max_size=draw(st.sampled_from([0, 1, 2, 4])))):
        args += [flag] if values is None else [flag, draw(values)]
    return args


@settings(max_examples=250, **FUZZ_SETTINGS)
@given(data=st.data())
def test_cli_fuzz_exit_codes_and_one_line_errors(model_dir, data):
    args = data.draw(cli_args(model_dir))
    # no target and no [[tool.rflint.models]] in the config: rflint reads the nearest pyproject.toml
    # (the repository's), so keep the config fixed to an empty one
    args += ["--config", str(model_dir / "empty.toml")]
    (model_dir / "empty.toml").write_text("[tool.rflint]\n")
    result = runner.invoke(app, args)
    event(f"exit {result.exit_code}")
    check_cli_contract(result, args)


@pytest.mark.parametrize("args, message", [
    (["check", "zoo:vgg11", "--input", "32", "--format", "xml"],
     "Invalid value for '--format' / '-f': 'xml' is not one of 'text', 'json', 'sarif', 'github', 'markdown'"),
    (["check", "zoo:vgg11", "--input", "32", "--fail-on", "fatal"],
     "Invalid value for '--fail-on': 'fatal' is not one of 'error', 'warning', 'info', 'never'"),
    (["check", "zoo:vgg11", "--input", "32", "--channels", "abc"], "Invalid value for '--channels'"),
    (["check", "zoo:vgg11", "--input", "32", "--channels", "0"], "Invalid value for '--channels'"),
    (["check", "zoo:vgg11", "--input", "32", "--bogus"], "No such option: --bogus"),
])
def test_option_parse_errors_are_one_line(args, message):
    # through the real entry point (main), which turns click/typer usage errors into one line;
    # CliRunner invokes the typer app directly and would show typer's usage box
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "rflint", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rflint: error: "), proc.stderr
    # typer checks choices with pydantic, whose message starts "Value error, ": not for people
    assert message in lines[0] and "Value error" not in lines[0], lines[0]


# ------------------------------------------------------------------------------ random architectures

HEADER = textwrap.dedent("""
    import torch
    import torch.nn.functional as F
    from torch import nn


    class Residual(nn.Module):
        def __init__(self, *body):
            super().__init__()
            self.body = nn.Sequential(*body)

        def forward(self, x):
            return x + self.body(x)


    class Down(nn.Module):
        # A residual block that downsamples both paths (ResNet's projection shortcut).

        def __init__(self, body, shortcut):
            super().__init__()
            self.body, self.shortcut = body, shortcut

        def forward(self, x):
            return self.body(x) + self.shortcut(x)


    class FnConv(nn.Module):
        # A functional convolution with its own weight.

        def __init__(self, n, c, k, stride, dilation):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(c, c, *([k] * n)) * 0.1)
            self.n, self.stride, self.dilation, self.pad = n, stride, dilation, (k // 2) * dilation

        def forward(self, x):
            conv = (F.conv1d, F.conv2d, F.conv3d)[self.n - 1]
            return conv(x, self.weight, None, self.stride, self.pad, self.dilation)


    def _attention(x):
        f = x.flatten(2)
        att = torch.softmax(f.transpose(1, 2) @ f, dim=-1)
        return (f @ att).view_as(x)


    def _unpool(x):
        y, i = F.max_pool2d(x, 2, return_indices=True)
        return F.max_unpool2d(y, i, 2, output_size=x.shape[-2:])


    FNS = {
        "max_pool_fn": lambda x: (F.max_pool1d, F.max_pool2d, F.max_pool3d)[x.dim() - 3](x, 2, ceil_mode=True),
        "avg_pool_fn": lambda x: (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[x.dim() - 3](x, 3, 2, 1),
        "interp_scale": lambda x: F.interpolate(x, scale_factor=2, mode="nearest"),
        "interp_size": lambda x: F.interpolate(x, size=[7] * (x.dim() - 2), mode="nearest"),
        "slice_step": lambda x: x[..., ::2],
        "slice_crop": lambda x: x[:, :, 1:-1],
        "se_gate": lambda x: x * torch.sigmoid(x.mean(dim=tuple(range(2, x.dim())), keepdim=True)),
        "gap_expand": lambda x: x + F.adaptive_avg_pool1d(x.flatten(2), 1).unsqueeze(-1).flatten(2).view(
            *x.shape[:2], *([1] * (x.dim() - 2))).expand_as(x),
        "transpose": lambda x: x.transpose(-1, -2),
        "flip": lambda x: torch.flip(x, dims=[-1]),
        "roll": lambda x: torch.roll(x, 1, -1),
        "pad": lambda x: F.pad(x, [1, 1] * (x.dim() - 2)),
        "crop_pad": lambda x: F.pad(x, [-1, -1] * (x.dim() - 2)),
        "cat_spatial": lambda x: torch.cat([x, x], dim=-1),
        "flatten_roundtrip": lambda x: x.flatten(2).view(x.shape),
        "shape_branch": lambda x: x if x.shape[-1] % 2 == 0 else F.pad(x, [0, 1]),
        "value_branch": lambda x: x if x.sum() > 0 else -x,
        "attention": _attention,
        "softmax_spatial": lambda x: torch.softmax(x.flatten(2), -1).view_as(x),
        "fold_unfold": lambda x: F.fold(F.unfold(x, 3, padding=1), x.shape[-2:], 3, padding=1),
        "unpool": _unpool,
        "mean_channels": lambda x: x.mean(dim=1, keepdim=True).expand_as(x) * x,
        "max_spatial": lambda x: x.amax(dim=-1, keepdim=True) + x,
    }


    class Fn(nn.Module):
        # One functional op, so the fuzz reaches ops.py's function and method rules.

        def __init__(self, name):
            super().__init__()
            self.name = name

        def forward(self, x):
            return FNS[self.name](x)


    class Concat(nn.Module):
        def __init__(self, a, b):
            super().__init__()
            self.a, self.b = a, b

        def forward(self, x):
            return torch.cat([self.a(x), self.b(x)], dim=1)


""")

_UPSAMPLE_LINEAR = {1: "linear", 2: "bilinear", 3: "trilinear"}


@st.composite
def _conv(draw, n: int, c: int, same: bool = False) -> tuple[str, int]:
    """A ConvNd from c channels: (code, out channels).  same: stride 1 and size-preserving padding."""
    divisors = [g for g in range(1, c + 1) if c % g == 0]
    groups = draw(st.sampled_from(divisors))
    c_out = groups * draw(st.integers(1, max(1, 6 // groups)))
    if same:
        k = draw(st.sampled_from([1, 3, 5]))
        d = draw(st.integers(1, 2))
        return f"nn.Conv{n}d({c}, {c_out}, {k}, padding={(k // 2) * d}, dilation={d}, groups={groups})", c_out
    k = draw(st.integers(1, 5))
    s = draw(st.integers(1, 3))
    d = draw(st.integers(1, 3))
    p = draw(st.one_of(st.integers(0, 3), st.just("'same'") if s == 1 else st.integers(0, 1)))
    mode = draw(st.sampled_from(["zeros", "zeros", "zeros", "reflect", "replicate", "circular"]))
    if p == "'same'" and mode != "zeros":
        mode = "zeros"
    return (f"nn.Conv{n}d({c}, {c_out}, kernel_size={k}, stride={s}, padding={p}, dilation={d}, groups={groups}, "
            f"padding_mode={mode!r})"), c_out


@st.composite
def _layer(draw, n: int, c: int) -> tuple[str, int]:
    kind = draw(st.sampled_from(["conv", "conv", "conv", "convT", "maxpool", "avgpool", "adaptive", "upsample",
                                 "shuffle", "norm", "act", "dropout", "residual", "concat", "down", "fn", "fn",
                                 "fnconv"]))
    if kind == "conv":
        return draw(_conv(n, c))
    if kind == "convT":
        k, s, d = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
        p = draw(st.integers(0, max(0, d * (k - 1))))
        op = draw(st.integers(0, max(s, d) - 1))
        c_out = draw(st.integers(1, 6))
        return (f"nn.ConvTranspose{n}d({c}, {c_out}, kernel_size={k}, stride={s}, padding={p}, output_padding={op}, "
                f"dilation={d})"), c_out
    if kind == "maxpool":
        k = draw(st.integers(1, 4))
        s = draw(st.one_of(st.none(), st.integers(1, 3)))
        return (f"nn.MaxPool{n}d({k}, stride={s}, padding={draw(st.integers(0, k // 2))}, "
                f"dilation={draw(st.integers(1, 2))}, ceil_mode={draw(st.booleans())})"), c
    if kind == "avgpool":
        k = draw(st.integers(1, 4))
        s = draw(st.one_of(st.none(), st.integers(1, 3)))
        return (f"nn.AvgPool{n}d({k}, stride={s}, padding={draw(st.integers(0, k // 2))}, "
                f"ceil_mode={draw(st.booleans())}, count_include_pad={draw(st.booleans())})"), c
    if kind == "adaptive":
        pool = draw(st.sampled_from(["AdaptiveAvgPool", "AdaptiveMaxPool"]))
        return f"nn.{pool}{n}d({draw(st.integers(1, 4))})", c
    if kind == "upsample":
        mode = draw(st.sampled_from(["nearest", _UPSAMPLE_LINEAR[n]]))
        corners = "" if mode == "nearest" else f", align_corners={draw(st.booleans())}"
        return f"nn.Upsample(scale_factor={draw(st.integers(2, 3))}, mode={mode!r}{corners})", c
    if kind == "shuffle" and n == 2:
        if c % 4 == 0 and draw(st.booleans()):
            return "nn.PixelShuffle(2)", c // 4
        if c <= 4:
            return "nn.PixelUnshuffle(2)", c * 4
    if kind == "norm":
        return f"nn.BatchNorm{n}d({c})", c
    if kind == "dropout":
        return "nn.Dropout(0.1)", c
    if kind == "residual":
        conv, c_mid = draw(_conv(n, c, same=True))
        back = f"nn.Conv{n}d({c_mid}, {c}, 1)" if c_mid != c else None
        body = [conv, f"nn.BatchNorm{n}d({c_mid})", "nn.ReLU()"] + ([back] if back else [])
        if back is None and draw(st.booleans()):
            body.append(f"nn.Conv{n}d({c}, {c}, 3, padding=1)")
        return f"Residual({', '.join(body)})", c
    if kind == "concat":
        a, ca = draw(_conv(n, c, same=True))
        if draw(st.booleans()):
            b, cb = f"nn.MaxPool{n}d(3, stride=1, padding=1)", c
        else:
            b, cb = draw(_conv(n, c, same=True))
        return f"Concat({a}, {b})", ca + cb
    if kind == "down":
        s = draw(st.integers(1, 3))
        k = draw(st.sampled_from([1, 3, 5]))
        c_out = draw(st.integers(1, 6))
        body = f"nn.Sequential(nn.Conv{n}d({c}, {c_out}, {k}, stride={s}, padding={k // 2}), nn.ReLU())"
        shortcut = f"nn.Conv{n}d({c}, {c_out}, 1, stride={s})"
        return f"Down({body}, {shortcut})", c_out
    if kind == "fnconv":
        return (f"FnConv({n}, {c}, {draw(st.sampled_from([1, 3, 5]))}, stride={draw(st.integers(1, 2))}, "
                f"dilation={draw(st.integers(1, 2))})"), c
    if kind == "fn":
        names = ["max_pool_fn", "avg_pool_fn", "interp_scale", "interp_size", "slice_step", "slice_crop", "se_gate",
                 "gap_expand", "flip", "roll", "pad", "crop_pad", "cat_spatial", "flatten_roundtrip", "shape_branch",
                 "value_branch", "attention", "softmax_spatial", "mean_channels", "max_spatial"]
        if n >= 2:
            names.append("transpose")
        if n == 2:
            names += ["fold_unfold", "unpool"]
        return f"Fn({draw(st.sampled_from(names))!r})", c
    return "nn.ReLU()", c


@st.composite
def random_models(draw):
    """(source code defining build(), spatial input size, input channels, analyze channels arg)."""
    n = draw(st.sampled_from([1, 2, 2, 2, 3]))
    c_in = draw(st.integers(1, 4))
    c = c_in
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        code, c = draw(_layer(n, c))
        lines.append(code)
        if c > 24:  # keep the models small
            lines.append(f"nn.Conv{n}d({c}, 4, 1)")
            c = 4
    head = draw(st.sampled_from(["none", "none", "none", "none", "gap", "gap", "flatten", "lazy"]))
    if head == "gap":
        lines += [f"nn.AdaptiveAvgPool{n}d(1)", "nn.Flatten()", f"nn.Linear({c}, 5)"]
    elif head == "flatten":  # in_features guessed: often wrong, which rflint must report, not crash on
        lines += ["nn.Flatten()", f"nn.Linear({draw(st.integers(1, 64))}, 5)"]
    elif head == "lazy":
        lines += ["nn.Flatten()", "nn.LazyLinear(5)"]
    max_side = 64 if n < 3 else 16
    if n == 1:
        size = draw(st.integers(1, 200))
    else:
        size = tuple(draw(st.lists(st.integers(1, max_side), min_size=n, max_size=n)))
        if len(set(size)) == 1 and draw(st.booleans()):
            size = size[0]  # an int: every axis
    body = ",\n        ".join(lines)
    source = HEADER + f"def build():\n    return nn.Sequential(\n        {body},\n    )\n"
    give_channels = draw(st.booleans())
    return source, size, c_in, (c_in if give_channels else None)


_counter = itertools.count()


def _load(source: str, directory: Path) -> tuple[Path, object]:
    path = directory / f"fuzz_model_{next(_counter)}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return path, module


def check_analysis(analysis) -> None:
    assert isinstance(analysis, rflint.Analysis)
    for layer in analysis.layers:
        for lo, hi in zip(layer.r_out_min, layer.r_out_max):
            if lo is not None and hi is not None:
                assert lo <= hi, f"{layer.name}: r_out_min {layer.r_out_min} > r_out_max {layer.r_out_max}"
            for r in (lo, hi):
                assert r is None or r >= 1, f"{layer.name}: r_out {layer.r_out_min}/{layer.r_out_max} < 1"
        for r in (*layer.r_in_min, *layer.r_in_max):
            assert r is None or r >= 1, f"{layer.name}: r_in {layer.r_in_min}/{layer.r_in_max} < 1"
        for lo, hi in zip(layer.r_in_min, layer.r_in_max):
            if lo is not None and hi is not None:
                assert lo <= hi, f"{layer.name}: r_in_min {layer.r_in_min} > r_in_max {layer.r_in_max}"


def analyze_or_rflint_error(model, size, channels):
    """The engine contract: an Analysis or an RflintError, never another exception."""
    try:
        analysis = rflint.analyze(model, size, channels=channels)
    except RflintError as err:
        assert "\n" not in str(err).strip(), f"RflintError message is not one line: {err}"
        event(f"RflintError: {re.sub(r'[0-9]+', 'N', str(err))[:60]}")
        return None
    event(f"analysis ({len(analysis.layers) and 'with' or 'without'} RF layers)")
    return analysis


@settings(max_examples=300, **FUZZ_SETTINGS)
@given(spec=random_models())
def test_random_architectures_analyze_or_raise_rflint_error(model_dir, spec):
    source, size, c_in, channels = spec
    _, module = _load(source, model_dir)
    model = module.build()
    analysis = analyze_or_rflint_error(model, size, channels)
    if analysis is not None:
        check_analysis(analysis)


@settings(max_examples=25, **FUZZ_SETTINGS)
@given(spec=random_models(), fmt=st.sampled_from(["text", "json", "sarif", "github", "markdown"]),
       fail_on=st.sampled_from(["error", "warning", "info", "never"]))
def test_random_architectures_through_the_cli(model_dir, spec, fmt, fail_on):
    source, size, c_in, channels = spec
    path, _ = _load(source, model_dir)
    size_text = str(size) if isinstance(size, int) else "x".join(map(str, size))
    args = ["check", f"{path}:build", "--input", size_text, "--format", fmt, "--fail-on", fail_on,
            "--config", str(model_dir / "empty.toml")]
    (model_dir / "empty.toml").write_text("[tool.rflint]\n")
    if channels is not None:
        args += ["--channels", str(channels)]
    result = runner.invoke(app, args)
    check_cli_contract(result, args)


# ------------------------------------------------------- crashes and silent failures found while fuzzing
# Minimised from the fuzzing above (forward() signatures the random Sequential models never have).
# They were xfail(strict=True) until rflint was fixed; now they guard against regressions.

SIGNATURES = textwrap.dedent("""
    import torch.nn as nn


    class Base(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)


    class VarArgs(Base):
        def forward(self, *xs):
            return self.conv(xs[0])


    class OptionalMask(Base):
        def forward(self, x, mask=None):
            y = self.conv(x)
            if mask is not None:
                y = y * mask
            return y


    class DefaultFlag(Base):
        def forward(self, x, flag: bool = True):
            return self.conv(x) if flag else x
""")


@pytest.fixture(scope="module")
def signatures(model_dir):
    _, module = _load(SIGNATURES, model_dir)
    return module


# CRASH: AttributeError escapes rflint.analyze (the CLI prints "rflint: error: AttributeError: 'list'
# object has no attribute 'shape' (run with --debug for the traceback)").  fx gives `*xs` one
# placeholder whose value is the tuple of inputs; rflint/engine/program.py:104 (run_program) takes it
# for the image tensor: `rank = len(values[node].shape)`.
def test_crash_varargs_forward(signatures):
    try:
        rflint.analyze(signatures.VarArgs(), 8)
    except RflintError:
        pass
    except Exception as err:
        raise AssertionError(f"non-RflintError escaped: {type(err).__name__}: {err}") from err


# SILENT: the shape-aware tracer gives a placeholder with a default value (flag=True) the value None
# (rflint/trace/shape_tracer.py ShapeTracer._evaluate: `self._pending.pop(0) if self._pending else
# None`), so `if flag` takes the wrong branch and the analysis has no RF layer at all, without a
# warning.  Same root cause as monai's SegResNetDS2 (with_point/with_label).
def test_default_flag_argument_is_followed(signatures):
    analysis = rflint.analyze(signatures.DefaultFlag(), 8)
    assert [layer.name for layer in analysis.layers] == ["conv"]


# WRONG ERROR: the optional-argument pattern `if mask is not None` takes the branch under symbolic
# tracing (a proxy is not None), and shape propagation then multiplies by the default None:
# "shape propagation failed at mul: TypeError: unsupported operand type(s) for *: 'Tensor' and
# 'NoneType'".  Passing non-tensor defaults as fx concrete_args would follow the default path.
def test_optional_none_argument_is_followed(signatures):
    analysis = rflint.analyze(signatures.OptionalMask(), 8)
    assert [layer.name for layer in analysis.layers] == ["conv"]
