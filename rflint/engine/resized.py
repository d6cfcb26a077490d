"""What the clean-size search asks at a candidate size: the RF layers' needs, visiting only the
nodes a change of input size can reach.

The replay (replay.py) walks every node: a node keeps the base's RF when its operands do and its
compiled step reads nothing that changed.  With the same modules at another size, almost every
node keeps it: compiled conv, linear and elementwise steps read their operands' RFs alone
(``ops.READS_RF``), so once the operands are the base's, so is the result, whatever the sizes.
Only three kinds of node can differ from the base's, and only they are visited, in topological
order:

* a node with no compiled step (its rule reads shapes: adaptive pools, upsampling, flatten), or a
  pool with an output axis of one pixel here or in the base (its window may read the whole axis),
  whose output or operands have other shapes than in the base: it runs again;
* a compiled merge (``ops.READS_SHAPES``) unless every operand with a spatial RF has exactly the
  output's size on each of its axes at both sizes (replay.lined_up): then it is a plain union of
  the base's operands, else its step runs again;
* any node with an operand whose RF did change: it runs again, and its users are visited in turn
  when its own RF changes.

A node that runs again on the base's operands and shapes gives the base's answer (a rule reads its
node, its operands' RFs and the shapes of both, nothing else), so skipping the others is exact.
tests/test_replay.py compares the needs with those of a probe from scratch, at many sizes, on the
zoo and on random DAGs.
"""

from __future__ import annotations

import dataclasses
import heapq

import torch
import torch.fx as fx

from rflint import declared
from rflint.engine.kernels import KernelOp
from rflint.engine.ops import READS_RF, READS_SHAPES, READS_SIZES
from rflint.engine.replay import lined_up
from rflint.engine.results import Analysis, Layer
from rflint.engine.rfpass import plan_of, run_node, source_of
from rflint.engine.rfstate import layer_axes, widen_need
from rflint.trace import Traced

_MISSING = object()


def needs_resized(traced: Traced, values: dict, image_inputs: list[fx.Node], base: Analysis) -> tuple[int, ...]:
    """Per model-input axis, the smallest size no RF layer's input r_min exceeds, with the shapes
    ``values`` of another input size (a finished shape pass of ``traced``, the trace ``base`` was
    analysed on, with the same modules): what ``program.input_needs`` gives from a probe."""
    facts = _facts(traced, base)
    plan, position, layer_of, base_rfs = facts.plan, facts.position, facts.layer_of, base.node_rf
    changed: dict[fx.Node, object] = {}  # node -> its RF here, where it differs from the base's
    # RF layers (here or in the base) whose numbers may differ from the base's: their kernel here
    # (None: no RF layer here), for those that are an RF layer at one size only or whose input changed
    affected: dict[fx.Node, KernelOp | None] = {}
    queue = list(facts.visits)  # positions, a heap (already sorted)
    queued = set(queue)
    base_values, modules, lined = base.values, base.modules, facts.lined_up
    while queue:
        i = heapq.heappop(queue)
        node, step, reads, operands, _ = plan[i]
        if node.op == "output":
            continue
        moved = False
        for a in operands:
            if a in changed:
                moved = True
                break
        if not moved:
            if reads == READS_RF or (reads == READS_SIZES and step.kernel_only(values)
                                     and step.kernel_only(base_values)):
                continue
            if reads == READS_SHAPES:
                was = lined.get(node)
                if was is None:
                    was = lined[node] = lined_up(node, operands, base_values, base_rfs)
                if was and lined_up(node, operands, values, base_rfs):
                    continue
            elif _same_shapes(node, operands, values, base_values):
                continue
        scratch = {a: changed[a] if a in changed else base_rfs.get(a) for a in operands}
        _, kop, _ = run_node(node, step, modules, values, image_inputs, scratch)
        if (kop is None) != (node not in layer_of) or (kop is not None and source_of(node) in changed):
            affected[node] = kop
        rf = scratch[node]
        if rf != base_rfs.get(node):
            changed[node] = rf
            for user in node.users:
                j = position[user]
                if j not in queued:
                    queued.add(j)
                    heapq.heappush(queue, j)
    if not affected:  # every RF layer here is the base's, with the base's input: the base's needs
        return facts.base_needs()
    return _needs(base, facts, changed, affected)


def _same_shapes(node: fx.Node, operands: tuple[fx.Node, ...], values: dict, base_values: dict) -> bool:
    """The node and its operands have the shapes they had in the base (values without a shape,
    such as numbers, must be equal)."""
    for n in (node, *operands):
        new, old = values.get(n), base_values.get(n)
        if new is not old and _layout(new) != _layout(old):
            return False
    return True


def _layout(value):
    """What a rule can read of a value: a tensor's shape and dtype, the same of each item of a tuple,
    list, dict or dataclass (x.chunk(2), x.split(8), a model's output record: comparing tensors with
    != would compare their elements), a number or anything else as it is."""
    shape = getattr(value, "shape", _MISSING)
    if shape is not _MISSING:
        return (tuple(shape), getattr(value, "dtype", None))
    if isinstance(value, (tuple, list)) and not isinstance(value, torch.Size):
        return (type(value), tuple(_layout(v) for v in value))
    if isinstance(value, dict):
        return (type(value), tuple((k, _layout(v)) for k, v in value.items()))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # a model's output record:
        # its generated __eq__ would compare the tensors in it
        return (type(value), tuple(_layout(getattr(value, f.name, None)) for f in dataclasses.fields(value)))
    return value


def _needs(base: Analysis, facts: _Facts, changed: dict, affected: dict) -> tuple[int, ...]:
    """needs_of at this size: the base's layers but the affected ones, and those from the RFs here.
    (A layer's input r_min and whether it is a head depend on its input's RF alone, so a layer
    whose kernel changed but whose input did not keeps the base's numbers.)"""
    need = [1] * len(base.input_size)
    for node, layer in facts.layer_of.items():
        if node not in affected and not layer.head:
            widen_need(need, layer.r_in_min, layer.origins)
    for node, kop in affected.items():
        src = source_of(node)
        if kop is None or src is None:
            continue
        rf = changed[src] if src in changed else base.node_rf.get(src)
        if rf is not None and not rf.is_global:  # else a head layer: its input is already global
            r_min, _, origins = layer_axes(rf, kop.n)
            widen_need(need, r_min, origins)
    return tuple(need)


class _Facts:
    """What every resized visit of one base reads: the trace's plan, which nodes to visit first,
    and the base's layers."""

    def __init__(self, traced: Traced, base: Analysis):
        self.plan = plan_of(traced)
        self.position: dict[fx.Node, int] = traced.memo("position", lambda: {n: i for i, n in enumerate(traced.order)})
        self.visits: list[int] = traced.memo(("resized_visits", declared.version()), lambda: [
            i for i, (node, _, reads, _, _) in enumerate(self.plan)
            if reads != READS_RF and node.op not in ("placeholder", "get_attr", "output")])  # sorted: a heap
        node_of = traced.node_by_name
        self.layer_of: dict[fx.Node, Layer] = {node_of[layer.node]: layer for layer in base.layers}
        self.lined_up: dict[fx.Node, bool] = base.derived.setdefault("lined_up", {})
        self._base = base
        self._base_needs: tuple[int, ...] | None = None

    def base_needs(self) -> tuple[int, ...]:
        if self._base_needs is None:
            from rflint.engine.program import needs_of  # program imports this module

            self._base_needs = needs_of(self._base)
        return self._base_needs


def _facts(traced: Traced, base: Analysis) -> _Facts:
    found = base.derived.get("resized")
    if found is None:
        found = base.derived["resized"] = _Facts(traced, base)
    return found
