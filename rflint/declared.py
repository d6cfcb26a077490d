"""Layers whose receptive field the user declares: custom modules rflint should not look inside.

    @rflint.layer(kernel=3, stride=2)
    class MyDownsample(nn.Module): ...

or in pyproject.toml::

    [tool.rflint.layers]
    "mypkg.blocks.MyDownsample" = { kernel = 3, stride = 2, dilation = 1 }

A declared module is traced as one leaf and behaves like a conv with that kernel, stride and
dilation (ints, or one value per spatial axis).  Its padding is unknown, so RF004 skips it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rflint.errors import RflintError


@dataclass(frozen=True)
class LayerSpec:
    kernel: Any = 1
    stride: Any = 1
    dilation: Any = 1
    parametric: bool | None = None  # None: has parameters


_by_name: dict[str, LayerSpec] = {}
_version = [0]  # bumped by every declaration: what was compiled before it (rfpass.plan_of) is stale


def version() -> int:
    return _version[0]


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def layer(kernel: Any = 1, stride: Any = 1, dilation: Any = 1):
    """Class decorator: declare a custom module's kernel, stride and dilation."""
    spec = _validated(LayerSpec(kernel, stride, dilation), "rflint.layer")

    def mark(cls: type) -> type:
        cls.__rflint_layer__ = spec
        _version[0] += 1
        return cls

    return mark


def declare(name: str, values: dict[str, Any], where: str = "[tool.rflint.layers]") -> None:
    """Declare by qualified class name (from the config)."""
    _by_name[name] = checked(name, values, where)
    _version[0] += 1


def checked(name: str, values: dict[str, Any], where: str = "[tool.rflint.layers]") -> LayerSpec:
    """The spec a [tool.rflint.layers] entry declares, or the error in it (config.py checks every
    entry when it reads the file, before any model loads)."""
    unknown = set(values) - {"kernel", "stride", "dilation"}
    if unknown:
        raise RflintError(f"{where} {name}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(sorted(unknown))}")
    return _validated(LayerSpec(**values), f"{where} {name}")


_by_class: dict[type, LayerSpec | None] = {}  # spec_for's answers, per class, for _by_class_version
_by_class_version = [-1]


def spec_for(module: Any) -> LayerSpec | None:
    """The declared spec of the module's class (the decorator's, else the config's), or None.
    Answers are kept per class until the next declaration: the RF program asks for every module
    of every trace, and a class lookup of a missing attribute walks the MRO and raises inside."""
    cls = type(module)
    if _by_class_version[0] != _version[0]:
        _by_class.clear()
        _by_class_version[0] = _version[0]
    try:
        return _by_class[cls]
    except KeyError:
        pass
    spec = getattr(cls, "__rflint_layer__", None)
    if spec is None and _by_name:  # nothing declared in the config: skip building the class's name
        spec = _by_name.get(qualified_name(cls))
    _by_class[cls] = spec
    return spec


def _validated(spec: LayerSpec, where: str) -> LayerSpec:
    for key in ("kernel", "stride", "dilation"):
        value = getattr(spec, key)
        values = value if isinstance(value, (list, tuple)) else [value]
        if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
            raise RflintError(f"{where}: {key} must be a positive integer or a list of them, got {value!r}")
    return spec
