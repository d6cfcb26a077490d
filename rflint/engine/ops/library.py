"""Rules for the functions model libraries keep opaque to torch.fx, and how other opaque functions
are read.

``torch.fx.wrap("f")`` makes fx record a call of ``f`` as one node instead of tracing into it.
torchvision does it for its window attention, its stochastic depth and a few helpers; a project may
do it for its own code.  rflint cannot see inside such a call.  The libraries' own functions it
knows by module and name (it imports none of those libraries); any other wrapped function that
hands on a map of the same size is read as elementwise, with a warning that says so.
"""

from __future__ import annotations

from typing import Any, Callable

from rflint.engine import kernels as K
from rflint.engine.ops.context import Ctx, Outcome, kernel_outcome
from rflint.engine.ops.tensors import _elementwise, _global_fn, _inferred

Rule = Callable[[Ctx], Outcome]

# each 2x2 block of a channels-last map (B, H, W, C) into the channels, as PixelUnshuffle(2) does
# on a channels-first one: a window of 2 with stride 2 on H and W
_PATCH_MERGING = K.blocks("_patch_merging_pad", "unshuffle", {-3: (2, 2), -2: (2, 2)})


def _patch_merging(ctx: Ctx) -> Outcome:
    """torchvision's Swin ``_patch_merging_pad(x)``: H and W padded to even, then the 2x2 blocks
    stacked into the channels (x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :], ...)."""
    rf = ctx.rf(ctx.first)
    if rf is None or rf.is_global:
        return Outcome(rf)
    dims = {a.dim for a in rf.axes}
    if not {-3, -2} <= dims or -1 in dims:  # not a channels-last map ((B, T, H, W, C) too: T stays)
        return _inferred(ctx, "operation _patch_merging_pad")
    return kernel_outcome(ctx, _PATCH_MERGING)


# (module, name) -> rule; the name the report gives the op
_KNOWN: dict[tuple[str, str], tuple[Rule, str]] = {
    # drop path and DropBlock zero whole samples or blocks of the map they are given: elementwise
    ("torchvision.ops.stochastic_depth", "stochastic_depth"): (_elementwise, "stochastic_depth"),
    ("torchvision.ops.drop_block", "drop_block2d"): (_elementwise, "drop_block2d"),
    ("torchvision.ops.drop_block", "drop_block3d"): (_elementwise, "drop_block3d"),
    # Swin's (shifted) window attention: attention across the positions of each window, which the
    # spec reads as global (rf-semantics.md §2, attention-style matmul across spatial positions)
    ("torchvision.models.swin_transformer", "shifted_window_attention"):
        (_global_fn, "shifted_window_attention"),
    ("torchvision.models.video.swin_transformer", "shifted_window_attention_3d"):
        (_global_fn, "shifted_window_attention_3d"),
    ("torchvision.models.swin_transformer", "_patch_merging_pad"): (_patch_merging, "_patch_merging_pad"),
}


def library_rule(target: Any) -> tuple[Rule, str] | None:
    """The rule and name of a known library function, None for any other target."""
    key = (getattr(target, "__module__", None), getattr(target, "__qualname__", None))
    return _KNOWN.get(key) if key[0] is not None else None


OPAQUE_WARNING = ("a function torch.fx.wrap keeps whole (rflint cannot see inside it): it keeps the map's size and "
                  "is read as elementwise; if it mixes positions (a window, attention), the RFs after it are lower bounds")
