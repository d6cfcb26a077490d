"""The RF program at some input shapes: shapes, the RF pass (rfpass.py), and the per-layer books.

Per node, ops/ says what it does to the receptive field; rfstate.py explains why keeping Pareto
frontiers of (r, jump) per axis makes the result exact over all paths.  :func:`probe` runs the two
passes alone, for the what-if experiments (replaying a finished analysis where it can: replay.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

import torch.fx as fx
from torch import nn
from torch.nn.utils.parametrize import ParametrizationList

from rflint import declared
from rflint.engine.costs import MacsRule, count_params, macs_rule, module_params, node_macs, per_sample, unique_params
from rflint.engine.kernels import KernelOp
from rflint.engine.ops.modules import FOLD_WARNING
from rflint.engine.results import Analysis, Layer
from rflint.engine.replay import RFTable, replay
from rflint.engine.resized import needs_resized
from rflint.engine.rfpass import rf_pass, source_of
from rflint.engine.rfstate import TensorRF, axes_by_origin, layer_axes, widen_need
from rflint.engine.weights import fetch, parameters_behind
from rflint.errors import RflintError
from rflint.trace import Traced, construction_site, propagate
from rflint.trace.metaspec import MetaSpec, first_shape, needs_values
from rflint.trace.shapes import compile_steps
from rflint.trace.tracing import model_dtype
from rflint.trace.sources import calling_module, node_label, node_site

if TYPE_CHECKING:
    from rflint.engine.prepare import Prepared


def _layer_name(node: fx.Node, seen: dict[str, int], owner: nn.Module | None = None) -> str:
    """The layer's name: its module's path, or for a function its module's path and fx's node name
    ("layer1.0.add").  A conv subclass with a forward() of its own (weight standardisation, TF
    "same" padding) is the conv it computes, named by its path as an nn.Conv2d is ("conv2", not
    "conv2.conv1d_1", whose counter runs over the whole model)."""
    path = calling_module(node) if isinstance(owner, nn.modules.conv._ConvNd) else ""
    base = path or node_label(node)
    seen[base] = seen.get(base, 0) + 1
    return base if seen[base] == 1 else f"{base}@{seen[base]}"  # a module called twice


def _module_param_ids(traced: Traced, modules: dict[str, nn.Module]) -> set[int]:
    """The parameters of the modules the trace calls (counted at their calls, by the ledger): a
    functional layer that takes one of their weights (F.conv2d(x, self.conv.weight)) counts none."""
    return {id(p) for target in {node.target for node in traced.order if node.op == "call_module"}
            if not isinstance(modules[target], ParametrizationList) for p in unique_params(modules[target])}


def _names(names: list[str]) -> str:
    """The nodes one warning is given for: "fold", "fold and fold_1", "fold, fold_1 and 6 more" (a
    block repeated eight times says it once, not eight times)."""
    if len(names) <= 3:
        return " and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else names[0]
    return f"{names[0]}, {names[1]} and {len(names) - 2} more"


def _weights_owner(node: fx.Node, root: nn.Module, weights: dict[str, nn.Parameter]) -> nn.Module | None:
    """The model's module whose forward() makes this functional conv with its own weight: a conv
    subclass with a forward() of its own (weight standardisation, TF "same" padding) is that conv,
    built where the module is (the line its findings point at and its ignore comment sits on)."""
    path = calling_module(node)
    if not path:
        return None
    if not any(target.startswith(path + ".") for target in weights):  # its own (or its parametrization's)
        return None
    try:
        return root.get_submodule(path)
    except AttributeError:
        return None


def _varargs(placeholder: fx.Node) -> bool:
    """forward(*xs): fx makes one placeholder "*xs" that takes every remaining argument as a tuple."""
    target = str(placeholder.target)
    return target.startswith("*") and not target.startswith("**")


def _varkwargs(placeholder: fx.Node) -> bool:
    """forward(x, **kwargs): fx's "**kwargs" placeholder, which no input shape is for."""
    return str(placeholder.target).startswith("**")


def _keyword_only(model: nn.Module, names: list[str]) -> list[str]:
    """Those of ``names`` that the model's forward() takes as keyword-only arguments (after ``*``;
    fx's generated code takes every argument by position)."""
    import inspect

    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return []
    return [name for name in names if name in params and params[name].kind is inspect.Parameter.KEYWORD_ONLY]


def _inputs_for(prepared: Prepared, traced: Traced, shapes) -> tuple[list[Any], list[fx.Node], tuple[int, ...]]:
    """MetaSpecs (meta tensors to be) for the forward() arguments; the image inputs (N, C, *spatial)
    carry RF state."""
    placeholders = traced.memo("placeholders", lambda: [n for n in traced.order
                                                        if n.op == "placeholder" and not _varkwargs(n)])
    # p.args holds a default value; forward(*xs)'s placeholder (always the last) may take nothing
    required = [p for p in placeholders if not p.args and not _varargs(p)]
    if not placeholders:
        raise RflintError(f"{prepared.label}: forward() takes no input")
    if len(shapes) < len(required):
        keyword_only = _keyword_only(prepared.loaded.module, [p.target for p in required])
        if keyword_only:  # no --input-shape can give it (shapes go to the positional arguments)
            raise RflintError(f"{prepared.label}: forward() needs the keyword-only argument {keyword_only[0]}, which "
                              "rflint cannot give: give it a default, or name a factory that wraps the model "
                              f"and passes it (a module whose forward(x) calls it with {keyword_only[0]}=...)")
        names = ", ".join(p.target for p in required)
        raise RflintError(f"{prepared.label}: forward() takes {len(required)} inputs ({names}); "
                          "give one --input-shape per input, e.g. --input-shape 1,3,32,32 --input-shape 1,10")
    # with forward(*xs), fx's one placeholder takes the rest of the shapes
    if len(shapes) > len(placeholders) and not any(_varargs(p) for p in placeholders):
        takes = f"{len(placeholders)} input{'s' if len(placeholders) != 1 else ''}"
        raise RflintError(f"{prepared.label}: forward() takes {takes}, got {len(shapes)} shapes")
    # MetaSpecs, not meta tensors: torch.empty(device="meta") costs tens of microseconds, paid again
    # in every what-if probe, and the propagation makes the tensor only where torch runs an op on it
    dtype = traced.memo("input_dtype", lambda: model_dtype(traced.gm))
    inputs: list[Any] = [MetaSpec(s, dtype) for s in shapes]
    inputs += [p.args[0] for p in placeholders[len(shapes):] if p.args]
    images = [p for p, s in zip(placeholders, shapes) if len(s) >= 3]
    return inputs, images, tuple(shapes[0][2:])


def _propagated(prepared: Prepared, shapes, replace: dict[str, nn.Module] | None):
    traced = prepared.traced_at(shapes)
    inputs, image_inputs, size = _inputs_for(prepared, traced, shapes)
    modules = {**traced.modules, **replace} if replace else traced.modules
    steps = traced.memo("shape_steps", lambda: compile_steps(traced.gm, traced.modules))
    try:
        values = propagate(traced.gm, inputs, modules, steps)
    except RflintError as err:  # an op whose shape depends on values (torch.nonzero): trace with values
        other = _other_input_dtype(traced, err)
        if other is not None:  # a complex-valued model that takes a real signal (an FFT first), or the reverse
            traced.derived["input_dtype"] = other
            return _propagated(prepared, shapes, replace)
        if not needs_values(err) or replace or prepared.value_traced_at(shapes) is None:
            raise
        return _propagated(prepared, shapes, replace)
    return traced, modules, values, image_inputs, size


def _other_input_dtype(traced: Traced, err: RflintError):
    """The input dtype to try once more when the first (the model's first floating, else complex,
    parameter's: tracing.model_dtype) failed on complex against real: the default float dtype for
    a complex model whose first op is an FFT of a real input, the complex parameters' dtype for one
    that takes complex data.  None: no other to try."""
    import torch

    if "omplex" not in str(err) or traced.derived.get("input_dtype_tried"):
        return None
    traced.derived["input_dtype_tried"] = True
    tried = traced.memo("input_dtype", lambda: model_dtype(traced.gm))
    if tried.is_complex:
        return torch.get_default_dtype()
    return next((p.dtype for p in traced.gm.parameters() if p.is_complex()), None)


@dataclass
class Probe:
    """What the RF program alone leaves (no per-layer report): every node's RF and value, and the
    kernel of every RF layer.  The what-if experiments (stem removal, other input sizes) need no more."""

    input_size: tuple[int, ...]
    replace: dict[str, nn.Module] | None  # the what-if modules it ran with
    modules: dict[str, nn.Module]
    values: dict[fx.Node, Any]
    table: RFTable  # every node's RF (after a replay, partly as maps of the base's: replay.py)
    kernels: dict[fx.Node, KernelOp]  # RF-layer node -> its kernel, in topological order
    prepared: Prepared
    traced: Traced

    def rf(self, node: fx.Node) -> TensorRF | None:
        return self.table.rf(node)

    @property
    def rfs(self) -> dict[fx.Node, TensorRF | None]:
        """Every node's RF, as a plain dict."""
        return self.table.all()

    def layer_r_min(self) -> Iterator[tuple[fx.Node, tuple | None, tuple]]:
        """(node, r_min of its input per kernel axis, model-input axis of each) for every RF layer,
        None on axes no longer spatial; r_min None for a head layer (its input is already global)."""
        layer_input = self.table.layer_input
        for node, kop in self.kernels.items():
            yield (node, *layer_input(node, source_of(node), kop.n))

    def is_spatial(self, node: fx.Node) -> bool:
        """The node's RF has spatial axes (what the cut tensors are made of)."""
        return self.table.is_spatial(node)

    def macs(self) -> int:
        """The model's MACs as it ran here: the trace's MAC rules (run_program's ledger), each
        replaced module's node counted with the replacement's own rule."""
        traced, replaced = self.traced, self.replace or {}
        ledger = traced.memo("ledger", lambda: _ledger(self.prepared, traced, traced.modules))
        node_of = traced.node_by_name
        batch = per_sample(traced.order, self.values)
        total = 0
        for name, rule in ledger.macs:
            node = node_of[name]
            if not (node.op == "call_module" and node.target in replaced):
                total += rule(self.values) // batch
        if replaced:
            total += sum(node_macs(node, replaced[node.target], self.values) // batch for node in traced.order
                         if node.op == "call_module" and node.target in replaced)
        return total


def probe(prepared: Prepared, shapes, replace: dict[str, nn.Module] | None = None,
          base: Analysis | None = None) -> Probe:
    """Shapes and the RF program at these input shapes, without building the per-layer report.
    ``base``: a finished analysis of the same trace and layer declarations, with the trace's own
    modules, at any size, whose RFs the pass reuses where they provably follow (replay.py); any
    other base is ignored."""
    traced, modules, values, image_inputs, size = _propagated(prepared, shapes, replace)
    if base is not None and _replayable(prepared, shapes, base):
        table, kernels = replay(traced, modules, values, image_inputs, base, frozenset(replace or ()))
        return Probe(size, replace, modules, values, table, kernels, prepared, traced)
    rfs: dict[fx.Node, TensorRF | None] = {}
    kernels = {}
    for node, _, kop, _ in rf_pass(traced, modules, values, image_inputs, rfs):
        if kop is not None:
            kernels[node] = kop
    return Probe(size, replace, modules, values, RFTable(rfs), kernels, prepared, traced)


def _replayable(prepared: Prepared, shapes, base: Analysis) -> bool:
    """``base`` is an analysis of the trace these shapes run on, with its own modules and the
    layer declarations of now: what a replay (replay.py, resized.py) starts from."""
    traced = prepared.traced_at(shapes)
    return base.traced is traced and base.modules is traced.modules and base.declarations == declared.version()


def input_needs(prepared: Prepared, shapes, base: Analysis | None = None) -> tuple[int, ...]:
    """Per model-input axis, the smallest size that no RF layer's input r_min exceeds, from a
    :func:`probe` (what the clean-size search re-checks at each candidate; ``base``: see there).
    Must agree with ``needs_of(run_program(...))``; tests/test_engine_ops.py checks that it does.
    With a base of the same trace, only the nodes the size can change are visited (resized.py)."""
    if base is not None and _replayable(prepared, shapes, base):
        traced, _, values, image_inputs, _ = _propagated(prepared, shapes, None)
        return needs_resized(traced, values, image_inputs, base)
    p = probe(prepared, shapes, base=base)
    need = [1] * len(p.input_size)
    for _, r_min, origins in p.layer_r_min():
        widen_need(need, r_min, origins)
    return tuple(need)


def needs_of(a: Analysis) -> tuple[int, ...]:
    """:func:`input_needs` from a finished analysis's layers."""
    need = [1] * len(a.input_size)
    for layer in a.layers:
        if not layer.head:
            widen_need(need, layer.r_in_min, layer.origins)
    return tuple(need)


@dataclass
class _Ledger:
    """What the bookkeeping around the RF program needs that the input size does not change,
    worked out once per trace (and once more per what-if set of replaced modules)."""

    names: list[str]  # node names in topological order
    params: dict[str, int]  # node -> parameters counted there (a module at its first call, else 0)
    param_ids: set[int]  # the parameters counted at modules (a functional layer does not count them again)
    macs: list[tuple[str, MacsRule]]  # the nodes that can count MACs, and how
    outputs: list[str]  # what the output node returns
    bare: list[tuple[fx.Node, nn.Parameter]]  # parameters read as attributes (get_attr) that no called module owns


_TIED = "<tied weights>"  # (in Prepared.param_counts, whose other keys are module paths: "" is the model)


def _ledger(prepared: Prepared, traced: Traced, modules: dict[str, nn.Module]) -> _Ledger:
    params: dict[str, int] = {}
    macs: list[tuple[str, MacsRule]] = []
    seen_modules: set[int] = set()
    param_ids: set[int] = set()
    leaf_counts: dict[int, int] = {}
    bare: list[tuple[fx.Node, nn.Parameter]] = []
    if "" not in prepared.param_counts:  # the model's total and its leaves' counts, in one walk
        prepared.param_counts[""], leaf_counts, prepared.param_counts[_TIED] = count_params(prepared.loaded.module)
    tied = prepared.param_counts.get(_TIED, True)  # two modules share a weight: count each parameter once
    for node in traced.order:
        if node.op == "placeholder":
            continue
        module = modules[node.target] if node.op == "call_module" else None
        params[node.name] = 0
        if module is not None and id(module) not in seen_modules and not isinstance(module, ParametrizationList):
            # (a parametrization computes a functional layer's weight, which counts them there)
            seen_modules.add(id(module))
            count = prepared.param_counts.get(node.target)
            if count is None:  # a leaf the walk saw, or a module called whole (declared, opaque)
                count = leaf_counts.get(id(module))
                if count is None:
                    count = module_params(module)
                prepared.param_counts[node.target] = count
            if tied:
                own = unique_params(module)
                if any(id(p) in param_ids for p in own):  # a weight tied to an earlier module's: counted there
                    count = sum(p.numel() for p in own if id(p) not in param_ids)
                param_ids.update(id(p) for p in own)
            params[node.name] = count
        if node.op != "get_attr":
            rule = macs_rule(node, module)
            if rule is not None:
                macs.append((node.name, rule))
        else:
            value = fetch(traced.gm, str(node.target))
            if isinstance(value, nn.Parameter):
                bare.append((node, value))
    if bare:  # not a called module's weight read as an attribute too (F.conv2d(x, self.conv.weight))
        owned = _module_param_ids(traced, traced.modules)
        bare = [(node, param) for node, param in bare if id(param) not in owned]
    output = traced.order[-1]
    return _Ledger([n.name for n in traced.order], params, param_ids, macs, [a.name for a in output.all_input_nodes],
                   bare)


def _bare_params(bare: list[tuple[fx.Node, nn.Parameter]], counted: set[int], rfs: dict, position: dict
                 ) -> dict[str, int]:
    """node -> the parameters read as attributes in forward() that no layer counted (a layer-scale
    gamma, a hand-written norm's weight and bias, a cls token), each at the first feature map made
    from it, through the values that are none (``self.weight[:, None, None]``): the node a tail or a
    truncation that removes that map takes it with.  Left out, a tail's params missed them, which
    its truncation removes.  A parameter no map is made from (one a head alone reads) stays in the
    model's total only.  ``counted``: the parameters counted already (grows)."""
    extra: dict[str, int] = {}
    for node, param in bare:
        if id(param) in counted:
            continue
        counted.add(id(param))
        first, stack, seen = None, list(node.users), set()
        while stack:
            user = stack.pop()
            if user in seen:
                continue
            seen.add(user)
            rf = rfs.get(user)
            if rf is not None and not rf.is_global:  # a map: where the parameter counts, if it is the first
                if first is None or position[user] < position[first]:
                    first = user
            elif user.op != "output":
                stack.extend(user.users)
        if first is not None:
            extra[first.name] = extra.get(first.name, 0) + param.numel()
    return extra


def run_program(prepared: Prepared, shapes, replace: dict[str, nn.Module] | None = None) -> Analysis:
    """Shapes, then the RF program, at these input shapes.  ``replace``: module path -> the module to
    call instead (what-if experiments on the same graph, see surgery.stride_one)."""
    clock = time.perf_counter()
    traced, modules, values, image_inputs, size = _propagated(prepared, shapes, replace)
    channels = shapes[0][1]
    timings = {"shapes": time.perf_counter() - clock}
    clock = time.perf_counter()
    ledger = (_ledger(prepared, traced, modules) if replace
              else traced.memo("ledger", lambda: _ledger(prepared, traced, modules)))
    rfs: dict[fx.Node, TensorRF | None] = {}
    layers: list[Layer] = []
    layer_by_node: dict[str, Layer] = {}
    node_params = ledger.params
    batch = per_sample(traced.order, values)
    node_macs_ = {name: rule(values) // batch for name, rule in ledger.macs}
    warnings: list[str] = prepared.loaded.notes + traced.notes
    said_of: dict[str, list[str]] = {}  # a rule's warning -> the nodes it was given for, in order
    seen_names: dict[str, int] = {}
    counted: set[int] | None = None  # parameters counted so far: the modules', then each functional layer's
    leaf_notes = {note.split(":", 1)[0] for note in traced.notes}  # opaque leaves are already explained

    for node, module, kop, warning in rf_pass(traced, modules, values, image_inputs, rfs):
        if warning and not (module is not None and node.target in leaf_notes):
            names = said_of.setdefault(warning, [])
            name = node.target if module is not None else node.name
            if name not in names:  # (a module called twice: one name)
                names.append(name)
        if kop is None:
            continue
        src = source_of(node)
        owner = None
        if kop.parametric and module is None:  # a functional conv: the parameters it multiplies with count here
            if node_params is ledger.params:
                node_params = dict(node_params)
            weights = parameters_behind([a for a in node.all_input_nodes if a is not src], rfs.get)
            if counted is None:  # (a kernel shared by two layers, or a called module's weight: counted once)
                counted = _module_param_ids(traced, modules) if not ledger.param_ids else set(ledger.param_ids)
            node_params[node.name] = sum(p.numel() for p in weights.values() if id(p) not in counted)
            counted.update(id(p) for p in weights.values())
            owner = _weights_owner(node, prepared.loaded.module, weights)
        rf_in = rfs.get(src) if src is not None else None
        head = rf_in is None or rf_in.is_global
        n = kop.n
        # a replaced module (a what-if copy) was built where the original was
        site_of = traced.modules.get(node.target) if module is not None else None
        site_of = site_of or owner
        source = (construction_site(site_of) if site_of is not None else None) or node_site(node)
        r_in_min, r_in_max, origins = layer_axes(rf_in, n)
        r_out_min, r_out_max, out_origins = layer_axes(rfs[node], n)
        if out_origins != origins and rfs[node] is not None and rfs[node].axes:  # the op moved its axes
            r_out_min, r_out_max = axes_by_origin(rfs[node], origins)
        layer = Layer(
            _layer_name(node, seen_names, owner), node.name, kop.op, kop.kind, kop.kernel, kop.stride, kop.dilation,
            kop.padding, first_shape(values.get(src)) or (), first_shape(values.get(node)) or (),
            r_in_min, r_in_max, r_out_min, r_out_max, origins,
            node_params[node.name], node_macs_.get(node.name, 0),
            kop.parametric, kop.expanding, head, source or prepared.loaded.factory_source, kop,
        )
        layers.append(layer)
        layer_by_node[node.name] = layer

    position = traced.memo("position", lambda: {n: i for i, n in enumerate(traced.order)})
    if ledger.bare:  # (those a functional layer took are counted there)
        extra = _bare_params(ledger.bare, set(counted or ()), rfs, position)
        if extra:
            node_params = dict(node_params) if node_params is ledger.params else node_params
            for name, count in extra.items():
                node_params[name] += count
                if name in layer_by_node:  # (an RF layer that reads one itself)
                    layer_by_node[name].params += count
    warnings += [f"{_names(names)}: {warning}" for warning, names in said_of.items()]
    unjudged = _spatial_heads(layers)
    if unjudged and not any(FOLD_WARNING in warning for warning in said_of):  # (that one says it)
        warnings.append(f"{_names([layer.name for layer in unjudged])}: {_SPATIAL_HEADS}")
    if layers and all(layer.head or all(r is None for r in layer.r_in_min) for layer in layers):
        # "No findings." from nothing checked otherwise
        warnings.append("no RF layer reads a spatial map (their kernels run over no axis of the input), so no rule had anything "
                        "to check: rflint reads the input as (batch, channels, *spatial); a model that takes "
                        "(batch, length, channels) and transposes it has its length read as channels")
    final_layer, last_spatial = _final_layer(traced.order, position, rfs, layer_by_node)
    timings["rf_program"] = time.perf_counter() - clock
    total_params = prepared.param_counts[""]  # set by the ledger's walk (or shared by surgery's Prepared)
    return Analysis(
        target=prepared.label, input_size=size, channels=channels, layers=layers,
        params=total_params, macs=sum(node_macs_.values()),
        final_layer=final_layer.name if final_layer is not None else None,
        final_r_min=_by_input_axis(final_layer.r_out_min, final_layer, rfs[last_spatial], len(size), smallest=True)
        if final_layer is not None else None,
        final_r_max=_by_input_axis(_final_r_max(final_layer, rfs[last_spatial]), final_layer, rfs[last_spatial],
                                   len(size), smallest=False) if final_layer is not None else None,
        warnings=warnings, trace_method=traced.method, device=prepared.loaded.device,
        graph=traced.graph, order=ledger.names, node_rf=rfs, values=values,
        node_params=node_params, node_macs=node_macs_, layer_by_node=layer_by_node,
        inputs=[n.name for n in image_inputs], outputs=ledger.outputs, prepared=prepared, traced=traced,
        modules=modules, declarations=declared.version(), timings=timings, input_shapes=tuple(shapes),
        final_origins=tuple(sorted({axis.origin for axis in rfs[last_spatial].axes})) if last_spatial is not None else None,
    )


# said of head layers that still slide a window over a map (MaxViT's convs after its first window
# attention, a conv decoder on a ViT's tokens): nothing checks them, which "No findings." hides
_SPATIAL_HEADS = ("layers with a spatial kernel on a map that attention, a window partition, a fold or a flatten "
                  "made global before them (rf-semantics.md §2: it counts as the whole input): no rule checks them, "
                  "so the findings cover only the layers before")


def _spatial_heads(layers: list[Layer]) -> list[Layer]:
    """Head layers whose window reads more than one position of a map (a 3x3 conv on 56x56)."""
    found = []
    for layer in layers:
        if layer.head and layer.expanding and len(layer.in_shape) >= layer.kop.n + 2:
            sides = layer.in_shape[-layer.kop.n:]
            if any(k > 1 and side > 1 for k, side in zip(layer.kernel, sides)):
                found.append(layer)
    return found


def _by_input_axis(values: tuple, layer: Layer, last: TensorRF, n: int, smallest: bool) -> tuple:
    """A layer's per-axis values in the model input's axis order (H, W, ...): the final RF reads like
    the input size it is compared with, also after a transpose or in a channels-last map (whose
    kernel axes include the channels).  An input axis the layer has none of but the last spatial
    tensor has (a gate's conv over H alone, x.mean(3) before it, on a map that has H and W) takes
    the tensor's own value there (its r_min with ``smallest``, else its r_max); None for an axis
    the tensor has none of either."""
    if layer.origins == tuple(range(n)):
        return values
    out: list = [None] * n
    for value, origin in zip(values, layer.origins):
        if origin is not None and 0 <= origin < n:
            out[origin] = value
    for axis in last.axes:
        if 0 <= axis.origin < n and axis.origin not in layer.origins:
            r = axis.r_min if smallest else axis.r_max
            if out[axis.origin] is not None:  # two axes of that origin (an Inception-E block's branches)
                r = min(out[axis.origin], r) if smallest else max(out[axis.origin], r)
            out[axis.origin] = r
    return tuple(out)


def _final_r_max(layer: Layer, last: TensorRF) -> tuple:
    """The final r_max, per axis of ``layer`` (the final layer): the last spatial tensor's r_max on
    that axis (rf-semantics.md §5).  The same as the layer's own r_out_max unless the branches joined
    after it grow different axes (an Inception-E block's 1x3 and 3x1 convs side by side): a merge
    is the union of its inputs' states per axis, so each axis takes its largest branch."""
    by_origin: dict[int, Any] = {}
    for axis in last.axes:
        by_origin[axis.origin] = max(by_origin.get(axis.origin, axis.r_max), axis.r_max)
    return tuple(r if r is None or o is None else by_origin.get(o, r) for r, o in zip(layer.r_out_max, layer.origins))


def _seen(values) -> tuple:
    """How much a unit sees, to compare branches: its r_max per axis, largest first (so the largest
    axis decides, then the next: a SlowFast net's slow pathway, 51x195x195, beats the fast one,
    21x195x195, whichever forward() runs last)."""
    return tuple(sorted((v for v in values if v is not None), reverse=True))


def _reach(rf: TensorRF, at: int) -> tuple:
    return _seen(axis.hi[0][0] for axis in rf.axes), at


def _final_layer(order: list[fx.Node], position: dict[fx.Node, int], rfs: dict,
                 layer_by_node: dict[str, Layer]) -> tuple[Layer | None, fx.Node | None]:
    """The RF layer that defines the final RF, and the last spatial tensor: among the RF layers that
    reach that tensor without passing another RF layer, the one with the largest r_max.  Merges and
    elementwise ops do not change r, so its r_out_min is the RF of the deepest path rather than the
    stem's (which a residual identity path would give); its r_out_max is the tensor's on every axis
    that layer grows most (see _final_r_max for the others)."""
    output = order[-1]
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
            # several outputs (a map and the logits): the one whose units see most, then the later
            # one, so the answer does not depend on the order forward() computes them in
            if last is None or _reach(rf, position[node]) > _reach(rfs[last], position[last]):
                last = node
        else:
            stack.extend(node.all_input_nodes)
    if last is None:
        return None, None
    frontier: list[tuple[Layer, int]] = []  # (layer, its position)
    stack, seen = [last], set()
    while stack:
        node = stack.pop()
        if node in seen or rfs.get(node) is None or not rfs[node].spatial:
            continue
        seen.add(node)
        layer = layer_by_node.get(node.name)
        if layer is not None and not layer.head:
            frontier.append((layer, position[node]))
        else:
            stack.extend(node.all_input_nodes)
    if not frontier:
        return None, last

    axes = {axis.origin for axis in rfs[last].axes}

    def key(entry: tuple[Layer, int]):
        # first the layer with most of the last tensor's axes: a gate's conv over H alone (on a mean
        # over W) is not the last feature map, however far it sees on H
        layer, at = entry
        return sum(o in axes for o in set(layer.origins)), _seen(layer.r_out_max), at

    return max(frontier, key=key)[0], last
