"""What a transfer rule sees (:class:`Ctx`) and returns (:class:`Outcome`), and how a kernel op is
applied to a tensor's RF state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch.fx as fx
from torch import nn

from rflint.engine import kernels as K
from rflint.engine.rfstate import TensorRF, built
from rflint.trace.metaspec import is_tensor_like
from rflint.trace.shapes import empty_map_error, is_empty_map


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
        """The value of a node argument: a meta tensor or a MetaSpec (trace/metaspec.py), which
        answers the same questions (shape, dtype, dim()); rules never need more."""
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
        """The first argument: positional, or the ``input=`` keyword (``F.conv2d(input=x, ...)``)."""
        return self.node.args[0] if self.node.args else self.node.kwargs.get("input")

    def tensor_inputs(self) -> list[fx.Node]:
        return [a for a in self.node.all_input_nodes if a in self._rfs]

    @property
    def op_name(self) -> str:
        if self.module is not None:
            return type(self.module).__name__
        if self.node.op == "call_method":
            return f"Tensor.{self.node.target}"
        target = self.node.target
        from rflint.engine.ops.functions import FUNCTION_NAMES  # noqa: PLC0415 (registry imports us)

        return FUNCTION_NAMES.get(target) or getattr(target, "__name__", str(target))


def shape_of(value: Any) -> tuple[int, ...] | None:
    return tuple(value.shape) if is_tensor_like(value) else None


def apply_kernel(rf: TensorRF, kop: K.KernelOp) -> TensorRF:
    """Apply a kernel op to the axes it covers (the last kop.n dims); other axes pass through
    (dims are unchanged, so the axes stay in order)."""
    n, grow, scale = kop.n, kop.grow, kop.scale
    axes = tuple([axis.step(grow[axis.dim + n], scale[axis.dim + n]) if 0 <= axis.dim + n < n else axis
                  for axis in rf.axes])
    if kop.parametric and axes and axes[0].dim == -n - 1:
        # a spatial axis moved into the channel slot (a spectrogram's frequency as channels): the
        # conv reads every row of it at once, so it is mixed, not passed on
        axes = axes[1:]
    by = 1 if kop.parametric else 0
    return built(TensorRF, (axes, not axes, rf.d_min + by, rf.d_max + by))  # no axes left: global


def kernel_result(rf: TensorRF | None, kop: K.KernelOp | None) -> tuple[TensorRF | None, K.KernelOp | None]:
    """(output RF, RF-layer kernel) of a kernel-like op on an input with RF ``rf``."""
    if rf is None:
        return None, None
    if kop is None:
        return rf, None
    if rf.is_global:  # head: a conv on a global tensor stays global
        return (rf.deeper(1) if kop.parametric else rf), kop
    return apply_kernel(rf, kop), kop


def kernel_outcome(ctx: Ctx, kop: K.KernelOp | None, src: Any = None) -> Outcome:
    return Outcome(*kernel_result(ctx.rf(ctx.first if src is None else src), kop))


def not_empty(node: Any, value: Any) -> None:
    """Raise when the map ``node`` made has no pixel left on a spatial axis (a crop or a slice past
    a one-pixel map): torch lets empty maps through most ops, but the input is too small for the
    model, and size_hints.explain_failure says so, naming ``node``."""
    if isinstance(node, fx.Node) and is_tensor_like(value) and is_empty_map(value):
        raise empty_map_error(node, value)


def spatial_sizes(value: Any, n: int) -> tuple[int, ...]:
    if isinstance(value, (tuple, list)) and value:  # (values, indices) of a pool with return_indices
        value = value[0]
    shape = shape_of(value)
    return tuple(shape[-n:]) if shape and len(shape) >= n else ()
