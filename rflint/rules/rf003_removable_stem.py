"""RF003 removable-stem: dropping the stem's early downsampling removes (or shortens) the tail."""

from __future__ import annotations

from rflint.engine.surgery import changed_phrase
from rflint.rules.base import Rule
from rflint.rules.rf002_predicted_tail import pct
from rflint.rules.structure import fmt_size, sized
from rflint.wording import count


class RemovableStem(Rule):
    code = "RF003"
    name = "removable-stem"
    severity = "warning"

    def check(self, ctx):
        p = ctx.stem
        if p is None:
            return
        first = p.layers[0]
        outcome = (
            "no predicted tail is left" if p.removes_tail
            else f"the predicted tail shortens from {p.tail_layers_before} to {count(p.tail_layers_after, 'parametric layer')}"
        )
        increase = p.macs_after - p.macs_before
        # an image-to-image model returns a bigger map without its stem's downsampling: say so, it
        # is no longer the same model to its users (a VAE's 16x16 reconstruction became 32x32)
        output = (f"; it also changes the output map from {fmt_size(p.output_sizes[0])} to {fmt_size(p.output_sizes[1])}"
                  if p.output_sizes else "")
        yield self.finding(
            first.name,
            f"the stem downsamples too early for {sized(ctx.size)} inputs: {changed_phrase(p.layers)}, {outcome}; "
            f"cost: MACs {p.macs_before:,} -> {p.macs_after:,} (+{pct(increase, p.macs_before)}%){output}",
            first.source,
            layers=[layer.name for layer in p.layers], changes=p.changes, removes_tail=p.removes_tail,
            tail_layers_before=p.tail_layers_before, tail_layers_after=p.tail_layers_after,
            macs_before=p.macs_before, macs_after=p.macs_after, macs_increase=increase,
            macs_increase_pct=pct(increase, p.macs_before),
            output_before=list(p.output_sizes[0]) if p.output_sizes else None,
            output_after=list(p.output_sizes[1]) if p.output_sizes else None,
        )
