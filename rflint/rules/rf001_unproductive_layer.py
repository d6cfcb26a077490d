"""RF001 unproductive-layer: a parametric RF layer whose input RF already exceeds the image."""

from __future__ import annotations

from rflint.engine.numbers import nums
from rflint.rules.base import Rule
from rflint.rules.structure import UNPRODUCTIVE, fmt_size, on_input_axes, sized, unit
from rflint.wording import named


class UnproductiveLayer(Rule):
    code = "RF001"
    name = "unproductive-layer"
    severity = "warning"

    def check(self, ctx):
        status = ctx.structure.status
        size = ctx.size
        # the same for every finding of the model (a deep net past its border has dozens)
        px, input_sized = unit(size), sized(size)
        n = len(size)
        axes = tuple(range(n))  # a layer on the input's own axes, in order: its values as they are
        for layer in ctx.analysis.layers:
            if not layer.parametric or status[layer.name] != UNPRODUCTIVE:
                continue
            r_in = fmt_size(layer.r_in_min if layer.origins == axes else on_input_axes(layer.r_in_min, layer.origins, n))
            yield self.finding(
                layer.name,
                f"{named(layer.name)} ({layer.op}) is unproductive: the smallest receptive field reaching its input "
                f"is {r_in} {px}, larger than the {input_sized} input, so it cannot integrate new information",
                layer.source,
                r_in_min=nums(layer.r_in_min), r_in_max=nums(layer.r_in_max), input=list(size),
                params=layer.params, macs=layer.macs,
            )

