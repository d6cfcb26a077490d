"""The learned weights a functional layer (``F.conv2d(x, w, b)``, ...) multiplies with.

A functional conv is parametric when its kernel is computed from ``nn.Parameter``s alone: a bare
``self.weight``, or one standardised, scaled or reshaped in forward() first (the weight-standardised
convs of BiT, NFNet and timm's StdConv2d).  A fixed filter kept as a buffer (BlurPool's binomial
kernel, a Sobel filter) is not a learned weight, and a kernel computed from the input (dynamic
convolution) is data: neither makes the layer parametric (rf-semantics §3, "has weights").
"""

from __future__ import annotations

from typing import Any, Callable

import torch.fx as fx
from torch import nn


def fetch(gm: fx.GraphModule, target: str) -> Any:
    obj: Any = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def parameters_behind(args, rf_of: Callable[[fx.Node], Any]) -> dict[str, nn.Parameter]:
    """The distinct parameters that ``args`` (nodes, or anything else, ignored) are computed from
    without the image, by attribute path: the walk goes back through function and method calls whose
    result carries no RF, and stops at inputs and module calls (their outputs are data, not this
    layer's weights)."""
    found: dict[str, nn.Parameter] = {}
    stack = [a for a in args if isinstance(a, fx.Node)]
    seen: set[fx.Node] = set()
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if node.op == "get_attr":
            value = fetch(node.graph.owning_module, node.target)
            if isinstance(value, nn.Parameter) and all(value is not p for p in found.values()):
                found[str(node.target)] = value
        elif node.op in ("call_function", "call_method") and rf_of(node) is None:
            stack.extend(node.all_input_nodes)
    return found
