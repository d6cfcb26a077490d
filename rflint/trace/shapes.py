"""Shape propagation on the ``meta`` device: every node's output, with no real compute or memory.

Like ``torch.fx.passes.shape_prop.ShapeProp`` (one interpreter pass, one job), but the model may hold
real CPU weights (an instance the user built): those are swapped for meta copies per call through
``torch.func.functional_call``, so the user's module is never modified.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.fx as fx
from torch.func import functional_call

from rflint.errors import RflintError
from rflint.trace.shape_rules import ELEMENTWISE_FUNCTIONS, MODULE_SHAPE_RULES, elementwise, interpolated


def _same_shape_modules() -> frozenset[type]:
    from torch import nn

    return frozenset({
        nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.InstanceNorm1d, nn.InstanceNorm2d,
        nn.InstanceNorm3d, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm,
        nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
        nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Softplus,
        nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Identity,
    })


_SAME_SHAPE_MODULES = _same_shape_modules()


_CAT = {torch.cat, torch.concat, torch.concatenate}
_INTERPOLATE = torch.nn.functional.interpolate


def _same_shape_functions() -> frozenset:
    import torch.nn.functional as F

    names = ["relu", "relu6", "elu", "selu", "celu", "gelu", "silu", "mish", "hardswish", "hardsigmoid",
             "hardtanh", "leaky_relu", "softplus", "sigmoid", "tanh", "dropout", "dropout1d", "dropout2d",
             "dropout3d", "alpha_dropout", "batch_norm", "instance_norm", "layer_norm", "group_norm",
             "local_response_norm"]
    found = {getattr(F, n) for n in names if hasattr(F, n)}
    found |= {getattr(torch, n) for n in ("relu", "sigmoid", "tanh", "selu", "celu") if hasattr(torch, n)}
    return frozenset(found)


_SAME_SHAPE_FUNCTIONS = _same_shape_functions()


def _meta_cat(tensors=None, dim=0, *, out=None, axis=None):
    """torch.cat's meta kernel is wrapped in torch._disable_dynamo, whose first call imports
    torch._dynamo (1-2 s of start-up); the shape of a concatenation is simple arithmetic."""
    dim = axis if axis is not None else dim
    if out is not None or not isinstance(tensors, (list, tuple)) or not tensors:
        return None
    if not all(isinstance(t, torch.Tensor) and t.is_meta and t.dim() == tensors[0].dim() > 0 for t in tensors):
        return None
    first = tensors[0]
    d = dim % first.dim()
    if any(t.shape[:d] != first.shape[:d] or t.shape[d + 1:] != first.shape[d + 1:] for t in tensors):
        return None  # let torch raise its own error message
    dtype = first.dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    shape = list(first.shape)
    shape[d] = sum(t.shape[d] for t in tensors)
    return torch.empty(shape, dtype=dtype, device="meta")


def _to_meta(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and not value.is_meta:
        return value.to("meta")
    return value


class MetaShapeProp:
    """Runs the graph on meta tensors and keeps every node's output value (meta tensors cost nothing).

    The same pass as ``fx.Interpreter`` (placeholder / get_attr / call_* / output, one method per
    opcode) without its per-node bookkeeping (current-node context, last-use tracking), which cost
    more than the shape arithmetic itself.  ``modules``: the module table to call, by path (default
    the graph module's own); the stem experiment passes one with some layers replaced."""

    def __init__(self, gm: fx.GraphModule, modules: dict[str, torch.nn.Module] | None = None):
        self.module = gm
        self.values: dict[fx.Node, Any] = {}
        self._meta_state: dict[str, dict[str, torch.Tensor]] = {}
        self._modules = modules if modules is not None else dict(gm.named_modules())

    def run(self, *inputs: Any) -> Any:
        values, self._inputs = self.values, iter(inputs)
        load = values.__getitem__
        for node in self.module.graph.nodes:
            try:
                args = fx.node.map_arg(node.args, load)
                kwargs = fx.node.map_arg(node.kwargs, load)
                result = getattr(self, node.op)(node.target, args, kwargs)
            except RflintError:
                raise
            except Exception as err:
                raise RflintError(_explain(node, err)) from err
            values[node] = result
            if node.op == "output":
                return result
        return None

    def placeholder(self, target: str, args: tuple, kwargs: dict) -> Any:
        if target.startswith("*"):  # forward(self, *xs): the rest of the inputs
            return list(self._inputs)
        try:
            return next(self._inputs)
        except StopIteration:
            if args:
                return args[0]  # the parameter's default value
            raise RuntimeError(f"no input given for forward() parameter {target}") from None

    def output(self, target: str, args: tuple, kwargs: dict) -> Any:
        return args[0]

    def call_function(self, target, args, kwargs):
        if target in _SAME_SHAPE_FUNCTIONS and args and isinstance(args[0], torch.Tensor) and args[0].is_meta:
            return args[0]  # like _SAME_SHAPE_MODULES; their meta kernels also import torch._dynamo
        if target in ELEMENTWISE_FUNCTIONS:
            fast = elementwise(args, kwargs)
            if fast is not None:
                return fast
        if target is _INTERPOLATE:
            try:
                fast = interpolated(*args, **kwargs)
            except TypeError:  # arguments interpolate() does not take: let torch say so
                fast = None
            if fast is not None:
                return fast
        if target in _CAT:
            fast = _meta_cat(*args, **kwargs)
            if fast is not None:
                return fast
        return target(*args, **kwargs)

    def call_method(self, target, args, kwargs):
        obj, *rest = args
        return getattr(obj, target)(*rest, **kwargs)

    def get_attr(self, target, args, kwargs):
        obj: Any = self.module
        for part in target.split("."):
            obj = getattr(obj, part)
        return _to_meta(obj)

    def call_module(self, target, args, kwargs):
        submod = self._modules.get(target)
        if submod is None:
            submod = self.module.get_submodule(target)
        if type(submod) in _SAME_SHAPE_MODULES and args and isinstance(args[0], torch.Tensor) and args[0].is_meta:
            # the output is the input's shape by definition; running meta BatchNorm goes through
            # Python decompositions and costs milliseconds per call (most of a ResNet's propagation)
            return args[0]
        rule = MODULE_SHAPE_RULES.get(type(submod))
        if rule is not None and not (submod._forward_hooks or submod._forward_pre_hooks):
            out = rule(submod, args, kwargs)
            if out is not None:
                return out
        state = self._meta_state.get(target)
        if state is None:
            named = list(submod.named_parameters()) + list(submod.named_buffers())
            if all(t.is_meta for _, t in named):
                state = {}
            else:
                state = {name: t.to("meta") for name, t in named}
            self._meta_state[target] = state
        if not state:
            return submod(*args, **kwargs)
        return functional_call(submod, state, args, kwargs, strict=False)


def _explain(node: fx.Node, err: Exception) -> str:
    msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    where = node.target if node.op == "call_module" else node.name
    return f"shape propagation failed at {where}: {type(err).__name__}: {msg}"


def propagate(gm: fx.GraphModule, inputs: list[torch.Tensor],
              modules: dict[str, torch.nn.Module] | None = None) -> dict[fx.Node, Any]:
    prop = MetaShapeProp(gm, modules)
    prop.run(*inputs)
    return prop.values
