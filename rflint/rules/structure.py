"""Structural facts the rules share (rf-semantics.md §3-4): layer status, cut tensors, segments,
the tail, the cut and the border layers.  Computed once per analysis, linear in the graph size
(dominators: one pass in topological order, near-linear).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from rflint.engine import Analysis, Layer
from rflint.trace.metaspec import is_tensor_like
from rflint.wording import named

PRODUCTIVE, PARTIAL, UNPRODUCTIVE, HEAD = "productive", "partial", "unproductive", "head"
NEUTRAL = "neutral"
_SOURCE = "__rflint_source__"


def layer_status(layer: Layer, size: tuple[int, ...], use_max: bool = False) -> str:
    """Unproductive iff the input RF exceeds the input size (strict >) on every spatial axis."""
    if layer.head:
        return HEAD
    return status_of(layer.r_in_max if use_max else layer.r_in_min, layer.origins, size)


def status_of(r_in, origins, size: tuple[int, ...]) -> str:
    """:func:`layer_status` from a layer's per-axis input RF and the model-input axis of each."""
    over = within = 0  # spatial axes whose input RF exceeds the input size / does not
    for v, o in zip(r_in, origins):
        if v is not None and o is not None:
            if v > size[o]:
                over += 1
            else:
                within += 1
    if not within:
        return UNPRODUCTIVE if over else HEAD
    return PARTIAL if over else PRODUCTIVE


@dataclass
class Segment:
    """The nodes between two consecutive cut tensors.  Its status (productive / unproductive /
    neutral, rf-semantics.md §4) depends on a layer-status table and is worked out only when the
    tail search asks (:func:`_segment_status`): that search stops at the last productive segment,
    so most segments of a healthy network are never judged."""

    index: int
    entry: str  # cut tensor (fx node name) the segment starts from
    exit: str  # cut tensor it ends at
    nodes: list[str]  # fx nodes in (entry, exit], topological order
    layers: list[Layer]
    parallel: bool  # has more than one path of pixels from entry to exit (a gate's global branch is none)
    inner_preds: list[list[str]] = field(repr=False)  # per node, its predecessors in the segment (entry included)


@dataclass
class Tail:
    cut: str  # fx node name of the cut tensor
    cut_name: str  # the same, as people know it: "layer3.0" (the output of that block)
    segments: list[Segment]
    layers: list[Layer]
    params: int
    macs: int
    border: Layer
    cut_label: str = ""  # the cut as a sentence names it: "layer 3", "relu_3 at models/net.py:19"
    # what is worked out from the tail once and read by several rules and reports (truncation.py's
    # plan: RF002's message and the report's "truncation" entry)
    derived: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def parametric_layers(self) -> list[Layer]:
        return [layer for layer in self.layers if layer.parametric]


@dataclass
class Structure:
    analysis: Analysis
    status: dict[str, str]  # layer name -> status (r_min)
    status_max: dict[str, str]
    cuts: list[str]
    segments: list[Segment]
    relevant: set[str]  # nodes on some input -> output path
    idom: dict[str, str]
    preds: dict[str, list[str]]  # relevant node -> its relevant predecessors
    tail: Tail | None
    tail_max: Tail | None
    position: dict[str, int] = field(repr=False, default_factory=dict)

    @property
    def border(self) -> Layer | None:
        return self.tail.border if self.tail else None

    @property
    def border_max(self) -> Layer | None:
        return self.tail_max.border if self.tail_max else None


def _adjacency(a: Analysis) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Successor and predecessor lists of the graph, as plain dicts (networkx's views build an
    object per lookup, which costs more than the walks below)."""
    succ = {n: list(nbrs) for n, nbrs in a.graph.adjacency()}
    pred: dict[str, list[str]] = {n: [] for n in succ}
    for n, nbrs in succ.items():
        for m in nbrs:
            pred[m].append(n)
    return succ, pred


def _relevant_nodes(a: Analysis, succ: dict[str, list[str]], pred: dict[str, list[str]]) -> set[str]:
    """Nodes on some image-input -> output path that carries pixels (a node without an RF, such
    as ``x.size()``, passes none on)."""
    rf = a.rf
    forward = _reachable(a.inputs, {n: (nbrs if rf.get(n) is not None else []) for n, nbrs in succ.items()})
    forward = {n for n in forward if rf.get(n) is not None or n == a.order[-1]}
    backward = _reachable([a.order[-1]], pred)  # fx always ends a graph with its output node
    return forward & backward


def _reachable(starts: list[str], step) -> set[str]:
    seen, stack = set(starts), list(starts)
    while stack:
        for nxt in step[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _dominators(a: Analysis, preds: dict[str, list[str]]) -> dict[str, str]:
    """Immediate dominators from a virtual source feeding every image input, over the relevant nodes.

    On a DAG visited in topological order every predecessor's dominator is known when a node is
    reached, so one pass suffices: a node's idom is the nearest common dominator of its
    predecessors (Cooper, Harvey & Kennedy's intersect, walking up by dominator-tree depth).

    The walk up takes jump pointers (each node's ``jump`` is an ancestor whose distance follows
    the skew-binary numbers, set in O(1) from the parent's), so one intersect costs O(log depth)
    steps, not the depth: a model that adds its last map to every earlier level (n two-input sums,
    the i-th reaching n - i levels up) cost n^2 / 2 steps, 285 ms at 3200 levels."""
    idom: dict[str, str] = {}
    depth = {_SOURCE: 0}
    jump = {_SOURCE: _SOURCE}

    def add(node: str, parent: str) -> None:
        j = jump[parent]
        jj = jump[j]
        idom[node], depth[node] = parent, depth[parent] + 1
        jump[node] = jj if depth[parent] - depth[j] == depth[j] - depth[jj] else parent

    for src in a.inputs:
        add(src, _SOURCE)
    for node in a.order:
        ps = preds.get(node)
        if not ps or node in idom:
            continue
        if len(ps) == 1:
            d = ps[0]
        elif len(ps) == 2:  # a residual sum, a two-way concatenation
            d = _intersect(ps[0], ps[1], idom, depth, jump)
        else:
            d = _common_dominator(ps, idom, depth)
        add(node, d)
    return idom


def _intersect(u: str, v: str, idom: dict[str, str], depth: dict[str, int], jump: dict[str, str]) -> str:
    """The nearest common dominator of ``u`` and ``v``: the deeper one up to the other's depth, then
    both up together.  A jump's depth depends on the depth alone, so two nodes of one depth jump to
    one depth, and where their jumps differ the answer lies above both."""
    if depth[u] < depth[v]:
        u, v = v, u
    level = depth[v]
    while depth[u] > level:
        u = jump[u] if depth[jump[u]] >= level else idom[u]
    while u != v:
        if jump[u] != jump[v]:
            u, v = jump[u], jump[v]
        else:
            u, v = idom[u], idom[v]
    return u


def _common_dominator(ps: list[str], idom: dict[str, str], depth: dict[str, int]) -> str:
    """The nearest common dominator of three or more nodes: the intersect of each with the answer
    so far, where every node a walk passed is remembered as dominated by the answer (it only moves
    up the tree).  A later node whose walk reaches one of those is dominated too, and its walk stops
    there.  Without that, a concatenation of every level of a chain (n maps, the nth n levels below
    the first) costs n^2 / 2 steps: 160 ms at 1600 levels."""
    d = ps[0]
    under = {d}  # nodes dominated by d
    for p in ps[1:]:
        u, floor = p, depth[d]
        while u not in under and depth[u] > floor:
            under.add(u)
            u = idom[u]
        if u in under:  # u dominates p, d dominates u
            continue
        v = d  # u is not below d: climb both to their nearest common ancestor
        while u != v:
            if depth[u] >= depth[v]:
                u = idom[u]
            else:
                v = idom[v]
                under.add(v)
        d = u
        under.add(d)
    return d


def _cut_chain(a: Analysis, idom: dict[str, str], position: dict[str, int], is_spatial=None) -> list[str]:
    """The spatial tensors on every input->output path, in order.  ``is_spatial``: node name ->
    whether its RF has spatial axes (default the analysis's own RFs; a what-if experiment passes
    its own)."""
    if is_spatial is None:
        rfs = a.rf

        def is_spatial(name: str) -> bool:
            rf = rfs.get(name)
            return rf is not None and rf.spatial

    def chain() -> list[str]:  # the sink's dominators, in topological order
        if a.order[-1] not in idom:  # no receptive field reaches the output: nothing to cut
            return []
        found, node = [], idom[a.order[-1]]
        while node != _SOURCE:
            found.append(node)
            node = idom[node]
        return sorted(found, key=position.__getitem__)

    traced = a.own_trace  # one chain per trace (as _graph_facts)
    dominators = traced.memo(("dominator_chain", tuple(a.inputs)), chain) if traced is not None else chain()
    return [n for n in dominators if is_spatial(n) and _one_tensor(a, n)]


def _spatial(rf) -> bool:
    return rf is not None and rf.spatial


def _one_tensor(a: Analysis, name: str) -> bool:
    """The node's value is one tensor, not a tuple of them (x.chunk(2) keeps the map's RF, but
    a model cannot be cut there: the cut is the map it split)."""
    node = a.traced.node_by_name.get(name) if a.traced is not None else None
    return node is None or is_tensor_like(a.values.get(node))


def _segments(a: Analysis, cuts: list[str], layer_by_node: dict[str, Layer]) -> list[Segment]:
    """The segments between consecutive cut tensors, and from the last one to the output (the
    virtual sink of rf-semantics.md §4) when RF layers lie between them: a model that returns
    several maps (detection heads, deep supervision) branches after its last shared tensor."""
    relevant, _, position, preds = _graph_facts(a)
    rfs = a.rf
    bounds = list(zip(cuts, cuts[1:]))
    if cuts:
        output = a.order[-1]
        after = a.order[position[cuts[-1]] + 1:]
        # any RF layer, pointwise too: two 1x1 output heads are a neutral segment of the tail, as the
        # one 1x1 head of a single-output model is (they fell out of it, and out of min-tail-layers)
        if any(n in relevant and n in layer_by_node and not layer_by_node[n].head for n in after):
            bounds.append((cuts[-1], output))
    segments: list[Segment] = []
    for i, (entry, exit_) in enumerate(bounds):
        lo, hi = position[entry], position[exit_]
        if hi == lo + 1:  # one node (every layer of a plain chain): the general case below, spelled out
            layer = layer_by_node.get(exit_)
            segments.append(Segment(i, entry, exit_, [exit_], [layer] if layer is not None else [], False,
                                    [[p for p in preds[exit_] if p == entry]]))
            continue
        nodes = [n for n in a.order[lo + 1: hi + 1] if n in relevant]
        members = set(nodes) | {entry}
        inner = [[p for p in preds[n] if p in members] for n in nodes]
        # parallel paths of pixels: an SE gate's global branch is modulation (rf-semantics.md §2),
        # which must not end a stem (MobileNetV3's, EfficientNet's first block)
        parallel = any(sum(1 for p in ps if _spatial(rfs.get(p))) > 1 for ps in inner)
        layers = [layer_by_node[n] for n in nodes if n in layer_by_node]
        segments.append(Segment(i, entry, exit_, nodes, layers, parallel, inner))
    return segments


def grows(layer: Layer) -> bool:
    """An expanding layer that can make a segment productive: a window of its own (a conv, a pool, a
    transposed conv).  An interpolating upsample's +j only blends neighbours it was handed, and an
    FCN's last bilinear upsample reads the skips' small r_min: counted, it hid every segmentation
    backbone's tail (README, decisions)."""
    return layer.expanding and layer.kind != "upsample"


def _segment_status(seg: Segment, layer_by_node: dict[str, Layer], status: dict[str, str]) -> str:
    """Productive iff some entry->exit path avoids every unproductive layer and passes a productive
    (or partial) expanding layer; neutral if the segment has no expanding layer at all
    (:func:`_segment_walk`; a one-node segment, every layer of a plain chain, spelled out)."""
    if len(seg.nodes) == 1:
        layer = layer_by_node.get(seg.nodes[0])
        if layer is None or not grows(layer):
            return NEUTRAL
        st = status.get(layer.name)
        if st == UNPRODUCTIVE or not seg.inner_preds[0]:
            return UNPRODUCTIVE
        return PRODUCTIVE if st in (PRODUCTIVE, PARTIAL) else UNPRODUCTIVE
    return _segment_walk(seg, layer_by_node, status)


def _segment_walk(seg: Segment, layer_by_node: dict[str, Layer], status: dict[str, str]) -> str:
    """:func:`_segment_status` for any segment: one pass in topological order over (clean: reached
    avoiding unproductive layers, good: and grown on the way); a node's predecessors in the segment
    were all visited before it."""
    if not any(grows(layer_by_node[n]) for n in seg.nodes if n in layer_by_node):
        return NEUTRAL
    clean = {seg.entry: True}
    good = {seg.entry: False}
    for node, ps in zip(seg.nodes, seg.inner_preds):
        layer = layer_by_node.get(node)
        st = status.get(layer.name) if layer else None
        if st == UNPRODUCTIVE or not ps:
            clean[node] = good[node] = False
            continue
        if len(ps) == 1:
            c, g = clean[ps[0]], good[ps[0]]
        else:
            c, g = any(clean[p] for p in ps), any(good[p] for p in ps)
        clean[node] = c
        good[node] = g or (c and layer is not None and grows(layer) and st in (PRODUCTIVE, PARTIAL))
    return PRODUCTIVE if good.get(seg.exit) else UNPRODUCTIVE


def _tail(a: Analysis, segments: list[Segment], status: dict[str, str], min_tail_layers: int,
          judged: dict[int, str] | None = None, like: Tail | None = None) -> Tail | None:
    """The tail under ``status``.  ``judged``: segment statuses already known under it (filled in
    as segments are judged); ``like``: a tail of the same segments under other statuses, whose
    name, parameters and MACs are this one's too if it starts at the same cut."""
    found = _tail_of(segments, a.layer_by_node, status, min_tail_layers, judged)
    if found is None:
        return None
    tail_segments, layers, border = found
    cut = tail_segments[0].entry
    if like is not None and like.cut == cut:  # the same segments: only the border can differ
        return Tail(cut=cut, cut_name=like.cut_name, segments=tail_segments, layers=layers, params=like.params,
                    macs=like.macs, border=border, cut_label=like.cut_label)
    # (the head can only be in the segment that runs on to the output: the others end at a cut tensor)
    last = tail_segments[-1]
    nodes = [n for seg in tail_segments[:-1] for n in seg.nodes] + (
        _without_head(a, last.nodes) if last.exit == a.order[-1] else last.nodes)
    cut_name = a.tensor_name(cut)
    return Tail(
        cut=cut, cut_name=cut_name, cut_label=named(a.tensor_label(cut, cut_name)), segments=tail_segments, layers=layers,
        params=sum(a.node_params.get(n, 0) for n in nodes), macs=sum(a.node_macs.get(n, 0) for n in nodes),
        border=border,
    )


def _without_head(a: Analysis, nodes: list[str]) -> list[str]:
    """The tail's nodes (topological order) without the head its last segment runs on to: nodes
    whose RF is global and from which no feature map is made again (a CoAtNet's attention stages
    behind one dead 1x1 conv: "the tail holds 1 parametric RF layer, 635,114 params").  A truncation removes
    those too and says so (truncation.py, head_layers_removed).  An SE gate's layers are global as
    well, but they scale a map: they stay, as truncation's _head_weights keeps them."""
    traced = a.own_trace
    if traced is None:
        return nodes
    rfs, by_name = a.node_rf, traced.node_by_name
    feeds_a_map: set[str] = set()
    for name in reversed(nodes):
        node = by_name.get(name)
        # (the output node is no map a head feeds: a model returning a map and the logits has both)
        if node is not None and any(user.name in feeds_a_map or (_spatial(rfs.get(user)) and user.op != "output")
                                    for user in node.users):
            feeds_a_map.add(name)
    return [n for n in nodes if n in feeds_a_map or n not in by_name or not getattr(rfs.get(by_name[n]), "is_global", False)]


def _tail_of(segments: list[Segment], layer_by_node: dict[str, Layer], status: dict[str, str],
             min_tail_layers: int, judged: dict[int, str] | None = None
             ) -> tuple[list[Segment], list[Layer], Layer] | None:
    """The tail's segments, layers and border layer (rf-semantics.md §4), or None, with these RF
    layers and statuses.  Segments are judged only from the output back to the last productive one,
    each at most once (``judged``: segment index -> status, known before or filled in here)."""
    if judged is None:
        judged = {}

    def status_of_segment(i: int) -> str:
        if i not in judged:
            judged[i] = _segment_status(segments[i], layer_by_node, status)
        return judged[i]

    start = len(segments)
    while start > 0 and status_of_segment(start - 1) in (UNPRODUCTIVE, NEUTRAL):
        start -= 1
    while start < len(segments) and status_of_segment(start) == NEUTRAL:
        start += 1  # a tail starts at an unproductive segment
    tail_segments = segments[start:]
    if not tail_segments:
        return None
    # not the layers that read a global tensor inside it (an SE gate's 1x1 convs): no RF layers
    layers = [layer_by_node[n] for seg in tail_segments for n in seg.nodes
              if n in layer_by_node and not layer_by_node[n].head]
    if sum(1 for layer in layers if layer.parametric) < min_tail_layers:
        return None
    unproductive = [layer for layer in layers if status.get(layer.name) == UNPRODUCTIVE]
    border = next((layer for layer in unproductive if layer.parametric), None) or (unproductive[0] if unproductive else None)
    if border is None:
        return None
    return tail_segments, layers, border


def tail_layers_under(s: Structure, is_spatial, layer_by_node: dict[str, Layer], status: dict[str, str],
                      min_tail_layers: int = 1) -> int | None:
    """The number of parametric layers in the tail of ``s``'s graph with other RFs (``is_spatial``:
    node name -> whether its RF there has spatial axes), RF layers and statuses: a what-if
    experiment on the same trace.  None when there is no tail."""
    a = s.analysis
    _, idom, position, _ = _graph_facts(a)
    cuts = _cut_chain(a, idom, position, is_spatial)
    segments = s.segments if cuts == s.cuts else _segments(a, cuts, layer_by_node)
    found = _tail_of(segments, layer_by_node, status, min_tail_layers)
    return None if found is None else sum(1 for layer in found[1] if layer.parametric)


def _fx_relevant(a: Analysis, order) -> tuple[set[str], dict[str, list[str]]]:
    """:func:`_relevant_nodes` (a node without an RF, such as ``x.size()`` or ``x.shape[-2:]``, is
    not on a pixel path: a size read off the input would otherwise be a path around every layer,
    leaving the input as the only cut) and the relevant predecessor lists, read off the fx nodes the DAG was
    built from (tracing.to_networkx: an edge per operand) in three passes in topological order,
    without building the whole graph's adjacency.  Predecessors come in topological order, as the
    networkx DAG lists them."""
    forward = set(a.inputs)
    rfs = a.node_rf
    for node in order:  # a node's producers come before it: one pass finds everything reachable
        if node.name in forward:
            if rfs.get(node) is None and node.op != "output":  # x.size(), x.shape[-2:]: numbers, no pixels
                forward.discard(node.name)
                continue
            for user in node.users:
                forward.add(user.name)
    backward = {order[-1].name}  # fx always ends a graph with its output node
    for node in reversed(order):
        if node.name in backward:
            for src in node.all_input_nodes:
                backward.add(src.name)
    relevant = forward & backward
    preds: dict[str, list[str]] = {n: [] for n in relevant}
    for node in order:
        name = node.name
        if name in relevant:
            for user in node.users:
                found = preds.get(user.name)
                if found is not None:
                    found.append(name)
    return relevant, preds


def _graph_facts(a: Analysis) -> tuple[set[str], dict[str, str], dict[str, int], dict[str, list[str]]]:
    """Relevant nodes, dominators, positions and relevant predecessors: they depend on the graph and
    its image inputs only, so every analysis of one trace (sizes, stem experiments) shares them."""
    traced = a.own_trace

    def compute():
        if traced is not None:
            relevant, preds = _fx_relevant(a, traced.order)
        else:
            succ, pred = _adjacency(a)
            relevant = _relevant_nodes(a, succ, pred)
            preds = {n: [p for p in pred[n] if p in relevant] for n in relevant}
        return relevant, _dominators(a, preds), {n: i for i, n in enumerate(a.order)}, preds

    if traced is None:
        return compute()
    return traced.memo(("structure", tuple(a.inputs)), compute)


def analyse_structure(a: Analysis, min_tail_layers: int = 1) -> Structure:
    size = a.input_size
    status, status_max = {}, {}
    for layer in a.layers:  # by r_max only where it differs (never in a plain chain)
        status[layer.name] = found = layer_status(layer, size)
        status_max[layer.name] = found if layer.r_in_max == layer.r_in_min else layer_status(layer, size, use_max=True)
    relevant, idom, position, preds = _graph_facts(a)
    cuts = _cut_chain(a, idom, position)
    segments = _segments(a, cuts, a.layer_by_node)
    judged: dict[int, str] = {}
    tail = _tail(a, segments, status, min_tail_layers, judged)
    # the tail is a function of the statuses (same segments, same settings): equal tables, one tail;
    # and a segment is a function of its own layers' statuses: where none differs, one judgement
    if status_max == status:
        tail_max = tail
    else:
        differs = {name for name, st in status.items() if status_max[name] != st}
        kept = {i: st for i, st in judged.items() if not any(layer.name in differs for layer in segments[i].layers)}
        tail_max = _tail(a, segments, status_max, min_tail_layers, kept, like=tail)
    return Structure(
        analysis=a, status=status, status_max=status_max, cuts=cuts, segments=segments,
        relevant=relevant, idom=idom, preds=preds, tail=tail, tail_max=tail_max, position=position,
    )


def axis_names(n: int) -> tuple[str, ...]:
    """The input's axes as people name them: L for a signal, H, W for an image, D, H, W for a volume."""
    return {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}.get(n, tuple(f"axis {i}" for i in range(n)))


def unit(input_size) -> str:
    """What a size of this input counts: samples of a 1-D signal, pixels (or voxels) otherwise."""
    return "samples" if len(input_size) == 1 else "px"


def sized(input_size) -> str:
    """The input size as an adjective: "a 32x32 px input", "a 16000-sample input"."""
    return f"{fmt_size(input_size)}-sample" if len(input_size) == 1 else f"{fmt_size(input_size)} px"


def on_input_axes(values: tuple, origins: tuple, n: int) -> list:
    """A layer's per-axis values in the model input's axis order, as the input size they are
    compared with: a transposed map's layer has its kernel axes the other way round, and a 2-D
    conv on a waveform's spectrogram has one axis (frequency) the input does not have."""
    return [next((r for r, o in zip(values, origins) if o == axis), None) for axis in range(n)]


def a_or_an(text: str) -> str:
    """The article for a number as it is read aloud: "an 8x8 map", "an 11-tap", "an 18000-sample",
    "a 1100 px" (eight, eleven, eighteen thousand; but one thousand one hundred)."""
    lead = text[: len(text) - len(text.lstrip("0123456789"))]
    said = lead.startswith("8") or (len(lead) % 3 == 2 and lead[:2] in ("11", "18"))
    return f"{'an' if said else 'a'} {text}"


def fmt_size(values) -> str:
    """(43, 43) -> '43x43'; fractions as decimals, to two places ('5.67', '1327.47': never the
    '1.33e+03' of a fixed number of significant digits, which hid the size of the number)."""
    def one(v) -> str:
        if type(v) is int:  # the common case, without a Fraction
            return str(v)
        if v is None:
            return "-"
        v = Fraction(v)
        return str(v.numerator) if v.denominator == 1 else f"{float(v):.2f}".rstrip("0").rstrip(".")
    return "x".join(one(v) for v in values)
