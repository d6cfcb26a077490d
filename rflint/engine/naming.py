"""Human names for tensors: "layer3.0" rather than fx's "layer3_0_relu_1".

A tensor is named after the outermost module whose forward() it is the result of (the last node
traced inside that module); tensors produced inside a module's forward but not as its result
keep the module path plus the fx node name.
"""

from __future__ import annotations

import torch.fx as fx


def tensor_names(nodes: list[fx.Node]) -> dict[str, str]:
    last_of: dict[str, str] = {}  # module path -> last node traced inside it
    for node in nodes:
        for path, _ in (node.meta.get("nn_module_stack") or {}).values():
            last_of[path] = node.name
    names: dict[str, str] = {}
    for node in nodes:
        stack = [path for path, _ in (node.meta.get("nn_module_stack") or {}).values()]
        outermost = next((p for p in stack if last_of.get(p) == node.name), None)
        if outermost is not None:
            names[node.name] = outermost
        elif node.op == "call_module":
            names[node.name] = str(node.target)
        else:
            names[node.name] = f"{stack[-1]}.{node.name}" if stack else node.name
    return names
