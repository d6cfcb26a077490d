"""The segment analysis' own graph passes (reachability, one-pass dominators) agree with networkx's
reference algorithms on the zoo models and on seeded random DAGs (tests/dagzoo.py); the one-node
tensor name agrees with the whole-graph table."""

from __future__ import annotations

import os
import sys

import networkx as nx
import pytest
import torch
from torch import nn

from rflint.engine import prepare
from rflint.engine.naming import tensor_name, tensor_names
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


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.conv(x))


class _SharedBlockNet(nn.Module):
    """One block called twice, then a head: a module path whose nodes are not contiguous."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.block = _Block()
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        return self.head(self.block(self.block(self.stem(x))))


def test_tensor_names_of_a_block_called_twice():
    a = prepare(_SharedBlockNet()).at((8, 8))
    names = {n: a.tensor_name(n) for n in a.order if n not in ("x", "output")}
    # by the definition: the second call's relu ends "block"; the first call's nodes are not the
    # last inside any module on their stack, so they keep their own module's path; the second
    # call of block.conv is named as its layer is, block.conv@2 (it was block.conv, as the first)
    assert names == {
        "stem": "stem",
        "block_conv": "block.conv", "block_relu": "block.relu",
        "block_conv_1": "block.conv@2", "block_relu_1": "block",
        "head": "head",
    }
    assert [layer.name for layer in a.layers] == ["stem", "block.conv", "block.conv@2", "head"]


@pytest.mark.parametrize("name", sorted(ZOO))
def test_one_tensor_name_agrees_with_the_whole_table(name):
    traced = prepare(f"zoo:{name}").traced
    table = tensor_names(traced.order)
    assert [tensor_name(traced.order, i) for i in range(len(traced.order))] == [table[n.name] for n in traced.order]


@pytest.mark.parametrize("name", ["resnet18", "densenet121", "unet", "inception", "cbam_resnet18"])
def test_fx_relevant_nodes_are_the_networkx_dags(name):
    """The structure reads relevant nodes and their relevant predecessors off the fx nodes; they
    must be the networkx DAG's (tracing.to_networkx), predecessor lists in the same order."""
    from rflint.rules.structure import _adjacency, _fx_relevant, _relevant_nodes

    a = prepare(f"zoo:{name}").at(64)
    succ, pred = _adjacency(a)
    relevant = _relevant_nodes(a, succ, pred)
    assert _fx_relevant(a, a.traced.order) == (relevant, {n: [p for p in pred[n] if p in relevant] for n in relevant})


def test_fx_relevant_nodes_on_random_dags():
    """The same on random DAGs, whose weights (get_attr) and dead ends are not relevant."""
    from rflint.rules.structure import _adjacency, _fx_relevant, _relevant_nodes

    for seed in range(30):
        spec = dagzoo.generate(seed)
        a = prepare(dagzoo.build_module(spec), channels=spec["channels"]).at(tuple(spec["input_size"]))
        succ, pred = _adjacency(a)
        relevant = _relevant_nodes(a, succ, pred)
        assert _fx_relevant(a, a.traced.order) == (relevant, {n: [p for p in pred[n] if p in relevant] for n in relevant})


def test_fx_relevant_nodes_leave_out_dead_ends():
    """A branch whose result is never used is reachable from the input but not from the output."""
    from rflint.rules.structure import _adjacency, _fx_relevant, _relevant_nodes

    class DeadEnd(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.unused = nn.Conv2d(4, 4, 3)
            self.head = nn.Conv2d(4, 4, 1)

        def forward(self, x):
            x = self.conv(x)
            self.unused(x)  # computed, then dropped
            return self.head(x)

    a = prepare(DeadEnd()).at(16)
    relevant, preds = _fx_relevant(a, a.traced.order)
    assert "unused" not in relevant and {"x", "conv", "head", "output"} <= relevant
    succ, pred = _adjacency(a)
    assert relevant == _relevant_nodes(a, succ, pred)
    assert preds == {n: [p for p in pred[n] if p in relevant] for n in relevant}


@pytest.mark.parametrize("name", ["vgg16", "resnet18", "mpnet18", "inception"])
def test_one_node_segment_status_is_the_walks(name):
    """A one-node segment (every layer of a chain) is judged without the general walk; under every
    status its layer can have, the answer must be the walk's."""
    from rflint.rules.structure import (
        HEAD, PARTIAL, PRODUCTIVE, UNPRODUCTIVE, _segment_status, _segment_walk, analyse_structure,
    )

    a = prepare(f"zoo:{name}").at(32)
    segments = [seg for seg in analyse_structure(a).segments if len(seg.nodes) == 1]
    assert any(a.layer_by_node.get(seg.nodes[0]) is not None for seg in segments)
    seen = set()
    for seg in segments:
        layer = a.layer_by_node.get(seg.nodes[0])
        for st in (PRODUCTIVE, PARTIAL, UNPRODUCTIVE, HEAD, None):
            status = {} if layer is None or st is None else {layer.name: st}
            want = _segment_walk(seg, a.layer_by_node, status)
            assert _segment_status(seg, a.layer_by_node, status) == want, (seg, st)
            seen.add(want)
    assert len(seen) >= 2


class _SameCutOtherBorder(nn.Module):
    """At 4x4: conv0 (3x3) gives RF 3; the fork d (1x1 | 5x5) leaves x with r_min 3, r_max 7.  The
    fork s after it: a1 (3x3) reads x (3 <= 4 by r_min, 7 > 4 by r_max), a2 reads a1 (5 > 4), b
    (1x1) reads x.  By r_min s has no clean path through a productive growing layer (a1 -> a2
    is blocked, b does not grow): unproductive; by r_max every layer of it is.  d is productive
    by both (its 5x5 reads 3).  So both tails start at x, but the border is a2 by r_min and a1 by
    r_max."""

    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(1, 4, 3, padding=1)
        self.d_small, self.d_big = nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 5, padding=2)
        self.a1, self.a2 = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 1)
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(4, 2)

    def forward(self, x):
        y = self.conv0(x)
        x = self.d_small(y) + self.d_big(y)
        s = self.a2(self.a1(x)) + self.b(x)
        return self.fc(self.pool(s).flatten(1))


def test_tails_by_r_min_and_r_max_from_one_cut_keep_their_own_borders():
    """tail_max shares tail's segments here (structure.analyse_structure reuses their judgements
    and the tail's name and costs) but not its border."""
    from rflint.rules.structure import analyse_structure

    a = prepare(_SameCutOtherBorder(), channels=1).at((4, 4))
    s = analyse_structure(a)
    assert s.tail is not None and s.tail_max is not None
    assert s.tail.cut == s.tail_max.cut
    assert [layer.name for layer in s.tail.layers] == [layer.name for layer in s.tail_max.layers] == ["a1", "a2", "b"]
    assert s.border.name == "a2"
    assert s.border_max.name == "a1"
    assert s.tail_max.params == s.tail.params == 2 * (4 * 4 * 9 + 4) + (4 * 4 + 4)  # a1, a2 and b


@pytest.mark.parametrize("name", ["resnet18", "unet", "inception"])
def test_one_node_shape_agrees_with_the_whole_table(name):
    """Analysis.shape reads one node's shape without the table; both say the same for every node
    (a tensor's shape, the first of a tuple's, None for a non-tensor), before and after the table
    is built."""
    side = 64 if name == "unet" else 32
    a = prepare(f"zoo:{name}").at(side)
    one = {n: a.shape(n) for n in a.order}
    assert "shapes" not in a.__dict__  # not built by the one-node reads
    assert one[a.inputs[0]] == (1, a.channels, side, side)
    assert one == a.shapes
    assert {n: a.shape(n) for n in a.order} == a.shapes
    assert a.shape("no such node") is None


class _EveryLevel(nn.Module):
    """A chain whose every level is concatenated at the end (hypercolumns, deep aggregation), and a
    sum of three levels in the middle: merges of three or more maps at different depths."""

    def __init__(self, levels: int = 12):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.convs = nn.ModuleList(nn.Conv2d(4, 4, 3, padding=1) for _ in range(levels))

    def forward(self, x):
        x = self.stem(x)
        outs = []
        for i, conv in enumerate(self.convs):
            x = conv(x)
            outs.append(x)
            if i == 6:
                x = outs[1] + outs[4] + x  # two sums: each an intersect of two
                x = torch.stack([outs[0], outs[3], x]).sum(0)  # one node with three operands
        return torch.cat(outs[::-1], 1)


def test_dominators_of_merges_of_many_levels_match_networkx():
    # each operand's walk up the dominator tree ends where an earlier one's passed: the answer is
    # the same as the plain intersect (networkx's dominators), whichever order the operands come in
    _check(prepare(_EveryLevel()).at((16, 16)))


class _Hub(nn.Module):
    """A chain of n convs whose last map is added to every level, then to a mix of levels (each
    sum's operands n - i levels apart, and sums of sums), so the intersect's jumps span every
    distance up the dominator tree."""

    def __init__(self, n: int):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(4, 4, 3, padding=1) for _ in range(n))

    def forward(self, x):
        levels = []
        for conv in self.convs:
            x = conv(x)
            levels.append(x)
        sums = [x + level for level in levels]
        mixed = [sums[i] + levels[(7 * i) % len(levels)] for i in range(len(sums))]
        return torch.cat(sums + mixed, 1)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 40, 129])
def test_dominators_of_sums_reaching_far_up_match_networkx(n):
    _check(prepare(_Hub(n), channels=4).at((8, 8)))


class _OneConvThrice(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.c(self.c(self.c(x)))


def test_a_layer_called_three_times_names_each_output_as_its_layer():
    # every call's output was "c" (the last call's as the module's result, the others by the
    # fallback): a tail cut after the second call was reported as "truncate after c"
    a = prepare(_OneConvThrice(), channels=4).at((8, 8))
    order = a.traced.order
    table = tensor_names(order)
    convs = [n.name for n in order if n.op == "call_module"]
    assert [table[n] for n in convs] == [layer.name for layer in a.layers] == ["c", "c@2", "c@3"]
    assert [tensor_name(order, i) for i in range(len(order))] == [table[n.name] for n in order]
