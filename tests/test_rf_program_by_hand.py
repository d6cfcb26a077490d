"""RF-program behaviour in cases mutation testing found no test pinned down.

Every expected number is worked out by hand from rf-semantics.md §2 in the comment next to it
(conv/pool: r += (k_eff-1)*j, j *= s; merges: union per axis; r_min/r_max = min/max over the union).
"""

from fractions import Fraction

import torch
import torch.nn.functional as F
from torch import nn

import rflint
from rflint.rules import lint
from rflint.rules.structure import analyse_structure


def layers_of(a):
    return {layer.name: layer for layer in a.layers}


class _ResidualThenSpaceToDepth(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 3, 3, padding=1), nn.Conv2d(12, 4, 3, padding=1)

    def forward(self, x):
        h = self.c1(x) + x
        b, c, hh, ww = h.shape
        h = h.view(b, c, hh // 2, 2, ww // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(b, 4 * c, hh // 2, ww // 2)
        return self.c2(h)


def test_an_op_that_moves_its_axes_reports_its_own_r_min_and_r_max():
    # mutant rfstate.axes_by_origin (r_min read from the hi frontier).
    # c1 3x3: (3, j1).  + x (1, j1): r_min 1, r_max 3.  Space-to-depth 2x2 (window 2, stride 2):
    # r_min 1 + 1 = 2, r_max 3 + 1 = 4, j 2.  c2 3x3: r_min 2 + 2*2 = 6, r_max 4 + 2*2 = 8
    a = rflint.analyze(_ResidualThenSpaceToDepth(), (16, 20))
    split = next(layer for layer in a.layers if layer.kind == "unshuffle")
    assert tuple(split.r_in_min) == (1, 1) and tuple(split.r_in_max) == (3, 3)
    assert tuple(split.r_out_min) == (2, 2) and tuple(split.r_out_max) == (4, 4)
    assert tuple(a.final_r_min) == (6, 6) and tuple(a.final_r_max) == (8, 8)


class _AntialiasedAlongW(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        h = self.c1(x)
        h = F.interpolate(h, size=(h.shape[2], h.shape[3] // 2), mode="bilinear", antialias=True)
        return self.c2(h)


def test_an_antialiased_resize_leaves_the_axis_it_does_not_resize_alone():
    # mutant kernels._interpolation `f < 1` -> `f <= 1`.
    # c1 3x3: (3, j1) on both axes.  Resize 16x16 -> 16x8, bilinear, antialias: H factor 1 is a copy
    # (r 3, j 1); W factor 1/2 reads ceil(2 / (1/2)) = 4 units: r 3 + 3*1 = 6, j 2.
    # c2 3x3: H 3 + 2 = 5, W 6 + 2*2 = 10
    a = rflint.analyze(_AntialiasedAlongW(), (16, 16))
    L = layers_of(a)
    assert tuple(L["interpolate"].r_out_min) == (3, 6)
    assert tuple(L["c2"].r_out_min) == (5, 10) and tuple(a.final_r_max) == (5, 10)


class _PointwiseUpAfterTheBorder(nn.Module):
    def __init__(self):
        super().__init__()
        self.c0 = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.c1, self.c2 = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.up = nn.ConvTranspose2d(4, 4, 1, stride=2, output_padding=1)
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        return self.head(self.up(self.c2(self.c1(self.c0(x)))))


def test_a_one_by_one_transposed_conv_is_not_expanding():
    # mutant kernels.KernelOp.expanding: a transposed conv always expanding.
    # k_eff = 1 on both axes, so not expanding (rf-semantics.md §3).  At I = 8: c0 3x3/2 -> (3, j2);
    # c1 reads 3 <= 8 -> 3 + 2*2 = 7; c2 reads 7 <= 8 -> 11; up (k1 s2) reads 11 > 8: unproductive,
    # ceil(1/2) - 1 = 0 -> (11, j1); head 1x1 reads 11 > 8.  Segments: c0, c1, c2 productive; up and
    # head have no expanding layer: neutral.  A tail starts at an unproductive segment: none, so no
    # tail (RF001 still names up and head, which are unproductive layers)
    a = rflint.analyze(_PointwiseUpAfterTheBorder(), 8)
    L = layers_of(a)
    assert L["up"].expanding is False and tuple(L["up"].r_in_min) == (11, 11)
    assert tuple(L["up"].r_out_min) == (11, 11) and L["up"].stride == (Fraction(1, 2),) * 2
    assert analyse_structure(a).tail is None
    codes = {(f.code, f.layer) for f in lint(a).findings}
    assert ("RF001", "up") in codes and ("RF001", "head") in codes
    assert not [c for c in codes if c[0] == "RF002"]


def test_a_head_conv_still_counts_as_a_parametric_layer_on_the_path():
    # mutant ops.context.kernel_result: a head layer does not deepen the path.
    # conv 3x3 (d 1) -> global average pool (d 1, global) -> 1x1 conv on the global tensor (head, d 2)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Conv2d(4, 2, 1))
    a = rflint.analyze(net, 8)
    last = a.rf[a.layers[-1].node]
    assert a.layers[-1].head and last.is_global
    assert (last.d_min, last.d_max) == (2, 2)


class _LengthAsChannels(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv1d(16, 8, 3, padding=1), nn.Linear(8 * 3, 2)

    def forward(self, x):  # (B, 3, 16) read as (B, C=3, L=16); transposed, the conv runs over the 3
        return self.fc(self.conv(x.transpose(1, 2)).flatten(1))


def test_a_layer_whose_kernel_runs_over_no_spatial_axis_is_not_unproductive():
    # mutant structure.status_of: `UNPRODUCTIVE if over else HEAD` -> UNPRODUCTIVE.
    # The conv's kernel axis (dim -1) is the input's channel axis: no spatial axis is read, so it is
    # neither over nor within the input size on any axis -> "head" (no rule applies), not
    # "unproductive" (which would give an RF001 on a layer that reads no pixel neighbourhood at all)
    a = rflint.analyze(_LengthAsChannels(), (16,), channels=3)
    conv = a.layer("conv")
    assert not conv.head and tuple(conv.r_in_min) == (None,)
    assert analyse_structure(a).status["conv"] == "head"
    assert lint(a).findings == []


class _HeightGate(nn.Module):
    def __init__(self):
        super().__init__()
        self.c, self.g = nn.Conv2d(3, 4, 3, padding=1), nn.Conv1d(4, 4, 9, padding=4)

    def forward(self, x):
        m = self.c(x)
        return m * torch.sigmoid(self.g(m.mean(3))).unsqueeze(-1)


def test_a_gate_over_one_axis_is_not_the_final_layer():
    # mutant program._final_layer key without the count of the last tensor's axes.
    # c 3x3: (3, 3).  Gate: mean over W, 9-tap conv over H: 3 + 8 = 11 on H.  m * gate (broadcast
    # over W only: a spatial gate is a merge): H states {3, 11}, W {3}.  Final layer: c (it has both
    # of the last tensor's axes; g has only H, however far it sees).  Last tensor: r_min (3, 3),
    # r_max (11, 3)
    a = rflint.analyze(_HeightGate(), (16, 16))
    assert a.layer("g").r_out_min == (11,)
    assert a.final_layer == "c"
    assert tuple(a.final_r_min) == (3, 3) and tuple(a.final_r_max) == (11, 3)


class _TwoMaps(nn.Module):
    def __init__(self, deep_first):
        super().__init__()
        self.deep_first = deep_first
        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 5, padding=2)

    def forward(self, x):
        h = self.a(x)
        d = self.b(h)
        return (d, h) if self.deep_first else (h, d)


def test_of_several_output_maps_the_final_rf_is_the_one_that_sees_most():
    # mutant program._final_layer: `>` -> `<` when choosing the last spatial tensor.
    # a 3x3: r 3; b 5x5 on it: 3 + 4 = 7.  Both maps are returned: the final RF is b's, 7, in
    # whichever order forward() returns them
    for deep_first in (False, True):
        a = rflint.analyze(_TwoMaps(deep_first), 16)
        assert a.final_layer == "b"
        assert tuple(a.final_r_min) == (7, 7) and tuple(a.final_r_max) == (7, 7)


class _SpaceToDepthAfterTheBorder(nn.Module):
    def __init__(self):
        super().__init__()
        self.convs = nn.Sequential(*[nn.Conv2d(3 if i == 0 else 4, 4, 3, padding=1) for i in range(4)])
        self.head, self.fc = nn.Conv2d(16, 4, 1), nn.Linear(4, 2)

    def forward(self, x):
        h = self.convs(x)
        b, c, hh, ww = h.shape
        h = h.view(b, c, hh // 2, 2, ww // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(b, 4 * c, hh // 2, ww // 2)
        return self.fc(self.head(h).mean((2, 3)))


def test_a_space_to_depth_reshape_is_an_expanding_layer():
    # mutant kernels.blocks with grow 0 (the reshape's RF is stepped by the rule itself, but its
    # KernelOp says whether it expands).  Window 2 per axis: k_eff 2 > 1, expanding (§3).
    # I = 8: convs r 3, 5, 7, 9 (the 4th reads 7 <= 8); the 2x2 space-to-depth reads 9 > 8:
    # unproductive, -> 9 + 1 = 10, j2; head 1x1 reads 10 > 8.  The space-to-depth's segment is
    # unproductive (it expands), so the tail starts there: [view, head], border head (the first
    # unproductive parametric layer), cut after the 4th conv.  Taken as non-expanding it was neutral
    # and there was no tail at all
    a = rflint.analyze(_SpaceToDepthAfterTheBorder(), 8)
    split = next(layer for layer in a.layers if layer.kind == "unshuffle")
    assert split.kernel == (2, 2) and split.expanding is True
    assert tuple(split.r_in_min) == (9, 9) and tuple(split.r_out_min) == (10, 10)
    tail = analyse_structure(a).tail
    assert tail is not None and tail.border.name == "head"
    assert [layer.name for layer in tail.layers] == [split.name, "head"]


# mutation testing, second round (2026-12-05): structure.py's segment walk and border
class _DeadBranchInsideABlock(nn.Module):
    """c0; then one block: y = x + u(big(x)), out = c3(y) + x (the outer skip makes y no cut)."""

    def __init__(self):
        super().__init__()
        self.c0 = nn.Conv2d(3, 4, 3, padding=1)
        self.big = nn.Conv2d(4, 4, 9, padding=4)
        self.u = nn.Conv2d(4, 4, 3, padding=1)
        self.c3 = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        x = self.c0(x)
        y = x + self.u(self.big(x))
        return self.c3(y) + x


def test_a_path_round_a_dead_layer_through_a_merge_then_a_productive_conv_is_productive():
    # mutant structure._segment_walk: a merge is clean only if *all* its predecessors are (any -> all).
    # I = 8.  c0 3x3: (3, j1).  big 9x9 reads 3 <= 8: productive, -> 11.  u 3x3 reads 11 > 8:
    # unproductive, -> 13.  y = x + u: r_min 3, r_max 13.  c3 reads r_min 3 <= 8: productive (an
    # expanding layer), -> 5.  Cut tensors: the input, c0's output, the output (y is bypassed by the
    # outer skip): segment 1 = {big, u, y, c3, out}.  The path c0 -> y (identity) -> c3 -> out avoids
    # the unproductive u and passes the productive expanding c3: the segment is productive
    # (rf-semantics.md §4), so there is no tail; only RF001 on u
    a = rflint.analyze(_DeadBranchInsideABlock(), 8)
    assert a.layer("u").r_in_min == (11, 11) and a.layer("c3").r_in_min == (3, 3)
    s = analyse_structure(a)
    assert (s.status["big"], s.status["u"], s.status["c3"]) == ("productive", "unproductive", "productive")
    assert s.tail is None
    assert sorted((f.code, f.layer) for f in lint(a).findings) == [("RF001", "u")]


def test_a_tail_without_an_unproductive_parametric_layer_has_its_first_unproductive_layer_as_border():
    # mutant structure._tail_of: border fallback unproductive[0] -> unproductive[-1].
    # min-tail-layers 0 (a tail of pools counts).  I = 4.  "0" 3x3 reads 1 -> 3; "1" reads 3 -> 5;
    # "2" max pool 3x3/1 (pad 1) reads 5 > 4: unproductive -> 7; "3" the same, reads 7.  Tail =
    # ["2", "3"], no parametric layer in it: border = its first unproductive RF layer, "2"
    # (rf-semantics.md §4), and the cut is after "1".  (Settings rejects min_tail_layers 0, so through
    # lint() the fallback is unreachable: this pins down analyse_structure's own contract)

    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1),
                        nn.MaxPool2d(3, 1, 1), nn.MaxPool2d(3, 1, 1))
    a = rflint.analyze(net, 4)
    s = analyse_structure(a, min_tail_layers=0)
    assert [layer.name for layer in s.tail.layers] == ["2", "3"] and s.tail.border.name == "2"
    assert s.tail.cut_name == "1"


# Mutation testing, third round (2026-12-05): the RF arithmetic; each test names the mutant it kills.

class _ThreeJumps(nn.Module):
    """Three 8 -> 4 paths with three different jumps, summed, then two 3x3 convs."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1, stride=2)  # floor((8 - 1) / 2) + 1 = 4
        self.b = nn.Conv2d(3, 4, 3, stride=3, padding=2)  # floor((8 + 4 - 3) / 3) + 1 = 4
        self.c = nn.Conv2d(3, 4, 2, stride=4, padding=3)  # floor((8 + 6 - 2) / 4) + 1 = 4
        self.c1, self.c2 = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.c2(self.c1(self.a(x) + self.b(x) + self.c(x)))


def test_states_with_different_jumps_keep_both_frontiers_through_later_convs():
    # mutants rfstate.AxisRF.step: the lo frontier stepped from the hi states (general path, t18);
    # the one-state fast path taken when only lo has one state, dropping hi's second state (t20);
    # the fast path growing hi's r by lo's jump (t17).
    # Per axis: a 1x1/2 -> (1, 2); b 3x3/3 -> (3, 3); c 2x2/4 -> (2, 4).  The sum is their union:
    #   Pareto-min (smaller r and j): (1, 2) dominates (2, 4) and (3, 3) -> lo = {(1, 2)}
    #   Pareto-max (larger r and j): (3, 3) and (2, 4) (neither dominates) -> hi = {(3, 3), (2, 4)}
    #   so c1 reads r_min 1, r_max 3.
    # c1 3x3 (grow 2j): lo (1 + 2*2, 2) = (5, 2); hi (3 + 2*3, 3) = (9, 3) and (2 + 2*4, 4) = (10, 4),
    #   and (10, 4) dominates (9, 3): r_min 5, r_max 10 (not 9: the state with the smaller r wins).
    # c2 3x3: r_min 5 + 2*2 = 9; r_max 10 + 2*4 = 18 (hi's own jump 4, not lo's 2).
    a = rflint.analyze(_ThreeJumps(), (8, 8))
    L = layers_of(a)
    assert [tuple(L[n].r_out_min) for n in "abc"] == [(1, 1), (3, 3), (2, 2)]
    assert tuple(L["c1"].r_in_min) == (1, 1) and tuple(L["c1"].r_in_max) == (3, 3)
    assert tuple(L["c1"].r_out_min) == (5, 5) and tuple(L["c1"].r_out_max) == (10, 10)
    assert tuple(L["c2"].r_in_min) == (5, 5) and tuple(L["c2"].r_in_max) == (10, 10)
    assert tuple(a.final_r_min) == (9, 9) and tuple(a.final_r_max) == (18, 18)


class _DilatedUpConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(3, 4, 3, stride=2, padding=1)  # 16 -> 8
        # (8 - 1)*2 - 2*2 + 2*(3 - 1) + 1 + 1 = 16
        self.up = nn.ConvTranspose2d(4, 4, 3, stride=2, padding=2, dilation=2, output_padding=1)
        self.out = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.out(self.up(self.down(x)))


def test_a_dilated_transposed_conv_reads_its_dilated_kernel():
    # mutant kernels.transposed: k_eff = k (dilation dropped, k04).
    # down 3x3/2: (3, 2).  up: k 3, d 2 -> k_eff 2*(3-1)+1 = 5; s 2: an output unit o reads the
    # inputs i with o = 2i - p + 2t, t = 0, 1, 2: three of them = ceil(5/2).  r 3 + (3-1)*2 = 7, j 1.
    # (without the dilation: ceil(3/2) = 2 units, r 3 + 1*2 = 5.)  out 3x3: 7 + 2 = 9
    a = rflint.analyze(_DilatedUpConv(), (16, 16))
    L = layers_of(a)
    assert tuple(L["up"].r_in_min) == (3, 3) and tuple(L["up"].r_out_min) == (7, 7)
    assert tuple(L["out"].r_in_min) == (7, 7)
    assert tuple(a.final_r_min) == (9, 9) and tuple(a.final_r_max) == (9, 9)


def test_a_linear_upsample_of_a_1d_signal_reads_its_neighbour():
    # mutant kernels._INTERPOLATION_GROW["linear"] = 0 (k06).
    # Conv1d 3/2: (3, 2).  Upsample x2, linear: an output unit interpolates between two
    # neighbouring input units: (3 + 1*2, 2/2) = (5, 1).  Conv1d 3: 5 + 2*1 = 7
    net = nn.Sequential(nn.Conv1d(2, 4, 3, stride=2, padding=1), nn.Upsample(scale_factor=2, mode="linear"),
                        nn.Conv1d(4, 4, 3, padding=1))
    a = rflint.analyze(net, (16,))
    up = next(layer for layer in a.layers if layer.kind == "upsample")
    assert tuple(up.r_in_min) == (3,) and tuple(up.r_out_min) == (5,)
    assert tuple(a.final_r_min) == (7,) and tuple(a.final_r_max) == (7,)


class _SumOfThreeJumps(_ThreeJumps):
    def forward(self, x):
        return self.a(x) + self.b(x) + self.c(x)


def test_the_final_r_max_of_a_merge_is_its_largest_state():
    # mutant rfstate.AxisRF.r_max reading the last state of the hi frontier (t14).  The sum (the
    # last spatial tensor) has the hi frontier {(3, 3), (2, 4)} per axis (see above): its r_max is
    # the largest r, 3, not 2 (rf-semantics.md §5: the final r_max is the last spatial tensor's)
    a = rflint.analyze(_SumOfThreeJumps(), (8, 8))
    assert tuple(a.final_r_max) == (3, 3)


class _WidthIntoChannels(nn.Module):
    """A 3x3 conv on (B, 3, H, W), permuted to (B, W, C, H), a 3x3 conv over (C, H) with the 16
    columns of W as its input channels."""

    def __init__(self):
        super().__init__()
        self.c, self.d = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(16, 4, 3, padding=1)

    def forward(self, x):
        return self.d(self.c(x).permute(0, 3, 1, 2))


def test_an_axis_permuted_into_the_channels_is_mixed_by_the_conv_after_it():
    # mutant rfstate.TensorRF.with_axes keeping the axes in the order given (t11): the permute
    # lists H (now dim -1) before W (now dim -3), and the conv's check for a spatial axis in its
    # channel slot looks at the first axis.  c 3x3: H and W r 3.  d reads dims (-2, -1) = (C, H):
    # H 3 + 2 = 5; W, in d's channel slot, is read whole by every output unit: no axis any more.
    # The last map has H alone
    a = rflint.analyze(_WidthIntoChannels(), (16, 16))
    d = a.layer("d")
    assert d.origins == (None, 0) and tuple(d.r_in_min) == (None, 3) and tuple(d.r_out_min) == (None, 5)
    assert a.final_origins == (0,)
    assert tuple(a.final_r_min) == (5, None) and tuple(a.final_r_max) == (5, None)


class _PoolGivenOneSize(nn.Module):
    def __init__(self):
        super().__init__()
        self.c, self.d = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.d(torch.nn.functional.max_pool2d(self.c(x), [2], [2]))


def test_a_pool_given_one_kernel_size_for_two_axes_pools_both():
    # mutant kernels.per_axis leaving a 1-element list as it is (k29: the pool covered W alone).
    # torch reads kernel_size [2] as (2, 2).  c 3x3: (3, 1); pool 2/2: (3 + 1, 2) = (4, 2) on H and
    # W; d 3x3: 4 + 2*2 = 8 on both
    a = rflint.analyze(_PoolGivenOneSize(), (16, 16))
    pool = next(layer for layer in a.layers if layer.kind == "pool")
    assert tuple(pool.kernel) == (2, 2) and tuple(pool.stride) == (2, 2)
    assert tuple(pool.r_out_min) == (4, 4)
    assert tuple(a.final_r_min) == (8, 8)


def test_an_upsample_has_the_stride_of_its_jump():
    # mutant kernels._interpolation reporting the factor, not its inverse, as the stride (k23).
    # x2 nearest upsampling: j / 2, so stride 1/2 per axis (no downsampling): r stays 3, j 2 -> 1
    from fractions import Fraction

    net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.Upsample(scale_factor=2),
                        nn.Conv2d(4, 4, 3, padding=1))
    a = rflint.analyze(net, (16, 16))
    up = a.layer("1")
    assert tuple(up.stride) == (Fraction(1, 2), Fraction(1, 2))
    assert not up.kop.downsampling
    assert tuple(up.r_out_min) == (3, 3) and tuple(a.final_r_min) == (5, 5)
