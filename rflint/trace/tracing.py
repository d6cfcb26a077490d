"""torch.fx symbolic tracing, and the traced graph as a networkx DAG.

One fx node = one op and the tensor it produces, so the networkx graph has one vertex per fx node
(keyed by the node's unique name) and an edge for every data dependency.  fx already lists nodes in
topological order; we keep that order (``order``) because the RF program and the segment analysis
are single passes over it.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import torch.fx as fx
from torch import nn

from rflint.errors import RflintError


@dataclass
class Traced:
    gm: fx.GraphModule
    graph: nx.DiGraph
    order: list[fx.Node]  # topological
    method: str  # how the graph was obtained, for the report


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def fx_trace(module: nn.Module) -> Traced:
    tracer = fx.Tracer()
    tracer.record_stack_traces = True  # lets findings fall back to the forward() line
    try:
        graph = tracer.trace(module)
    except Exception as err:
        raise RflintError(
            f"torch.fx cannot trace {type(module).__name__}: {type(err).__name__}: {_first_line(err)}"
        ) from err
    gm = fx.GraphModule(tracer.root, graph, type(module).__name__)
    return Traced(gm, to_networkx(gm), list(gm.graph.nodes), "torch.fx.symbolic_trace")


def to_networkx(gm: fx.GraphModule) -> nx.DiGraph:
    g = nx.DiGraph()
    for node in gm.graph.nodes:
        g.add_node(node.name)
        for src in node.all_input_nodes:
            g.add_edge(src.name, node.name)
    return g
