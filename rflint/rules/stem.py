"""The removable-stem experiment (rf-semantics.md §5).

The stem is the RF layers before the first segment with parallel paths (ResNet: conv1 + maxpool);
a purely sequential network has no separate stem.  From the input side we try ever longer
prefixes of its downsampling layers (conv stride -> 1, pool removed), re-running shapes and the RF
program at the same input size (same graph, those modules replaced), and keep the shortest prefix
that makes the tail disappear, or else the one that shortens it most.
"""

from __future__ import annotations

from dataclasses import dataclass

from rflint.engine import Analysis, Layer
from rflint.engine.surgery import describe_change, stride_one
from rflint.rules.structure import Structure, analyse_structure


@dataclass
class StemProposal:
    layers: list[Layer]
    changes: list[str]
    removes_tail: bool
    tail_layers_before: int
    tail_layers_after: int
    macs_before: int
    macs_after: int
    after: Analysis
    structure_after: Structure


def stem_layers(structure: Structure) -> list[Layer]:
    first_parallel = next((seg for seg in structure.segments if seg.parallel), None)
    if first_parallel is None:
        return []
    return [layer for seg in structure.segments[: first_parallel.index] for layer in seg.layers]


def stem_experiment(ctx) -> StemProposal | None:
    s: Structure = ctx.structure
    if s.tail is None:
        return None
    candidates = [
        layer for layer in stem_layers(s)
        if layer.kop.downsampling and layer.kind in ("conv", "pool") and layer.node in _module_nodes(ctx.analysis)
    ]
    before = len(s.tail.parametric_layers)
    best: StemProposal | None = None
    for k in range(1, len(candidates) + 1):
        chosen = candidates[:k]
        after = ctx.analysis.prepared.at(ctx.analysis.input_size, replace=stride_one(ctx.analysis, chosen))
        s_after = analyse_structure(after, ctx.settings.min_tail_layers)
        n_after = len(s_after.tail.parametric_layers) if s_after.tail else 0
        proposal = StemProposal(
            chosen, [describe_change(layer) for layer in chosen], s_after.tail is None, before, n_after,
            ctx.analysis.macs, after.macs, after, s_after,
        )
        if proposal.removes_tail:
            return proposal
        if n_after < before and (best is None or n_after < best.tail_layers_after):
            best = proposal
    return best


def _module_nodes(a: Analysis) -> set[str]:
    return {node.name for node in a.traced.order if node.op == "call_module"}
