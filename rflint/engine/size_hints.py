"""Why a model does not run at an input size, and the sizes it does run at.

``explain_failure`` turns torch's shape errors into what the user did wrong (an input too small, the
wrong channels or number of axes, a size that does not line up with the downsampling, a head fixed
to one size) and names the sizes that run, found by trying sizes on the model's own trace
(``Prepared.at`` and the clean-size search in report/clean_size.py use the searches).  Split from
prepare.py: loading and tracing a model is one job, explaining a failure another.
"""

from __future__ import annotations

import operator
import re
from typing import TYPE_CHECKING, Callable, TypeVar

import torch
import torch.fx as fx
from torch import nn

from rflint.engine.program import probe
from rflint.engine.weights import fetch
from rflint.errors import RflintError
from rflint.trace import Traced, evaluating
from rflint.trace.sources import node_label
from rflint.wording import count, named

if TYPE_CHECKING:
    from rflint.engine.prepare import Prepared, Shapes


# torch's words for a conv given a map of the wrong rank: "Expected 2D (unbatched) or 3D (batched)
# input to conv1d, but got input of size: [1, 1, 1, 16000]"
_CONV_RANK = re.compile(r"input to conv(?:_transpose)?\dd, but got input of size: \[([\d, ]+)\]")
# what to do with a model that takes (N, L) and adds the channel dim itself (fairseq's and Hugging
# Face's wav2vec 2.0 and HuBERT take (batch, samples))
NO_CHANNEL_DIM = "lint a wrapper whose forward(x) returns model(x[:, 0]), with --input-shape 1,1,L"


def axes_text(n: int) -> str:
    return f"{n} spatial {'axis' if n == 1 else 'axes'}"


def explain_failure(prepared: Prepared, shapes: Shapes, err: RflintError, full_shapes: bool = False) -> RflintError:
    """Turn torch's shape errors into what the user did wrong: input too small, wrong channels, a
    wrong number of spatial axes, an input that does not line up with the downsampling.
    ``full_shapes``: the user gave whole input shapes (--input-shape), which set the channels."""
    text = str(err)
    size = "x".join(map(str, shapes[0][2:]))
    # the shape pass names the node; the concrete-shapes tracer (shape_tracer.py) the module it ran
    where = re.match(r"shape propagation failed at ([^:]+):", text) or re.search(r"running (\S+) on (?:meta|CPU) tensors failed", text)
    raw = where.group(1) if where else None
    layer = named(_owned(prepared, shapes, raw)) if raw else "a layer"  # as a sentence says it
    first = _first_conv_node(prepared, shapes)
    n = prepared.n_axes
    if first is not None and first[0] == raw and first[2] and n is not None and len(shapes[0]) != n + 2:
        # --input-shape 1,3,32 for a 2-D model: torch reads it as an unbatched map and blames the channels
        return RflintError(f"{prepared.label} expects {axes_text(n)} (its first conv is {n}-D), "
                           f"got input shape {','.join(map(str, shapes[0]))}")
    rank = _CONV_RANK.search(text)
    if first is not None and first[0] == raw and rank and len(rank.group(1).split(",")) == len(shapes[0]) + 1:
        # wav2vec 2.0's x = source[:, None]: the model adds the channel dim to a (N, L) waveform itself
        return RflintError(f"{prepared.label}: {layer} gets a map of {len(shapes[0]) + 1} dims from the input "
                           f"{','.join(map(str, shapes[0]))}: the model adds a dim before its first conv, so it takes "
                           f"its input without channels, (N, *spatial); rflint reads an input as (N, C, *spatial): "
                           f"{NO_CHANNEL_DIM}")
    channels_wrong = _CHANNELS.search(text) is not None and not any(p in text for p in _TOO_SMALL)
    if first is not None and first[0] == raw and channels_wrong:
        expected, given = first[1], shapes[0][1]
        if not first[2]:  # a map made from the input (YOLO's Focus: 4 slices concatenated) reaches it
            where = "give them as the C of --input-shape N,C,..." if full_shapes else "set --channels, e.g. --channels 3"
            return RflintError(f"{prepared.label}: {layer} (in_channels {expected}) does not read the input itself but "
                               f"a map made from it, so it does not tell the input's channels; with {given} the "
                               f"map does not fit: {where}")
        if expected != given:
            fix = f"the C of --input-shape N,C,... must be {expected}" if full_shapes else f"set --channels {expected}"
            return RflintError(f"{prepared.label}: {layer} expects {count(expected, 'input channel')}, got {given} ({fix})")
    # the channels were read from a conv that does not read the input (a patch embedding written
    # with a Linear, an RGB-D net slicing its input): every later error may be that guess's
    guess = None
    if first is not None and not first[2] and not full_shapes and shapes[0][1] == prepared.default_channels:
        guess = (f"the input's {shapes[0][1]} channels were read from {named(first[0])} (in_channels {first[1]}), which "
                 "does not read the input but a map made from it: if the input has others, set --channels")
    if guess and channels_wrong:  # RGB-D: x[:, 3:] has none
        return RflintError(f"{prepared.label}: the map reaching {layer} does not have the channels it takes; {guess}")
    if _vanished(text):
        hint = _smallest_size(prepared, shapes)
        what = f"the feature map vanishes at {layer}" if _ONE_ELEMENT not in text else \
            f"the map reaching {layer} is down to one pixel, and an instance norm needs more than one"
        return RflintError(f"input {size} is too small for {prepared.label}: {what}"
                           + (f"; the smallest input that runs is {hint}" if hint else ""))
    if _RESHAPE_FAILED in text and len(shapes) == 1:  # view(B, C, H // 7, 7, ...): a size it does not divide
        hint = _nearest_sizes(prepared, shapes)
        return RflintError(f"input {size} does not fit {prepared.label}: the reshape at {layer} needs a size this "
                           "input does not give (blocks the map does not divide into, or a head built for one size)"
                           + (f"; {_nearest(hint)}" if hint else ""))
    features = _FEATURES.search(text)
    if features:  # a Linear after a flatten, built for one input size
        got, expected = int(features.group(1) or features.group(3)), int(features.group(2) or features.group(4))
        try:
            layer = f"{layer} ({type(prepared.loaded.module.get_submodule(raw)).__name__})"
        except AttributeError:  # a functional F.linear: its node's name is all there is
            pass
        if len(shapes) > 1 and not _reads_first_input(prepared, shapes, where.group(1) if where else None):
            # the features come from another input, not a flattened map
            given = " and ".join(",".join(map(str, shape)) for shape in shapes)
            return RflintError(f"input shapes {given} do not fit {prepared.label}: {layer} expects {expected:,} "
                               f"input features and gets {got:,} (does each input's shape match what forward() takes?)")
        if len(shapes) == 1 and _reads_the_input(_trace_for(prepared, shapes), raw):
            # a Linear straight on the input: the input's last axis is its features, a model that
            # takes (batch, length, channels); --channels or a size cannot help (they went round in circles)
            return RflintError(f"{prepared.label}: {layer} reads the input's last axis ({got}) as its {expected:,} "
                               f"input features: the model takes its input channels-last, (batch, ..., {expected}); "
                               "rflint reads an input as (batch, channels, *spatial), so it cannot analyse a model "
                               "that takes its positions before its channels")
        if guess and _runs_before(_trace_for(prepared, shapes), where.group(1) if where else None, first[0]):
            # a Linear patch embedding, before any conv, reading 32 channels' patches: the size is not the suspect
            return RflintError(f"input {size} does not fit {prepared.label}: {layer} expects {expected:,} input "
                               f"features and gets {got:,}; {guess}")
        hint = _fixed_head_size(prepared, shapes, got, expected)
        return RflintError(f"input {size} does not fit {prepared.label}: {layer} expects {expected:,} input features "
                           f"and gets {got:,}, a flattened feature map of this input size; the model runs only "
                           f"at the input sizes its head was built for" + (f", such as {hint}" if hint else ""))
    divisor = named_divisor(err)
    if divisor is not None and len(shapes) == 1:  # the model's own check (monai's SwinUNETR: "divisible by 2**5")
        hint = _multiples(prepared, shapes, divisor) or _nearest_sizes(prepared, shapes)
        return RflintError(f"input {size} does not fit {prepared.label}: its own check says \"{_own_words(text)}\""
                           + (f"; {_nearest(hint)}" if hint else ""))
    if misaligned(err):
        if len(shapes) > 1:  # several inputs: they may not fit each other
            given = " and ".join(",".join(map(str, shape)) for shape in shapes)
            return RflintError(f"input shapes {given} do not fit {prepared.label}: the maps joined at {layer} differ "
                               "in size (do the inputs' sizes fit each other, and the downsampling before the join?)")
        fixed = _fixed_operand(prepared, shapes, raw)
        hint = _nearest_sizes(prepared, shapes, one_way=fixed is not None)
        if fixed is not None:  # a ViT's position embedding: made for one number of patches
            return RflintError(f"input {size} does not fit {prepared.label}: at {layer} what the input made meets "
                               f"{fixed} (a position embedding?): the model runs only at the input "
                               "size it was built for" + (f"; {_nearest(hint)}" if hint else ""))
        attempt = _attempts(prepared, shapes) if hint is None else None
        if attempt is not None:
            aligned = _aligned_multiple(attempt, tuple(shapes[0][2:]))
            if aligned is not None:  # a deep U-Net: it lines up at multiples of 2^depth only, further away
                return RflintError(f"input {size} does not fit {prepared.label}: the maps joined at {layer} differ "
                                   "in size (the input must line up with the downsampling before the join); it runs "
                                   f"at {'x'.join(map(str, aligned))}")
            # none near it runs, nor any multiple of a power of two: not a size to choose (a branch
            # that lacks the other's padding or stride joins maps of n - 2 and n, or n / 2 and n)
            return RflintError(f"{prepared.label}: the maps joined at {layer} differ in size at {size}, at every "
                               f"input size within {ALIGN_REACH} px of it and at its next multiple of 2, 4, 8, ... up "
                               f"to {_ALIGNED_UP_TO} px: its branches change the size differently (one lacks the "
                               "padding or stride of the other?), which no input size makes up for")
        return RflintError(f"input {size} does not fit {prepared.label}: the maps joined at {layer} differ in size "
                           "(the input must line up with the downsampling before the join)"
                           + (f"; {_nearest(hint)}" if hint else ""))
    return err


def _owned(prepared: Prepared, shapes: Shapes, name: str) -> str:
    """A function or method node's name with the module whose forward() calls it, as RF007 names a
    merge: "blocks.0.attention.partition.reshape", not a bare "reshape" among a hundred."""
    traced = _trace_for(prepared, shapes)
    node = traced.node_by_name.get(name) if traced is not None else None
    if node is None or node.op == "call_module":
        return name
    return node_label(node)


def _reads_first_input(prepared: Prepared, shapes: Shapes, name: str | None) -> bool:
    """The node the shape pass failed at (a module path or a node name) is computed from the first
    (image) input; True when that is not known."""
    traced = _trace_for(prepared, shapes)
    if traced is None or name is None:
        return True
    node, first = _node_named(traced, name), _first_input(traced)
    if node is None or first is None:
        return True
    stack, seen = [node], set()
    while stack:
        n = stack.pop()
        if n is first:
            return True
        if n not in seen:
            seen.add(n)
            stack.extend(n.all_input_nodes)
    return False


def _fixed_operand(prepared: Prepared, shapes: Shapes, name: str) -> str | None:
    """The parameter an operand of the node ``name`` is, or is made from by ops on it (a position
    embedding sliced, reshaped or expanded first: its first operand, back to a get_attr), if one is."""
    traced = _trace_for(prepared, shapes)
    node = traced.node_by_name.get(name) if traced is not None else None
    if node is None:
        return None
    for operand in node.all_input_nodes:
        n = operand
        while _reshapes_only(n) and n.args and isinstance(n.args[0], fx.Node):
            n = n.args[0]  # the tensor sliced or reshaped (a slice's bounds may be read off the input)
        if n.op == "get_attr" and isinstance(fetch(traced.gm, n.target), nn.Parameter):
            return f"{n.target}, a parameter of a fixed size"
    for operand in node.all_input_nodes:
        made_from = _made_without_input(operand)
        if made_from:  # built from parameters alone (torchvision's MViT: repeated, added, concatenated)
            shown = ", ".join(made_from[:2]) + (f" and {len(made_from) - 2} more" if len(made_from) > 2 else "")
            return f"a fixed-size tensor computed from the parameters {shown} alone"
    return None


def _made_without_input(node: fx.Node) -> list[str] | None:
    """The parameters (get_attr) ``node`` is computed from, sorted, when no model input reaches it,
    else None: its size is the model's own, whatever the input."""
    stack, seen, attrs = [node], set(), []
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        if n.op == "placeholder":
            return None
        if n.op == "get_attr":
            attrs.append(str(n.target))
        stack.extend(n.all_input_nodes)
    return sorted(set(attrs)) or None


# what a position embedding goes through before it is added: its values stay, its shape changes
# (not a product: a layer-scale gamma times the skip is a map of the input's size)
_RESHAPING_METHODS = {"view", "reshape", "expand", "expand_as", "permute", "transpose", "flatten", "unsqueeze",
                      "squeeze", "contiguous", "to", "type_as", "repeat", "unflatten", "__getitem__"}
_RESHAPING_FUNCTIONS = {operator.getitem, torch.flatten, torch.reshape, torch.permute, torch.transpose,
                        torch.unsqueeze, torch.squeeze}


def _reshapes_only(node: fx.Node) -> bool:
    return (node.op == "call_method" and node.target in _RESHAPING_METHODS) or (
        node.op == "call_function" and node.target in _RESHAPING_FUNCTIONS)


def _trace_for(prepared: Prepared, shapes: Shapes) -> Traced | None:
    """The trace the failure at ``shapes`` happened in: that size's own, else the model's."""
    return prepared._by_shapes.get(shapes) or prepared.traced or prepared._leaves_traced


_ALIGNED_UP_TO = 4096  # px: the largest side the multiples of a power of two are tried up to


def _aligned_multiple(attempt: Callable[[tuple[int, ...]], RflintError | None], spatial: tuple[int, ...]
                      ) -> tuple[int, ...] | None:
    """The given size raised to the next multiple of 2, 4, 8, ... on every axis: the first of those
    that runs; None when none does up to ``_ALIGNED_UP_TO`` px."""
    multiple = 2
    while True:
        size = tuple(-(-side // multiple) * multiple for side in spatial)
        if max(size) > _ALIGNED_UP_TO:
            return None
        if size != spatial and attempt(size) is None:
            return size
        multiple *= 2


def _reads_the_input(traced: Traced | None, name: str | None) -> bool:
    """The node (or module call) ``name`` takes the model's first input itself as its input."""
    if traced is None or name is None:
        return False
    first, node = _first_input(traced), _node_named(traced, name)
    return first is not None and node is not None and bool(node.args) and node.args[0] is first


def _node_named(traced: Traced, name: str):
    """The node the shape pass names (its fx name, or the path of the module it calls)."""
    return next((n for n in traced.order if n.name == name or (n.op == "call_module" and n.target == name)), None)


def _first_input(traced: Traced):
    return next((n for n in traced.order if n.op == "placeholder"), None)


def _runs_before(traced: Traced | None, name: str | None, path: str) -> bool:
    """The node (or module call) ``name`` comes before the call of module ``path`` in the graph."""
    if traced is None or name is None:
        return False
    for node in traced.order:
        if node.name == name or (node.op == "call_module" and node.target == name):
            return True
        if node.op == "call_module" and node.target == path:
            return False
    return False


def _first_conv_node(prepared: Prepared, shapes: Shapes) -> tuple[str, int, bool] | None:
    """(module path, in_channels, whether it reads the model input itself) of the first conv module
    in graph order."""
    return first_conv_in(_trace_for(prepared, shapes))


def first_conv_in(traced: Traced | None) -> tuple[str, int, bool] | None:
    if traced is None:
        return None
    for node in traced.order:
        if node.op == "call_module":
            m = traced.gm.get_submodule(node.target)
            if isinstance(m, nn.modules.conv._ConvNd):
                src = node.args[0] if node.args else None
                return str(node.target), m.in_channels, isinstance(src, fx.Node) and src.op == "placeholder"
    return None


T = TypeVar("T")

# torch's instance norm on a single spatial element ("... when training": also in eval mode, without
# running statistics)
_ONE_ELEMENT = "Expected more than 1 spatial element"
# a Linear's input features vs. its weight, in torch's meta and CPU words: got, expected
_FEATURES = re.compile(r"must have same reduction dim, but got \[\d+, (\d+)\] X \[(\d+), \d+\]"
                       r"|mat1 and mat2 shapes cannot be multiplied \(\d+x(\d+) and (\d+)x\d+\)")
# torch's words for a map with other channels than a conv (or norm) takes; not "Calculated padded
# input size per channel", which is a map too small
_CHANNELS = re.compile(r"to have \d+ channels|Invalid channel dimensions|channels, but got|expected \d+ channels")
_TOO_SMALL = ("Kernel size can't be greater than actual input size", "Output size is too small",
              "output size is too small", "non-positive", "Invalid computed output size",
              "smaller than kernel size")  # (avg_pool3d: "input image (T: 2 H: 3 W: 3) smaller than kernel size")


def _vanished(text: str) -> bool:
    """torch's error says the map is too small at some layer: it vanished, or an instance norm has one pixel."""
    return any(p in text for p in _TOO_SMALL) or _ONE_ELEMENT in text


# torch's words for maps of different sizes meeting at a join (cat, or a sum that cannot broadcast),
# and models' own guards for an input that does not line up with their downsampling (monai's
# SwinUNETR: "spatial dimensions [2, 3] of input image ... must be divisible by 2**5.")
_MISALIGNED = ("Sizes of tensors must match", "must match the size of tensor", "Attempting to broadcast a dimension",
               "must be divisible by", "must be a multiple of", "should be divisible by", "should be a multiple of")


def vanishing(err: RflintError) -> bool:
    """The model failed because a map vanished (or an instance norm was left one pixel): a larger
    input cures that, and every larger one does, so the sizes that run are those above a bound.
    Any other failure (a join, a reshape, a head built for one size, a check of the model's own
    such as ``assert W % 16 == 0``) promises nothing of the kind."""
    text = str(err)
    return _vanished(text) or " is too small for " in text


def misaligned(err: RflintError) -> bool:
    """The model failed where maps of different sizes meet (a U-Net's skip joined to an upsampled
    map when the input does not line up with the downsampling), not where a map vanishes."""
    text = str(err)
    return any(p in text for p in _MISALIGNED)


_RESHAPE_FAILED = "is invalid for input of size"  # torch's words for a view/reshape that does not fit


_DIVISOR = re.compile(r"(?:divisible by|a multiple of)\s+(\d+)(?:\s*(?:\*\*|\^)\s*(\d+))?")


def named_divisor(err: RflintError) -> int | None:
    """The number a model's own size check names ("must be divisible by 2**5", "... a multiple of
    32"), None if it names none: the input sizes that line up are its multiples."""
    found = _DIVISOR.search(str(err))
    if found is None:
        return None
    base, power = int(found.group(1)), int(found.group(2) or 1)
    value = base ** power if power < 64 else 0
    return value if 1 < value <= 1 << 16 else None


# how far from a size whose maps do not line up at a join the sizes that do are looked for (the
# error's hint here, the clean-size search in report/clean_size.py): a U-Net of depth 6 runs at multiples of 64
ALIGN_REACH = 64


def _nearest_sizes(prepared: Prepared, shapes: Shapes, reach: int = ALIGN_REACH, one_way: bool = False) -> str | None:
    """The nearest input sizes below and above the given one that run, within ``reach`` pixels
    (one image input only): "8x8 and 16x16", for 17x32 "16x32 and 24x32", or one, or None.  Per
    axis: a side that runs as a square input is kept, the others move to the nearest side that
    does (a join lines up per axis); the combination is checked.  ``one_way``: the sizes that run
    are one range (a position embedding takes one number of patches, which grows with the side),
    so once one way has one, the other has none (UNETR at 64: 96, and 63 sides less)."""
    attempt = _attempts(prepared, shapes)
    if attempt is None:
        return None
    spatial = tuple(shapes[0][2:])
    n = len(spatial)
    nearest: dict[int, tuple[int | None, int | None]] = {}  # side -> (below, above)
    for side in set(spatial):
        if _uniform_runs(attempt, side, n):
            nearest[side] = (side, side)
            continue
        below, above = (_aligned_side(attempt, side, n, step, reach) for step in (-1, 1))
        if one_way and (below or above):  # one range: bisect towards it; the other way has none
            nearest[side] = (below and _range_end(attempt, n, below, side), above and _range_end(attempt, n, above, side))
            continue
        nearest[side] = (_nearer(attempt, side, n, -1, below, reach), _nearer(attempt, side, n, 1, above, reach))
    found = []
    for k in (0, 1):
        moved = [nearest[side][k] for side in spatial]
        if None not in moved and attempt(tuple(moved)) is None:
            found.append(moved)
    return " and ".join("x".join(map(str, size)) for size in found) or None


def _nearest(hint: str) -> str:
    """"the nearest sizes that run are 16x16 and 24x24", or the one size (a U-Net at 300: 257x257)."""
    return f"the nearest sizes that run are {hint}" if " and " in hint else f"the nearest size that runs is {hint}"


def _own_words(text: str) -> str:
    """The message of the model's own exception inside rflint's 'shape propagation failed at ...'."""
    found = list(re.finditer(r"\b[A-Za-z]*(?:Error|Exception): ", text))  # the innermost is the last
    return (text[found[-1].end():] if found else text).strip().rstrip(".")


def _multiples(prepared: Prepared, shapes: Shapes, divisor: int) -> str | None:
    """The sizes below and above the given one whose every side is a multiple of ``divisor`` (what
    a model's own check names), those that run: per axis, as the check is (SwinUNETR at 96x96x40:
    96x96x32 and 96x96x64; a side tried as a square, 32x32x32, would vanish)."""
    attempt = _attempts(prepared, shapes)
    if attempt is None:
        return None
    spatial = tuple(shapes[0][2:])
    found: list[tuple[int, ...]] = []
    for size in (tuple(s // divisor * divisor for s in spatial), tuple(-(-s // divisor) * divisor for s in spatial)):
        if min(size) >= 1 and size != spatial and size not in found and attempt(size) is None:
            found.append(size)
    return " and ".join("x".join(map(str, size)) for size in found) or None


def _aligned_side(attempt: Callable[[tuple[int, ...]], RflintError | None], side: int, n: int, step: int,
                  reach: int) -> int | None:
    """A side below (``step`` -1) or above (+1) that runs, found among the multiples of 1, 2, 4,
    ... (a net's joins line up at multiples of its downsampling, a power of two in nearly every
    net): the nearest of those that runs, which bounds the search for the nearest of all."""
    m, tried = 1, set()
    while m <= reach:
        t = (side - 1) // m * m if step < 0 else (side // m + 1) * m
        if 0 < t and abs(t - side) <= reach and t not in tried:
            tried.add(t)
            if _uniform_runs(attempt, t, n):
                return t
        m *= 2
    return None


def _range_end(attempt: Callable[[tuple[int, ...]], RflintError | None], n: int, runs: int, fails: int) -> int:
    """The side nearest ``fails`` that runs, between it and ``runs`` (which does), when the sides
    that run are one range: bisection (16 to 19 px give a 4x4 position embedding's patches; from
    32 the nearest is 19, not the multiple of 16)."""
    while abs(fails - runs) > 1:
        mid = (runs + fails) // 2
        runs, fails = (mid, fails) if _uniform_runs(attempt, mid, n) else (runs, mid)
    return runs


def _nearer(attempt: Callable[[tuple[int, ...]], RflintError | None], side: int, n: int, step: int,
            bound: int | None, reach: int) -> int | None:
    """The nearest side that runs, one pixel at a time from ``side`` towards ``bound`` (a side known
    to run, or None: up to ``reach``).  Not every net runs at multiples only (MONAI's UNet with
    strides 2, 2 runs where ceil(n / 2) is even: 8, 11, 12 ...).  Going down, a side where the map
    vanishes ends it: every smaller one vanishes too (SwinUNETR at 50 tried every side to 1)."""
    end = bound if bound is not None else side + step * (reach + 1)
    for t in range(side + step, end, step):
        if t <= 0:
            break
        err = attempt((t,) * n)
        if err is None:
            return t
        if step < 0 and _vanished(str(err)):
            break
    return bound


def _smallest_size(prepared: Prepared, shapes: Shapes, reach: int = ALIGN_REACH) -> str | None:
    """The smallest square (cube, ...) input that runs, from the given size's smallest side on (one
    image input only): "32x32"; for a non-square input also the given size with its too-small
    sides raised to that, when it runs: "32x32 (or 32x300)".  Maps stop vanishing from some side
    on (doubled, then bisected); from there the first side that also lines up at every join, one
    pixel at a time (a U-Net runs only at multiples of its downsampling)."""
    attempt = _attempts(prepared, shapes)
    if attempt is None:
        return None
    spatial = tuple(shapes[0][2:])
    n = len(spatial)

    def kept(side: int) -> bool | None:  # nothing vanishes at this side
        err = attempt((side,) * n)
        return True if err is None or misaligned(err) else None

    lo = min(spatial)
    found = first_success(kept, lo, gap=max(lo, 1), limit=prepared.probe_limit(spatial))
    if found is None:
        return None
    side = next((t for t in range(found[0], found[0] + reach + 1) if _uniform_runs(attempt, t, n)), None)
    if side is None:
        return None
    text = "x".join([str(side)] * n)
    fitted = _fitted(attempt, spatial, side, reach) if len(set(spatial)) > 1 else None
    if fitted is not None and fitted != (side,) * n:
        shape = {2: "a square", 3: "a cube"}.get(n, "equal sides")
        text += f" as {shape}, or {'x'.join(map(str, fitted))} raising only the sides that are too small"
    return text


def _fitted(attempt: Callable[[tuple[int, ...]], RflintError | None], spatial: tuple[int, ...], side: int,
            reach: int) -> tuple[int, ...] | None:
    """The given size with each side below ``side`` (the smallest uniform size that runs) raised
    only as far as it must be, axis by axis, the others as they are or raised to ``side``: 8x16x16
    for an nnU-Net patch of 4x16x16, where the smallest cube is 16x16x16.  None when even the given
    size with its small sides raised to ``side`` does not run."""
    size = [max(v, side) for v in spatial]
    if attempt(tuple(size)) is not None:
        return None

    def at(i: int, t: int) -> tuple[int, ...]:
        return tuple(size[:i] + [t] + size[i + 1:])

    for i, v in enumerate(spatial):
        if v >= side:
            continue
        if attempt(at(i, v)) is None:  # this side was never the one too small
            size[i] = v
            continue

        def kept(t: int, i: int = i) -> bool | None:  # nothing vanishes with this side
            err = attempt(at(i, t))
            return True if err is None or misaligned(err) else None

        found = first_success(kept, v, gap=max(v, 1), limit=side)
        start = found[0] if found is not None else side
        size[i] = next((t for t in range(start, min(start + reach, side) + 1) if attempt(at(i, t)) is None), side)
    return tuple(size)


def _fixed_head_size(prepared: Prepared, shapes: Shapes, got: int, expected: int) -> str | None:
    """The input sizes a fixed head was built for, with every side scaled alike: "32x32 to 47x47"
    (a flatten after four 2x pools gives the same features from 32 to 47 px), or one size; None
    when no size found so runs.  Assumes what it has always seen: the flattened features never
    shrink as the input grows, so the sizes that give the head's number are one interval, found
    by bisection on the features each size gives (the Linear's error names them).  (It scaled
    the input by sqrt(expected / got) and named that one size: 34x34 from 51, none from 24.)"""
    attempt = _attempts(prepared, shapes)
    spatial = tuple(shapes[0][2:])
    if attempt is None or not spatial or got <= 0:
        return None
    # the sides in proportion to this input's; then, when none of those fits, square ones
    for ratios in dict.fromkeys((tuple(s / spatial[0] for s in spatial), (1.0,) * len(spatial))):
        found = _head_sizes(attempt, ratios, expected, spatial[0], prepared.probe_limit(spatial))
        if found:
            return found
    return None


def _head_sizes(attempt: Callable[[tuple[int, ...]], RflintError | None], ratios: tuple[float, ...],
                expected: int, start: int, limit: int) -> str | None:
    """:func:`_fixed_head_size` along one line of sizes: the first side t, side i t * ratios[i],
    searched from ``start`` (the size asked): doubled or halved until the features pass the head's
    number, then bisected, so no probe goes far from sizes the model is used at (a probe at 16384
    px of a model traced on real values took 6.6 GB).  A size that fails otherwise (an odd side at
    a join) is read through its nearest neighbours; then only the first size is named, as the
    ones in the range need not all run."""
    gaps = []

    def sides(t: int) -> tuple[int, ...]:
        return tuple(max(1, round(t * r)) for r in ratios)

    def features(t: int) -> int | None:  # what the head gets at sides(t); None: unknown
        for u in range(t, min(t + 4, limit) + 1):  # an odd side at a join fails: its neighbours tell
            err = attempt(sides(u))
            if err is None:
                return expected
            text = str(err)
            found = _FEATURES.search(text)
            if found:
                return int(found.group(1) or found.group(3))
            if _vanished(text):
                return 0
            gaps.append(u)
        return None

    def first_where(holds: Callable[[int], bool], lo: int, hi: int) -> int | None:
        """The smallest t in (lo, hi] where ``holds`` (false at lo, monotone), hi included."""
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if holds(mid) else (mid, hi)
        return hi

    def bracket(holds: Callable[[int], bool], t: int) -> tuple[int, int] | None:
        """(lo, hi) with ``holds`` false at lo and true at hi, from t outwards."""
        if holds(t):
            lo = t // 2
            while lo > 0 and holds(lo):
                t, lo = lo, lo // 2
            return lo, t
        hi = t * 2
        while hi <= limit and not holds(hi):
            t, hi = hi, hi * 2
        return (t, hi) if hi <= limit else None

    def at_least(t: int) -> bool:
        f = features(t)
        return f is not None and f >= expected

    def more(t: int) -> bool:
        f = features(t)
        return f is not None and f > expected

    found = bracket(at_least, start)
    first = first_where(at_least, *found) if found else None
    if first is None or features(first) != expected:  # no size gives the head's number
        return None
    first = next((u for u in range(first, first + 5) if attempt(sides(u)) is None), None)
    if first is None:
        return None
    found = bracket(more, first)
    last = first_where(more, *found) - 1 if found else first
    low, high = ("x".join(map(str, sides(t))) for t in (first, last))
    return low if first == last or gaps else f"{low} to {high}"


def _uniform_runs(attempt: Callable[[tuple[int, ...]], RflintError | None], side: int, n: int) -> bool:
    return attempt((side,) * n) is None


def _attempts(prepared: Prepared, shapes: Shapes) -> Callable[[tuple[int, ...]], RflintError | None] | None:
    """Why the model does not run at some spatial size of its one image input (None: it runs), from
    shapes and RFs alone, each size tried once; None when it takes several inputs (the size hints
    of the error messages above are for one)."""
    if len(shapes) != 1:
        return None
    n, c, *_ = shapes[0]
    tried: dict[tuple[int, ...], RflintError | None] = {}

    def attempt(spatial: tuple[int, ...]) -> RflintError | None:
        if spatial not in tried:
            try:  # (a model with lazy layers anew: they took another size's shapes)
                fresh = prepared.anew()
                # in eval mode, as every run: an instance in training mode had its BatchNorm refuse
                # a 1x1 map, and a size that runs was not offered
                with evaluating(fresh.loaded):
                    probe(fresh, ((n, c, *spatial),))
                tried[spatial] = None
            except RflintError as err:
                tried[spatial] = err
        return tried[spatial]
    return attempt


def side_limit(n_axes: int) -> int:
    """How far the searches for a size that runs go, per side: 16384 px for images and volumes,
    4M samples for a 1-D signal (SampleCNN runs from 59049 samples; a minute of 48 kHz audio is
    2.9M)."""
    return 1 << 22 if n_axes == 1 else 1 << 14


def first_success(probe: Callable[[int], T | None], failing: int, gap: int = 8, limit: int = 1 << 14,
                  up_to_limit: bool = False) -> tuple[int, T] | None:
    """The smallest d > ``failing`` (a d known to fail) for which ``probe(d)`` is not None, with that
    answer, assuming success is monotone in d: the gap doubles until a probe succeeds, then the
    last interval is bisected.  None past ``limit``; ``up_to_limit``: a gap that would pass it
    stops at it instead (a search below a size known to run).  (The searches for the smallest size
    a model runs at: error messages here, the clean-size search in report/clean_size.py.)"""
    lo = failing
    while True:
        hi = lo + gap
        if hi > limit:
            if not up_to_limit or lo >= limit:
                return None
            hi = limit
        found = probe(hi)
        if found is not None:
            break
        if hi == limit:
            return None
        lo, gap = hi, gap * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        trial = probe(mid)
        lo, hi, found = (lo, mid, trial) if trial is not None else (mid, hi, found)
    return hi, found
