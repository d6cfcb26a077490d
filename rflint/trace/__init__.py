"""Layer 1: from a TARGET to a traced graph with shapes.  Knows nothing about receptive fields."""

from rflint.trace.loading import LoadedModel, evaluating, load_model
from rflint.trace.shapes import propagate
from rflint.trace.sources import Source, construction_site, node_site
from rflint.trace.tracing import Traced, fx_trace, shape_trace, trace_at_size

__all__ = [
    "evaluating",
    "LoadedModel",
    "Source",
    "Traced",
    "construction_site",
    "fx_trace",
    "load_model",
    "propagate",
    "shape_trace",
    "trace_at_size",
    "node_site",
]
