"""The Python API: ``rflint.analyze``, ``rflint.prepare``, ``rflint.truncate``, ``rflint.remove_stem``.

The engine's functions themselves, with one difference: their errors give advice in the API's words
(``pass channels=3``) instead of the command line's (``set --channels 3``), see errors.api_words.
A :class:`~rflint.engine.prepare.Prepared` from ``rflint.prepare`` keeps doing so in ``.at(size)``.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

from rflint.arguments import check_arguments
from rflint.errors import api_words


def _in_api_words(fn: Callable) -> Callable:
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any):
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:
            bound = None  # Python's own message (a missing or unknown argument) is the right one
        if bound is not None:
            check_arguments(fn.__name__, bound.arguments)
        with api_words():
            result = fn(*args, **kwargs)
        if hasattr(result, "words_for_api"):  # a Prepared: its .at() is API too
            result.words_for_api = True
        return result
    return call


def __getattr__(name: str):
    if name in ("analyze", "prepare"):
        from rflint import engine as owner
    elif name in ("truncate", "remove_stem"):
        from rflint import fixes as owner
    else:
        raise AttributeError(f"module 'rflint.api' has no attribute {name!r}")
    wrapped = globals()[name] = _in_api_words(getattr(owner, name))  # made once: rflint.analyze is rflint.analyze
    return wrapped
