"""Rule behaviour (RF002-RF005, the truncation plan) in cases mutation testing found no test
pinned down.  Expected numbers are worked out by hand from
rf-semantics.md (§3 status, §4 tail/cut, §5 stem, dead taps, RF005) in the comments."""

import torch
from torch import nn

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
