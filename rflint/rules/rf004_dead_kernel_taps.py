"""RF004 dead-kernel-taps: kernel taps that can only ever read zero padding.

Per axis, tap t is used iff some output position o reads a real input pixel:
0 <= o*s - p + t*d < n (rf-semantics.md §5).  A 3x3 conv on a 1x1 map uses 1 of 9 taps.  Zeros a
pad op adds right before the conv count as its padding; a module called several times shares its
weights, so a tap is dead only when no call reads a real pixel with it.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from rflint.rules.base import Rule
from rflint.rules.structure import a_or_an
from rflint.wording import named


@lru_cache(maxsize=4096)  # a network repeats a few (map size, kernel) configurations many times
def live_taps(n_in: int, n_out: int, k: int, s: int, p: int, d: int) -> frozenset[int]:
    """The taps of one axis that read a real pixel for some output position."""
    live = []
    for t in range(k):
        offset = t * d - p  # input index read by output 0
        # smallest o with o*s + offset >= 0, largest with o*s + offset <= n_in - 1
        lo = max(0, -(offset // s))  # ceil(-offset / s)
        hi = min(n_out - 1, (n_in - 1 - offset) // s)
        if lo <= hi:
            live.append(t)
    return frozenset(live)


def used_taps(n_in: int, n_out: int, k: int, s: int, p: int, d: int) -> int:
    return len(live_taps(n_in, n_out, k, s, p, d))


class DeadKernelTaps(Rule):
    code = "RF004"
    name = "dead-kernel-taps"
    severity = "warning"

    def check(self, ctx):
        traced = ctx.analysis.traced
        calls: dict[str, list] = {}  # one conv's weights, every call: (layer, real map size, live taps per axis)
        for layer in ctx.analysis.layers:
            if not layer.parametric or layer.kind != "conv" or layer.padding is None or not layer.kop.zero_padding:
                continue
            if layer.head:  # after the tensor became global: no RF rule applies (rf-semantics.md §3)
                continue
            n = len(layer.kernel)
            if len(layer.in_shape) < n + 2 or len(layer.out_shape) < n + 2:
                continue
            if any(int(s) != s for s in layer.stride):  # fractional (upsampling) strides: no padding taps
                continue
            node = traced.node_by_name.get(layer.node)
            pads = zero_pad_before(traced, node, n) if node is not None else None
            n_in, n_out = layer.in_shape[-n:], layer.out_shape[-n:]
            padding = layer.padding
            if pads is not None:  # zeros a pad op added in front of the conv count as its padding
                n_in = tuple(i - before - after for i, (before, after) in zip(n_in, pads))
                padding = tuple(p + before for p, (before, _) in zip(padding, pads))
                if min(n_in) < 1:
                    continue
            live = [
                live_taps(i, o, k, int(s), p, d)
                for i, o, k, s, p, d in zip(n_in, n_out, layer.kernel, layer.stride, padding, layer.dilation)
            ]
            key = node.target if node is not None and node.op == "call_module" else layer.node
            calls.setdefault(key, []).append((layer, n_in, live))
        for uses in calls.values():
            finding = self._finding(ctx, uses)
            if finding is not None:
                yield finding

    def _finding(self, ctx, uses):
        """One finding per weight tensor: a module called several times (shared weights) loses only the
        taps no call reads a real pixel with, reported at its first call."""
        layer, n_in, live = uses[0]
        if len(uses) > 1:
            live = [frozenset().union(*axis) for axis in zip(*(u[2] for u in uses))]
        used = [len(axis) for axis in live]
        total = math.prod(layer.kernel)
        alive = math.prod(used)
        if alive == total:
            return None
        wasted = Fraction(total - alive, total)
        weights = _weight_count(ctx, layer)
        wasted_params = weights * (total - alive) // total
        frac = f"{wasted.numerator}/{wasted.denominator}"
        # a 1-D map by its length ("a 2 kernel on a 100 map" read as numbers, not sizes; "a 49-sample
        # map" read as 49 of the input's samples, where a wav2vec map has 49 frames 320 samples apart)
        sizes = sorted({'x'.join(map(str, u[1])) for u in uses}, key=lambda t: tuple(map(int, t.split("x"))))
        if len(n_in) == 1:
            where = f"a map of length {sizes[0]}" if len(uses) == 1 else \
                f"maps of length {', '.join(sizes)} in its {len(uses)} calls"
        else:
            where = a_or_an(f"{sizes[0]} map") if len(uses) == 1 else f"maps of {', '.join(sizes)} in its {len(uses)} calls"
        real = "sample" if len(n_in) == 1 else "pixel"
        taps = (f"none of its kernel taps ever reads a real {real}, so all of its" if alive == 0 else
                f"only {'x'.join(map(str, used))} of its kernel taps ever read a real {real}, so {frac} of its")
        kernel = "x".join(map(str, layer.kernel)) + ("-tap" if len(layer.kernel) == 1 else "")
        kernel += " kernel"
        if any(d != 1 for d in layer.dilation):  # "3x3 on a 4x4 map: 1 tap used" reads as wrong without it
            kernel += f", dilation {'x'.join(map(str, layer.dilation)) if len(set(layer.dilation)) > 1 else layer.dilation[0]},"
        return self.finding(
            layer.name,
            f"{named(layer.name)} ({kernel} on {where}): "
            f"{taps} weights ({wasted_params:,} params) only ever multiply zero padding",
            layer.source,
            kernel=list(layer.kernel), input_size=list(n_in), used_taps=used,
            wasted_fraction=frac, wasted_fraction_value=float(wasted), wasted_params=wasted_params,
        )


def zero_pad_before(traced, node, n: int) -> list[tuple[int, int]] | None:
    """(before, after) zeros per kernel axis that the op feeding ``node`` adds (F.pad in constant mode
    with value 0, nn.ZeroPad2d, nn.ConstantPad2d(..., 0) ...), as TF-style "same" convs do
    (EfficientNet's Conv2dStaticSamePadding); None when the input is not such a pad, or its amounts
    are not plain numbers (worked out from shapes at run time) or negative (a crop)."""
    src = node.args[0] if node.args else None
    if not hasattr(src, "op"):
        return None
    if src.op == "call_module":
        module = traced.modules.get(src.target)
        if not isinstance(module, nn.modules.padding._ConstantPadNd) or module.value != 0:  # ZeroPad2d too
            return None
        amounts = module.padding
    elif src.op == "call_function" and src.target is F.pad:
        args = list(src.args) + [None] * 4
        amounts = src.kwargs.get("pad", args[1])
        mode = src.kwargs.get("mode", args[2] if args[2] is not None else "constant")
        value = src.kwargs.get("value", args[3])
        if mode != "constant" or value not in (None, 0):
            return None
    else:
        return None
    if isinstance(amounts, int):
        amounts = (amounts,) * (2 * n)
    if not isinstance(amounts, (tuple, list)) or not all(type(a) is int and a >= 0 for a in amounts):
        return None
    amounts = list(amounts) + [0] * max(0, 2 * n - len(amounts))
    # F.pad's list starts at the last axis: (left, right, top, bottom, front, back)
    return [(amounts[2 * (n - 1 - i)], amounts[2 * (n - 1 - i) + 1]) for i in range(n)]


def _weight_count(ctx, layer) -> int:
    """The kernel tensor's size (its bias has no taps)."""
    traced = ctx.analysis.traced
    node = traced.node_by_name.get(layer.node)
    if node is not None and node.op == "call_module":
        # from the module's own table: another thread tracing this model patches attribute access
        # (torch.fx), and .weight would be a Proxy
        module = traced.modules.get(node.target)
        weight = getattr(module, "_parameters", {}).get("weight")
        if weight is not None:
            return weight.numel()
        if isinstance(module, nn.modules.conv._ConvNd):  # weight_norm / spectral_norm: weight is computed
            return module.in_channels * module.out_channels // module.groups * math.prod(module.kernel_size)
    elif node is not None:  # F.conv2d(x, weight, bias, ...): the kernel it was given
        weight = node.kwargs.get("weight", node.args[1] if len(node.args) > 1 else None)
        value = ctx.analysis.values.get(weight) if isinstance(weight, fx.Node) else None
        shape = getattr(value, "shape", None)
        if shape is not None:
            return min(math.prod(shape), layer.params)
    return layer.params
