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
from rflint.trace.metaspec import is_meta_value, real
from rflint.trace.shape_rules import (
    FUNCTION_SHAPE_RULES, METHOD_SHAPE_RULES, MODULE_SHAPE_RULES, SAME_SHAPE_MODULES, is_hashable,
)


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

    def __init__(self, gm: fx.GraphModule, modules: dict[str, torch.nn.Module] | None = None,
                 steps: list | None = None):
        self.module = gm
        self.values: dict[fx.Node, Any] = {}
        self._meta_state: dict[str, dict[str, torch.Tensor]] = {}
        self._modules = modules if modules is not None else dict(gm.named_modules())
        # per node (graph order) a compiled shortcut or None, from compile_steps(); see there
        self._steps = steps if steps is not None else [None] * len(gm.graph.nodes)

    def run(self, *inputs: Any) -> Any:
        values, self._inputs, modules = self.values, iter(inputs), self._modules
        load = values.__getitem__
        for node, step in zip(self.module.graph.nodes, self._steps):
            try:
                result = step(values, modules) if step is not None else None
                if result is None:
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
        rule = FUNCTION_SHAPE_RULES.get(target) if is_hashable(target) else None
        if rule is not None:
            out = _try(rule, args, kwargs)
            if out is not None:
                return out
        return target(*_real(args), **_real(kwargs))

    def call_method(self, target, args, kwargs):
        obj, *rest = args
        rule = METHOD_SHAPE_RULES.get(target)
        if rule is not None:
            out = _try(rule, args, kwargs)
            if out is not None:
                return out
        return getattr(real(obj), target)(*_real(rest), **_real(kwargs))

    def get_attr(self, target, args, kwargs):
        obj: Any = self.module
        for part in target.split("."):
            obj = getattr(obj, part)
        return _to_meta(obj)

    def call_module(self, target, args, kwargs):
        submod = self._modules.get(target)
        if submod is None:
            submod = self.module.get_submodule(target)
        if type(submod) in SAME_SHAPE_MODULES and args and is_meta_value(args[0]):
            # the output is the input's shape by definition; running meta BatchNorm goes through
            # Python decompositions and costs milliseconds per call (most of a ResNet's propagation)
            return args[0]
        rule = MODULE_SHAPE_RULES.get(type(submod))
        if rule is not None and not (submod._forward_hooks or submod._forward_pre_hooks):
            out = rule(submod, args, kwargs)
            if out is not None:
                return out
        args, kwargs = _real(args), _real(kwargs)
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


_NO_KWARGS: dict = {}
_SCALARS = (int, float, bool, str, type(None))


def compile_steps(gm: fx.GraphModule, modules: dict[str, torch.nn.Module]) -> list:
    """Per node of ``gm`` (graph order), a shortcut ``step(values, modules) -> value or None`` for
    the commonest calls, or None.  A step does what ``MetaShapeProp`` would do for that node, minus
    the argument mapping and dispatch, which cost more than the shape arithmetic; it declines
    (None: the interpreter runs the node as usual) whenever the call is not the one it was compiled
    for, e.g. a module the stem experiment replaced.  One list serves every run of one trace."""
    return [_step(node, modules) for node in gm.graph.nodes]


def _step(node: fx.Node, modules: dict[str, torch.nn.Module]):
    if node.op == "call_module":
        module = modules.get(node.target)
        if module is None or len(node.args) != 1 or type(node.args[0]) is not fx.Node or node.kwargs:
            return None
        target, src = node.target, node.args[0]
        if type(module) in SAME_SHAPE_MODULES:
            def same(values, modules):
                x = values[src]
                return x if type(modules[target]) in SAME_SHAPE_MODULES and is_meta_value(x) else None
            return same
        rule = MODULE_SHAPE_RULES.get(type(module))
        if rule is None:
            return None

        def by_rule(values, modules):
            m = modules[target]
            if m is not module or m._forward_hooks or m._forward_pre_hooks:
                return None
            return rule(m, (values[src],), _NO_KWARGS)
        return by_rule
    if node.op == "call_function" and is_hashable(node.target):
        rule = FUNCTION_SHAPE_RULES.get(node.target)
        loaders = [_loader(a) for a in node.args]
        if rule is None or None in loaders or node.kwargs:
            return None

        def by_function(values, modules):
            return _try(rule, tuple([load(values) for load in loaders]), _NO_KWARGS)
        return by_function
    return None


def _loader(arg: Any):
    """A function values -> the argument's value, for a node, a scalar or a list of nodes; None for
    anything else (the interpreter's map_arg handles every case)."""
    if type(arg) is fx.Node:
        return lambda values: values[arg]
    if isinstance(arg, _SCALARS):
        return lambda values: arg
    if isinstance(arg, (list, tuple)) and arg and all(type(a) is fx.Node for a in arg):
        return lambda values: [values[a] for a in arg]
    return None


def _real(args: Any) -> Any:
    """Arguments for torch to run on: every MetaSpec made a meta tensor (see metaspec.py)."""
    if isinstance(args, dict):
        return {k: _real(v) for k, v in args.items()} if args else args
    if isinstance(args, (list, tuple)):
        return type(args)(_real(a) for a in args) if any(_is_spec_or_nested(a) for a in args) else args
    return real(args)


def _is_spec_or_nested(a: Any) -> bool:
    return not isinstance(a, torch.Tensor) and (is_meta_value(a) or isinstance(a, (list, tuple, dict)))


def _try(rule, args: tuple, kwargs: dict) -> Any:
    """A shape rule's answer, or None when it does not take this call (then torch runs it)."""
    try:
        return rule(*args, **kwargs)
    except TypeError:
        return None


def _explain(node: fx.Node, err: Exception) -> str:
    msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    where = node.target if node.op == "call_module" else node.name
    return f"shape propagation failed at {where}: {type(err).__name__}: {msg}"


def propagate(gm: fx.GraphModule, inputs: list[torch.Tensor],
              modules: dict[str, torch.nn.Module] | None = None, steps: list | None = None) -> dict[fx.Node, Any]:
    """Every node's value; ``steps``: compile_steps(gm, ...) for this graph, to reuse across runs."""
    prop = MetaShapeProp(gm, modules, steps)
    prop.run(*inputs)
    return prop.values
