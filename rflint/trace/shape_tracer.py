"""A torch.fx tracer that knows shapes while it traces (the fallback when symbolic tracing fails).

Plain symbolic tracing cannot answer ``len(x.shape)``, ``if x.shape[-1] != y.shape[-1]`` or
``for c in x.shape``: proxies have no values.  Real model code (monai's BasicUNet, for one) asks
exactly that.  This tracer runs every recorded op on meta tensors as it records it, so such
questions get their concrete answer for the requested input size and tracing goes on.  The graph
is then specialised to that size (re-trace for another size); questions about tensor *values*
(``if x.sum() > 0``) still cannot be answered and fail with a clear message.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.fx as fx
from torch.fx.node import map_aggregate

from rflint.errors import RflintError
from rflint.trace.assignment import Assignable
from rflint.trace.metaspec import TRACED_VALUE, MetaSpec, needs_values
from rflint.trace.shapes import call_method, on_meta
from rflint.trace.sources import copied_module, node_site
from rflint.trace.tracing import RflintTracer


class DataDependent(RflintError):
    """forward() branches on tensor values: only value-aware tracing can follow it."""


# tensor facts that are concrete once the size is fixed: answered directly, not recorded
_TENSOR_FACTS = {"shape", "ndim", "dtype", "device", "layout", "is_cuda", "is_meta"}
_TENSOR_FACT_METHODS = {"size", "dim", "numel", "nelement", "ndimension"}


def iterate(proxy: fx.Proxy):
    """Iteration over a proxy, from its value: a tuple's items (as proxies), a dict's keys."""
    value = getattr(proxy, "meta_value", None)
    if isinstance(value, (tuple, list, torch.Size)):
        return (proxy[i] for i in range(len(value)))
    if isinstance(value, type({}.keys())):  # f(x, **kwargs): the names are constants
        return iter(list(value))
    if isinstance(value, torch.Tensor) and proxy.node.op == "placeholder":
        # torchvision's detection models: forward(images) takes a list of (C, H, W) tensors
        raise RflintError(f"forward() iterates over its input {proxy.node.target}: it expects a list of tensors "
                          f"(a detection model's images), and rflint passes one tensor of shape "
                          f"{tuple(value.shape)}; lint the part that takes a batch of maps, e.g. a factory that "
                          f"returns model.backbone")
    raise RflintError(f"cannot iterate over {type(value).__name__} value of {proxy.node.name}")


class _Concrete:
    """What makes a proxy answer len(), iteration and shape questions from its meta value."""

    def __len__(self) -> int:
        return len(self.meta_value)

    def __iter__(self):
        return iterate(self)

    def __int__(self) -> int:  # range(int(x.sum().item())), x.view(n, ...) with a value-made n
        return int(self.tracer.concrete_number(self))

    def __index__(self) -> int:
        return int(self.tracer.concrete_number(self))

    def __float__(self) -> float:
        return float(self.tracer.concrete_number(self))

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        """NumPy asks for the array a proxy stands for (np.zeros_like(x.numpy())): on real values
        that array (a value the model reads, noted like a branch); on meta there is none."""
        import numpy as np

        value = self.meta_value
        if isinstance(value, torch.Tensor):
            if value.is_meta:
                raise DataDependent(f"the model's forward() hands a tensor to NumPy ({self.node.name})")
            value = value.detach().cpu().numpy()
        self.tracer.note_value_read(self.node)
        return np.asarray(value, dtype=dtype)

    def __getattr__(self, k: str):
        if k.startswith("__"):  # numpy & co. probe dunders (__array_struct__): a proxy has none
            raise AttributeError(k)
        value = self.meta_value
        if isinstance(value, torch.Tensor):
            if k in _TENSOR_FACTS:
                return getattr(value, k)
            if k in _TENSOR_FACT_METHODS:
                return getattr(value, k)
        return ShapeAttribute(self, k)


class ShapeProxy(_Concrete, Assignable, fx.Proxy):
    """A proxy that carries the meta value of the node it stands for."""

    meta_value: Any = None


class ShapeAttribute(_Concrete, fx.proxy.Attribute):
    """``x.shape`` on a ShapeProxy: its value is known without creating a node."""

    @property
    def meta_value(self) -> Any:
        return getattr(self.root.meta_value, self.attr)


def _on_cpu_zeros(module: torch.jit.ScriptModule, args: tuple, kwargs: dict, values: bool) -> Any:
    """A TorchScript leaf run on CPU zeros shaped like its (meta) inputs; its output back on meta,
    unless the trace runs on real values."""
    def zeros(v):
        return torch.zeros(v.shape, dtype=v.dtype) if isinstance(v, torch.Tensor) and v.is_meta else v

    out = module.forward(*map_aggregate(args, zeros), **map_aggregate(kwargs, zeros))  # not __call__: fx patches it
    if values:
        return out
    return map_aggregate(out, lambda v: v.to("meta") if isinstance(v, torch.Tensor) else v)


def _resolve(root: torch.nn.Module, target: str) -> Any:
    """Attribute lookup that bypasses nn.Module.__getattr__, which the tracer patches to record
    parameter accesses (going through it here would recurse)."""
    obj: Any = root
    for part in target.split("."):
        if isinstance(obj, torch.nn.Module):
            for store in (obj._modules, obj._parameters, obj._buffers, obj.__dict__):
                if part in store:
                    obj = store[part]
                    break
            else:
                obj = object.__getattribute__(obj, part)
        else:
            obj = getattr(obj, part)
    return obj


class ShapeTracer(RflintTracer):
    """Given meta inputs it answers shape questions; given real CPU inputs (and a model with real
    weights) it also answers value questions, recording where it did (``value_branches``)."""

    def __init__(self, inputs: list[torch.Tensor], leaves: set[str] | None = None):
        super().__init__(leaves)
        self._pending = list(inputs)
        self.values = bool(inputs) and not inputs[0].is_meta
        self.value_branches: list[str] = []
        self._meta_modules: dict[str, torch.nn.Module] = {}
        self._running_leaf = 0  # inside a leaf's forward() (_call_module_meta): its children just run

    def call_module(self, m, forward, args, kwargs):
        if self._running_leaf:  # a child of the leaf copy _call_module_meta runs: not in the graph
            return forward(*args, **kwargs)
        return super().call_module(m, forward, args, kwargs)

    def proxy(self, node: fx.Node) -> ShapeProxy:
        return ShapeProxy(node, self)

    def note_value_read(self, node: fx.Node) -> None:
        """Where forward() read a tensor's values (a branch, a number, a NumPy array): the warning's line."""
        site = node_site(node)
        self.value_branches.append(f"{site.file}:{site.line}" if site else node.name)

    def to_bool(self, obj: fx.Proxy) -> bool:
        value = getattr(obj, "meta_value", None)
        if self.values and value is not None:
            # on real values every branch a proxy decides read them: a tensor's, or a number made
            # from one (x.sum().item() > 0, x.numpy().sum() > 0); shape facts never reach here
            self.note_value_read(obj.node)
            return bool(value)
        if isinstance(value, torch.Tensor):
            raise DataDependent(
                f"the model's forward() branches on a tensor's values ({obj.node.format_node()}); "
                "rflint can only follow branches on shapes"
            )
        return bool(value)

    def concrete_number(self, obj: fx.Proxy) -> Any:
        """The number a proxy stands for (Python code turned it into one: int(), range()); like a
        branch, read from the values, and noted where it was."""
        value = getattr(obj, "meta_value", None)
        if isinstance(value, torch.Tensor):
            if value.is_meta or value.numel() != 1:
                raise DataDependent(f"the model's forward() turns a tensor into a number ({obj.node.format_node()})")
            value = value.item()
        if not isinstance(value, (int, float, bool)):
            raise RflintError(f"cannot turn {type(value).__name__} value of {obj.node.name} into a number")
        if self.values:
            self.note_value_read(obj.node)
        return value

    def iter(self, obj: fx.Proxy):
        return iterate(obj)

    def create_proxy(self, kind, target, args, kwargs, name=None, type_expr=None, proxy_factory_fn=None):
        proxy = super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
        if isinstance(proxy, ShapeProxy):
            proxy.meta_value = self._evaluate(kind, target, args, kwargs)
            value = proxy.meta_value
            if self.values and isinstance(value, torch.Tensor):  # for ops whose shape needs values (nonzero)
                proxy.node.meta[TRACED_VALUE] = MetaSpec(tuple(value.shape), value.dtype)
        return proxy

    def _evaluate(self, kind: str, target: Any, args: tuple, kwargs: dict) -> Any:
        if kind == "placeholder":  # args holds the parameter's default, if it has one
            if str(target).startswith("**"):  # forward(self, x, **kwargs): called without any
                return {}
            if str(target).startswith("*"):  # forward(self, *xs): every input left, as a tuple
                rest, self._pending = tuple(self._pending), []
                return rest
            return self._pending.pop(0) if self._pending else (args[0] if args else None)
        args, kwargs = self._now(args), self._now(kwargs)
        try:
            if kind in ("call_function", "call_method"):
                fn, args = (target, args) if kind == "call_function" else (call_method, (args[0], target, *args[1:]))
                # on meta tensors, one forward() made without a device is moved to meta too
                return fn(*args, **kwargs) if self.values else on_meta(fn, args, kwargs)
            if kind == "call_module":
                return self._call_module_meta(target, args, kwargs)
            if kind == "get_attr":
                value = _resolve(self.root, target)
                return value.to("meta") if isinstance(value, torch.Tensor) and not self.values else value
        except RflintError:
            raise
        except Exception as err:
            if not self.values and needs_values(err):  # .item(), .numpy(), nonzero: repeated on real tensors
                raise DataDependent(f"the model's forward() reads a tensor's values ({target}); meta tensors have none") from err
            text = str(err).strip().splitlines()
            raise RflintError(f"running {target} on {'CPU' if self.values else 'meta'} tensors failed: {type(err).__name__}: "
                              f"{text[0] if text else ''}") from err
        return None

    def _now(self, value: Any) -> Any:
        """Arguments as they are now: a proxy's value, and for a plain tensor the model wrote a
        traced value into (assignment.py), that write's value, not the stale tensor."""
        def current(v: Any) -> Any:
            if isinstance(v, (ShapeProxy, ShapeAttribute)):
                return v.meta_value
            if isinstance(v, torch.Tensor):
                written = self._written_proxy(v)
                if written is not None:
                    return written.meta_value
            return v
        return map_aggregate(value, current)

    def _call_module_meta(self, target: str, args: tuple, kwargs: dict) -> Any:
        # Calling the module would re-enter the tracer (it patches nn.Module.__call__), so run
        # forward() of a meta copy of the leaf module (leaves are small: one conv, one norm ...).
        meta_module = self._meta_modules.get(target)
        if meta_module is None:
            module = _resolve(self.root, target)
            tensors = list(module.parameters()) + list(module.buffers())
            # always a copy: while tracing, the live module's attribute access is patched to record
            # get_attr nodes, so running it would hand back proxies instead of values
            if isinstance(module, torch.jit.ScriptModule):  # no meta copy of compiled code: run it
                # on CPU zeros of the inputs' shapes, its output on meta (as the shape pass does)
                self._meta_modules[target] = module
                return _on_cpu_zeros(module, args, kwargs, self.values)
            meta_module = copied_module(module)
            if not self.values and not all(t.is_meta for t in tensors):
                meta_module = meta_module.to("meta")
            self._meta_modules[target] = meta_module
        elif isinstance(meta_module, torch.jit.ScriptModule):
            return _on_cpu_zeros(meta_module, args, kwargs, self.values)
        # its children go through nn.Module.__call__, which fx patches to record them: as parts of a
        # copy that is not in the model they would fail ("module is not installed as a submodule")
        self._running_leaf += 1
        try:
            return meta_module.forward(*args, **kwargs)
        finally:
            self._running_leaf -= 1
