"""Kernel-like ops (RF layers): how each one changes (r, j) per axis, from rf-semantics.md §2.

A :class:`KernelOp` describes one RF layer over the last ``n`` dims of its input: the per-axis
``grow`` (r += grow * j) and ``scale`` (j *= scale), plus what the report shows (kernel, stride,
dilation) and what the dead-tap rule needs (padding).  This module only builds KernelOps from
module attributes / function arguments and shapes; applying them is the program's job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache
from fractions import Fraction
from typing import Sequence

ONE = Fraction(1)


def exact(x) -> int | Fraction:
    """An int when whole: the RF program does its arithmetic on these, and int arithmetic is many
    times faster than Fraction's; Fractions remain only where upsampling makes a jump fractional."""
    if type(x) is int:
        return x
    x = Fraction(x)
    return x.numerator if x.denominator == 1 else x


@dataclass(frozen=True)
class KernelOp:
    op: str  # what the user wrote: "Conv2d", "F.max_pool2d", "Upsample(bilinear)" ...
    kind: str  # conv | pool | transposed | adaptive | upsample | shuffle | unshuffle | slice | unfold | inferred
    kernel: tuple[int, ...]
    stride: tuple[int | Fraction, ...]  # ints when whole, like grow and scale
    dilation: tuple[int, ...]
    grow: tuple[int | Fraction, ...]
    scale: tuple[int | Fraction, ...]
    padding: tuple[int, ...] | None = None  # per axis, for dead kernel taps (convs and pools)
    zero_padding: bool = True  # padding_mode 'zeros': padded taps read nothing real
    parametric: bool = False

    def __post_init__(self):
        object.__setattr__(self, "stride", tuple(exact(s) for s in self.stride))
        object.__setattr__(self, "grow", tuple(exact(g) for g in self.grow))
        object.__setattr__(self, "scale", tuple(exact(x) for x in self.scale))

    # derived facts, each worked out once per op (ops are cached per configuration and shared by
    # every layer of that configuration; cached_property writes the instance dict directly, which a
    # frozen dataclass allows)
    @cached_property
    def n(self) -> int:
        return len(self.kernel)

    @cached_property
    def expanding(self) -> bool:
        """k_eff > 1 on some axis (rf-semantics.md §3), or an interpolating upsample.  A transposed
        conv counts by its kernel as the spec says, also where each output unit reads one input
        unit (k = s = 2, U-Net's up-conv, which adds nothing to r): its segment in a decoder is
        productive, not neutral, so a decoder after an unproductive block is no tail."""
        if self.kind == "transposed":
            return any(d * (k - 1) + 1 > 1 for k, d in zip(self.kernel, self.dilation))
        return any(g > 0 for g in self.grow)

    @cached_property
    def downsampling(self) -> bool:
        return any(s > 1 for s in self.stride)


def per_axis(value, n: int, name: str = "") -> tuple:
    """Expand an int / 1-tuple / n-tuple argument to n per-axis values (torch's _ntuple rules)."""
    if isinstance(value, (list, tuple)):
        if len(value) == 1:
            return tuple(value) * n
        if len(value) != n:
            raise ValueError(f"{name} has {len(value)} values for {n} spatial axes")
        return tuple(value)
    return (value,) * n


def windowed(op: str, kind: str, kernel: Sequence[int], stride: Sequence, dilation: Sequence[int],
             padding: Sequence[int] | None, parametric: bool, zero_padding: bool = True) -> KernelOp:
    """Conv / pool: (r + (k_eff-1)*j, j*s) with k_eff = d*(k-1)+1."""
    key = (op, kind, tuple(kernel), tuple(stride), tuple(dilation), None if padding is None else tuple(padding),
           parametric, zero_padding)
    try:
        return _windowed(*key)
    except TypeError:  # an unhashable argument (a tensor as stride ...): build it uncached
        return _windowed.__wrapped__(*key)


@lru_cache(maxsize=4096)  # a network has few distinct layer configurations; KernelOps are immutable
def _windowed(op: str, kind: str, kernel: tuple, stride: tuple, dilation: tuple, padding: tuple | None,
              parametric: bool, zero_padding: bool) -> KernelOp:
    k_eff = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    return KernelOp(
        op, kind, tuple(int(k) for k in kernel), tuple(Fraction(s) for s in stride),
        tuple(int(d) for d in dilation),
        grow=tuple(Fraction(k - 1) for k in k_eff),
        scale=tuple(Fraction(s) for s in stride),
        padding=None if padding is None else tuple(int(p) for p in padding),
        zero_padding=zero_padding,
        parametric=parametric,
    )


def transposed(op: str, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
               parametric: bool) -> KernelOp:
    """One output unit of a transposed conv reads at most ceil(k_eff/s) neighbouring input units."""
    grow = []
    for k, s, d in zip(kernel, stride, dilation):
        k_eff = d * (k - 1) + 1
        grow.append(Fraction(math.ceil(k_eff / s) - 1))
    return KernelOp(
        op, "transposed", tuple(kernel), tuple(1 / Fraction(s) for s in stride), tuple(dilation),
        grow=tuple(grow), scale=tuple(1 / Fraction(s) for s in stride), parametric=parametric,
    )


def adaptive(op: str, n_in: Sequence[int], n_out: Sequence[int]) -> KernelOp:
    """Adaptive pooling from n to o: window max_i(ceil((i+1)n/o) - floor(i n/o)), stride n/o."""
    # cached like _windowed: the window scan and the Fractions cost ~20 us, and every analysis and
    # what-if probe of a model asks for the same few (sizes in, sizes out)
    return _adaptive(op, tuple(n_in), tuple(n_out))


@lru_cache(maxsize=4096)
def _adaptive(op: str, n_in: tuple[int, ...], n_out: tuple[int, ...]) -> KernelOp:
    kernel, stride = [], []
    for n, o in zip(n_in, n_out):
        window = max(-((-(i + 1) * n) // o) - (i * n) // o for i in range(o))
        kernel.append(window)
        stride.append(Fraction(n, o))
    return KernelOp(
        op, "adaptive", tuple(kernel), tuple(stride), (1,) * len(kernel),
        grow=tuple(Fraction(k - 1) for k in kernel), scale=tuple(stride),
    )


# extra taps (in units of the input jump) an interpolation mode reads around the nearest unit
_INTERPOLATION_GROW = {"nearest": 0, "nearest-exact": 0, "linear": 1, "bilinear": 1, "trilinear": 1, "bicubic": 3}


# antialiased downsampling (F.interpolate(..., antialias=True), f < 1) stretches the filter by 1/f:
# one output unit reads about width/f input units (the triangle filter spans 2 units, the cubic 4)
_ANTIALIAS_WIDTH = {"bilinear": 2, "bicubic": 4}


def interpolation(op: str, mode: str, n_in: Sequence[int], n_out: Sequence[int], antialias: bool = False
                  ) -> KernelOp | None:
    """Upsample / interpolate by the factor the shapes show: nearest (r, j/f), linear (r+j, j/f), ...;
    antialiased downsampling by f < 1 reads ceil(width/f) units: (r + (ceil(width/f)-1)*j, j/f)."""
    return _interpolation(op, mode, tuple(n_in), tuple(n_out), bool(antialias))  # cached: see adaptive()


@lru_cache(maxsize=4096)
def _interpolation(op: str, mode: str, n_in: tuple[int, ...], n_out: tuple[int, ...], antialias: bool = False
                   ) -> KernelOp | None:
    if mode == "area":  # area interpolation is adaptive average pooling
        return adaptive(op, n_in, n_out)
    if mode not in _INTERPOLATION_GROW:
        return None
    factor = [Fraction(o, n) for n, o in zip(n_in, n_out)]
    # an axis the op leaves at its size is copied unchanged, whatever the mode: every output unit
    # sits exactly on an input unit (an anisotropic Upsample(scale_factor=(1, 2, 2)), a resize to
    # the size a map already has)
    width = _ANTIALIAS_WIDTH.get(mode) if antialias else None
    grow = tuple(Fraction(math.ceil(width / f) - 1 if width and f < 1 else _INTERPOLATION_GROW[mode] if f != 1 else 0)
                 for f in factor)
    return KernelOp(
        op, "upsample", (1,) * len(factor), tuple(1 / f for f in factor), (1,) * len(factor),
        grow=grow, scale=tuple(1 / f for f in factor),
    )


@lru_cache(maxsize=1024)
def sampling(op: str, mode: str, n_in: tuple[int, ...], n_out: tuple[int, ...]) -> KernelOp | None:
    """F.grid_sample: each output unit reads the mode's taps around a point the grid chooses,
    ``n_in / n_out`` input units apart on average.  Unlike :func:`interpolation` the taps are read
    at every factor, 1 too: the grid's points fall between input units (r + j for bilinear)."""
    if mode not in _INTERPOLATION_GROW:
        return None
    factor = [Fraction(o, n) for n, o in zip(n_in, n_out)]
    return KernelOp(op, "upsample", (1,) * len(factor), tuple(1 / f for f in factor), (1,) * len(factor),
                    grow=(Fraction(_INTERPOLATION_GROW[mode]),) * len(factor), scale=tuple(1 / f for f in factor))


def pixel_shuffle(op: str, factor: int, n: int, down: bool) -> KernelOp:
    """PixelShuffle(f): (r, j/f); PixelUnshuffle(f): (r + (f-1)*j, j*f)."""
    f = Fraction(factor)
    if down:
        return KernelOp(op, "unshuffle", (factor,) * n, (f,) * n, (1,) * n,
                        grow=(f - 1,) * n, scale=(f,) * n)
    return KernelOp(op, "shuffle", (1,) * n, (1 / f,) * n, (1,) * n, grow=(Fraction(0),) * n, scale=(1 / f,) * n)


def blocks(op: str, kind: str, per_dim: dict[int, tuple[int, int | Fraction]]) -> KernelOp:
    """An op that regroups positions into blocks along some dims (a reshape or an einops pattern):
    ``per_dim`` maps an input dim (counted from the end) to its (window, stride), the window read as
    one unit: (r + (window-1)*j, j*stride).  The op covers the last dims up to the first of them."""
    n = max(-d for d in per_dim)
    window = tuple(per_dim.get(d, (1, 1))[0] for d in range(-n, 0))
    stride = tuple(per_dim.get(d, (1, 1))[1] for d in range(-n, 0))
    return KernelOp(op, kind, window, stride, (1,) * n, grow=tuple(Fraction(w - 1) for w in window), scale=stride)


def strided_slice(op: str, steps: Sequence[int]) -> KernelOp:
    """x[..., ::s]: (r, j*s).  Offsets are not tracked (see the docs on space-to-depth)."""
    n = len(steps)
    return KernelOp(op, "slice", (1,) * n, tuple(Fraction(s) for s in steps), (1,) * n,
                    grow=(Fraction(0),) * n, scale=tuple(Fraction(s) for s in steps))


def inferred(op: str, n_in: Sequence[int], n_out: Sequence[int]) -> KernelOp:
    """Unknown op that changes the spatial size: kernel 1, stride from the shape ratio."""
    stride = tuple(Fraction(a, b) if b else ONE for a, b in zip(n_in, n_out))
    n = len(stride)
    return KernelOp(op, "inferred", (1,) * n, stride, (1,) * n, grow=(Fraction(0),) * n, scale=stride)


def conv_padding(padding, kernel: Sequence[int], dilation: Sequence[int]) -> tuple[int, ...]:
    """Numeric left padding per axis, also for padding='same' / 'valid'."""
    n = len(kernel)
    if padding == "valid":
        return (0,) * n
    if padding == "same":
        return tuple((d * (k - 1)) // 2 for k, d in zip(kernel, dilation))
    return tuple(int(p) for p in per_axis(padding, n, "padding"))
