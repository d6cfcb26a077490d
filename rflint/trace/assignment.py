"""Item assignment in forward() (``y[:, :, 0] = 0``, ``y[y < 0] = 0``, ``out[:, :4] = a``) as a
function of the graph.

torch.fx proxies have no ``__setitem__`` ("'Proxy' object does not support item assignment"), so a
model that writes into a tensor could not be traced at all.  A traced assignment becomes a node
``assigned(y, key, value)`` that returns the written tensor, and the proxy ``y`` is re-pointed at
that node, so the code after it reads the new tensor: the graph stays a pure data flow, in which
the RF program merges what was written with what was there (engine/ops/functions.py).

A tensor the model makes from concrete sizes (``torch.zeros(n, 4, h, w)`` once the concrete-shapes
tracer has answered ``x.shape``) is a constant, not a proxy; a traced value written into it is
recorded the same way, and the tracer hands the written node to every later use of that tensor
(:class:`WrittenConstants`).  Without that the write was a constant too: the layers that made the
value vanished from the graph without a word.

Not followed: a write through a view into the tensor it views (``v = x[:, :4]; v[...] = 0`` also
changes ``x``); the graph keeps ``x`` as it was.  The RF of such a write is a merge, which seldom
decides anything; the message for a model that needs it would be a wrong RF, not an error, so the
README says so.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
import torch.fx as fx
from torch.fx.node import map_aggregate
from torch.overrides import TorchFunctionMode


def assigned(tensor: torch.Tensor, key: Any, value: Any) -> torch.Tensor:
    """``tensor[key] = value`` on a copy, returned: what the model's tensor holds after the write."""
    metas: list[bool] = []
    map_aggregate((tensor, key, value), lambda v: metas.append(v.is_meta) if isinstance(v, torch.Tensor) else v)
    if any(metas):  # on meta the shape is all there is (and a mask key would need values); a
        return torch.empty_like(tensor, device="meta")  # constant the model made may be on the CPU
    out = tensor.clone()
    out[key] = value
    return out


class Assignable:
    """Mixin for fx proxies: ``proxy[key] = value`` records :func:`assigned` and re-points the proxy
    at its node (a ShapeProxy also takes the new value its tracer evaluated)."""

    def __setitem__(self, key: Any, value: Any) -> None:
        written = self.tracer.create_proxy("call_function", assigned, (self, key, value), {})
        self.node = written.node
        if hasattr(written, "meta_value"):
            self.meta_value = written.meta_value


def _has_proxy(value: Any) -> bool:
    found = []
    map_aggregate(value, lambda v: found.append(v) if isinstance(v, fx.Proxy) else v)
    return bool(found)


class _ReadWritten(TorchFunctionMode):
    """While a trace has written into a plain tensor: every torch function or tensor method that
    gets such a tensor (``out.relu()``, ``out * 2``, ``out[:, :4]``, ``torch.cat([out, y])``) gets
    its written proxy instead, so the op is recorded on the new content, not run on the stale
    constant (which dropped the layers that made the content from the graph, without a word)."""

    def __init__(self, tracer: "WrittenConstants"):
        super().__init__()
        self.tracer = tracer

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        swapped = []

        def swap(value: Any) -> Any:
            if isinstance(value, torch.Tensor):
                written = self.tracer._written_proxy(value)
                if written is not None:
                    swapped.append(written)
                    return written
            return value

        args, kwargs = map_aggregate(args, swap), map_aggregate(kwargs, swap)
        if swapped:  # recorded as the proxy records any torch op on it (a method, an operator ...)
            return type(swapped[0]).__torch_function__(func, (type(swapped[0]),), tuple(args), kwargs)
        return func(*args, **kwargs)


class WrittenConstants:
    """Mixin for rflint's tracers: plain tensors that traced values were written into, each with the
    proxy of its latest content, which later uses get instead of the constant: fx's arguments
    (:meth:`create_arg`: a module called on it) and torch's functions (:class:`_ReadWritten`)."""

    def _written_proxy(self, tensor: torch.Tensor) -> fx.Proxy | None:
        entry = getattr(self, "_written", {}).get(id(tensor))
        return entry[1] if entry is not None and entry[0] is tensor else None

    def create_arg(self, a: Any) -> Any:
        if isinstance(a, torch.Tensor) and not isinstance(a, fx.Proxy):
            written = self._written_proxy(a)
            if written is not None:
                return written.node
        return super().create_arg(a)

    @contextlib.contextmanager
    def writes_into_constants(self) -> Iterator[None]:
        """While tracing: ``t[key] = value`` on a plain tensor with a proxy in the key or value (or
        one already written so) is recorded as :func:`assigned`, not run (torch would turn the proxy
        into a number).  From the first such write on, :class:`_ReadWritten` is active: it costs a
        Python call per torch op, which a model without such writes never pays."""
        self._written: dict[int, tuple[torch.Tensor, fx.Proxy]] = {}
        had_own = "__setitem__" in vars(torch.Tensor)
        original = torch.Tensor.__setitem__
        tracer, mode = self, _ReadWritten(self)
        active = []

        def setitem(t: torch.Tensor, key: Any, value: Any) -> None:
            base = tracer._written_proxy(t) if not isinstance(t, fx.Proxy) else None
            if base is None and not (_has_proxy(key) or _has_proxy(value)):
                return original(t, key, value)
            proxy = tracer.create_proxy("call_function", assigned, (base if base is not None else t, key, value), {})
            tracer._written[id(t)] = (t, proxy)  # the tensor kept too: its id stays its own
            if not active:
                mode.__enter__()
                active.append(mode)
            return None

        torch.Tensor.__setitem__ = setitem
        try:
            yield
        finally:
            if active:
                mode.__exit__(None, None, None)
            if had_own:
                torch.Tensor.__setitem__ = original
            else:
                del torch.Tensor.__setitem__
            self._written = {}
