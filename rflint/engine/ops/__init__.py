"""Per-node transfer rules: which fx node does what to the receptive field (rf-semantics.md §2).

``transfer(ctx)`` looks at one fx node (module, function or method; its arguments' RFs and the
shapes from meta propagation) and returns an :class:`Outcome`: the output's TensorRF, and for RF
layers the :class:`KernelOp` that produced it.  Unknown ops are inferred from shapes, with a
warning, never silently guessed.  context.py: what a rule sees; modules.py, functions.py and
tensors.py: the rules.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.fx as fx

from rflint.declared import spec_for
from rflint.engine.ops.context import Ctx, Outcome, apply_kernel, kernel_result, shape_of
from rflint.engine.ops.einops_patterns import einops_kind, einops_outcome
from rflint.engine.ops.functions import _FUNCTION_RULES, _METHOD_RULES, FUNCTION_NAMES
from rflint.engine.ops.library import OPAQUE_WARNING, library_rule
from rflint.engine.ops.modules import (
    SHAPE_FREE_KERNELS, _linear, _module_rule, _pool_module, linear_rf, pool_module_kop, rule_of,
)
from rflint.engine.ops.tensors import (
    TRANSPOSING_ATTRIBUTES, _elementwise, _inferred, _merged_rf, _permute, _reshape, merged, sizes_kept,
)
from rflint.engine.rfstate import AxisRF, TensorRF, built, pareto_max, pareto_min
from rflint.trace.metaspec import MetaSpec, is_tensor_like
from rflint.trace.shape_rules import is_hashable
from rflint.trace.shapes import fx_wrapped

__all__ = ["Ctx", "FUNCTION_NAMES", "NOT_QUICK", "READS_RF", "READS_SHAPES", "READS_SIZES", "Outcome", "apply_kernel",
           "quick_step", "transfer"]

NOT_QUICK = object()  # a quick step's answer for a node that needs the full rule after all
# what a quick step reads (its ``reads`` attribute), for engine/replay.py and resized.py: the
# operands' RFs alone; or their RFs and the shapes of the operands and the output, to tell broadcast
# operands and layout changes apart (merges); or RFs and sizes as the node's rule does, so that it
# runs again wherever a shape changed (pools: does the window read a whole axis?)
READS_RF, READS_SHAPES, READS_SIZES = "rf", "shapes", "sizes"


def quick_step(node: fx.Node, modules: dict, inputs: list[fx.Node]):
    """A compiled ``step(rfs, values, modules) -> (rf, kernel)`` for one of the commonest nodes
    (convs, pools, linear layers, activations, norms, and functions without a rule of their own:
    merges, elementwise ops), or None: then ``transfer`` runs the node's rule.  ``inputs``: the
    node's ``all_input_nodes``.  A step answers only where that rule's outcome provably needs no
    more than the step looks at, so the two always agree (tests/test_fast_paths.py checks the zoo
    and random DAGs node by node), and returns NOT_QUICK for a call it was not compiled for (a
    module the stem experiment replaced).  Compiled once per trace (rfpass.plan_of); modules
    declared after that (``@rflint.layer``) are not seen by it, which is why the plan is keyed on
    ``declared.version()``."""
    return _quick_step(node, modules, inputs)


def _quick_step(node: fx.Node, modules: dict, inputs: list[fx.Node]):
    if node.op == "call_module":
        module = modules.get(node.target)
        if module is None or spec_for(module) is not None:
            return None
        target, rule = node.target, rule_of(module)
        if rule is _elementwise and len(inputs) == 1:  # _merged_rf's one-operand case
            src = inputs[0]

            def elementwise(rfs, values, modules):
                return (rfs.get(src), None) if modules[target] is module else NOT_QUICK
            elementwise.reads = READS_RF
            return elementwise
        first = node.args[0] if node.args else None
        src = first if isinstance(first, fx.Node) else None  # what Ctx.rf(ctx.first) reads
        if rule is _linear:  # not an RF layer: no kernel

            def linear(rfs, values, modules):
                if modules[target] is not module:
                    return NOT_QUICK
                return linear_rf(rfs.get(src) if src is not None else None), None
            linear.reads = READS_RF
            return linear
        if rule is _pool_module:
            return _pool_step(node, module, src)
        kop_of = SHAPE_FREE_KERNELS.get(rule)
        if kop_of is None:
            return None
        kop = kop_of(module)

        def kernel(rfs, values, modules):
            if modules[target] is not module:
                return NOT_QUICK
            return kernel_result(rfs.get(src) if src is not None else None, kop)
        kernel.reads = READS_RF
        return kernel
    if node.op == "call_function" and is_hashable(node.target) and _function_rule(node.target) is None and inputs \
            and not _transposing_attribute(node) and not fx_wrapped(node.target):  # (those warn: _generic)
        pair = inputs if len(inputs) == 2 else None

        def generic(rfs, values, modules):  # _generic when the layout is kept, without a Ctx
            if pair is not None:  # a residual or fork-join sum of two maps of one shape: a plain union
                rf = joined(rfs.get(pair[0]), rfs.get(pair[1]), values.get(pair[0]), values.get(pair[1]),
                            values.get(node))
                if rf is not None:
                    return rf, None
            operands = [(rfs.get(a), shape_of(values.get(a))) for a in inputs]
            if len(inputs) == 1:
                rf = operands[0][0]
            else:
                rf = merged([(r, shape) for r, shape in operands if r is not None], shape_of(values.get(node)))
            rf = kept_layout(rf, operands, values.get(node))
            return NOT_QUICK if rf is NOT_KEPT else (rf, None)
        generic.reads = READS_SHAPES
        return generic
    return None


def _pool_step(node: fx.Node, module, src: fx.Node | None):
    """A pool module's step: its kernel, unless an output axis has one pixel, where the window may
    read the whole axis and the rule (modules.pooled) decides."""
    target, kop = node.target, pool_module_kop(module)
    n = kop.n

    def kernel_only(values) -> bool:  # no output axis of one pixel: the answer is the kernel's alone
        shape = shape_of(values.get(node))
        return shape is not None and 1 not in shape[-n:]

    def pool(rfs, values, modules):
        if modules[target] is not module or not kernel_only(values):
            return NOT_QUICK
        return kernel_result(rfs.get(src) if src is not None else None, kop)
    pool.reads = READS_SIZES
    pool.kernel_only = kernel_only  # for the replays: where it holds at both sizes, as READS_RF
    return pool


def joined(a: TensorRF | None, b: TensorRF | None, va, vb, out) -> TensorRF | None:
    """``merged`` + ``kept_layout`` of two operands in their commonest form, or None (then the
    general code runs): both spatial with one axis per origin, the same (origin, dim) axes in
    ascending dims, and both of exactly the output's shape, so neither is broadcast (a gate) and
    the layout is kept.  Then every axis is the union of the two operands' axes."""
    if a is None or b is None or type(va) is not MetaSpec or type(vb) is not MetaSpec or type(out) is not MetaSpec:
        return None
    axes_a, axes_b, shape = a.axes, b.axes, out.shape
    if not axes_a or len(axes_a) != len(axes_b) or va.shape != shape or vb.shape != shape:
        return None
    axes, last, origins, rank = [], None, set(), len(shape)
    for x, y in zip(axes_a, axes_b):
        if x.origin != y.origin or x.dim != y.dim or x.origin in origins or -x.dim > rank \
                or (last is not None and x.dim <= last):
            return None
        origins.add(x.origin)
        last = x.dim
        axes.append(built(AxisRF, (x.origin, x.dim, pareto_min(x.lo + y.lo), pareto_max(x.hi + y.hi))))
    return built(TensorRF, (tuple(axes), False, min(a.d_min, b.d_min), max(a.d_max, b.d_max)))


def transfer(ctx: Ctx) -> Outcome:
    node = ctx.node
    if node.op == "call_module":
        return _module_rule(ctx)
    if node.op == "call_function":
        rule = _function_rule(node.target) if is_hashable(node.target) else None
        if rule is not None:
            return rule(ctx)
        if _transposing_attribute(node):
            return _permute(ctx)
        return _generic(ctx)
    if node.op == "call_method":
        rule = _METHOD_RULES.get(node.target)
        if rule is not None:
            return rule(ctx)
        return _generic(ctx)
    if node.op == "output":
        return Outcome(_merged_rf(ctx))
    return Outcome(None)  # get_attr: weights and constants carry no RF


def _transposing_attribute(node: fx.Node) -> bool:
    """x.mT, x.T: fx records them as getattr(x, "mT"), a permute."""
    return node.target is getattr and len(node.args) > 1 and node.args[1] in TRANSPOSING_ATTRIBUTES


def _function_rule(target):
    """The rule of a function target: the registry's (functions.py), or one for einops' functional
    forms or a known library function (library.py), registered at first sight (rflint imports
    neither einops nor those libraries; the model's code does)."""
    rule = _FUNCTION_RULES.get(target)
    if rule is None:
        kind = einops_kind(target)
        if kind is not None:
            def rule(ctx: Ctx) -> Outcome:  # the pattern decides; shapes only if it cannot
                return einops_outcome(ctx, kind) or _generic(ctx)
            _FUNCTION_RULES[target] = rule
            FUNCTION_NAMES.setdefault(target, f"einops.{kind}")
        else:
            known = library_rule(target)
            if known is not None:
                rule, FUNCTION_NAMES[target] = known
                _FUNCTION_RULES[target] = rule
    return rule


def _generic(ctx: Ctx) -> Outcome:
    """Functions we have no rule for: elementwise if the spatial layout is kept, else inferred."""
    operands = [(ctx.rf(a), shape_of(ctx.val(a))) for a in ctx.tensor_inputs()]
    rf = kept_layout(_merged_rf(ctx), operands, ctx.out)
    if rf is not NOT_KEPT:
        if rf is not None and rf.spatial and ctx.node.op == "call_function" and fx_wrapped(ctx.node.target):
            return Outcome(rf, warning=OPAQUE_WARNING)
        return Outcome(rf)
    out = shape_of(ctx.out)
    if ctx.node.target in _CONCATENATIONS and out is not None and all(
            shape is not None and len(shape) == len(out) for _, shape in operands):
        # joined along a spatial axis: every output pixel is one operand's, so its states are the
        # union of theirs (rf-semantics.md §2, merges), none of them a broadcast gate
        return Outcome(merged([(r, None) for r, _ in operands if r is not None], None))
    src = shape_of(ctx.val(ctx.first))
    if src is None or len(src) != len(out):  # a layout change (einops rearrange, ...): a reshape
        return _reshape(ctx)
    return _inferred(ctx, f"operation {ctx.op_name}")


NOT_KEPT = object()
_CONCATENATIONS = (torch.cat, torch.concat, torch.concatenate, torch.hstack, torch.vstack, torch.dstack, torch.column_stack,
                   torch.row_stack)


def _holds_tensors(value) -> bool:
    """Several tensors (split, chunk; a dict or a dataclass built from maps, as a model's output):
    they keep the RF.  A shape (``x.size()``, a torch.Size, a tuple of ints) does not: it is the
    same whatever the pixels, so no pixel reaches it, and an op that takes a size from another map
    (``F.interpolate(x, size=y.shape[2:])``) merges nothing."""
    if isinstance(value, dict):
        value = list(value.values())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):  # a ModelOutput-like result
        value = [getattr(value, f.name, None) for f in dataclasses.fields(value)]
    return isinstance(value, (tuple, list)) and any(is_tensor_like(v) for v in value)


def kept_layout(rf: TensorRF | None, operands: list, out) -> TensorRF | None:
    """``_generic``'s answer when the op keeps the spatial layout (or there is nothing spatial to
    keep): ``rf``, the operands' merged RF; else NOT_KEPT (a reshape or an inferred kernel)."""
    if rf is None or rf.is_global or not is_tensor_like(out):
        return rf if is_tensor_like(out) or _holds_tensors(out) else None
    shape = tuple(out.shape)
    if all(-a.dim <= len(shape) for a in rf.axes) and sizes_kept(operands, shape):
        return rf
    return NOT_KEPT
