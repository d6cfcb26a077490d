"""RF005 insufficient-receptive-field: no unit of the last feature map sees the whole input."""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import nn

from rflint.engine.numbers import nums
from rflint.engine.ops.functions import FOURIER_TRANSFORMS
from rflint.rules.base import Rule
from rflint.rules.structure import a_or_an, axis_names, fmt_size, sized, unit
from rflint.wording import named

_WHAT = {False: "objects", True: "patterns"}  # (a sound's, a signal's: no objects in a waveform)


class InsufficientReceptiveField(Rule):
    code = "RF005"
    name = "insufficient-receptive-field"
    severity = "warning"

    def check(self, ctx):
        a = ctx.analysis
        if a.final_layer is None or a.final_r_max is None:
            return
        layer = a.layer(a.final_layer)
        pairs = [(r, size) for r, size in zip(a.final_r_max, ctx.size) if r is not None]  # input axis order
        if not pairs or not all(r < size for r, size in pairs):
            return
        # the graph walks below only for a model the rule would report
        missing = set(range(len(ctx.size))) - set(a.final_origins or ())
        if missing and a.final_origins is not None and _mixed_away(a, missing):
            # an input axis the last spatial tensor no longer has was mixed away on the way (a mean
            # over frequency, a Linear over W): every unit sees all of it, so it is covered
            return
        if _attention_after(a, layer.node):  # a ViT's 16 px patches are meant to be joined by attention
            return
        if _global_content_joined(a, layer.node):  # an image-pooling branch (ASPP, PSPNet) sees it all
            return
        seen = f"{fmt_size(a.final_r_max)} {unit(ctx.size)}"
        if any(r is None for r in a.final_r_max):  # an axis picked by an index: the others ("-x5 px")
            names = axis_names(len(ctx.size))
            kept = [i for i, r in enumerate(a.final_r_max) if r is not None]
            seen = (f"{fmt_size([a.final_r_max[i] for i in kept])} {unit(ctx.size)} along "
                    f"{', '.join(names[i] for i in kept)}")
        yield self.finding(
            layer.name,
            f"no unit of the last feature map ({named(layer.name)}) sees the whole input: its largest receptive field "
            f"is {seen} for {a_or_an(sized(ctx.size))} input; {_WHAT[len(ctx.size) == 1]} larger than that are only "
            "ever seen in pieces",
            layer.source,
            final_r_max=nums(a.final_r_max), input=list(ctx.size),
        )


_ATTENTION_MODULES = (nn.MultiheadAttention, nn.TransformerEncoderLayer, nn.TransformerDecoderLayer,
                      nn.TransformerEncoder, nn.TransformerDecoder, nn.Transformer,
                      nn.RNNBase)  # a GRU/LSTM over the positions carries each to every later one
_PRODUCTS = {torch.matmul, operator.matmul, torch.bmm, torch.baddbmm, torch.einsum, F.scaled_dot_product_attention}


def _mixed_away(a, missing: set[int]) -> bool:
    """Some model-input axis in ``missing`` was removed by an op that mixed its positions (a mean,
    a Linear, a flatten into the channels), not picked by an index (``x[:, :, 0]``) or squeezed
    from a single pixel: those leave one row, which sees no more than before."""
    traced = a.traced
    if traced is None:
        return False
    rfs, values = a.node_rf, a.values
    for node in traced.order:
        out = rfs.get(node)
        if out is None or out.is_global:
            continue
        kept = {axis.origin for axis in out.axes}
        for src in node.all_input_nodes:
            rf = rfs.get(src)
            shape = getattr(values.get(src), "shape", None)
            if rf is None or shape is None:
                continue
            for axis in rf.axes:
                if axis.origin in missing and axis.origin not in kept:
                    picked = node.op == "call_function" and node.target is operator.getitem
                    if not picked and -axis.dim <= len(shape) and shape[axis.dim] > 1:
                        return True
    return False


_CONTENT_MERGES = {torch.cat, torch.concat, torch.add, operator.add, operator.iadd}


def _global_content_joined(a, start: str) -> bool:
    """On a path through node ``start``, a tensor computed from the whole map is merged into a map
    as content (concatenated or added): the image-pooling branch of ASPP or PSPNet's 1x1 bin,
    pooled, projected and broadcast back, before the last RF layer or after it (the merged map
    pooled straight into the classifier).  Every unit after it has whole-image features, which
    rf-semantics.md leaves out of r_max as modulation; a gate that scales the map (SE: a product)
    only reweights what each unit saw, and does not count."""
    traced = a.traced
    if traced is None:
        return False
    rfs = a.node_rf

    def joins_global_content(node) -> bool:
        out = rfs.get(node)
        content_merge = (node.op == "call_function" and node.target in _CONTENT_MERGES) or (
            node.op == "call_method" and node.target in ("add", "__add__"))
        return content_merge and out is not None and not out.is_global and any(
            (r := rfs.get(src)) is not None and r.is_global for src in node.all_input_nodes)

    return _on_a_path_through(traced.node_by_name[start], joins_global_content)


def _on_a_path_through(start, holds) -> bool:
    """Some node on a path through ``start`` (before it, itself, or after it) for which ``holds``."""
    for neighbours in (lambda node: node.all_input_nodes, lambda node: node.users):
        stack, seen = [start], set()
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            if holds(node):
                return True
            stack.extend(neighbours(node))
    return False


def _attention_after(a, start: str) -> bool:
    """Some op on a path through node ``start`` mixes positions by attention: a transformer layer, or
    a product of two activations (q @ k^T, einsum); or by a Fourier transform of the map (a global
    filter).  After it (on the way to the output), the views of the last feature map are combined
    by learned weights across the whole map, not only by the pooling and linear classifier the rule
    is about; before it, in a branch that joins the map (UNETR's decoder takes the ViT's tokens as
    maps, a non-local block adds its attention), every unit already has whole-map content, which
    rf-semantics.md leaves out of merges as modulation."""
    traced = a.traced
    if traced is None:
        return False
    node_of, modules, rfs = traced.node_by_name, traced.modules, a.node_rf

    def lost_positions(node) -> bool:
        """The node took spatial axes from a map and still hands on a map: it mixed positions
        (an FFT over H and W), unlike a global pool, which leaves one value.  (grid_sample mixes
        none: each unit reads a window around its grid point, and the grid is modulation.)"""
        src = node.all_input_nodes[0] if node.all_input_nodes else None
        rf_in, rf_out = rfs.get(src), rfs.get(node)
        if rf_in is None or rf_out is None or len(rf_out.axes) >= len(rf_in.axes):
            return False
        shape = getattr(a.values.get(node), "shape", None)
        return shape is not None and any(d > 1 for d in shape[2:])

    def mixes(node) -> bool:
        if node.op == "call_module" and isinstance(modules.get(node.target), _ATTENTION_MODULES + (nn.Fold,)):
            return True
        if node.op == "call_function" and node.target is F.fold:
            # a map rebuilt from F.unfold's columns: the RFs after it are not tracked (a warning
            # says so), so whether the last map sees enough is not known
            return True
        if node.op == "call_function" and node.target in FOURIER_TRANSFORMS \
                and lost_positions(node):  # an FFT over the channels mixes no position
            return True
        is_product = (node.op == "call_function" and node.target in _PRODUCTS) or (
            node.op == "call_method" and node.target in ("matmul", "bmm"))
        if not is_product:
            return False
        out = rfs.get(node)
        if out is not None and out.axes:  # positions kept: a product of maps elementwise (einsum's bchw,bchw->bchw)
            return False
        operands = [r for src in node.all_input_nodes if (r := rfs.get(src)) is not None]
        # two activations; but one map times weights pooled from it (an SK block's branch attention,
        # a gate) is modulation, which reweights what each unit saw
        return len(operands) >= 2 and sum(1 for r in operands if r.axes) != 1

    return _on_a_path_through(node_of[start], mixes)
