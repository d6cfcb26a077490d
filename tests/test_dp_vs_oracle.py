"""rflint's receptive-field engine vs. an independent brute-force path oracle (tests/dagzoo.py).

* test_oracle_*: the oracle itself against hand-computed numbers and against an explicit
  DFS path enumeration (so the oracle cannot silently agree with a wrong engine).
* test_dp_matches_oracle: >= 300 seeded random DAGs (1, 2 and 3 spatial axes, up to ~1e5
  input->node paths), every conv / pool / transposed conv / upsample / cat-1x1 layer's
  (r_min, r_max) of its input and output, exactly (Fractions), on every axis.
* test_hand_*: fixed hand-worked DAGs through rflint.
* test_diamond_chain_60: 2^60 paths, closed-form numbers (no enumeration).
"""

from __future__ import annotations

import os
import sys
from fractions import Fraction as F

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(__file__))
import dagzoo as dz  # noqa: E402

N_SEEDS = 300  # seed -> ndim = 1 + seed % 3: 100 DAGs per axis count


# --------------------------------------------------------------------------- helpers
def mk(ndim, input_size, nodes, C=2):
    """Spec from a list of nodes (node 0, the input, is prepended)."""
    spec = {"seed": None, "style": "hand", "ndim": ndim, "channels": C,
            "input_size": list(input_size), "nodes": [{"op": "input", "inputs": []}] + nodes}
    dz.spatial_sizes(spec)  # validates merge sizes / positivity
    return spec


def conv(x, k, s=None, p=None, d=None, ndim=1):
    def v(val, default):
        val = default if val is None else val
        return list(val) if isinstance(val, (list, tuple)) else [val] * ndim
    return {"op": "conv", "inputs": [x], "k": v(k, 1), "s": v(s, 1), "p": v(p, 0), "d": v(d, 1)}


def analyze(spec):
    import rflint

    with torch.device("meta"):
        model = dz.build_module(spec)
    return rflint.analyze(model, input_size=tuple(spec["input_size"]), channels=spec["channels"])


def _fr(v, what):
    assert v is not None, f"{what} is None (rflint treats the axis as non-spatial)"
    return F(v)


def got_layers(a, ndim):
    """{name: (in [(r_min, r_max)] per axis, out [...])} from an rflint Analysis."""
    res = {}
    for layer in a.layers:
        assert len(layer.r_out_min) == ndim, (layer.name, layer.r_out_min)
        gin = [(_fr(layer.r_in_min[i], f"{layer.name}.r_in_min[{i}]"),
                _fr(layer.r_in_max[i], f"{layer.name}.r_in_max[{i}]")) for i in range(ndim)]
        gout = [(_fr(layer.r_out_min[i], f"{layer.name}.r_out_min[{i}]"),
                 _fr(layer.r_out_max[i], f"{layer.name}.r_out_max[{i}]")) for i in range(ndim)]
        res[layer.name] = (gin, gout)
    return res


def check_against_oracle(spec):
    ndim = spec["ndim"]
    a = analyze(spec)
    want = dz.oracle_layers(spec)
    got = got_layers(a, ndim)
    assert set(got) == set(want), (
        f"layer names differ: only rflint {sorted(set(got) - set(want))}, "
        f"only oracle {sorted(set(want) - set(got))}\n{dz.describe(spec)}")
    bad = []
    for name, (win, wout) in want.items():
        gin, gout = got[name]
        if gin != win or gout != wout:
            bad.append(f"{name}: in oracle={win} rflint={gin}; out oracle={wout} rflint={gout}")
    assert not bad, "\n".join(bad[:10]) + "\n" + dz.describe(spec)
    # layers come in topological order: every RF ancestor is listed earlier
    pos = {layer.name: i for i, layer in enumerate(a.layers)}
    for name, anc in dz.rf_ancestors(spec).items():
        late = [u for u in anc if pos[u] > pos[name]]
        assert not late, f"{name} listed before its ancestors {late}"


# =========================================================================== the oracle itself
def _chain_spec():
    # 1 axis, input 64
    return mk(1, [64], [
        conv(0, 3, s=2, p=1),                                                # n1
        {"op": "maxpool", "inputs": [1], "k": [2], "s": [2], "p": [0], "d": [1]},  # n2
        conv(2, 3, d=2, p=2),                                                # n3
        {"op": "convT", "inputs": [3], "k": [4], "s": [2], "d": [1], "p": [1],
         "op_pad": [0]},                                                     # n4
        {"op": "upsample", "inputs": [4], "f": [2], "mode": "linear"},       # n5
        {"op": "upsample", "inputs": [5], "f": [2], "mode": "nearest"},      # n6
        conv(6, 2),                                                          # n7
        {"op": "avgpool", "inputs": [7], "k": [3], "s": [3], "p": [0]},      # n8
        {"op": "convT", "inputs": [8], "k": [3], "s": [3], "d": [2], "p": [0],
         "op_pad": [0]},                                                     # n9
    ])


# (r, j) along the chain, by hand:
#  input                          (1, 1)
#  n1 conv k3 s2:       1 + 2*1 = 3,   j = 2                -> (3, 2)       size 32
#  n2 maxpool k2 s2:    3 + 1*2 = 5,   j = 4                -> (5, 4)       size 16
#  n3 conv k3 d2 (k_eff 5): 5 + 4*4 = 21, j = 4             -> (21, 4)      size 16
#  n4 convT k4 s2: ceil(4/2)-1 = 1: 21 + 1*4 = 25, j = 2    -> (25, 2)      size 32
#  n5 linear x2:       25 + 2 = 27,    j = 1                -> (27, 1)      size 64
#  n6 nearest x2:      27,             j = 1/2              -> (27, 1/2)    size 128
#  n7 conv k2:         27 + 1*(1/2) = 55/2, j = 1/2         -> (55/2, 1/2)  size 127
#  n8 avgpool k3 s3:   55/2 + 2*(1/2) = 57/2, j = 3/2       -> (57/2, 3/2)  size 42
#  n9 convT k3 d2 s3 (k_eff 5): ceil(5/3)-1 = 1: 57/2 + 3/2 = 30, j = 1/2 -> (30, 1/2)
CHAIN_R = {1: 3, 2: 5, 3: 21, 4: 25, 5: 27, 6: 27, 7: F(55, 2), 8: F(57, 2), 9: 30}
CHAIN_J = {1: 2, 2: 4, 3: 4, 4: 2, 5: 1, 6: F(1, 2), 7: F(1, 2), 8: F(3, 2), 9: F(1, 2)}


def _brief_spec():
    # conv3x3 -> {conv3x3 s2, conv5x5 s2} -> add -> conv3x3 -> conv3x3, 2 axes, input 32x32
    return mk(2, [32, 32], [
        conv(0, 3, p=1, ndim=2),            # n1
        conv(1, 3, s=2, p=1, ndim=2),       # n2
        conv(1, 5, s=2, p=2, ndim=2),       # n3
        {"op": "add", "inputs": [2, 3]},    # n4
        conv(4, 3, p=1, ndim=2),            # n5
        conv(5, 3, p=1, ndim=2),            # n6
    ])


# By hand, each axis:
#  n1 conv3:        (1 + 2, 1)                    = (3, 1)
#  n2 conv3 s2:     (3 + 2*1, 2)                  = (5, 2)
#  n3 conv5 s2:     (3 + 4*1, 2)                  = (7, 2)
#  n4 add:          {(5, 2), (7, 2)}              -> (r_min, r_max) = (5, 7)
#  n5 conv3:        {(5 + 2*2, 2), (7 + 2*2, 2)}  = {(9, 2), (11, 2)}   -> (9, 11)
#  n6 conv3:        {(13, 2), (15, 2)}                                  -> (13, 15)
BRIEF = {1: (3, 3), 2: (5, 5), 3: (7, 7), 4: (5, 7), 5: (9, 11), 6: (13, 15)}


def _mixed_j_spec():
    # 1 axis, input 4: two size-2 tensors with different jumps are added.
    return mk(1, [4], [
        conv(0, 3),                                                              # n1
        {"op": "maxpool", "inputs": [0], "k": [2], "s": [2], "p": [0], "d": [1]},  # n2
        {"op": "add", "inputs": [1, 2]},                                         # n3
        conv(3, 3, p=1),                                                         # n4
        conv(4, 3, p=1),                                                         # n5
        {"op": "add", "inputs": [4, 1]},                                         # n6
    ])


# By hand:
#  n1 conv3 (no pad, size 4 -> 2):  (3, 1)
#  n2 maxpool2 s2 (size 4 -> 2):    (2, 2)
#  n3 add: {(3, 1), (2, 2)}                               -> (2, 3)
#  n4 conv3: {(3 + 2*1, 1), (2 + 2*2, 2)} = {(5,1), (6,2)} -> (5, 6)
#      (r_min comes from the path that was the *larger* one before: a DP that keeps one
#       jump per tensor, or only the min-r path, gets 6 or (4..) wrong here)
#  n5 conv3: {(7, 1), (10, 2)}                            -> (7, 10)
#  n6 add(n4, n1): {(5,1), (6,2), (3,1)}                  -> (3, 6)
MIXED = {1: (3, 3), 2: (2, 2), 3: (2, 3), 4: (5, 6), 5: (7, 10), 6: (3, 6)}


def _per_axis_spec():
    # 2 axes, input 24 x 36; per-axis kernels/strides, cat, a duplicate edge, convT
    return mk(2, [24, 36], [
        conv(0, (3, 1), s=(1, 3), p=(1, 0), ndim=2),                             # n1 (24,12)
        {"op": "maxpool", "inputs": [0], "k": [1, 3], "s": [1, 3], "p": [0, 0],
         "d": [1, 1]},                                                           # n2 (24,12)
        {"op": "cat", "inputs": [1, 2]},                                         # n3 (24,12)
        {"op": "add", "inputs": [3, 3]},                                         # n4 (24,12)
        {"op": "convT", "inputs": [4], "k": [2, 3], "s": [2, 3], "d": [1, 1], "p": [0, 0],
         "op_pad": [0, 0]},                                                      # n5 (48,36)
        conv(5, (3, 5), d=(2, 1), p=(2, 2), ndim=2),                             # n6 (48,36)
    ], C=3)


# By hand, (axis 0 ; axis 1):
#  n1 conv k(3,1) s(1,3):  (3, 1) ; (1, 3)
#  n2 maxpool k(1,3) s(1,3): (1, 1) ; (3, 3)
#  n3 cat (+1x1 conv):     {(3,1),(1,1)} -> (1,3) ; {(1,3),(3,3)} -> (1,3)
#  n4 n3 + n3:             same set, but 4 paths
#  n5 convT k(2,3) s(2,3): ceil(2/2)-1 = 0 and ceil(3/3)-1 = 0, no growth:
#                          {(3,1/2),(1,1/2)} -> (1,3) ; {(1,1),(3,1)} -> (1,3)
#  n6 conv k(3,5) d(2,1):  k_eff 5 and 5: r + 4*(1/2) = r + 2 -> (3,5) ; r + 4*1 -> (5,7)
PER_AXIS = {1: [(3, 3), (1, 1)], 2: [(1, 1), (3, 3)], 3: [(1, 3), (1, 3)],
            4: [(1, 3), (1, 3)], 5: [(1, 3), (1, 3)], 6: [(3, 5), (5, 7)]}


def test_oracle_hand_chain():
    spec = _chain_spec()
    assert dz.spatial_sizes(spec)[1:] == [(32,), (16,), (16,), (32,), (64,), (128,), (127,),
                                          (42,), (128,)]
    states = dz.oracle_path_states(spec)
    for i in range(1, 10):
        assert states[i] == [((F(CHAIN_R[i]), F(CHAIN_J[i])),)], i
    o = dz.oracle(spec)
    assert o[9] == [(30, 30)] and o[7] == [(F(55, 2), F(55, 2))]


def test_oracle_hand_brief():
    o = dz.oracle(_brief_spec())
    for i, mm in BRIEF.items():
        assert o[i] == [mm, mm], (i, o[i])
    assert dz.path_counts(_brief_spec())[6] == 2


def test_oracle_hand_mixed_jumps():
    spec = _mixed_j_spec()
    o = dz.oracle(spec)
    for i, mm in MIXED.items():
        assert o[i] == [mm], (i, o[i])
    assert sorted(dz.oracle_path_states(spec)[6]) == [((3, 1),), ((5, 1),), ((6, 2),)]


def test_oracle_hand_per_axis():
    spec = _per_axis_spec()
    assert dz.spatial_sizes(spec)[5:] == [(48, 36), (48, 36)]
    o = dz.oracle(spec)
    for i, mm in PER_AXIS.items():
        assert o[i] == mm, (i, o[i])
    assert dz.path_counts(spec)[6] == 4
    ol = dz.oracle_layers(spec)
    assert set(ol) == {"n1", "n2", "n3", "n5", "n6"}
    assert ol["n3"] == ([(1, 3), (1, 3)], [(1, 3), (1, 3)])  # cat: in = union of inputs
    assert ol["n6"] == ([(1, 3), (1, 3)], [(3, 5), (5, 7)])


@pytest.mark.parametrize("seed", range(0, 100))
def test_oracle_vs_explicit_paths(seed):
    """The oracle's path lists equal an explicit DFS over node sequences (small DAGs)."""
    spec = dz.generate(seed, path_cap=1000)
    states = dz.oracle_path_states(spec)
    for v in range(len(spec["nodes"])):
        explicit = [dz.path_state(spec, p) for p in dz.iter_paths(spec, v)]
        assert sorted(explicit) == sorted(states[v]), v
    # and the min/max summary
    o = dz.oracle(spec)
    for v, sts in enumerate(states):
        for a in range(spec["ndim"]):
            rs = [s[a][0] for s in sts]
            assert o[v][a] == (min(rs), max(rs))


@pytest.mark.parametrize("seed", range(0, N_SEEDS, 7))
def test_generator_shapes_match_pytorch(seed):
    """Every node's tracked spatial size equals PyTorch's (meta forward, per-module hooks)."""
    spec = dz.generate(seed)
    sizes = dz.spatial_sizes(spec)
    with torch.device("meta"):
        m = dz.build_module(spec)
    seen = {}
    for name, mod in m.named_children():
        mod.register_forward_hook(lambda mod, inp, out, name=name: seen.__setitem__(name, out))
    torch.fx.symbolic_trace(m)  # must be traceable
    m(torch.empty(1, spec["channels"], *spec["input_size"], device="meta"))
    for i, node in enumerate(spec["nodes"]):
        if f"n{i}" in seen:
            out = seen[f"n{i}"]
            assert tuple(out.shape[2:]) == sizes[i], (i, node, out.shape, sizes[i])
            assert out.shape[1] == spec["channels"]


def test_generator_covers_the_zoo():
    styles, axes, maxpaths, ops = set(), set(), 0, set()
    for seed in range(N_SEEDS):
        spec = dz.generate(seed)
        styles.add(spec["style"])
        axes.add(spec["ndim"])
        maxpaths = max(maxpaths, max(dz.path_counts(spec)))
        ops |= {n["op"] for n in spec["nodes"]}
    assert styles == set(dz.STYLES) and axes == {1, 2, 3}
    assert maxpaths > 50_000
    assert ops >= {"conv", "maxpool", "avgpool", "convT", "upsample", "add", "mul", "cat"}


# =========================================================================== rflint vs oracle
@pytest.mark.parametrize("seed", range(N_SEEDS))
def test_dp_matches_oracle(seed):
    check_against_oracle(dz.generate(seed))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**31 - 1), ndim=st.integers(1, 3), style=st.sampled_from(dz.STYLES))
def test_dp_matches_oracle_hypothesis(seed, ndim, style):
    check_against_oracle(dz.generate(seed, ndim=ndim, style=style))


# =========================================================================== hand cases via rflint
def _check_hand(spec, expected_out):
    got = got_layers(analyze(spec), spec["ndim"])
    for i, want in expected_out.items():
        assert got[f"n{i}"][1] == [tuple(F(x) for x in mm) for mm in want], (i, got[f"n{i}"])


def test_hand_brief():
    # numbers derived above (BRIEF): after the 2nd 3x3 (9, 11), after the 3rd (13, 15)
    spec = _brief_spec()
    _check_hand(spec, {i: [mm, mm] for i, mm in BRIEF.items() if i != 4})
    got = got_layers(analyze(spec), 2)
    assert got["n5"][0] == [(5, 7), (5, 7)]  # input of the conv after the add


def test_hand_chain():
    _check_hand(_chain_spec(), {i: [(CHAIN_R[i], CHAIN_R[i])] for i in range(1, 10)})


def test_hand_mixed_jumps():
    spec = _mixed_j_spec()
    _check_hand(spec, {i: [MIXED[i]] for i in (1, 2, 4, 5)})
    got = got_layers(analyze(spec), 1)
    assert got["n4"][0] == [(2, 3)]


def test_hand_per_axis():
    spec = _per_axis_spec()
    _check_hand(spec, {i: PER_AXIS[i] for i in (1, 2, 3, 5, 6)})


# =========================================================================== 60 diamonds (2^60 paths)
def _diamond_chain(n):
    # 2 axes. Diamond i: a = conv k(3,1) pad (1,0); b = conv k(5,3) pad (2,1); x = a + b.
    nodes, x = [], 0
    for _ in range(n):
        nodes.append(conv(x, (3, 1), p=(1, 0), ndim=2))
        nodes.append(conv(x, (5, 3), p=(2, 1), ndim=2))
        a, b = len(nodes) - 1, len(nodes)
        nodes.append({"op": "add", "inputs": [a, b]})
        x = len(nodes)
    nodes.append(conv(x, 3, p=1, ndim=2))  # final 3x3
    return mk(2, [16, 16], nodes)


def test_diamond_chain_60():
    # All strides 1, so j = 1 everywhere and every branch just adds k_eff - 1:
    #   axis 0: branch a adds 2, branch b adds 4;   axis 1: a adds 0, b adds 2.
    # Before diamond i (1-based) a path has taken a-branches m times and b-branches
    # (i-1-m) times, m = 0..i-1, all 2^(i-1) combinations present. So the input of both
    # convs of diamond i has
    #   axis 0: r in {1 + 2m + 4(i-1-m)}  -> r_min = 1 + 2(i-1), r_max = 1 + 4(i-1)
    #   axis 1: r in {1 + 2(i-1-m)}       -> r_min = 1,          r_max = 1 + 2(i-1)
    # outputs: a: axis0 +2, axis1 +0;  b: axis0 +4, axis1 +2.
    # After 60 diamonds: axis0 (1 + 2*60, 1 + 4*60) = (121, 241); axis1 (1, 121);
    # the final 3x3 adds 2 on both axes: (123, 243) and (3, 123).
    n = 60
    spec = _diamond_chain(n)
    assert dz.path_counts(spec)[-1] == 2 ** 60  # counting is fine, enumerating is not
    got = got_layers(analyze(spec), 2)
    assert len(got) == 2 * n + 1
    for i in range(1, n + 1):
        a, b = f"n{3 * i - 2}", f"n{3 * i - 1}"
        rin = [(1 + 2 * (i - 1), 1 + 4 * (i - 1)), (1, 1 + 2 * (i - 1))]
        assert got[a][0] == rin and got[b][0] == rin, i
        assert got[a][1] == [(3 + 2 * (i - 1), 3 + 4 * (i - 1)), (1, 1 + 2 * (i - 1))], i
        assert got[b][1] == [(5 + 2 * (i - 1), 5 + 4 * (i - 1)), (3, 3 + 2 * (i - 1))], i
    last = got[f"n{3 * n + 1}"]
    assert last == ([(121, 241), (1, 121)], [(123, 243), (3, 123)])


def test_diamond_chain_oracle_small():
    # The same closed form, checked against the oracle on a short chain (2^8 paths).
    n = 8
    o = dz.oracle(_diamond_chain(n))
    assert o[3 * n] == [(1 + 2 * n, 1 + 4 * n), (1, 1 + 2 * n)]
    assert o[3 * n + 1] == [(3 + 2 * n, 3 + 4 * n), (3, 3 + 2 * n)]


def test_a_pool_closing_a_model_on_a_one_pixel_map_is_global_in_both():
    # hypothesis found it: a k1 max pool on the 1-pixel map the model ends with reads the whole map,
    # which rflint (README decisions) counts as global pooling; the oracle counted a layer
    spec = dz.generate(137, ndim=1, style="tiny")
    assert dz.global_pool_sink(spec) == 19 and "n19" not in dz.oracle_layers(spec)
    check_against_oracle(spec)
