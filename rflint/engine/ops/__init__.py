"""Per-node transfer rules: which fx node does what to the receptive field (rf-semantics.md §2).

``transfer(ctx)`` looks at one fx node (module, function or method; its arguments' RFs and the
shapes from meta propagation) and returns an :class:`Outcome`: the output's TensorRF, and for RF
layers the :class:`KernelOp` that produced it.  Unknown ops are inferred from shapes, with a
warning, never silently guessed.  context.py: what a rule sees; modules.py, functions.py and
tensors.py: the rules.
"""

from __future__ import annotations

import torch

from rflint.engine.ops.context import Ctx, Outcome, apply_kernel, shape_of
from rflint.engine.ops.functions import _FUNCTION_RULES, _METHOD_RULES, FUNCTION_NAMES
from rflint.engine.ops.modules import _module_rule
from rflint.engine.ops.tensors import _inferred, _merged_rf, _reshape
from rflint.engine.rfstate import TensorRF

__all__ = ["Ctx", "FUNCTION_NAMES", "Outcome", "apply_kernel", "transfer"]


def transfer(ctx: Ctx) -> Outcome:
    node = ctx.node
    if node.op == "call_module":
        return _module_rule(ctx)
    if node.op == "call_function":
        rule = _FUNCTION_RULES.get(node.target)
        if rule is not None:
            return rule(ctx)
        return _generic(ctx)
    if node.op == "call_method":
        rule = _METHOD_RULES.get(node.target)
        if rule is not None:
            return rule(ctx)
        return _generic(ctx)
    if node.op == "output":
        return Outcome(_merged_rf(ctx))
    return Outcome(None)  # get_attr: weights and constants carry no RF


def _generic(ctx: Ctx) -> Outcome:
    """Functions we have no rule for: elementwise if the spatial layout is kept, else inferred."""
    rf = _merged_rf(ctx)
    if rf is None or rf.is_global or not isinstance(ctx.out, torch.Tensor):
        return Outcome(rf if isinstance(ctx.out, (torch.Tensor, tuple, list)) else None)
    out = shape_of(ctx.out)
    if all(-a.dim <= len(out) for a in rf.axes) and _sizes_kept(ctx, rf):
        return Outcome(rf)
    src = shape_of(ctx.val(ctx.first))
    if src is None or len(src) != len(out):  # a layout change (einops rearrange, ...): a reshape
        return _reshape(ctx)
    return _inferred(ctx, f"operation {ctx.op_name}")


def _sizes_kept(ctx: Ctx, rf: TensorRF) -> bool:
    out = shape_of(ctx.out)
    for a in ctx.tensor_inputs():
        shape = shape_of(ctx.val(a))
        arf = ctx.rf(a)
        if shape is None or arf is None or not arf.spatial:
            continue
        for axis in arf.axes:
            d = axis.dim
            if -d > len(shape) or -d > len(out) or (shape[d] != out[d] and shape[d] != 1):
                return False
    return True
