"""From finding to fix: the truncated or stem-less model, as a runnable ``torch.fx.GraphModule``.

Both fixes rebuild the model with real weights (factories are called on the CPU, instances are
used as they are), so a trained model's kept layers keep their weights and can be fine-tuned, as the
papers do.  The new classifier of a truncated model is freshly initialised: the result must be
retrained or fine-tuned before use.

Sits beside the report layer: it uses the rules (tail, cut, stem) and the engine (surgery).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import networkx as nx
import torch
import torch.fx as fx
from torch import nn

from rflint.engine import Analysis, prepare
from rflint.engine.surgery import without_downsampling
from rflint.errors import RflintError
from rflint.rules import LintContext, Settings
from rflint.rules.truncation import no_plan_reason, plan_truncation
from rflint.rules.structure import fmt_size, unit
from rflint.trace.loading import evaluating, has_lazy_layers
from rflint.trace.sources import copied_module

_POOLS = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}


def _analysis(model: Any, input_size, channels=None, kwargs=None, input_shapes=None) -> Analysis:
    n_inputs = len(input_shapes) if input_shapes else 1
    prepared = prepare(model, channels, kwargs, real_weights=True, n_inputs=n_inputs)
    _materialized(prepared, input_size, input_shapes)
    return prepared.at(input_size, shapes=input_shapes)


def _materialized(prepared, input_size, input_shapes) -> None:
    """Give lazy layers (nn.LazyConv2d) their weights with one forward pass on zeros of the input
    shapes: the fixed model is built from real weights, and a lazy one has none before its first
    call (the analysis alone runs it on meta tensors, which is not enough here)."""
    module = prepared.loaded.module
    if not has_lazy_layers(module):
        return
    from rflint.trace.tracing import model_dtype

    shapes = prepared.full_shapes(input_size, input_shapes)
    with torch.no_grad(), torch.random.fork_rng(devices=[]), evaluating(prepared.loaded):
        module(*[torch.zeros(shape, dtype=model_dtype(module)) for shape in shapes])


def truncate(model: Any, input_size=None, channels: int | None = None, kwargs: dict | None = None,
             settings: Settings | None = None, input_shapes=None) -> fx.GraphModule:
    """Keep the graph up to the cut tensor; append global average pooling, flatten and
    ``Linear(C_cut, n_out)`` (n_out: the original output size).  Raises if there is no tail.
    ``input_shapes``: one shape per forward() argument, instead of ``input_size``."""
    a = _analysis(model, input_size, channels, kwargs, input_shapes)
    ctx = LintContext(a, settings)
    tail = ctx.structure.tail
    if tail is None:
        raise RflintError(f"{a.target} has no predicted tail at {fmt_size(a.input_size)} {unit(a.input_size)}: nothing to truncate")
    plan = plan_truncation(a, tail)
    if plan is None:
        raise RflintError(f"{a.target}: {no_plan_reason(a, tail)}")
    # a copy: the kept layers are the caller's own modules when a model instance was passed, and
    # fine-tuning the result must not change theirs (as remove_stem's copy_weights)
    gm = copied_module(a.traced.gm)
    kept = nx.ancestors(a.graph, plan.cut) | {plan.cut}
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for node in gm.graph.nodes:
        if node.name in kept or node.op == "placeholder":
            env[node] = graph.node_copy(node, lambda n: env[n])
    cut = next(n for n in gm.graph.nodes if n.name == plan.cut)
    n_axes = len(a.shapes[plan.cut]) - 2
    root = nn.Module()
    for name, module in gm.named_children():
        root.add_module(name, module)
    root.add_module("rflint_pool", _POOLS[n_axes](1))
    like = next(gm.parameters(), None)  # the new head in the model's dtype (a half model stays half)
    with torch.random.fork_rng(devices=[]):  # its initialisation leaves the caller's random stream alone
        root.add_module("rflint_fc", nn.Linear(plan.cut_channels, plan.n_out, dtype=like.dtype if like is not None else None))
    pooled = graph.call_module("rflint_pool", (env[cut],))
    flat = graph.call_function(torch.flatten, (pooled, 1))  # a torch builtin: the saved model needs no rflint
    graph.output(_as_returned(gm.graph, graph.call_module("rflint_fc", (flat,))))
    for node in gm.graph.nodes:  # get_attr targets (functional weights) live on gm itself
        if node.op == "get_attr" and node.name in kept:
            _copy_attr(gm, root, node.target)
    out = fx.GraphModule(root, graph, f"{type(a.prepared.loaded.module).__name__}Truncated")
    return _in_callers_modes(_saveable(out), a)


def _as_returned(original: fx.Graph, logits: fx.Node) -> Any:
    """What the truncated model returns: the new classifier's output in the place the original's
    one tensor had ({"logits": ...}, (logits,) stay a dict and a tuple: a drop-in replacement);
    the bare output when the original returns several tensors."""
    returned = next(n for n in original.nodes if n.op == "output").args[0]
    if _built_output(returned):  # Out(logits=x), a namedtuple or dataclass of one tensor: built again
        tensors = []
        fx.node.map_arg((returned.args, returned.kwargs), tensors.append)
        if len(tensors) == 1:
            args, kwargs = fx.node.map_arg((returned.args, returned.kwargs), lambda _: logits)
            return logits.graph.call_function(returned.target, args, kwargs)
        return logits
    tensors = []
    fx.node.map_arg(returned, tensors.append)
    if isinstance(returned, fx.Node) or len(tensors) != 1:
        return logits
    return fx.node.map_arg(returned, lambda _: logits)


def _built_output(returned: Any) -> bool:
    """The output is a namedtuple or a dataclass that forward() builds (fx records the class call)."""
    target = getattr(returned, "target", None)
    return isinstance(returned, fx.Node) and returned.op == "call_function" and isinstance(target, type) and (
        (issubclass(target, tuple) and hasattr(target, "_fields")) or dataclasses.is_dataclass(target))


def _saveable(gm: fx.GraphModule) -> fx.GraphModule:
    """String type annotations (``from __future__ import annotations`` in the model's file) end up
    as str globals of the generated code, which torch.save cannot pickle: drop them."""
    for node in gm.graph.nodes:
        if isinstance(node.type, str):
            node.type = None
    gm.recompile()
    return gm


def _in_callers_modes(gm: fx.GraphModule, a) -> fx.GraphModule:
    """The fixed model in the caller's modes: the instance's training flag (a model rflint built
    itself: eval), so a model being trained comes back ready to fine-tune, and each kept module's
    own flag (a BatchNorm the caller froze in eval stays frozen); new modules take the model's."""
    loaded = a.prepared.loaded
    gm.train(bool(loaded.module.training) if not loaded.owned else False)
    if not loaded.owned:
        for name, module in gm.named_modules():
            try:
                module.training = loaded.module.get_submodule(name).training
            except AttributeError:  # a module the fix added (the new classifier)
                pass
    return gm


def _copy_attr(src: nn.Module, dst: nn.Module, target: str) -> None:
    *path, leaf = target.split(".")
    for part in path:
        src = getattr(src, part)
        if not hasattr(dst, part):
            dst.add_module(part, nn.Module())
        dst = getattr(dst, part)
    value = getattr(src, leaf)
    if isinstance(value, nn.Parameter):
        dst.register_parameter(leaf, value)
    else:
        setattr(dst, leaf, value)


def remove_stem(model: Any, input_size=None, layers: list[str] | None = None, channels: int | None = None,
                kwargs: dict | None = None, settings: Settings | None = None, input_shapes=None) -> fx.GraphModule:
    """Make the stem downsamplings RF003 proposes (or the named layers) stride 1 / identity."""
    a = _analysis(model, input_size, channels, kwargs, input_shapes)
    if isinstance(layers, str):  # "conv1" or "conv1,maxpool", as --layers takes them
        layers = [name.strip() for name in layers.split(",") if name.strip()]
    if layers is not None and not layers:  # not RF003's proposal in its place, silently
        raise RflintError("remove_stem(): layers names no layer; give layer names or None for the layers RF003 proposes")
    if layers:
        by_name = {layer.name: layer for layer in a.layers}
        missing = [name for name in layers if name not in by_name]
        if missing:
            raise RflintError(f"no RF layer named {', '.join(missing)} in {a.target}")
        chosen = [by_name[name] for name in layers]
        flat = [layer.name for layer in chosen if not layer.kop.downsampling]
        if flat:  # changing it would change nothing: say so rather than report an identical model
            raise RflintError(f"{', '.join(flat)} in {a.target} {'does' if len(flat) == 1 else 'do'} not downsample "
                              "(stride 1): nothing to remove; name layers with a stride above 1")
    else:
        proposal = LintContext(a, settings).stem
        if proposal is None:
            raise RflintError(f"{a.target}: no stem downsampling to remove at {fmt_size(a.input_size)} {unit(a.input_size)} "
                              "would remove or shorten a predicted tail (name layers with --layers to force it)")
        chosen = proposal.layers
    fixed = without_downsampling(a, chosen, copy_weights=True).traced.gm
    if layers:  # RF003's own proposal was run by the stem experiment; named layers may break a join
        try:
            prepare(fixed, a.channels).at(a.input_size, shapes=input_shapes)
        except RflintError as err:
            raise fix_broke(f"{a.target} with the downsampling of {', '.join(layers)} removed", a.input_size,
                            err) from None
    return _in_callers_modes(_saveable(fixed), a)


def training_dependent(model: nn.Module) -> list[str]:
    """The classes of ``model``'s modules (not torch's own) whose forward() reads ``self.training``
    (functional dropout, drop-connect / drop-path, ``if self.training:``).  The fixed model is a
    graph traced in eval mode: those reads became constants, so it keeps their eval path also when
    it is put in training mode (torch's own modules, nn.Dropout too, keep following the mode)."""
    import inspect

    found = []
    for cls in dict.fromkeys(type(m) for m in model.modules()):
        if cls.__module__.startswith("torch.") or "forward" not in vars(cls):
            continue
        try:
            source = inspect.getsource(cls.forward)
        except (OSError, TypeError):
            continue
        if "self.training" in source:
            found.append(cls.__name__)
    return found


def fix_broke(changed: str, size, err: RflintError) -> RflintError:
    """Why the fixed model does not run, about the fix (the input-size explanations would blame the
    input size and name the traced copy 'GraphModule')."""
    import re

    from rflint.engine.size_hints import misaligned

    raw = err.__cause__ if isinstance(err.__cause__, RflintError) else err
    found = re.match(r"shape propagation failed at ([^:]+):", str(raw))
    at = f" at {found.group(1)}" if found else ""
    size_text = "x".join(map(str, size))
    if misaligned(raw):
        return RflintError(f"{changed} does not run at {size_text}: the maps joined{at} differ in size (a "
                           "branch that still downsamples meets one that no longer does); change every branch, "
                           "or leave out the layers to take the ones RF003 proposes")
    return RflintError(f"{changed} does not run at {size_text}: {raw}")
