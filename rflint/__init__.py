"""rflint: a static receptive-field linter for convolutional networks.

Heavy imports (torch) happen on first use of the API, so ``rflint --help``/``--version`` stay instant.
"""

from rflint._version import __version__

from rflint.declared import layer  # noqa: E402  (no torch import: a plain decorator)

__all__ = ["__version__", "Analysis", "Layer", "analyze", "layer", "prepare", "truncate", "remove_stem"]


def __getattr__(name: str):
    if name in ("analyze", "prepare", "truncate", "remove_stem"):
        from rflint import api  # the engine's functions, their errors worded for Python callers

        return getattr(api, name)
    if name in ("Analysis", "Layer"):
        from rflint import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'rflint' has no attribute {name!r}")
