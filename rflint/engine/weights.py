"""The learned weights a functional layer (``F.conv2d(x, w, b)``, ...) multiplies with.

A functional conv is parametric when its kernel is computed from ``nn.Parameter``s: a bare
``self.weight``, or one standardised, scaled, reshaped or dropped out in forward() first (the
weight-standardised convs of BiT, NFNet and timm's StdConv2d; DropConnect), or mixed by a gate
computed from the whole input (CondConv's experts).  A fixed filter kept as a buffer (BlurPool's
binomial kernel, a Sobel filter) is not a learned weight, and a kernel that is itself a feature map
(a Siamese tracker correlating the search image with the template's features) is data: neither
makes the layer parametric (rf-semantics §3, "has weights").
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
    """The distinct parameters that ``args`` (nodes, or anything else, ignored) are computed from,
    by attribute path: the walk goes back through calls whose result is no feature map (no RF, or a
    global one: a gate pooled from the input), and stops at inputs and at feature maps.  A module
    on the way (a Dropout, a hypernetwork's Linear) is walked through; its own weights count where
    it is called, not here."""
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
        elif node.op in ("call_function", "call_method", "call_module") and _not_a_map(rf_of(node)):
            if node.op == "call_module" and not node.all_input_nodes:
                # a module that makes a tensor from its own parameters alone: a parametrization
                # (weight_norm's ParametrizationList, read as self.weight in the module's forward)
                module = node.graph.owning_module.get_submodule(str(node.target))
                for name, p in module.named_parameters():
                    if all(p is not q for q in found.values()):
                        found[f"{node.target}.{name}"] = p
            stack.extend(node.all_input_nodes)
    return found


def _not_a_map(rf) -> bool:
    return rf is None or rf.is_global

