"""Rules for ops that move, merge or mix positions without a kernel: merges (with the modulation
exception), reshapes, permutes, reductions, indexing, and shape inference for unknown ops."""

from __future__ import annotations

import math
import operator
from fractions import Fraction
from typing import Any

import torch
import torch.fx as fx

from rflint.engine import kernels as K
from rflint.engine.ops.context import Ctx, Outcome, apply_kernel, not_empty, shape_of
from rflint.engine.rfstate import AxisRF, TensorRF
from rflint.engine.weights import parameters_behind
from rflint.trace.metaspec import first_shape, is_tensor_like


def _same_spatial(ctx: Ctx, rf: TensorRF) -> bool:
    out = shape_of(ctx.out)
    src = shape_of(ctx.val(ctx.first))
    if out is None or src is None:
        return False
    return all(-a.dim <= len(out) and -a.dim <= len(src) and out[a.dim] == src[a.dim] for a in rf.axes)


def _merged_rf(ctx: Ctx) -> TensorRF | None:
    """Union of the operands' RFs (rf-semantics.md: merges), leaving out *modulation* operands:
    global tensors, and tensors broadcast from size 1 onto a larger spatial axis (SE / CBAM gates)."""
    inputs = ctx.node.all_input_nodes
    if len(inputs) == 1:  # one operand (activations, norms ...): its RF, whatever it is
        return ctx.rf(inputs[0])
    return merged([(rf, shape_of(ctx.val(a))) for a in ctx.tensor_inputs() if (rf := ctx.rf(a)) is not None],
                  shape_of(ctx.out))


def merged(operands: list[tuple[TensorRF, tuple[int, ...] | None]], out_shape: tuple[int, ...] | None
           ) -> TensorRF | None:
    """:func:`_merged_rf` of two or more operands, each (RF, shape), into an output of ``out_shape``."""
    if not operands:
        return None
    spatial = [(rf, shape) for rf, shape in operands if rf.axes]
    if not spatial:
        return TensorRF((), True, min(r.d_min for r, _ in operands), max(r.d_max for r, _ in operands))
    contributing = [rf for rf, shape in spatial if not _broadcast(shape, out_shape, rf)]
    if not contributing:  # every spatial operand is broadcast: keep them all rather than nothing
        contributing = [rf for rf, _ in spatial]
    if len(contributing) == 1:
        return contributing[0]
    by_origin: dict[int, list[AxisRF]] = {}
    for rf in contributing:
        for axis in rf.axes:
            by_origin.setdefault(axis.origin, []).append(axis)
    axes = [AxisRF.union(group, group[0].dim) for group in by_origin.values()]
    return TensorRF(
        tuple(sorted(axes, key=lambda a: a.dim)), False,
        min(r.d_min for r in contributing), max(r.d_max for r in contributing),
    )


def sizes_kept(operands: list[tuple[TensorRF | None, tuple[int, ...] | None]], out: tuple[int, ...]) -> bool:
    """Every spatial operand (RF, shape) has the output's size on its axes, or 1 (broadcast)."""
    for rf, shape in operands:
        if shape is None or rf is None or not rf.axes:
            continue
        for axis in rf.axes:
            d = axis.dim
            if -d > len(shape) or -d > len(out) or (shape[d] != out[d] and shape[d] != 1):
                return False
    return True


def _broadcast(shape: tuple[int, ...] | None, out: tuple[int, ...] | None, rf: TensorRF) -> bool:
    if shape is None or out is None:
        return False
    for axis in rf.axes:
        d = axis.dim
        if -d <= len(shape) and -d <= len(out) and shape[d] == 1 < out[d]:
            return True
    return False


def _elementwise(ctx: Ctx) -> Outcome:
    """Ops that keep the spatial layout: unions of their tensor operands (one operand: identity)."""
    return Outcome(_merged_rf(ctx))


def _reshape(ctx: Ctx) -> Outcome:
    """view / reshape / flatten / squeeze ...: the dims are matched in groups of equal size from the
    end (``_dim_groups``).  An axis alone in its group moves with it; one split into several dims,
    ``(B, C, H, W) -> (B, C, H/2, 2, W/2, 2)``, goes on as the block index (the outer dim), a window
    of the block's size with that stride, like PixelUnshuffle (the space-to-depth of TResNet and
    einops' layers); an axis merged with another dim is gone (all gone: the tensor is global)."""
    rf = ctx.rf(ctx.first)
    src, out = shape_of(ctx.val(ctx.first)), shape_of(ctx.out)
    if rf is None or rf.is_global or src is None or out is None:
        return Outcome(rf)
    flattened = _flattened_dims(ctx, len(src))
    if flattened is not None and len(flattened.intersection(len(src) + a.dim for a in rf.axes)) > 1:
        # a flatten of spatial axes (rf-semantics.md: global), whatever their sizes: matched by
        # sizes, a 1x1 map's flatten(2) kept W (a unit dim faced it) and dropped H, and a 2x1
        # map's kept H: one axis of a square model's RF, and the other's from another path
        return Outcome(rf.with_axes([a for a in rf.axes if len(src) + a.dim not in flattened]))
    groups = _dim_groups(src, out) if math.prod(src) == math.prod(out) else None
    if groups is not None:
        return _regrouped(ctx, rf, src, out, groups)
    # expand / expand_as (sizes need not match)
    broadcast = len(out) >= len(src) and all(a in (b, 1) for a, b in zip(reversed(src), reversed(out)))
    keep = []
    for axis in rf.axes:
        d = axis.dim
        if broadcast:  # one-size dims repeated (a one-channel attention map expand_as the features):
            if src[d] == out[d]:  # an axis keeps its positions where its size stays
                keep.append(axis)
        elif (-d <= len(out) and all(src[i] == out[i] for i in range(d, 0))
                and math.prod(src[:d]) == math.prod(out[:d])):  # else where nothing changed
            keep.append(axis)
    return Outcome(rf.with_axes(keep) if len(keep) != len(rf.axes) else rf)


def _flattened_dims(ctx: Ctx, n: int) -> set[int] | None:
    """The source dims a flatten merges into one (``torch.flatten``, ``x.flatten``, ``nn.Flatten``),
    None for any other reshape (matched by sizes) or a range not given as numbers."""
    node = ctx.node
    if isinstance(ctx.module, torch.nn.Flatten):
        start, end = ctx.module.start_dim, ctx.module.end_dim
    elif (node.op == "call_function" and node.target is torch.flatten) or (
            node.op == "call_method" and node.target == "flatten"):
        start, end = ctx.arg(1, "start_dim", 0), ctx.arg(2, "end_dim", -1)
    else:
        return None
    if type(start) is not int or type(end) is not int or n == 0:
        return None
    start, end = start % n, end % n
    return set(range(start, end + 1)) if start < end else None


def _dim_groups(src: tuple[int, ...], out: tuple[int, ...]) -> list[tuple[list[int], list[int]]] | None:
    """The dims of a reshape in groups of equal size, from the end: (source dims, output dims) per
    group, each list from the inner dim out.  None when they do not line up."""
    groups, i, j = [], len(src) - 1, len(out) - 1
    while i >= 0 and j >= 0:
        mine, theirs, a, b = [i], [j], src[i], out[j]
        while a != b:
            if a < b:
                i -= 1
                if i < 0:
                    return None
                mine.append(i)
                a *= src[i]
            else:
                j -= 1
                if j < 0:
                    return None
                theirs.append(j)
                b *= out[j]
        groups.append((mine, theirs))
        i, j = i - 1, j - 1
    # what is left on one side are unit dims (the sizes matched): they take no axis along
    return groups


def _regrouped(ctx: Ctx, rf: TensorRF, src: tuple[int, ...], out: tuple[int, ...],
               groups: list[tuple[list[int], list[int]]]) -> Outcome:
    n_src, n_out = len(src), len(out)
    group_of = {i: (mine, theirs) for mine, theirs in groups for i in mine}
    spatial = {n_src + axis.dim for axis in rf.axes}
    shuffled: list[AxisRF] = []  # the axes upsampled by depth-to-space
    axes, kernels = [], {}  # kernels: source dim -> (window, stride) = the block, for the axes split into blocks
    for axis in rf.axes:
        i = n_src + axis.dim
        if i not in group_of:
            continue  # a unit dim left over: squeezed away
        mine, theirs = group_of[i]
        if src[i] == 1:  # a one-pixel axis (a map pooled down to 1x1): kept where a unit dim faces it
            if len(mine) == 1 and len(theirs) == 1:
                axes.append(AxisRF(axis.origin, theirs[0] - n_out, axis.lo, axis.hi))
            continue
        merged = [k for k in mine if src[k] > 1]  # from the inner dim out
        if len(merged) > 1:
            wide = [k for k in theirs if out[k] > 1]
            if merged[-1] != i or spatial.intersection(merged[:-1]) or len(wide) != 1:
                continue  # merged with another spatial dim, or after one: gone
            # the axis leads its merge and the dims after it are channels' (view(B, C, f, f, H, W),
            # permute, reshape(B, C, H*f, W*f)): depth-to-space, an upsampling by their product,
            # as PixelShuffle (r, j/f); checked below that channels are left
            factor = out[wide[0]] // src[i]
            shuffled.append(AxisRF(axis.origin, wide[0] - n_out, axis.lo, axis.hi).step(0, Fraction(1, factor)))
            kernels[axis.dim] = (1, Fraction(1, factor))
            continue
        j = min((k for k in theirs if out[k] > 1), default=None)
        if j is None:
            continue
        block = src[i] // out[j]  # 1: the axis just moved (unit dims around it came or went)
        moved = AxisRF(axis.origin, j - n_out, axis.lo, axis.hi)
        if block > 1:
            moved = moved.step(block - 1, block)
            kernels[axis.dim] = (block, block)
        axes.append(moved)
    if shuffled:
        taken = {n_out + a.dim for a in axes + shuffled}
        if any(k not in taken for k in range(1, n_out)):  # (a one-channel map: ESPCN's Y, mono audio)
            axes += shuffled
        else:  # no channels left: the axis was merged with all of them ((B, T, F, C) -> (B, T, F*C)): gone
            kernels = {d: block for d, block in kernels.items() if block[0] > 1}
    result = rf.with_axes(sorted(axes, key=lambda a: a.dim) if shuffled else axes)
    if not kernels:
        return Outcome(result)
    kind = "unshuffle" if any(window > 1 for window, _ in kernels.values()) else "upsample"
    return Outcome(result, K.blocks(ctx.op_name, kind, kernels))


def _tensor_unfold(ctx: Ctx) -> Outcome:
    """``x.unfold(dim, size, step)``: windows of ``size`` positions every ``step`` along ``dim`` (an
    audio front-end's framing), laid out along a new last dim.  Along a spatial ``dim`` that is a
    window like a conv's, (r + (size-1)*j, j*step), the frame index keeping the axis; every other
    axis moves one dim inwards past the new one."""
    rf = ctx.rf(ctx.first)
    src = shape_of(ctx.val(ctx.first))
    dim, size, step = ctx.arg(1, "dimension"), ctx.arg(2, "size"), ctx.arg(3, "step")
    if rf is None or rf.is_global or src is None or not all(isinstance(v, int) for v in (dim, size, step)):
        return Outcome(rf)
    dim = dim % len(src) - len(src)  # counted from the end
    axes, kernels = [], {}
    for axis in rf.axes:
        moved = AxisRF(axis.origin, axis.dim - 1, axis.lo, axis.hi)
        if axis.dim == dim:
            moved = moved.step(size - 1, step)
            kernels[axis.dim] = (size, step)
        axes.append(moved)
    result = rf.with_axes(axes)
    return Outcome(result, K.blocks(ctx.op_name, "unfold", kernels)) if kernels else Outcome(result)


def _permute_dims(ctx: Ctx) -> list[int] | None:
    src = shape_of(ctx.val(ctx.first))
    if src is None:
        return None
    rank = len(src)
    name = ctx.node.target if ctx.node.op == "call_method" else ctx.op_name.rpartition(".")[2]
    name = name.removesuffix("_copy").rstrip("_") if name not in ("getattr",) else name  # permute_copy, transpose_
    rest = [ctx.val(a) for a in ctx.node.args[1:]]
    if name == "getattr":  # x.mT / x.mH swap the last two dims, x.T reverses them all
        return list(range(rank - 2)) + [rank - 1, rank - 2] if rest[0] in ("mT", "mH") else list(range(rank))[::-1]
    if name == "rot90":  # an odd number of quarter turns swaps the two dims (where it flips is not tracked)
        k = rest[0] if rest else ctx.node.kwargs.get("k", 1)
        a, b = rest[1] if len(rest) > 1 else ctx.node.kwargs.get("dims", (0, 1))
        if k % 2 == 0:
            return list(range(rank))
        rest = [a, b]
    elif name == "permute":
        dims = rest[0] if len(rest) == 1 and isinstance(rest[0], (list, tuple)) else rest
        dims = dims or ctx.node.kwargs.get("dims")
        return [int(d) % rank for d in dims]
    elif name in ("movedim", "moveaxis"):  # x.movedim(1, -1): channels last, the rest in order
        source = rest[0] if rest else ctx.node.kwargs.get("source")
        destination = rest[1] if len(rest) > 1 else ctx.node.kwargs.get("destination")
        source = [int(d) % rank for d in (source if isinstance(source, (list, tuple)) else [source])]
        destination = [int(d) % rank for d in (destination if isinstance(destination, (list, tuple)) else [destination])]
        perm: list[int | None] = [None] * rank
        for s_, d_ in zip(source, destination):
            perm[d_] = s_
        others = iter(d for d in range(rank) if d not in source)
        return [p if p is not None else next(others) for p in perm]
    a = rest[0] if rest else ctx.node.kwargs.get("dim0")
    b = rest[1] if len(rest) > 1 else ctx.node.kwargs.get("dim1")
    if a is None or b is None:  # .t(): a 2-D transpose
        a, b = 0, 1
    perm = list(range(rank))
    perm[a % rank], perm[b % rank] = perm[b % rank], perm[a % rank]
    return perm


def _crop(ctx: Ctx) -> Outcome:
    """x.narrow(dim, start, length): a crop, like x[..., start:start + length]; the RF stays.
    (slice_copy(x, dim, start, end, step) with a step subsamples: inferred from the shapes.)"""
    if "slice" in ctx.op_name and (ctx.arg(4, "step", 1) or 1) != 1:
        return _inferred(ctx, ctx.op_name)
    return Outcome(ctx.rf(ctx.first))


# tensor attributes that are a permute: x.mT / x.mH swap the last two dims, x.T / x.H reverse them
TRANSPOSING_ATTRIBUTES = ("mT", "mH", "T", "H")


def _permute(ctx: Ctx) -> Outcome:
    rf = ctx.rf(ctx.first)
    perm = _permute_dims(ctx)
    if rf is None or rf.is_global or perm is None:
        return Outcome(rf)
    rank = len(perm)
    axes = [AxisRF(a.origin, perm.index(a.dim % rank) - rank, a.lo, a.hi) for a in rf.axes]
    return Outcome(rf.with_axes(axes))


def _dims_arg(ctx: Ctx, index: int, name: str = "dim") -> list[int] | None:
    dims = ctx.arg(index, name)
    if dims is None:
        return None
    return list(dims) if isinstance(dims, (list, tuple)) else [dims]


def _mix_dims(ctx: Ctx, src: Any, dims: list[int] | None) -> Outcome:
    """An op that mixes all positions along ``dims`` (None: all dims): those axes become global."""
    rf = ctx.rf(src)
    shape = shape_of(ctx.val(src))
    if rf is None or rf.is_global or shape is None:
        return Outcome(rf)
    if dims is None:
        return Outcome(rf.to_global())
    rank = len(shape)
    mixed = {int(d) % rank - rank for d in dims}
    keep = [a for a in rf.axes if a.dim not in mixed]
    # a channel reduction (CBAM's mean over dim 1) mixes no axis; positions are _reduction's job
    return Outcome(rf.with_axes(keep) if len(keep) != len(rf.axes) else rf)


def _reduction(ctx: Ctx) -> Outcome:
    """mean / sum / amax / max / ... over dims: reducing every spatial axis makes the tensor global."""
    if len(ctx.node.args) > 1 and is_tensor_like(ctx.val(ctx.node.args[1])):  # torch.max(a, b): elementwise
        return _elementwise(ctx)  # (a dim computed in forward(), y.mean(y.dim() - 1), is a node too)
    return _reduced(ctx, _dims_arg(ctx, 1), bool(ctx.arg(2, "keepdim", False)))


def _reduced(ctx: Ctx, dims: list[int] | None, keepdim: bool) -> Outcome:
    """The first operand reduced over ``dims`` (None: all of them): those axes are mixed away, and
    without ``keepdim`` the dims after them move up."""
    out = _mix_dims(ctx, ctx.first, dims)
    if out.rf is not None and out.rf.spatial and dims is not None and not keepdim:
        rank = len(shape_of(ctx.val(ctx.first)))
        removed = sorted(int(d) % rank - rank for d in dims)
        axes = [AxisRF(a.origin, a.dim + sum(1 for r in removed if r > a.dim), a.lo, a.hi) for a in out.rf.axes]
        out.rf = out.rf.with_axes(axes)
    return out


def reduction_along(dim_index: int | None, default: int | None = None, keepdim_index: int | None = None):
    """The rule of a reduction whose dims sit elsewhere than mean's (``kthvalue(x, k, dim)``,
    ``linalg.vector_norm(x, ord, dim)``, ``aminmax(x, *, dim)``) or default to the last dim
    (``mode``, ``kthvalue``, ``trapezoid``).  ``dim_index`` None: keyword only; ``keepdim_index``
    None: keyword only (or no keepdim at all, which reads as False).  Without such a rule these ops
    fell to the shape matching of reshapes, which took the kept axis for the reduced one."""
    def rule(ctx: Ctx) -> Outcome:
        dims = ctx.arg(dim_index, "dim") if dim_index is not None else ctx.node.kwargs.get("dim")
        dims = ctx.val(dims) if isinstance(dims, fx.Node) else dims
        if dims is None:
            dims = default
        dims = None if dims is None else list(dims) if isinstance(dims, (list, tuple)) else [dims]
        keepdim = ctx.arg(keepdim_index, "keepdim", False) if keepdim_index is not None \
            else ctx.node.kwargs.get("keepdim", False)
        return _reduced(ctx, dims, bool(keepdim))
    return rule


def _shifted(rf: TensorRF, rank: int, at: int, inserted: bool) -> TensorRF:
    """``rf`` (on a tensor of ``rank`` dims) with a dim inserted before position ``at`` (0-based,
    0..rank) or, ``inserted`` False, the dim at ``at`` taken away (an axis there is gone)."""
    axes = []
    for a in rf.axes:
        p = rank + a.dim
        if not inserted and p == at:
            continue
        new_rank = rank + 1 if inserted else rank - 1
        q = (p + 1 if p >= at else p) if inserted else (p - 1 if p > at else p)
        axes.append(AxisRF(a.origin, q - new_rank, a.lo, a.hi))
    return rf.with_axes(axes)


def _stacked(ctx: Ctx) -> Outcome:
    """torch.stack(maps, dim): the maps' union (every output position is one map's, as in a
    concatenation) with a new dim inserted at ``dim``.  Read as a reshape of its list, the
    stacked map had no RF, and the layers after it dropped out of the report."""
    pieces = ctx.tensor_inputs()
    shapes = [first_shape(ctx.val(a)) for a in pieces]  # (stack(x.unbind(3)): the pieces as one operand)
    if not pieces or any(sh is None for sh in shapes):
        return Outcome(_merged_rf(ctx))
    rank = len(shapes[0])
    dim = int(ctx.arg(1, "dim", 0)) % (rank + 1)
    rf = merged([(r, sh) for a, sh in zip(pieces, shapes) if (r := ctx.rf(a)) is not None], shapes[0]) \
        if len(pieces) > 1 else ctx.rf(pieces[0])
    if rf is None:
        return Outcome(rf)
    out = _shifted(rf, rank, dim, inserted=True) if not rf.is_global else rf
    sliced = _unstacked_source(ctx)
    whole_rf = ctx.rf(sliced[0]) if sliced is not None else None
    if whole_rf is not None and not whole_rf.is_global:
        # every slice of one map along an axis, in order, each through its own ops (a per-frame
        # conv, Linear or pooling), stacked: along the stack's dim each position reads its slice
        # alone, so that dim carries the map's RF along the sliced axis (in place again when the
        # stack puts it back where it was; also when the slices had no axis left, the frames of a
        # 1-D signal, or the per-frame op pooled the rest)
        whole, axis = sliced
        whole_rank = len(shape_of(ctx.val(whole)))
        found = [a for a in whole_rf.axes if whole_rank + a.dim == axis]
        if found and all(a.origin != found[0].origin for a in out.axes):
            restored = AxisRF(found[0].origin, dim - (rank + 1), found[0].lo, found[0].hi)
            out = out.with_axes([*out.axes, restored])
    return Outcome(out)


def _unstacked_source(ctx: Ctx) -> tuple[fx.Node, int] | None:
    """(x, d) when a stack's operand is every slice of ``x`` along dim ``d``, in order: ``x.unbind(d)``
    itself, or one piece per slice, each ``x.unbind(d)[i]``, ``x.select(d, i)`` or ``x[..., i]``
    through ops of its own (one RF operand each: a per-frame op, whatever it makes of the slice)."""
    first = ctx.node.args[0] if ctx.node.args else None
    if isinstance(first, fx.Node):  # stack(x.unbind(d))
        found = _slice_of(ctx, first)
        return (found[0], found[1]) if found is not None and found[2] is None else None
    if not isinstance(first, (list, tuple)) or not first or not all(isinstance(p, fx.Node) for p in first):
        return None
    sources = set()
    memo: dict[fx.Node, Any] = {}
    for i, piece in enumerate(first):
        found = _slice_behind(ctx, piece, memo)
        if found is None:
            return None
        whole, axis, index = found
        size = (shape_of(ctx.val(whole)) or ())[axis:axis + 1]
        if index is None or not size or index % size[0] != i:
            return None
        sources.add((whole, axis))
    if len(sources) != 1:
        return None
    whole, axis = sources.pop()
    return (whole, axis) if shape_of(ctx.val(whole))[axis] == len(first) else None


def _slice_behind(ctx: Ctx, node: fx.Node, memo: dict, depth: int = 0) -> tuple[fx.Node, int, int | None] | None:
    """The one slice (x, d, i) every operand with an RF of ``node`` comes from, back through the
    slice's own ops (a per-frame conv, its residual sum, an SE gate computed from the frame); None
    when some operand comes from elsewhere (another map, another slice) or from no slice.  At most
    200 ops back (a per-frame backbone's depth): the operands of a stack of whole maps would
    otherwise be walked back to the input, as deep as the network."""
    if node in memo:
        return memo[node]
    found = _slice_of(ctx, node)
    if found is None and depth < 200:
        inputs = [a for a in node.all_input_nodes if ctx.rf(a) is not None]
        behind = {_slice_behind(ctx, a, memo, depth + 1) for a in inputs}
        found = behind.pop() if len(behind) == 1 else None
    memo[node] = found
    return found


def _slice_of(ctx: Ctx, node: fx.Node) -> tuple[fx.Node, int, int | None] | None:
    """(x, d, i) when ``node`` is slice i of x along dim d (``x.unbind(d)[i]``, ``x.select(d, i)``,
    ``x[..., i]``); (x, d, None) when it is ``x.unbind(d)`` itself."""
    if not node.args or not isinstance(node.args[0], fx.Node):
        return None
    src = node.args[0]
    shape = shape_of(ctx.val(src)) if not (node.op == "call_function" and node.target is operator.getitem
                                           and _is_unbind(src)) else None
    name = node.target if node.op == "call_method" else getattr(node.target, "__name__", "")
    if name == "unbind" and shape:
        d = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        return (src, d % len(shape), None) if isinstance(d, int) else None
    if node.op == "call_function" and node.target is operator.getitem and _is_unbind(src):
        inner = _slice_of(ctx, src)
        return (inner[0], inner[1], node.args[1]) if inner is not None and isinstance(node.args[1], int) else None
    if name == "select" and shape:
        d = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        i = node.args[2] if len(node.args) > 2 else node.kwargs.get("index")
        return (src, d % len(shape), i) if isinstance(d, int) and isinstance(i, int) else None
    if node.op == "call_function" and node.target is operator.getitem and shape:
        index = node.args[1] if isinstance(node.args[1], tuple) else (node.args[1],)
        ints = [j for j, x in enumerate(index) if isinstance(x, int)]
        if len(ints) != 1 or any(x is not Ellipsis and x != slice(None) for j, x in enumerate(index) if j != ints[0]):
            return None
        at = ints[0] if Ellipsis not in index[:ints[0]] else len(shape) - (len(index) - ints[0])
        return src, at, index[ints[0]]
    return None


def _is_unbind(node: fx.Node) -> bool:
    name = node.target if node.op == "call_method" else getattr(node.target, "__name__", "")
    return name == "unbind"


def _complex_view(ctx: Ctx) -> Outcome:
    """view_as_real adds a last dim of 2 (real, imaginary), view_as_complex takes it away: the
    spatial dims keep their places from the front (their offsets from the end move by one).  Read
    by sizes (the element count changes), an STFT's frames were made global."""
    rf = ctx.rf(ctx.first)
    shape = shape_of(ctx.val(ctx.first))
    if rf is None or rf.is_global or shape is None:
        return Outcome(rf)
    real = "view_as_real" in ctx.op_name
    return Outcome(_shifted(rf, len(shape), len(shape) if real else len(shape) - 1, inserted=real))


def pairwise_reduction(dim_index: int | None, default: int, keepdim_index: int | None = None):
    """cosine_similarity / pairwise_distance / vecdot of two maps along one dim: both maps' union,
    that dim reduced (taken away; kept with keepdim, mixed)."""
    def rule(ctx: Ctx) -> Outcome:
        dim = ctx.arg(dim_index, "dim", default) if dim_index is not None else ctx.node.kwargs.get("dim", default)
        keepdim = ctx.arg(keepdim_index, "keepdim", False) if keepdim_index is not None else False
        return pair_reduced(ctx, int(dim), bool(keepdim))
    return rule


def pair_reduced(ctx: Ctx, dim: int, keepdim: bool) -> Outcome:
    """The union of the operands' RFs with ``dim`` reduced: taken away, or mixed with ``keepdim``."""
    rf = _merged_rf(ctx)
    shape = shape_of(ctx.val(ctx.first))
    if rf is None or rf.is_global or shape is None:
        return Outcome(rf)
    rank = len(shape)
    d = dim % rank
    if keepdim:
        return Outcome(rf.with_axes([a for a in rf.axes if rank + a.dim != d]))
    return Outcome(_shifted(rf, rank, d, inserted=False))


def _selected(ctx: Ctx) -> Outcome:
    """``select(dim, index)`` / ``unbind(dim)``: one position along ``dim``, which is gone; the
    other axes keep their RF (as ``x[..., 0]``: nothing is mixed).  Matched by sizes, a column of
    a map was read as the map made global."""
    rf = ctx.rf(ctx.first)
    shape = shape_of(ctx.val(ctx.first))
    if rf is None or rf.is_global or shape is None or not shape:
        return Outcome(rf)
    return Outcome(_shifted(rf, len(shape), int(ctx.arg(1, "dim", 0)) % len(shape), inserted=False))


def _softmax_fn(ctx: Ctx) -> Outcome:
    dims = _dims_arg(ctx, 1)
    if dims is None:  # torch's implicit dim (F._get_softmax_dim): 0 for 0-, 1- and 3-D inputs, else 1
        shape = shape_of(ctx.val(ctx.first))
        dims = [0 if shape is not None and len(shape) in (0, 1, 3) else 1]
    return _mix_dims(ctx, ctx.first, dims)


def _global_fn(ctx: Ctx) -> Outcome:
    """Attention-style matmuls and the like: every output position mixes every input position."""
    rf = _merged_rf(ctx)
    return Outcome(rf.to_global() if rf is not None else None)


def _matmul(ctx: Ctx) -> Outcome:
    """a @ b (matmul, mm, bmm).  Of two activations (q @ k^T, attention weights @ v) every output
    position mixes every input position: global.  With a constant or weight matrix on one side it
    is a Linear over the dim it contracts (a mel filterbank applied to a spectrogram's frequencies,
    a projection of the channels): that dim is mixed away, every other axis keeps its RF."""
    a, b = (ctx.node.args + (None, None))[:2]
    ra, rb = _spatial_rf(ctx.rf(a)), _spatial_rf(ctx.rf(b))
    if ra is not None and rb is not None and all(x.dim <= -3 for x in ra.axes + rb.axes):
        # positions in the batch dims of both (a product per pixel over the channels): each output
        # position reads its own, as an elementwise product would; the batch dims keep their places
        return Outcome(merged([(ra, None), (rb, None)], None))
    if (ra is None) == (rb is None):
        return _global_fn(ctx)
    shape_a, shape_b = shape_of(ctx.val(a)), shape_of(ctx.val(b))
    if shape_a is None or shape_b is None:
        return _global_fn(ctx)
    rf = ra if ra is not None else rb
    if rf.is_global:
        return Outcome(rf)
    if ra is not None:  # x @ W: x's last dim is contracted; a vector W takes that dim away
        contracted, removed = -1, len(shape_b) == 1
    else:  # W @ x: x's second-last dim is contracted; a vector W takes it away
        if len(shape_b) == 1:  # W @ v: v's only dim
            return Outcome(rf.to_global())
        contracted, removed = -2, len(shape_a) == 1
    # dims before a removed one move one place towards the end
    axes = [AxisRF(x.origin, x.dim + 1 if removed and x.dim < contracted else x.dim, x.lo, x.hi)
            for x in rf.axes if x.dim != contracted]
    out = rf.with_axes(axes) if removed or len(axes) != len(rf.axes) else rf
    other = b if ra is not None else a
    weights = parameters_behind([other], ctx.rf) if ctx.rf(other) is None else []  # global: modulation
    return Outcome(out.deeper(1) if weights else out, parametric=bool(weights))


def _spatial_rf(rf: TensorRF | None) -> TensorRF | None:
    """An operand's RF when it has spatial axes; None for a weight, a constant, or a global tensor
    (attention weights pooled from the whole map: modulation, rf-semantics.md §2, like a gate)."""
    return rf if rf is not None and rf.axes else None


def _einsum(ctx: Ctx) -> Outcome:
    """torch.einsum(equation, *operands), read from its subscripts.  An operand with spatial axes
    keeps each axis whose letter the output keeps (moved to its place there) and loses one it sums
    over; weights, constants and global operands (an SKNet's branch attention) add no RF.  Several
    spatial operands with the same spatial letters, all kept, are merged (a weighted sum of
    branches); any other meeting of activations (q k^T over positions) mixes every position:
    global.  It was global always, which made every layer after an SK block a head."""
    equation, *operands = ctx.node.args
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = list(operands[0])
    if not isinstance(equation, str) or "->" not in equation:
        return _global_fn(ctx)
    inputs, out = equation.replace(" ", "").split("->")
    subscripts = inputs.split(",")
    if "..." in equation:  # the dims an ellipsis stands for get letters of their own, aligned right
        subscripts, out = _without_ellipsis(subscripts, out, [shape_of(ctx.val(o)) for o in operands])
        if subscripts is None:
            return _global_fn(ctx)
    if len(subscripts) != len(operands) or any(len(set(sub)) != len(sub) for sub in subscripts):
        return _global_fn(ctx)  # (a repeated letter, 'bchh->bch': a diagonal, not read here)
    moved, letters = [], []
    for i, (sub, operand) in enumerate(zip(subscripts, operands)):
        rf = _spatial_rf(ctx.rf(operand))
        if rf is None or rf.is_global:
            continue
        others = out + "".join(other for j, other in enumerate(subscripts) if j != i)
        if not any(sub[x.dim] in others for x in rf.axes if -x.dim <= len(sub)):
            continue  # summed over all its positions and met by nothing: pooled, a gate's weights
        axes = [AxisRF(x.origin, out.index(sub[x.dim]) - len(out), x.lo, x.hi)
                for x in rf.axes if -x.dim <= len(sub) and sub[x.dim] in out]
        moved.append(rf.with_axes(axes))
        letters.append(frozenset(sub[x.dim] for x in rf.axes if -x.dim <= len(sub)))
    if not moved:
        return _global_fn(ctx)
    if len(moved) > 1 and (len(set(letters)) > 1 or any(not m.axes for m in moved)
                           or any(letter not in out for letter in letters[0])):
        return _global_fn(ctx)
    result = moved[0] if len(moved) == 1 else merged([(m, None) for m in moved], None)
    # a weight or a constant (no RF at all) is a projection; a global operand is modulation
    weights = parameters_behind([o for o in operands if isinstance(o, fx.Node) and ctx.rf(o) is None], ctx.rf) \
        if len(moved) == 1 else []
    return Outcome(result.deeper(1) if weights else result, parametric=bool(weights))


def _without_ellipsis(subscripts: list[str], out: str, shapes: list) -> tuple[list[str] | None, str]:
    """einsum subscripts with each '...' written out as letters no subscript uses (Greek), one per
    dim it covers, the last dims of every operand sharing theirs (broadcast aligns from the right)."""
    if len(subscripts) != len(shapes) or any(shape is None for shape in shapes):
        return None, out
    spans = [len(shape) - (len(sub) - 3) if "..." in sub else 0 for sub, shape in zip(subscripts, shapes)]
    if any(span < 0 for span in spans):
        return None, out
    letters = [chr(0x3B1 + i) for i in range(max(spans, default=0))]  # alpha, beta, ...
    def filled(sub: str, span: int) -> str:
        return sub.replace("...", "".join(letters[len(letters) - span:]))
    return [filled(sub, span) for sub, span in zip(subscripts, spans)], filled(out, max(spans, default=0))


def _getitem(ctx: Ctx) -> Outcome:
    src = ctx.first
    rf = ctx.rf(src)
    value = ctx.val(src)
    if rf is None or not is_tensor_like(value) or rf.is_global:
        if rf is not None and not rf.is_global and isinstance(src, fx.Node) and _unknown_op(src):
            return _picked_from_unknown(ctx, src, rf)
        return Outcome(rf)  # picking an element of a tuple output keeps the tuple's RF
    not_empty(ctx.node, ctx.out)  # a crop past a small map leaves nothing of it
    index = ctx.node.args[1]
    index = index if isinstance(index, tuple) else (index,)
    if any(isinstance(i, (fx.Node, torch.Tensor, list)) for i in index):  # advanced indexing
        src, out = shape_of(value), shape_of(ctx.out)
        if src is not None and out is not None and len(src) == len(out) and any(src[a.dim] != out[a.dim] for a in rf.axes):
            # which positions an index tensor picks is not in the shapes (x[..., idx] with every
            # second column was read as keeping the RF): a resampling, as an unknown op's
            return _inferred(ctx, "indexing with a tensor or list")
        return _elementwise(ctx)  # the sizes kept (a permutation, a flip): keep what the shapes allow
    rank = len(value.shape)
    # expand Ellipsis so every entry maps to a dim of the source
    n_real = sum(1 for i in index if i is not None and i is not Ellipsis)
    expanded: list[Any] = []
    for i in index:
        if i is Ellipsis:
            expanded.extend([slice(None)] * (rank - n_real))
        else:
            expanded.append(i)
    dim, steps, dropped, out_pos = 0, {}, set(), {}
    new_pos = 0
    for i in expanded:
        if i is None:
            new_pos += 1
            continue
        if isinstance(i, int):
            dropped.add(dim - rank)
        elif isinstance(i, slice):
            steps[dim - rank] = i.step or 1
            out_pos[dim - rank] = new_pos
            new_pos += 1
        dim += 1
    while dim < rank:
        out_pos[dim - rank] = new_pos
        dim, new_pos = dim + 1, new_pos + 1
    out_rank = new_pos
    axes = []
    strided = any(steps.get(a.dim, 1) != 1 for a in rf.axes)
    for a in rf.axes:
        if a.dim in dropped:
            continue
        s = steps.get(a.dim, 1)
        axis = a.step(Fraction(0), Fraction(s)) if s != 1 else a
        axes.append(AxisRF(a.origin, out_pos[a.dim] - out_rank, axis.lo, axis.hi))
    out = rf.with_axes(axes) if axes else (rf.to_global() if not dropped else rf.with_axes([]))
    if strided:
        kernel_axes = [a for a in rf.axes if a.dim not in dropped]
        n = max(-a.dim for a in kernel_axes)
        kop = K.strided_slice("slice", [steps.get(-n + i, 1) for i in range(n)])
        return Outcome(out, kop)
    return Outcome(out)


# ops returning pieces of their input (views, crops): a piece keeps the RF, as a crop does
_SPLITTING = frozenset({"split", "chunk", "tensor_split", "split_with_sizes", "unsafe_split", "unsafe_chunk",
                        "unsafe_split_with_sizes", "hsplit", "vsplit", "dsplit", "split_copy", "split_with_sizes_copy"})


def _unknown_op(node: fx.Node) -> bool:
    """A call rflint has no rule for (an fx.wrap-ed function, a method it does not know) that is
    no split of its input into pieces."""
    from rflint.engine.ops.functions import _FUNCTION_RULES, _METHOD_RULES
    from rflint.trace.shape_rules import is_hashable

    if node.op == "call_function":
        name = getattr(node.target, "__name__", "")
        return not (is_hashable(node.target) and node.target in _FUNCTION_RULES) and node.target is not getattr \
            and name not in _SPLITTING
    return node.op == "call_method" and node.target not in _METHOD_RULES and node.target not in _SPLITTING


def _picked_from_unknown(ctx: Ctx, call: fx.Node, rf: TensorRF) -> Outcome:
    """One tensor of what an unknown call returned (``a, b = two(x)``, ``two`` fx.wrap-ed).  The call
    kept its operands' RF for all of them; one whose spatial size is not its operand's was resampled
    inside (a pool, say): modelled as an unknown op's, from the shapes, as for a call that returns
    one tensor.  It passed the RF through unchanged, silently."""
    operand = next((a for a in call.all_input_nodes if is_tensor_like(ctx.val(a)) and ctx.rf(a) is not None), None)
    src, out = shape_of(ctx.val(operand)) if operand is not None else None, shape_of(ctx.out)
    if src is None or out is None or len(src) != len(out) or all(src[a.dim] == out[a.dim] for a in rf.axes):
        return Outcome(rf)
    what = f"{call.target.__name__ if callable(call.target) else call.target}(...)[{ctx.node.args[1]!r}]"
    return _inferred_from(ctx, rf, src, out, what)


def _inferred(ctx: Ctx, what: str) -> Outcome:
    return _inferred_from(ctx, ctx.rf(ctx.first), shape_of(ctx.val(ctx.first)), shape_of(ctx.out), what)


def _inferred_from(ctx: Ctx, rf: TensorRF | None, src_shape, out_shape, what: str) -> Outcome:
    """An op without a rule that changes the spatial size from ``src_shape`` to ``out_shape``:
    kernel 1, the stride the shapes say, with a warning."""
    if rf is None or rf.is_global or src_shape is None or out_shape is None or len(src_shape) != len(out_shape):
        return Outcome(rf.to_global() if rf is not None else None,
                       warning=f"{what}: output shape {out_shape} not understood, treated as global")
    # (the axes of a channels-last map, (B, H, W, C), end one dim before the last: the kernel spans them
    # and the channels, whose "stride" no axis takes)
    n = min(len(src_shape) - 1, max(-a.dim for a in rf.axes))
    kop = K.inferred(ctx.op_name, src_shape[-n:], out_shape[-n:])
    dims = {a.dim for a in rf.axes}  # (not a channels-last map's channels: no RF axis takes their ratio)
    strides = "x".join(_fmt(s) for i, s in enumerate(kop.stride) if i - n in dims)
    return Outcome(apply_kernel(rf, kop), kop,
                   warning=f"{what}: changes the spatial size, modelled as kernel 1, stride {strides} from the shapes")


def _fmt(x: Fraction) -> str:
    return str(int(x)) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"
