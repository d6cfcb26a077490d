"""Shape propagation on the ``meta`` device: every node's output, with no real compute or memory.

Like ``torch.fx.passes.shape_prop.ShapeProp`` (one Interpreter pass, one job), but the model may hold
real CPU weights (an instance the user built): those are swapped for meta copies per call through
``torch.func.functional_call``, so the user's module is never modified.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.fx as fx
from torch.func import functional_call

from rflint.errors import RflintError


def _same_shape_modules() -> frozenset[type]:
    from torch import nn

    return frozenset({
        nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.InstanceNorm1d, nn.InstanceNorm2d,
        nn.InstanceNorm3d, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm,
        nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
        nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Softplus,
        nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Identity,
    })


_SAME_SHAPE_MODULES = _same_shape_modules()


def _to_meta(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and not value.is_meta:
        return value.to("meta")
    return value


class MetaShapeProp(fx.Interpreter):
    """Runs the graph on meta tensors and keeps every node's output value (meta tensors cost nothing)."""

    def __init__(self, gm: fx.GraphModule):
        super().__init__(gm, garbage_collect_values=False)
        self.extra_traceback = False  # our error message is one line; fx would append the graph
        self.values: dict[fx.Node, Any] = {}
        self._meta_state: dict[str, dict[str, torch.Tensor]] = {}
        # one dict lookup per call instead of walking the module tree (get_submodule) every time
        self._modules = dict(gm.named_modules())

    def run_node(self, n: fx.Node) -> Any:
        try:
            result = super().run_node(n)
        except RflintError:
            raise
        except Exception as err:
            raise RflintError(_explain(n, err)) from err
        self.values[n] = result
        return result

    def get_attr(self, target, args, kwargs):
        return _to_meta(super().get_attr(target, args, kwargs))

    def call_module(self, target, args, kwargs):
        submod = self._modules.get(target) or self.fetch_attr(target)
        if type(submod) in _SAME_SHAPE_MODULES and args and isinstance(args[0], torch.Tensor) and args[0].is_meta:
            # the output is the input's shape by definition; running meta BatchNorm goes through
            # Python decompositions and costs milliseconds per call (most of a ResNet's propagation)
            return args[0]
        state = self._meta_state.get(target)
        if state is None:
            named = list(submod.named_parameters()) + list(submod.named_buffers())
            if all(t.is_meta for _, t in named):
                state = {}
            else:
                state = {name: t.to("meta") for name, t in named}
            self._meta_state[target] = state
        if not state:
            return submod(*args, **kwargs)
        return functional_call(submod, state, args, kwargs, strict=False)


def _explain(node: fx.Node, err: Exception) -> str:
    msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    where = node.target if node.op == "call_module" else node.name
    return f"shape propagation failed at {where}: {type(err).__name__}: {msg}"


def propagate(gm: fx.GraphModule, inputs: list[torch.Tensor]) -> dict[fx.Node, Any]:
    prop = MetaShapeProp(gm)
    prop.run(*inputs)
    return prop.values
