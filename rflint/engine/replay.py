"""The RF pass again with another input size or other stem modules, reusing what cannot change.

The clean-size search (report/clean_size.py) re-checks candidate sizes, and the stem experiment
(rules/stem.py) re-runs the model with some stem layers at stride 1: shapes there, then the RF
pass.  Both start from a finished analysis of the same trace (the *base*), and most nodes' RFs
follow from the base's without running their rules:

* A node is **same** (its RF is the base's) when its operands are and its transfer provably reads
  nothing that changed: compiled conv, linear and elementwise steps read the operand's RF alone
  (``ops.READS_RF``); compiled merges read shapes only to tell broadcast (gate) operands and
  layout changes apart (``ops.READS_SHAPES``), neither of which occurs when every operand with a
  spatial RF has exactly the output's size on each of its axes, at both sizes.  Pool steps read
  sizes (``ops.READS_SIZES``: a window may read a whole axis), and count as reading RFs alone where
  no output axis has one pixel at either size.
* A node is **mapped** when its RF is the image of the base's under one affine map per input axis,
  ``r -> offset + scale*r, j -> scale*j``.  Along a path ``r = 1 + sum g_i*J_i`` with ``J_i`` the
  product of the strides before layer i, so changing the strides of layers every path passes (a
  stem) maps each later (r, j) state by such a map.  It commutes with every kernel step
  (``r + g*j, j*s``) and, being increasing in r and j, with Pareto unions; so the compiled steps
  that keep a node *same* keep it *mapped*.  The map is read off the first node at or after the
  last changed module whose RF changed (one state per axis), is checked against that node's whole
  RF before anything counts as mapped, and from then on is fixed.
* Every other node runs as in the RF pass (``rfpass.run_node``) on its operands' RFs; when the
  result equals the base's (or its image), reuse goes on after it (a global pool, a flatten).

So the answer is the RF pass's own; tests/test_replay.py compares the two, node by node, on the zoo
and on random DAGs, at other sizes and with stem layers changed.  Mapped RFs are built only when
asked for (``RFTable.rf``): the experiments read a few (the RF layers' inputs, the cut tensors).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import torch.fx as fx

from rflint.engine.kernels import KernelOp, exact
from rflint.engine.ops import READS_RF, READS_SHAPES, READS_SIZES
from rflint.engine.results import Analysis
from rflint.engine.rfpass import plan_of, run_node

_REUSABLE = (READS_RF, READS_SHAPES)  # the steps whose reuse is decided here without running them
from rflint.engine.rfstate import AxisRF, TensorRF, built, layer_axes
from rflint.trace import Traced
from rflint.trace.metaspec import is_tensor_like

_MISSING = object()
_SAME, _MAPPED = 1, 2

# model-input axis -> (s, o, d), integers: r -> (o + s*r) / d, j -> s*j / d (scale s/d, offset o/d);
# integers because Fraction arithmetic costs microseconds an operation, and the states are ints
Affine = dict[int, tuple[int, int, int]]


class RFTable:
    """Every node's RF after an RF pass, as a probe keeps it: the built ones in ``built``; after a
    replay, the mapped ones as the base's RF and the map, built only when asked for."""

    def __init__(self, built: dict, mapped: set | None = None, base_rfs: dict | None = None,
                 affine: Affine | None = None):
        self.built, self._mapped, self._base, self._affine = built, mapped or set(), base_rfs or {}, affine
        self.replayed = base_rfs is not None
        # RF-layer node -> the base's Layer, for the nodes a replay kept *same* (their input RF is
        # the base's, so :meth:`layer_input` reads the base's numbers instead of the RF) and for
        # those it *mapped* (their input RF is the image of the base's: the base's numbers, mapped)
        self.same_layers: dict = {}
        self.mapped_layers: dict = {}

    def rf(self, node: fx.Node) -> TensorRF | None:
        found = self.built.get(node, _MISSING)
        if found is not _MISSING:
            return found
        if node in self._mapped:
            found = self.built[node] = _image(self._base[node], self._affine)
            return found
        return None

    def r_min(self, node: fx.Node, n: int) -> tuple[tuple | None, tuple]:
        """(r_min per kernel axis, model-input axis of each) of the node as an RF layer's input,
        (None, ()) when it has no states (a head layer's input); a mapped node's without building
        its RF."""
        rf = self.built.get(node, _MISSING)
        mapped = rf is _MISSING and node in self._mapped
        if rf is _MISSING:
            rf = self._base.get(node) if mapped else None
        if rf is None or rf.is_global:
            return None, ()
        r_min, _, origins = layer_axes(rf, n)
        return (self._mapped_r_min(r_min, origins) if mapped else r_min), origins

    def layer_input(self, node: fx.Node, src: fx.Node | None, n: int) -> tuple[tuple | None, tuple]:
        """:meth:`r_min` of RF layer ``node``'s input ``src``: the base layer's own numbers when the
        replay kept the layer *same* (its operands' RFs are the base's objects)."""
        layer = self.same_layers.get(node)
        if layer is not None:
            return (None, ()) if layer.head else (layer.r_in_min, layer.origins)
        layer = self.mapped_layers.get(node)
        if layer is not None:  # r_min is increasing in r: the image's minimum is the minimum's image
            return (None, ()) if layer.head else (self._mapped_r_min(layer.r_in_min, layer.origins), layer.origins)
        return self.r_min(src, n) if src is not None else (None, ())

    def _mapped_r_min(self, r_min: tuple, origins: tuple) -> tuple:
        """Per-axis r_min of a base RF, under the replay's map (None stays None: not spatial)."""
        affine = self._affine
        return tuple([r if r is None else _mapped_r(affine.get(o), r) for r, o in zip(r_min, origins)])

    def is_spatial(self, node: fx.Node) -> bool:
        rf = self.built.get(node, _MISSING)
        if rf is _MISSING:
            rf = self._base.get(node) if node in self._mapped else None  # a map keeps the axes
        return rf is not None and bool(rf.axes)

    def maps(self) -> dict[int, tuple[Fraction, Fraction]]:
        """The affine map per model-input axis, as (scale, offset)."""
        return {o: (Fraction(s, d), Fraction(off, d)) for o, (s, off, d) in (self._affine or {}).items()}

    def all(self) -> dict[fx.Node, TensorRF | None]:
        """Every node's RF, built (tests and callers that want a plain dict)."""
        for node in list(self._mapped):
            self.rf(node)
        return dict(self.built)


def replay(traced: Traced, modules: dict, values: dict, image_inputs: list[fx.Node], base: Analysis,
           replaced: frozenset[str] = frozenset()) -> tuple[RFTable, dict[fx.Node, KernelOp]]:
    """Every node's RF at the sizes of ``values`` with ``modules`` and the kernel of every RF layer
    there, as ``rf_pass`` would give them.  ``base``: the finished analysis of the same trace, run
    with the trace's own modules; ``replaced``: the module paths whose modules differ from it."""
    old_rfs, old_values, old_layers = base.node_rf, base.values, base.layer_by_node
    plan = plan_of(traced)
    last_changed = (max((i for i, (_, _, _, _, target) in enumerate(plan) if target in replaced), default=-1)
                    if replaced else -1)  # another size, the same modules: nothing changed
    built: dict[fx.Node, TensorRF | None] = {}
    kernels: dict[fx.Node, KernelOp] = {}
    kind: dict[fx.Node, int] = {}  # _SAME / _MAPPED; absent: built from scratch
    affine: Affine | None = None
    result = RFTable(built, set(), old_rfs, None)
    mapped, same_layers, mapped_layers = result._mapped, result.same_layers, result.mapped_layers
    base_lined: dict[fx.Node, bool] = base.derived.setdefault("lined_up", {})  # the base's sizes: once per base

    def _base_lined_up(node: fx.Node, operands: tuple[fx.Node, ...]) -> bool:
        found = base_lined.get(node)
        if found is None:
            found = base_lined[node] = lined_up(node, operands, old_values, old_rfs)
        return found

    # the base's nodes with states (a node without: None or global, is its own image under a map)
    stateful = base.derived.get("stateful")
    if stateful is None:
        stateful = base.derived["stateful"] = {n for n, rf in old_rfs.items() if rf is not None and rf.axes}
    for i, (node, step, reads, operands, target) in enumerate(plan):
        if reads == READS_SIZES and step.kernel_only(values) and step.kernel_only(old_values):
            reads = READS_RF  # a pool whose window reads no whole axis at either size: its kernel's answer
        if reads in _REUSABLE and not (replaced and target in replaced):
            if len(operands) == 1:  # the commonest node: its operand's relation, if it has states
                k = kind.get(operands[0])
                relation: int | None = k if k is None or operands[0] in stateful else _SAME
            else:
                relation = _SAME
                with_states = False  # some operand with states is the base's
                for a in operands:
                    k = kind.get(a)
                    if k is None:
                        relation = None
                        break
                    if a in stateful:
                        if k == _MAPPED:
                            relation = _MAPPED
                        else:
                            with_states = True
                if relation == _MAPPED and with_states:
                    relation = None  # the base's states merged with mapped ones: not one map's image
            if relation is not None and (reads == READS_RF or (
                    _base_lined_up(node, operands) and lined_up(node, operands, values, old_rfs))):
                if relation == _SAME:
                    built[node] = old_rfs[node]
                else:
                    mapped.add(node)
                kind[node] = relation
                # a compiled conv or pool of the base's module (only module steps make kernels): the same kernel
                layer = old_layers.get(node.name) if target is not None else None
                if layer is not None:
                    kernels[node] = layer.kop
                    (same_layers if relation == _SAME else mapped_layers)[node] = layer
                continue
        for a in operands:  # the rule reads its operands' RFs: build the mapped ones
            if kind.get(a) == _MAPPED:
                result.rf(a)
        _, kop, _ = run_node(node, step, modules, values, image_inputs, built)
        if kop is not None:
            kernels[node] = kop
        new, old = built[node], old_rfs.get(node, _MISSING)
        if new == old:
            kind[node] = _SAME
        elif old is not _MISSING and old is not None and new is not None:
            if affine is None and i >= last_changed >= 0:
                affine = result._affine = _affine_between(old, new)
            if affine is not None and new == _image(old, affine):
                kind[node] = _MAPPED
    return result, kernels


def _affine_between(old: TensorRF, new: TensorRF) -> Affine | None:
    """The per-axis map taking ``old``'s r_min state to ``new``'s, when both have one (r, j) state
    per frontier on the same axes and depths; else None.  (The caller checks that it takes the
    whole RF there, r_max included, before it counts anything as mapped.)"""
    if old.is_global or len(old.axes) != len(new.axes) or (old.d_min, old.d_max) != (new.d_min, new.d_max):
        return None
    affine: Affine = {}
    for a, b in zip(old.axes, new.axes):
        if (a.origin, a.dim) != (b.origin, b.dim) or len(a.lo) != 1 or len(a.hi) != 1 or len(b.lo) != 1 or len(b.hi) != 1:
            return None
        (r, j), (r2, j2) = a.lo[0], b.lo[0]
        scale = Fraction(j2) / j
        offset = r2 - scale * r
        d = math.lcm(scale.denominator, offset.denominator)
        m = (scale.numerator * (d // scale.denominator), offset.numerator * (d // offset.denominator), d)
        if affine.get(a.origin, m) != m:
            return None
        affine[a.origin] = m
    return affine


def _image(rf: TensorRF | None, affine: Affine | None) -> TensorRF | None:
    if rf is None or not rf.axes or affine is None:
        return rf
    axes = []
    for a in rf.axes:
        m = affine.get(a.origin)
        if m is None:
            axes.append(a)
            continue
        lo = tuple([_mapped(m, r, j) for r, j in a.lo])
        hi = lo if a.hi == a.lo else tuple([_mapped(m, r, j) for r, j in a.hi])
        axes.append(built(AxisRF, (a.origin, a.dim, lo, hi)))
    return built(TensorRF, (tuple(axes), rf.is_global, rf.d_min, rf.d_max))


def _mapped(m: tuple[int, int, int], r, j) -> tuple:
    s, o, d = m
    return _ratio(o + s * r, d), _ratio(s * j, d)


def _mapped_r(m: tuple[int, int, int] | None, r):
    if m is None:
        return r
    s, o, d = m
    return _ratio(o + s * r, d)


def _ratio(x, d: int):
    """x / d, an int when whole; integer arithmetic for the common integer x."""
    if type(x) is int:
        q, rest = divmod(x, d)
        return q if not rest else Fraction(x, d)
    return exact(Fraction(x) / d)


def lined_up(node: fx.Node, operands: tuple[fx.Node, ...], values: dict, rfs: dict) -> bool:
    """Every operand with a spatial RF has exactly the output's size on each of its RF axes (so no
    operand is broadcast and the layout is kept: the compiled merge is then a union of RFs)."""
    out = values.get(node)
    if not is_tensor_like(out):
        return False
    out_shape: Any = out.shape
    rank = len(out_shape)
    for a in operands:
        rf = rfs.get(a)
        if rf is None or not rf.axes:
            continue
        value = values.get(a)
        if not is_tensor_like(value):
            return False
        shape = value.shape
        for axis in rf.axes:
            d = axis.dim
            if -d > len(shape) or -d > rank or shape[d] != out_shape[d]:
                return False
    return True
