"""The RF program proper (rf-semantics.md §2): one node's RF state from its operands', and the pass
over a trace in topological order.

The commonest nodes take a compiled quick step (``ops.quick_step``, in one plan per trace), the rest
their rule (``ops.transfer``).  program.py runs the pass and keeps the per-layer books; replay.py
runs it again at another size where nodes can change.
"""

from __future__ import annotations

from typing import Any, Iterator

import torch.fx as fx
from torch import nn

from rflint import declared
from rflint.engine.kernels import KernelOp
from rflint.engine.ops import NOT_QUICK, Ctx, quick_step, transfer
from rflint.engine.rfstate import TensorRF
from rflint.trace import Traced
from rflint.trace.metaspec import is_tensor_like


Plan = list[tuple[fx.Node, Any, "str | None", tuple[fx.Node, ...], "str | None"]]


def plan_of(traced: Traced) -> Plan:
    """Per node of the trace (topological order): its quick step (or None), what the step reads
    (``ops.READS_RF`` / ``READS_SHAPES``, None without a step), its operands and its module path
    (None if it calls no module).  One list per trace, made in one pass, for the RF pass and its
    replays (replay.py); modules declared later get a new one."""
    return traced.memo(("node_plan", declared.version()), lambda: _node_plan(traced.order, traced.modules))


def _node_plan(order: list[fx.Node], modules: dict) -> Plan:
    plan = []
    for node in order:
        inputs = node.all_input_nodes
        step = quick_step(node, modules, inputs)
        plan.append((node, step, getattr(step, "reads", None), tuple(inputs),
                     str(node.target) if node.op == "call_module" else None))
    return plan


def source_of(node: fx.Node) -> fx.Node | None:
    """An RF layer's input: its first argument (or ``input=``), when that is a node."""
    src = node.args[0] if node.args else node.kwargs.get("input")
    return src if isinstance(src, fx.Node) else None


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
    for node, step, _, _, _ in plan_of(traced):
        module, kop, warning = run_node(node, step, modules, values, image_inputs, rfs)
        if node.op != "placeholder":
            yield node, module, kop, warning
