"""Human names for tensors: "layer3.0" rather than fx's "layer3_0_relu_1".

A tensor is named after the outermost module whose forward() it is the result of (the last node
traced inside that module); tensors produced inside a module's forward but not as its result
keep the module path plus the fx node name.

:func:`tensor_names` names every node at once (the graph views label them all); :func:`tensor_name`
names one, scanning only the nodes after it (a report names one or two cut tensors, and the
whole table costs a pass over every node's module stack).  Both follow the same definition;
tests/test_structure_graph.py checks that they agree on every node of the zoo.
"""

from __future__ import annotations

import torch.fx as fx


def _paths(node: fx.Node) -> list[str]:
    """The module paths whose forward() was running when the node was traced, outermost first."""
    return [path for path, _ in (node.meta.get("nn_module_stack") or {}).values()]


def _fallback(node: fx.Node, stack: list[str]) -> str:
    if node.op == "call_module":
        return str(node.target)
    return f"{stack[-1]}.{node.name}" if stack else node.name


def tensor_names(nodes: list[fx.Node]) -> dict[str, str]:
    last_of: dict[str, str] = {}  # module path -> last node traced inside it
    for node in nodes:
        for path, _ in (node.meta.get("nn_module_stack") or {}).values():
            last_of[path] = node.name
    names: dict[str, str] = {}
    for node in nodes:
        stack = _paths(node)
        outermost = next((p for p in stack if last_of.get(p) == node.name), None)
        names[node.name] = outermost if outermost is not None else _fallback(node, stack)
    return names


def tensor_name(nodes: list[fx.Node], index: int) -> str:
    """``tensor_names(nodes)[nodes[index].name]``: the paths of the node's stack that no later node
    runs inside are the modules it is the last node of."""
    node = nodes[index]
    stack = _paths(node)
    last = set(stack)
    for later in nodes[index + 1:]:
        if not last:
            break
        for path, _ in (later.meta.get("nn_module_stack") or {}).values():
            last.discard(path)
    outermost = next((p for p in stack if p in last), None)
    return outermost if outermost is not None else _fallback(node, stack)
