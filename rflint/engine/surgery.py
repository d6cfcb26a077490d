"""Model surgery on the traced graph: the what-if experiments behind the suggested fixes.

The user's model is never touched.  Experiments (the stem rule) build a new GraphModule that shares
every unchanged submodule and changes shallow copies; fixes handed back to the user (``copy_weights``)
work on a deep copy, so fine-tuning the result cannot change the original.
"""

from __future__ import annotations

from dataclasses import replace

import torch.fx as fx
from torch import nn

from rflint.engine.analysis import Analysis, Layer, Prepared
from rflint.engine.weights import fetch
from rflint.errors import RflintError
from rflint.trace.tracing import Traced, to_networkx
from rflint.trace.sources import copied_module
from rflint.wording import named


# what a removed pool becomes in an experiment: one shared, stateless instance (building an
# nn.Module costs microseconds, paid per stem candidate); a model handed back gets its own
_REMOVED = nn.Identity()


def _changed(module: nn.Module, name: str, removed: nn.Module | None = None) -> nn.Module:
    if isinstance(module, nn.modules.conv._ConvNd) and not isinstance(module, nn.modules.conv._ConvTransposeNd):
        # a new object sharing the weights (a shallow copy: the same instance dict entries, as
        # copy.copy gives, without its pickle-protocol round trip): only its stride differs
        changed = object.__new__(type(module))
        changed.__dict__.update(module.__dict__)
        changed.__dict__["stride"] = (1,) * len(module.kernel_size)
        return changed
    if isinstance(module, (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)):
        return removed if removed is not None else nn.Identity()
    raise RflintError(f"{name} ({type(module).__name__}) cannot be made stride 1 or removed")


def stride_one(analysis: Analysis, layers: list[Layer], source: fx.GraphModule | None = None) -> dict[str, nn.Module]:
    """The replacement modules, by module path, that take the downsampling out of ``layers``: convs
    get stride 1, pools (whose only job in a stem is downsampling) become identities.  An experiment
    analyses them in place (``Prepared.at(size, replace=...)``) without building a new graph."""
    if source is None:  # the analysed graph: its nodes and modules are indexed already
        nodes, module_at, removed = analysis.traced.node_by_name, analysis.traced.modules.__getitem__, _REMOVED
    else:
        nodes, module_at, removed = {node.name: node for node in source.graph.nodes}, source.get_submodule, None
    changes = {}
    for layer in layers:
        node = nodes.get(layer.node)
        target = node.target if node is not None and node.op == "call_module" else None
        if target is None:
            raise RflintError(f"{layer.name} is not a module call; only module layers can be changed")
        changes[target] = _changed(module_at(target), layer.name, removed)
    return changes


def without_downsampling(analysis: Analysis, layers: list[Layer], copy_weights: bool = False) -> Prepared:
    """A new traced model with :func:`stride_one` applied, for handing back to the user.

    Works on the graph traced for ``analysis`` (for a shape-specialised trace the changed graph is
    kept as it is rather than re-traced)."""
    prepared = analysis.prepared
    source = copied_module(analysis.traced.gm) if copy_weights else analysis.traced.gm
    changes = stride_one(analysis, layers, source)
    root: dict = {}
    for node in source.graph.nodes:
        if node.op == "call_module":
            root[node.target] = changes.get(node.target) or source.get_submodule(node.target)
        elif node.op == "get_attr":
            root[node.target] = fetch(source, node.target)
    graph = fx.Graph()
    graph.output(graph.graph_copy(source.graph, {}))
    gm = fx.GraphModule(root, graph, type(source).__name__)
    traced = Traced(gm, to_networkx(gm), list(gm.graph.nodes), analysis.traced.method)
    loaded = replace(prepared.loaded, module=gm)
    return Prepared(loaded, traced, prepared.channels, prepared.n_axes, prepared.factory_kwargs,
                    default_channels=prepared.default_channels, param_counts=prepared.param_counts)


def describe_change(layer: Layer) -> str:
    """The change as an instruction, a list item on its own ("conv1: stride 2x2 -> 1")."""
    if layer.kind == "pool":
        return f"remove {layer.name} ({layer.op} stride {_stride(layer)})"
    return f"{layer.name}: stride {_stride(layer)} -> 1"


def changed_phrase(layers: list[Layer]) -> str:
    """The changes as the subject of a sentence: "with conv1 at stride 1 (not 2x2) and maxpool
    (MaxPool2d, stride 2x2) removed"."""
    parts = [f"{named(layer.name)} ({layer.op}, stride {_stride(layer)}) removed" if layer.kind == "pool"
             else f"{named(layer.name)} at stride 1 (not {_stride(layer)})" for layer in layers]
    return "with " + (parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1])


def _stride(layer: Layer) -> str:
    return "x".join(str(int(s)) for s in layer.stride)
