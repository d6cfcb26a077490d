"""RF005 insufficient-receptive-field: no unit of the last feature map sees the whole input."""

from __future__ import annotations

from rflint.engine.numbers import nums
from rflint.rules.base import Rule
from rflint.rules.structure import fmt_size


class InsufficientReceptiveField(Rule):
    code = "RF005"
    name = "insufficient-receptive-field"
    severity = "warning"

    def check(self, ctx):
        a = ctx.analysis
        if a.final_layer is None or a.final_r_max is None:
            return
        layer = a.layer(a.final_layer)
        pairs = [(r, ctx.size[o]) for r, o in zip(a.final_r_max, layer.origins) if r is not None and o is not None]
        if not pairs or not all(r < size for r, size in pairs):
            return
        yield self.finding(
            layer.name,
            f"no unit of the last feature map ({layer.name}) sees the whole input: its largest receptive field "
            f"is {fmt_size(a.final_r_max)} px for a {fmt_size(ctx.size)} px input; objects larger than that are "
            "only ever seen in pieces",
            layer.source,
            final_r_max=nums(a.final_r_max), input=list(ctx.size),
        )
