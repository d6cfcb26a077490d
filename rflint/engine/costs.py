"""Parameters and multiply-accumulates (MACs) per node, from module attributes and meta shapes.

MACs count the multiply-accumulates of weight-bearing ops and products of activations (conv,
transposed conv, linear, matmul): the number papers call "FLOPs" (one MAC = one multiply-add).
Pooling, normalisation and activations count 0; they are a rounding error next to the convs.
All counts are per sample (batch size 1).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.fx as fx
from torch import nn

from rflint.trace.metaspec import is_tensor_like


_NUMEL = torch.Tensor.numel


def module_params(module: nn.Module) -> int:
    """``sum(p.numel() for p in module.parameters())`` (shared parameters once), walking the
    ``_modules`` / ``_parameters`` dicts directly: the generator layers of ``parameters()`` cost
    more than the counting on a leaf layer, and this runs for every layer of every trace."""
    if not module._modules:  # a leaf layer (the common call)
        return sum(map(_NUMEL, _own_params(module)))
    return count_params(module)[0]


def _own_params(leaf: nn.Module) -> list:
    """A leaf module's own parameters, each once (one tensor may be registered under two names)."""
    own = leaf._parameters
    if not own:  # activations, pools, dropout
        return []
    params = [p for p in own.values() if p is not None]
    if len(params) > 2 or (len(params) == 2 and params[0] is params[1]):
        params = list({id(p): p for p in params}.values())
    return params


def count_params(model: nn.Module) -> tuple[int, dict[int, int]]:
    """``module_params(model)`` (shared modules and tied parameters once) and, per leaf module (by
    ``id``), ``module_params`` of it, from one walk over the ``_modules`` / ``_parameters`` dicts
    in plain loops: the report needs the model's total and every called layer's own count, and
    two separate walks visited every module twice per trace.  A leaf's parameters are read once
    for both counts (``numel`` is a torch call)."""
    total, leaves, seen_params, seen_modules, stack = 0, {}, set(), set(), [model]
    while stack:
        m = stack.pop()
        key = id(m)
        if key in seen_modules:
            continue
        seen_modules.add(key)
        children = m._modules
        if children:
            for p in m._parameters.values():
                if p is not None and id(p) not in seen_params:
                    seen_params.add(id(p))
                    total += _NUMEL(p)
            for child in children.values():
                if child is not None:
                    stack.append(child)
            continue
        own = 0  # a leaf: its own count and its share of the total, one numel per parameter
        for p in _own_params(m):
            n = _NUMEL(p)
            own += n
            if id(p) not in seen_params:
                seen_params.add(id(p))
                total += n
        leaves[key] = own
    return total, leaves


def _numel(value: Any) -> int:
    return value.numel() if is_tensor_like(value) else 0


def node_macs(node: fx.Node, module: nn.Module | None, values: dict) -> int:
    """One node's MACs at once (run_program keeps each node's :func:`macs_rule` per trace instead)."""
    rule = macs_rule(node, module)
    return rule(values) if rule is not None else 0


MacsRule = Callable[[dict], int]  # the node's MACs from the values (meta shapes) of one analysis


def macs_rule(node: fx.Node, module: nn.Module | None) -> MacsRule | None:
    """How the node's MACs follow from the shapes, worked out once per trace; None for the nodes
    that never count any (norms, activations, merges, pools: most of a graph)."""
    if module is not None:
        if type(module) in _NO_MACS:
            return None
        if isinstance(module, nn.modules.conv._ConvTransposeNd):
            return _scaled(node, node.args[0], (module.out_channels // module.groups) * math.prod(module.kernel_size))
        if isinstance(module, nn.modules.conv._ConvNd):
            return _scaled(node, node, (module.in_channels // module.groups) * math.prod(module.kernel_size))
        if isinstance(module, nn.Linear):
            return _scaled(node, node, module.in_features)
        return None
    name = getattr(node.target, "__name__", str(node.target))
    if name in ("conv1d", "conv2d", "conv3d", "linear", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"):
        # positional or by keyword: F.conv2d(input=x, weight=w)
        args = list(node.args) + [node.kwargs.get(key) for key in ("input", "weight")[len(node.args):]]
        if len(args) < 2 or args[1] is None:
            return None
        source = args[0] if name.startswith("conv_transpose") else node
        weight = args[1]

        def weighted(values: dict) -> int:
            w = values.get(weight)
            if not is_tensor_like(w):
                return 0
            per_output = w.shape[-1] if name == "linear" else math.prod(w.shape[1:])
            return _per_sample(values.get(node), _numel(values.get(source)) * per_output)
        return weighted
    if name in ("matmul", "bmm", "mm", "__matmul__") and node.args:
        first = node.args[0]

        def product(values: dict) -> int:
            a = values.get(first)
            if not is_tensor_like(a) or a.dim() == 0:
                return 0
            return _per_sample(values.get(node), _numel(values.get(node)) * a.shape[-1])
        return product
    return None


# exact classes that never count MACs (the isinstance checks below cost more than this lookup, on
# most of a network's modules); subclasses still take the checks
_NO_MACS = frozenset({
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm1d,
    nn.InstanceNorm2d, nn.InstanceNorm3d, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Sigmoid,
    nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.Mish, nn.ELU, nn.Dropout, nn.Dropout2d, nn.Dropout3d,
    nn.Identity, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d, nn.Flatten, nn.Upsample,
})


def _scaled(node: fx.Node, counted: Any, factor: int) -> MacsRule:
    """``factor`` MACs per element of ``counted`` (the output, or a transposed conv's input)."""
    def rule(values: dict) -> int:
        return _per_sample(values.get(node), _numel(values.get(counted)) * factor)
    return rule


def _per_sample(out: Any, total: int) -> int:
    if not is_tensor_like(out):
        return 0
    batch = out.shape[0] if out.dim() > 0 else 1
    return total // max(batch, 1)
