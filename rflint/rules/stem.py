"""The removable-stem experiment (rf-semantics.md §5).

The stem is the RF layers before the first segment with parallel paths (ResNet: conv1 + maxpool);
a purely sequential network has no separate stem.  From the input side we try ever longer
prefixes of its downsampling layers (conv stride -> 1, pool removed) and keep the shortest prefix
that makes the tail disappear, or else the one that shortens it most.

Each candidate re-runs shapes and the RF program at the same input size on the same graph with
those modules replaced (``Prepared.probe``: exact, since shapes and so adaptive pools may change;
the RF program replays the analysis, engine/replay.py, so after the stem it mostly maps the
analysis's states instead of recomputing them), but not the per-layer report: the layers'
statuses come straight from the probe's RFs, and the tail from the segments of the same trace.  A candidate the model cannot run with (a flattened head that
expects the original feature-map size) is not proposed.
"""

from __future__ import annotations

from dataclasses import dataclass

from rflint.engine import Analysis, Layer
from rflint.engine.program import Probe, source_of
from rflint.engine.surgery import describe_change, stride_one
from rflint.errors import RflintError
from rflint.trace.metaspec import first_shape
from rflint.rules.structure import HEAD, Structure, analyse_structure, status_of, tail_layers_under


@dataclass
class StemProposal:
    layers: list[Layer]
    changes: list[str]
    removes_tail: bool
    tail_layers_before: int
    tail_layers_after: int
    macs_before: int
    macs_after: int
    # the spatial size of the model's first output map before and after, when the change makes it
    # another (an image-to-image model: the fix changes what it returns, not only what it costs)
    output_sizes: tuple[tuple[int, ...], tuple[int, ...]] | None = None


# The stem downsamplings tried, from the input (rules/RF003.md): each try is a shape pass over the
# whole graph, and removing more than six (a map 4096 times larger in 2-D) is no fix; without a
# bound a stem of n stride-2 convs cost n passes
MAX_CANDIDATES = 6


def stem_layers(structure: Structure) -> list[Layer]:
    first_parallel = next((seg for seg in structure.segments if seg.parallel), None)
    if first_parallel is None:
        return []
    return [layer for seg in structure.segments[: first_parallel.index] for layer in seg.layers]


def stem_experiment(ctx) -> StemProposal | None:
    s: Structure = ctx.structure
    a: Analysis = ctx.analysis
    if s.tail is None:
        return None
    stem = stem_layers(s)
    if not stem:  # a purely sequential network (VGG) has no separate stem
        return None
    module_nodes = _module_nodes(a)
    candidates = [
        layer for layer in stem
        if layer.kop.downsampling and layer.kind in ("conv", "pool") and layer.node in module_nodes
    ][:MAX_CANDIDATES]
    before = len(s.tail.parametric_layers)
    best: tuple[list[Layer], int | None, Probe] | None = None  # (prefix, tail layers left, its probe)
    for k in range(1, len(candidates) + 1):
        chosen = candidates[:k]
        try:
            probe = a.prepared.probe(a.input_size, replace=stride_one(a, chosen), base=a)
        except RflintError:
            continue
        n_after = tail_layers_after(s, probe, ctx.settings.min_tail_layers)
        if n_after is None:  # no tail left
            best = (chosen, None, probe)
            break
        if n_after < before and (best is None or n_after < best[1]):
            best = (chosen, n_after, probe)
    if best is None:
        return None
    chosen, n_after, probe = best
    return StemProposal(chosen, [describe_change(layer) for layer in chosen], n_after is None, before,
                        n_after or 0, a.macs, probe.macs(), _output_sizes(a, probe))


def _output_sizes(a: Analysis, probe: Probe) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """The spatial size of the first output that is a map, as analysed and as the probe leaves it,
    when they differ (None when they agree, or no output is a map: a classifier's logits)."""
    node_of = a.traced.node_by_name
    for name in a.outputs:
        before, after = first_shape(a.values.get(node_of[name])), first_shape(probe.values.get(node_of[name]))
        if before and after and len(before) >= 3 and len(before) == len(after):
            return (tuple(before[2:]), tuple(after[2:])) if before[2:] != after[2:] else None
    return None


def tail_layers_after(s: Structure, probe: Probe, min_tail_layers: int) -> int | None:
    """Parametric layers in the tail of the analysed graph as ``probe`` left it (None: no tail).
    A layer's status is worked out when the tail search asks for it: the search judges segments
    from the output back to the last productive one, which after a stem change is mostly near the
    output, so most layers are never asked about."""
    a = s.analysis
    layer_by_node: dict[str, Layer] = {}
    sources: dict[str, tuple] = {}  # layer name -> (node, its input, kernel axes), for its status
    for node, kop in probe.kernels.items():
        layer = a.layer_by_node.get(node.name)
        if layer is None:  # an op the shapes made an RF layer only here: judge it by a whole analysis
            return _tail_layers_analysed(a, probe, min_tail_layers)
        layer_by_node[node.name] = layer
        sources[layer.name] = (node, source_of(node), kop.n)
    status = _ProbeStatus(sources, probe.table.layer_input, a.input_size)
    node_of = a.traced.node_by_name
    return tail_layers_under(s, lambda name: probe.is_spatial(node_of[name]), layer_by_node, status, min_tail_layers)


class _ProbeStatus:
    """Layer name -> status in the probe (r_min), each worked out on its first lookup.  Only
    ``get`` (all the tail search uses): anything else it might need one day fails loudly instead
    of seeing a half-filled table."""

    def __init__(self, sources: dict[str, tuple], layer_input, size: tuple[int, ...]):
        self._sources, self._layer_input, self._size = sources, layer_input, size
        self._known: dict[str, str] = {}

    def get(self, name: str, default=None):
        found = self._known.get(name)
        if found is None:
            where = self._sources.get(name)
            if where is None:
                return default
            r_min, origins = self._layer_input(*where)
            found = self._known[name] = HEAD if r_min is None else status_of(r_min, origins, self._size)
        return found


def _tail_layers_analysed(a: Analysis, probe: Probe, min_tail_layers: int) -> int | None:
    after = a.prepared.at(a.input_size, replace=probe.replace)
    tail = analyse_structure(after, min_tail_layers).tail
    return None if tail is None else len(tail.parametric_layers)


def _module_nodes(a: Analysis) -> set[str]:
    return {node.name for node in a.traced.order if node.op == "call_module"}
