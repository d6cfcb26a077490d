"""The smallest clean input: the smallest size at which no RF layer is unproductive and the model
runs (the report's "no unproductive or partial layer from" line, ``min_input_without_unproductive``
in the JSON).

A search over candidate sizes, each re-checked with the RF program alone (``Prepared.try_needs``,
which replays the analysis's RFs wherever the size cannot change them): the candidate is what the
layers need, raised where the model does not run there.
"""

from __future__ import annotations

from rflint.engine import Analysis
from rflint.engine.program import needs_of
from rflint.engine.size_hints import ALIGN_REACH, first_success, named_divisor, vanishing
from rflint.errors import RflintError
from rflint.trace.size_bound import input_size_bound
from rflint.trace.tracing import VALUE_AWARE


def smallest_clean_input(a: Analysis, max_rounds: int = 8, max_steps: int = 8) -> tuple[int, ...] | None:
    """The smallest input at which no RF layer is unproductive and the model runs (with adaptive
    pools to sizes above 1 before an RF layer: a clean size the re-checks settle on, which need not
    be the smallest, see the README's JSON section).

    Per axis the largest input r_min of any layer is the candidate; it is re-checked at that size
    (shapes, and so adaptive pools, change with the size) until it is stable.  A candidate the model
    cannot run at is raised: each axis on its own when the axes differ (:func:`_per_axis`), else,
    or when that finds nothing, by the same offset on every axis (:func:`_raised`).  None when that
    does not settle, unless the size analysed is clean itself: then that size.  The re-checks run
    the RF program alone (``Prepared.try_needs``), not a whole analysis, reusing this analysis's RFs
    wherever the size cannot change them."""
    if a.prepared is None:
        return None
    need = needs_of(a)
    found = _search(a, need, max_rounds, max_steps)
    if all(n <= s for n, s in zip(need, a.input_size)) and (
            found is None or all(f >= s for f, s in zip(found, a.input_size))):
        # the size analysed is itself free of unproductive layers, and nothing found is smaller on
        # any axis (a model that runs at multiples of 128 only, from far below; one whose Linear
        # fixes W while the search raised every axis together): the answer is never worse than a
        # size known to be clean
        return a.input_size
    return found


def _search(a: Analysis, need: tuple[int, ...], max_rounds: int, max_steps: int) -> tuple[int, ...] | None:
    size = a.input_size
    bound = _Bound(a)
    clean: tuple[int, ...] | None = None  # the smallest size tried that runs and is clean
    limit = a.prepared.probe_limit(a.input_size)
    for _ in range(max_rounds):
        candidate = need
        if candidate == size:
            return candidate
        if max(candidate) > limit:  # needs past any size searched (an adaptive pool's fractional
            return clean            # jump made them 11.6e9 px: torch's storage size overflowed)
        found = _at(a, candidate)
        if isinstance(found, RflintError):
            found = (_per_axis(a, candidate, bound, max_steps) if _uneven(a, candidate) else None) or \
                _raised(a, candidate, found, bound, max_steps)
        if found is None:
            return clean
        size, need = found
        if all(n <= s for n, s in zip(need, size)):
            if size != candidate:
                return size  # raised to a size that runs, and nothing is unproductive there
            if clean is None or max(size) < max(clean):
                clean = size
        # else: the size changed the needs (an adaptive pool's window grows with it): go on from them
    return clean  # the needs did not settle (12 needs 11, 11 needs 12): the clean one of them


Trial = tuple[tuple[int, ...], tuple[int, ...]]  # (size, what it needs), for a size that runs


def _uneven(a: Analysis, candidate: tuple[int, ...]) -> bool:
    """The axes may need raising by different amounts: the candidate or the size analysed differs
    between its axes, or some RF layer treats them differently (a (2, 1) pool, a (7, 1) conv, a
    conv over one axis of the map).  Where the sizes are square and every layer treats the axes
    alike, they line up at the same offset, and the one search for every axis together
    (:func:`_raised`) is the per-axis one at a fraction of the trials: a square U-Net's clean size
    is one search, not three.  (A check of the model's own on one axis that the layers do not
    show, ``W % 10 == 0``, is not seen here: its axes are raised together.)"""
    n = len(candidate)
    if n < 2:
        return False
    if len(set(candidate)) > 1 or len(set(a.input_size)) > 1:
        return True
    axes = tuple(range(n))
    return any(layer.origins != axes or any(len(set(v)) > 1 for v in (layer.kernel, layer.stride, layer.dilation))
               or (layer.padding is not None and len(set(layer.padding)) > 1)
               for layer in a.layers if not layer.head)


def _per_axis(a: Analysis, candidate: tuple[int, ...], bound: _Bound, max_steps: int) -> Trial | None:
    """``candidate`` raised axis by axis: per axis, the smallest size from the candidate's on that
    runs with the other axes at the size analysed (which runs); then those sizes together, if the
    model runs there.

    Where the sizes a model runs at are a choice per axis (a U-Net with strides (2, 1) runs at
    multiples of 4 on H and of 2 on W; a spectrogram model's Linear takes 20 mel bins, any number
    of frames), that is the smallest size from the candidate on that runs, where one offset added
    to every axis finds none (H needs an odd one, W an even one) or raises an axis that ran as it
    was (the frames).  Where the model does not run at those sizes together (it couples its axes),
    each axis is raised from there on its own, and the smallest that runs is taken.  None when an
    axis finds no size, or none of those runs (a Linear over H x W); the caller then raises every
    axis together."""
    size = a.input_size
    sides, ran = [], {}
    for i, c in enumerate(candidate):
        if c == size[i]:
            sides.append(c)
            continue
        alone = size[:i] + (c,) + size[i + 1:]
        reach = size[i] - c if c < size[i] else None  # the size analysed runs: no search past it
        found = _at(a, alone)
        if isinstance(found, RflintError):
            found = _raised(a, alone, found, bound, max_steps, axes=(i,), reach=reach)
        if found is not None:
            ran[found[0]] = found
            sides.append(found[0][i])
        elif reach is not None:
            sides.append(size[i])
        else:
            return None
    together = tuple(sides)
    if together in ran:  # one axis moved: its own trial
        return ran[together]
    found = _at(a, together)
    if not isinstance(found, RflintError):
        return found
    # the sizes do not run together (the model couples its axes: a map reshaped into pairs of
    # units runs where H x W is even): one axis at a time raised from there, the smallest that runs
    raised = [_raised(a, together, found, bound, max_steps, axes=(i,)) for i in range(len(together))]
    raised = [trial for trial in raised if trial is not None]
    return min(raised, key=lambda trial: (sum(trial[0]), trial[0])) if raised else None


class _Bound:
    """Per input axis, a size below which the model certainly does not run (size_bound.py),
    worked out on first use."""

    def __init__(self, a: Analysis):
        self._a, self._sizes, self._known = a, None, False

    def skip(self, candidate: tuple[int, ...]) -> int:
        """The offset below which ``candidate`` + offset certainly does not run (0: none)."""
        if not self._known:
            a = self._a
            if a.traced is not None and a.inputs:
                self._sizes = input_size_bound(a.traced.order, a.traced.modules, a.shapes, a.inputs[0])
            self._known = True
        return max([0] + [b - c for b, c in zip(self._sizes, candidate)]) if self._sizes else 0


def _raised(a: Analysis, candidate: tuple[int, ...], failure: RflintError, bound: _Bound, max_steps: int,
            axes: tuple[int, ...] | None = None, reach: int | None = None) -> Trial | None:
    """The trial at ``candidate`` + d for the smallest offset d > 0 at which the model runs, given
    that it fails at ``candidate`` with ``failure``; None when none is found.  ``axes``: the axes
    the offset is added to (default every axis); ``reach``: the largest offset tried (a size known
    to run lies there), default as far as the search goes.

    Sizes below the vanishing bound (trace/size_bound.py: some map certainly vanishes there) are
    not tried.  From there one pixel at a time, ``max_steps`` - 1 of them; when every failure was a
    vanishing map, running is monotone in the size, and the offset then doubles and is bisected.
    A model's own check that names a multiple ("must be divisible by 2**5") is tried first: each
    axis raised to the next multiple.  Any other failure (a join: the input does not line up with
    the downsampling before it, a U-Net runs only at multiples of 2^depth; a reshape into blocks; a
    check of the model's own that names no multiple) is not known to be monotone: the pixel steps
    go on, up to ``ALIGN_REACH``, then the multiples of 128, 256, ...  The bound (a walk of the
    whole graph) is worked out only when needed: not when the candidate itself fails otherwise
    than by a vanishing map (none vanished before that failure, so the bound is most likely below
    the candidate) unless no pixel step within reach runs."""
    joins = not vanishing(failure)  # (not monotone: a join, most often)
    divisor = named_divisor(failure)
    if divisor is not None:  # the model's own check names the multiple: the next one up per axis
        multiple = _rounded_up(candidate, divisor, axes)
        found = _at(a, multiple) if reach is None or max(m - c for m, c in zip(multiple, candidate)) <= reach else None
        if found is not None and not isinstance(found, RflintError):
            return found
    skip = 0 if joins else bound.skip(candidate)
    d, last = max(skip, 1), skip + (ALIGN_REACH if joins else max_steps - 1)
    if reach is not None:
        last = min(last, reach)
    while d <= last:
        found = _at(a, _shifted(candidate, d, axes))
        if not isinstance(found, RflintError):
            return found
        if not joins and not vanishing(found):
            joins, last = True, d + ALIGN_REACH if reach is None else min(d + ALIGN_REACH, reach)
        d += 1
    if not joins:
        return _smallest_running(a, candidate, d - 1, axes, reach)
    skip = bound.skip(candidate)
    if skip >= d:
        end = skip + ALIGN_REACH if reach is None else min(skip + ALIGN_REACH, reach)
        found = _first_running(a, candidate, range(skip, end + 1), axes)
        if found is not None:
            return found
    return _next_multiple_running(a, candidate, axes) if reach is None else None


def _next_multiple_running(a: Analysis, candidate: tuple[int, ...], axes: tuple[int, ...] | None = None,
                           limit: int = 1 << 14) -> Trial | None:
    """The first of ``candidate`` raised to the next multiple of 128, 256, ... (per axis) that runs:
    a U-Net runs at the multiples of 2^depth only, which for a depth above 6 lie further apart than
    the pixel steps reach.  Where the sizes that run are the multiples of a power of two, the first
    that runs is the smallest size from ``candidate`` on that runs."""
    if a.trace_method.startswith(VALUE_AWARE):  # every trial computes on real tensors: not at 16k px
        return None
    multiple, tried = 2 * ALIGN_REACH, set()
    while multiple <= limit:
        size = _rounded_up(candidate, multiple, axes)
        if max(size) > limit:
            return None
        if size not in tried:  # (the next multiple of 256 may be that of 128)
            tried.add(size)
            found = _runs(a, size)
            if found is not None:
                return found
        multiple *= 2
    return None


def _shifted(size: tuple[int, ...], d: int, axes: tuple[int, ...] | None = None) -> tuple[int, ...]:
    return tuple(s + d if axes is None or i in axes else s for i, s in enumerate(size))


def _rounded_up(size: tuple[int, ...], multiple: int, axes: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """Each of ``axes`` (default every axis) raised to the next multiple of ``multiple``."""
    return tuple(-(-s // multiple) * multiple if axes is None or i in axes else s for i, s in enumerate(size))


def _at(a: Analysis, size: tuple[int, ...]) -> Trial | RflintError:
    """The trial at ``size``, or why the model does not run there."""
    need = a.prepared.try_needs(size, base=a)
    return need if isinstance(need, RflintError) else (size, need)


def _runs(a: Analysis, size: tuple[int, ...]) -> Trial | None:
    found = _at(a, size)
    return None if isinstance(found, RflintError) else found


def _first_running(a: Analysis, candidate: tuple[int, ...], offsets, axes: tuple[int, ...] | None = None
                   ) -> Trial | None:
    for d in offsets:
        found = _runs(a, _shifted(candidate, d, axes))
        if found is not None:
            return found
    return None


def _smallest_running(a: Analysis, candidate: tuple[int, ...], failing: int, axes: tuple[int, ...] | None = None,
                      reach: int | None = None) -> Trial | None:
    """candidate + d for the smallest offset d > ``failing`` (an offset that does not run) that
    runs, when running is monotone in d."""
    # (as far as Prepared.probe_limit lets a search go: not to 16k px on a model traced on real values)
    limit = a.prepared.probe_limit(a.input_size) if reach is None else reach
    found = first_success(lambda d: _runs(a, _shifted(candidate, d, axes)), failing, limit=limit,
                          up_to_limit=reach is not None)
    return found[1] if found else None
