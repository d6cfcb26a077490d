"""The segment analysis' own graph passes (reachability, one-pass dominators) agree with networkx's
reference algorithms on the zoo models and on seeded random DAGs (tests/dagzoo.py)."""

from __future__ import annotations

import os
import sys

import networkx as nx
import pytest

from rflint.engine import prepare
from rflint.rules.structure import _SOURCE, _graph_facts
from rflint.zoo import ZOO

sys.path.insert(0, os.path.dirname(__file__))
import dagzoo  # noqa: E402


def _reference(a) -> tuple[set[str], dict[str, str]]:
    g = a.graph
    forward = set().union(*({s} | nx.descendants(g, s) for s in a.inputs))
    sink = a.order[-1]
    relevant = forward & ({sink} | nx.ancestors(g, sink))
    sub = nx.DiGraph()
    sub.add_nodes_from(relevant)
    sub.add_edges_from((u, v) for u, v in g.edges() if u in relevant and v in relevant)
    sub.add_edges_from((_SOURCE, s) for s in a.inputs)
    idom = nx.immediate_dominators(sub, _SOURCE)
    idom.pop(_SOURCE, None)  # some networkx versions map the start node to itself
    return relevant, idom


def _check(a) -> None:
    relevant, idom, _, _ = _graph_facts(a)
    ref_relevant, ref_idom = _reference(a)
    assert relevant == ref_relevant
    assert idom == ref_idom


@pytest.mark.parametrize("name", ["resnet18", "densenet121", "inception", "unet", "cbam_resnet18", "mpnet18"])
def test_dominators_match_networkx_on_zoo_models(name):
    entry = ZOO[name]
    _check(prepare(f"zoo:{name}").at(tuple(entry.input_size)))


def test_dominators_match_networkx_on_random_dags():
    checked = 0
    for seed in range(60):
        spec = dagzoo.generate(seed)
        _check(prepare(dagzoo.build_module(spec), channels=spec["channels"]).at(tuple(spec["input_size"])))
        checked += 1
    assert checked == 60
