"""The replayed RF pass (engine/replay.py) gives exactly the RF pass's answer.

For every zoo model and seeded random DAG (tests/dagzoo.py), a probe at a second size, or with
downsampling layers taken out (surgery.stride_one, what the stem experiment does, here anywhere in
the graph), with the first analysis as base must hold the same RF per node and the same kernel per
RF layer as a probe from scratch; the sizes include ones where adaptive pools, upsampling and
merges of maps of different origins change, so a replay that reused too much would differ.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import sys
from fractions import Fraction

import pytest
import torch
from torch import nn

import rflint
from rflint.engine import prepare
from rflint.engine.program import probe
from rflint.errors import RflintError
from rflint.zoo import ZOO

sys.path.insert(0, os.path.dirname(__file__))
import dagzoo  # noqa: E402


@contextlib.contextmanager
def _nodes_run(module):
    """The names of the nodes ``module`` (replay.py, resized.py) runs a rule for inside the block."""
    from rflint.engine.rfpass import run_node

    ran: list[str] = []

    def counting(node, *args):
        ran.append(node.name)
        return run_node(node, *args)

    module.run_node = counting
    try:
        yield ran
    finally:
        module.run_node = run_node

def _compare(prepared, base, size, replace=None) -> bool:
    """True when the model runs at ``size`` with ``replace`` (and then the two probes agree)."""
    shapes = ((1, prepared.channels, *size),)
    try:
        full = probe(prepared, shapes, replace)
    except RflintError:
        with pytest.raises(RflintError):
            probe(prepared, shapes, replace, base=base)
        return False
    replayed = probe(prepared, shapes, replace, base=base)
    assert replayed.table.replayed  # the base was taken
    assert replayed.rfs == full.rfs, size
    assert list(replayed.kernels) == list(full.kernels), size
    assert list(replayed.kernels.values()) == list(full.kernels.values()), size
    # what the experiments read: every RF layer's input r_min (the replay's kept layers read the base's)
    assert list(replayed.layer_r_min()) == list(full.layer_r_min()), size
    return True


def _other_sizes(natural: tuple[int, ...]) -> set[tuple[int, ...]]:
    """Sizes to re-check a zoo model's analysis at: twice, 7 more, half (at least 8), 1 more."""
    return {tuple(2 * s for s in natural), tuple(s + 7 for s in natural), tuple(max(8, s // 2) for s in natural),
            tuple(s + 1 for s in natural)}


@pytest.mark.parametrize("name", sorted(ZOO))
def test_replay_matches_the_rf_pass_on_zoo_models(name):
    natural = tuple(ZOO[name].input_size)
    prepared = prepare(f"zoo:{name}")
    base = prepared.at(natural)
    ran = 0
    for size in _other_sizes(natural):
        ran += _compare(prepared, base, size)
    assert ran >= 1


@functools.lru_cache(maxsize=1)
def _random_dags() -> list:
    """(prepared model, its analysis at its own size, that size) for 60 seeded random DAGs."""
    cases = []
    for seed in range(60):
        spec = dagzoo.generate(seed)
        natural = tuple(spec["input_size"])
        prepared = prepare(dagzoo.build_module(spec), channels=spec["channels"])
        cases.append((prepared, prepared.at(natural), natural))
    return cases


def test_replay_matches_the_rf_pass_on_random_dags():
    ran = 0
    for prepared, base, natural in _random_dags():
        for size in (tuple(s + 3 for s in natural), tuple(2 * s + 1 for s in natural)):
            ran += _compare(prepared, base, size)
    assert ran >= 60


def test_replay_reuses_what_the_size_cannot_change_and_recomputes_the_rest():
    """VGG-16 at 64 px on the base of 32 px: every conv, pool and activation keeps its RF; the
    adaptive pool to 7x7 (kernel from the map sizes: 1x1 -> 7x7 at 32 px, 2x2 -> 7x7 at 64 px)
    gets a new kernel; so the replay is neither all reuse nor a second RF pass."""
    import rflint.engine.replay as replay_module

    prepared = prepare("zoo:vgg16")
    base = prepared.at((32, 32))
    with _nodes_run(replay_module) as ran:
        p = probe(prepared, ((1, 3, 64, 64),), base=base)
    names = set(ran)
    assert "avgpool" in names and "features_0" not in names and "features_28" not in names
    avgpool = next(n for n in p.kernels if n.name == "avgpool")
    # adaptive pooling n -> o reads max_i(ceil((i+1)n/o) - floor(i n/o)) units: 1 for 1 -> 7 (the
    # base, 32 px); for 2 -> 7 the row i = 3 spans ceil(8/7) - floor(6/7) = 2 - 0 = 2
    assert base.layer_by_node["avgpool"].kernel == (1, 1)
    assert p.kernels[avgpool].kernel == (2, 2)
    assert len(ran) < len(prepared.traced.order) // 3



def _needs_agree(prepared, base, size) -> bool:
    """The needs at ``size`` with ``base`` (resized.py: only the nodes the size can change) are a
    probe's from scratch; True when the model runs there."""
    from rflint.engine.program import input_needs

    shapes = ((1, prepared.channels, *size),)
    try:
        scratch = input_needs(prepared, shapes)
    except RflintError:
        with pytest.raises(RflintError):
            input_needs(prepared, shapes, base)
        return False
    assert input_needs(prepared, shapes, base) == scratch, size
    return True


@pytest.mark.parametrize("name", sorted(ZOO))
def test_resized_needs_match_a_probe_on_zoo_models(name):
    natural = tuple(ZOO[name].input_size)
    prepared = prepare(f"zoo:{name}")
    base = prepared.at(natural)
    sizes = _other_sizes(natural) | {tuple(3 * s + 5 for s in natural), tuple(max(4, s // 4) for s in natural)}
    assert sum(_needs_agree(prepared, base, size) for size in sizes) >= 2


def test_resized_needs_match_a_probe_on_random_dags():
    ran = 0
    for prepared, base, natural in _random_dags():
        for size in (tuple(s + 3 for s in natural), tuple(2 * s + 1 for s in natural), tuple(max(2, s - 5) for s in natural)):
            ran += _needs_agree(prepared, base, size)
    assert ran >= 90



class PoolThenConvs(nn.Module):
    """An adaptive pool to 8x8 mid-network: its kernel, and so the RFs of the two convs after it,
    depend on the input size."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(8)
        self.a = nn.Conv2d(4, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.b(self.a(self.pool(self.stem(x))))


class RowGate(nn.Module):
    """A wide conv's map times a row-pooled copy of the stem's (3x1 windows, stride 3, padding 1):
    at one row both have one row (lined up: a union of their RFs); at 2 or 3 rows the pooled copy
    still has one, and is broadcast over the other's rows.  Every node on the way reads RFs alone,
    so only the product's shapes tell the two apart."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.wide = nn.Conv2d(4, 4, 9, padding=4)
        self.rows = nn.MaxPool2d((3, 1), stride=(3, 1), padding=(1, 0))
        self.after = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        z = self.stem(x)
        return self.after(self.wide(z) * self.rows(z))


class RowPoolHead(nn.Module):
    """A conv, then an adaptive pool to one row: with one column too its output is global (no
    kernel, not an RF layer); with more columns it is an RF layer, whose input needs the conv's RF."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d((1, None))
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        return self.fc(self.pool(self.a(x)).mean(3).flatten(1))


@pytest.mark.parametrize("model,base_size,sizes", [
    (PoolThenConvs, (8, 8), [(12, 12), (16, 16), (32, 32)]),
    (PoolThenConvs, (32, 32), [(8, 8), (12, 12)]),  # smaller RFs than the base's: none of its numbers may stay
    (RowGate, (1, 16), [(2, 16), (3, 16)]),
    (RowPoolHead, (4, 1), [(4, 3), (5, 2)]),  # an RF layer here that the base does not have
    (RowPoolHead, (4, 3), [(4, 1)]),  # and the other way round
])
def test_resized_needs_follow_what_the_size_changes(model, base_size, sizes):
    """Cases where the needs at the other size are not the base's: a changed RF reaching later
    layers, a merge that is lined up in the base and broadcasts here, a node that is an RF layer at
    one size only."""
    from rflint.engine.program import input_needs, needs_of

    prepared = prepare(model(), channels=1)
    base = prepared.at(base_size)
    for size in sizes:
        assert _needs_agree(prepared, base, size)
        assert input_needs(prepared, ((1, 1, *size),), base) != needs_of(base), size


def test_resized_needs_visit_only_what_the_size_can_change():
    """VGG-16 at 64 px on the base of 32 px: the convs and linear layers read their operands' RFs
    alone, so only the nodes whose rules read shapes run again: the last max pool (2x2 -> 1x1 at 32
    px: its window may read the whole map; it does, but an adaptive pool follows, so it stays a
    pool), the adaptive pool (1x1 -> 7x7 at 32 px, 2x2 -> 7x7 here: a new kernel) and the flatten
    after it (global either way).  The other pools have no one-pixel output at either size."""
    import rflint.engine.resized as resized
    from rflint.engine.program import input_needs, needs_of

    prepared = prepare("zoo:vgg16")
    base = prepared.at((32, 32))
    with _nodes_run(resized) as ran:
        need = input_needs(prepared, ((1, 3, 64, 64),), base)
    assert ran == ["features_30", "avgpool", "flatten"]
    assert need == needs_of(base)  # the adaptive pool's input keeps its r_min; the heads need nothing


def _downsampling_module_layers(a):
    return [layer for layer in a.layers if layer.kop.downsampling and layer.kind in ("conv", "pool")
            and a.traced.node_by_name[layer.node].op == "call_module"]


@pytest.mark.parametrize("name", sorted(ZOO))
def test_replay_matches_the_rf_pass_with_downsampling_taken_out(name):
    from rflint.engine.surgery import stride_one

    natural = tuple(ZOO[name].input_size)
    prepared = prepare(f"zoo:{name}")
    sizes = [natural] + ([(32, 32)] if len(natural) == 2 and natural != (32, 32) else [])
    tried = 0  # (a U-Net does not run with any of its pools taken out: there both probes must raise)
    for size in sizes:
        base = prepared.at(size)
        layers = _downsampling_module_layers(base)
        for chosen in [layers[:1], layers[:2], layers[1:2], layers[-1:]]:
            if chosen:
                _compare(prepared, base, size, stride_one(base, chosen))
                tried += 1
    assert tried >= 1 or not _downsampling_module_layers(prepared.at(natural))


def test_replay_with_downsampling_taken_out_on_random_dags():
    from rflint.engine.surgery import stride_one

    ran = 0
    for prepared, base, size in _random_dags():
        layers = _downsampling_module_layers(base)
        for chosen in [layers[:1], layers[:2], layers[-1:]]:
            if chosen:
                ran += _compare(prepared, base, size, stride_one(base, chosen))
    assert ran >= 40


def test_stem_experiment_replay_maps_the_graph_after_the_stem():
    """ResNet-18 at 32 px without conv1's stride and the max pool: every state after the stem is
    the base's under r -> offset + r/4, j -> j/4 (two stride-2 layers out); only the stem and the
    nodes right behind it run their rules."""
    import rflint.engine.replay as replay_module
    from rflint.engine.surgery import stride_one

    prepared = prepare("zoo:resnet18")
    base = prepared.at((32, 32))
    stem = [base.layer("conv1"), base.layer("maxpool")]
    with _nodes_run(replay_module) as ran:
        p = probe(prepared, ((1, 3, 32, 32),), stride_one(base, stem), base=base)
    assert len(ran) < 12, ran
    assert p.table.maps() == {0: (Fraction(1, 4), Fraction(17, 4)), 1: (Fraction(1, 4), Fraction(17, 4))}
    # by hand: the base's maxpool output is r = 7 + 2*2 = 11, j = 4; without the stride and the pool
    # it is conv1's r = 7, j = 1: so scale 1/4 and offset 7 - 11/4 = 17/4
    layer = base.layer("layer1.0.conv1")
    node = prepared.traced.node_by_name[layer.node]
    assert p.rf(node.args[0]).axes[0].lo == ((7, 1),)


class ChannelSplit(nn.Module):
    """A map split in two along the channels with the methods (x.chunk, x.split, y.unbind: a tuple
    of tensors as one node's value), one half through a 5x5 conv, then joined again."""

    def __init__(self, how: str):
        super().__init__()
        self.how = how
        self.c = nn.Conv2d(3, 16, 3, padding=1)
        self.a = nn.Conv2d(8, 8, 5, padding=2)
        self.o = nn.Conv2d(16, 8, 3, padding=1)

    def forward(self, x):
        y = self.c(x)
        if self.how == "chunk":
            a, b = y.chunk(2, dim=1)
        elif self.how == "split":
            a, b = y.split(8, dim=1)
        else:
            a, b = y.view(y.shape[0], 2, 8, y.shape[2], y.shape[3]).unbind(1)
        return self.o(torch.cat([self.a(a), b], 1))


@pytest.mark.parametrize("how", ["chunk", "split", "unbind"])
def test_resized_needs_of_a_tuple_valued_node(how):
    # the resized visit compared the split's tuples of meta tensors with !=, which compares their
    # elements: "RuntimeError: Attempting to broadcast a dimension" in every report of such a model
    from rflint.report import build_report

    prepared = prepare(ChannelSplit(how))
    base = prepared.at((32, 32))
    for size in ((8, 8), (40, 40)):
        assert _needs_agree(prepared, base, size)
    # c reads r 1; a reads 3 (after c); o reads 3 through the untouched half and 7 through a: the
    # needs are 3, and at 3x3 nothing is unproductive
    assert [layer.r_in_min for layer in base.layers] == [(1, 1), (3, 3), (3, 3)]
    assert build_report(base).min_clean_input == (3, 3)


@dataclasses.dataclass
class _Heads:
    features: torch.Tensor
    logits: torch.Tensor


class _RecordOut(nn.Module):
    """Four 3x3 convs, the second with stride 2 (r 3, 5, 9, 13), a map and logits out, as a
    dataclass or as a tuple."""

    def __init__(self, record: bool):
        super().__init__()
        self.record = record
        self.convs = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.Conv2d(8, 8, 3, 2, 1), nn.Conv2d(8, 8, 3, 1, 1),
                                   nn.Conv2d(8, 8, 3, 1, 1))
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        f = self.convs(x)
        logits = self.fc(f.mean((2, 3)))
        return _Heads(f, logits) if self.record else (f, logits)


def test_clean_size_of_a_model_returning_a_dataclass():
    # the resized visit compared the output records with the dataclass's own __eq__, which compares
    # the tensors in them ("Attempting to broadcast a dimension ..."); the last conv reads r 9 and
    # the one before 5 (jump 2), so the smallest clean input is 9 px, as for the tuple version
    from rflint.report import build_report

    for record in (True, False):
        report = build_report(rflint.analyze(_RecordOut(record), 4))
        assert report.min_clean_input == (9, 9), record
