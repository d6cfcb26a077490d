"""The Python API: ``rflint.analyze``, ``rflint.prepare``, ``rflint.truncate``, ``rflint.remove_stem``.

The engine's functions themselves, with one difference: their errors give advice in the API's words
(``pass channels=3``) instead of the command line's (``set --channels 3``), see errors.api_words.
A :class:`~rflint.engine.prepare.Prepared` from ``rflint.prepare`` keeps doing so in ``.at(size)``.
"""

from __future__ import annotations

import functools
import inspect
import numbers
from typing import Any, Callable

from rflint.errors import RflintError, api_words


def _in_api_words(fn: Callable) -> Callable:
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any):
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:
            bound = None  # Python's own message (a missing or unknown argument) is the right one
        if bound is not None:
            _check_arguments(fn.__name__, bound.arguments)
        with api_words():
            result = fn(*args, **kwargs)
        if hasattr(result, "words_for_api"):  # a Prepared: its .at() is API too
            result.words_for_api = True
        return result
    return call


def _whole(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_arguments(function: str, arguments: dict[str, Any]) -> None:
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


def __getattr__(name: str):
    if name in ("analyze", "prepare"):
        from rflint import engine as owner
    elif name in ("truncate", "remove_stem"):
        from rflint import fixes as owner
    else:
        raise AttributeError(f"module 'rflint.api' has no attribute {name!r}")
    wrapped = globals()[name] = _in_api_words(getattr(owner, name))  # made once: rflint.analyze is rflint.analyze
    return wrapped
