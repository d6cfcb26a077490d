"""torch.fx tracing, and the traced graph as a networkx DAG.

Tried in order (the report names the one that worked):
1. ``torch.fx`` symbolic tracing: size-independent, so one trace serves every input size.
2. the same, with the submodules fx cannot trace kept as opaque leaf layers (found by tracing
   submodules one by one); their RF is inferred from shapes, with a warning.
3. shape-aware tracing (shape_tracer.py) at the requested input size, for forward()s that ask about
   shapes (``len(x.shape)``, ``if h != w``).  The graph is specialised to that size.
4. value-aware tracing: the same on real CPU tensors, for forward()s that branch on tensor values
   (``if x.sum() > 0``); the branch taken for a random input is analysed, with a warning.
Modules declared with ``@rflint.layer`` / ``[tool.rflint.layers]`` are always leaves.

One fx node = one op and the tensor it produces, so the networkx graph has one vertex per fx node
(keyed by the node's unique name) and an edge per data dependency.  fx lists nodes in topological
order; ``order`` keeps it because the RF program and the segment analysis are single passes over it.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
import types
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterator

import networkx as nx
import torch
import torch.fx as fx
from torch import nn
from torch.nn.parameter import UninitializedTensorMixin

from rflint.errors import RflintError, first_sentence, what_raised
from rflint.trace.assignment import Assignable, WrittenConstants
from rflint.trace.sources import PATCHING, current_user_site, deepcopy_with_sites, installed_file, not_user_code
from rflint.wording import shown_path

SYMBOLIC = "torch.fx.symbolic_trace"
WITH_LEAVES = "torch.fx.symbolic_trace with opaque leaves"
SHAPE_AWARE = "torch.fx with concrete shapes (forward() inspects shapes)"
VALUE_AWARE = "torch.fx with concrete values (forward() branches on tensor values)"


@dataclass
class Traced:
    gm: fx.GraphModule
    graph: nx.DiGraph
    order: list[fx.Node]  # topological
    method: str  # how the graph was obtained, for the report
    specialized: bool = False  # only valid for the input size it was traced at
    notes: list[str] = field(default_factory=list)  # caveats of the tracing path (become warnings)
    # facts the layers above derive from the graph alone (tensor names, dominators ...), kept here so
    # that every analysis of this trace (sizes, sweeps, what-if experiments) computes them once
    derived: dict = field(default_factory=dict, repr=False, compare=False)

    def memo(self, key, compute):
        if key not in self.derived:
            self.derived[key] = compute()
        return self.derived[key]

    @cached_property
    def node_by_name(self) -> dict[str, fx.Node]:
        return {node.name: node for node in self.order}

    @cached_property
    def modules(self) -> dict[str, nn.Module]:
        """Every submodule by path (a module registered twice under both), walked once per trace
        through the ``_modules`` dicts (``named_modules()``'s generators cost several times more)."""
        table: dict[str, nn.Module] = {}
        stack: list[tuple[str, nn.Module]] = [("", self.gm)]
        entered: set[int] = set()
        while stack:
            path, m = stack.pop()
            table[path] = m
            if id(m) in entered:  # shared (or pathologically cyclic): its children are listed once
                continue
            entered.add(id(m))
            for name, child in m._modules.items():
                if child is not None:
                    stack.append((f"{path}.{name}" if path else name, child))
        return table


_NOT_THE_MODELS = (os.path.dirname(fx.__file__) + os.sep, os.path.dirname(os.path.dirname(__file__)) + os.sep)


def _raised_in_own_code(err: BaseException | None, anywhere: bool = False) -> str | None:
    """"models/net.py:24": where the user's own code raised ``err`` (a ``raise``, a failing check:
    the innermost frame of its traceback is in none of torch's, rflint's, the standard library's or
    an installed file), else None.  ``anywhere``: the innermost frame of the user's code wherever
    the error was raised (torch's ``__getattr__`` raising for a misspelt attribute), unless fx or
    rflint raised it (what they cannot trace is theirs to explain)."""
    tb = err.__traceback__ if err is not None else None
    found, file = None, ""
    while tb is not None:
        file = tb.tb_frame.f_code.co_filename
        own = not not_user_code(file) and not installed_file(os.path.abspath(file))
        if own:
            found = (file, tb.tb_lineno)
        elif not anywhere:
            found = None
        tb = tb.tb_next
    if found is None or file.startswith(_NOT_THE_MODELS):
        return None
    return f"{shown_path(found[0])}:{found[1]}"


def _serialized(trace: Callable) -> Callable:
    """Run under sources.PATCHING: torch.fx patches nn.Module.__call__ and rflint torch.as_tensor and
    torch.jit.isinstance while they trace, and restore them after; two traces at once would each
    restore the other's patches as the originals (seen with threads: NameError in every later call)."""
    @functools.wraps(trace)
    def serialized(*args, **kwargs):
        with PATCHING:
            return trace(*args, **kwargs)
    return serialized


@contextlib.contextmanager
def _proxies_are_tensors() -> Iterator[None]:
    """A proxy stands for a tensor, but two helpers real code uses don't know that:
    ``torch.jit.isinstance(x, torch.Tensor)`` is False for a proxy, which silently drops the branch
    real code takes (monai's UpCat skips its skip connection), and ``torch.as_tensor(x)`` fails on
    one (monai's HighResNet).  While tracing, both treat a proxy as the tensor it stands for."""
    original_isinstance, original_as_tensor = torch.jit.isinstance, torch.as_tensor

    def isinstance_(obj, target_type):
        if isinstance(obj, fx.Proxy) and target_type is torch.Tensor:
            return True
        return original_isinstance(obj, target_type)

    def as_tensor(data, *args, **kwargs):
        if isinstance(data, fx.Proxy) and not args and not kwargs:
            return data  # already a tensor: as_tensor is the identity
        return original_as_tensor(data, *args, **kwargs)

    torch.jit.isinstance, torch.as_tensor = isinstance_, as_tensor
    try:
        yield
    finally:
        torch.jit.isinstance, torch.as_tensor = original_isinstance, original_as_tensor


def _einops():
    try:
        import einops
    except ImportError:
        return None
    return einops


def _autowrapped() -> tuple:
    """Library functions recorded as single ops instead of traced into: einops' functional forms
    reject proxies (monai's SwinUNETR calls einops.rearrange).  Named in a module's globals
    (``from einops import rearrange``)..."""
    einops = _einops()
    if einops is None:
        return ()
    return tuple(f for f in (getattr(einops, n, None) for n in ("rearrange", "reduce", "repeat")) if f)


def _autowrapped_modules() -> tuple:
    """... or called through the module (``einops.rearrange(x, ...)``): fx then patches the module's
    own namespace while it traces."""
    einops = _einops()
    return (math,) + ((einops,) if einops is not None else ())


class AssignableProxy(Assignable, fx.Proxy):
    """fx's proxy, which also takes item assignment (assignment.py)."""


def wrapped_model(module: nn.Module) -> nn.Module | None:
    """The model inside one of the wrappers training code puts around a model or a part of it
    (DataParallel, DDP, torch.compile's OptimizedModule, an EMA's AveragedModel): they add no
    layer, and fx cannot trace through them (torch's own wrappers are leaves to it); None for
    any other module."""
    if isinstance(module, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        return module.module
    name = type(module).__name__
    if name == "OptimizedModule" and isinstance(getattr(module, "_orig_mod", None), nn.Module):
        return module._orig_mod
    if name == "AveragedModel" and type(module).__module__ == "torch.optim.swa_utils":
        return module.module
    return None


def module_stack(stack: dict) -> dict:
    """fx's ``nn_module_stack`` as torch >= 2.2 records it, {key: (module path, module type)}:
    torch 2.1 records {module path: module type}, which every reader of it here would fail to
    unpack."""
    if not any(isinstance(v, type) for v in stack.values()):
        return stack
    return {k: (k, v) if isinstance(v, type) else v for k, v in stack.items()}


class RflintTracer(WrittenConstants, fx.Tracer):
    """fx's tracer, plus leaves: declared layers and submodules fx cannot trace."""

    def call_module(self, m, forward, args, kwargs):
        inner = wrapped_model(m)
        if inner is not None:  # a wrapper on a part of the model (model.features = DataParallel(...))
            call = getattr(fx._symbolic_trace, "_orig_module_call", None)
            return self.call_module(inner, (lambda *a, **k: call(inner, *a, **k)) if call else inner.forward,
                                    args, kwargs)
        return super().call_module(m, forward, args, kwargs)

    def __init__(self, leaves: set[str] | None = None):
        super().__init__(autowrap_modules=_autowrapped_modules(), autowrap_functions=_autowrapped())
        self.leaves = leaves or set()

    def create_node(self, *args, **kwargs):
        node = super().create_node(*args, **kwargs)
        node.meta["rflint_site"] = current_user_site()  # findings fall back to the forward() line
        stack = node.meta.get("nn_module_stack")
        if stack:
            node.meta["nn_module_stack"] = module_stack(stack)
        return node

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return AssignableProxy(node, self)

    def path_of_module(self, mod: nn.Module) -> str:
        try:
            return super().path_of_module(mod)
        except NameError:  # fx's "module is not installed as a submodule" names neither the module nor why
            raise NameError(f"forward() calls a {type(mod).__name__} that is no submodule of the model (one made "
                            "inside forward(), or kept in a plain list or dict): make it in __init__, as an "
                            "attribute or in an nn.ModuleList / nn.ModuleDict") from None

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        from rflint.declared import spec_for

        # a TorchScript submodule has no Python forward(): traced into, fx records a call of its
        # compiled method on a constant and every layer in it (and the RF through it) is lost
        if module_qualified_name in self.leaves or spec_for(m) is not None or isinstance(m, torch.jit.ScriptModule):
            return True
        if _parametrized_user_module(m):
            return False  # traced into like the user's class it was made from
        if isinstance(m, nn.modules.conv._ConvNd) and type(m).__module__.startswith("torch.ao.nn"):
            # a fused conv + bn (+ relu) of torch.ao (QAT's ConvBnReLU2d) is an nn.Sequential too,
            # which fx traces into: its conv became an F.conv2d named "conv1.conv2d", which the
            # stem experiment cannot replace.  As a leaf it is the conv it is (bn and relu pointwise)
            return True
        return super().is_leaf_module(m, module_qualified_name)


def _parametrized_user_module(m: nn.Module) -> bool:
    """A module of the user's own class given a parametrization (weight_norm on a conv written
    with F.conv2d): torch makes its class anew in torch.nn.utils.parametrize, which fx's test for
    torch's own layers takes for a leaf, so its forward() (the conv) was lost."""
    cls = type(m)
    if not cls.__module__.startswith("torch.nn.utils.parametrize") or not cls.__bases__:
        return False
    base = cls.__bases__[0]
    return not base.__module__.startswith(("torch.nn", "torch.ao.nn"))


def _forward_parameters(module: nn.Module) -> list:
    import inspect

    try:
        return list(inspect.signature(module.forward).parameters.items())
    except (TypeError, ValueError):
        return []


def concrete_defaults(module: nn.Module, n_inputs: int = 1) -> dict:
    """forward() parameters after the first ``n_inputs`` that have a non-tensor default (``mask=None``,
    ``flag=True``): traced as those constants, so ``if mask is not None`` takes the branch a plain
    call takes instead of failing on a proxy."""
    import inspect

    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return {}
    out = {}
    for param in params[n_inputs:]:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            break
        if param.default is not param.empty and not isinstance(param.default, torch.Tensor):
            out[param.name] = param.default
    return out


@contextlib.contextmanager
def _compiled_code_unwrapped(module: nn.Module) -> Iterator[None]:
    """While tracing, every ``torch.compile``-d function the model's own code reaches (a compiled
    ``forward``, a compiled helper in its module, one kept on an instance) is the function it
    wraps: fx refuses to trace "a dynamo-optimized function", and compiling changes no op of the
    graph.  (A compiled module, OptimizedModule, is unwrapped by :func:`wrapped_model`; code under
    ``torch.compiler.disable`` traces as it is.)"""
    patched: list[tuple[Any, str, Any]] = []  # (owner, name, the compiled object), to put back

    def unwrap(owner: Any, table: dict) -> None:
        for name, value in list(table.items()):
            kind = type(value) if isinstance(value, (staticmethod, classmethod)) else None
            function = value.__func__ if kind is not None else value  # (a compiled static method)
            if not callable(function) or isinstance(function, (type, nn.Module)):
                continue
            try:  # (a lazy placeholder, as monai's optional_import gives, raises on any attribute)
                original = getattr(function, "_torchdynamo_orig_callable", None)
                compiled = original is not None and hasattr(function, "_torchdynamo_inline")
            except Exception:
                continue
            if compiled and callable(original):
                patched.append((owner, name, value))
                original = kind(original) if kind is not None else original
                if isinstance(owner, dict):
                    owner[name] = original
                else:
                    setattr(owner, name, original)

    classes: set[type] = set()

    def unwrap_class(cls: type) -> None:
        if cls not in classes and not cls.__module__.startswith("torch") and cls is not object:
            classes.add(cls)
            unwrap(cls, dict(vars(cls)))

    for m in module.modules():
        unwrap(m, {k: v for k, v in vars(m).items() if not k.startswith("_")})
        for cls in type(m).__mro__:
            unwrap_class(cls)
    own = [sys.modules[name] for name in {cls.__module__ for cls in classes} if name in sys.modules]
    # and the user's modules those import (`helpers.pool(x)`, `helpers.Tools.spool(x)`), one level
    own += [value for m in list(own) for value in vars(m).values()
            if isinstance(value, types.ModuleType) and _users_module(value) and value not in own]
    for m in own:
        table = vars(m)
        unwrap(table, dict(table))
        for value in list(table.values()):
            if isinstance(value, type) and value.__module__ == m.__name__:
                unwrap_class(value)
    try:
        yield
    finally:
        for owner, name, value in reversed(patched):
            if isinstance(owner, dict):
                owner[name] = value
            else:
                setattr(owner, name, value)


def _users_module(module: types.ModuleType) -> bool:
    """A module of the user's project: not torch's, rflint's, the standard library's or an installed one."""
    file = getattr(module, "__file__", None)
    return bool(file) and not installed_file(os.path.abspath(file)) \
        and module.__name__.partition(".")[0] not in ("torch", "rflint")


def _graph_module(tracer: fx.Tracer, module: nn.Module, method: str, specialized: bool, n_inputs: int = 1) -> Traced:
    with _proxies_are_tensors(), _compiled_code_unwrapped(module), tracer.writes_into_constants():
        graph = tracer.trace(module, concrete_args=concrete_defaults(module, n_inputs) or None)
    gm = fx.GraphModule(tracer.root, graph, type(module).__name__)
    if specialized:
        gm.graph.eliminate_dead_code()  # answered shape queries leave unused nodes behind
        gm.recompile()
    return Traced(gm, to_networkx(gm), list(gm.graph.nodes), method, specialized)


@_serialized
def fx_trace(module: nn.Module, leaves: set[str] | None = None, n_inputs: int = 1) -> Traced:
    try:
        traced = _graph_module(RflintTracer(leaves), module, WITH_LEAVES if leaves else SYMBOLIC, False, n_inputs)
    except RflintError:
        raise
    except Exception as err:
        hint = ""
        if "as child module 'meta'" in str(err):  # fx's GraphModule keeps a dict of its own called meta
            hint = " (torch.fx's GraphModule has an attribute of its own named meta: rename that submodule)"
        elif isinstance(err, NameError) and "_tensor_constant" in str(err):
            tensors = [name for name, p in _forward_parameters(module) if isinstance(p.default, torch.Tensor)]
            if tensors:  # fx writes the default into its generated code by a name it never defines
                hint = (f" (forward()'s argument {tensors[0]} has a tensor as its default, which torch.fx cannot "
                        f"trace: default it to None and make the tensor inside forward())")
        raise RflintError(
            f"torch.fx cannot trace {type(module).__name__}: {type(err).__name__}: {first_sentence(err)}{hint}"
        ) from err
    if leaves:
        traced.method = f"{WITH_LEAVES} ({', '.join(sorted(leaves))})"
        traced.notes = [f"{path}: torch.fx cannot trace inside it, so it is one opaque layer; its RF is "
                        "inferred from shapes and RFs after it may be too small" for path in sorted(leaves)]
    return traced


def _traces(module: nn.Module) -> bool:
    try:
        with _proxies_are_tensors():
            RflintTracer().trace(module, concrete_args=concrete_defaults(module) or None)
        return True
    except Exception:
        return False


def _has_forward(module: nn.Module) -> bool:
    if isinstance(module, torch.jit.ScriptModule):  # its forward is compiled, not a class method
        return True
    return type(module).forward is not nn.Module.forward


@_serialized
def untraceable_submodules(root: nn.Module, n_inputs: int = 1) -> tuple[set[str], bool]:
    """The smallest submodules fx cannot trace on their own, and whether the root then traces
    symbolically with them as leaves (else the caller traces the root with concrete shapes).  When a
    parent's own forward() fails too, the shallowest failing parents replace their children."""

    def culprits(module: nn.Module, path: str) -> set[str]:
        bad = set()
        for name, child in module.named_children():
            child_path = f"{path}.{name}" if path else name
            if not _has_forward(child):  # ModuleList/ModuleDict: only their members run
                bad |= culprits(child, child_path)
            elif not _traces(child):
                bad |= culprits(child, child_path) or {child_path}
        return bad

    found = leaves = culprits(root, "")
    while leaves:
        try:
            with _proxies_are_tensors():
                RflintTracer(leaves).trace(root, concrete_args=concrete_defaults(root, n_inputs) or None)
            return leaves, True
        except Exception:
            parents = {p.rpartition(".")[0] for p in leaves if "." in p}
            if not parents:
                break
            leaves = {p for p in parents if p} | {p for p in leaves if "." not in p}
            leaves = {p for p in leaves if not any(p.startswith(q + ".") for q in leaves)}
    return found, False


@_serialized
def shape_trace(module: nn.Module, inputs: list[torch.Tensor], leaves: set[str] | None = None) -> Traced:
    # a concrete default keeps its placeholder (with the default as value), so inputs line up
    """Trace with concrete shapes (meta inputs) or concrete values (CPU inputs)."""
    from rflint.trace.shape_tracer import ShapeTracer

    tracer = ShapeTracer(inputs, leaves)
    values = tracer.values
    try:
        traced = _graph_module(tracer, module, VALUE_AWARE if values else SHAPE_AWARE, True, len(inputs))
    except RflintError:
        raise
    except Exception as err:
        raise RflintError(
            f"cannot trace {type(module).__name__}: {type(err).__name__}: {first_sentence(err)}"
        ) from err
    traced.notes = [f"forward() branches on tensor values at {where}: analysed the branch a random input takes"
                    for where in tracer.value_branches]
    return traced


def to_networkx(gm: fx.GraphModule) -> nx.DiGraph:
    g = nx.DiGraph()
    for node in gm.graph.nodes:
        g.add_node(node.name)
        for src in node.all_input_nodes:
            g.add_edge(src.name, node.name)
    return g


def _with_real_weights(module: nn.Module) -> nn.Module:
    """A CPU copy to run real values through; meta-built weights are freshly initialised."""
    tensors = list(module.parameters()) + list(module.buffers())
    if not any(t.is_meta for t in tensors):
        return module
    copy_ = deepcopy_with_sites(module)
    lazy: set[int] = set()
    for m in copy_.modules():
        # A lazy layer (LazyLinear, ...) has no shape yet, so to_empty() refuses it: give it a CPU
        # placeholder instead, which it materializes on the first forward like in the user's code.
        for table in (m._parameters, m._buffers):
            for name, t in table.items():
                if isinstance(t, UninitializedTensorMixin):
                    table[name] = type(t)(requires_grad=t.requires_grad, device="cpu", dtype=t.dtype)
                    lazy.add(id(m))
    copy_._apply(lambda t: t if isinstance(t, UninitializedTensorMixin) else torch.empty_like(t, device="cpu"))
    with torch.no_grad():
        for m in copy_.modules():
            if id(m) in lazy:
                continue  # initialised when it materializes
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
            elif hasattr(m, "reset_running_stats"):
                m.reset_running_stats()
    return copy_


def _materialize_lazy(module: nn.Module, inputs: list[torch.Tensor]) -> None:
    """Lazy layers (LazyLinear, ...) take their shapes from their first forward; the tracer calls
    layers' forward() directly, past the hook that does that, so run the model once first."""
    if not any(isinstance(t, UninitializedTensorMixin) for t in [*module.parameters(), *module.buffers()]):
        return
    try:
        with torch.no_grad():
            module(*inputs)
    except Exception as err:
        raise RflintError(f"running the model once to initialise its lazy layers failed: {type(err).__name__}: {err}") from err


def _take_lazy_shapes(model: nn.Module, real: nn.Module) -> None:
    """Materialize (on meta) the lazy parameters of ``model`` as its real copy did, so that its
    parameter count is the one the copy was analysed with."""
    shaped = dict(real.named_parameters(remove_duplicate=False))
    shaped.update(real.named_buffers(remove_duplicate=False))
    for name, t in [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]:
        if isinstance(t, UninitializedTensorMixin) and name in shaped and not isinstance(shaped[name], UninitializedTensorMixin):
            t.materialize(shaped[name].shape, device="meta", dtype=shaped[name].dtype)


def model_dtype(module: nn.Module) -> torch.dtype:
    """The dtype the model's inputs must have: its first floating parameter's (a model.half() or
    bfloat16 model refuses float32 inputs), else its first complex one's (a complex-valued conv net
    refuses real ones; program._other_input_dtype tries the other when this one fails), else
    torch's default."""
    complex_dtype = None
    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
        if complex_dtype is None and p.is_complex():
            complex_dtype = p.dtype
    return complex_dtype or torch.get_default_dtype()


@_serialized
def value_trace(module: nn.Module, shapes: list[tuple[int, ...]]) -> Traced:
    """Fallback 3: trace on real CPU tensors (a seeded random input; fresh weights if the model was
    built on meta), for forward() code that reads tensor values."""
    with torch.random.fork_rng(devices=[]):  # the caller's random stream is left where it was
        torch.manual_seed(0)  # the same "random input" every run: reports must be reproducible
        real = _with_real_weights(module)
        inputs = [torch.randn(s, dtype=model_dtype(real)) for s in shapes]
    _materialize_lazy(real, inputs)
    _take_lazy_shapes(module, real)
    return shape_trace(real, inputs)


def trace_at_size(module: nn.Module, shapes: list[tuple[int, ...]], symbolic_error: str,
                  leaves_traced: Traced | None = None) -> Traced:
    """Fallbacks 2-4 (see the module docstring) once symbolic tracing has failed.  ``leaves_traced``:
    the opaque-leaves trace of an earlier size (it holds for every size), used again instead of
    searching for the leaves a second time."""
    from rflint.trace.shape_tracer import DataDependent

    inputs = [torch.empty(s, device="meta", dtype=model_dtype(module)) for s in shapes]
    try:
        return shape_trace(module, inputs)
    except DataDependent:
        return value_trace(module, shapes)
    except RflintError as shape_error:
        if leaves_traced is not None:
            return leaves_traced
        leaves, symbolic_ok = untraceable_submodules(module, len(shapes))
        if not leaves:
            # the same failure twice ("cannot trace X: NameError: ..." both ways) is said once
            same = str(shape_error).partition(": ")[2] == symbolic_error.partition(": ")[2]
            cause = shape_error.__cause__
            # the same error with proxies and with meta tensors: the model's code fails, not fx (a
            # typo, a raise); a different one raised by the model's own line: its check of the input
            own = _raised_in_own_code(cause, anywhere=same)
            if own is not None:  # (why the symbolic trace failed first is beside the point then)
                raise RflintError(f"run on tensors of the input's shape, the model's code at {own} raised "
                                  f"{what_raised(cause)}") from shape_error
            raise RflintError(f"{symbolic_error}; tracing with concrete shapes failed "
                              f"{'the same way' if same else f'too: {shape_error}'}") from shape_error
        if symbolic_ok:
            return fx_trace(module, leaves, len(shapes))
        traced = shape_trace(module, inputs, leaves)
        traced.method = f"{traced.method} with opaque leaves ({', '.join(sorted(leaves))})"
        traced.notes += [f"{path}: torch.fx cannot trace inside it, so it is one opaque layer; its RF is "
                         "inferred from shapes and RFs after it may be too small" for path in sorted(leaves)]
        return traced
