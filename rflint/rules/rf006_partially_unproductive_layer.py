"""RF006 partially-unproductive-layer: unproductive along some spatial axes only."""

from __future__ import annotations

from rflint.engine.numbers import nums
from rflint.rules.base import Rule
from rflint.rules.structure import PARTIAL, axis_names, fmt_size, on_input_axes
from rflint.wording import named


class PartiallyUnproductiveLayer(Rule):
    code = "RF006"
    name = "partially-unproductive-layer"
    severity = "info"

    def check(self, ctx):
        status = ctx.structure.status
        for layer in ctx.analysis.layers:
            if not layer.parametric or status[layer.name] != PARTIAL:
                continue
            names = axis_names(len(ctx.size))
            axes = [
                names[o] for r, o in zip(layer.r_in_min, layer.origins)
                if r is not None and o is not None and r > ctx.size[o]
            ]
            by_input = on_input_axes(layer.r_in_min, layer.origins, len(ctx.size))
            yield self.finding(
                layer.name,
                f"{named(layer.name)} ({layer.op}) is unproductive along {', '.join(axes)} only: its input RF "
                f"{fmt_size(by_input)} px exceeds the {fmt_size(ctx.size)} px input there",
                layer.source,
                axes=axes, r_in_min=nums(layer.r_in_min), input=list(ctx.size),
            )
