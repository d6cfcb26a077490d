"""The RF program proper (rf-semantics.md §2): one node's RF state from its operands', and the pass
over a trace in topological order.

The commonest nodes take a compiled quick step (``ops.quick_steps``, one list per trace), the rest
their rule (``ops.transfer``).  program.py runs the pass and keeps the per-layer books; replay.py
runs it again at another size where nodes can change.
"""

from __future__ import annotations

from typing import Iterator

import torch.fx as fx
from torch import nn

from rflint import declared
from rflint.engine.kernels import KernelOp
from rflint.engine.ops import NOT_QUICK, Ctx, quick_steps, transfer
from rflint.engine.rfstate import TensorRF
from rflint.trace import Traced
from rflint.trace.metaspec import is_tensor_like


def steps_of(traced: Traced) -> list:
    """The trace's quick steps (compiled once; modules declared later get a new list)."""
    return traced.memo(("quick_steps", declared.version()), lambda: quick_steps(traced.order, traced.modules))


def run_node(node: fx.Node, step, modules: dict, values: dict, image_inputs: list[fx.Node], rfs: dict
             ) -> tuple[nn.Module | None, KernelOp | None, str | None]:
    """Set ``rfs[node]``; return the node's module, its kernel (RF layers only) and the rule's warning."""
    op = node.op
    if op == "placeholder":
        value = values[node]
        if isinstance(value, (tuple, list)) and value:  # forward(self, *xs): fx packs the inputs
            value = value[0]
        image = node in image_inputs and is_tensor_like(value)
        rfs[node] = TensorRF.for_input(value.dim() - 2) if image else None
        return None, None, None
    if op == "get_attr":  # weights and constants: no RF
        rfs[node] = None
        return None, None, None
    module = modules[node.target] if op == "call_module" else None
    found = step(rfs, values, modules) if step is not None else NOT_QUICK
    if found is NOT_QUICK:
        outcome = transfer(Ctx(node, module, values, rfs))
        rfs[node] = outcome.rf
        return module, outcome.kernel, outcome.warning
    rfs[node] = found[0]
    return module, found[1], None


def rf_pass(traced: Traced, modules: dict, values: dict, image_inputs: list[fx.Node], rfs: dict
            ) -> Iterator[tuple[fx.Node, nn.Module | None, KernelOp | None, str | None]]:
    """Every node's RF state into ``rfs``, in topological order.  Yields each node after the inputs
    with its module, its kernel (RF layers only) and the rule's warning, for the caller's books."""
    for node, step in zip(traced.order, steps_of(traced)):
        module, kop, warning = run_node(node, step, modules, values, image_inputs, rfs)
        if node.op != "placeholder":
            yield node, module, kop, warning
