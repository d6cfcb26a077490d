"""What the RF engine returns: :class:`Layer` (one per RF layer) and :class:`Analysis`."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from typing import TYPE_CHECKING, Any

import networkx as nx
import torch.fx as fx

from rflint.engine.kernels import KernelOp
from rflint.engine.naming import tensor_name, tensor_names
from rflint.engine.rfstate import TensorRF
from rflint.trace import Source, Traced
from rflint.trace.metaspec import first_shape
from rflint.trace.sources import node_site
from rflint.wording import shown_path

if TYPE_CHECKING:
    from rflint.engine.prepare import Prepared


@dataclass
class Layer:
    """One RF layer (conv, pool, transposed conv, up/down-sampling, pixel (un)shuffle ...).

    Per-axis tuples follow the layer's own kernel axes (H, W for a Conv2d).  ``r_in_*`` describe the
    layer's input tensor, ``r_out_*`` its output; they are None on axes that are no longer spatial
    and for head layers (input already global).
    """

    name: str
    node: str
    op: str
    kind: str
    kernel: tuple[int, ...]
    stride: tuple[Fraction, ...]
    dilation: tuple[int, ...]
    padding: tuple[int, ...] | None
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    r_in_min: tuple[Fraction | None, ...]
    r_in_max: tuple[Fraction | None, ...]
    r_out_min: tuple[Fraction | None, ...]
    r_out_max: tuple[Fraction | None, ...]
    origins: tuple[int | None, ...]  # model-input axis of each kernel axis (None: not spatial)
    params: int
    macs: int
    parametric: bool
    expanding: bool
    head: bool  # the input is already global: no RF rule applies
    source: Source | None
    kop: KernelOp = field(repr=False, default=None)  # type: ignore[assignment]


@dataclass
class Analysis:
    target: str
    input_size: tuple[int, ...]
    channels: int
    layers: list[Layer]
    params: int
    macs: int
    # The RF of the feature extractor's last RF layer output.  Not the tensor after the last residual
    # addition: there r_min is the stem's (the identity path skips every block), which says nothing.
    final_layer: str | None
    final_r_min: tuple[Fraction | None, ...] | None
    final_r_max: tuple[Fraction | None, ...] | None
    warnings: list[str]
    trace_method: str
    device: str
    # what the rules need
    graph: nx.DiGraph = field(repr=False)
    order: list[str] = field(repr=False)  # node names, topological order (shared by the trace's analyses: read only)
    node_rf: dict[fx.Node, TensorRF | None] = field(repr=False)  # the RF program's result, per fx node
    values: dict[fx.Node, Any] = field(repr=False)  # shape propagation's result (meta values), per fx node
    node_params: dict[str, int] = field(repr=False)  # parameters counted at each node (read only)
    node_macs: dict[str, int] = field(repr=False)  # MACs of the nodes that count any (absent: 0)
    layer_by_node: dict[str, Layer] = field(repr=False)
    inputs: list[str] = field(repr=False)
    outputs: list[str] = field(repr=False)
    prepared: "Prepared" = field(repr=False, default=None)  # type: ignore[assignment]
    traced: Traced = field(repr=False, default=None)  # type: ignore[assignment]
    modules: dict[str, Any] = field(repr=False, default=None)  # type: ignore[assignment]  # the module table it ran with
    declarations: int = field(repr=False, default=-1)  # rflint.declared.version() it ran with
    timings: dict[str, float] = field(repr=False, default_factory=dict)  # seconds per phase (bench/)
    input_shapes: tuple[tuple[int, ...], ...] = field(repr=False, default=())  # one per forward() argument given
    # what the what-if experiments work out from this analysis once and read again in every replay
    # of it (replay.py: which merges have their operands lined up here)
    derived: dict = field(repr=False, default_factory=dict, compare=False)
    # the model-input axes the last spatial tensor still has (RF005: one mixed away after the last
    # RF layer, a CRNN's mean over frequency, counts as covered); None: no spatial tensor
    final_origins: tuple[int, ...] | None = field(repr=False, default=None)

    # By name, as the rules and reports look tensors up; built on first use, since a what-if or
    # sweep analysis often needs neither.
    @cached_property
    def rf(self) -> dict[str, TensorRF | None]:
        return {node.name: rf for node, rf in self.node_rf.items()}

    @cached_property
    def shapes(self) -> dict[str, tuple[int, ...] | None]:
        return {node.name: first_shape(self.values.get(node)) for node in self.traced.order}

    @property
    def own_trace(self) -> Traced | None:
        """The trace whose fx graph this analysis's DAG was built from (tracing.to_networkx: an edge
        per operand), so that walks may follow fx operands and facts may be kept per trace; None
        for an analysis whose graph is not its trace's (surgery builds such)."""
        traced = self.traced
        return traced if traced is not None and traced.graph is self.graph else None

    def shape(self, node: str) -> tuple[int, ...] | None:
        """One node's :attr:`shapes` entry, without building the table when it is not built (the
        report reads two or three shapes; the table is a pass over every node)."""
        if "shapes" in self.__dict__:
            return self.shapes.get(node)
        found = self.traced.node_by_name.get(node)
        return None if found is None else first_shape(self.values.get(found))

    @cached_property
    def tensor_names(self) -> dict[str, str]:
        """fx node name -> a name people recognise ("layer3.0" for the output of that block)."""
        if self.traced is None:
            return {}
        return self.traced.memo("tensor_names", lambda: tensor_names(self.traced.order))

    def tensor_name(self, node: str) -> str:
        """One node's :attr:`tensor_names` entry, without building the table for the first lookups
        (a report names one or two tensors).  A lookup alone may scan the rest of the graph (a
        stem's modules are never left), so from the third on the table is built: a model with a
        finding per merge (RF007) stays linear."""
        if "tensor_names" in self.__dict__ or self.traced is None:
            return self.tensor_names.get(node, node)
        found = self.traced.derived.get("tensor_names")
        if found is not None:
            return found.get(node, node)
        lookups = self.derived["name_lookups"] = self.derived.get("name_lookups", 0) + 1
        if lookups > 2:
            return self.tensor_names.get(node, node)
        found_node = self.traced.node_by_name.get(node)
        return node if found_node is None else tensor_name(self.traced.order, self.traced.order.index(found_node))

    def tensor_label(self, node: str, name: str | None = None) -> str:
        """:meth:`tensor_name` in a sentence: a tensor named by its fx node alone (the result of a
        function forward() calls outside any module: "relu_3") with the line that makes it,
        "relu_3 at models/net.py:19" (the path as the findings give it): that name is nowhere in the
        user's code."""
        name = self.tensor_name(node) if name is None else name  # (``name``: its tensor_name, known already)
        found = self.traced.node_by_name.get(node) if self.traced is not None else None
        if found is None or name != found.name or found.op not in ("call_function", "call_method"):
            return name
        site = node_site(found)
        if site is None:
            return name
        return f"{name} at {shown_path(site.file)}:{site.line}"

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)
