"""Rules for nn.Module leaves: convs, pools, resampling, linear layers, declared and unknown layers."""

from __future__ import annotations

import math
import operator
from typing import Any, Callable

import torch
import torch.fx as fx
from torch import nn

from rflint.declared import spec_for
from rflint.engine import kernels as K
from rflint.engine.ops.context import Ctx, Outcome, kernel_outcome, not_empty, shape_of, spatial_sizes
from rflint.engine.ops.tensors import (
    _elementwise, _global_fn, _inferred, _merged_rf, _mix_dims, _reshape, _same_spatial, pair_reduced,
)
from rflint.engine.rfstate import TensorRF
from rflint.trace.metaspec import is_tensor_like


def _conv_module(ctx: Ctx) -> Outcome:
    return kernel_outcome(ctx, conv_module_kop(ctx.module))


_KOP_BY_CONFIG: dict[tuple, K.KernelOp] = {}  # (class, attributes) -> KernelOp: both are immutable


def _by_config(m: nn.Module, required: tuple[str, ...], optional: tuple[str, ...],
               build: Callable[[nn.Module], K.KernelOp]) -> K.KernelOp:
    """``build(m)``, once per distinct configuration: a network repeats a handful of layer
    configurations many times, and the kernel depends on the class and these instance attributes
    alone.  Built uncached when a required attribute is not a plain instance attribute (a property
    of some subclass could compute it from anything) or a value is unhashable (a list as padding)."""
    attrs = m.__dict__
    try:
        key = (type(m), *_getter(required)(attrs), *[attrs.get(name) for name in optional])
        kop = _KOP_BY_CONFIG.get(key)
    except (KeyError, TypeError):  # not a plain instance attribute, or unhashable
        return build(m)
    if kop is None:
        kop = _KOP_BY_CONFIG[key] = build(m)
    return kop


def _getter(names: tuple[str, ...]):
    """``itemgetter(*names)`` returning a tuple even for one name, made once per names tuple."""
    getter = _GETTERS.get(names)
    if getter is None:
        getter = _GETTERS[names] = operator.itemgetter(*names) if len(names) > 1 else (lambda d: (d[names[0]],))
    return getter


_GETTERS: dict[tuple, Callable] = {}

_CONV_ATTRS = ("kernel_size", "stride", "dilation", "padding"), ("padding_mode",)
_POOL_ATTRS = ("kernel_size", "stride"), ("dilation", "padding")


def conv_module_kop(m: nn.Module) -> K.KernelOp:
    return _by_config(m, *_CONV_ATTRS, _conv_module_kop)


def _conv_module_kop(m: nn.Module) -> K.KernelOp:
    n = len(m.kernel_size)
    if isinstance(m, nn.modules.conv._ConvTransposeNd):
        kop = K.transposed(type(m).__name__, m.kernel_size, m.stride, m.dilation, parametric=True)
    else:
        kop = K.windowed(
            type(m).__name__, "conv", m.kernel_size, m.stride, m.dilation,
            K.conv_padding(m.padding, m.kernel_size, m.dilation), parametric=True,
            zero_padding=m.__dict__.get("padding_mode", "zeros") == "zeros",
        )
    assert kop.n == n
    return kop


def _pool_module(ctx: Ctx) -> Outcome:
    return pooled(ctx, pool_module_kop(ctx.module))


def pooled(ctx: Ctx, kop: K.KernelOp, src: Any = None) -> Outcome:
    """A fixed-window pool.  Where its one output window reads a whole axis and nothing spatial
    follows (:func:`_flattened_next`) (``nn.AvgPool2d(7)`` on the 7x7 maps it was written for, ``F.avg_pool2d(x, 4)``
    closing a CIFAR ResNet, ``F.avg_pool2d(x, x.shape[2:])``), it is global pooling before the
    classifier, the mean (max) over every position along that axis, exactly as an adaptive pool to
    1 is (rf-semantics.md section 2, "global ops"): the map stops being spatial there, as in
    :func:`_adaptive`, and the pool is no RF layer that could make the last segment productive.

    A whole-map pool with more layers after it (DenseNet's last transition at 32 px: 2x2 -> 1x1,
    then a dense block) stays a pool: the layers after it read the map it made and are judged as RF
    layers (unproductive, in a tail), not hidden as a head.  A one-pixel axis counts as read whole
    when the others are; a map that is one pixel already is read whole by any window
    (``F.avg_pool2d(x, x.size()[2:])`` at a size where the last map is 1x1), like an adaptive pool
    to 1 on it."""
    src = ctx.first if src is None else src
    n = kop.n
    n_in, n_out = spatial_sizes(ctx.val(src), n), spatial_sizes(ctx.out, n)
    return _reading_whole_axes(ctx, kop, src, whole_map_axes(kop, n_in, n_out), n_in, n_out)


def _reading_whole_axes(ctx: Ctx, kop: K.KernelOp, src: Any, whole: set[int], n_in: tuple[int, ...],
                        n_out: tuple[int, ...]) -> Outcome:
    """A pool whose window reads the ``whole`` of these axes: global along them when nothing
    spatial follows (:func:`pooled`), else an ordinary window."""
    n = kop.n
    one_pixel = all(i == o == 1 for i, o in zip(n_in, n_out))  # the map is one pixel: its window reads all of it
    if not (whole or one_pixel) or not _flattened_next(ctx):
        return kernel_outcome(ctx, kop, src)
    rf = ctx.rf(src)
    # the other axes one pixel in and out (the last map of an anisotropic volume, 1x2): read whole too
    if rf is not None and all(i in whole or (n_in[i] == n_out[i] == 1) for i in range(n)):
        return Outcome(rf.to_global())
    out = kernel_outcome(ctx, kop, src)
    if out.rf is not None and not out.rf.is_global:
        out.rf = out.rf.with_axes([a for a in out.rf.axes if a.dim + n not in whole])
    return out


def _flattened_next(ctx: Ctx) -> bool:
    """Nothing spatial follows the node's output: every use of it, past layout and elementwise ops
    (activations, dropout, permutes: one operand, the same number of values), drops its one-pixel
    axes (flatten, view, squeeze, x[:, :, 0, 0], a mean over them: fewer dims, the same values) or
    reads its size.  A module with weights (a conv on the 1x1 map) is something spatial following."""
    node = ctx.node
    if not isinstance(node, fx.Node):
        return False
    owner = node.graph.owning_module
    pending, seen = [(user, node) for user in node.users], set()  # (a use, the tensor it reads)
    while pending:
        user, read = pending.pop()
        if user in seen:
            continue
        seen.add(user)
        if user.op == "call_method" and user.target in ("size", "dim"):  # x.view(x.size(0), -1)
            continue
        if user.op == "call_function" and user.target is operator.getitem and isinstance(ctx.val(read), (tuple, list)):
            pending.extend((u, user) for u in user.users)  # (values, indices)[0]: the pooled map itself
            continue
        if user.op == "call_function" and user.target is getattr:  # x.shape
            continue
        module = owner.get_submodule(user.target) if user.op == "call_module" and owner is not None else None
        if isinstance(module, nn.Flatten) or (module is not None and rule_of(module) is _linear):
            continue  # a Linear on the one-pixel map (a ConvNeXt head after its permute) is the head
        if module is not None and rule_of(module) is not _elementwise and any(True for _ in module.parameters()):
            return False
        inputs = [a for a in user.all_input_nodes if is_tensor_like(ctx.val(a))]
        before, after = shape_of(ctx.val(read)), shape_of(ctx.val(user))
        if len(inputs) != 1 or before is None or after is None or math.prod(before) != math.prod(after):
            return False
        if len(after) < len(before):  # the one-pixel axes dropped: the map is gone
            continue
        pending.extend((u, user) for u in user.users)  # same rank: a layout or elementwise op; what follows decides
    return bool(seen)


def whole_map_axes(kop: K.KernelOp, n_in: tuple[int, ...], n_out: tuple[int, ...]) -> set[int]:
    """The spatial axes (0 = the first) a windowed op reduces to one value read from every
    position: one output unit, more than one input unit, and a window that covers them all
    (with a dilation above 1 it skips some, unless the axis is one pixel)."""
    if kop.padding is None or len(n_in) != kop.n or len(n_out) != kop.n:
        return set()
    return {i for i, (size, out, k, d, p) in enumerate(zip(n_in, n_out, kop.kernel, kop.dilation, kop.padding))
            if out == 1 < size and d == 1 and k - p >= size}


def pool_module_kop(m: nn.Module) -> K.KernelOp:
    return _by_config(m, *_POOL_ATTRS, _pool_module_kop)


def _pool_module_kop(m: nn.Module) -> K.KernelOp:
    n = _pool_rank(m)
    kernel = K.per_axis(m.kernel_size, n, "kernel_size")
    stride = K.per_axis(m.stride if m.stride else m.kernel_size, n, "stride")
    # __dict__ lookups: a missing attribute goes through nn.Module.__getattr__, which raises (slow)
    dilation = K.per_axis(m.__dict__.get("dilation", 1), n, "dilation")
    padding = K.per_axis(m.__dict__.get("padding", 0), n, "padding")
    return K.windowed(type(m).__name__, "pool", kernel, stride, dilation, padding, False)


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
    return kernel_outcome(ctx, K.transposed(type(m).__name__, kernel, stride, (1,) * n, False))


def _adaptive(ctx: Ctx, op: str, src: Any, n: int) -> Outcome:
    rf = ctx.rf(src)
    n_in, n_out = spatial_sizes(ctx.val(src), n), spatial_sizes(ctx.out, n)
    if rf is None:
        return Outcome(None)
    not_empty(src, ctx.val(src))  # the window is worked out from the sizes
    if all(o == 1 for o in n_out):  # pooling to one value per channel: global
        return Outcome(rf.to_global())
    # otherwise a window (rf-semantics §2), and an axis pooled to one value (a CRNN's
    # AdaptiveAvgPool2d((1, None))) is read whole, as by the fixed pool of that size (pooled())
    whole = {i for i, (size, o) in enumerate(zip(n_in, n_out)) if o == 1 < size}
    return _reading_whole_axes(ctx, K.adaptive(op, n_in, n_out), src, whole, n_in, n_out)


def _adaptive_module(ctx: Ctx) -> Outcome:
    return _adaptive(ctx, type(ctx.module).__name__, ctx.first, _pool_rank(ctx.module))


def _upsample(ctx: Ctx, op: str, mode: str, src: Any, antialias: bool = False) -> Outcome:
    shape_in = shape_of(ctx.val(src))
    if shape_in is None:
        return Outcome(ctx.rf(src))
    n = len(shape_in) - 2
    if ctx.rf(src) is not None:
        not_empty(src, ctx.val(src))  # the factor is worked out from the sizes
    kop = K.interpolation(f"{op}({mode})", mode, spatial_sizes(ctx.val(src), n), spatial_sizes(ctx.out, n),
                          antialias)
    if kop is None:
        return _inferred(ctx, f"{op} with mode {mode!r} is not modelled")
    return kernel_outcome(ctx, kop, src)


def _upsample_module(ctx: Ctx) -> Outcome:
    return _upsample(ctx, type(ctx.module).__name__, ctx.module.mode, ctx.first)


def _shuffle_module(ctx: Ctx) -> Outcome:
    m = ctx.module
    down = isinstance(m, nn.PixelUnshuffle)
    factor = m.downscale_factor if down else m.upscale_factor
    return kernel_outcome(ctx, K.pixel_shuffle(type(m).__name__, factor, 2, down))


def _linear(ctx: Ctx) -> Outcome:
    return Outcome(linear_rf(ctx.rf(ctx.first)), parametric=True)


def linear_rf(rf: TensorRF | None) -> TensorRF | None:
    """Linear mixes its last dim: global if that dim is spatial (or the tensor is flattened).  It
    reads its input's RF alone (ops/__init__.py compiles it into a quick step)."""
    if rf is None:
        return None
    axes = [a for a in rf.axes if a.dim != -1]
    out = rf.with_axes(axes) if len(axes) != len(rf.axes) else rf
    return out.deeper(1)


def unfolded(ctx: Ctx, op: str, kernel_size: Any, dilation: Any, padding: Any, stride: Any) -> Outcome:
    """F.unfold / nn.Unfold: a conv-like window (RF layer); its (N, C*k*k, L) output is flattened, so
    global unless a later reshape restores the grid (not tracked: reported as global)."""
    n = 2
    kernel = K.per_axis(kernel_size, n)
    kop = K.windowed(op, "unfold", kernel, K.per_axis(stride, n), K.per_axis(dilation, n),
                     K.per_axis(padding, n), False)
    out = kernel_outcome(ctx, kop)
    if out.rf is not None:
        out.rf = out.rf.to_global()
    return out


def folded(ctx: Ctx) -> Outcome:
    """F.fold / nn.Fold: a map summed back from columns.  Columns are F.unfold's flattened output,
    global here (see :func:`unfolded`), so the map is too; said in a warning, since every layer
    after it is then a head that no rule checks (an unfold-fold pair around a conv, VOLO's outlook
    attention), not a finding rflint could vouch for."""
    rf = ctx.rf(ctx.first)
    if rf is None:
        return Outcome(None)
    return Outcome(rf.to_global(), warning=f"{ctx.op_name}: {FOLD_WARNING}")


# (program.py leaves out its note on head layers with a window when this one is given: it says so)
FOLD_WARNING = ("the map it makes from columns (F.unfold's output) is not tracked and counts as global: a layer that "
                "reads it alone is not checked, and where it is added to another map, that map's RF is kept")


def _unfold_module(ctx: Ctx) -> Outcome:
    m = ctx.module
    return unfolded(ctx, type(m).__name__, m.kernel_size, m.dilation, m.padding, m.stride)


def _flatten_module(ctx: Ctx) -> Outcome:
    return _reshape(ctx)


def _global_module(ctx: Ctx) -> Outcome:
    return _global_fn(ctx)


def _softmax_module(ctx: Ctx) -> Outcome:
    dim = ctx.module.dim
    if dim is None:  # torch's implicit dim (F._get_softmax_dim): 0 for 0-, 1- and 3-D inputs, else 1
        shape = shape_of(ctx.val(ctx.first))
        dim = 0 if shape is not None and len(shape) in (0, 1, 3) else 1
    return _mix_dims(ctx, ctx.first, [dim])


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
    ((nn.Unfold,), _unfold_module),
    ((nn.Fold,), folded),
    ((nn.Linear, nn.Bilinear, nn.LazyLinear), _linear),
    ((nn.Flatten, nn.Unflatten), _flatten_module),
    ((nn.MultiheadAttention, nn.RNNBase, nn.Transformer, nn.TransformerEncoder, nn.TransformerDecoder,
      nn.TransformerEncoderLayer, nn.TransformerDecoderLayer), _global_module),
    ((nn.Softmax, nn.LogSoftmax, nn.Softmin), _softmax_module),
    ((nn.CosineSimilarity, nn.PairwiseDistance), lambda ctx: _pairwise_module(ctx)),
]


def _pairwise_module(ctx: Ctx) -> Outcome:
    """nn.CosineSimilarity(dim) / nn.PairwiseDistance(keepdim): as their functions, along their dim."""
    return pair_reduced(ctx, int(getattr(ctx.module, "dim", -1)), bool(getattr(ctx.module, "keepdim", False)))


def _declared(ctx: Ctx, spec) -> Outcome:
    """A custom module the user declared (@rflint.layer / [tool.rflint.layers]): a conv-like window."""
    src = shape_of(ctx.val(ctx.first))
    rf = ctx.rf(ctx.first)
    n = max(-a.dim for a in rf.axes) if rf is not None and rf.spatial else (len(src) - 2 if src else 2)
    try:
        kernel = K.per_axis(spec.kernel, n, "kernel")
        stride = K.per_axis(spec.stride, n, "stride")
        dilation = K.per_axis(spec.dilation, n, "dilation")
    except ValueError as err:
        return _inferred(ctx, f"declared layer {type(ctx.module).__name__}: {err}")
    parametric = any(True for _ in ctx.module.parameters())
    if not parametric and all(k == 1 for k in kernel) and all(s == 1 for s in stride):
        # no window, no stride, no weights (a DropPath, a constant scale): not an RF layer
        # (rf-semantics.md section 3), so it cannot block a segment's path the way an unproductive
        # 1x1 conv does; declaring what it is must not change the verdict
        return Outcome(ctx.rf(ctx.first))
    out = kernel_outcome(ctx, K.windowed(type(ctx.module).__name__, "declared", kernel, stride, dilation,
                                          None, parametric))
    misfit = _misfit(src, shape_of(ctx.out), kernel, stride, dilation)
    if misfit and not out.warning:
        out.warning = (f"declared layer {type(ctx.module).__name__}: its kernel {_sizes(kernel)}, stride {_sizes(stride)} "
                       f"cannot take {misfit} (with any padding up to the kernel's); the RFs use the declaration")
    return out


def _misfit(src, out, kernel, stride, dilation) -> str | None:
    """"8x8 to 4x4" when a window of ``kernel`` with ``stride`` cannot make ``out`` from ``src``
    with a padding from 0 to k_eff - 1 per side (a declaration that says stride 1 for a layer that
    halves its map): the declaration is trusted, so the contradiction must be said."""
    n = len(kernel)
    if src is None or out is None or len(src) != len(out) or len(src) < n \
            or not all(isinstance(s, int) and s >= 1 for s in stride):  # (an upsampling's sizes follow other rules)
        return None
    for i, (k, s, d) in enumerate(zip(kernel, stride, dilation)):
        size, got, k_eff = src[len(src) - n + i], out[len(out) - n + i], d * (k - 1) + 1
        low = (size - k_eff) // s + 1 if size >= k_eff else 0
        high = (size + k_eff - 2) // s + 1
        if not low <= got <= high:
            return f"{_sizes(src[-n:])} to {_sizes(out[-n:])}"
    return None


def _sizes(values) -> str:
    return "x".join(str(v) for v in values)


_RULE_BY_TYPE: dict[type, Callable[[Ctx], Outcome]] = {}


def _rule_for(cls: type) -> Callable[[Ctx], Outcome]:
    for types, rule in _MODULE_RULES:
        if issubclass(cls, types):
            return rule
    if issubclass(cls, nn.Identity) or cls.__module__ in _IDENTITY_MODULE_FAMILIES:
        return _elementwise
    return _unknown_leaf


def _module_rule(ctx: Ctx) -> Outcome:
    m = ctx.module
    spec = spec_for(m)
    if spec is not None:  # declared at run time (decorator, config): never cached
        return _declared(ctx, spec)
    return rule_of(m)(ctx)


def rule_of(m: nn.Module) -> Callable[[Ctx], Outcome]:
    """The rule for an undeclared module: it depends on the class only, so it is looked up once."""
    rule = _RULE_BY_TYPE.get(type(m))
    if rule is None:
        rule = _RULE_BY_TYPE[type(m)] = _rule_for(type(m))
    return rule


# Module rules whose outcome is kernel_outcome(ctx, kop_of(module)): the kernel is a function of
# the module's attributes alone, never of shapes (ops/__init__.py's quick path relies on this).
# Pools are not: one that reads a whole axis is global pooling there (pooled).
SHAPE_FREE_KERNELS: dict[Callable[[Ctx], Outcome], Callable[[nn.Module], K.KernelOp]] = {
    _conv_module: conv_module_kop,
}


def _unknown_leaf(ctx: Ctx) -> Outcome:
    rf = _merged_rf(ctx)
    if rf is None or rf.is_global:
        return Outcome(rf)
    what = _unknown_name(ctx.module)
    if _same_spatial(ctx, rf):
        return Outcome(rf, warning=f"{what}: keeps the spatial size, "
                                   "treated as identity (declare its kernel/stride if it has one)")
    return _inferred(ctx, what)


def _unknown_name(module: nn.Module) -> str:
    if isinstance(module, torch.jit.ScriptModule):  # its layers are compiled away from fx
        name = getattr(module, "original_name", None) or type(module).__name__
        return f"TorchScript module ({name}), opaque to torch.fx (give rflint the Python module to see its layers)"
    return f"unknown layer {type(module).__name__}"


