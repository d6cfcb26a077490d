"""RF007 non-dominant-branch: a fork-join whose branches differ a lot in parametric depth.

Seed 000 ("Go with the flow") shows that in multi-path networks the shorter paths do most of the
work: when one branch is ``dominance-ratio`` times deeper than another, the deeper one is predicted
to be bypassed.  The fork of a merge is its immediate dominator; branch depth is the largest number
of parametric layers on a fork -> operand path.

Branch depths come from one pass over the graph, not one walk per merge (which is quadratic in a
dense block whose every concatenation forks at the block's input): with D(v) the most parametric
layers on a path from an image input to v, through spatial tensors, the depth of an operand p from
its merge's fork f is D(p) - D(f).  The fork dominates p (every path into p goes on into the
merge), so every input -> p path is an input -> f path followed by an f -> p path, and any two such
halves make a path: the longest is the longest of each.  Where D is missing (a fork or operand no
spatial path from the input reaches) the merge gets its own walk.

An operand computed from another operand of the same merge counts its layers from the deepest such
operand, not from the fork (:func:`_own_depths`): torchvision's dense block concatenates the list of
every earlier map at once, the same joins as the zoo's chain of pairwise concatenations, and
reads the same (a layer's two convs against the maps before it).  "Go with the flow" finds
DenseNet's and ResNet's layers skipped in the tail only, not bypassed as a deep pathway is.
"""

from __future__ import annotations

from rflint.rules.base import Rule
from rflint.trace.sources import calling_module, node_site
from rflint.wording import count


class NonDominantBranch(Rule):
    code = "RF007"
    name = "non-dominant-branch"
    severity = "info"

    def check(self, ctx):
        a, s = ctx.analysis, ctx.structure
        ratio = ctx.settings.dominance_ratio
        node_by_name = a.traced.node_by_name
        rf = a.rf
        spatial = {n for n in s.relevant if (r := rf.get(n)) is not None and r.spatial}
        parametric = {layer.node for layer in a.layers if layer.parametric}
        outputs = a.order[-1]  # fx's output node lists what forward() returns: not a merge
        from_input: dict[str, int] | None = None  # D, worked out at the first merge
        for merge in a.order:
            if merge not in spatial or merge == outputs:
                continue
            operands = [p for p in s.preds[merge] if p in spatial]
            if len(operands) < 2:
                continue
            fork = s.idom.get(merge)
            if fork is None or fork not in s.position:
                continue
            if from_input is None:
                from_input = _depths(a.order, a.inputs, s.preds, parametric, spatial)
            base = from_input.get(fork)
            if base is not None and all(p in from_input for p in operands):
                branch = {p: from_input[p] - base for p in operands}
            else:
                depth = _depths(a.order[s.position[fork] + 1: s.position[merge]], [fork], s.preds, parametric, spatial)
                branch = {p: depth.get(p, 0) for p in operands}
            if len(operands) > 2 or fork not in operands:  # one may be computed from another (a dense
                # block's list of maps); of two, where one is the fork, the other is computed from it alone
                branch = _own_depths(a.order[s.position[fork] + 1: s.position[merge]], branch, s.preds, spatial)
            deep = max(operands, key=branch.__getitem__)
            shallow = min(operands, key=branch.__getitem__)
            d_deep, d_shallow = branch[deep], branch[shallow]
            if d_deep < ratio * max(d_shallow, 1):
                continue
            node = node_by_name[merge]
            owner = calling_module(node)
            name = f"{owner}.{merge}" if owner else merge
            yield self.finding(
                name,
                f"{name} joins a branch of {count(d_deep, 'parametric layer')} with one of {d_shallow}: "
                f"the deeper branch is predicted to be bypassed (the shorter path dominates training)",
                node_site(node),
                fork=a.tensor_name(fork), deep_branch_layers=d_deep, shallow_branch_layers=d_shallow,
                ratio=round(d_deep / max(d_shallow, 1), 3), dominance_ratio=ratio,
            )


def _own_depths(between: list[str], branch: dict[str, int], preds: dict[str, list[str]], spatial: set[str]
                ) -> dict[str, int]:
    """Each operand's branch depth counted from the deepest other operand it is computed from, if
    any (else from the fork, as ``branch`` has it): the concatenation of a dense block's every map,
    torch.cat([x, f1, f2, f3]) (torchvision's DenseNet), is the chain cat(cat(cat(x, f1), f2), f3)
    written at once, where each f reads the maps before it; counted from the fork, f3 had the
    depth of the whole chain and each dense layer was reported.  One pass over the nodes between
    the fork and the merge (``between``, topological): per node the largest depth of an operand it
    is computed from."""
    above: dict[str, int] = {}  # node -> the largest branch depth of an operand among its ancestors
    for node in between:
        if node not in spatial:
            continue
        best = -1
        for p in preds.get(node, ()):
            d = branch[p] if p in branch else above.get(p, -1)
            if d > best:
                best = d
        if best >= 0:
            above[node] = best
    return {p: d - max(above.get(p, 0), 0) for p, d in branch.items()}


def _depths(order: list[str], starts: list[str], preds: dict[str, list[str]], parametric: set[str],
            spatial: set[str]) -> dict[str, int]:
    """Most parametric layers on a path from one of ``starts`` (depth 0, their own layer not
    counted) to every node of ``order`` (topological) that such a path reaches, through spatial
    tensors only: gates computed from a global tensor (SE, CBAM's channel gate) are modulation, not
    a branch (rf-semantics.md §2), so their layers do not make a branch deeper.  ``spatial``: the
    relevant nodes with a spatial RF (a spatial predecessor of a relevant node is itself relevant,
    so no path is lost by walking the relevant nodes only)."""
    depth = dict.fromkeys(starts, 0)
    for node in order:
        if node not in spatial or node in depth:
            continue
        best = -1
        for p in preds[node]:
            d = depth.get(p, -1)
            if d > best:
                best = d
        if best >= 0:
            depth[node] = best + (1 if node in parametric else 0)
    return depth
