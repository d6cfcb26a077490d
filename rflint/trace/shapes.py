"""Shape propagation on the ``meta`` device: every node's output, with no real compute or memory.

Like ``torch.fx.passes.shape_prop.ShapeProp`` (one interpreter pass, one job), but the model may hold
real CPU weights (an instance the user built): those are swapped for meta copies per call through
``torch.func.functional_call``, so the user's module is never modified.
"""

from __future__ import annotations

import operator
import re
import types
from typing import Any

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch.func import functional_call

from rflint.errors import RflintError, first_sentence
from rflint.trace.metaspec import TRACED_VALUE, MetaSpec, is_meta_value, needs_values, real
from rflint.trace.sources import node_label
from rflint.trace.shape_rules import (
    FUNCTION_SHAPE_RULES, METHOD_SHAPE_RULES, MODULE_SHAPE_RULES, SAME_SHAPE_MODULES, _conv, _window,
    concatenated, conv_too_small, elementwise, is_hashable, module_rule, pool_too_small, pool_windows,
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
                traced = node.meta.get(TRACED_VALUE)  # a trace on real values saw this op's shape
                if traced is None or not needs_values(err):
                    empty = _emptied(node, values)
                    if empty is not None:  # torch let an empty map through to here: name where it emptied
                        raise empty_map_error(empty, values[empty]) from err
                    raise RflintError(_explain(node, err, values)) from err
                result = traced
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
        if target is operator.getitem and len(args) == 2 and isinstance(args[1], str) and is_meta_value(args[0]):
            # batch["image"] on the tensor rflint passes (torch would take the string for a sequence)
            raise RflintError(f"forward() indexes a tensor with the key {args[1]!r}: it expects a dict (or another "
                              f"container), and rflint passes the image tensor itself; lint a factory that wraps "
                              f"the model so that forward(x) calls it with {{{args[1]!r}: x}}")
        rule = FUNCTION_SHAPE_RULES.get(target) if is_hashable(target) else None
        if rule is not None:
            out = _try(rule, args, kwargs)
            if out is not None:
                return out
        if fx_wrapped(target):  # it may change the lists it is given, as it could when called from forward()
            args, kwargs = _mutable(args), _mutable(kwargs)
        return on_meta(target, _real(args), _real(kwargs))

    def call_method(self, target, args, kwargs):
        obj, *rest = args
        rule = METHOD_SHAPE_RULES.get(target)
        if rule is not None:
            out = _try(rule, args, kwargs)
            if out is not None:
                return out
        return on_meta(call_method, (real(obj), target, *_real(rest)), _real(kwargs))

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
        rule = module_rule(submod)
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
        if isinstance(submod, torch.jit.ScriptModule):  # no stateless call: run it on zeros on the CPU
            return _all_meta(submod(*_zeros_on_cpu(args), **_zeros_on_cpu(kwargs)))
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
        rule = module_rule(module)
        if rule is None:
            return None

        def by_rule(values, modules):
            m = modules[target]
            if m is not module or m._forward_hooks or m._forward_pre_hooks:
                return None
            return rule(m, (values[src],), _NO_KWARGS)
        return _fast_module_step(module, rule, target, src, by_rule) or by_rule
    if node.op == "call_function" and is_hashable(node.target):
        rule = FUNCTION_SHAPE_RULES.get(node.target)
        loaders = [_loader(a) for a in node.args]
        # keyword arguments only as constants (torch.cat(xs, dim=1), x.mean(dim=(2, 3), keepdim=True))
        kwargs = dict(node.kwargs) if all(_is_constant(v) for v in node.kwargs.values()) else None
        if rule is None or None in loaders or kwargs is None:
            return None
        kwargs = kwargs or _NO_KWARGS

        def by_function(values, modules):
            return _try(rule, tuple([load(values) for load in loaders]), kwargs)
        return _fast_function_step(node, rule, by_function) or by_function
    return None


def _is_constant(value: Any) -> bool:
    """A scalar, or a list or tuple of scalars (dims, sizes): what a compiled step may hold fixed."""
    return isinstance(value, _SCALARS) or (type(value) in (list, tuple) and all(isinstance(v, _SCALARS) for v in value))


# --------------------------------------------------------------------------- fast steps
# The commonest layers (convs, pools) and functions (a same-shape sum, a concatenation) get a step
# specialised to the one module or call it was compiled for: the module's attributes are read once,
# so a call is a few integer operations.  Each answers exactly what its shape rule would, and only
# in the plain case that rule answers (same checks, attributes fixed at compile time, guarded by the
# module's identity); anything else it hands to the rule's own compiled step (which may decline in
# turn: then the node runs as usual, rule first, then torch).
# tests/test_shape_rules.py checks steps against the rules alone and torch on the zoo and random DAGs.

_CONV_TYPES = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
_POOL_TYPES = {torch.nn.MaxPool1d: (1, True), torch.nn.MaxPool2d: (2, True), torch.nn.MaxPool3d: (3, True),
               torch.nn.AvgPool1d: (1, False), torch.nn.AvgPool2d: (2, False)}  # AvgPool3d: size checks of its own


def _fast_module_step(module: torch.nn.Module, rule, target: str, src: fx.Node, general):
    """A fast step for this module's node, or None; ``general`` (the rule's step) takes the calls it
    declines."""
    kind = type(module)
    try:
        if kind in _CONV_TYPES and rule is _conv:
            return _fast_conv(module, target, src, general)
        spec = _POOL_TYPES.get(kind)
        if spec is not None and rule is MODULE_SHAPE_RULES.get(kind):
            return _fast_pool(module, target, src, general, *spec)
    except (TypeError, ValueError, KeyError):  # attributes unusual or missing: the rule (or torch) decides
        return None
    return None


def _fast_conv(m: torch.nn.Module, target: str, src: fx.Node, general):
    """shape_rules._conv for this module: (N, C_in, *S) -> (N, C_out, *window(S))."""
    attrs = m.__dict__  # exact torch classes: plain instance attributes (a compile runs per conv per trace)
    kernel, padding = attrs["kernel_size"], attrs["padding"]
    n, dtype = len(kernel), None
    for p in attrs["_parameters"].values():
        if p is not None:
            if dtype is None:
                dtype = p.dtype
            elif p.dtype != dtype:
                return None
    if attrs["padding_mode"] != "zeros" or dtype is None or not dtype.is_floating_point:
        return None
    rank, c_in, c_out, groups = n + 2, attrs["in_channels"], attrs["out_channels"], attrs["groups"]
    same = padding == "same"
    pad = (0,) * n if same or padding == "valid" else padding
    # window(size) = (size + 2p - d(k-1) - 1) // s + 1
    offsets = tuple([2 * p - d * (k - 1) - 1 for k, p, d in zip(kernel, pad, attrs["dilation"])])
    strides = tuple(attrs["stride"])

    def conv(values, modules):
        x = values[src]
        if type(x) is not MetaSpec or modules[target] is not m or m._forward_hooks or m._forward_pre_hooks:
            return general(values, modules)
        shape = x.shape
        if len(shape) == rank and shape[1] != c_in and x.dtype == dtype:
            # torch's CPU words; its meta kernel says only "Invalid channel dimensions"
            raise RuntimeError(f"Given groups={groups}, weight of size {[c_out, c_in // groups, *kernel]}, expected "
                               f"input{list(shape)} to have {c_in} channels, but got {shape[1]} channels instead")
        if len(shape) != rank or x.dtype != dtype:
            return general(values, modules)
        if same:
            return MetaSpec((shape[0], c_out, *shape[2:]), dtype)
        spatial = [(size + o) // s + 1 for size, o, s in zip(shape[2:], offsets, strides)]
        if min(spatial) <= 0:
            raise conv_too_small(shape[2:], kernel, pad, attrs["dilation"])
        return MetaSpec((shape[0], c_out, *spatial), dtype)
    return conv


def _fast_pool(m: torch.nn.Module, target: str, src: fx.Node, general, n: int, with_dilation: bool):
    """shape_rules._pool for this module: (N, C, *S) -> (N, C, *window(S))."""
    windows = pool_windows(m, n, with_dilation)
    if windows is None:
        return None
    rank, ceil = n + 2, bool(m.ceil_mode)

    def pool(values, modules):
        x = values[src]
        if type(x) is not MetaSpec or modules[target] is not m or m._forward_hooks or m._forward_pre_hooks:
            return general(values, modules)
        shape = x.shape
        if len(shape) != rank or not x.dtype.is_floating_point:
            return general(values, modules)
        spatial = [_window(size, *w, ceil=ceil) for size, w in zip(shape[2:], windows)]
        if min(spatial) <= 0:
            raise pool_too_small(shape, spatial, n, with_dilation)
        return MetaSpec((*shape[:2], *spatial), x.dtype)
    return pool


def _fast_function_step(node: fx.Node, rule, general):
    """A sum/product of two maps of one shape (a residual join), or a concatenation of node operands."""
    args = node.args
    if rule is elementwise and len(args) == 2 and type(args[0]) is fx.Node and type(args[1]) is fx.Node \
            and not node.kwargs:
        a_node, b_node = args

        def same_shape(values, modules):
            a, b = values[a_node], values[b_node]
            if type(a) is not MetaSpec or type(b) is not MetaSpec or a.shape != b.shape or a.dtype != b.dtype \
                    or not a.dtype.is_floating_point:
                return general(values, modules)  # broadcasting (a gate), a number, another dtype ...
            return MetaSpec(a.shape, a.dtype)
        return same_shape
    kwargs = node.kwargs
    if rule is concatenated and 1 <= len(args) <= 2 and isinstance(args[0], (list, tuple)) and args[0] \
            and all(type(a) is fx.Node for a in args[0]) and (len(args) == 1 or type(args[1]) is int) \
            and (not kwargs or (len(args) == 1 and set(kwargs) == {"dim"} and type(kwargs["dim"]) is int)):
        parts, dim = tuple(args[0]), args[1] if len(args) == 2 else kwargs.get("dim", 0)

        def cat(values, modules):
            tensors = [values[a] for a in parts]
            first = tensors[0]
            if type(first) is not MetaSpec:
                return general(values, modules)
            shape, dtype = first.shape, first.dtype
            rank = len(shape)
            if not rank or not -rank <= dim < rank:
                return general(values, modules)
            d = dim % rank
            total = 0
            for t in tensors:
                if type(t) is not MetaSpec or t.dtype != dtype or len(t.shape) != rank:
                    return general(values, modules)
                other = t.shape
                if other[:d] != shape[:d] or other[d + 1:] != shape[d + 1:]:
                    return general(values, modules)
                total += other[d]
            return MetaSpec((*shape[:d], total, *shape[d + 1:]), dtype)
        return cat
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
    if type(arg) in (list, tuple) and all(isinstance(a, _SCALARS) for a in arg):  # sizes, dims: (7, 7)
        return lambda values: arg
    return None


# where fx records a call of a Python function without being told to: torch's own functions
# (F.relu, F.interpolate), einops' (whose functions the tracer wraps), rflint's own (an item
# assignment, trace/assignment.py)
_NOT_WRAPPED = ("torch", "einops", "math", "operator", "builtins", "_operator", "rflint")


def fx_wrapped(target: Any) -> bool:
    """A Python function fx recorded as one call (``torch.fx.wrap``), which rflint does not see into."""
    if not isinstance(target, types.FunctionType):
        return False
    return (target.__module__ or "").split(".", 1)[0] not in _NOT_WRAPPED


def _mutable(args: Any) -> Any:
    """fx's read-only argument lists and dicts as fresh plain ones, per call: torchvision's
    ``_get_window_and_shift_size`` (Swin3D) shrinks the window list it is given in place, which
    forward() allows (it hands over copies) and fx's ``immutable_list`` refuses."""
    if isinstance(args, fx.immutable_collections.immutable_list):
        return [_mutable(a) for a in args]
    if isinstance(args, fx.immutable_collections.immutable_dict):
        return {k: _mutable(v) for k, v in args.items()}
    if type(args) is tuple:
        return tuple(_mutable(a) for a in args)
    if type(args) is dict:
        return {k: _mutable(v) for k, v in args.items()}
    return args


def on_meta(fn, args: tuple, kwargs: dict) -> Any:
    """``fn(*args, **kwargs)``; when torch refuses to mix a meta tensor with a CPU one (a tensor
    forward() made itself without a device: ``torch.linspace(-1, 1, h)`` for CoordConv,
    ``torch.zeros(x.shape)``), again with every tensor on meta: shapes are all the pass needs."""
    try:
        return fn(*args, **kwargs)
    except RuntimeError as err:
        text = str(err)
        if not ("device" in text and ("meta" in text or "same device" in text)):
            raise
        return fn(*_all_meta(args), **_all_meta(kwargs))


def call_method(obj: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """``obj.name(*args, **kwargs)``, as a function of its receiver (for :func:`on_meta`)."""
    return getattr(obj, name)(*args, **kwargs)


def _all_meta(args: Any) -> Any:
    if isinstance(args, dict):
        return {k: _all_meta(v) for k, v in args.items()}
    if isinstance(args, (list, tuple)):
        return type(args)(_all_meta(a) for a in args)
    return _to_meta(args)


def _zeros_on_cpu(args: Any) -> Any:
    """Meta tensors as CPU zeros of their shape and dtype (what a module that cannot take meta
    copies of its weights, a TorchScript one, can run on)."""
    if isinstance(args, dict):
        return {k: _zeros_on_cpu(v) for k, v in args.items()}
    if isinstance(args, (list, tuple)):
        return type(args)(_zeros_on_cpu(a) for a in args)
    if isinstance(args, torch.Tensor) and args.is_meta:
        return torch.zeros(args.shape, dtype=args.dtype)
    return args


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


def is_empty_map(value: Any) -> bool:
    """A map with no pixel left on some spatial axis (torch lets empty maps through most ops)."""
    shape = getattr(value, "shape", None)
    return shape is not None and 0 in tuple(shape)[2:]


def empty_map_error(node: fx.Node, value: Any) -> RflintError:
    """"The map ``node`` made is empty", worded so that size_hints.explain_failure calls the input too
    small and names ``node``."""
    return RflintError(f"shape propagation failed at {node_label(node)}: the map is empty "
                       f"(a non-positive size, {tuple(value.shape)})")


def _emptied(node: fx.Node, values: dict) -> fx.Node | None:
    """The node where a map ``node`` reads lost its last pixel (a crop past a small map), if one did:
    the first, walking back, whose own operands were not empty."""
    def empty(n: fx.Node) -> bool:
        return is_empty_map(values.get(n))

    found, stack, seen = None, [n for n in node.all_input_nodes if empty(n)], set()
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        earlier = [m for m in n.all_input_nodes if empty(m)]
        if earlier:
            stack.extend(earlier)
        else:
            found = n
    return found


def _explain(node: fx.Node, err: Exception, values: dict | None = None) -> str:
    msg = _with_values(first_sentence(err), node, values)
    where = node.target if node.op == "call_module" else node.name
    src = node.args[0] if node.op == "call_function" and node.target is operator.getitem and node.args else None
    if isinstance(err, IndexError) and isinstance(src, fx.Node) and src.op == "placeholder" \
            and isinstance(node.args[1], int):
        # views[1] of forward(self, views): the batch axis of the one tensor rflint passes
        return (f"forward() takes {src.target}[{node.args[1]}] of its input {src.target}: it expects a list or tuple "
                "of tensors, and rflint passes one tensor per forward() argument; lint a factory that wraps the "
                "model so that forward(x, y) calls it with [x, y]")
    factor = _unshuffle_factor(node)
    if factor is not None:  # torch's own words are a view's ("shape [...] is invalid for input of size ...")
        return (f"shape propagation failed at {where}: pixel_unshuffle needs every side of its map to be "
                f"a multiple of {factor}")
    return f"shape propagation failed at {where}: {type(err).__name__}: {msg}"


_PROXY = re.compile(r"Proxy\((\w+)\)")


def _with_values(message: str, node: fx.Node, values: dict | None) -> str:
    """``message`` with each ``Proxy(name)`` replaced by that node's value at this size, where it is
    a number or a size: a check the model formats while fx traces it (torchvision's ViT:
    f"Expected {self.image_size} but got {h}!") names the proxy fx held then, not the size."""
    if values is None or "Proxy(" not in message:
        return message
    by_name = {n.name: n for n in node.graph.nodes}

    def value(match: re.Match) -> str:
        found = values.get(by_name.get(match.group(1)))
        if isinstance(found, (int, float, torch.Size)) or (
                isinstance(found, tuple) and all(isinstance(v, int) for v in found)):
            return str(tuple(found) if isinstance(found, torch.Size) else found)
        return match.group(0)
    return _PROXY.sub(value, message)


def _unshuffle_factor(node: fx.Node) -> int | None:
    """The downscale factor of a PixelUnshuffle node (module or function), else None."""
    if node.op == "call_module":
        module = node.graph.owning_module.get_submodule(str(node.target))
        return module.downscale_factor if isinstance(module, torch.nn.PixelUnshuffle) else None
    if node.op == "call_function" and node.target in (F.pixel_unshuffle, torch.pixel_unshuffle):
        factor = node.args[1] if len(node.args) > 1 else node.kwargs.get("downscale_factor")
        return factor if isinstance(factor, int) else None
    return None


def propagate(gm: fx.GraphModule, inputs: list[torch.Tensor],
              modules: dict[str, torch.nn.Module] | None = None, steps: list | None = None) -> dict[fx.Node, Any]:
    """Every node's value; ``steps``: compile_steps(gm, ...) for this graph, to reuse across runs."""
    prop = MetaShapeProp(gm, modules, steps)
    prop.run(*inputs)
    return prop.values
