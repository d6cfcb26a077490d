"""The RF engine's public face: ``analyze()``.

``prepare()`` (prepare.py) loads and traces once; ``Prepared.at(size)`` re-propagates shapes and
re-runs the RF program (program.py) for any input size, so sweeps, the smallest-clean-size search
and the stem experiment reuse one trace.
"""

from __future__ import annotations

from typing import Any

from rflint.engine.prepare import Prepared, _first_conv, prepare
from rflint.engine.results import Analysis, Layer

__all__ = ["Analysis", "Layer", "Prepared", "_first_conv", "analyze", "prepare"]


def analyze(model: Any, input_size: int | tuple[int, ...] | None = None, channels: int | None = None,
            kwargs: dict[str, Any] | None = None,
            input_shapes: list[tuple[int, ...]] | None = None) -> Analysis:
    """Analyze ``model`` (an nn.Module, a class, a factory, or a TARGET string) at ``input_size``.

    ``input_size`` is an int (every spatial axis) or one int per axis; ``channels`` defaults to the
    first conv's ``in_channels``.  ``input_shapes`` gives full shapes, one per forward() argument
    (N, C, *spatial), instead.
    """
    n_inputs = len(input_shapes) if input_shapes else 1
    if input_shapes and channels is None and len(input_shapes[0]) > 1:
        channels = input_shapes[0][1]  # the shape says it (the model may have no conv to read it from)
    return prepare(model, channels, kwargs, n_inputs=n_inputs).at(input_size, shapes=input_shapes)
