"""Parameters and multiply-accumulates (MACs) per node, from module attributes and meta shapes.

MACs count the multiply-accumulates of weight-bearing ops and products of activations (conv,
transposed conv, linear, matmul): the number papers call "FLOPs" (one MAC = one multiply-add).
Pooling, normalisation and activations count 0; they are a rounding error next to the convs.
All counts are per sample (batch size 1).
"""

from __future__ import annotations

import math
from typing import Any

import torch.fx as fx
from torch import nn

from rflint.trace.metaspec import is_tensor_like


def module_params(module: nn.Module) -> int:
    """``sum(p.numel() for p in module.parameters())`` (shared parameters once), walking the
    ``_modules`` / ``_parameters`` dicts directly: the generator layers of ``parameters()`` cost
    more than the counting on a leaf layer, and this runs for every layer of every trace."""
    if not module._modules:  # a leaf layer (the common call): its own parameters, each once
        params = {id(p): p for p in module._parameters.values() if p is not None}
        return sum(p.numel() for p in params.values())
    total, seen_params, seen_modules, stack = 0, set(), set(), [module]
    while stack:
        m = stack.pop()
        if id(m) in seen_modules:
            continue
        seen_modules.add(id(m))
        for p in m._parameters.values():
            if p is not None and id(p) not in seen_params:
                seen_params.add(id(p))
                total += p.numel()
        stack.extend(child for child in m._modules.values() if child is not None)
    return total


def _numel(value: Any) -> int:
    return value.numel() if is_tensor_like(value) else 0


def node_macs(node: fx.Node, module: nn.Module | None, values: dict) -> int:
    out = values.get(node)
    if not is_tensor_like(out):
        return 0
    batch = out.shape[0] if out.dim() > 0 else 1
    if module is not None:
        if isinstance(module, nn.modules.conv._ConvTransposeNd):
            x = values.get(node.args[0])
            k = math.prod(module.kernel_size)
            return _numel(x) * (module.out_channels // module.groups) * k // max(batch, 1)
        if isinstance(module, nn.modules.conv._ConvNd):
            k = math.prod(module.kernel_size)
            return out.numel() * (module.in_channels // module.groups) * k // max(batch, 1)
        if isinstance(module, nn.Linear):
            return out.numel() * module.in_features // max(batch, 1)
        return 0
    target = node.target
    name = getattr(target, "__name__", str(target))
    if name in ("conv1d", "conv2d", "conv3d") and len(node.args) > 1:
        w = values.get(node.args[1])
        if is_tensor_like(w):
            return out.numel() * math.prod(w.shape[1:]) // max(batch, 1)
    if name in ("conv_transpose1d", "conv_transpose2d", "conv_transpose3d") and len(node.args) > 1:
        x, w = values.get(node.args[0]), values.get(node.args[1])
        if is_tensor_like(w):
            return _numel(x) * math.prod(w.shape[1:]) // max(batch, 1)
    if name == "linear" and len(node.args) > 1:
        w = values.get(node.args[1])
        if is_tensor_like(w):
            return out.numel() * w.shape[-1] // max(batch, 1)
    if name in ("matmul", "bmm", "mm", "__matmul__") and node.args:
        a = values.get(node.args[0])
        if is_tensor_like(a) and a.dim() > 0:
            return out.numel() * a.shape[-1] // max(batch, 1)
    return 0
