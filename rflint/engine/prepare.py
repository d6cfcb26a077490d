"""Load and trace a model once; then analyze it at any input size (``Prepared.at``)."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from rflint.arguments import check_arguments
from rflint.engine.ops.functions import SPATIAL_FUNCTIONS
from rflint.engine.program import Probe, input_needs, probe, run_program
from rflint.engine.results import Analysis
from rflint.engine.size_hints import NO_CHANNEL_DIM, axes_text, explain_failure, first_conv_in, side_limit
from rflint.engine.weights import fetch
from rflint.errors import RflintError, api_words
from rflint.trace import LoadedModel, Traced, evaluating, fx_trace, load_model
from rflint.trace.tracing import VALUE_AWARE, trace_at_size, value_trace


def _first_conv(gm: fx.GraphModule | None, module: nn.Module) -> tuple[int, int] | None:
    """(in_channels, spatial rank) of the first convolution: in graph order when traced, else in
    module registration order."""
    nodes = list(gm.graph.nodes) if gm is not None else []
    for node in nodes:
        if node.op == "call_module":
            m = gm.get_submodule(node.target)
            if isinstance(m, nn.modules.conv._ConvNd):
                return _conv_io(m)
        name = getattr(node.target, "__name__", "") if node.op == "call_function" else ""
        if name in ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"):
            w = node.args[1] if len(node.args) > 1 else node.kwargs.get("weight")
            t = _kernel_value(gm, w) if isinstance(w, fx.Node) else None
            if t is not None:
                if name.startswith("conv_transpose"):  # weight (in, out/groups, *k)
                    return t.shape[0], t.dim() - 2
                groups = node.kwargs.get("groups", node.args[6] if len(node.args) > 6 else 1)
                return t.shape[1] * int(groups), t.dim() - 2
    for m in module.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            return _conv_io(m)
    return None


def _kernel_value(gm: fx.GraphModule, w: fx.Node) -> Any:
    """A functional conv's kernel (on meta): a parameter, or one computed from parameters in
    forward() (OREPA/DBB's w3 + F.pad(w1), a weight-normed kernel).  None when it depends on the
    input (a hypernetwork's kernel) or cannot be worked out: it was only ever the bare parameter, so
    a model of such convs alone was 'nothing to lint'."""
    values: dict[fx.Node, Any] = {}

    def value(node: fx.Node) -> Any:
        if node not in values:
            if node.op == "get_attr":
                t = fetch(gm, node.target)
                values[node] = t.to("meta") if isinstance(t, torch.Tensor) else t
            elif node.op in ("call_function", "call_method"):
                args = fx.node.map_arg(node.args, value)
                kwargs = fx.node.map_arg(node.kwargs, value)
                fn = node.target if node.op == "call_function" else getattr(args[0], node.target)
                values[node] = fn(*args, **kwargs) if node.op == "call_function" else fn(*args[1:], **kwargs)
            else:  # the input, or a module call: not a kernel made of weights alone
                raise LookupError(node.name)
        return values[node]

    try:
        with torch.no_grad():
            t = value(w)
    except Exception:  # noqa: BLE001 - any failure means: not worked out here
        return None
    return t if isinstance(t, torch.Tensor) and t.dim() >= 3 else None


def _conv_io(m: nn.modules.conv._ConvNd) -> tuple[int, int]:
    # a transposed conv's weight is (in, out/groups, ...): in_channels is the input either way
    return m.in_channels, len(m.kernel_size)


Shapes = tuple[tuple[int, ...], ...]  # full input shapes, one per forward() argument

_SPATIAL_LAYERS = (nn.modules.conv._ConvNd, nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
                   nn.modules.pooling._LPPoolNd, nn.modules.pooling._AdaptiveAvgPoolNd,
                   nn.modules.pooling._AdaptiveMaxPoolNd, nn.Upsample, nn.PixelShuffle, nn.PixelUnshuffle,
                   nn.Unfold, nn.Fold)


def _has_spatial_layer(module: nn.Module, traced: Traced | None) -> bool:
    """A conv, pool or resampling layer, as a module or as a function forward() calls."""
    if any(isinstance(m, _SPATIAL_LAYERS) for m in module.modules()):
        return True
    return traced is not None and any(n.op == "call_function" and n.target in SPATIAL_FUNCTIONS
                                      for n in traced.gm.graph.nodes)


class NothingToLint(RflintError):
    """The model has no spatial layer (an MLP): not an error, there is just nothing to check."""


@dataclass
class Prepared:
    """A loaded and traced model, ready to be analyzed at any input size."""

    loaded: LoadedModel
    traced: Traced | None  # None: symbolic tracing failed, trace per size with a fallback
    channels: int
    n_axes: int | None
    factory_kwargs: dict[str, Any] = field(default_factory=dict)
    trace_error: str | None = None
    default_channels: int | None = None  # what `channels` is when the user gives none (the first conv's)
    # parameter count per module path, and "" for the whole model: shared by every analysis of
    # this model (sizes, stem experiments) because surgery never changes parameters
    param_counts: dict[str, int] = field(default_factory=dict, repr=False)
    _by_shapes: dict = field(default_factory=dict, repr=False)
    _leaves_traced: Traced | None = field(default=None, repr=False)  # the opaque-leaves fallback, any size
    words_for_api: bool = field(default=False, repr=False)  # from rflint.prepare: errors advise arguments, not flags
    # a model with lazy layers (nn.LazyLinear ...): how to prepare it again.  Its lazy layers take
    # their shapes at the first size analysed (a LazyLinear head its in_features), so another
    # size needs the model anew (see anew)
    lazy_origin: tuple | None = field(default=None, repr=False)
    _lazy_shapes: Any = field(default=None, repr=False)  # the shapes its lazy layers took

    def anew(self) -> "Prepared":
        """This model prepared again, its lazy layers still lazy; itself when it has none."""
        if self.lazy_origin is None:
            return self
        model, channels, kwargs, label, real_weights, n_inputs, root = self.lazy_origin
        # the object the target names, not the target string: its file is not imported again (its
        # module-level code ran twice for two sizes)
        fresh = prepare(self.loaded.origin if self.loaded.origin is not None else model, channels, kwargs,
                        label or self.label, real_weights, n_inputs, root)
        fresh.loaded.target, fresh.loaded.factory_source = self.loaded.target, self.loaded.factory_source
        fresh.words_for_api = self.words_for_api
        return fresh

    @property
    def label(self) -> str:
        return self.loaded.label

    def traced_at(self, shapes: Shapes) -> Traced:
        """The graph for these inputs: the symbolic trace, or a fallback traced at this size.

        Each size tries the fallbacks from the first (concrete shapes) again: where that fails at
        one size only (a map too small for a norm, a shape check), the next size must not inherit
        the opaque-leaves graph it fell back to, or a report would depend on the order of the sizes.
        The opaque-leaves trace itself holds for every size, so it is made once."""
        if shapes in self._by_shapes:  # a fallback for these shapes (value_traced_at) comes first
            return self._by_shapes[shapes]
        if self.traced is not None and not self.traced.specialized:
            return self.traced
        traced = self._by_shapes[shapes] = trace_at_size(self.loaded.module, list(shapes), self.trace_error or "",
                                                         self._leaves_traced)
        if not traced.specialized:
            self._leaves_traced = traced
        return traced

    def probe_limit(self, spatial: tuple[int, ...]) -> int:
        """How far a search for a size that runs may go from ``spatial``: side_limit, but only
        four times the size (at least 1024) for a model traced on real values, whose every trial
        computes on real tensors (a fixed head that never fits had a search probe 16k x 16k px)."""
        limit = side_limit(len(spatial))
        if any(t.method.startswith(VALUE_AWARE) for t in self._by_shapes.values()):
            return min(limit, max(1024, 4 * max(spatial)))
        return limit

    def value_traced_at(self, shapes: Shapes) -> Traced | None:
        """For a graph whose shapes meta tensors cannot give (``torch.nonzero(x).shape``: the
        symbolic trace records it, the shape pass cannot run it), a trace on real values at these
        shapes, from now on the graph for them; None if the graph for them is one already."""
        current = self.traced_at(shapes)
        if current.method.startswith(VALUE_AWARE):
            return None
        traced = value_trace(self.loaded.module, list(shapes))
        self._by_shapes[shapes] = traced
        return traced

    def _conv_reads_input(self, shapes: Shapes) -> bool:
        """The first conv reads the model's input itself, so its rank is the input's.  Not when it
        reads a map made from it: a waveform's spectrogram (STFT front end), (N, C, T) in, 2-D convs.
        Where the symbolic trace failed (``b, c, t = x.shape``, a branch on the length), the trace at
        these shapes tells: the first conv's rank had a waveform model that views its input as 2-D
        (HiFi-GAN's period discriminator) refused at every size.  Not known: the first conv's rank."""
        traced = self.traced
        if traced is None:
            try:
                traced = self.traced_at(shapes)
            except RflintError:  # (it does not run at these shapes either: the rank is the likely cause)
                return True
        first = first_conv_in(traced)
        return first is None or first[2]

    def input_size(self, size: int | tuple[int, ...] | list[int] | None) -> tuple[int, ...]:
        if size is None:
            if self.loaded.suggested_input is None:
                raise RflintError(f"{self.label}: no input size given (use --input, e.g. --input 224)")
            return self.loaded.suggested_input
        size = _whole_numbers(size)
        if isinstance(size, int):
            if self.n_axes is None:
                raise RflintError(f"{self.label}: cannot tell how many spatial axes the input has; give them all, e.g. 32x32")
            size = (size,) * self.n_axes
        size = tuple(int(s) for s in size)
        if self.n_axes is not None and len(size) != self.n_axes:
            raise RflintError(
                f"{self.label} expects {axes_text(self.n_axes)} (its first conv is {self.n_axes}-D), "
                f"got input {'x'.join(map(str, size))}"
            )
        if any(s <= 0 for s in size):
            raise RflintError(f"input size must be positive, got {'x'.join(map(str, size))}")
        return size

    def at(self, size: int | tuple[int, ...] | None = None, shapes: list[tuple[int, ...]] | None = None,
           replace: dict[str, nn.Module] | None = None, input_shapes: list[tuple[int, ...]] | None = None
           ) -> Analysis:
        """Analyze at ``size`` (spatial), or with full ``shapes`` (one per forward() argument; also
        ``input_shapes``, as rflint.analyze names them).  ``replace``: module path -> module to call
        instead (what-if experiments, surgery.stride_one)."""
        if shapes is not None and input_shapes is not None:
            raise RflintError("at(): give shapes or input_shapes (the same thing), not both")
        shapes = shapes if shapes is not None else input_shapes
        if shapes is not None:  # the checks rflint.analyze makes ("1,3,32,32", a float side, a shape of strings)
            check_arguments("at", {"input_shapes": shapes})
        if size is not None and shapes is not None and self.input_size(size) != tuple(shapes[0][2:]):
            # which would win is a guess (the shapes did, silently); a size that agrees is harmless
            raise RflintError("at(): give either a size or input shapes, not both")
        with api_words(self.words_for_api):
            full = self.full_shapes(size, shapes)
            if self.lazy_origin is not None:  # lazy layers keep the shapes of the first analysis
                if self._lazy_shapes is None:
                    self._lazy_shapes = full
                elif full != self._lazy_shapes:
                    return self.anew().at(size, shapes, replace)
            try:
                with evaluating(self.loaded):
                    return run_program(self, full, replace)
            except RflintError as err:
                raise explain_failure(self, full, err, full_shapes=bool(shapes)) from err

    def probe(self, size: int | tuple[int, ...] | None, replace: dict[str, nn.Module] | None = None,
              base: Analysis | None = None) -> Probe:
        """Shapes and the RF program alone at ``size`` (what-if experiments: no per-layer report).
        ``base``: this model's finished analysis, whose RFs the pass reuses where they provably
        follow (engine/replay.py).  Raises RflintError, unexplained, when the model does not run so."""
        with evaluating(self.loaded):
            return probe(self, self._shapes_like(size, base), replace, base)

    def needs_at(self, size: tuple[int, ...], base: Analysis | None = None) -> tuple[int, ...] | None:
        """Per input axis, the smallest size no RF layer's input r_min exceeds, from an analysis at
        ``size`` (RF program only, no report); None when the model does not run at ``size``.
        ``base``: this model's analysis at another size, whose RFs are reused where they must
        be the same (engine/replay.py)."""
        found = self.try_needs(size, base)
        return None if isinstance(found, RflintError) else found

    def try_needs(self, size: tuple[int, ...], base: Analysis | None = None) -> tuple[int, ...] | RflintError:
        """:meth:`needs_at`, with the reason (the error, returned) when the model does not run at ``size``."""
        if self.lazy_origin is not None:  # its lazy layers took another size's shapes: the model anew
            try:
                fresh = self.anew()
            except RflintError as err:
                return err.with_traceback(None)
            fresh.lazy_origin = None  # (for this one size)
            return fresh.try_needs(size)
        try:
            with evaluating(self.loaded):
                return input_needs(self, self._shapes_like(size, base), base)
        except RflintError as err:
            # without its traceback: that would hold this frame (and so the error itself: a cycle
            # only the garbage collector frees, which the CLI pauses during a job) and the failed
            # pass's frames with all their values
            return err.with_traceback(None)

    def _shapes_like(self, size, base: Analysis | None) -> Shapes:
        """Input shapes for a what-if at spatial ``size``: ``base``'s inputs (a model with several
        forward() arguments, or a batch of its own: frames folded into it), each image scaled to
        ``size`` in proportion to the first (the RF axes of every image input are the first one's),
        the others as they were."""
        shapes = base.input_shapes if base is not None else ()
        folded = bool(shapes) and self.n_axes is not None and len(shapes[0]) != self.n_axes + 2
        if not shapes or (len(shapes) < 2 and shapes[0][0] == 1 and not folded):
            return self.full_shapes(size, None)
        if folded:  # a clip the model folds (full_shapes): sizes of its own rank, not the first conv's
            return scaled_shapes(shapes, _whole_numbers(size) if isinstance(size, tuple) else self.input_size(size))
        return scaled_shapes(shapes, self.input_size(size))

    def full_shapes(self, size, shapes=None) -> Shapes:
        """The whole input shapes (N, C, *spatial) that ``at(size, shapes)`` analyses."""
        if shapes:
            full = tuple(tuple(int(d) for d in shape) for shape in shapes)
            if any(d <= 0 for shape in full for d in shape):
                raise RflintError(f"input shapes must be positive, got {list(full)}")
            if len(full[0]) < 3:  # (N, L): a waveform model that adds the channel dim itself, or a mistake
                raise RflintError(f"the first input must be (N, C, *spatial), got {list(full[0])}; a vector (a "
                                  "generator's latent) has no receptive field to lint; for a model that takes (N, L) "
                                  f"signals without channels, {NO_CHANNEL_DIM}")
            if self.n_axes is not None and len(full[0]) < self.n_axes + 2 and self._conv_reads_input(full):
                # (3, 32, 32), unbatched:
                # torch would run the 2-D model on it as one 3x32x32 map with a batch of 3... or fail.
                # More dims than the first conv's are a clip or volume the model folds (a TSN's
                # view(N*T, C, H, W)): the folded axis is merged into the batch, the others go on
                raise RflintError(f"{self.label} expects {axes_text(self.n_axes)} (its first conv is {self.n_axes}-D), "
                                  f"got input shape {','.join(map(str, full[0]))}")
            return full
        return ((1, self.channels, *self.input_size(size)),)


def scaled_shapes(template: Shapes, size: tuple[int, ...]) -> Shapes:
    """``template`` (one shape per forward() argument) with the first input's spatial size set to
    ``size`` and every other image input's scaled in proportion (rounded up); other inputs as they
    are.  The what-ifs and sweeps of a model with several inputs: the RF axes of all its image inputs
    are the first one's."""
    first = template[0][2:]
    shapes = []
    for shape in template:
        if len(shape) == len(first) + 2:
            shape = (*shape[:2], *(max(1, -(-s * new // old)) for s, new, old in zip(shape[2:], size, first)))
        shapes.append(tuple(shape))
    return tuple(shapes)


def _whole_numbers(size: Any) -> int | tuple[int, ...]:
    """An input size as the API takes it: an int, or a sequence of them (NumPy integers too); a
    string, a float or a bool is refused rather than read digit by digit ("64" as 6x4) or rounded."""
    def side(v: Any) -> int:
        if isinstance(v, (bool, str, float)):
            raise TypeError
        return operator.index(v)

    try:
        if isinstance(size, (list, tuple)):
            return tuple(side(v) for v in size)
        return side(size)
    except TypeError:
        raise RflintError(f"input size must be a whole number or a tuple of them, e.g. 32 or (32, 48); "
                          f"got {size!r}") from None


# the modules of a converted (quantized) model; QAT's fake-quantized layers (torch.ao.nn.qat) are
# float layers and are analysed
_QUANTIZED = ("torch.ao.nn.quantized", "torch.ao.nn.intrinsic.quantized", "torch.nn.quantized",
              "torch.nn.intrinsic.quantized")
# ... except the float module they hold: FloatFunctional, the add / cat of every quantizable model
# before convert() (torchvision's quantization models, a prepare_qat model).  (A reference model,
# convert_to_reference_fx's, is converted: its graph quantizes and dequantizes, which meta cannot.)
_FLOAT_IN_QUANTIZED = ("FloatFunctional", "FXFloatFunctional")


def _converted(module: Any) -> bool:
    """A layer of a converted model: it runs on quantized tensors only (none on meta)."""
    kind = type(module)
    return kind.__module__.startswith(_QUANTIZED) and kind.__name__ not in _FLOAT_IN_QUANTIZED


def prepare(model: Any, channels: int | None = None, kwargs: dict[str, Any] | None = None,
            label: str | None = None, real_weights: bool = False, n_inputs: int = 1, root: str | None = None) -> Prepared:
    """Load and trace ``model`` once.  ``real_weights`` builds factories on the CPU instead of the
    meta device (needed when the traced graph itself is handed back as a runnable model).
    ``n_inputs``: how many forward() arguments will be given; later ones keep their defaults.
    ``root``: where a package.module target imports from (default: the working directory)."""
    loaded = load_model(model, kwargs, label, real_weights, root)
    traced, trace_error = None, None
    try:
        with evaluating(loaded):
            traced = fx_trace(loaded.module, n_inputs=n_inputs)
    except RflintError as err:
        trace_error = str(err)
    quantized = next((m for m in loaded.module.modules() if _converted(m)), None)
    if quantized is not None:  # converted: its layers run on quantized CPU tensors only, none on meta
        raise RflintError(f"{loaded.label} holds quantized layers ({type(quantized).__module__}."
                          f"{type(quantized).__name__}): rflint reads float models, and the architecture is the "
                          "same before quantization, so lint the model before convert() / quantize_dynamic()")
    first = _first_conv(traced.gm if traced else None, loaded.module)
    if first is None and not _has_spatial_layer(loaded.module, traced):
        raise NothingToLint(f"{loaded.label} has no convolution, pooling or resampling layer: nothing to lint")
    default_channels = first[0] if first else loaded.suggested_channels
    if first is not None and first[0] == 0:  # nn.LazyConv2d: in_channels 0 until its first call
        default_channels = None
        if channels is None:
            raise RflintError(f"{loaded.label}: its first conv is lazy (it takes in_channels from its first input), "
                              "so it does not tell the input's channels; pass --channels")
    if channels is None:
        channels = default_channels
    if channels is None:
        raise RflintError(f"{loaded.label}: no convolution found to infer the input channels from; pass --channels")
    if channels <= 0:
        raise RflintError(f"channels must be positive, got {channels}")
    n_axes = first[1] if first else (len(loaded.suggested_input) if loaded.suggested_input else None)
    prepared = Prepared(loaded, traced, channels, n_axes, dict(kwargs or {}), trace_error, default_channels)
    if loaded.lazy:
        prepared.lazy_origin = (model, channels, kwargs, label, real_weights, n_inputs, root)
    return prepared
