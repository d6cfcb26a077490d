"""The suggested truncation (rf-semantics.md §4 "cut"): keep everything up to the cut tensor and
replace the rest by global average pooling + one Linear layer with the original output size.

The numbers here are the contract for ``rflint.truncate``: the model it builds has exactly
``params_after`` parameters.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import networkx as nx
import torch
import torch.fx as fx
from torch import nn

from rflint.engine import Analysis
from rflint.rules.structure import Tail
from rflint.trace.metaspec import is_tensor_like


@dataclass
class TruncationPlan:
    cut: str  # fx node name of the cut tensor
    cut_name: str
    cut_channels: int
    n_out: int
    removed_nodes: list[str]
    params_removed: int
    macs_removed: int
    params_added: int
    macs_added: int
    params_before: int
    macs_before: int
    # the removed layers with weights that read a global tensor (the head after the feature map) when
    # there is more to it than one classifier (a transformer on the tokens), and their params
    head_layers: tuple[str, ...] = ()
    head_params: int = 0

    @property
    def params_after(self) -> int:
        return self.params_before - self.params_removed + self.params_added

    @property
    def macs_after(self) -> int:
        return self.macs_before - self.macs_removed + self.macs_added

    def as_dict(self) -> dict:
        return {
            "cut": self.cut_name,
            "params_before": self.params_before,
            "params_after": self.params_after,
            "macs_before": self.macs_before,
            "macs_after": self.macs_after,
            "params_removed": self.params_before - self.params_after,
            "macs_removed": self.macs_before - self.macs_after,
            "new_head": f"global average pooling + Linear({self.cut_channels}, {self.n_out})",
            "head_layers_removed": list(self.head_layers),
        }

    def head_text(self) -> str:
        """What the reports add when the head removed is more than a classifier ("" otherwise)."""
        if not self.head_layers:
            return ""
        shown = ", ".join(self.head_layers[:3]) + (", ..." if len(self.head_layers) > 3 else "")
        return (f" It also removes the head that read the feature map: {len(self.head_layers)} layers with weights "
                f"({shown}; {self.head_params:,} params).")


def plan_truncation(a: Analysis, tail: Tail) -> TruncationPlan | None:
    """None when the model's output is not a (batch, classes) vector: a dense-prediction network
    (U-Net, detector) cannot simply end in a classifier; the tail is still reported
    (:func:`no_plan_reason` says why).  Worked out once per tail (RF002 and the report both ask);
    the plan is read-only."""
    planned = _planned(a, tail)
    return planned if isinstance(planned, TruncationPlan) else None


def no_plan_reason(a: Analysis, tail: Tail) -> str:
    """Why :func:`plan_truncation` gave None, in the words of an error message."""
    planned = _planned(a, tail)
    return planned if isinstance(planned, str) else ""


def _planned(a: Analysis, tail: Tail) -> TruncationPlan | str:
    cached = tail.derived.get("truncation")
    if cached is None or cached[0] is not a:
        cached = tail.derived["truncation"] = (a, _plan(a, tail))
    return cached[1]


def _ancestors(a: Analysis, name: str) -> set[str]:
    """The node and every node it depends on (networkx's ``ancestors`` plus the node itself), walked
    over the fx graph's operands, which are the DAG's edges (tracing.to_networkx)."""
    traced = a.own_trace
    if traced is None:
        return nx.ancestors(a.graph, name) | {name}
    start = traced.node_by_name[name]
    seen, stack = {start}, [start]
    while stack:
        for src in stack.pop().all_input_nodes:
            if src not in seen:
                seen.add(src)
                stack.append(src)
    return {node.name for node in seen}


def _tensors_in(value) -> int:
    """The tensors a model output holds (in tuples, lists, dicts and dataclasses, as returned)."""
    if is_tensor_like(value):
        return 1
    if isinstance(value, dict):
        value = list(value.values())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = [getattr(value, f.name, None) for f in dataclasses.fields(value)]
    return sum(_tensors_in(v) for v in value) if isinstance(value, (tuple, list)) else 0


def _plan(a: Analysis, tail: Tail) -> TruncationPlan | str:
    """The plan, or why there is none."""
    returned = sum(_tensors_in(a.values.get(a.traced.node_by_name[n])) for n in a.outputs) if a.traced else 1
    if returned > 1:  # logits beside maps, an auxiliary head: which to keep, and whether the cut may
        # drop what makes the others, is the model's author's call
        return (f"it returns {returned} tensors, and a truncated model would return one classifier's output "
                "alone: truncate it by hand, keeping what its other outputs need")
    out_shapes = [a.shape(n) for n in a.outputs]
    if len(out_shapes) != 1 or out_shapes[0] is None or len(out_shapes[0]) != 2:
        return "its output is not a (batch, classes) vector, so it cannot end in a classifier"
    if _flattened_map(a):  # Linear(1024, 15) for a HiFi-GAN discriminator's 15 scores: "params +0.1%"
        return ("its output is a feature map flattened to (batch, positions), one score per position (a patch "
                "discriminator's), not a (batch, classes) vector, so it cannot end in a classifier")
    cut_shape = a.shape(tail.cut)
    not_a_map = f"the cut tensor {tail.cut_label} is not a feature map that global pooling can close"
    if cut_shape is None or len(cut_shape) < 3:
        return not_a_map
    if cut_shape[0] != out_shapes[0][0]:  # the head folds the batch (a video net's consensus over the frames of
        # view(-1, T, C).mean(1)): a new head would give one row per frame
        return (f"its head folds {cut_shape[0]} rows of the cut into {out_shapes[0][0]} (frames or crops in the batch, "
                "averaged by the head): a new classifier after the cut would give one row per frame")
    rf = a.rf.get(tail.cut)
    if rf is not None and any(axis.dim < 2 - len(cut_shape) for axis in rf.axes):
        # (batch, time, channels) as a Conformer keeps it: pooling dims 2.. and a Linear over dim 1
        # averaged the channels and read the time steps as features (a model for one length only)
        return (f"the cut tensor {tail.cut_label} is not laid out (batch, channels, *spatial): a spatial axis "
                "comes before its last dims (a channels-last map), so a global pool and a Linear over dim 1 "
                "cannot close it")
    n_out, channels = out_shapes[0][1], cut_shape[1]
    kept = _ancestors(a, tail.cut)
    removed = [n for n in a.order if n not in kept]
    pooled = math.prod(cut_shape[2:])
    head_layers, head_params = _head_weights(a, removed)
    return TruncationPlan(
        cut=tail.cut, cut_name=tail.cut_name, cut_channels=channels, n_out=n_out, removed_nodes=removed,
        # everything but what the kept graph holds: also modules forward() never calls (an inherited
        # head left unused, the branch a value-dependent `if` did not take), which the built model,
        # a GraphModule of the kept graph, does not have either
        params_removed=a.params - _params_of(a, kept),
        macs_removed=sum(a.node_macs.get(n, 0) for n in removed),
        params_added=channels * n_out + n_out, macs_added=channels * n_out,
        params_before=a.params, macs_before=a.macs,
        head_layers=tuple(head_layers) if len(head_layers) > 1 else (), head_params=head_params,
    ) if pooled else not_a_map


_SHAPE_ONLY_METHODS = {"flatten", "view", "reshape", "squeeze", "contiguous"}
_SHAPE_ONLY_FUNCTIONS = {torch.flatten, torch.reshape, torch.squeeze}


def _flattened_map(a: Analysis) -> bool:
    """The output is a feature map only reshaped: torch.flatten(x, 1) of a conv's map, whose values
    are positions, not classes (and whose number changes with the input size).  Flattening counts
    as global (rf-semantics.md §2), so the output's RF cannot tell; the ops before it can."""
    traced = a.own_trace
    if traced is None or len(a.outputs) != 1:
        return False
    node = traced.node_by_name.get(a.outputs[0])
    while node is not None and node.args and isinstance(node.args[0], fx.Node) and (
            (node.op == "call_method" and node.target in _SHAPE_ONLY_METHODS)
            or (node.op == "call_function" and node.target in _SHAPE_ONLY_FUNCTIONS)
            or (node.op == "call_module" and isinstance(traced.modules.get(node.target), nn.Flatten))):
        node = node.args[0]
    rf = a.node_rf.get(node) if node is not None else None
    return rf is not None and rf.spatial


def _params_of(a: Analysis, names: set[str]) -> int:
    """The parameters the nodes ``names`` hold (each once): their modules', and bare parameters they
    read (a layer-scale gamma, a cls_token), which per-node counts leave out."""
    traced = a.own_trace
    if traced is None:
        return sum(a.node_params.get(n, 0) for n in names)
    seen: set[int] = set()
    total = 0
    for name in names:
        node = traced.node_by_name.get(name)
        if node is None:
            continue
        if node.op == "call_module":
            module = traced.modules[node.target]
            # a leaf's own dict: parameters() walks generators, which cost more than the counting
            tensors = module.parameters() if module._modules else module._parameters.values()
        elif node.op == "get_attr":
            value = _attribute(traced.gm, node.target)
            tensors = [value] if isinstance(value, nn.Parameter) else []
        else:
            continue
        for p in tensors:
            if p is not None and id(p) not in seen:
                seen.add(id(p))
                total += p.numel()
    return total


def _spatial(rf) -> bool:
    return rf is not None and not rf.is_global


def _attribute(root: nn.Module, target: str):
    obj = root
    for part in target.split("."):
        obj = getattr(obj, part, None)
    return obj


def _head_weights(a: Analysis, removed: list[str]) -> tuple[list[str], int]:
    """The removed modules with weights whose output is global and feeds no feature map again: the
    head, what the tail's count leaves out (structure._without_head).  Those that make the map
    global count too: a GRU over a CRNN's frames, attention over tokens, a Linear over a flattened
    map; taking only those that read a global tensor left a CRNN's GRU (74,496 params) out of what
    the truncation says it removes.  (An SE gate's layers are global as well, but they scale a
    map, and are in the tail's count already.)"""
    traced = a.own_trace
    if traced is None:
        return [], 0
    feeds_a_map: set[str] = set()
    for name in reversed(removed):  # topological order: users first (a removed node's users are removed too)
        node = traced.node_by_name.get(name)
        if node is not None and any(user.name in feeds_a_map or _spatial(a.node_rf.get(user)) for user in node.users):
            feeds_a_map.add(name)
    names, params = [], 0
    for name in removed:
        count = a.node_params.get(name, 0)
        node = traced.node_by_name.get(name)
        if not count or node is None or node.op != "call_module" or name in feeds_a_map:
            continue
        src = node.args[0] if node.args and isinstance(node.args[0], fx.Node) else None
        rf = a.node_rf.get(node)
        if src is not None and a.node_rf.get(src) is not None and rf is not None and rf.is_global:
            # (a module whose input has no RF at all is a side input's MLP, not the head)
            names.append(str(node.target))
            params += count
    return names, params
