"""Rule behaviour (RF002-RF005, the truncation plan) in cases mutation testing found no test
pinned down.  Expected numbers are worked out by hand from
rf-semantics.md (§3 status, §4 tail/cut, §5 stem, dead taps, RF005) in the comments."""

import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

import rflint
from rflint.rules import lint


def findings(a, code):
    return [f for f in lint(a).findings if f.code == code]


# ----------------------------------------------------------------------------------- RF003 / stem
class _Block(nn.Module):
    def __init__(self, stride=1):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(4, 4, 3, stride, 1), nn.Conv2d(4, 4, 3, 1, 1)
        self.down = nn.Conv2d(4, 4, 1, stride) if stride != 1 else None

    def forward(self, x):
        return self.c2(torch.relu(self.c1(x))) + (self.down(x) if self.down is not None else x)


class _AnisotropicStem(nn.Module):
    """stem 3x3 with stride (2, 1), then five residual blocks with strides 1, 2, 1, 2, 1."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, (2, 1), 1)
        self.blocks = nn.Sequential(*[_Block(s) for s in (1, 2, 1, 2, 1)])
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.blocks(self.stem(x)).mean((2, 3)))


def test_a_stem_that_downsamples_one_axis_is_a_removable_stem_candidate():
    # mutant kernels.KernelOp.downsampling: any(s > 1) -> all(s > 1).
    # I = 16x8 (H x W).  (r, j) per axis, H | W; r_min follows the shortcuts (identity / 1x1):
    # stem 3x3 s(2,1): H (3, 2) | W (3, 1).  Block outputs keep r_min 3 (the shortcut); jumps after
    # blocks 1 and 3 (stride 2): H 4, 8 | W 2, 4.  blocks.4.c1 reads 3 | 3 -> 3 + 2*8 = 19 | 3 + 2*4 = 11;
    # blocks.4.c2 reads 19 > 16 and 11 > 8: unproductive -> tail = block 4, border blocks.4.c2.
    # Stem stride taken out: H jumps as W's, blocks.4.c2 reads 11 | 11: 11 <= 16 -> partial, so the
    # segment is productive: no tail left.  The stem's stride (2, 1) downsamples (some stride > 1)
    a = rflint.analyze(_AnisotropicStem(), (16, 8), channels=1)
    assert a.layer("blocks.4.c2").r_in_min == (19, 11) and a.layer("blocks.4.c1").r_in_min == (3, 3)
    assert [f.layer for f in findings(a, "RF002")] == ["blocks.4.c2"]
    (stem,) = findings(a, "RF003")
    assert stem.layer == "stem" and stem.data["removes_tail"] is True
    assert stem.data["changes"] == ["stem: stride 2x1 -> 1"]


def test_the_stem_cost_is_per_sample_whatever_the_batch():
    # mutant program.Probe.macs without `// batch`.
    # MACs = output elements x (in_channels / groups) x kernel taps, per sample.
    # Before (stem stride (2, 1), maps 8x8, 8x8, 4x4, 4x4, 2x2, 2x2): stem 4*64*9 = 2304; block 0:
    # 2 x 256*36 = 18432; block 1: 2 x 64*36 + down 64*4 = 4864; block 2: 4608; block 3: 2 x 16*36
    # + 16*4 = 1216; block 4: 1152; fc 2*4 = 8.  Total 32584.
    # After (stem stride 1: maps 16x8, 16x8, 8x4, 8x4, 4x2, 4x2): stem 4*128*9 = 4608; block 0:
    # 2 x 512*36 = 36864; block 1: 2 x 128*36 + 128*4 = 9728; block 2: 9216; block 3: 2 x 32*36 +
    # 32*4 = 2432; block 4: 2304; fc 8.  Total 65160
    for batch in (1, 3):
        a = rflint.analyze(_AnisotropicStem(), input_shapes=[(batch, 1, 16, 8)])
        assert a.macs == 32584
        (stem,) = findings(a, "RF003")
        assert (stem.data["macs_before"], stem.data["macs_after"]) == (32584, 65160)


class _TailThatTheStemDoesNotCause(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, 2, 1)
        self.block = _Block(1)
        self.big = nn.Conv2d(4, 4, 33, padding=16)
        self.c_a, self.c_b = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.c_b(self.c_a(self.big(self.block(self.stem(x))))).mean((2, 3)))


def test_no_stem_finding_when_removing_the_stem_does_not_shorten_the_tail():
    # mutant stem.stem_experiment `n_after < before` -> `<=`.
    # I = 16.  stem 3x3/2: (3, j2); block: r_min 3 (identity); big 33x33 reads 3 -> 3 + 32*2 = 67;
    # c_a reads 67 > 16, c_b reads 71 > 16: tail [c_a, c_b], 2 parametric layers.  Without the stem's
    # stride: big -> 3 + 32 = 35 > 16, so c_a and c_b are still unproductive: the tail stays 2 layers,
    # which is no improvement, so RF003 says nothing (rf-semantics.md §5: "makes the tail disappear
    # or, failing that, shortens it")
    a = rflint.analyze(_TailThatTheStemDoesNotCause(), 16)
    assert a.layer("c_a").r_in_min == (67, 67)
    (tail,) = findings(a, "RF002")
    assert tail.data["parametric_layers"] == 2 and tail.data["border"] == "c_a"
    assert findings(a, "RF003") == []


# ----------------------------------------------------------------------------------- RF004
def test_dead_taps_of_a_dilated_same_padded_conv():
    # mutant kernels.conv_padding('same') ignoring the dilation.
    # c0 3x3/2 pad 1 on 4x4 -> 2x2 (taps: o*2 - 1 + t for o in {0, 1}: t=0 -> -1, 1; t=1 -> 0, 2;
    # t=2 -> 1, 3: each reads a real pixel, all live).  c1 3x3, dilation 2, padding 'same' = 2 per
    # side: tap t reads o - 2 + 2t, o in {0, 1}: t=0 -> -2, -1 (padding), t=1 -> 0, 1 (real),
    # t=2 -> 2, 3 (padding, n = 2): 1 of 3 per axis, 8/9 of the 4*4*9 = 144 weights: 128 wasted
    net = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.Conv2d(4, 4, 3, padding="same", dilation=2))
    a = rflint.analyze(net, 4)
    (dead,) = findings(a, "RF004")
    assert dead.layer == "1" and dead.data["used_taps"] == [1, 1]
    assert dead.data["wasted_fraction"] == "8/9" and dead.data["wasted_params"] == 128


class _PadThenConv(nn.Module):
    """A TF-style 'same' conv written as an explicit pad of H only, then an unpadded (5, 1) conv."""

    def __init__(self, pad):
        super().__init__()
        self.pad, self.conv = pad, nn.Conv2d(3, 4, (5, 1))

    def forward(self, x):
        return self.conv(self.pad(x))


def test_dead_taps_count_an_explicit_zero_pad_on_the_axis_it_pads():
    # mutants rf004.zero_pad_before (pad amounts read in the wrong axis order) and rf004's
    # `padding + before` dropped.  Input 2x2; F.pad order is (left, right, top, bottom) = (0, 0, 2, 2):
    # H gets 2 zeros per side, W none.  H: real n = 2, padding 0 + 2 = 2, n_out = 6 - 4 = 2:
    # tap t reads o - 2 + t, o in {0, 1}: t=0 -> -2, -1 dead; t=1 -> -1, 0 live; t=2 -> 0, 1;
    # t=3 -> 1, 2 live; t=4 -> 2, 3 dead: 3 of 5.  W: 1 of 1.  Wasted 2/5 of 4*3*5 = 60: 24
    for pad in (nn.ZeroPad2d((0, 0, 2, 2)), nn.ConstantPad2d((0, 0, 2, 2), 0.0)):
        a = rflint.analyze(_PadThenConv(pad), 2)
        (dead,) = findings(a, "RF004")
        assert dead.data["used_taps"] == [3, 1] and dead.data["input_size"] == [2, 2]
        assert dead.data["wasted_fraction"] == "2/5" and dead.data["wasted_params"] == 24


def test_a_pad_with_a_nonzero_constant_is_real_input_to_the_conv():
    # mutant rf004.zero_pad_before accepting any constant.  ConstantPad2d(..., 1.0) feeds ones,
    # not zeros: for the conv they are input (6x2, padding 0, n_out 2): tap t reads o + t < 6 for
    # o in {0, 1}: every tap is live, so no RF004
    a = rflint.analyze(_PadThenConv(nn.ConstantPad2d((0, 0, 2, 2), 1.0)), 2)
    assert findings(a, "RF004") == []


class _SharedOnTwoSizes(nn.Module):
    def __init__(self):
        super().__init__()
        self.c0, self.down = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 1, stride=8)
        self.shared = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        h = self.c0(x)
        small = self.shared(self.down(h))  # first call: on a 1x1 map
        big = self.shared(h)  # second call: on the 8x8 map
        return self.fc(small.mean((2, 3)) + big.mean((2, 3)))


def test_a_module_called_on_two_map_sizes_loses_only_taps_no_call_uses():
    # mutant rf004._finding: the first call's live taps only.
    # First call on 1x1 (pad 1): only the centre tap reads a pixel.  Second call on 8x8: every tap
    # reads real pixels for some output.  The weights are shared, so the union is all 9: no RF004
    a = rflint.analyze(_SharedOnTwoSizes(), 8)
    assert findings(a, "RF004") == []


# ----------------------------------------------------------------------------------- RF005
def test_rf005_is_silent_when_the_largest_rf_equals_the_input():
    # mutant rf005 `r < size` -> `r <= size`.  Two 3x3 convs: r_max 3, then 5.  At I = 5 the last map's
    # units see exactly the whole input (5 is not < 5): no RF005.  At I = 6 they see 5 < 6: RF005
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1))
    a = rflint.analyze(net, 5)
    assert tuple(a.final_r_max) == (5, 5) and findings(a, "RF005") == []
    a = rflint.analyze(net, 6)
    assert [f.data["final_r_max"] for f in findings(a, "RF005")] == [[5, 5]]


# ----------------------------------------------------------------------------------- RF002 plan
@rflint.layer(kernel=3)
class _DeclaredBlock(nn.Module):
    """A declared layer with a child conv (4*4*9 + 4 = 148 params), called whole."""

    def __init__(self):
        super().__init__()
        self.inner = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.inner(x)


class _DeclaredBeforeTheCut(nn.Module):
    def __init__(self):
        super().__init__()
        self.c0 = nn.Conv2d(3, 4, 3, padding=1)  # 3*4*9 + 4 = 112
        self.blk = _DeclaredBlock()  # 148
        self.c1, self.c2 = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)  # 148 each
        self.fc = nn.Linear(4, 10)  # 50

    def forward(self, x):
        return self.fc(self.c2(self.c1(self.blk(self.c0(x)))).mean((2, 3)))


def test_the_truncation_plan_counts_the_children_of_a_module_called_whole():
    # mutant truncation._params_of: a module's own parameters only.
    # I = 6: c0 r 3, blk (kernel 3) reads 3 -> 5, c1 reads 5 <= 6 -> 7, c2 reads 7 > 6: tail = [c2],
    # cut after c1.  Kept: c0 112 + blk 148 + c1 148 = 408, plus the new Linear(4, 10): 50 -> 458.
    # Before: 112 + 148 + 148 + 148 + 50 = 606
    a = rflint.analyze(_DeclaredBeforeTheCut(), 6)
    assert a.params == 606
    (tail,) = findings(a, "RF002")
    plan = tail.data["truncation"]
    assert tail.data["border"] == "c2" and plan["cut"] == "c1"
    assert (plan["params_before"], plan["params_after"]) == (606, 458)
    truncated = rflint.truncate(_DeclaredBeforeTheCut(), 6)
    assert sum(p.numel() for p in truncated.parameters()) == 458


class _FocusStem(nn.Module):
    """A space-to-depth stem (PixelUnshuffle(2)), a 3x3/2 conv, residual blocks with strides 2, 1, 1."""

    def __init__(self):
        super().__init__()
        self.s2d, self.stem = nn.PixelUnshuffle(2), nn.Conv2d(12, 4, 3, 2, 1)
        self.blocks = nn.Sequential(*[_Block(s) for s in (2, 1, 1)])
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.blocks(self.stem(self.s2d(x))).mean((2, 3)))


def test_a_stem_layer_that_cannot_be_changed_does_not_block_the_ones_after_it():
    # mutant stem.stem_experiment without `layer.kind in ("conv", "pool")` (the unshuffle becomes the
    # first candidate; every prefix then holds it and fails).  I = 16:
    # s2d: (1 + 1, j2); stem 3x3/2: 2 + 2*2 = 6, j4; block 0 (s2): c1 reads 6 -> 6 + 8 = 14, j8, c2
    # reads 14 <= 16; r_min after it 6 (the 1x1/2 shortcut), j8.  Blocks 1, 2: c1 reads 6 -> 22, c2
    # reads 22 > 16: unproductive; tail = blocks 1-2 (4 parametric layers).  Stem conv at stride 1:
    # j halves from there: c1 of blocks 1, 2 reads 6 -> 6 + 2*4 = 14 <= 16, so c2 is productive: no tail
    a = rflint.analyze(_FocusStem(), 16, channels=3)
    assert a.layer("blocks.1.c2").r_in_min == (22, 22) and a.layer("blocks.0.c2").r_in_min == (14, 14)
    (tail,) = findings(a, "RF002")
    assert tail.data["border"] == "blocks.1.c2" and tail.data["parametric_layers"] == 4
    (stem,) = findings(a, "RF003")
    assert stem.data["changes"] == ["stem: stride 2x2 -> 1"] and stem.data["removes_tail"] is True


class _FirstBlockDownsamples(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, 2, 1)
        self.blocks = nn.Sequential(*[_Block(s) for s in (2, 1, 2, 1)])
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.blocks(self.stem(x)).mean((2, 3)))


def test_the_stem_ends_before_the_first_block_with_parallel_paths():
    # mutant stem.stem_layers taking the first parallel segment's layers too (rf-semantics.md §5:
    # the stem is the RF layers *before* that segment).  I = 8:
    # stem 3x3/2 (3, j2); block 0 (s2): c1 reads 3, c2 reads 7, r_min after 3 (j4); block 1: c1 reads
    # 3 -> 11, c2 reads 11 > 8; block 2 (s2): c1 reads 3, c2 reads 3 + 2*4 = 11 (j8); block 3: c2
    # reads 3 + 2*8 = 19.  Tail = blocks 1-3: 2 + 3 + 2 = 7 parametric layers.  Stem at stride 1:
    # block 1's c2 reads 3 + 2*2 = 7, block 2's 7, block 3's 3 + 2*4 = 11 > 8: the tail shortens to
    # block 3 (2 layers).  Block 0's strided convs are not stem layers, so they are not proposed
    a = rflint.analyze(_FirstBlockDownsamples(), 8)
    (stem,) = findings(a, "RF003")
    assert stem.data["changes"] == ["stem: stride 2x2 -> 1"] and stem.data["removes_tail"] is False
    assert (stem.data["tail_layers_before"], stem.data["tail_layers_after"]) == (7, 2)


def test_dead_taps_of_an_even_same_padded_conv_after_an_explicit_pad():
    # mutant kernels.conv_padding('same') as (d*(k-1) + 1) // 2.  torch pads an even kernel's 'same'
    # unevenly: k = 2 -> 0 before, 1 after.  Input 1x1, a zero row added on top, then a (2, 1) conv
    # with padding 'same': rows [0, x, 0(same)]: output row 0 reads (pad, x), row 1 reads (x, pad):
    # both taps read the real pixel for some output, so no tap is dead
    a = rflint.analyze(_PadThenConv2(), 1)
    assert findings(a, "RF004") == []


class _PadThenConv2(nn.Module):
    def __init__(self):
        super().__init__()
        self.pad, self.conv = nn.ZeroPad2d((0, 0, 1, 0)), nn.Conv2d(3, 4, (2, 1), padding="same")

    def forward(self, x):
        return self.conv(self.pad(x))


# ------------------------------------------------------------------- bare parameters in a tail
class _LayerNormCF(nn.Module):
    """A channels-first LayerNorm written by hand, as ConvNeXt's: weight and bias are bare parameters."""

    def __init__(self, c):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(c)), nn.Parameter(torch.zeros(c))

    def forward(self, x):
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        return self.weight[:, None, None] * (x - u) / torch.sqrt(s + 1e-6) + self.bias[:, None, None]


class _LayerScaleTail(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 8, 3, 2, 1), nn.Conv2d(8, 8, 3, 2, 1)
        self.c3, self.c4, self.c5 = (nn.Conv2d(8, 8, 3, 1, 1) for _ in range(3))
        self.norm = _LayerNormCF(8)
        self.gamma = nn.Parameter(torch.ones(8, 1, 1))  # a layer scale
        self.temperature = nn.Parameter(torch.ones(1))  # read by the head alone
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.gamma * self.norm(self.c5(self.c4(self.c3(self.c2(self.c1(x))))))
        return self.fc(x.mean((2, 3))) * self.temperature


def test_a_tails_params_count_the_bare_parameters_read_in_it():
    # the tail's params left out the parameters forward() reads as attributes (a layer-scale gamma, a
    # hand-written norm's weight and bias), which its truncation removes: 584 of them, not 608.
    # By hand at 16 px: output RFs c1 3 (jump 2), c2 7 (4), c3 15, c4 23, so c5 reads 23 > 16 and is
    # the border; c4 reads 15 (productive), so the cut is c4's output.  The tail: c5 8*8*9+8 = 584,
    # the norm's 8 + 8 and gamma's 8 = 608.  The head's fc (8*10+10 = 90) and temperature (1) are
    # no part of it.  The model: c1 3*8*9+8 = 224, c2-c5 4*584 = 2336, 16, 8, 90, 1 = 2675.
    a = rflint.analyze(_LayerScaleTail(), input_size=16)
    assert a.params == 2675
    (rf002,) = findings(a, "RF002")
    assert rf002.data["cut"] == "c4" and rf002.data["border"] == "c5"
    assert rf002.data["params"] == 608
    # truncating after c4 removes the same 608 and the head (90 + 1), and adds a new head (8*10+10)
    assert rf002.data["truncation"]["params_after"] == 2675 - 608 - 91 + 90
    # every parameter is counted at one node, but the head's temperature, read after the pooling
    assert sum(a.node_params.values()) == 2675 - 1


# ------------------------------------------------------------------------------------------------
# Mutation testing, second round (2026-12-05): findings whose numbers, axes or places no test pinned
# down.  Each test names the mutant it kills; the numbers are worked out by hand in its comments.

# ----------------------------------------------------------------------------------- RF001
class _ResidualThenConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.c0 = nn.Conv2d(3, 4, 3, padding=1)
        self.c1 = nn.Conv2d(4, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        h = self.c0(x)
        return self.c2(self.c1(h) + h)


def test_rf001_reports_the_smallest_input_rf_and_the_layers_own_costs():
    # mutants rf001: r_in_max in the message / in r_in_min, params and macs swapped.
    # I = 2.  c0 3x3 reads 1 -> (3, j1).  c1 reads 3 > 2: unproductive, -> 5.  The sum with h:
    # states {3, 5}: r_min 3, r_max 5.  c2 reads r_min 3 > 2 (r_max 5): unproductive.
    # c2's costs: params 4*4*9 + 4 = 148; MACs = output elements (4 ch x 2x2, padding 1) x 4 in x 9
    # taps = 16 * 36 = 576.  The message names the *smallest* RF reaching the input: 3x3, not 5x5
    a = rflint.analyze(_ResidualThenConv(), 2)
    by_layer = {f.layer: f for f in findings(a, "RF001")}
    assert sorted(by_layer) == ["c1", "c2"]
    c2 = by_layer["c2"]
    assert c2.data["r_in_min"] == [3, 3] and c2.data["r_in_max"] == [5, 5]
    assert (c2.data["params"], c2.data["macs"]) == (148, 576)
    assert "the smallest receptive field reaching its input is 3x3 px" in c2.message


# ----------------------------------------------------------------------------------- RF002
def test_rf002_lists_every_tail_layer_and_the_tails_share_of_the_macs():
    # mutants rf002: `layers` with the parametric layers only; macs_pct from the params.
    # I = 4, 4x4 maps (padding 1).  "0" 3x3 reads 1 -> 3; "1" reads 3 <= 4 -> 5; "2" max pool 2x2/2
    # reads 5 > 4: unproductive -> (6, j2), map 2x2; "3" 3x3 reads 6 > 4: unproductive.  Plain
    # chain: one segment per layer; "2" and "3" are unproductive expanding segments, "1" is
    # productive: tail = ["2", "3"] (the pool too: it is an RF layer), cut after "1", border "3"
    # (the first unproductive *parametric* layer), 1 parametric layer.
    # Params: "0" 3*4*9 + 4 = 112, "1" 148, "3" 148: 408; tail 148 -> 36.3 %.
    # MACs (pools count 0): "0" 64 outputs (4 x 4x4) x 3 x 9 = 1728, "1" 64 x 4 x 9 = 2304,
    # "3" 16 outputs (4 x 2x2) x 4 x 9 = 576: 4608; tail 576 -> 12.5 %
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1), nn.MaxPool2d(2),
                        nn.Conv2d(4, 4, 3, padding=1))
    a = rflint.analyze(net, 4)
    (tail,) = findings(a, "RF002")
    assert tail.data["border"] == "3" and tail.data["cut"] == "1"
    assert tail.data["layers"] == ["2", "3"] and tail.data["parametric_layers"] == 1
    assert (a.params, tail.data["params"], tail.data["params_pct"]) == (408, 148, 36.3)
    assert (a.macs, tail.data["macs"], tail.data["macs_pct"]) == (4608, 576, 12.5)


class _SharedLoopThenConv(nn.Module):
    """A stem conv, one stride-2 block called six times (shared weights), a last conv of its own."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, stride=2), nn.ReLU())
        self.last = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        x = self.stem(x)
        for _ in range(6):
            x = self.block(x)
        return self.head(self.last(x).mean((2, 3)))


def test_a_tail_with_shared_calls_and_weights_of_its_own_counts_them():
    # mutant rf002: `shared = not tail.params and any('@' ...)` without `not tail.params`.
    # I = 16.  stem 3x3: (3, j1); block calls (3x3/2) read 3 -> 5 (j2), 5 -> 9 (j4), 9 -> 17 (j8),
    # then 17 > 16: calls 4-6 and `last` are unproductive: tail = block.0@4, @5, @6, last (4
    # parametric layers).  The calls reuse the block's weights (counted at its first call), but
    # `last` has its own: 8*8*9 + 8 = 584 params of 224 (stem) + 584 (block) + 584 (last) + 90 (head)
    # = 1482: 39.4 %.  So the message says "584 params", not "no params of their own"
    a = rflint.analyze(_SharedLoopThenConv(), 16)
    (tail,) = findings(a, "RF002")
    assert tail.layer == "block.0@4" and tail.data["parametric_layers"] == 4
    assert (a.params, tail.data["params"], tail.data["params_pct"]) == (1482, 584, 39.4)
    assert "the tail holds 4 parametric RF layers, 584 params (39.4%)" in tail.message
    assert "no params of their own" not in tail.message


class _ConvPoolStem(nn.Module):
    """stem: 3x3/2 conv, 2x2 max pool; residual blocks with strides 1, 2, 1; mean; linear."""

    def __init__(self):
        super().__init__()
        self.conv, self.pool = nn.Conv2d(3, 4, 3, 2, 1), nn.MaxPool2d(2)
        self.blocks = nn.Sequential(*[_Block(s) for s in (1, 2, 1)])
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.blocks(self.pool(self.conv(x))).mean((2, 3)))


def test_a_two_layer_stem_is_reported_at_its_first_layer_with_the_cost_against_the_model_before():
    # mutants rf003: the finding at p.layers[-1]; macs_increase_pct against macs_after.
    # I = 8.  As built: conv (3, j2), pool 2x2/2 reads 3 -> (5, j4).  block 0: c1 reads 5 -> 13,
    # c2 reads 13 > 8: unproductive; r_min after a block stays 5 (identity / 1x1 shortcut), jumps 4,
    # 8, 8.  block 1: c2 reads 13; block 2: c2 reads 5 + 2*8 = 21: tail = blocks 0-2, 2 + 3 + 2 = 7
    # parametric layers.  Conv at stride 1 only: conv (3, j1), pool (4, j2); block 0's c2 reads
    # 4 + 4 = 8 <= 8, block 1's 8, block 2's 4 + 2*4 = 12 > 8: tail = block 2 (2 layers).  Conv at
    # stride 1 and the pool (a pure downsampler) removed: block 0's c2 reads 5, block 1's 5, block 2's
    # 3 + 2*2 = 7 <= 8: no tail.  Shortest prefix removing the tail: [conv, pool]; the finding is
    # at the first of them, conv.
    # MACs (output elements x in_channels x taps): as built, maps 4x4 (conv), 2x2 (pool, blocks 0),
    # 1x1 (blocks 1, 2): conv 64 x 27 = 1728; block 0: 2 x 16 x 36 = 1152; block 1: 2 x 4 x 36 + down
    # 4 x 4 = 304; block 2: 288; fc 8: 3480.  After: maps 8x8 (conv, block 0), 4x4 (blocks 1, 2):
    # conv 256 x 27 = 6912; block 0: 2 x 256 x 36 = 18432; block 1: 2 x 64 x 36 + 64 x 4 = 4864;
    # block 2: 4608; fc 8: 34824.  Increase 31344 = 900.7 % of 3480 (not 90.0 % of 34824)
    a = rflint.analyze(_ConvPoolStem(), 8)
    (tail,) = findings(a, "RF002")
    assert tail.data["parametric_layers"] == 7
    (stem,) = findings(a, "RF003")
    assert stem.layer == "conv" and stem.data["layers"] == ["conv", "pool"]
    assert stem.data["removes_tail"] is True and stem.data["tail_layers_before"] == 7
    assert (stem.data["macs_before"], stem.data["macs_after"]) == (3480, 34824)
    assert stem.data["macs_increase"] == 31344 and stem.data["macs_increase_pct"] == 900.7
    assert "(+900.7%)" in stem.message


def test_a_conv_that_pads_with_copies_of_its_input_has_no_dead_taps():
    # mutant rf004 without the `not layer.kop.zero_padding` skip.  I = 2.
    # "0": 3x3/2, zero padding 1, 2x2 -> 1x1: tap t reads t - 1: t=0 padding, t=1, 2 real: 2 of 3
    # per axis, 4 of 9 taps used: 5/9 of its 3*4*9 = 108 weights, 60, only multiply zeros.
    # "1": 3x3, padding 1 in 'replicate' mode on the 1x1 map: its padded taps read copies of the
    # real pixel, never zeros: no dead taps (with zero padding it would be 8/9)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.Conv2d(4, 4, 3, padding=1, padding_mode="replicate"))
    a = rflint.analyze(net, 2)
    (dead,) = findings(a, "RF004")
    assert dead.layer == "0" and dead.data["used_taps"] == [2, 2]
    assert dead.data["wasted_fraction"] == "5/9" and dead.data["wasted_params"] == 60


def _old_weight_norm(conv):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return nn.utils.weight_norm(conv)


@pytest.mark.parametrize("norm", [weight_norm, _old_weight_norm], ids=["parametrizations", "old"])
def test_dead_taps_of_a_weight_normed_grouped_conv_count_its_kernel(norm):
    # mutant rf004._weight_count: a conv without a `weight` parameter counted without `// groups`.
    # I = 2: "0" 3x3/2 pad 1 -> 1x1.  "1" 3x3 pad 1, 2 groups, on the 1x1 map: only the centre tap
    # reads the pixel: 8/9 wasted.  Its kernel: out 4 x in 4/2 x 9 = 72 weights -> 72 * 8/9 = 64
    # wasted params (not 4*4*9 = 144 -> 128)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), norm(nn.Conv2d(4, 4, 3, padding=1, groups=2)))
    a = rflint.analyze(net, 2)
    dead = {f.layer: f for f in findings(a, "RF004")}
    assert dead["1"].data["used_taps"] == [1, 1] and dead["1"].data["wasted_fraction"] == "8/9"
    assert dead["1"].data["wasted_params"] == 64


# ----------------------------------------------------------------------------------- RF006
def test_rf006_names_only_the_axes_whose_input_rf_exceeds_the_input():
    # mutant rf006: `r > ctx.size[o]` -> `>=` when listing the axes.
    # Four 3x3 convs (padding 1) read r_min 1, 3, 5, 7.  I = 4x5 (H x W): "2" reads 5 > 4 on H but
    # 5 = 5 on W (strict >: within): partial, unproductive along H only.  "3" reads 7 > 4 and 7 > 5:
    # unproductive (RF001, not RF006)
    net = nn.Sequential(*[nn.Conv2d(3 if i == 0 else 4, 4, 3, padding=1) for i in range(4)])
    a = rflint.analyze(net, (4, 5))
    (partial,) = findings(a, "RF006")
    assert partial.layer == "2" and partial.data["axes"] == ["H"] and partial.data["r_in_min"] == [5, 5]
    assert "unproductive along H only" in partial.message
    assert [f.layer for f in findings(a, "RF001")] == ["3"]


# ----------------------------------------------------------------------------------- RF005
class _TokensWithHandWrittenAttention(nn.Module):
    """4x4/4 patch embedding, tokens (B, N, C), one attention written with matmuls, mean, linear."""

    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(3, 8, 4, stride=4)
        self.q, self.k, self.v = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 8)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        t = self.patch(x).flatten(2).transpose(1, 2)  # (B, 16, 8): the positions are tokens now
        w = torch.softmax(self.q(t) @ self.k(t).transpose(1, 2), dim=-1)
        return self.fc((w @ self.v(t)).mean(1))


def test_attention_between_two_token_tensors_exempts_the_last_map_from_rf005():
    # mutant rf005._attention_after: `sum(... if r.axes) != 1` -> `>= 2`.
    # I = 16: the patch conv 4x4/4 gives r 4 < 16 (final r_max 4).  Its tokens have no spatial axes
    # left (flattened); q @ k^T multiplies two such activations: attention, which joins every token
    # (rf-semantics.md §2: attention-style matmul across positions), so RF005 does not apply.
    # (A product of a map with weights pooled from it, one spatial operand, is a gate: not exempt)
    a = rflint.analyze(_TokensWithHandWrittenAttention(), 16)
    assert tuple(a.final_r_max) == (4, 4)
    assert findings(a, "RF005") == []


class _SqueezeTheOneRow(nn.Module):
    def __init__(self):
        super().__init__()
        self.c2, self.c1, self.fc = nn.Conv2d(3, 4, 3, padding=1), nn.Conv1d(4, 4, 3, padding=1), nn.Linear(4, 2)

    def forward(self, x):  # (B, 3, 1, 16): one row; squeezed, W goes on alone
        return self.fc(self.c1(self.c2(x).squeeze(2)).mean(2))


def test_an_axis_squeezed_from_a_single_row_is_not_mixed_away():
    # mutant rf005._mixed_away: `shape[axis.dim] > 1` -> `>= 1`.
    # I = 1x16.  c2 3x3: W r 3; the map is 1 row high, squeeze(2) drops H (one row: nothing mixed,
    # rf-semantics.md: "squeezed from a single pixel ... sees no more than before"); c1 3-tap: W r 5.
    # The last map's W r_max 5 < 16 and H is not covered by any mixing: RF005, "5 px along W"
    a = rflint.analyze(_SqueezeTheOneRow(), (1, 16))
    (rf005,) = findings(a, "RF005")
    assert rf005.data["final_r_max"] == [None, 5]
    assert "5 px along W" in rf005.message


def test_rf006_is_about_parametric_layers_only():
    # mutant rf006 without `not layer.parametric`.  I = 4x8.  "0" reads 1 -> 3, "1" reads 3 -> 5,
    # "2" max pool 2x2/2 reads 5: H 5 > 4, W 5 <= 8: partial, but it has no weights: no RF006
    # (as RF001 skips unproductive pools); -> (6, j2).  "3" 3x3 reads 6: H 6 > 4, W 6 <= 8: partial
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1), nn.MaxPool2d(2),
                        nn.Conv2d(4, 4, 3, padding=1))
    a = rflint.analyze(net, (4, 8))
    assert a.layer("2").r_in_min == (5, 5) and a.layer("3").r_in_min == (6, 6)
    assert [(f.layer, f.data["axes"]) for f in findings(a, "RF006")] == [("3", ["H"])]


def test_rf006_reports_the_smallest_input_rf():
    # mutant rf006: r_in_min=nums(layer.r_in_max).  I = 2x8.  c0 reads 1 -> 3; c1 reads 3: H 3 > 2,
    # W 3 <= 8: partial, -> 5; the sum with h: r_min 3, r_max 5.  c2 reads r_min 3 (r_max 5): H 3 > 2,
    # W 3 <= 8: partial.  Its finding gives the input r_min, 3x3
    a = rflint.analyze(_ResidualThenConv(), (2, 8))
    by_layer = {f.layer: f for f in findings(a, "RF006")}
    assert sorted(by_layer) == ["c1", "c2"]
    assert tuple(a.layer("c2").r_in_max) == (5, 5)
    assert by_layer["c2"].data["r_in_min"] == [3, 3] and by_layer["c2"].data["axes"] == ["H"]
    assert "its input RF 3x3 px exceeds the 2x8 px input there" in by_layer["c2"].message


class _FourierOfOnePixel(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 4, 3, stride=4), nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(torch.fft.fft2(self.conv(x)).real.flatten(1))


def test_a_fourier_transform_of_a_one_pixel_map_mixes_no_positions():
    # mutant rf005._attention_after.lost_positions: `d > 1` -> `d >= 1`.
    # I = 4: conv 3x3/4 (no padding) -> a 1x1 map, r 3 < 4.  fft2 over a 1x1 map leaves the one
    # value (like a global pool: nothing is mixed across positions), so the last map's units still
    # see 3 of the 4 pixels: RF005
    a = rflint.analyze(_FourierOfOnePixel(), 4)
    (rf005,) = findings(a, "RF005")
    assert rf005.layer == "conv" and rf005.data["final_r_max"] == [3, 3]


def test_rf005_on_a_signal_speaks_of_patterns():
    # two 3-tap convs read 1 and 3, and make 5 samples of a 100-sample input: RF005, in a signal's
    # words (it said "objects larger than that", which a waveform has none of)
    a = rflint.analyze(nn.Sequential(nn.Conv1d(1, 4, 3, padding=1), nn.Conv1d(4, 4, 3, padding=1)), 100)
    (rf005,) = findings(a, "RF005")
    assert rf005.message.endswith("its largest receptive field is 5 samples for a 100-sample input; patterns "
                                  "larger than that are only ever seen in pieces")


class _UpsamplingResidualNet(nn.Module):
    """An image-to-image net: 3x3/2 stem, two residual blocks, a 2x nearest upsample back to the input size."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, 2, 1)
        self.blocks = nn.Sequential(_Block(), _Block())
        self.up = nn.Upsample(scale_factor=2)

    def forward(self, x):
        return self.up(self.blocks(self.stem(x)))


def test_a_stem_fix_that_changes_the_output_map_says_so():
    # without its stem's stride an image-to-image model returns a map twice the size: the finding
    # named only the MACs.  I = 6: stem (3, j 2), each block's c1 reads 3 -> 7 and c2 reads 7 > 6
    # (unproductive; the identity keeps r_min 3): the blocks and the (neutral) upsample are the tail.
    # Stem at stride 1: (3, j 1), c1 -> 5, c2 reads 5 <= 6: no tail.  Output: 6 -> 3 -> 6 as built,
    # 6 -> 6 -> 12 without the stride
    (stem,) = findings(rflint.analyze(_UpsamplingResidualNet(), 6), "RF003")
    assert stem.layer == "stem" and stem.data["removes_tail"] is True
    assert (stem.data["output_before"], stem.data["output_after"]) == ([6, 6], [12, 12])
    assert stem.message.endswith("; it also changes the output map from 6x6 to 12x12")
    # a classifier's logits are no map: nothing to say (ResNet18 at 32 px, its stem's finding)
    (resnet,) = findings(rflint.analyze("zoo:resnet18", 32), "RF003")
    assert resnet.data["output_before"] is None and "output map" not in resnet.message


# Mutation testing, third round (2026-12-05): bare parameters counted where their first map is made; each test names the mutant it kills.

class _OneScaleTwice(nn.Module):
    """One layer-scale gamma (4) multiplied into c1's map and again into c3's."""

    def __init__(self):
        super().__init__()
        self.c0 = nn.Conv2d(3, 4, 3, padding=1)
        self.c1, self.c2, self.c3 = (nn.Conv2d(4, 4, 3, padding=1) for _ in range(3))
        self.gamma = nn.Parameter(torch.ones(4))
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        x = self.c2(self.gamma[:, None, None] * self.c1(self.c0(x)))
        return self.fc((self.gamma[:, None, None] * self.c3(x)).mean((2, 3)))


def test_a_bare_parameter_read_twice_counts_at_its_first_map():
    # mutant program._bare_params keeping the last map made from the parameter (p03: `<` -> `>`).
    # gamma's first map is gamma * c1(...) (the node "mul"), before the cut: the tail [c3] holds
    # c3's 148 alone, not 148 + 4.  The model: 112 + 3 * 148 + 4 + 50 = 610, each counted once
    a = rflint.analyze(_OneScaleTwice(), 6)
    assert a.params == 610 and sum(a.node_params.values()) == 610
    assert a.node_params["mul"] == 4
    (rf002,) = findings(a, "RF002")
    assert rf002.data["cut"] == "c2" and rf002.data["border"] == "c3"
    assert rf002.data["params"] == 148


class _BiasReadAgain(nn.Module):
    """c3's map scaled by c3's own bias, read as an attribute: a called module's parameter."""

    def __init__(self):
        super().__init__()
        self.c0 = nn.Conv2d(3, 4, 3, padding=1)
        self.c1, self.c2, self.c3 = (nn.Conv2d(4, 4, 3, padding=1) for _ in range(3))
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        x = self.c2(self.c1(self.c0(x)))
        return self.fc((self.c3(x) * self.c3.bias[:, None, None]).mean((2, 3)))


def test_a_called_modules_parameter_read_as_an_attribute_is_not_counted_again():
    # mutant program._ledger keeping bare parameters that a called module owns (p07).  c3.bias is
    # counted with c3 (148); read again as self.c3.bias it is no new parameter: 112 + 3 * 148 + 50
    # = 606 in all and at the nodes, and the tail [c3] holds 148 (not 152)
    a = rflint.analyze(_BiasReadAgain(), 6)
    assert a.params == 606 and sum(a.node_params.values()) == 606
    (rf002,) = findings(a, "RF002")
    assert rf002.data["params"] == 148


@rflint.layer(kernel=3)
class _ScaledConv(nn.Module):
    """A declared RF layer (kernel 3) that takes its scale as an argument."""

    def __init__(self):
        super().__init__()
        self.inner = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x, g):
        return self.inner(x) * g[:, None, None]


class _ScaleIntoALayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.c0, self.blk = nn.Conv2d(3, 4, 3, padding=1), _ScaledConv()
        self.gamma = nn.Parameter(torch.ones(4))

    def forward(self, x):
        return self.blk(self.c0(x), self.gamma)


def test_a_bare_parameter_an_rf_layer_reads_counts_in_that_layers_params():
    # mutant program.run_program adding a bare parameter to the node's count but not to the RF
    # layer made there (p09).  gamma's first map is blk's output: blk holds 148 + 4 = 152
    a = rflint.analyze(_ScaleIntoALayer(), 16)
    assert a.params == 112 + 148 + 4
    assert a.node_params["blk"] == 152
    assert a.layer("blk").params == 152


# Mutation testing, third round (2026-12-05): the truncation plan's parameter count; each test names the mutant it kills.

class _TiedBeforeTheCut(nn.Module):
    def __init__(self):
        super().__init__()
        self.c0 = nn.Conv2d(3, 4, 3, padding=1)
        self.c1, self.c2, self.c3 = (nn.Conv2d(4, 4, 3, padding=1) for _ in range(3))
        self.c2.weight = self.c1.weight  # c2 reuses c1's kernel (144 weights), its own bias (4)
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        return self.fc(self.c3(self.c2(self.c1(self.c0(x)))).mean((2, 3)))


def test_a_weight_two_kept_layers_share_is_kept_once():
    # mutant truncation._params_of counting a parameter once per kept node that holds it (u07).
    # Before: 112 + 148 + 4 (c2's bias; the weight is c1's) + 148 + 50 = 462.
    # Kept: c0 112 + c1 148 + c2's bias 4 = 264; after: 264 + Linear(4, 10) 50 = 314
    a = rflint.analyze(_TiedBeforeTheCut(), 6)
    assert a.params == 462
    (tail,) = findings(a, "RF002")
    plan = tail.data["truncation"]
    assert tail.data["border"] == "c3" and plan["cut"] == "c2"
    assert (plan["params_before"], plan["params_after"]) == (462, 314)
    truncated = rflint.truncate(_TiedBeforeTheCut(), 6)
    assert sum(p.numel() for p in truncated.parameters()) == 314


class _NormalisedInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, 3, 1, 1))  # buffers read in forward(): no params
        self.register_buffer("std", torch.ones(1, 3, 1, 1))
        self.c0 = nn.Conv2d(3, 4, 3, padding=1)
        self.c1, self.c2, self.c3 = (nn.Conv2d(4, 4, 3, padding=1) for _ in range(3))
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        x = (x - self.mean) / self.std
        return self.fc(self.c3(self.c2(self.c1(self.c0(x)))).mean((2, 3)))


def test_buffers_read_before_the_cut_are_no_parameters_of_the_truncated_model():
    # mutant truncation._params_of counting every attribute read (get_attr), buffers too (u08).
    # Before: 112 + 3 * 148 + 50 = 606; kept: 112 + 148 + 148 = 408 (the 3 + 3 buffer values are
    # no parameters); after: 408 + 50 = 458
    a = rflint.analyze(_NormalisedInput(), 6)
    assert a.params == 606
    (tail,) = findings(a, "RF002")
    plan = tail.data["truncation"]
    assert plan["cut"] == "c2"
    assert (plan["params_before"], plan["params_after"]) == (606, 458)
    truncated = rflint.truncate(_NormalisedInput(), 6)
    assert sum(p.numel() for p in truncated.parameters()) == 458
