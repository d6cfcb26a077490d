"""The checks of the Python API's arguments, shared by ``rflint.api``'s functions and
``Prepared.at`` (which the API hands out): a wrong type is one RflintError naming the argument.
No torch here: ``import rflint`` stays light."""

from __future__ import annotations

import numbers
from typing import Any

from rflint.errors import RflintError
from rflint.wording import count


def _whole(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_arguments(function: str, arguments: dict[str, Any]) -> None:
    """The arguments every API function shares, checked before any work: a wrong type is one
    RflintError naming the argument, not an internal TypeError from deep inside (rflint reading
    channels='3' in a comparison, a string shape read digit by digit)."""
    def fail(name: str, expected: str) -> None:
        raise RflintError(f"{function}(): {name} must be {expected}, got {arguments[name]!r}")

    channels = arguments.get("channels")
    if channels is not None and not (_whole(channels) and channels > 0):
        fail("channels", "a positive whole number (or None: the first conv's in_channels)")
    kwargs = arguments.get("kwargs")
    if kwargs is not None and not (isinstance(kwargs, dict) and all(isinstance(k, str) for k in kwargs)):
        fail("kwargs", "a dict of keyword arguments for the factory, e.g. {'width': 8}")
    shapes = arguments.get("input_shapes")
    if shapes is not None:
        if isinstance(shapes, (str, bytes)) or not isinstance(shapes, (list, tuple)) or not shapes or not all(
                isinstance(shape, (list, tuple)) and shape and all(_whole(d) for d in shape) for shape in shapes):
            fail("input_shapes", "a list of full shapes of whole numbers, one per forward() argument, "
                                 "e.g. [(1, 3, 224, 224)]")
        if arguments.get("input_size") is not None:
            raise RflintError(f"{function}(): give either input_size or input_shapes, not both")
        if channels is not None and len(shapes[0]) > 1 and shapes[0][1] != channels:  # as --channels with --input-shape
            raise RflintError(f"{function}(): input_shapes gives the first input {count(shapes[0][1], 'channel')} but "
                              f"channels is {channels}")
    layers = arguments.get("layers")
    if layers is not None and not isinstance(layers, str) and not (
            isinstance(layers, (list, tuple)) and all(isinstance(name, str) for name in layers)):
        fail("layers", "layer names, e.g. ['conv1', 'maxpool'] (or 'conv1,maxpool')")
    settings = arguments.get("settings")
    if settings is not None:
        from rflint.rules.base import Settings

        if not isinstance(settings, Settings):
            fail("settings", "a rflint.rules.Settings, e.g. Settings(min_tail_layers=2)")
        settings.validate()  # fields set after construction
