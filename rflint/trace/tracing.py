"""torch.fx tracing, and the traced graph as a networkx DAG.

Two ways, tried in order:
1. ``torch.fx`` symbolic tracing: size-independent, so one trace serves every input size.
2. shape-aware tracing (shape_tracer.py) at a given input size, for models whose forward() asks
   questions about shapes (``len(x.shape)``, ``if h != w``).  The graph is specialised to that size.

One fx node = one op and the tensor it produces, so the networkx graph has one vertex per fx node
(keyed by the node's unique name) and an edge per data dependency.  fx lists nodes in topological
order; ``order`` keeps it because the RF program and the segment analysis are single passes over it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

import networkx as nx
import torch
import torch.fx as fx
from torch import nn

from rflint.errors import RflintError

SYMBOLIC = "torch.fx.symbolic_trace"
SHAPE_AWARE = "torch.fx with concrete shapes (forward() inspects shapes)"


@dataclass
class Traced:
    gm: fx.GraphModule
    graph: nx.DiGraph
    order: list[fx.Node]  # topological
    method: str  # how the graph was obtained, for the report
    specialized: bool = False  # only valid for the input size it was traced at


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


@contextlib.contextmanager
def _proxies_are_tensors() -> Iterator[None]:
    """``torch.jit.isinstance(x, torch.Tensor)`` is False for a proxy, which silently drops the
    branch real code takes (monai's UpCat skips its skip connection).  A proxy stands for a tensor."""
    original = torch.jit.isinstance

    def isinstance_(obj, target_type):
        if isinstance(obj, fx.Proxy) and target_type is torch.Tensor:
            return True
        return original(obj, target_type)

    torch.jit.isinstance = isinstance_
    try:
        yield
    finally:
        torch.jit.isinstance = original


def _graph_module(tracer: fx.Tracer, module: nn.Module, method: str, specialized: bool, **kw) -> Traced:
    with _proxies_are_tensors():
        graph = tracer.trace(module, **kw)
    gm = fx.GraphModule(tracer.root, graph, type(module).__name__)
    if specialized:
        gm.graph.eliminate_dead_code()  # answered shape queries leave unused nodes behind
        gm.recompile()
    return Traced(gm, to_networkx(gm), list(gm.graph.nodes), method, specialized)


def fx_trace(module: nn.Module) -> Traced:
    tracer = fx.Tracer()
    tracer.record_stack_traces = True  # lets findings fall back to the forward() line
    try:
        return _graph_module(tracer, module, SYMBOLIC, False)
    except RflintError:
        raise
    except Exception as err:
        raise RflintError(
            f"torch.fx cannot trace {type(module).__name__}: {type(err).__name__}: {_first_line(err)}"
        ) from err


def shape_trace(module: nn.Module, inputs: list[torch.Tensor]) -> Traced:
    from rflint.trace.shape_tracer import ShapeTracer

    try:
        return _graph_module(ShapeTracer(inputs), module, SHAPE_AWARE, True)
    except RflintError:
        raise
    except Exception as err:
        raise RflintError(
            f"cannot trace {type(module).__name__}: {type(err).__name__}: {_first_line(err)}"
        ) from err


def to_networkx(gm: fx.GraphModule) -> nx.DiGraph:
    g = nx.DiGraph()
    for node in gm.graph.nodes:
        g.add_node(node.name)
        for src in node.all_input_nodes:
            g.add_edge(src.name, node.name)
    return g
