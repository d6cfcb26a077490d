"""The replayed RF pass (engine/replay.py) gives exactly the RF pass's answer at another size.

For every zoo model and seeded random DAG (tests/dagzoo.py), a probe at a second size with the
first size's analysis as base must hold the same RF per node and the same kernel per RF layer as a
probe from scratch; the sizes include ones where adaptive pools, upsampling and merges of maps of
different origins change, so a replay that reused too much would differ.
"""

from __future__ import annotations

import os
import sys

import pytest

from rflint.engine import prepare
from rflint.engine.program import probe
from rflint.errors import RflintError
from rflint.zoo import ZOO

sys.path.insert(0, os.path.dirname(__file__))
import dagzoo  # noqa: E402


def _compare(prepared, base, size) -> bool:
    """True when the model runs at ``size`` (and then the two probes agree)."""
    shapes = ((1, prepared.channels, *size),)
    try:
        full = probe(prepared, shapes)
    except RflintError:
        with pytest.raises(RflintError):
            probe(prepared, shapes, base=base)
        return False
    replayed = probe(prepared, shapes, base=base)
    assert replayed.rfs == full.rfs, size
    assert list(replayed.kernels) == list(full.kernels), size
    assert list(replayed.kernels.values()) == list(full.kernels.values()), size
    return True


@pytest.mark.parametrize("name", sorted(ZOO))
def test_replay_matches_the_rf_pass_on_zoo_models(name):
    natural = tuple(ZOO[name].input_size)
    prepared = prepare(f"zoo:{name}")
    base = prepared.at(natural)
    ran = 0
    for size in ({tuple(2 * s for s in natural), tuple(s + 7 for s in natural), tuple(max(8, s // 2) for s in natural),
                  tuple(s + 1 for s in natural)}):
        ran += _compare(prepared, base, size)
    assert ran >= 1


def test_replay_matches_the_rf_pass_on_random_dags():
    ran = 0
    for seed in range(60):
        spec = dagzoo.generate(seed)
        natural = tuple(spec["input_size"])
        prepared = prepare(dagzoo.build_module(spec), channels=spec["channels"])
        base = prepared.at(natural)
        for size in (tuple(s + 3 for s in natural), tuple(2 * s + 1 for s in natural)):
            ran += _compare(prepared, base, size)
    assert ran >= 60


def test_replay_reuses_what_the_size_cannot_change_and_recomputes_the_rest():
    """VGG-16 at 64 px on the base of 32 px: every conv, pool and activation keeps its RF; the
    adaptive pool to 7x7 (kernel from the map sizes: 1x1 -> 7x7 at 32 px, 2x2 -> 7x7 at 64 px)
    gets a new kernel; so the replay is neither all reuse nor a second RF pass."""
    import torch.fx as fx

    import rflint.engine.replay as replay_module
    from rflint.engine.rfpass import run_node

    prepared = prepare("zoo:vgg16")
    base = prepared.at((32, 32))
    ran: list[fx.Node] = []

    def counting(node, *args):
        ran.append(node)
        return run_node(node, *args)

    replay_module.run_node, original = counting, replay_module.run_node
    try:
        p = probe(prepared, ((1, 3, 64, 64),), base=base)
    finally:
        replay_module.run_node = original
    names = {n.name for n in ran}
    assert "avgpool" in names and "features_0" not in names and "features_28" not in names
    avgpool = next(n for n in p.kernels if n.name == "avgpool")
    # adaptive pooling n -> o reads max_i(ceil((i+1)n/o) - floor(i n/o)) units: 1 for 1 -> 7 (the
    # base, 32 px); for 2 -> 7 the row i = 3 spans ceil(8/7) - floor(6/7) = 2 - 0 = 2
    assert base.layer_by_node["avgpool"].kernel == (1, 1)
    assert p.kernels[avgpool].kernel == (2, 2)
    assert len(ran) < len(prepared.traced.order) // 3
