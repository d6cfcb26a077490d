"""RF002 predicted-tail: the network ends in a run of unproductive segments (the CI gate)."""

from __future__ import annotations

from rflint.rules.base import Rule
from rflint.rules.structure import fmt_size, unit
from rflint.rules.truncation import no_plan_reason, plan_truncation
from rflint.wording import named


def pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


class PredictedTail(Rule):
    code = "RF002"
    name = "predicted-tail"
    severity = "error"

    def check(self, ctx):
        tail = ctx.structure.tail
        if tail is None:
            return
        a = ctx.analysis
        border = tail.border
        cut, said = tail.cut_name, tail.cut_label
        n = len(tail.parametric_layers)
        plan = plan_truncation(a, tail)
        advice = (
            f"truncate after {said} (params {a.params:,} -> {plan.params_after:,}, MACs {a.macs:,} -> {plan.macs_after:,})"
            if plan else f"end the feature extractor at {said}" + _why_by_hand(a, tail)
        )
        # a module called again in the tail (a loop over one block) counts its weights at its first
        # call, before the cut: say so rather than "hold 0 params", which reads like a counting bug
        shared = not tail.params and any("@" in layer.name for layer in tail.parametric_layers)
        # the params are the tail's, not only its RF layers': its norms', an SE gate's (whose convs
        # read a global tensor, no RF layers), a layer scale's; "its 53 layers hold" claimed them all
        layers = f"{n} parametric RF layer{'s' if n != 1 else ''}"
        held = (f"{layers} with no params of their own (they reuse the weights of layers before the cut) and"
                if shared else f"{layers}, {tail.params:,} params ({pct(tail.params, a.params)}%) and")
        yield self.finding(
            border.name,
            # not "the layers from the border on are unproductive": a tail holds productive layers too
            # (a block's first conv before its dead second one, a skip's projection); what is true of
            # all of it is the segment rule's claim (rules/RF002.md)
            f"predicted tail at {fmt_size(ctx.size)} {unit(ctx.size)}: after {said} no path to the output can add spatial "
            f"context (the tail's first unproductive layer, its border, is {named(border.name)}); the tail holds "
            f"{held} {tail.macs:,} MACs ({pct(tail.macs, a.macs)}%); {advice}",
            border.source,
            cut=cut, border=border.name, layers=[layer.name for layer in tail.layers],
            parametric_layers=n, params=tail.params, macs=tail.macs,
            params_pct=pct(tail.params, a.params), macs_pct=pct(tail.macs, a.macs),
            truncation=plan.as_dict() if plan else None,
        )


def _why_by_hand(a, tail) -> str:
    """Why no truncation is planned ("it returns 2 tensors ..."), for the message: without it the
    advice read as if rflint had simply not bothered."""
    reason = no_plan_reason(a, tail)
    return f" (no automatic truncation: {reason})" if reason else ""
