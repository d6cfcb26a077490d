"""Per-node transfer rules: which fx node does what to the receptive field (rf-semantics.md §2).

``transfer(ctx)`` looks at one fx node (module, function or method; its arguments' RFs and the
shapes from meta propagation) and returns an :class:`Outcome`: the output's TensorRF, and for RF
layers the :class:`KernelOp` that produced it.  Unknown ops are inferred from shapes, with a
warning, never silently guessed.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from rflint.engine import kernels as K
from rflint.engine.rfstate import AxisRF, TensorRF
from rflint.declared import spec_for


@dataclass
class Outcome:
    rf: TensorRF | None
    kernel: K.KernelOp | None = None
    warning: str | None = None
    parametric: bool = False  # a weight-bearing layer that is not an RF layer (Linear)


class Ctx:
    """Everything a rule may look at for one node."""

    def __init__(self, node: fx.Node, module: nn.Module | None, values: dict, rfs: dict):
        self.node, self.module, self._values, self._rfs = node, module, values, rfs
        self.out = values.get(node)

    def val(self, a: Any) -> Any:
        return self._values.get(a) if isinstance(a, fx.Node) else a

    def rf(self, a: Any) -> TensorRF | None:
        return self._rfs.get(a) if isinstance(a, fx.Node) else None

    def arg(self, index: int, name: str, default: Any = None) -> Any:
        """Positional-or-keyword argument, resolved to its value."""
        args, kwargs = self.node.args, self.node.kwargs
        if name in kwargs:
            return self.val(kwargs[name])
        if index < len(args):
            return self.val(args[index])
        return default

    @property
    def first(self) -> Any:
        return self.node.args[0] if self.node.args else None

    def tensor_inputs(self) -> list[fx.Node]:
        return [a for a in self.node.all_input_nodes if a in self._rfs]

    @property
    def op_name(self) -> str:
        if self.module is not None:
            return type(self.module).__name__
        if self.node.op == "call_method":
            return f"Tensor.{self.node.target}"
        target = self.node.target
        return FUNCTION_NAMES.get(target) or getattr(target, "__name__", str(target))


def _shape(value: Any) -> tuple[int, ...] | None:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else None


# --------------------------------------------------------------------------- kernel application

def apply_kernel(rf: TensorRF, kop: K.KernelOp) -> TensorRF:
    """Apply a kernel op to the axes it covers (the last kop.n dims); other axes pass through."""
    axes = []
    for axis in rf.axes:
        i = axis.dim + kop.n
        axes.append(axis.step(kop.grow[i], kop.scale[i]) if 0 <= i < kop.n else axis)
    out = rf.with_axes(axes)
    return out.deeper(1) if kop.parametric else out


def _kernel_outcome(ctx: Ctx, kop: K.KernelOp | None, src: Any = None) -> Outcome:
    rf = ctx.rf(ctx.first if src is None else src)
    if rf is None:
        return Outcome(None)
    if kop is None:
        return Outcome(rf)
    if rf.is_global:  # head: a conv on a global tensor stays global
        return Outcome(rf.deeper(1) if kop.parametric else rf, kop)
    return Outcome(apply_kernel(rf, kop), kop)


def _spatial_sizes(value: Any, n: int) -> tuple[int, ...]:
    shape = _shape(value)
    return tuple(shape[-n:]) if shape and len(shape) >= n else ()


# --------------------------------------------------------------------------- modules

def _conv_module(ctx: Ctx) -> Outcome:
    m = ctx.module
    n = len(m.kernel_size)
    if isinstance(m, nn.modules.conv._ConvTransposeNd):
        kop = K.transposed(type(m).__name__, m.kernel_size, m.stride, m.dilation, parametric=True)
    else:
        kop = K.windowed(
            type(m).__name__, "conv", m.kernel_size, m.stride, m.dilation,
            K.conv_padding(m.padding, m.kernel_size, m.dilation), parametric=True,
            zero_padding=getattr(m, "padding_mode", "zeros") == "zeros",
        )
    assert kop.n == n
    return _kernel_outcome(ctx, kop)


def _pool_module(ctx: Ctx) -> Outcome:
    m = ctx.module
    n = _pool_rank(m)
    kernel = K.per_axis(m.kernel_size, n, "kernel_size")
    stride = K.per_axis(m.stride if m.stride else m.kernel_size, n, "stride")
    dilation = K.per_axis(getattr(m, "dilation", 1), n, "dilation")
    padding = K.per_axis(getattr(m, "padding", 0), n, "padding")
    return _kernel_outcome(ctx, K.windowed(type(m).__name__, "pool", kernel, stride, dilation, padding, False))


def _pool_rank(m: nn.Module) -> int:
    name = type(m).__name__
    for n in (1, 2, 3):
        if name.endswith(f"{n}d"):
            return n
    return 2


def _unpool_module(ctx: Ctx) -> Outcome:
    m = ctx.module
    n = _pool_rank(m)
    kernel = K.per_axis(m.kernel_size, n)
    stride = K.per_axis(m.stride if m.stride else m.kernel_size, n)
    return _kernel_outcome(ctx, K.transposed(type(m).__name__, kernel, stride, (1,) * n, False))


def _adaptive(ctx: Ctx, op: str, src: Any, n: int) -> Outcome:
    rf = ctx.rf(src)
    n_in, n_out = _spatial_sizes(ctx.val(src), n), _spatial_sizes(ctx.out, n)
    if rf is None:
        return Outcome(None)
    if all(o == 1 for o in n_out):  # pooling to one value per channel: global
        return Outcome(rf.to_global())
    kop = K.adaptive(op, n_in, n_out)
    out = _kernel_outcome(ctx, kop, src)
    # an axis pooled to size 1 from a larger size has become global along that axis
    if out.rf is not None and not out.rf.is_global:
        keep = [a for a in out.rf.axes if not (0 <= a.dim + n < n and n_out[a.dim + n] == 1 < n_in[a.dim + n])]
        out.rf = out.rf.with_axes(keep)
    return out


def _adaptive_module(ctx: Ctx) -> Outcome:
    return _adaptive(ctx, type(ctx.module).__name__, ctx.first, _pool_rank(ctx.module))


def _upsample(ctx: Ctx, op: str, mode: str, src: Any) -> Outcome:
    shape_in = _shape(ctx.val(src))
    if shape_in is None:
        return Outcome(ctx.rf(src))
    n = len(shape_in) - 2
    kop = K.interpolation(f"{op}({mode})", mode, _spatial_sizes(ctx.val(src), n), _spatial_sizes(ctx.out, n))
    if kop is None:
        return _inferred(ctx, f"{op} with mode {mode!r} is not modelled")
    return _kernel_outcome(ctx, kop, src)


def _upsample_module(ctx: Ctx) -> Outcome:
    return _upsample(ctx, type(ctx.module).__name__, ctx.module.mode, ctx.first)


def _shuffle_module(ctx: Ctx) -> Outcome:
    m = ctx.module
    down = isinstance(m, nn.PixelUnshuffle)
    factor = m.downscale_factor if down else m.upscale_factor
    return _kernel_outcome(ctx, K.pixel_shuffle(type(m).__name__, factor, 2, down))


def _linear(ctx: Ctx) -> Outcome:
    """Linear mixes its last dim: global if that dim is spatial (or the tensor is flattened)."""
    rf = ctx.rf(ctx.first)
    if rf is None:
        return Outcome(None, parametric=True)
    axes = [a for a in rf.axes if a.dim != -1]
    out = rf.with_axes(axes) if len(axes) != len(rf.axes) else rf
    return Outcome(out.deeper(1), parametric=True)


def _flatten_module(ctx: Ctx) -> Outcome:
    return _reshape(ctx)


def _global_module(ctx: Ctx) -> Outcome:
    rf = _merged_rf(ctx)
    return Outcome(rf.to_global() if rf is not None else None)


def _softmax_module(ctx: Ctx) -> Outcome:
    return _mix_dims(ctx, ctx.first, [ctx.module.dim] if ctx.module.dim is not None else None)


_IDENTITY_MODULE_FAMILIES = (
    "torch.nn.modules.activation",
    "torch.nn.modules.batchnorm",
    "torch.nn.modules.instancenorm",
    "torch.nn.modules.normalization",
    "torch.nn.modules.dropout",
    "torch.nn.modules.padding",
    "torch.nn.modules.channelshuffle",
)

_MODULE_RULES: list[tuple[tuple[type, ...], Callable[[Ctx], Outcome]]] = [
    ((nn.modules.conv._ConvNd,), _conv_module),
    ((nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd), _adaptive_module),
    ((nn.modules.pooling._MaxUnpoolNd,), _unpool_module),
    ((nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd, nn.modules.pooling._LPPoolNd), _pool_module),
    ((nn.Upsample,), _upsample_module),
    ((nn.PixelShuffle, nn.PixelUnshuffle), _shuffle_module),
    ((nn.Linear, nn.Bilinear, nn.LazyLinear), _linear),
    ((nn.Flatten, nn.Unflatten), _flatten_module),
    ((nn.MultiheadAttention, nn.RNNBase, nn.Transformer, nn.TransformerEncoder, nn.TransformerDecoder,
      nn.TransformerEncoderLayer, nn.TransformerDecoderLayer), _global_module),
    ((nn.Softmax, nn.LogSoftmax, nn.Softmin), _softmax_module),
]


def _declared(ctx: Ctx, spec) -> Outcome:
    """A custom module the user declared (@rflint.layer / [tool.rflint.layers]): a conv-like window."""
    src = _shape(ctx.val(ctx.first))
    rf = ctx.rf(ctx.first)
    n = max(-a.dim for a in rf.axes) if rf is not None and rf.spatial else (len(src) - 2 if src else 2)
    try:
        kernel = K.per_axis(spec.kernel, n, "kernel")
        stride = K.per_axis(spec.stride, n, "stride")
        dilation = K.per_axis(spec.dilation, n, "dilation")
    except ValueError as err:
        return _inferred(ctx, f"declared layer {type(ctx.module).__name__}: {err}")
    parametric = any(True for _ in ctx.module.parameters())
    return _kernel_outcome(ctx, K.windowed(type(ctx.module).__name__, "declared", kernel, stride, dilation,
                                           None, parametric))


def _module_rule(ctx: Ctx) -> Outcome:
    m = ctx.module
    spec = spec_for(m)
    if spec is not None:
        return _declared(ctx, spec)
    for types, rule in _MODULE_RULES:
        if isinstance(m, types):
            return rule(ctx)
    if isinstance(m, nn.Identity) or type(m).__module__ in _IDENTITY_MODULE_FAMILIES:
        return _elementwise(ctx)
    return _unknown_leaf(ctx)


def _unknown_leaf(ctx: Ctx) -> Outcome:
    rf = _merged_rf(ctx)
    if rf is None or rf.is_global:
        return Outcome(rf)
    if _same_spatial(ctx, rf):
        return Outcome(rf, warning=f"unknown layer {type(ctx.module).__name__}: keeps the spatial size, "
                                   "treated as identity (declare its kernel/stride if it has one)")
    return _inferred(ctx, f"unknown layer {type(ctx.module).__name__}")


def _inferred(ctx: Ctx, what: str) -> Outcome:
    rf = ctx.rf(ctx.first)
    src_shape, out_shape = _shape(ctx.val(ctx.first)), _shape(ctx.out)
    if rf is None or rf.is_global or src_shape is None or out_shape is None or len(src_shape) != len(out_shape):
        return Outcome(rf.to_global() if rf is not None else None,
                       warning=f"{what}: output shape {out_shape} not understood, treated as global")
    n = min(len(src_shape) - 2, max(-a.dim for a in rf.axes))
    kop = K.inferred(ctx.op_name, src_shape[-n:], out_shape[-n:])
    strides = "x".join(_fmt(s) for s in kop.stride)
    return Outcome(apply_kernel(rf, kop), kop,
                   warning=f"{what}: changes the spatial size, modelled as kernel 1, stride {strides} from the shapes")


def _fmt(x: Fraction) -> str:
    return str(int(x)) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


# --------------------------------------------------------------------------- merges and shapes

def _same_spatial(ctx: Ctx, rf: TensorRF) -> bool:
    out = _shape(ctx.out)
    src = _shape(ctx.val(ctx.first))
    if out is None or src is None:
        return False
    return all(-a.dim <= len(out) and -a.dim <= len(src) and out[a.dim] == src[a.dim] for a in rf.axes)


def _merged_rf(ctx: Ctx) -> TensorRF | None:
    """Union of the operands' RFs (rf-semantics.md: merges), leaving out *modulation* operands:
    global tensors, and tensors broadcast from size 1 onto a larger spatial axis (SE / CBAM gates)."""
    operands = [(a, ctx.rf(a)) for a in ctx.tensor_inputs()]
    operands = [(a, rf) for a, rf in operands if rf is not None]
    if not operands:
        return None
    spatial = [(a, rf) for a, rf in operands if rf.spatial]
    if not spatial:
        return TensorRF((), True, min(r.d_min for _, r in operands), max(r.d_max for _, r in operands))
    out_shape = _shape(ctx.out)
    contributing = [rf for a, rf in spatial if not _broadcast(_shape(ctx.val(a)), out_shape, rf)]
    if not contributing:  # every spatial operand is broadcast: keep them all rather than nothing
        contributing = [rf for _, rf in spatial]
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
    """view / reshape / flatten / squeeze ...: an axis survives only while the dims from it to the end
    are unchanged; merged away axes are gone (all gone: the tensor is global)."""
    rf = ctx.rf(ctx.first)
    src, out = _shape(ctx.val(ctx.first)), _shape(ctx.out)
    if rf is None or rf.is_global or src is None or out is None:
        return Outcome(rf)
    keep = []
    for axis in rf.axes:
        d = axis.dim
        if -d <= len(out) and all(src[i] == out[i] for i in range(d, 0)):
            keep.append(axis)
    return Outcome(rf.with_axes(keep) if len(keep) != len(rf.axes) else rf)


def _permute_dims(ctx: Ctx) -> list[int] | None:
    src = _shape(ctx.val(ctx.first))
    if src is None:
        return None
    rank = len(src)
    name = ctx.node.target if ctx.node.op == "call_method" else ctx.op_name.rpartition(".")[2]
    rest = [ctx.val(a) for a in ctx.node.args[1:]]
    if name == "permute":
        dims = rest[0] if len(rest) == 1 and isinstance(rest[0], (list, tuple)) else rest
        dims = dims or ctx.node.kwargs.get("dims")
        return [int(d) % rank for d in dims]
    a = rest[0] if rest else ctx.node.kwargs.get("dim0")
    b = rest[1] if len(rest) > 1 else ctx.node.kwargs.get("dim1")
    if a is None or b is None:  # .t(): a 2-D transpose
        a, b = 0, 1
    perm = list(range(rank))
    perm[a % rank], perm[b % rank] = perm[b % rank], perm[a % rank]
    return perm


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
    shape = _shape(ctx.val(src))
    if rf is None or rf.is_global or shape is None:
        return Outcome(rf)
    if dims is None:
        return Outcome(rf.to_global())
    rank = len(shape)
    mixed = {int(d) % rank - rank for d in dims}
    keep = [a for a in rf.axes if a.dim not in mixed]
    if len(keep) == len(rf.axes):
        return _reshape(ctx)  # a channel reduction (CBAM's mean over dim 1): axes keep their place
    out = rf.with_axes(keep)
    if out.is_global:
        return Outcome(out)
    # without keepdim the surviving axes keep their distance from the end only if the reduced dims
    # came before them; recompute by matching shapes from the end
    return Outcome(out)


def _reduction(ctx: Ctx) -> Outcome:
    """mean / sum / amax / max / ... over dims: reducing every spatial axis makes the tensor global."""
    if len(ctx.node.args) > 1 and isinstance(ctx.node.args[1], fx.Node):  # torch.max(a, b): elementwise
        return _elementwise(ctx)
    dims = _dims_arg(ctx, 1)
    out = _mix_dims(ctx, ctx.first, dims)
    keepdim = bool(ctx.arg(2, "keepdim", False))
    if out.rf is not None and out.rf.spatial and dims is not None and not keepdim:
        rank = len(_shape(ctx.val(ctx.first)))
        removed = sorted(int(d) % rank - rank for d in dims)
        axes = [AxisRF(a.origin, a.dim + sum(1 for r in removed if r > a.dim), a.lo, a.hi) for a in out.rf.axes]
        out.rf = out.rf.with_axes(axes)
    return out


def _softmax_fn(ctx: Ctx) -> Outcome:
    return _mix_dims(ctx, ctx.first, _dims_arg(ctx, 1))


def _global_fn(ctx: Ctx) -> Outcome:
    return _global_module(ctx)


def _getitem(ctx: Ctx) -> Outcome:
    src = ctx.first
    rf = ctx.rf(src)
    value = ctx.val(src)
    if rf is None or not isinstance(value, torch.Tensor) or rf.is_global:
        return Outcome(rf)  # picking an element of a tuple output keeps the tuple's RF
    index = ctx.node.args[1]
    index = index if isinstance(index, tuple) else (index,)
    if any(isinstance(i, (fx.Node, torch.Tensor, list)) for i in index):
        return _elementwise(ctx)  # advanced indexing: keep what the shapes allow
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


# --------------------------------------------------------------------------- functional forms

def _fn_conv(ctx: Ctx) -> Outcome:
    weight = ctx.arg(1, "weight")
    n = weight.dim() - 2
    kernel = tuple(weight.shape[2:])
    stride = K.per_axis(ctx.arg(3, "stride", 1), n)
    dilation = K.per_axis(ctx.arg(5, "dilation", 1), n)
    padding = K.conv_padding(ctx.arg(4, "padding", 0), kernel, dilation)
    parametric = _is_parameter(ctx, 1, "weight")
    return _kernel_outcome(ctx, K.windowed(ctx.op_name, "conv", kernel, stride, dilation, padding, parametric))


def _fn_conv_transpose(ctx: Ctx) -> Outcome:
    weight = ctx.arg(1, "weight")
    n = weight.dim() - 2
    kernel = tuple(weight.shape[2:])
    stride = K.per_axis(ctx.arg(3, "stride", 1), n)
    dilation = K.per_axis(ctx.arg(7, "dilation", 1), n)
    return _kernel_outcome(ctx, K.transposed(ctx.op_name, kernel, stride, dilation, _is_parameter(ctx, 1, "weight")))


def _is_parameter(ctx: Ctx, index: int, name: str) -> bool:
    a = ctx.node.kwargs.get(name, ctx.node.args[index] if index < len(ctx.node.args) else None)
    return isinstance(a, fx.Node) and a.op == "get_attr"


def _fn_rank(ctx: Ctx) -> int:
    name = ctx.op_name
    for n in (1, 2, 3):
        if f"{n}d" in name:
            return n
    return 2


def _fn_pool(ctx: Ctx, has_dilation: bool, offset: int = 0) -> Outcome:
    n = _fn_rank(ctx)
    kernel = K.per_axis(ctx.arg(1 + offset, "kernel_size"), n)
    stride = ctx.arg(2 + offset, "stride", None)
    stride = K.per_axis(stride if stride not in (None, [], ()) else kernel, n)
    padding = K.per_axis(ctx.arg(3, "padding", 0), n) if not offset else (0,) * n
    dilation = K.per_axis(ctx.arg(4, "dilation", 1), n) if has_dilation else (1,) * n
    return _kernel_outcome(ctx, K.windowed(ctx.op_name, "pool", kernel, stride, dilation, padding, False))


def _fn_adaptive(ctx: Ctx) -> Outcome:
    return _adaptive(ctx, ctx.op_name, ctx.first, _fn_rank(ctx))


def _fn_interpolate(ctx: Ctx) -> Outcome:
    name = ctx.op_name.rpartition(".")[2]
    mode = {"upsample_bilinear": "bilinear", "upsample_nearest": "nearest"}.get(name) or ctx.arg(3, "mode", "nearest")
    return _upsample(ctx, ctx.op_name, mode, ctx.first)


def _fn_pixel_shuffle(ctx: Ctx) -> Outcome:
    down = "unshuffle" in ctx.op_name
    factor = ctx.arg(1, "downscale_factor" if down else "upscale_factor")
    return _kernel_outcome(ctx, K.pixel_shuffle(ctx.op_name, int(factor), 2, down))


def _fn_unfold(ctx: Ctx) -> Outcome:
    """F.unfold: a conv-like window (RF layer); its (N, C*k*k, L) output is flattened, so global
    unless a later reshape restores the grid (not tracked: reported as global)."""
    n = 2
    kernel = K.per_axis(ctx.arg(1, "kernel_size"), n)
    dilation = K.per_axis(ctx.arg(2, "dilation", 1), n)
    padding = K.per_axis(ctx.arg(3, "padding", 0), n)
    stride = K.per_axis(ctx.arg(4, "stride", 1), n)
    kop = K.windowed(ctx.op_name, "unfold", kernel, stride, dilation, padding, False)
    out = _kernel_outcome(ctx, kop)
    if out.rf is not None:
        out.rf = out.rf.to_global()
    return out


def _fn_linear(ctx: Ctx) -> Outcome:
    return _linear(ctx)


def _fn_flatten(ctx: Ctx) -> Outcome:
    return _reshape(ctx)


def _fn_identity(ctx: Ctx) -> Outcome:
    return Outcome(ctx.rf(ctx.first))


_FUNCTION_RULES: dict[Any, Callable[[Ctx], Outcome]] = {}
FUNCTION_NAMES: dict[Any, str] = {}  # target -> "F.max_pool2d" (some targets are anonymous wrappers)
_NAMESPACES = {"F": F, "torch": torch, "operator": operator}


def _register(rule: Callable[[Ctx], Outcome], *names: str) -> None:
    for qualified in names:
        prefix, _, attr = qualified.partition(".")
        target = getattr(_NAMESPACES[prefix], attr, None)
        if target is None:  # not in this torch version
            continue
        _FUNCTION_RULES[target] = rule
        FUNCTION_NAMES.setdefault(target, qualified)


_register(_fn_conv, "F.conv1d", "F.conv2d", "F.conv3d", "torch.conv1d", "torch.conv2d", "torch.conv3d")
_register(_fn_conv_transpose, "F.conv_transpose1d", "F.conv_transpose2d", "F.conv_transpose3d")
_register(lambda c: _fn_pool(c, True), "F.max_pool1d", "F.max_pool2d", "F.max_pool3d",
          "F.max_pool1d_with_indices", "F.max_pool2d_with_indices", "F.max_pool3d_with_indices",
          "torch.max_pool1d", "torch.max_pool2d", "torch.max_pool3d")
_register(lambda c: _fn_pool(c, False), "F.avg_pool1d", "F.avg_pool2d", "F.avg_pool3d", "torch.avg_pool1d")
_register(lambda c: _fn_pool(c, False, offset=1), "F.lp_pool1d", "F.lp_pool2d", "F.lp_pool3d")
_register(_fn_adaptive, "F.adaptive_avg_pool1d", "F.adaptive_avg_pool2d", "F.adaptive_avg_pool3d",
          "F.adaptive_max_pool1d", "F.adaptive_max_pool2d", "F.adaptive_max_pool3d",
          "F.adaptive_max_pool1d_with_indices", "F.adaptive_max_pool2d_with_indices",
          "F.adaptive_max_pool3d_with_indices", "torch.adaptive_avg_pool1d")
_register(_fn_interpolate, "F.interpolate", "F.upsample", "F.upsample_bilinear", "F.upsample_nearest")
_register(_fn_pixel_shuffle, "F.pixel_shuffle", "F.pixel_unshuffle", "torch.pixel_shuffle", "torch.pixel_unshuffle")
_register(_fn_unfold, "F.unfold")
_register(_fn_linear, "F.linear")
_register(_fn_flatten, "torch.flatten", "torch.reshape", "torch.squeeze", "torch.unsqueeze")
_register(_permute, "torch.permute", "torch.transpose", "torch.swapaxes", "torch.swapdims")
_register(_reduction, "torch.mean", "torch.sum", "torch.amax", "torch.amin", "torch.max", "torch.min",
          "torch.std", "torch.var", "torch.logsumexp", "torch.prod", "torch.norm", "torch.nansum", "torch.nanmean")
_register(_softmax_fn, "F.softmax", "F.log_softmax", "F.softmin", "torch.softmax", "torch.log_softmax")
_register(_global_fn, "torch.matmul", "torch.bmm", "torch.mm", "torch.einsum", "torch.baddbmm",
          "operator.matmul", "F.scaled_dot_product_attention")
_register(_getitem, "operator.getitem")
_register(_fn_identity, "F.pad")

_METHOD_RULES: dict[str, Callable[[Ctx], Outcome]] = {
    **{m: _reshape for m in ("view", "reshape", "flatten", "squeeze", "unsqueeze", "unflatten", "view_as",
                             "reshape_as", "expand", "expand_as")},
    **{m: _permute for m in ("permute", "transpose", "swapaxes", "swapdims", "t")},
    **{m: _reduction for m in ("mean", "sum", "amax", "amin", "max", "min", "std", "var", "logsumexp",
                               "prod", "norm", "nansum", "nanmean")},
    **{m: _softmax_fn for m in ("softmax", "log_softmax")},
    **{m: _global_fn for m in ("matmul", "bmm", "mm", "__matmul__")},
}


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
    out = _shape(ctx.out)
    if all(-a.dim <= len(out) for a in rf.axes) and _sizes_kept(ctx, rf):
        return Outcome(rf)
    return _inferred(ctx, f"operation {ctx.op_name}")


def _sizes_kept(ctx: Ctx, rf: TensorRF) -> bool:
    out = _shape(ctx.out)
    for a in ctx.tensor_inputs():
        shape = _shape(ctx.val(a))
        arf = ctx.rf(a)
        if shape is None or arf is None or not arf.spatial:
            continue
        for axis in arf.axes:
            d = axis.dim
            if -d > len(shape) or -d > len(out) or (shape[d] != out[d] and shape[d] != 1):
                return False
    return True
