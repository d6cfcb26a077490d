"""einops' functional forms (``rearrange``, ``reduce``, ``repeat``), read from their pattern.

The tracer records them as single ops (trace/tracing.py: they reject proxies).  Their shapes alone
cannot tell a move of the channels from a change of the spatial size (``"n c h w -> n h w c"``
turns 1x24x32x32 into 1x32x32x24), so the pattern decides where every spatial axis goes:

* an axis that stands alone on both sides moves to its new dim (a permute);
* an input axis split into blocks, ``(h p)``, whose block index ``h`` leads an output dim, while
  the in-block offset ``p`` goes anywhere else (into the channels, its own dim, or is reduced): a
  window of p positions with stride p (space-to-depth, or pooling for ``reduce``), like
  PixelUnshuffle (rf-semantics.md §2: the positions of a unit's channels are one unit);
* a new axis after it in its output group, ``(h 2)`` in ``repeat``, or one from the channels,
  ``"b (c p) h w -> b c (h p) w"`` (depth-to-space): nearest upsampling by that factor (r, j/2),
  as for PixelShuffle;
* an axis reduced away, or merged with another input axis (``(h w)``), is gone, as in a reshape
  (ops/tensors.py: every axis gone makes the tensor global).

Anything else (a pattern this does not parse, a list of tensors as input, lengths it cannot
solve) keeps the shape-based inference, with its warning.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Any

from rflint.engine.kernels import blocks, exact
from rflint.engine.ops.context import Ctx, Outcome, shape_of
from rflint.engine.rfstate import AxisRF

_TOKEN = re.compile(r"\.\.\.|…|[()]|[A-Za-z_][A-Za-z0-9_]*|\d+|\S")
_ELLIPSIS = "..."


class _Anonymous:
    """A numeric axis in a pattern, ``(h 2)``: its own axis wherever it is written."""

    def __init__(self, length: int):
        self.length = length


def _side(text: str) -> list[Any] | None:
    """One side of a pattern as dims, each a list of atoms (names, _Anonymous, _ELLIPSIS), or a
    tuple of them for a group in parentheses; a unit axis ``1`` is an empty dim, or nothing inside
    a group.  None when it does not parse."""
    dims: list[list[Any]] = []
    group: list[Any] | None = None
    for token in _TOKEN.findall(text):
        if token == "(":
            if group is not None:
                return None
            group = []
            continue
        if token == ")":
            if group is None:
                return None
            dims.append(tuple(group))  # a tuple: written in parentheses, "(...)" is not "..."
            group = None
            continue
        if token in ("...", "…"):
            atom: Any = _ELLIPSIS
        elif token.isdigit():
            atom = None if token == "1" else _Anonymous(int(token))
        elif token[0].isalpha() or token[0] == "_":
            atom = token
        else:
            return None
        if group is not None:
            if atom is not None:
                group.append(atom)
        else:
            dims.append([] if atom is None else [atom])
    return dims if group is None else None


def _expanded(dims: list[Any], rank: int | None, names: list[str]) -> list[list[Any]] | None:
    """The dims as lists of atoms, the ellipsis replaced by ``names`` (one per dim it covers; the
    left side decides how many: ``rank`` minus its other dims)."""
    out: list[list[Any]] = []
    for group in dims:
        if _ELLIPSIS not in group:
            out.append(list(group))
        elif isinstance(group, list):  # "..." on its own: one dim per covered dim
            out.extend([name] for name in names)
        elif rank is None:  # "(...)" on the output side: the covered dims merged into one
            out.append([x for atom in group for x in (names if atom is _ELLIPSIS else [atom])])
        else:
            return None
    return out


def parse(pattern: str, rank: int) -> tuple[list[list[Any]], list[list[Any]]] | None:
    """(input dims, output dims) of ``pattern`` for an input of ``rank`` dims, or None."""
    left_text, arrow, right_text = pattern.partition("->")
    if not arrow:
        return None
    left, right = _side(left_text), _side(right_text)
    if left is None or right is None:
        return None
    covered = rank - sum(1 for group in left if group != [_ELLIPSIS])
    has_ellipsis = [_ELLIPSIS] in left
    if covered < 0 or (covered and not has_ellipsis):
        return None
    names = [f"{_ELLIPSIS}{i}" for i in range(covered)] if has_ellipsis else []
    left_dims, right_dims = _expanded(left, rank, names), _expanded(right, None, names)
    if left_dims is None or right_dims is None or len(left_dims) != rank:
        return None
    return left_dims, right_dims


def _lengths(left: list[list[Any]], right: list[list[Any]], src: tuple[int, ...], out: tuple[int, ...],
             given: dict[str, Any]) -> dict[Any, int]:
    """Every atom's length the pattern, the keyword lengths and the shapes determine."""
    known: dict[Any, int] = {k: int(v) for k, v in given.items() if isinstance(v, int)}
    for group in left + right:
        for atom in group:
            if isinstance(atom, _Anonymous):
                known[atom] = atom.length
    sides = list(zip(left, src)) + list(zip(right, out))
    changed = True
    while changed:  # each dim's length is the product of its atoms': solve one unknown at a time
        changed = False
        for group, size in sides:
            unknown = [a for a in group if a not in known]
            if len(unknown) == 1:
                rest = math.prod(known[a] for a in group if a in known)
                if rest and size % rest == 0:
                    known[unknown[0]] = size // rest
                    changed = True
    return known


def einops_outcome(ctx: Ctx, kind: str) -> Outcome | None:
    """The RF after ``einops.<kind>(x, pattern, ...)``, or None when the pattern is not understood
    (the caller then infers from shapes)."""
    rf = ctx.rf(ctx.first)
    src, out = shape_of(ctx.val(ctx.first)), shape_of(ctx.out)
    pattern = ctx.arg(1, "pattern")
    if rf is None or rf.is_global or src is None or out is None or not isinstance(pattern, str):
        return None
    parsed = parse(pattern, len(src))
    if parsed is None:
        return None
    left, right = parsed
    if len(right) != len(out):
        return None
    place = {atom: (j, pos) for j, group in enumerate(right) for pos, atom in enumerate(group)}
    # atoms of the input dims that hold a spatial axis: merged with one, an axis is gone; atoms from
    # the channels may follow it (depth-to-space, "b (c p) h w -> b c (h p) w", like PixelShuffle)
    spatial_atoms = {atom for axis in rf.axes for atom in left[len(src) + axis.dim]}
    lengths = _lengths(left, right, src, out, {k: v for k, v in ctx.node.kwargs.items() if k != "reduction"})
    axes, kernels = [], {}  # kernels: input dim -> (window, stride) of the axes that got one
    for axis in rf.axes:
        group = left[len(src) + axis.dim]
        if not group or group[0] not in place:
            continue  # a unit dim, or reduced away: mixed, gone
        lead = group[0]
        j, pos = place[lead]
        target = right[j]
        # the block index must lead its output dim, and share it only with new axes (repeat) or the
        # channels' (depth-to-space); an offset split off it earlier is taken for channels too, so a
        # split merged back counts its window once more than the identity it is
        if pos != 0 or any(a in spatial_atoms for a in target[1:]) or lead not in lengths:
            continue  # merged with another input axis: gone, as in a reshape
        length = lengths[lead]
        window = src[len(src) + axis.dim] // length  # positions per block (the split-off atoms)
        repeat = out[j] // length  # copies per position (the new atoms after it)
        moved = AxisRF(axis.origin, j - len(out), axis.lo, axis.hi)
        if window != 1 or repeat != 1:
            stride = exact(Fraction(window, repeat))
            moved = moved.step(window - 1, stride)
            kernels[axis.dim] = (window, stride)
        axes.append(moved)
    result = rf.with_axes(axes)
    if not kernels:
        return Outcome(result)
    grows = any(window > 1 for window, _ in kernels.values())
    op_kind = "pool" if kind == "reduce" else ("unshuffle" if grows else "upsample")
    return Outcome(result, blocks(f"einops.{kind}", op_kind, kernels))


def einops_kind(target: Any) -> str | None:
    """"rearrange" / "reduce" / "repeat" for einops' functions, else None (by name: einops is
    optional and imported only by the tracer)."""
    if getattr(target, "__module__", None) in ("einops.einops", "einops") and \
            getattr(target, "__name__", None) in ("rearrange", "reduce", "repeat"):
        return target.__name__
    return None
