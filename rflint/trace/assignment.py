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


class WrittenConstants:
    """Mixin for rflint's tracers: plain tensors that traced values were written into, each with the
    proxy of its latest content, which :meth:`create_arg` hands to later uses instead of a constant."""

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
        into a number)."""
        self._written: dict[int, tuple[torch.Tensor, fx.Proxy]] = {}
        original = torch.Tensor.__setitem__
        tracer = self

        def setitem(t: torch.Tensor, key: Any, value: Any) -> None:
            base = tracer._written_proxy(t) if not isinstance(t, fx.Proxy) else None
            if base is None and not (_has_proxy(key) or _has_proxy(value)):
                return original(t, key, value)
            proxy = tracer.create_proxy("call_function", assigned, (base if base is not None else t, key, value), {})
            tracer._written[id(t)] = (t, proxy)  # the tensor kept too: its id stays its own
            return None

        torch.Tensor.__setitem__ = setitem
        try:
            yield
        finally:
            torch.Tensor.__setitem__ = original
            self._written = {}
