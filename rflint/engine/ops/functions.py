"""Rules for functional and method forms (F.conv2d, F.max_pool2d, torch.cat, x.mean((2, 3)), ...)."""

from __future__ import annotations

import operator
from typing import Any, Callable

import torch
import torch.nn.functional as F

from rflint.engine import kernels as K
from rflint.engine.ops.context import Ctx, Outcome, kernel_outcome, not_empty, shape_of, spatial_sizes
from rflint.engine.ops.modules import _adaptive, _linear, _upsample, folded, pooled, unfolded
from rflint.engine.ops.tensors import (
    _complex_view, _crop, _einsum, _getitem, _global_fn, _matmul, _mix_dims, _permute, _reduction, _reshape,
    _selected, _softmax_fn, _stacked, _tensor_unfold, merged, pairwise_reduction, reduction_along,
)
from rflint.engine.rfstate import AxisRF
from rflint.engine.weights import parameters_behind
from rflint.trace.assignment import assigned


def _fn_conv(ctx: Ctx) -> Outcome:
    weight = ctx.arg(1, "weight")
    n = weight.dim() - 2
    kernel = tuple(weight.shape[2:])
    stride = K.per_axis(ctx.arg(3, "stride", 1), n)
    dilation = K.per_axis(ctx.arg(5, "dilation", 1), n)
    padding = K.conv_padding(ctx.arg(4, "padding", 0), kernel, dilation)
    parametric = _is_parameter(ctx, 1, "weight")
    return kernel_outcome(ctx, K.windowed(ctx.op_name, "conv", kernel, stride, dilation, padding, parametric))


def _fn_conv_transpose(ctx: Ctx) -> Outcome:
    weight = ctx.arg(1, "weight")
    n = weight.dim() - 2
    kernel = tuple(weight.shape[2:])
    stride = K.per_axis(ctx.arg(3, "stride", 1), n)
    dilation = K.per_axis(ctx.arg(7, "dilation", 1), n)
    return kernel_outcome(ctx, K.transposed(ctx.op_name, kernel, stride, dilation, _is_parameter(ctx, 1, "weight")))


def _is_parameter(ctx: Ctx, index: int, name: str) -> bool:
    """Is the kernel argument learned (engine/weights.py), not a buffer or data?"""
    a = ctx.node.kwargs.get(name, ctx.node.args[index] if index < len(ctx.node.args) else None)
    return bool(parameters_behind([a], ctx.rf))


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
    return pooled(ctx, K.windowed(ctx.op_name, "pool", kernel, stride, dilation, padding, False))


def _fn_stft(ctx: Ctx) -> Outcome:
    """torch.stft(x, n_fft, hop_length, win_length, window, center, ...): a window of n_fft samples
    every hop (n_fft // 4 by default) along the last dim, padded by n_fft // 2 on each side when
    centred (the window, win_length long, sits inside the n_fft).  The frequencies become a new dim
    before the frames (like channels); with return_complex=False a (real, imag) dim follows them."""
    n_fft = ctx.arg(1, "n_fft")
    if not isinstance(n_fft, int):
        return Outcome(None)
    hop = ctx.arg(2, "hop_length", None) or n_fft // 4
    padding = n_fft // 2 if ctx.arg(5, "center", True) else 0
    kop = K.windowed(ctx.op_name, "conv", (n_fft,), (hop,), (1,), (padding,), False)
    out = kernel_outcome(ctx, kop)
    if out.rf is not None and not out.rf.is_global and ctx.arg(9, "return_complex", True) is False:
        out.rf = out.rf.with_axes([AxisRF(a.origin, a.dim - 1, a.lo, a.hi) for a in out.rf.axes])
    return out


def _fn_max_unpool(ctx: Ctx) -> Outcome:
    """F.max_unpool2d(x, indices, kernel_size, stride): as nn.MaxUnpool2d, a transposed window."""
    n = _fn_rank(ctx)
    kernel = K.per_axis(ctx.arg(2, "kernel_size"), n)
    stride = ctx.arg(3, "stride", None)
    stride = K.per_axis(stride if stride not in (None, [], ()) else kernel, n)
    return kernel_outcome(ctx, K.transposed(ctx.op_name, kernel, stride, (1,) * n, False))


def _fn_adaptive(ctx: Ctx) -> Outcome:
    return _adaptive(ctx, ctx.op_name, ctx.first, _fn_rank(ctx))


def _fn_interpolate(ctx: Ctx) -> Outcome:
    name = ctx.op_name.rpartition(".")[2]
    mode = {"upsample_bilinear": "bilinear", "upsample_nearest": "nearest"}.get(name) or ctx.arg(3, "mode", "nearest")
    return _upsample(ctx, ctx.op_name, mode, ctx.first, bool(ctx.arg(6, "antialias", False)))


def _fn_grid_sample(ctx: Ctx) -> Outcome:
    """F.grid_sample(x, grid, mode): x's content, each output unit read from the mode's taps around
    the point the grid gives it (a warp or a zoom: neighbours stay neighbours), so a window like an
    interpolation's.  The grid says where to read, not what: like an SE gate's scale it is left out
    (modulation), whatever its RF; an STN's grid comes from the whole image.  It was global, which
    made every layer after an STN a head that no rule looks at.  Sampling a tensor that no input
    pixel made (a learned table, at points the image chose) reads the input through the grid
    alone: that is global, as it was."""
    src = ctx.first
    if ctx.rf(src) is None:
        return _global_fn(ctx)
    shape_in = shape_of(ctx.val(src))
    if shape_in is None or shape_of(ctx.out) is None:
        return Outcome(ctx.rf(src))
    n = len(shape_in) - 2
    mode = ctx.arg(2, "mode", "bilinear")
    kop = K.sampling(f"{ctx.op_name}({mode})", mode, spatial_sizes(ctx.val(src), n), spatial_sizes(ctx.out, n))
    if kop is None:
        return _global_fn(ctx)
    return kernel_outcome(ctx, kop, src)


def _assigned(ctx: Ctx) -> Outcome:
    """``t[key] = value`` (trace/assignment.py): what was there and what was written, merged; the
    key, like a gate, says where to write, not what (a mask made from another branch adds nothing)."""
    tensor, _, value = ctx.node.args
    return Outcome(merged([(rf, shape_of(ctx.val(a))) for a in (tensor, value) if (rf := ctx.rf(a)) is not None],
                          shape_of(ctx.out)))


def _fn_pixel_shuffle(ctx: Ctx) -> Outcome:
    down = "unshuffle" in ctx.op_name
    factor = ctx.arg(1, "downscale_factor" if down else "upscale_factor")
    return kernel_outcome(ctx, K.pixel_shuffle(ctx.op_name, int(factor), 2, down))


def _fn_unfold(ctx: Ctx) -> Outcome:
    return unfolded(ctx, ctx.op_name, ctx.arg(1, "kernel_size"), ctx.arg(2, "dilation", 1), ctx.arg(3, "padding", 0),
                    ctx.arg(4, "stride", 1))


def _fn_linear(ctx: Ctx) -> Outcome:
    return _linear(ctx)


def _fn_flatten(ctx: Ctx) -> Outcome:
    return _reshape(ctx)


def _constant(ctx: Ctx) -> Outcome:
    """zeros_like / full_like / x.new_zeros ...: a tensor of the operand's shape whose values no
    pixel decides, so no RF (it took the operand's, and a sum into it seemed to reach the stem)."""
    return Outcome(None)


def _mixing_along(index: int, default: Any) -> Callable[[Ctx], Outcome]:
    """Ops that keep the shape but let every output position read every position along some dims
    (its ``dim`` argument at ``index``; None: all dims): an FFT's frequencies, a cumulative sum, a
    sort.  Those axes become global, like a reduction's, instead of passing for elementwise."""
    def rule(ctx: Ctx) -> Outcome:
        dims = ctx.arg(index, "dim", default)
        return _mix_dims(ctx, ctx.first, None if dims is None else list(dims) if isinstance(dims, (list, tuple)) else [dims])
    return rule


def _fn_pad(ctx: Ctx) -> Outcome:
    rf = ctx.rf(ctx.first)
    if rf is not None:
        not_empty(ctx.node, ctx.out)  # negative padding crops, down to nothing on a small map
    return Outcome(rf)


_FUNCTION_RULES: dict[Any, Callable[[Ctx], Outcome]] = {}
FUNCTION_NAMES: dict[Any, str] = {}  # target -> "F.max_pool2d" (some targets are anonymous wrappers)
_NAMESPACES = {"F": F, "torch": torch, "operator": operator}


# the functions with a spatial kernel or stride (an RF layer where they are called): a model made of
# them alone, without a conv or pool module, still has something to lint (engine/prepare.py)
SPATIAL_FUNCTIONS: set[Any] = set()


def _register(rule: Callable[[Ctx], Outcome], *names: str, spatial: bool = False) -> None:
    for qualified in names:
        prefix, _, path = qualified.partition(".")
        target = _NAMESPACES[prefix]
        for attr in path.split("."):  # "torch.fft.fft2"
            target = getattr(target, attr, None)
        if target is None:  # not in this torch version
            continue
        _FUNCTION_RULES[target] = rule
        FUNCTION_NAMES.setdefault(target, qualified)
        if spatial:
            SPATIAL_FUNCTIONS.add(target)


_register(_fn_conv, "F.conv1d", "F.conv2d", "F.conv3d", "torch.conv1d", "torch.conv2d", "torch.conv3d", spatial=True)
_register(_fn_conv_transpose, "F.conv_transpose1d", "F.conv_transpose2d", "F.conv_transpose3d", spatial=True)
_register(lambda c: _fn_pool(c, True), "F.max_pool1d", "F.max_pool2d", "F.max_pool3d",
          "F.max_pool1d_with_indices", "F.max_pool2d_with_indices", "F.max_pool3d_with_indices",
          "torch.max_pool1d", "torch.max_pool2d", "torch.max_pool3d", spatial=True)
_register(lambda c: _fn_pool(c, False), "F.avg_pool1d", "F.avg_pool2d", "F.avg_pool3d", "torch.avg_pool1d", spatial=True)
_register(lambda c: _fn_pool(c, False, offset=1), "F.lp_pool1d", "F.lp_pool2d", "F.lp_pool3d", spatial=True)
_register(_fn_adaptive, "F.adaptive_avg_pool1d", "F.adaptive_avg_pool2d", "F.adaptive_avg_pool3d",
          "F.adaptive_max_pool1d", "F.adaptive_max_pool2d", "F.adaptive_max_pool3d",
          "F.adaptive_max_pool1d_with_indices", "F.adaptive_max_pool2d_with_indices",
          "F.adaptive_max_pool3d_with_indices", "torch.adaptive_avg_pool1d", spatial=True)
_register(_fn_interpolate, "F.interpolate", "F.upsample", "F.upsample_bilinear", "F.upsample_nearest", spatial=True)
_register(_fn_pixel_shuffle, "F.pixel_shuffle", "F.pixel_unshuffle", "torch.pixel_shuffle", "torch.pixel_unshuffle", spatial=True)
_register(_fn_unfold, "F.unfold", spatial=True)
_register(folded, "F.fold", spatial=True)
_FUNCTION_RULES[assigned] = _assigned
FUNCTION_NAMES[assigned] = "Tensor.__setitem__"
_register(_fn_linear, "F.linear")
_register(_fn_flatten, "torch.flatten", "torch.reshape", "torch.squeeze", "torch.unsqueeze")
_register(_permute, "torch.permute", "torch.transpose", "torch.swapaxes", "torch.swapdims", "torch.rot90",
          "torch.movedim", "torch.moveaxis")
_register(_crop, "torch.narrow", "torch.narrow_copy")
_register(_fn_stft, "torch.stft")
_register(_fn_max_unpool, "F.max_unpool1d", "F.max_unpool2d", "F.max_unpool3d")
_register(_reduction, "torch.mean", "torch.sum", "torch.amax", "torch.amin", "torch.max", "torch.min",
          "torch.logsumexp", "torch.prod", "torch.nansum", "torch.nanmean")
# the reductions whose dims (or keepdim) sit elsewhere, or default to the last dim: where each
# argument is, in the function and the method form alike (the method's self is argument 0)
_REDUCTIONS_ALONG = {
    "median": (1, None, 2), "nanmedian": (1, None, 2), "argmax": (1, None, 2), "argmin": (1, None, 2),
    "all": (1, None, 2), "any": (1, None, 2), "count_nonzero": (1, None, None),
    "mode": (1, -1, 2), "kthvalue": (2, -1, 3), "quantile": (2, None, 3), "nanquantile": (2, None, 3),
    "aminmax": (None, None, None), "std": (1, None, 3), "var": (1, None, 3), "norm": (2, None, 3),
    "std_mean": (1, None, 3), "var_mean": (1, None, 3), "trapezoid": (None, -1, None), "trapz": (None, -1, None),
}
for _name, _where in _REDUCTIONS_ALONG.items():
    _register(reduction_along(*_where), f"torch.{_name}")
_register(reduction_along(2, None, 3), "torch.linalg.vector_norm", "torch.linalg.norm")
_register(reduction_along(2, (-2, -1), 3), "torch.linalg.matrix_norm")
_register(_selected, "torch.select", "torch.unbind", "torch.select_copy", "torch.unbind_copy")
_register(_stacked, "torch.stack")
_register(_complex_view, "torch.view_as_real", "torch.view_as_complex", "torch.view_as_real_copy",
          "torch.view_as_complex_copy")
_register(pairwise_reduction(2, 1), "F.cosine_similarity", "torch.cosine_similarity")
_register(pairwise_reduction(None, -1, 4), "F.pairwise_distance", "torch.pairwise_distance")
_register(pairwise_reduction(None, -1), "torch.linalg.vecdot")
_register(_reduction, "torch.special.logsumexp")
_register(_softmax_fn, "torch.special.softmax", "torch.special.log_softmax")
_register(_permute, "torch.permute_copy", "torch.transpose_copy")
_register(_crop, "torch.slice_copy", "torch.narrow_copy")
_register(_softmax_fn, "F.softmax", "F.log_softmax", "F.softmin", "torch.softmax", "torch.log_softmax")
_register(_matmul, "torch.matmul", "torch.bmm", "torch.mm", "operator.matmul")
_register(_einsum, "torch.einsum")
_register(_global_fn, "torch.baddbmm", "F.scaled_dot_product_attention")
_register(_getitem, "operator.getitem")
_register(_fn_pad, "F.pad")
_FOURIER_1D = ("torch.fft.fft", "torch.fft.ifft", "torch.fft.rfft", "torch.fft.irfft", "torch.fft.hfft", "torch.fft.ihfft")
_FOURIER_2D = ("torch.fft.fft2", "torch.fft.ifft2", "torch.fft.rfft2", "torch.fft.irfft2", "torch.fft.hfft2",
               "torch.fft.ihfft2")
_FOURIER_ND = ("torch.fft.fftn", "torch.fft.ifftn", "torch.fft.rfftn", "torch.fft.irfftn", "torch.fft.hfftn",
               "torch.fft.ihfftn")
_register(_mixing_along(2, -1), *_FOURIER_1D)
_register(_mixing_along(2, (-2, -1)), *_FOURIER_2D)
_register(_mixing_along(2, None), *_FOURIER_ND)
# the Fourier transforms, as targets (RF005 counts one over the map as a global mixer)
FOURIER_TRANSFORMS = frozenset(t for t, name in FUNCTION_NAMES.items() if name in _FOURIER_1D + _FOURIER_2D + _FOURIER_ND)
_register(_mixing_along(1, None), "torch.cumsum", "torch.cumprod", "torch.cummax", "torch.cummin",
          "torch.logcumsumexp")
_register(_mixing_along(1, -1), "torch.sort", "torch.argsort")
_register(_mixing_along(99, -1), "torch.cumulative_trapezoid")  # (dim is keyword-only there)
_register(_mixing_along(2, -1), "torch.topk")
_register(_fn_grid_sample, "F.grid_sample", spatial=True)
_register(_constant, "torch.zeros_like", "torch.ones_like", "torch.full_like", "torch.empty_like", "torch.rand_like",
          "torch.randn_like", "torch.randint_like")

_METHOD_RULES: dict[str, Callable[[Ctx], Outcome]] = {
    **{m: _reshape for m in ("view", "reshape", "flatten", "squeeze", "unsqueeze", "unflatten", "view_as",
                             "reshape_as", "expand", "expand_as")},
    **{m: _permute for m in ("permute", "transpose", "swapaxes", "swapdims", "t", "rot90", "movedim", "moveaxis")},
    "narrow": _crop, "narrow_copy": _crop, "stft": _fn_stft,
    **{m: _reduction for m in ("mean", "sum", "amax", "amin", "max", "min", "logsumexp", "prod", "nansum",
                               "nanmean")},
    **{m: reduction_along(*where) for m, where in _REDUCTIONS_ALONG.items()
       if m not in ("std_mean", "var_mean", "trapezoid", "trapz")},
    "select": _selected, "unbind": _selected,
    **{m: _softmax_fn for m in ("softmax", "log_softmax")},
    **{m: _matmul for m in ("matmul", "bmm", "mm", "__matmul__")},
    **{m: _constant for m in ("new_zeros", "new_ones", "new_full", "new_empty")},
    **{m: _mixing_along(1, None) for m in ("cumsum", "cumprod", "cummax", "cummin", "logcumsumexp", "cumsum_",
                                           "cumprod_")},
    "transpose_": _permute, "swapaxes_": _permute, "swapdims_": _permute, "t_": _permute,
    "sort": _mixing_along(1, -1), "argsort": _mixing_along(1, -1), "topk": _mixing_along(2, -1),
    "unfold": _tensor_unfold,
}
