"""What a transfer rule sees (:class:`Ctx`) and returns (:class:`Outcome`), and how a kernel op is
applied to a tensor's RF state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from rflint.engine import kernels as K
from rflint.engine.rfstate import TensorRF
from rflint.trace.metaspec import MetaSpec, real


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
        self.out = self.val(node)

    def val(self, a: Any) -> Any:
        """The value of a node argument.  Rules see real meta tensors: a MetaSpec (a shape computed
        by arithmetic, see trace/metaspec.py) is made one here, once."""
        if not isinstance(a, fx.Node):
            return a
        value = self._values.get(a)
        if type(value) is MetaSpec:
            value = self._values[a] = real(value)
        return value

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
        from rflint.engine.ops.functions import FUNCTION_NAMES  # noqa: PLC0415 (registry imports us)

        return FUNCTION_NAMES.get(target) or getattr(target, "__name__", str(target))


def shape_of(value: Any) -> tuple[int, ...] | None:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else None


def apply_kernel(rf: TensorRF, kop: K.KernelOp) -> TensorRF:
    """Apply a kernel op to the axes it covers (the last kop.n dims); other axes pass through."""
    axes = []
    for axis in rf.axes:
        i = axis.dim + kop.n
        axes.append(axis.step(kop.grow[i], kop.scale[i]) if 0 <= i < kop.n else axis)
    out = rf.with_axes(axes)
    return out.deeper(1) if kop.parametric else out


def kernel_outcome(ctx: Ctx, kop: K.KernelOp | None, src: Any = None) -> Outcome:
    rf = ctx.rf(ctx.first if src is None else src)
    if rf is None:
        return Outcome(None)
    if kop is None:
        return Outcome(rf)
    if rf.is_global:  # head: a conv on a global tensor stays global
        return Outcome(rf.deeper(1) if kop.parametric else rf, kop)
    return Outcome(apply_kernel(rf, kop), kop)


def spatial_sizes(value: Any, n: int) -> tuple[int, ...]:
    shape = shape_of(value)
    return tuple(shape[-n:]) if shape and len(shape) >= n else ()
