"""The RF pass again at another input size, reusing what the size cannot change.

The clean-size search (report/model.py) re-checks candidate sizes: shapes there, then what the RF
layers' inputs need.  A node's RF is the finished analysis's whenever its operands' RFs are and its
transfer provably reads nothing the size changed:

* compiled conv, pool and elementwise steps read the operand's RF alone (``ops.READS_RF``);
* compiled merges read shapes only to tell broadcast (gate) operands and layout changes apart
  (``ops.READS_SHAPES``); when every operand with a spatial RF has exactly the output's size on
  each of its axes, at both sizes, there is neither, and the merge is the union of its operands.

Every other node runs as in the RF pass (``rfpass.run_node``); when its RF equals the finished
analysis's (a global pool, a flatten, a head), reuse goes on after it.  The answer is therefore
the RF pass's own; tests/test_engine_ops.py compares the two on the zoo and on random DAGs.
"""

from __future__ import annotations

from typing import Any

import torch.fx as fx

from rflint.engine.kernels import KernelOp
from rflint.engine.ops import READS_RF, READS_SHAPES
from rflint.engine.results import Analysis
from rflint.engine.rfpass import run_node, steps_of
from rflint.engine.rfstate import TensorRF
from rflint.trace import Traced
from rflint.trace.metaspec import is_tensor_like

_MISSING = object()


def replay(traced: Traced, modules: dict, values: dict, image_inputs: list[fx.Node], base: Analysis
           ) -> tuple[dict[fx.Node, TensorRF | None], dict[fx.Node, KernelOp]]:
    """Every node's RF at the sizes of ``values`` and the kernel of every RF layer there, as
    ``rf_pass`` would give them; ``base``: the finished analysis of the same trace and modules."""
    old_rfs, old_values, old_layers = base.node_rf, base.values, base.layer_by_node
    rfs: dict[fx.Node, TensorRF | None] = {}
    kernels: dict[fx.Node, KernelOp] = {}
    same: set[fx.Node] = set()  # nodes whose RF is the base analysis's
    for node, step in zip(traced.order, steps_of(traced)):
        reads = getattr(step, "reads", None)
        if reads is not None and all(a in same for a in node.all_input_nodes) and (
                reads == READS_RF or (reads == READS_SHAPES and _lined_up(node, values, old_rfs)
                                      and _lined_up(node, old_values, old_rfs))):
            rfs[node] = old_rfs[node]
            same.add(node)
            layer = old_layers.get(node.name)
            if layer is not None:  # a compiled conv or pool: the same kernel at every size
                kernels[node] = layer.kop
            continue
        _, kop, _ = run_node(node, step, modules, values, image_inputs, rfs)
        if kop is not None:
            kernels[node] = kop
        if rfs[node] == old_rfs.get(node, _MISSING):
            same.add(node)
    return rfs, kernels


def _lined_up(node: fx.Node, values: dict, rfs: dict) -> bool:
    """Every operand with a spatial RF has exactly the output's size on each of its RF axes (so no
    operand is broadcast and the layout is kept: the compiled merge is then a union of RFs)."""
    out = values.get(node)
    if not is_tensor_like(out):
        return False
    out_shape: Any = out.shape
    rank = len(out_shape)
    for a in node.all_input_nodes:
        rf = rfs.get(a)
        if rf is None or not rf.axes:
            continue
        value = values.get(a)
        if not is_tensor_like(value):
            return False
        shape = value.shape
        for axis in rf.axes:
            d = axis.dim
            if -d > len(shape) or -d > rank or shape[d] != out_shape[d]:
                return False
    return True
