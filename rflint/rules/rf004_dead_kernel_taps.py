"""RF004 dead-kernel-taps: kernel taps that can only ever read zero padding.

Per axis, tap t is used iff some output position o reads a real input pixel:
0 <= o*s - p + t*d < n (rf-semantics.md §5).  A 3x3 conv on a 1x1 map uses 1 of 9 taps.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

from rflint.rules.base import Rule


@lru_cache(maxsize=4096)  # a network repeats a few (map size, kernel) configurations many times
def used_taps(n_in: int, n_out: int, k: int, s: int, p: int, d: int) -> int:
    used = 0
    for t in range(k):
        offset = t * d - p  # input index read by output 0
        # smallest o with o*s + offset >= 0, largest with o*s + offset <= n_in - 1
        lo = max(0, -(offset // s))  # ceil(-offset / s)
        hi = min(n_out - 1, (n_in - 1 - offset) // s)
        if lo <= hi:
            used += 1
    return used


class DeadKernelTaps(Rule):
    code = "RF004"
    name = "dead-kernel-taps"
    severity = "warning"

    def check(self, ctx):
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
            n_in, n_out = layer.in_shape[-n:], layer.out_shape[-n:]
            used = [
                used_taps(i, o, k, int(s), p, d)
                for i, o, k, s, p, d in zip(n_in, n_out, layer.kernel, layer.stride, layer.padding, layer.dilation)
            ]
            total = math.prod(layer.kernel)
            live = math.prod(used)
            if live == total:
                continue
            wasted = Fraction(total - live, total)
            weights = _weight_count(ctx, layer)
            wasted_params = weights * (total - live) // total
            frac = f"{wasted.numerator}/{wasted.denominator}"
            yield self.finding(
                layer.name,
                f"{layer.name} ({'x'.join(map(str, layer.kernel))} kernel on a {'x'.join(map(str, n_in))} map): "
                f"only {'x'.join(map(str, used))} of its kernel taps ever read a real pixel, so {frac} of its "
                f"weights ({wasted_params:,} params) only ever multiply zero padding",
                layer.source,
                kernel=list(layer.kernel), input_size=list(n_in), used_taps=used,
                wasted_fraction=frac, wasted_fraction_value=float(wasted), wasted_params=wasted_params,
            )


def _weight_count(ctx, layer) -> int:
    traced = ctx.analysis.traced
    node = traced.node_by_name.get(layer.node)
    if node is not None and node.op == "call_module":
        weight = getattr(traced.modules.get(node.target), "weight", None)
        if weight is not None:
            return weight.numel()
    return layer.params
