"""The engine's shortcuts against the slow, general machinery they stand in for.

- compiled shape steps (trace/shapes.compile_steps) vs the interpreter's own dispatch;
- compiled RF steps (engine/ops.quick_step) vs every node's transfer rule;
- the stem experiment's probes (statuses from the RF program alone, the tail from the same trace's
  segments) vs a whole re-analysis of each what-if model.

Each shortcut must give the same answer node by node; the reference is the code path the rest of
the test suite (and the brute-force oracle in test_dp_vs_oracle.py) checks for correctness.
"""

import pytest
import torch

import rflint
import rflint.engine.program as program
import rflint.engine.rfpass as rfpass
from rflint.engine.surgery import stride_one
from rflint.rules import LintContext
from rflint.rules.stem import stem_layers, tail_layers_after
from rflint.rules.structure import analyse_structure
from rflint.zoo import ZOO

import dagzoo

ZOO_CASES = [(name, side) for name in sorted(ZOO) if len(ZOO[name].input_size) == 2 for side in (32, 224)]
ZOO_CASES += [(name, None) for name in sorted(ZOO) if len(ZOO[name].input_size) != 2]


def _size(name, side):
    return tuple(ZOO[name].input_size) if side is None else (side, side)


def _slow(monkeypatch):
    """Every node through the general machinery: no compiled step of either pass."""
    monkeypatch.setattr(rfpass, "quick_step", lambda node, modules, inputs: None)
    monkeypatch.setattr(program, "compile_steps", lambda gm, modules: [None] * len(gm.graph.nodes))


def _fingerprint(p):
    shapes = {n.name: (tuple(v.shape), v.dtype) for n, v in p.values.items() if hasattr(v, "shape")}
    return shapes, {n.name: rf for n, rf in p.rfs.items()}, {n.name: k for n, k in p.kernels.items()}


@pytest.mark.parametrize("name,side", ZOO_CASES)
def test_compiled_steps_agree_with_the_rules_on_the_zoo(name, side, monkeypatch):
    size = _size(name, side)
    fast = _fingerprint(rflint.prepare(f"zoo:{name}").probe(size))
    a_fast = rflint.analyze(f"zoo:{name}", size)
    _slow(monkeypatch)
    slow = _fingerprint(rflint.prepare(f"zoo:{name}").probe(size))
    a_slow = rflint.analyze(f"zoo:{name}", size)
    assert fast == slow
    assert a_fast.layers == a_slow.layers and a_fast.warnings == a_slow.warnings and a_fast.macs == a_slow.macs


@pytest.mark.parametrize("seed", range(40))
def test_compiled_steps_agree_with_the_rules_on_random_dags(seed, monkeypatch):
    spec = dagzoo.generate(9100 + seed)
    size = tuple(spec["input_size"])
    with torch.device("meta"):
        model = dagzoo.build_module(spec)
    fast = _fingerprint(rflint.prepare(model, channels=spec["channels"]).probe(size))
    _slow(monkeypatch)
    slow = _fingerprint(rflint.prepare(model, channels=spec["channels"]).probe(size))
    assert fast == slow


def test_a_compiled_step_steps_aside_for_a_replaced_module():
    """A module the stem experiment swapped in is run by its own rule, not the compiled step of
    the module it replaced: stride 1 instead of 2 halves nothing."""
    prepared = rflint.prepare("zoo:resnet18")
    a = prepared.at(32)
    conv1 = a.layer("conv1")
    p = prepared.probe(32, replace=stride_one(a, [conv1]))
    node = next(n for n in p.kernels if n.name == conv1.node)
    assert p.kernels[node].stride == (1, 1)
    assert tuple(p.values[node].shape) == (1, 64, 32, 32)  # (32 + 2*3 - 7) // 1 + 1


STEM_CASES = [("resnet18", 32), ("resnet34", 32), ("resnet50", 32), ("densenet121", 32), ("inception", 32),
              ("se_resnet18", 32), ("cbam_resnet18", 32), ("resnet50", 64), ("resnet18", 64), ("densenet121", 64)]


@pytest.mark.parametrize("name,side", STEM_CASES)
def test_stem_probes_agree_with_whole_reanalyses(name, side):
    """For every prefix of the stem's downsampling layers: the tail length the probe reports, and
    the MACs, equal those of a complete analysis (layers, structure) of the changed model; with the
    probe run from scratch and replayed from the analysis (as the stem experiment runs it)."""
    a = rflint.prepare(f"zoo:{name}").at(side)
    s = LintContext(a).structure
    candidates = [layer for layer in stem_layers(s) if layer.kop.downsampling and layer.kind in ("conv", "pool")]
    assert candidates, "these models have a stem to experiment with"
    for k in range(1, len(candidates) + 1):
        replace = stride_one(a, candidates[:k])
        probe = a.prepared.probe(a.input_size, replace=replace)
        after = a.prepared.at(a.input_size, replace=replace)
        tail = analyse_structure(after).tail
        want = None if tail is None else len(tail.parametric_layers)
        assert tail_layers_after(s, probe, 1) == want
        assert tail_layers_after(s, a.prepared.probe(a.input_size, replace=replace, base=a), 1) == want
        assert probe.macs() == after.macs


def test_shape_values_stay_lazy_until_torch_needs_them():
    """Shapes computed by arithmetic are MetaSpecs, not meta tensors (no dispatcher round trip)."""
    from rflint.trace.metaspec import MetaSpec

    p = rflint.prepare("zoo:resnet18").probe(64)
    kinds = {n.name: type(v) for n, v in p.values.items()}
    assert kinds["conv1"] is MetaSpec and kinds["layer1_0_conv1"] is MetaSpec
    assert kinds["x"] is MetaSpec  # the input too: torch.empty(device="meta") is made only if torch needs it


def test_input_spec_becomes_a_meta_tensor_where_torch_runs_on_it():
    """The input is a MetaSpec; an op without a shape rule right on it (a method and a function
    torch must run) still gets a real meta tensor, and the RF starts at the input as before."""

    class RollFirst(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, stride=2)

        def forward(self, x):
            return self.conv(torch.flip(x.roll(1, -1), (-2,)))

    a = rflint.analyze(RollFirst(), (9, 11))
    assert a.shapes["x"] == (1, 3, 9, 11) and a.shapes["conv"] == (1, 4, 4, 5)
    assert [(layer.name, layer.r_in_min, layer.r_out_min) for layer in a.layers] == [("conv", (1, 1), (3, 3))]
