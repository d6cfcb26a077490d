"""A meta tensor that has not been made yet: just its shape and dtype.

Shape propagation computes the output of most layers by arithmetic (shape_rules.py).  Wrapping each
answer in ``torch.empty(..., device="meta")`` costs a trip through torch's dispatcher, several times
the arithmetic, and nobody looks at the tensor unless torch itself has to run the next op.  So the
rules answer with a :class:`MetaSpec`, which quacks like a meta tensor for everything a shape rule or
an RF rule reads (``shape``, ``dtype``, ``dim()``, ``numel()``, ``is_meta``), and :func:`real` turns
it into the meta tensor only where torch runs an op on it (or code asks for a real ``Tensor``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch


class MetaSpec:
    __slots__ = ("shape", "dtype")
    is_meta = True

    def __init__(self, shape: tuple[int, ...], dtype: torch.dtype):
        self.shape = tuple(shape)  # a plain tuple: compares equal to torch.Size, and is cheaper
        self.dtype = dtype

    def dim(self) -> int:
        return len(self.shape)

    def numel(self) -> int:
        return math.prod(self.shape)

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def __repr__(self) -> str:
        return f"MetaSpec({list(self.shape)}, {self.dtype})"


def is_meta_value(x: Any) -> bool:
    """A meta tensor or a MetaSpec: a value a shape rule may compute on."""
    return type(x) is MetaSpec or (isinstance(x, torch.Tensor) and x.is_meta)


def is_tensor_like(x: Any) -> bool:
    return type(x) is MetaSpec or isinstance(x, torch.Tensor)


def real(x: Any) -> Any:
    """The meta tensor a MetaSpec stands for (anything else unchanged, lists and tuples element-wise:
    torch.cat takes a list of tensors)."""
    if type(x) is MetaSpec:
        return torch.empty(x.shape, dtype=x.dtype, device="meta")
    if type(x) in (list, tuple) and any(type(v) is MetaSpec for v in x):
        return type(x)(real(v) for v in x)
    return x


def first_shape(value: Any) -> tuple[int, ...] | None:
    """The shape of a node's value: a tensor's, or the first tensor's of a tuple/list (an op that
    returns several) or of a dataclass (a model's output object); None for anything else."""
    if type(value) is MetaSpec:  # the commonest value: its shape is a tuple already
        return value.shape
    if is_tensor_like(value):
        return tuple(value.shape)
    if isinstance(value, (tuple, list)) and value and is_tensor_like(value[0]):
        return tuple(value[0].shape)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # a ModelOutput-like result
        fields = dataclasses.fields(value)
        first = getattr(value, fields[0].name, None) if fields else None
        return tuple(first.shape) if is_tensor_like(first) else None
    return None


# node.meta key: in a trace on real values, the shape and dtype each tensor had there; the shape
# pass falls back on it where meta tensors cannot say (torch.nonzero, boolean masks)
TRACED_VALUE = "rflint_traced_value"

# how torch says that an op needs a tensor's values, which meta tensors do not have
_NEEDS_VALUES = ("cannot be called on meta tensors", "meta device type tensor to numpy",
                 "data-independent implementation does not exist", "Cannot copy out of meta tensor",
                 # older torch words it as a missing meta kernel (.item() in 2.1, nonzero up to 2.6)
                 "'aten::_local_scalar_dense' with arguments from the 'Meta' backend",
                 "aten::_local_scalar_dense: attempted to run this operator with Meta tensors",
                 "aten::nonzero: attempted to run this operator with Meta tensors")


def needs_values(err: Exception) -> bool:
    """The op failed on meta tensors because its result depends on the values (.item(), nonzero)."""
    text = str(err)
    return any(p in text for p in _NEEDS_VALUES)
