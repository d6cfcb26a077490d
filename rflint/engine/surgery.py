"""Model surgery on the traced graph: the what-if experiments behind the suggested fixes.

Works on a deep copy of the traced GraphModule, so the user's model is never touched.  The copy
of a meta-built model costs no weight memory.
"""

from __future__ import annotations

import copy
from dataclasses import replace

from torch import nn

from rflint.engine.analysis import Analysis, Layer, Prepared
from rflint.errors import RflintError
from rflint.trace.tracing import Traced, to_networkx


def _set_submodule(root: nn.Module, path: str, new: nn.Module) -> None:
    parent_path, _, child = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, child, new)


def without_downsampling(analysis: Analysis, layers: list[Layer]) -> Prepared:
    """Convs get stride 1; pools (whose only job in a stem is downsampling) are removed.

    Works on the graph traced for ``analysis`` (for a shape-specialised trace the changed graph is
    kept as it is rather than re-traced)."""
    prepared = analysis.prepared
    gm = copy.deepcopy(analysis.traced.gm)
    targets = {node.name: node.target for node in gm.graph.nodes if node.op == "call_module"}
    for layer in layers:
        target = targets.get(layer.node)
        if target is None:
            raise RflintError(f"{layer.name} is not a module call; only module layers can be changed")
        module = gm.get_submodule(target)
        if isinstance(module, nn.modules.conv._ConvNd) and not isinstance(module, nn.modules.conv._ConvTransposeNd):
            module.stride = (1,) * len(module.kernel_size)
        elif isinstance(module, (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)):
            _set_submodule(gm, target, nn.Identity())
        else:
            raise RflintError(f"{layer.name} ({type(module).__name__}) cannot be made stride 1 or removed")
    traced = Traced(gm, to_networkx(gm), list(gm.graph.nodes), analysis.traced.method)
    loaded = replace(prepared.loaded, module=gm)
    return Prepared(loaded, traced, prepared.channels, prepared.n_axes, prepared.factory_kwargs)


def describe_change(layer: Layer) -> str:
    if layer.kind == "pool":
        return f"remove {layer.name} ({layer.op} stride {'x'.join(str(int(s)) for s in layer.stride)})"
    return f"{layer.name}: stride {'x'.join(str(int(s)) for s in layer.stride)} -> 1"
