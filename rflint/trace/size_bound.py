"""A lower bound on the input size a traced model can run at: no feature map may vanish.

A convolution or pooling window needs enough input to produce its output: for an output of ``m``
units a conv needs ``n >= s*(m-1) + d*(k-1) + 1 - 2p`` input units (shape_rules._window solved for
n).  Walking the graph backwards from "every spatial map keeps at least one unit", each node learns
the fewest units per axis its consumers need, and the model input learns a size below which some
map certainly vanishes.

It is only a bound: an op it does not model asks nothing of its inputs (one unit, which is true of
any model that runs), so the bound never exceeds the smallest size that runs.  The clean-size
search (report/clean_size.py) starts there instead of probing every size below it; it still probes the
sizes at and above, so divisibility (U-Nets) and the ops not modelled here are still respected.
tests/test_size_bound.py checks the bound against brute force.
"""

from __future__ import annotations

import operator
from types import SimpleNamespace
from typing import Iterator

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from rflint.trace.shape_rules import INSTANCE_NORMS, SAME_SHAPE_MODULES, _ntuple, is_hashable

Shape = tuple[int, ...]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_POOLS = {nn.MaxPool1d: True, nn.MaxPool2d: True, nn.MaxPool3d: True,  # class -> has dilation
          nn.AvgPool1d: False, nn.AvgPool2d: False, nn.AvgPool3d: False}
_ELEMENTWISE = {operator.add, operator.sub, operator.mul, operator.truediv, torch.add, torch.sub, torch.mul,
                torch.div, torch.relu, torch.sigmoid, torch.tanh, F.relu, F.relu6, F.gelu, F.silu, F.leaky_relu,
                F.dropout}
_CONCAT = {torch.cat, torch.concat}


def input_size_bound(order: list[fx.Node], modules: dict[str, nn.Module], shapes: dict[str, Shape | None],
                     image: str) -> Shape | None:
    """Per spatial axis of the input node ``image``, a size below which some map of the graph
    vanishes.  ``shapes``: node name -> output shape at any size the model runs at (ranks and
    broadcasts are all that is read).  None when the input is not (N, C, *spatial)."""
    need: dict[str, list[int]] = {}
    for node in reversed(order):
        shape = shapes.get(node.name)
        if shape is None or len(shape) < 3:
            continue
        out = need.setdefault(node.name, [1] * (len(shape) - 2))
        for src, wants in _pushes(node, modules, shapes, out):
            have = need.get(src)
            need[src] = list(wants) if have is None else [max(a, b) for a, b in zip(have, wants)]
    shape = shapes.get(image)
    if shape is None or len(shape) < 3:
        return None
    return tuple(need.get(image, [1] * (len(shape) - 2)))


def _pushes(node: fx.Node, modules: dict[str, nn.Module], shapes: dict[str, Shape | None], out: list[int]
            ) -> Iterator[tuple[str, list[int]]]:
    """(input node name, units per axis it must have) for the inputs whose size ``node`` constrains."""
    rank = len(out)
    if node.op == "call_module":
        if len(node.args) != 1 or not isinstance(node.args[0], fx.Node):
            return
        src = node.args[0]
        src_shape = shapes.get(src.name)
        if src_shape is None or len(src_shape) != rank + 2:
            return
        m = modules.get(node.target)
        if type(m) in SAME_SHAPE_MODULES or type(m) in INSTANCE_NORMS:  # (a lower bound: 1 unit is enough)
            yield src.name, out
        elif type(m) in _CONVS:
            wants = _conv_needs(m, out)
            if wants is not None:
                yield src.name, wants
        elif type(m) in _POOLS:
            wants = _pool_needs(m, out, _POOLS[type(m)])
            if wants is not None:
                yield src.name, wants
        return
    if node.op != "call_function" or not is_hashable(node.target):
        return
    window = _functional_window(node, shapes, out)
    if window is not None:
        yield window
        return
    if node.target in _CONCAT:
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        if type(dim) is not int or dim % (rank + 2) >= 2:  # joined along a spatial axis: sizes add up
            return
        operands = node.args[0] if node.args else ()
    elif node.target in _ELEMENTWISE and sum(isinstance(a, fx.Node) for a in node.args) == 1 and not node.kwargs:
        operands = node.args  # one tensor operand (x + 1, relu): the output's size is its size
    else:
        # two tensor operands broadcast: an output of m units needs only one of them to have m (the
        # other may have shrunk to 1), which one bound per tensor cannot say; so nothing is asked
        return
    for a in operands if isinstance(operands, (list, tuple)) else ():
        shape = shapes.get(a.name) if isinstance(a, fx.Node) else None
        if shape is not None and len(shape) == rank + 2:
            yield a.name, out


# F.max_poolNd / F.avg_poolNd / F.convNd and their torch.* forms: the parameters after the input, in
# order, with their defaults (a pool's stride None is its kernel); "weight" is the conv's kernel tensor
_MAX_POOL = ("kernel_size", "stride", "padding", "dilation", "ceil_mode")
_AVG_POOL = ("kernel_size", "stride", "padding", "ceil_mode")
_CONV = ("weight", "bias", "stride", "padding", "dilation")
_FUNCTIONAL = {
    **{f: _MAX_POOL for f in (F.max_pool1d, F.max_pool2d, F.max_pool3d, torch.max_pool1d, torch.max_pool2d,
                              torch.max_pool3d)},
    **{f: _AVG_POOL for f in (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, torch.avg_pool1d)},
    **{f: _CONV for f in (F.conv1d, F.conv2d, F.conv3d)},
}
_DEFAULTS = {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False, "bias": None}


def _functional_window(node: fx.Node, shapes: dict[str, Shape | None], out: list[int]) -> tuple[str, list[int]] | None:
    """:func:`_pushes` for a pool or conv written as a function (``F.max_pool2d(x, 2)``): they asked
    nothing, so a model pooled that way had a bound of one pixel."""
    names = _FUNCTIONAL.get(node.target)
    if names is None or not node.args or not isinstance(node.args[0], fx.Node):
        return None
    src = node.args[0]
    src_shape = shapes.get(src.name)
    if src_shape is None or len(src_shape) != len(out) + 2:
        return None
    given = {**_DEFAULTS, **dict(zip(names, node.args[1:])), **node.kwargs}
    if names is _CONV:
        weight = given.get("weight")
        kernel = shapes.get(weight.name) if isinstance(weight, fx.Node) else None
        if kernel is None or len(kernel) != len(out) + 2:
            return None
        if isinstance(given["padding"], str) and given["padding"] == "same":
            return src.name, list(out)
        window = SimpleNamespace(kernel_size=tuple(kernel[2:]), stride=given["stride"] or 1,
                                 padding=given["padding"], dilation=given["dilation"])
    else:
        if "kernel_size" not in given:
            return None
        window = SimpleNamespace(kernel_size=given["kernel_size"], stride=given["stride"] or None,
                                 padding=given["padding"], dilation=given["dilation"], ceil_mode=given["ceil_mode"])
    if any(isinstance(v, fx.Node) for v in vars(window).values()):  # a size worked out at run time
        return None
    wants = _conv_needs(window, out) if names is _CONV else _pool_needs(window, out, names is _MAX_POOL)
    return (src.name, wants) if wants is not None else None


def _conv_needs(m: nn.Module, out: list[int]) -> list[int] | None:
    n = len(out)
    if m.padding == "same":
        return list(out)
    pad = (0,) * n if m.padding == "valid" else _ntuple(m.padding, n)
    k, s, d = _ntuple(m.kernel_size, n), _ntuple(m.stride, n), _ntuple(m.dilation, n)
    if None in (pad, k, s, d):
        return None
    return [max(1, si * (mi - 1) + di * (ki - 1) + 1 - 2 * pi) for mi, ki, si, di, pi in zip(out, k, s, d, pad)]


def _pool_needs(m: nn.Module, out: list[int], with_dilation: bool) -> list[int] | None:
    n = len(out)
    k = _ntuple(m.kernel_size, n)
    s = _ntuple(m.stride if m.stride is not None else m.kernel_size, n)
    p = _ntuple(m.padding, n)
    d = _ntuple(m.dilation, n) if with_dilation else (1,) * n
    if None in (k, s, p, d):
        return None
    if m.ceil_mode:  # ceil((span)/s) + 1 >= m needs span > s*(m-2): a looser, still valid bound
        return [max(1, si * (mi - 2) + di * (ki - 1) + 2 - 2 * pi) for mi, ki, si, di, pi in zip(out, k, s, d, p)]
    return [max(1, si * (mi - 1) + di * (ki - 1) + 1 - 2 * pi) for mi, ki, si, di, pi in zip(out, k, s, d, p)]
