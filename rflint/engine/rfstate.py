"""Receptive-field state of a tensor: per spatial axis, Pareto sets of (r, jump) pairs.

Along one input->tensor path the RF size ``r`` and the jump ``j`` (product of strides) evolve by
``r' = r + g*j, j' = j*s`` with ``g >= 0, s > 0``.  The final ``r`` is therefore non-decreasing in
both the ``r`` and the ``j`` of any intermediate state.  So for the *minimum* over all paths only
states that are not dominated from below (no other state with smaller-or-equal r and j) can matter,
and symmetrically for the maximum.  Keeping the two Pareto frontiers per tensor gives exactly the
same r_min / r_max as enumerating every path, in time linear in the graph (frontiers stay tiny).

Jumps are ``Fraction``s because upsampling divides them; r is a Fraction too (it stays an integer
unless a fractional jump meets a kernel).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Iterable, NamedTuple

State = tuple[Fraction, Fraction]  # (r, j)

# ``built(AxisRF, (origin, dim, lo, hi))`` / ``built(TensorRF, (axes, is_global, d_min, d_max))``,
# every field given: a NamedTuple's generated ``__new__`` is a Python function that costs about
# twice the tuple it builds, and the RF program builds one AxisRF per axis and one TensorRF per
# node on every pass, replay and probe, so the hot paths build them this way.
built = tuple.__new__


def pareto_min(states: Iterable[State]) -> tuple[State, ...]:
    """States not dominated from below (keeps the smallest r for every smaller j)."""
    if type(states) is tuple:
        if len(states) == 1:  # the common case: nothing to sort
            return states
        if len(states) == 2:  # a merge of two single-state frontiers: the loop below, unrolled
            a, b = states
            if b < a:
                a, b = b, a
            return (a, b) if b[1] < a[1] else (a,)
    out: list[State] = []
    for r, j in sorted(set(states)):
        if not out or j < out[-1][1]:
            out.append((r, j))
    return tuple(out)


def pareto_max(states: Iterable[State]) -> tuple[State, ...]:
    """States not dominated from above (keeps the largest r for every larger j)."""
    if type(states) is tuple:
        if len(states) == 1:
            return states
        if len(states) == 2:
            a, b = states
            if a < b:
                a, b = b, a
            return (a, b) if b[1] > a[1] else (a,)
    out: list[State] = []
    for r, j in sorted(set(states), reverse=True):
        if not out or j > out[-1][1]:
            out.append((r, j))
    return tuple(out)


class AxisRF(NamedTuple):
    """The RF of one spatial axis of a tensor (immutable: states are shared between tensors; a
    NamedTuple rather than a frozen dataclass because the RF program builds one per axis per node
    and a frozen dataclass's ``__init__`` costs several times a tuple's).

    ``origin`` is the index of the model-input axis this axis descends from (so per-axis input
    sizes apply even after axes were reduced away or permuted); ``dim`` is its position in the
    tensor counted from the end (-1 = last dim), which survives changes of the batch/channel dims.
    """

    origin: int
    dim: int
    lo: tuple[State, ...]  # Pareto-min frontier: lo[0][0] is r_min
    hi: tuple[State, ...]  # Pareto-max frontier: hi[0][0] is r_max

    @property
    def r_min(self) -> Fraction:
        return self.lo[0][0]

    @property
    def r_max(self) -> Fraction:
        return self.hi[0][0]

    def step(self, grow: Fraction, scale: Fraction) -> "AxisRF":
        """Apply one kernel-like op: r += grow*j, j *= scale."""
        lo, hi = self.lo, self.hi
        if len(lo) == 1 and len(hi) == 1:  # the common case: one state each, nothing to prune
            (r, j), (r2, j2) = lo[0], hi[0]
            low = ((r + grow * j, j * scale),)
            return built(AxisRF, (self.origin, self.dim, low, low if hi is lo else ((r2 + grow * j2, j2 * scale),)))
        # (tuples, not generators: the frontiers are usually single states, see pareto_min)
        return built(AxisRF, (
            self.origin, self.dim,
            pareto_min(tuple([(r + grow * j, j * scale) for r, j in self.lo])),
            pareto_max(tuple([(r + grow * j, j * scale) for r, j in self.hi])),
        ))

    @staticmethod
    def union(axes: list["AxisRF"], dim: int) -> "AxisRF":
        # tuples, not generators: pareto_min/max take their one- and two-state fast paths on them
        return built(AxisRF, (axes[0].origin, dim, pareto_min(tuple([s for a in axes for s in a.lo])),
                              pareto_max(tuple([s for a in axes for s in a.hi]))))


class TensorRF(NamedTuple):
    """RF of a tensor derived from the model input (immutable, a NamedTuple like :class:`AxisRF`).

    ``axes`` empty and ``is_global`` set: every unit sees the whole input (after global pooling,
    flattening, attention ...).  Tensors that do not depend on the input at all (weights, constants,
    shapes) have no TensorRF (``None``).  ``d_min``/``d_max``: fewest/most parametric layers on any
    input->tensor path.
    """

    axes: tuple[AxisRF, ...]
    is_global: bool = False
    d_min: int = 0
    d_max: int = 0

    @staticmethod
    def for_input(n_axes: int, origins: Iterable[int] | None = None) -> "TensorRF":
        origins = tuple(origins) if origins is not None else tuple(range(n_axes))
        found = _INPUT_RFS.get((n_axes, origins))
        if found is None:  # immutable, so one per (rank, origins) serves every pass and probe
            base = ((1, 1),)  # ints: see kernels.exact
            found = _INPUT_RFS[n_axes, origins] = TensorRF(
                tuple(AxisRF(o, -n_axes + i, base, base) for i, o in enumerate(origins)))
        return found

    @property
    def spatial(self) -> bool:
        return bool(self.axes)

    def to_global(self) -> "TensorRF":
        return built(TensorRF, ((), True, self.d_min, self.d_max))

    def axis_at(self, dim: int) -> AxisRF | None:
        for axis in self.axes:
            if axis.dim == dim:
                return axis
        return None

    def with_axes(self, axes: Iterable[AxisRF]) -> "TensorRF":
        axes = tuple(sorted(axes, key=lambda a: a.dim))
        if not axes:
            return self.to_global()
        return built(TensorRF, (axes, False, self.d_min, self.d_max))

    def deeper(self, by: int) -> "TensorRF":
        return built(TensorRF, (self.axes, self.is_global, self.d_min + by, self.d_max + by))


_INPUT_RFS: dict[tuple, TensorRF] = {}  # (rank, origins) -> a model input's RF
_NONE: dict[int, tuple] = {}  # n -> ((None,) * n,) * 3: layer_axes for a tensor with no spatial axes


def layer_axes(rf: TensorRF | None, n: int) -> tuple[tuple, tuple, tuple]:
    """(r_min, r_max, model-input axis) per kernel axis (the last n dims) of a tensor's RF, None on
    axes that are not spatial.  The common case, spatial axes exactly the kernel's (dims -n..-1),
    reads them in order without a per-dim table."""
    axes = rf.axes if rf is not None else ()
    if n == 2 and len(axes) == 2:  # a 2-D map's two axes (most layers of most models), unrolled
        y, x = axes
        if y.dim == -2 and x.dim == -1:
            return (y.lo[0][0], x.lo[0][0]), (y.hi[0][0], x.hi[0][0]), (y.origin, x.origin)
    if len(axes) == n and n and axes[0].dim == -n and axes[-1].dim == -1 and (
            n < 3 or all(a.dim == i - n for i, a in enumerate(axes))):
        return (tuple([a.lo[0][0] for a in axes]), tuple([a.hi[0][0] for a in axes]),
                tuple([a.origin for a in axes]))
    if axes:
        by_dim = {axis.dim: axis for axis in axes}
        per = [by_dim.get(i - n) for i in range(n)]
        return (tuple([a.lo[0][0] if a is not None else None for a in per]),
                tuple([a.hi[0][0] if a is not None else None for a in per]),
                tuple([a.origin if a is not None else None for a in per]))
    none = _NONE.get(n)
    if none is None:
        none = _NONE[n] = ((None,) * n,) * 3
    return none


def axes_by_origin(rf: TensorRF | None, origins: tuple) -> tuple[tuple, tuple]:
    """(r_min, r_max) of ``rf``'s axes that descend from ``origins`` (model-input axes, in that
    order), None where there is none: a layer's output read by its input's axes, for an op that
    moves them (a reshape into blocks, an einops pattern)."""
    by_origin = {axis.origin: axis for axis in (rf.axes if rf is not None else ())}
    found = [by_origin.get(o) if o is not None else None for o in origins]
    return (tuple([a.lo[0][0] if a is not None else None for a in found]),
            tuple([a.hi[0][0] if a is not None else None for a in found]))


def widen_need(need: list[int], r_min: tuple | None, origins: tuple) -> None:
    """Raise ``need`` (per model-input axis, the smallest input size no RF layer's input r_min
    exceeds) to cover one RF layer's input r_min: ``layer_axes``' r_min and origins, None on axes
    that are not spatial, or r_min None for a head layer (its input is already global)."""
    for r, origin in zip(r_min or (), origins):
        if r is not None and origin is not None:
            need[origin] = max(need[origin], r if type(r) is int else math.ceil(r))
