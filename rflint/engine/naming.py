"""Human names for tensors: "layer3.0" rather than fx's "layer3_0_relu_1".

A tensor is named after the outermost module whose forward() it is the result of (the last node
traced inside that module); tensors produced inside a module's forward but not as its result
keep the module path plus the fx node name.  A layer called more than once (one conv applied
three times) names each call's output as the call's layer is named: ``c``, ``c@2``, ``c@3``.

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
    calls: dict[str, list[fx.Node]] = {}
    for node in nodes:
        stack = _paths(node)
        outermost = next((p for p in stack if last_of.get(p) == node.name), None)
        names[node.name] = outermost if outermost is not None else _fallback(node, stack)
        if node.op == "call_module":
            calls.setdefault(str(node.target), []).append(node)
    for target, called in calls.items():
        if len(called) > 1:
            for k, node in enumerate(called, 1):
                if names[node.name] == target:  # (not when it ends a module around it: "block")
                    names[node.name] = _call_name(target, k)
    return names


def _call_name(target: str, k: int) -> str:
    """The output of a layer's k-th call, as its layer is named (program._layer_name: "c@3")."""
    return target if k == 1 else f"{target}@{k}"


def tensor_name(nodes: list[fx.Node], index: int) -> str:
    """``tensor_names(nodes)[nodes[index].name]``: the paths of the node's stack that no later node
    runs inside are the modules it is the last node of."""
    node = nodes[index]
    name = _last_of_stack(nodes, index)
    if node.op == "call_module" and name == str(node.target):  # a layer called more than once: which call
        same = [i for i, other in enumerate(nodes) if other.op == "call_module" and other.target == node.target]
        if len(same) > 1:
            return _call_name(name, same.index(index) + 1)
    return name


def _last_of_stack(nodes: list[fx.Node], index: int) -> str:
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
