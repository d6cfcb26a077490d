"""The RF engine's public face: ``analyze()`` and the :class:`Analysis` it returns.

``prepare()`` loads and traces once; ``Prepared.at(size)`` re-propagates shapes and re-runs the RF
program for any input size (sweeps, the smallest-clean-size search and stem experiments reuse one
trace).  The program itself is one pass over the fx nodes in topological order (see ops.py for the
per-node rules and rfstate.py for why Pareto frontiers make it exact).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from fractions import Fraction
from typing import Any

import networkx as nx
import torch
import torch.fx as fx
from torch import nn

from rflint.engine.costs import module_params, node_macs
from rflint.engine.kernels import KernelOp
from rflint.engine.naming import tensor_names
from rflint.engine.ops import Ctx, transfer
from rflint.engine.rfstate import TensorRF
from rflint.errors import RflintError
from rflint.trace import (
    LoadedModel, Source, Traced, construction_site, fx_trace, load_model, propagate, shape_trace,
)
from rflint.trace.sources import stack_trace_site

Number = Fraction


@dataclass
class Layer:
    """One RF layer (conv, pool, transposed conv, up/down-sampling, pixel (un)shuffle ...).

    Per-axis tuples follow the layer's own kernel axes (H, W for a Conv2d).  ``r_in_*`` describe the
    layer's input tensor, ``r_out_*`` its output; they are None on axes that are no longer spatial
    and for head layers (input already global).
    """

    name: str
    node: str
    op: str
    kind: str
    kernel: tuple[int, ...]
    stride: tuple[Fraction, ...]
    dilation: tuple[int, ...]
    padding: tuple[int, ...] | None
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    r_in_min: tuple[Fraction | None, ...]
    r_in_max: tuple[Fraction | None, ...]
    r_out_min: tuple[Fraction | None, ...]
    r_out_max: tuple[Fraction | None, ...]
    origins: tuple[int | None, ...]  # model-input axis of each kernel axis (None: not spatial)
    params: int
    macs: int
    parametric: bool
    expanding: bool
    head: bool  # the input is already global: no RF rule applies
    source: Source | None
    kop: KernelOp = field(repr=False, default=None)  # type: ignore[assignment]


@dataclass
class Analysis:
    target: str
    input_size: tuple[int, ...]
    channels: int
    layers: list[Layer]
    params: int
    macs: int
    # The RF of the feature extractor's last RF layer output.  Not the tensor after the last residual
    # addition: there r_min is the stem's (the identity path skips every block), which says nothing.
    final_layer: str | None
    final_r_min: tuple[Fraction | None, ...] | None
    final_r_max: tuple[Fraction | None, ...] | None
    warnings: list[str]
    trace_method: str
    device: str
    # what the rules need
    graph: nx.DiGraph = field(repr=False)
    order: list[str] = field(repr=False)
    rf: dict[str, TensorRF | None] = field(repr=False)
    shapes: dict[str, tuple[int, ...] | None] = field(repr=False)
    node_params: dict[str, int] = field(repr=False)
    node_macs: dict[str, int] = field(repr=False)
    layer_by_node: dict[str, Layer] = field(repr=False)
    inputs: list[str] = field(repr=False)
    outputs: list[str] = field(repr=False)
    prepared: "Prepared" = field(repr=False, default=None)  # type: ignore[assignment]
    traced: Traced = field(repr=False, default=None)  # type: ignore[assignment]
    timings: dict[str, float] = field(repr=False, default_factory=dict)  # seconds per phase (bench/)

    @cached_property
    def tensor_names(self) -> dict[str, str]:
        """fx node name -> a name people recognise ("layer3.0" for the output of that block)."""
        return tensor_names(self.traced.order) if self.traced else {}

    def tensor_name(self, node: str) -> str:
        return self.tensor_names.get(node, node)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)


# --------------------------------------------------------------------------- preparation

def _first_conv(gm: fx.GraphModule | None, module: nn.Module) -> tuple[int, int] | None:
    """(in_channels, spatial rank) of the first convolution: in graph order when traced, else in
    module registration order."""
    nodes = list(gm.graph.nodes) if gm is not None else []
    for node in nodes:
        if node.op == "call_module":
            m = gm.get_submodule(node.target)
            if isinstance(m, nn.modules.conv._ConvNd):
                return _conv_io(m)
        if node.op == "call_function" and getattr(node.target, "__name__", "") in ("conv1d", "conv2d", "conv3d"):
            w = node.args[1] if len(node.args) > 1 else node.kwargs.get("weight")
            if isinstance(w, fx.Node) and w.op == "get_attr":
                t = _fetch(gm, w.target)
                groups = node.kwargs.get("groups", node.args[6] if len(node.args) > 6 else 1)
                return t.shape[1] * int(groups), t.dim() - 2
    for m in module.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            return _conv_io(m)
    return None


def _conv_io(m: nn.modules.conv._ConvNd) -> tuple[int, int]:
    # a transposed conv's weight is (in, out/groups, ...): in_channels is the input either way
    return m.in_channels, len(m.kernel_size)


def _fetch(gm: fx.GraphModule, target: str) -> Any:
    obj: Any = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass
class Prepared:
    """A loaded and traced model, ready to be analyzed at any input size."""

    loaded: LoadedModel
    traced: Traced | None  # None: symbolic tracing failed, trace per size with concrete shapes
    channels: int
    n_axes: int | None
    factory_kwargs: dict[str, Any] = field(default_factory=dict)
    trace_error: str | None = None
    _by_size: dict = field(default_factory=dict, repr=False)

    def traced_at(self, size: tuple[int, ...]) -> Traced:
        if self.traced is not None and not self.traced.specialized:
            return self.traced
        if size not in self._by_size:
            inputs = [torch.empty((1, self.channels, *size), device="meta")]
            try:
                self._by_size[size] = shape_trace(self.loaded.module, inputs)
            except RflintError as err:
                raise RflintError(f"{err} (symbolic tracing failed too: {self.trace_error})") from err
        return self._by_size[size]

    @property
    def label(self) -> str:
        return self.loaded.label

    def input_size(self, size: int | tuple[int, ...] | list[int] | None) -> tuple[int, ...]:
        if size is None:
            if self.loaded.suggested_input is None:
                raise RflintError(f"{self.label}: no input size given (use --input, e.g. --input 224)")
            return self.loaded.suggested_input
        if isinstance(size, int):
            if self.n_axes is None:
                raise RflintError(f"{self.label}: cannot tell how many spatial axes the input has; give them all, e.g. 32x32")
            size = (size,) * self.n_axes
        size = tuple(int(s) for s in size)
        if self.n_axes is not None and len(size) != self.n_axes:
            raise RflintError(
                f"{self.label} expects {self.n_axes} spatial axes (its first conv is {self.n_axes}-D), "
                f"got input {'x'.join(map(str, size))}"
            )
        if any(s <= 0 for s in size):
            raise RflintError(f"input size must be positive, got {'x'.join(map(str, size))}")
        return size

    def at(self, size: int | tuple[int, ...] | None = None) -> Analysis:
        return run_program(self, self.input_size(size))


def prepare(model: Any, channels: int | None = None, kwargs: dict[str, Any] | None = None,
            label: str | None = None, real_weights: bool = False) -> Prepared:
    """Load and trace ``model`` once.  ``real_weights`` builds factories on the CPU instead of the
    meta device (needed when the traced graph itself is handed back as a runnable model)."""
    loaded = load_model(model, kwargs, label, real_weights)
    traced, trace_error = None, None
    try:
        traced = fx_trace(loaded.module)
    except RflintError as err:
        trace_error = str(err)
    first = _first_conv(traced.gm if traced else None, loaded.module)
    if channels is None:
        channels = first[0] if first else loaded.suggested_channels
    if channels is None:
        raise RflintError(f"{loaded.label}: no convolution found to infer the input channels from; pass --channels")
    if channels <= 0:
        raise RflintError(f"channels must be positive, got {channels}")
    n_axes = first[1] if first else (len(loaded.suggested_input) if loaded.suggested_input else None)
    return Prepared(loaded, traced, channels, n_axes, dict(kwargs or {}), trace_error)


def analyze(model: Any, input_size: int | tuple[int, ...] | None = None, channels: int | None = None,
            kwargs: dict[str, Any] | None = None) -> Analysis:
    """Analyze ``model`` (an nn.Module, a class, a factory, or a TARGET string) at ``input_size``.

    ``input_size`` is an int (every spatial axis) or one int per axis; ``channels`` defaults to the
    first conv's ``in_channels``.
    """
    return prepare(model, channels, kwargs).at(input_size)


# --------------------------------------------------------------------------- the program

def _layer_name(node: fx.Node, seen: dict[str, int]) -> str:
    if node.op == "call_module":
        base = str(node.target)
    else:
        stack = node.meta.get("nn_module_stack") or {}
        owner = next(reversed(stack.values()))[0] if stack else ""
        base = f"{owner}.{node.name}" if owner else node.name
    seen[base] = seen.get(base, 0) + 1
    return base if seen[base] == 1 else f"{base}@{seen[base]}"  # a module called twice


def _per_axis(rf: TensorRF | None, n: int, attr: str) -> tuple[Fraction | None, ...]:
    out: list[Fraction | None] = []
    for i in range(n):
        axis = rf.axis_at(i - n) if rf is not None and rf.spatial else None
        out.append(getattr(axis, attr) if axis is not None else None)
    return tuple(out)


def _shape_of(value: Any) -> tuple[int, ...] | None:
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return tuple(value[0].shape)
    return None


def _inputs_for(prepared: Prepared, traced: Traced, size: tuple[int, ...]) -> tuple[list[torch.Tensor], list[fx.Node]]:
    placeholders = [n for n in traced.order if n.op == "placeholder"]
    if not placeholders:
        raise RflintError(f"{prepared.label}: forward() takes no input")
    extra = [p.name for p in placeholders[1:] if not p.args]
    if extra:
        raise RflintError(f"{prepared.label}: forward() takes several inputs ({', '.join(extra)}); only one image input is supported")
    x = torch.empty((1, prepared.channels, *size), device="meta")
    return [x] + [p.args[0] for p in placeholders[1:]], placeholders[:1]


def run_program(prepared: Prepared, size: tuple[int, ...]) -> Analysis:
    clock = time.perf_counter()
    traced = prepared.traced_at(size)
    gm = traced.gm
    inputs, image_inputs = _inputs_for(prepared, traced, size)
    values = propagate(gm, inputs)
    timings = {"shapes": time.perf_counter() - clock}
    clock = time.perf_counter()
    rfs: dict[fx.Node, TensorRF | None] = {}
    layers: list[Layer] = []
    layer_by_node: dict[str, Layer] = {}
    node_params: dict[str, int] = {}
    node_macs_: dict[str, int] = {}
    warnings: list[str] = []
    seen_names: dict[str, int] = {}
    seen_modules: set[int] = set()
    outputs: list[str] = []

    for node in traced.order:
        module = gm.get_submodule(node.target) if node.op == "call_module" else None
        if node.op == "placeholder":
            rfs[node] = TensorRF.for_input(len(size)) if node in image_inputs else None
            continue
        outcome = transfer(Ctx(node, module, values, rfs))
        rf = outcome.rf
        rfs[node] = rf
        params = 0
        if module is not None and id(module) not in seen_modules:
            seen_modules.add(id(module))
            params = module_params(module)
        elif node.op == "call_function" and outcome.kernel is not None and outcome.kernel.parametric:
            params = sum(_fetch(gm, a.target).numel() for a in node.all_input_nodes if a.op == "get_attr")
        node_params[node.name] = params
        node_macs_[node.name] = node_macs(node, module, values)
        if outcome.warning:
            warnings.append(f"{node.target if module is not None else node.name}: {outcome.warning}")
        if node.op == "output":
            outputs.extend(a.name for a in node.all_input_nodes)
        if outcome.kernel is None:
            continue
        kop = outcome.kernel
        src = node.args[0] if node.args else None
        rf_in = rfs.get(src) if isinstance(src, fx.Node) else None
        head = rf_in is None or rf_in.is_global
        n = kop.n
        axes_in = [rf_in.axis_at(i - n) if rf_in is not None and rf_in.spatial else None for i in range(n)]
        source = (construction_site(module) if module is not None else None) or stack_trace_site(node.meta.get("stack_trace"))
        layer = Layer(
            name=_layer_name(node, seen_names), node=node.name, op=kop.op, kind=kop.kind,
            kernel=kop.kernel, stride=kop.stride, dilation=kop.dilation, padding=kop.padding,
            in_shape=_shape_of(values.get(src)) or (), out_shape=_shape_of(values.get(node)) or (),
            r_in_min=_per_axis(rf_in, n, "r_min"), r_in_max=_per_axis(rf_in, n, "r_max"),
            r_out_min=_per_axis(rf, n, "r_min"), r_out_max=_per_axis(rf, n, "r_max"),
            origins=tuple(a.origin if a is not None else None for a in axes_in),
            params=params if module is not None else node_params[node.name],
            macs=node_macs_[node.name], parametric=kop.parametric, expanding=kop.expanding,
            head=head, source=source or prepared.loaded.factory_source, kop=kop,
        )
        layers.append(layer)
        layer_by_node[node.name] = layer

    final_layer = _final_layer(traced.order, rfs, layer_by_node)
    timings["rf_program"] = time.perf_counter() - clock
    total_params = module_params(prepared.loaded.module)
    return Analysis(
        target=prepared.label, input_size=size, channels=prepared.channels, layers=layers,
        params=total_params, macs=sum(node_macs_.values()),
        final_layer=final_layer.name if final_layer is not None else None,
        final_r_min=final_layer.r_out_min if final_layer is not None else None,
        final_r_max=final_layer.r_out_max if final_layer is not None else None,
        warnings=warnings, trace_method=traced.method, device=prepared.loaded.device,
        graph=traced.graph, order=[n.name for n in traced.order],
        rf={n.name: r for n, r in rfs.items()},
        shapes={n.name: _shape_of(values.get(n)) for n in traced.order},
        node_params=node_params, node_macs=node_macs_, layer_by_node=layer_by_node,
        inputs=[n.name for n in image_inputs], outputs=outputs, prepared=prepared, traced=traced,
        timings=timings,
    )


def _final_layer(order: list[fx.Node], rfs: dict, layer_by_node: dict[str, Layer]) -> Layer | None:
    """The RF layer that defines the final RF: among the RF layers that reach the last spatial tensor
    without passing another RF layer, the one with the largest r_max.  Merges and elementwise ops do
    not change r, so its r_out_max is exactly the last spatial tensor's r_max; its r_out_min is the
    RF of the deepest path rather than the stem's (which a residual identity path would give)."""
    output = order[-1]
    position = {n: i for i, n in enumerate(order)}
    last: fx.Node | None = None
    stack, seen = list(output.all_input_nodes), set()
    while stack:  # the last spatial tensor: walk back from the output through global nodes
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        rf = rfs.get(node)
        if rf is None:
            continue
        if rf.spatial:
            if last is None or position[node] > position[last]:
                last = node
        else:
            stack.extend(node.all_input_nodes)
    if last is None:
        return None
    frontier: list[Layer] = []
    stack, seen = [last], set()
    while stack:
        node = stack.pop()
        if node in seen or rfs.get(node) is None or not rfs[node].spatial:
            continue
        seen.add(node)
        layer = layer_by_node.get(node.name)
        if layer is not None and not layer.head:
            frontier.append(layer)
        else:
            stack.extend(node.all_input_nodes)
    if not frontier:
        return None

    def key(layer: Layer):
        return (max((r for r in layer.r_out_max if r is not None), default=0), position[_node_of(order, layer)])

    return max(frontier, key=key)


def _node_of(order: list[fx.Node], layer: Layer) -> fx.Node:
    return next(n for n in order if n.name == layer.node)
