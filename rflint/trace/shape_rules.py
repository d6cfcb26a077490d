"""Output shapes of the common layers by arithmetic, for :class:`~rflint.trace.shapes.MetaShapeProp`.

Running a layer on meta tensors goes through torch's dispatcher, its Python meta registrations and,
for Linear, a Python decomposition of addmm: 50 us to 1 ms a call, most of a propagation.  The
output shape of a conv, pool or linear layer is a formula of its attributes, so for the exact
built-in classes (never subclasses, whose forward may do anything) we compute it here.

Every rule returns ``None`` whenever the call is anything but the plain, valid case (unbatched input,
channel mismatch, a map that would vanish, indices requested, dtypes that differ ...): the real meta
call then runs and raises torch's own error, which the messages of ``rflint.engine.prepare`` expect.
tests/test_shape_rules.py checks every rule against torch's meta kernels on many configurations.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any, Callable

import torch
from torch import nn

from rflint.trace.metaspec import MetaSpec, is_meta_value, is_tensor_like

Rule = Callable[[nn.Module, tuple, dict], "torch.Tensor | None"]


def _tensor(args: tuple, kwargs: dict, n_dims: int | None = None) -> torch.Tensor | None:
    """The single meta tensor argument, batched (N, C, *spatial) when ``n_dims`` is given."""
    if kwargs or len(args) != 1:
        return None
    x = args[0]
    if not is_meta_value(x) or not x.dtype.is_floating_point:
        return None
    if n_dims is not None and x.dim() != n_dims + 2:
        return None
    return x


def _empty(shape: list[int], like: Any) -> MetaSpec:
    return MetaSpec(shape, like.dtype)


def _same_dtype(module: nn.Module, x: torch.Tensor) -> bool:
    return all(p is None or p.dtype == x.dtype for p in module._parameters.values())


def _window(size: int, k: int, s: int, p: int, d: int, ceil: bool = False) -> int:
    span = size + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= size + p:  # torch: the last window must start inside the input or left padding
        out -= 1
    return out


def _conv(m: nn.modules.conv._ConvNd, args: tuple, kwargs: dict) -> torch.Tensor | None:
    n = len(m.kernel_size)
    x = _tensor(args, kwargs, n)
    if x is None or x.shape[1] != m.in_channels or not _same_dtype(m, x) or m.padding_mode != "zeros":
        return None  # other padding modes pad first (circular fails on small maps): left to torch
    if m.padding == "same":
        spatial = list(x.shape[2:])
    else:
        pad = (0,) * n if m.padding == "valid" else m.padding
        spatial = [_window(size, k, s, p, d) for size, k, s, p, d in
                   zip(x.shape[2:], m.kernel_size, m.stride, pad, m.dilation)]
        if min(spatial, default=1) <= 0:
            raise conv_too_small(x.shape[2:], m.kernel_size, pad, m.dilation)
    return _empty([x.shape[0], m.out_channels, *spatial], x)


# Where a window leaves no output, the rules raise torch's own error (same condition, same text)
# instead of handing the call to torch: a what-if search (the clean-size search, the smallest-size
# hint) probes sizes that fail, and torch's meta kernels take tens of microseconds to say so.

def conv_too_small(sizes, kernel, padding, dilation) -> RuntimeError:
    """torch's error for a convolution whose (padded) input is smaller than its dilated kernel."""
    padded = " x ".join(str(size + 2 * p) for size, p in zip(sizes, padding))
    span = " x ".join(str(d * (k - 1) + 1) for k, d in zip(kernel, dilation))
    return RuntimeError(f"Calculated padded input size per channel: ({padded}). Kernel size: ({span}). "
                        "Kernel size can't be greater than actual input size")


def pool_too_small(shape, spatial, n: int, with_dilation: bool) -> RuntimeError:
    """torch's error for a pooling window that leaves no output (max_pool1d words it differently,
    "Invalid computed output size"; this is the wording of every other pool).  avg_pool1d runs as
    a 2-D pool of height 1, and says so."""
    lead = (1,) if n == 1 and not with_dilation else ()
    given = "x".join(str(v) for v in (shape[1], *lead, *shape[2:]))
    out = "x".join(str(v) for v in (shape[1], *lead, *spatial))
    return RuntimeError(f"Given input size: ({given}). Calculated output size: ({out}). Output size is too small")


def _conv_transpose(m: nn.modules.conv._ConvTransposeNd, args: tuple, kwargs: dict) -> torch.Tensor | None:
    n = len(m.kernel_size)
    x = _tensor(args, kwargs, n)  # forward(x, output_size=...) is left to torch
    if x is None or x.shape[1] != m.in_channels or not _same_dtype(m, x) or isinstance(m.padding, str):
        return None
    spatial = [(size - 1) * s - 2 * p + d * (k - 1) + op + 1 for size, k, s, p, d, op in
               zip(x.shape[2:], m.kernel_size, m.stride, m.padding, m.dilation, m.output_padding)]
    if min(spatial, default=1) <= 0:
        return None
    return _empty([x.shape[0], m.out_channels, *spatial], x)


def is_hashable(target: Any) -> bool:
    """A call target that can key a rule table (fx also records unhashable callables)."""
    return getattr(target, "__hash__", None) is not None


def _ntuple(value: Any, n: int) -> tuple | None:
    if isinstance(value, int):
        return (value,) * n
    if isinstance(value, (tuple, list)) and len(value) == n and all(isinstance(v, int) for v in value):
        return tuple(value)
    if isinstance(value, (tuple, list)) and len(value) == 1 and isinstance(value[0], int):
        return (value[0],) * n
    return None


def _attr(m: nn.Module, name: str, default: Any) -> Any:
    """``getattr(m, name, default)`` for an attribute some classes of a family lack (AvgPool has no
    ``return_indices``): a missing name on a module goes through ``Module.__getattr__``, which builds
    and raises an AttributeError, microseconds a call.  The rules take exact classes only, whose
    attributes are plain instance attributes (or class attributes)."""
    found = m.__dict__.get(name, _ABSENT)
    return getattr(type(m), name, default) if found is _ABSENT else found


_ABSENT = object()


def pool_windows(m: nn.Module, n: int, with_dilation: bool) -> tuple[tuple[int, int, int, int], ...] | None:
    """Per axis (kernel, stride, padding, dilation) of a max/avg pool module, or None for a call
    :func:`_pool`'s rule leaves to torch whatever the input: indices requested, attributes it
    cannot read, padding over half the kernel, a zero divisor."""
    if _attr(m, "return_indices", False) or _attr(m, "divisor_override", None) == 0:
        return None
    k = _ntuple(m.kernel_size, n)
    s = _ntuple(m.stride if m.stride is not None else m.kernel_size, n)  # stride None: the kernel
    p = _ntuple(m.padding, n)
    d = _ntuple(m.dilation, n) if with_dilation else (1,) * n
    if None in (k, s, p, d) or any(pi > ki // 2 for pi, ki in zip(p, k)):
        return None  # torch: "pad should be at most half of effective kernel size"
    return tuple(zip(k, s, p, d))


def _lp_pool(n: int) -> Rule:
    """LPPool: an average pool of x^p with no padding, so its shape is that pool's.  Run by torch on
    meta, it imports torch._dynamo mid-analysis (and with it standard modules a sibling of the
    model's may be named like: statistics, profile).  A window that leaves nothing: torch says so."""
    def rule(m: nn.Module, args: tuple, kwargs: dict) -> torch.Tensor | None:
        x = _tensor(args, kwargs, n)
        k = _ntuple(m.kernel_size, n) if x is not None else None
        s = _ntuple(m.stride if m.stride is not None else m.kernel_size, n) if k is not None else None
        if s is None or n == 3 and any(size < ki for size, ki in zip(x.shape[2:], k)):
            return None  # (avg_pool3d, under it: "input image smaller than kernel size")
        spatial = [_window(size, ki, si, 0, 1, ceil=m.ceil_mode) for size, ki, si in zip(x.shape[2:], k, s)]
        return _empty([*x.shape[:2], *spatial], x) if min(spatial, default=1) > 0 else None

    return rule


def _pool(n: int, with_dilation: bool) -> Rule:
    def rule(m: nn.Module, args: tuple, kwargs: dict) -> torch.Tensor | None:
        x = _tensor(args, kwargs, n)
        windows = pool_windows(m, n, with_dilation) if x is not None else None
        if windows is None:
            return None
        if n == 3 and not with_dilation and any(size < w[0] for size, w in zip(x.shape[2:], windows)):
            return None  # avg_pool3d alone: "input image smaller than kernel size"
        spatial = [_window(size, *w, ceil=m.ceil_mode) for size, w in zip(x.shape[2:], windows)]
        if min(spatial, default=1) <= 0:
            raise pool_too_small(x.shape, spatial, n, with_dilation)
        return _empty([*x.shape[:2], *spatial], x)

    return rule


def _adaptive(n: int) -> Rule:
    def rule(m: nn.Module, args: tuple, kwargs: dict) -> torch.Tensor | None:
        x = _tensor(args, kwargs, n)
        if x is None or _attr(m, "return_indices", False):
            return None
        return adaptive_pooled(x, m.output_size, n)

    return rule


def adaptive_pooled(x: torch.Tensor, size: Any, n: int) -> torch.Tensor | None:
    if min(x.shape[2:], default=1) <= 0:
        return None
    size = (size,) * n if isinstance(size, int) or size is None else tuple(size)
    if len(size) == 1 and n > 1:
        size = size * n
    if len(size) != n or (n == 1 and None in size):  # the 1-D functions take no None
        return None
    spatial = [have if want is None else want for want, have in zip(size, x.shape[2:])]
    if not all(isinstance(s, int) and s > 0 for s in spatial):
        return None
    return _empty([*x.shape[:2], *spatial], x)


def _adaptive_fn(n: int) -> Callable:
    def rule(input: Any, output_size: Any, return_indices: bool = False) -> torch.Tensor | None:  # noqa: A002
        if return_indices or not is_meta_value(input) or input.dim() != n + 2 \
                or not input.dtype.is_floating_point:
            return None
        return adaptive_pooled(input, output_size, n)

    return rule


def _linear(m: nn.Linear, args: tuple, kwargs: dict) -> torch.Tensor | None:
    x = _tensor(args, kwargs)
    if x is None or x.dim() == 0 or x.shape[-1] != m.in_features or not _same_dtype(m, x):
        return None
    return _empty([*x.shape[:-1], m.out_features], x)


def _flatten(m: nn.Flatten, args: tuple, kwargs: dict) -> torch.Tensor | None:
    x = _tensor(args, kwargs)
    if x is None or x.dim() == 0:
        return None
    start, end = m.start_dim % x.dim(), m.end_dim % x.dim()
    if start > end:
        return None
    shape = list(x.shape)
    return _empty([*shape[:start], math.prod(shape[start:end + 1]), *shape[end + 1:]], x)


_MODE_RANK = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


def interpolated(x: Any, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
                 align_corners: Any = None, recompute_scale_factor: Any = None, antialias: bool = False
                 ) -> torch.Tensor | None:
    """``F.interpolate`` / ``nn.Upsample``: the requested size, or floor(size * scale) per axis."""
    if not is_meta_value(x) or not x.dtype.is_floating_point or x.dim() < 3:
        return None
    n = x.dim() - 2
    if _MODE_RANK.get(mode, n) != n or mode not in (*_MODE_RANK, "nearest", "nearest-exact", "area"):
        return None  # torch raises for a mode that does not fit the input's rank
    if (align_corners is not None and mode not in _MODE_RANK) or antialias or (size is None) == (scale_factor is None):
        return None
    if size is not None:
        spatial = _ntuple(size, n)
    else:
        scales = scale_factor if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * n
        if len(scales) != n or not all(isinstance(f, (int, float)) and f > 0 for f in scales):
            return None
        spatial = tuple(math.floor(float(have) * float(f)) for have, f in zip(x.shape[2:], scales))
    if spatial is None or min(spatial) <= 0 or min(x.shape[2:]) <= 0:
        return None
    return _empty([*x.shape[:2], *spatial], x)


def _upsample(m: nn.Upsample, args: tuple, kwargs: dict) -> torch.Tensor | None:
    x = _tensor(args, kwargs)
    if x is None:
        return None
    return interpolated(x, m.size, m.scale_factor, m.mode, m.align_corners, m.recompute_scale_factor)


def _instance_norm(m: nn.modules.instancenorm._InstanceNorm, args: tuple, kwargs: dict) -> torch.Tensor | None:
    """The input's shape, unless the norm takes its statistics from a single spatial element, which
    torch refuses ("Expected more than 1 spatial element"): then torch runs it and says so, and the
    model does not run at this size (it does not in eval mode either, without running stats)."""
    x = _tensor(args, kwargs)
    return None if x is None else _instance_norm_fn(x, use_input_stats=m.training or not m.track_running_stats)


def _instance_norm_fn(input: Any, running_mean: Any = None, running_var: Any = None, weight: Any = None,  # noqa: A002
                      bias: Any = None, use_input_stats: bool = True, *args: Any, **kwargs: Any) -> torch.Tensor | None:
    if not is_meta_value(input) or (use_input_stats and math.prod(input.shape[2:]) <= 1):
        return None
    return input


INSTANCE_NORMS = frozenset({nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d})

MODULE_SHAPE_RULES: dict[type, Rule] = {
    **{norm: _instance_norm for norm in INSTANCE_NORMS},
    nn.Conv1d: _conv, nn.Conv2d: _conv, nn.Conv3d: _conv,
    nn.ConvTranspose1d: _conv_transpose, nn.ConvTranspose2d: _conv_transpose, nn.ConvTranspose3d: _conv_transpose,
    nn.MaxPool1d: _pool(1, True), nn.MaxPool2d: _pool(2, True), nn.MaxPool3d: _pool(3, True),
    nn.AvgPool1d: _pool(1, False), nn.AvgPool2d: _pool(2, False), nn.AvgPool3d: _pool(3, False),
    **{cls: _lp_pool(n) for n, cls in ((1, nn.LPPool1d), (2, nn.LPPool2d), (3, getattr(nn, "LPPool3d", None))) if cls},
    nn.AdaptiveAvgPool1d: _adaptive(1), nn.AdaptiveAvgPool2d: _adaptive(2), nn.AdaptiveAvgPool3d: _adaptive(3),
    nn.AdaptiveMaxPool1d: _adaptive(1), nn.AdaptiveMaxPool2d: _adaptive(2), nn.AdaptiveMaxPool3d: _adaptive(3),
    nn.Linear: _linear,
    nn.Flatten: _flatten,
    nn.Upsample: _upsample, nn.UpsamplingNearest2d: _upsample, nn.UpsamplingBilinear2d: _upsample,
}


def _broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> list[int] | None:
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x != y and x != 1 and y != 1:
            return None
        out.append(y if x == 1 else x)
    return out[::-1]


def elementwise(a: Any, b: Any) -> torch.Tensor | None:
    """``a + b``, ``a * b`` ... of two same-dtype float meta tensors, or a tensor and a Python number:
    the broadcast shape (torch's meta path runs Python reference code and type promotion)."""
    tensors = [t for t in (a, b) if is_tensor_like(t)]
    if not tensors or not all(is_meta_value(t) and t.dtype.is_floating_point and t.dtype == tensors[0].dtype for t in tensors):
        return None
    if len(tensors) == 1:
        other = b if tensors[0] is a else a
        if type(other) not in (int, float):
            return None
        return _empty(list(tensors[0].shape), tensors[0])
    shape = _broadcast(tuple(a.shape), tuple(b.shape))
    return None if shape is None else _empty(shape, a)


def reduced(input: Any, dim: Any = None, keepdim: bool | None = None, *, dtype: Any = None) -> torch.Tensor | None:  # noqa: A002
    """``x.mean(dim, keepdim)`` and the like: the reduced dims dropped, or kept as 1."""
    x = input
    if not is_meta_value(x) or not x.dtype.is_floating_point or dtype is not None:
        return None
    rank = x.dim()
    if dim is None:
        if keepdim is not None:
            return None  # x.sum(keepdim=...) without dim is not a valid call: let torch say so
        dims = set(range(rank))
    else:
        listed = dim if isinstance(dim, (tuple, list)) else (dim,)
        if not listed or not all(type(d) is int and -max(rank, 1) <= d < max(rank, 1) for d in listed):
            return None
        dims = {d % max(rank, 1) for d in listed}
        if len(dims) != len(listed):
            return None  # torch: "dim appears multiple times in the list of dims"
    shape = [1 if i in dims else s for i, s in enumerate(x.shape)] if keepdim else \
        [s for i, s in enumerate(x.shape) if i not in dims]
    return _empty(shape, x)


def extremum(input: Any, dim: Any = None, keepdim: bool | None = None) -> torch.Tensor | None:  # noqa: A002
    """``torch.amax`` / ``amin`` (CBAM's channel max): :func:`reduced`, except that torch refuses to
    reduce a dim of size 0, so any empty tensor is left to torch.  (On meta tensors the reduction
    runs torch's Python reference code: a tenth of a millisecond a call.)"""
    if is_meta_value(input) and 0 in tuple(input.shape):
        return None
    return reduced(input, dim, keepdim)


def flattened(input: Any, start_dim: int = 0, end_dim: int = -1) -> torch.Tensor | None:  # noqa: A002
    """``torch.flatten`` / ``x.flatten``: dims start..end multiplied into one (every classifier head)."""
    x = input
    if not is_meta_value(x) or type(start_dim) is not int or type(end_dim) is not int:
        return None
    rank = x.dim()
    if rank == 0 or not (-rank <= start_dim < rank and -rank <= end_dim < rank):
        return None  # a 0-d tensor flattens to 1-d; out-of-range dims: torch's own message
    start, end = start_dim % rank, end_dim % rank
    if start > end:
        return None
    shape = list(x.shape)
    return MetaSpec([*shape[:start], math.prod(shape[start:end + 1]), *shape[end + 1:]], x.dtype)


def concatenated(tensors: Any = None, dim: int = 0, *, out: Any = None, axis: Any = None) -> torch.Tensor | None:
    """torch.cat: the sizes along ``dim`` added.  (Its meta kernel imports torch._dynamo on first use,
    1-2 s of start-up.)  Mismatched sizes raise torch's own message, without importing anything."""
    dim = axis if axis is not None else dim
    if out is not None or not isinstance(tensors, (list, tuple)) or not tensors or type(dim) is not int:
        return None
    first = tensors[0]
    if not all(is_meta_value(t) and t.dim() == first.dim() > 0 for t in tensors):
        return None
    if not -first.dim() <= dim < first.dim():
        return None
    d = dim % first.dim()
    for i, t in enumerate(tensors[1:], 1):
        for axis_, (want, got) in enumerate(zip(first.shape, t.shape)):
            if axis_ != d and want != got:
                raise RuntimeError(f"Sizes of tensors must match except in dimension {d}. Expected {want} in "
                                   f"dimension {axis_} but got {got} for tensor number {i} in the list")
    dtype = first.dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    shape = list(first.shape)
    shape[d] = sum(t.shape[d] for t in tensors)
    return MetaSpec(shape, dtype)


def _same_shape(input: Any, *args: Any, **kwargs: Any) -> torch.Tensor | None:  # noqa: A002
    """Activations, dropout, normalisation: the output has the input's shape by definition."""
    return input if is_meta_value(input) else None


def _function_rules() -> dict[Any, Callable]:
    import operator

    import torch.nn.functional as F

    rules: dict[Any, Callable] = {}
    same = ["relu", "relu6", "elu", "selu", "celu", "gelu", "silu", "mish", "hardswish", "hardsigmoid",
            "hardtanh", "leaky_relu", "softplus", "sigmoid", "tanh", "dropout", "dropout1d", "dropout2d",
            "dropout3d", "alpha_dropout", "batch_norm", "layer_norm", "group_norm",
            "local_response_norm"]
    rules.update({getattr(F, n): _same_shape for n in same if hasattr(F, n)})
    rules[F.instance_norm] = _instance_norm_fn
    rules.update({getattr(torch, n): _same_shape for n in ("relu", "sigmoid", "tanh", "selu", "celu") if hasattr(torch, n)})
    rules.update({f: elementwise for f in (operator.add, operator.sub, operator.mul, operator.truediv,
                                           torch.add, torch.sub, torch.mul, torch.div)})
    rules.update({f: concatenated for f in (torch.cat, torch.concat, torch.concatenate)})
    rules.update({f: reduced for f in (torch.mean, torch.sum)})
    rules.update({f: extremum for f in (torch.amax, torch.amin)})
    rules[torch.flatten] = flattened
    from rflint.trace.assignment import assigned

    rules[assigned] = _same_shape  # an item assignment keeps the tensor's shape
    rules[F.interpolate] = interpolated
    for n, names in ((1, ("adaptive_avg_pool1d", "adaptive_max_pool1d")), (2, ("adaptive_avg_pool2d", "adaptive_max_pool2d")),
                     (3, ("adaptive_avg_pool3d", "adaptive_max_pool3d"))):
        rules.update({getattr(F, name): _adaptive_fn(n) for name in names})
    rules[torch.adaptive_avg_pool1d] = _adaptive_fn(1)
    for n in (1, 2, 3):
        if hasattr(F, f"lp_pool{n}d"):
            rules[getattr(F, f"lp_pool{n}d")] = _lp_pool_fn(n)
    return rules


def _lp_pool_fn(n: int) -> Callable:
    """F.lp_pool{n}d(input, norm_type, kernel_size, stride=None, ceil_mode=False): the module's rule."""
    module_rule = _lp_pool(n)

    def rule(input: Any, norm_type: Any, kernel_size: Any, stride: Any = None, ceil_mode: bool = False  # noqa: A002
             ) -> torch.Tensor | None:
        return module_rule(SimpleNamespace(kernel_size=kernel_size, stride=stride, ceil_mode=bool(ceil_mode)), (input,), {})
    return rule


def _same_shape_modules() -> frozenset[type]:
    return frozenset({
        # not the instance norms: they refuse a single spatial element (_instance_norm)
        nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm,
        nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
        nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Softplus,
        nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Identity,
    })


def module_rule(module: nn.Module) -> Callable | None:
    """The shape rule of a module's class; for a layer given a parametrization (torch makes its
    class anew, ParametrizedLinear), its layer's: a parametrization keeps the weight's shape, and
    running it on meta can fail (orthogonal() of a non-square weight: "None @ Tensor").  The rules
    read sizes, never weights."""
    cls = type(module)
    rule = MODULE_SHAPE_RULES.get(cls)
    if rule is None and cls.__module__ == "torch.nn.utils.parametrize" and cls.__bases__:
        rule = MODULE_SHAPE_RULES.get(cls.__bases__[0])
    return rule


# function -> rule(*args, **kwargs) with the function's own signature; a TypeError means the call
# is not one the rule understands (the interpreter then lets torch run it)
FUNCTION_SHAPE_RULES = _function_rules()
# Tensor method name -> rule(self, *args, **kwargs)
METHOD_SHAPE_RULES: dict[str, Callable] = {"mean": reduced, "sum": reduced, "amax": extremum, "amin": extremum,
                                              "flatten": flattened}
SAME_SHAPE_MODULES = _same_shape_modules()
