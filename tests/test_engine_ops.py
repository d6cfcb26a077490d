"""Hand-derived receptive fields for every op row of rf-semantics.md §2.

Each expected number is worked out in the comment next to it from the spec's formulas
(conv/pool: r += (k_eff-1)*j, j *= s; k_eff = d*(k-1)+1), never copied from rflint's output.
"""

import dataclasses
import textwrap
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import rflint
from rflint.rules import lint


def rf(model, size, channels=None):
    a = rflint.analyze(model, size, channels=channels)
    return a, {layer.name: layer for layer in a.layers}


def out_min(layer):
    return tuple(Fraction(v) for v in layer.r_out_min)


def out_max(layer):
    return tuple(Fraction(v) for v in layer.r_out_max)


class Lambda(nn.Module):
    def __init__(self, fn, *mods):
        super().__init__()
        self.fn = fn
        self.mods = nn.ModuleList(mods)

    def forward(self, x):
        return self.fn(self, x)


def test_branch_example_from_the_issue():
    # conv3 -> {3x3 s2, 5x5 s2} -> add -> 3x3 -> 3x3
    # after conv3: (3, j1). 3x3 s2: 3+2=5, j2.  5x5 s2: 3+4=7, j2.  add: {5, 7} at j2.
    # 3x3: 5+2*2=9 .. 7+4=11.  3x3: 13 .. 15.
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 4, 3, padding=1)
            self.a = nn.Conv2d(4, 4, 3, stride=2, padding=1)
            self.b = nn.Conv2d(4, 4, 5, stride=2, padding=2)
            self.c2 = nn.Conv2d(4, 4, 3, padding=1)
            self.c3 = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            x = self.c1(x)
            return self.c3(self.c2(self.a(x) + self.b(x)))

    _, L = rf(Net(), 32)
    assert (out_min(L["c2"]), out_max(L["c2"])) == ((9, 9), (11, 11))
    assert (out_min(L["c3"]), out_max(L["c3"])) == ((13, 13), (15, 15))
    assert L["c3"].r_in_min == (9, 9) and L["c3"].r_in_max == (11, 11)


def test_dilation_and_tuple_kernels_and_strides():
    # c1: k (3,5), d (2,1): k_eff (5,5) -> r (5,5); stride (1,2) -> j (1,2)
    # c2: 3x3: r (5+2*1, 5+2*2) = (7, 9)
    net = nn.Sequential(nn.Conv2d(3, 4, (3, 5), stride=(1, 2), dilation=(2, 1)), nn.Conv2d(4, 4, 3))
    _, L = rf(net, (32, 48))
    assert out_min(L["0"]) == (5, 5)
    assert out_min(L["1"]) == (7, 9)
    assert L["1"].stride == (1, 1) and L["0"].stride == (1, 2) and L["0"].dilation == (2, 1)


def test_conv1d_chain():
    # k80 s4: r 80, j 4; maxpool 4: 80+3*4 = 92, j 16; k3: 92+2*16 = 124
    net = nn.Sequential(nn.Conv1d(1, 4, 80, stride=4), nn.MaxPool1d(4), nn.Conv1d(4, 4, 3))
    a, L = rf(net, 1600)
    assert [out_min(L[n]) for n in ("0", "1", "2")] == [(80,), (92,), (124,)]
    assert a.input_size == (1600,)


def test_conv3d_non_cubic():
    # (1,3,3): (1,3,3) j1; 3x3x3 s2: (3,5,5) j2; 3x3x3: (3+4, 5+4, 5+4) = (7, 9, 9)
    net = nn.Sequential(nn.Conv3d(1, 2, (1, 3, 3)), nn.Conv3d(2, 2, 3, stride=2), nn.Conv3d(2, 2, 3))
    _, L = rf(net, (16, 32, 32))
    assert out_min(L["2"]) == (7, 9, 9)


@pytest.mark.parametrize("k, expected", [
    # conv3 s2 -> r 3, j 2.  ConvTranspose k2 s2: ceil(2/2)-1 = 0 extra -> r 3, j 1; conv3: 3+2 = 5
    (2, 5),
    # ConvTranspose k3 s2: ceil(3/2)-1 = 1 extra unit of j=2 -> r 5, j 1; conv3: 7
    (3, 7),
])
def test_transposed_conv(k, expected):
    net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ConvTranspose2d(4, 4, k, stride=2),
                        nn.Conv2d(4, 4, 3, padding=1))
    _, L = rf(net, 32)
    assert out_min(L["2"]) == (expected, expected)
    assert L["1"].stride == (Fraction(1, 2), Fraction(1, 2))


@pytest.mark.parametrize("mode, expected", [
    # conv3 s2: r 3, j 2.  nearest x2: r 3, j 1 -> conv3: 5.  bilinear: r 3+2 = 5, j 1 -> conv3: 7
    ("nearest", 5), ("bilinear", 7),
])
def test_upsampling_modes(mode, expected):
    net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.Upsample(scale_factor=2, mode=mode),
                        nn.Conv2d(4, 4, 3, padding=1))
    _, L = rf(net, 32)
    assert out_min(L["2"]) == (expected, expected)


def test_interpolation_leaves_an_axis_it_does_not_resize_alone():
    # c1 k3 s(1,2,2): r 3, j (1,2,2); c2 k3: r (5,7,7).  Trilinear x(1,2,2): D is copied (r 5, j 1),
    # H and W interpolate (7 + 2 = 9, j 1); c3: (7,11,11), read by c4.  At 7x16x16 c4 reads D 7,
    # not more than 7: not unproductive along D (it said 8, an RF006)
    class Anisotropic(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = nn.Conv3d(1, 4, 3, stride=(1, 2, 2), padding=1), nn.Conv3d(4, 4, 3, padding=1)
            self.up = nn.Upsample(scale_factor=(1, 2, 2), mode="trilinear")
            self.c3, self.c4 = nn.Conv3d(4, 4, 3, padding=1), nn.Conv3d(4, 4, 3, padding=1)

        def forward(self, x):
            return self.c4(self.c3(self.up(self.c2(self.c1(x)))))

    a, L = rf(Anisotropic(), (7, 16, 16))
    assert out_min(L["up"]) == (5, 9, 9) and tuple(L["c4"].r_in_min) == (7, 11, 11)
    assert not [f for f in lint(a).findings if f.code in ("RF001", "RF006")]
    # a bilinear resize to the size the map has is the identity: r 3 stays 3, conv3 5
    net = Lambda(lambda s, x: s.mods[1](F.interpolate(s.mods[0](x), size=x.shape[-2:], mode="bilinear")),
                 nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1))
    _, L = rf(net, 16)
    assert out_min(L["mods.1"]) == (5, 5)


def test_fractional_jump_from_upsampling():
    # nearest x3 on the input: r 1, j 1/3; conv3: 1 + 2/3 = 5/3
    net = nn.Sequential(nn.Upsample(scale_factor=3, mode="nearest"), nn.Conv2d(3, 4, 3))
    _, L = rf(net, 8)
    assert out_min(L["1"]) == (Fraction(5, 3), Fraction(5, 3))


def test_adaptive_pool_window_and_global():
    # n=5 -> o=3: windows [0,2), [1,4), [3,5) -> max 3, stride 5/3. r 3; conv3: 3 + 2*5/3 = 19/3
    net = nn.Sequential(nn.AdaptiveAvgPool2d(3), nn.Conv2d(3, 4, 3, padding=1))
    _, L = rf(net, 5, channels=3)
    assert L["0"].kernel == (3, 3) and L["0"].stride == (Fraction(5, 3),) * 2
    assert out_min(L["1"]) == (Fraction(19, 3),) * 2
    # n=1 -> o=7: window 1, stride 1/7 (VGG's adaptive pool on a 1x1 map)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(7))
    _, L = rf(net, 3)
    assert L["1"].kernel == (1, 1) and L["1"].stride == (Fraction(1, 7),) * 2
    # o=1: global, so the 1x1 conv after it is head
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Conv2d(4, 2, 1))
    a, L = rf(net, 8)
    assert "0" in L and "1" not in L and L["2"].head


def test_se_gate_is_modulation():
    # x = conv3(input): r 3.  gate = sigmoid(conv1x1(avgpool(x))) is global: left out of x * gate.
    # conv3 after the gate: 3 + 2 = 5 for both r_min and r_max (the gate does not make it global).
    class SE(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 8, 3, padding=1)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Conv2d(8, 8, 1)
            self.c2 = nn.Conv2d(8, 8, 3, padding=1)

        def forward(self, x):
            x = self.c1(x)
            return self.c2(x * torch.sigmoid(self.fc(self.pool(x))))

    a, L = rf(SE(), 16)
    assert L["fc"].head
    assert out_min(L["c2"]) == (5, 5) and out_max(L["c2"]) == (5, 5)


def test_spatial_gate_is_a_merge():
    # CBAM-style spatial gate: mean over channels -> conv7 -> sigmoid; x * gate is a union:
    # x: r 3.  gate: 3 + 6 = 9.  union {3, 9}; conv3 after: r_min 5, r_max 11
    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 8, 3, padding=1)
            self.g = nn.Conv2d(1, 1, 7, padding=3)
            self.c2 = nn.Conv2d(8, 8, 3, padding=1)

        def forward(self, x):
            x = self.c1(x)
            gate = torch.sigmoid(self.g(x.mean(dim=1, keepdim=True)))
            return self.c2(x * gate)

    _, L = rf(Gate(), 32)
    assert out_min(L["c2"]) == (5, 5) and out_max(L["c2"]) == (11, 11)


def test_functional_forms():
    # F.conv2d 3x3 (weight parameter): 3; F.max_pool2d 2: 3+1 = 4, j 2;
    # F.interpolate x2 bilinear: 4 + 2 = 6, j 1; cat with itself: unchanged; conv3: 8; mean(2,3): global
    class Fn(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(4, 3, 3, 3))
            self.c = nn.Conv2d(8, 4, 3, padding=1)
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            x = F.conv2d(x, self.w, padding=1)
            x = F.max_pool2d(x, 2)
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = self.c(torch.cat([x, x], dim=1))
            return self.fc(x.mean((2, 3)))

    a, L = rf(Fn(), 16)
    by_op = {layer.op: layer for layer in a.layers}
    assert out_min(by_op["F.conv2d"]) == (3, 3) and by_op["F.conv2d"].parametric
    assert out_min(by_op["F.max_pool2d"]) == (4, 4)
    assert out_min(L["c"]) == (8, 8)
    assert a.params == 4 * 3 * 9 + (4 * 8 * 9 + 4) + (4 * 2 + 2)


def test_strided_slice_and_pixel_unshuffle():
    # x[..., ::2, ::2]: r 1, j 2; conv3: 1 + 2*2 = 5
    net = Lambda(lambda s, x: s.mods[0](x[:, :, ::2, ::2]), nn.Conv2d(3, 4, 3))
    _, L = rf(net, 16)
    assert out_min(L["mods.0"]) == (5, 5)
    # PixelUnshuffle(2): r 1 + 1 = 2, j 2; conv3: 2 + 4 = 6
    net = nn.Sequential(nn.PixelUnshuffle(2), nn.Conv2d(12, 4, 3))
    _, L = rf(net, 16, channels=3)
    assert out_min(L["1"]) == (6, 6)
    # conv3 (r 3) -> PixelShuffle(2): j 1/2 -> conv3: 3 + 2*(1/2) = 4
    net = nn.Sequential(nn.Conv2d(3, 16, 3), nn.PixelShuffle(2), nn.Conv2d(4, 4, 3))
    _, L = rf(net, 16)
    assert out_min(L["2"]) == (4, 4)


def test_non_square_input_and_axes_survive_permutes():
    # conv3 -> channel-last LayerNorm (permute there and back) -> conv3: 5 on both axes
    class ConvNeXtish(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 8, 3, padding=1)
            self.norm = nn.LayerNorm(8)
            self.c2 = nn.Conv2d(8, 8, 3, padding=1)

        def forward(self, x):
            x = self.c1(x)
            x = self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            return self.c2(x)

    a, L = rf(ConvNeXtish(), (16, 24))
    assert out_min(L["c2"]) == (5, 5)
    assert a.input_size == (16, 24) and a.warnings == []


def test_reducing_one_axis_keeps_the_other():
    # (N,C,F,T): conv 3x3 -> mean over F -> conv1d k3: T axis 3 + 2 = 5 (origin axis 1)
    class Audio(nn.Module):
        def __init__(self):
            super().__init__()
            self.c2d = nn.Conv2d(1, 4, 3, padding=1)
            self.c1d = nn.Conv1d(4, 4, 3, padding=1)

        def forward(self, x):
            return self.c1d(self.c2d(x).mean(dim=2))

    _, L = rf(Audio(), (16, 40))
    assert out_min(L["c1d"]) == (5,) and L["c1d"].origins == (1,)


def test_unknown_layer_is_inferred_with_a_warning():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.FractionalMaxPool2d(2, output_size=8), nn.Conv2d(4, 4, 3))
    a, L = rf(net, 16)
    assert any("FractionalMaxPool2d" in w for w in a.warnings)
    # inferred: kernel 1, stride 16/8 = 2 -> j 2; conv3: 3 + 2*2 = 7
    assert out_min(L["2"]) == (7, 7)


def test_parametric_depth():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3))
    a, _ = rf(net, 16)
    last = a.rf[a.layer_by_node[a.layers[-1].node].node]
    assert (last.d_min, last.d_max) == (2, 2)  # two convs; the pool has no weights


def test_final_rf_is_the_last_spatial_tensors():
    # two branches concatenated at the end; the 1x1 branch runs last.  r_max of the concat is the
    # 5x5 branch's 3 + 4 = 7 (not the 1x1 branch's 3); r_min over the deepest layer's output too.
    class TwoBranch(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 4, 3, padding=1)
            self.big = nn.Conv2d(4, 4, 5, padding=2)
            self.small = nn.Conv2d(4, 4, 1)
            self.fc = nn.Linear(8, 2)

        def forward(self, x):
            x = self.stem(x)
            y = torch.cat([self.big(x), self.small(x)], 1)
            return self.fc(y.mean((2, 3)))

    a, _ = rf(TwoBranch(), 16)
    assert a.final_layer == "big" and a.final_r_max == (7, 7) and a.final_r_min == (7, 7)


def test_final_r_max_takes_each_axis_from_its_largest_branch():
    # an Inception-E-like end: a (39, 1) and a (1, 19) conv summed.  The sum's states are the union
    # per axis (rf-semantics.md §2), so its r_max is (39, 19), whichever branch is the final layer;
    # at 64x16 the W axis (19 >= 16) sees the whole input, so RF005 must not fire
    class Crossed(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 8, (39, 1), padding=(19, 0))
            self.b = nn.Conv2d(3, 8, (1, 19), padding=(0, 9))

        def forward(self, x):
            return self.a(x) + self.b(x)

    a = rflint.analyze(Crossed(), (64, 16))
    assert a.final_layer == "a" and a.final_r_max == (39, 19) and a.final_r_min == (39, 1)
    assert [f for f in lint(a).findings if f.code == "RF005"] == []


@pytest.mark.parametrize("name", ["vgg16", "resnet18", "densenet121", "unet", "mpnet18", "cbam_resnet18", "audio1d"])
def test_rf_program_alone_gives_the_needs_of_the_full_analysis(name):
    """The clean-size search re-checks candidates with the RF program alone (input_needs); it must
    see exactly what the full analysis's layers say (needs_of)."""
    from rflint.engine.program import input_needs, needs_of
    from rflint.zoo import ZOO

    prepared = rflint.prepare(f"zoo:{name}")
    natural = tuple(ZOO[name].input_size)
    for scale in (1, 2, 3):
        size = tuple(s * scale for s in natural)
        full = ((1, prepared.channels, *size),)
        assert input_needs(prepared, full) == needs_of(prepared.at(size))


def test_layer_axes_reads_each_kernel_axis_by_its_dim():
    """layer_axes against the definition: the kernel covers dims -n..-1; each reads the tensor's
    axis at that dim (r_min = lo[0][0], r_max = hi[0][0], its origin), None where there is none."""
    import itertools
    import random

    from rflint.engine.rfstate import layer_axes
    from rflint.engine.rfstate import AxisRF, TensorRF

    rng = random.Random(7)
    checked = 0
    for n in (1, 2, 3):
        for dims in itertools.chain.from_iterable(itertools.permutations(range(-4, 0), k) for k in range(0, 5)):
            axes = tuple(AxisRF(rng.randrange(3), d, ((rng.randrange(1, 50), 1),), ((rng.randrange(50, 99), 2),))
                         for d in dims)
            tensor = TensorRF(axes, is_global=not axes)
            by_dim = {a.dim: a for a in axes}
            want = tuple(tuple(f(by_dim.get(i - n)) for i in range(n)) for f in (
                lambda a: a.lo[0][0] if a else None, lambda a: a.hi[0][0] if a else None,
                lambda a: a.origin if a else None))
            assert layer_axes(tensor, n) == want, (n, dims)
            checked += 1
    assert layer_axes(None, 2) == ((None, None),) * 3
    assert checked == 3 * sum(len(list(itertools.permutations(range(4), k))) for k in range(5))


class _KernelFromElsewhere(nn.MaxPool2d):
    """A pool whose kernel_size is a property: not an instance attribute the cache could key on."""

    def __init__(self, k):
        self._k = k
        super().__init__(k, stride=1)  # the same stride for every instance: only the kernel differs

    @property
    def kernel_size(self):
        return self._k

    @kernel_size.setter
    def kernel_size(self, value):
        self._k = value


def test_kernels_cached_by_configuration_tell_configurations_apart():
    from rflint.engine.ops.modules import conv_module_kop, pool_module_kop

    zeros, reflect = nn.Conv2d(2, 2, 3, padding=1), nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect")
    assert conv_module_kop(zeros).zero_padding and not conv_module_kop(reflect).zero_padding
    assert conv_module_kop(nn.Conv2d(2, 2, 3, stride=2)).scale == (2, 2)
    assert conv_module_kop(nn.Conv2d(2, 2, 3)).scale == (1, 1)
    dilated = nn.Conv2d(2, 2, 3, dilation=3)
    assert conv_module_kop(dilated).grow == (6, 6)  # k_eff - 1 = 3 * (3 - 1)
    dilated.dilation = (1, 1)  # a what-if edit of the module itself: its kernel follows
    assert conv_module_kop(dilated).grow == (2, 2)
    # an unhashable attribute (a list as kernel_size) is built uncached, the same as its tuple
    assert pool_module_kop(nn.MaxPool2d([3, 3], stride=2)) == pool_module_kop(nn.MaxPool2d((3, 3), stride=2))
    # same class, same instance attributes, different kernels through the property
    assert pool_module_kop(_KernelFromElsewhere(2)).kernel == (2, 2)
    assert pool_module_kop(_KernelFromElsewhere(5)).kernel == (5, 5)


def test_pareto_two_state_fast_path_is_the_general_loop():
    # tuples of one or two states take unrolled paths; a list goes through the sort-and-scan loop.
    # Every pair over a grid with ties in r, in j and in both, ints mixed with Fractions.
    import itertools

    from rflint.engine.rfstate import pareto_max, pareto_min

    values = [1, 2, 3, Fraction(5, 2), Fraction(1, 2), Fraction(3)]
    for a, b in itertools.product(itertools.product(values, repeat=2), repeat=2):
        assert pareto_min((a, b)) == pareto_min([a, b]), (a, b)
        assert pareto_max((a, b)) == pareto_max([a, b]), (a, b)
    # by hand: (3, 1) and (2, 2) trade r against j, so both stay on either frontier, in order
    assert pareto_min(((3, 1), (2, 2))) == ((2, 2), (3, 1))
    assert pareto_max(((3, 1), (2, 2))) == ((3, 1), (2, 2))
    # (2, 1) is below (3, 2) on both: the min frontier keeps only it, the max frontier only (3, 2)
    assert pareto_min(((3, 2), (2, 1))) == ((2, 1),) and pareto_max(((2, 1), (3, 2))) == ((3, 2),)


def test_adaptive_and_interpolation_kernels_are_cached_and_immutable():
    import dataclasses

    from rflint.engine import kernels as K

    # 7 -> 3: bins [0, 3), [2, 5), [4, 7): windows 3, stride 7/3 (torch's start = floor(i*7/3),
    # end = ceil((i+1)*7/3))
    kop = K.adaptive("AdaptiveAvgPool2d", [7, 7], [3, 3])
    assert kop.kernel == (3, 3) and kop.stride == (Fraction(7, 3),) * 2 and kop.grow == (2, 2)
    assert K.adaptive("AdaptiveAvgPool2d", (7, 7), (3, 3)) is kop  # lists and tuples: one entry
    assert K.adaptive("AdaptiveAvgPool2d", (7, 7), (7, 7)).kernel == (1, 1)  # a different entry
    up = K.interpolation("Upsample(bilinear)", "bilinear", [4], [8])
    assert up.scale == (Fraction(1, 2),) and up.grow == (1,)
    assert K.interpolation("Upsample(bilinear)", "bilinear", (4,), (8,)) is up
    assert K.interpolation("Upsample(nearest)", "nearest", (4,), (8,)).grow == (0,)
    assert K.interpolation("Upsample(x)", "no-such-mode", (4,), (8,)) is None
    with pytest.raises(dataclasses.FrozenInstanceError):  # a shared KernelOp cannot be edited
        kop.kernel = (1, 1)


def test_unfold_module_is_the_rf_layer_f_unfold_is():
    # nn.Unfold wraps F.unfold: k 3, d 2, s 2 after a (k3 s2) conv: r_in 3, an RF layer of its own
    class ByModule(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.un = nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.Unfold(kernel_size=3, dilation=2, stride=2)

        def forward(self, x):
            return self.un(self.c1(x))

    a = rflint.analyze(ByModule(), 16)
    (un,) = [layer for layer in a.layers if layer.name == "un"]
    assert (un.kind, un.kernel, un.stride, un.dilation, un.r_in_min) == ("unfold", (3, 3), (2, 2), (2, 2), (3, 3))
    assert a.warnings == []  # was: "unknown layer Unfold ... treated as global"


def test_concatenation_along_a_spatial_axis_is_a_merge():
    # torch.cat([x, x], dim=-1) after a x2 nearest upsample: every output pixel is one operand's, so
    # the RF is the union of theirs (rf-semantics.md §2): here the upsample's (r 1, jump 1/2).  It
    # was None (no RF at all), and at 1 px the report then crashed (KeyError: 'output')
    class Tiled(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(1, 1, 3, padding=1)

        def forward(self, x):
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            return self.conv(torch.cat([x, x], dim=-1))

    a = rflint.analyze(Tiled(), 1)
    (conv,) = a.layers[-1:]
    assert conv.r_in_min == (1,) and conv.r_out_min == (2,)  # 1 + (3 - 1) * 1/2
    assert lint(a) is not None


@pytest.mark.parametrize("make", [
    lambda h: 0,
    lambda h: torch.zeros_like(h),
    lambda h: torch.full_like(h, 0.5),
    lambda h: h.new_zeros(h.shape),
    lambda h: h.new_full(h.shape, 1.0),
])
def test_a_tensor_filled_with_constants_carries_no_rf(make):
    # stem conv3 s2 (r 3, j 2) -> h; out = <constant like h> + b(h) (b: conv3, r 7); tail convs read
    # r 7, 11, 15: the constant took h's RF (r 3), so the tail's r_min came out 3 and hid a layer
    net = Lambda(lambda s, x: s.mods[2](make(h := s.mods[0](x)) + s.mods[1](h)),
                 nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.Conv2d(4, 4, 3, padding=1),
                 nn.Sequential(*(nn.Conv2d(4, 4, 3, padding=1) for _ in range(3))))
    _, L = rf(net, 16)
    assert [L[f"mods.2.{i}"].r_in_min for i in range(3)] == [(7, 7), (11, 11), (15, 15)]


def test_ops_that_mix_every_position_along_their_dims():
    # conv3 (r 3) -> op -> conv3.  An FFT filter (GFNet / FNO) lets every pixel reach every other:
    # global, so the last conv is a head and nothing says its RF is too small (RF005 did)
    def spectral(s, x):
        h = s.mods[0](x)
        return s.mods[1](torch.fft.ifft2(torch.fft.fft2(h) * 0.5).real)

    a, L = rf(Lambda(spectral, nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)), 16)
    assert L["mods.1"].head and not [f for f in lint(a).findings if f.code == "RF005"]
    # a cumulative sum along W mixes W only: H goes on (3 + 2 = 5), W is no longer spatial
    _, L = rf(Lambda(lambda s, x: s.mods[1](torch.cumsum(s.mods[0](x), dim=-1)),
                     nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)), 16)
    assert L["mods.1"].r_out_min == (5, None)
    # sorting the channels moves no pixel: 3 + 2 = 5 on both axes
    _, L = rf(Lambda(lambda s, x: s.mods[1](s.mods[0](x).sort(dim=1).values),
                     nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)), 16)
    assert out_min(L["mods.1"]) == (5, 5)


@pytest.mark.parametrize("mode, out, expected", [
    # conv3 r 3; bilinear sampling reads 2 taps around each grid point, at every factor: 3 + 1 = 4;
    # then conv3: 4 + 2 = 6.  It was global: every layer after an STN was a head nobody checked
    ("bilinear", 16, (4, 6)),
    ("nearest", 16, (3, 5)),  # one tap: 3, then 5
    ("bicubic", 16, (6, 8)),  # four taps: 3 + 3 = 6, then 8
    # an 8x8 grid over the 16x16 map: jump 2, so the conv after it adds 2 * 2: 4 -> 8
    ("bilinear", 8, (4, 8)),
])
def test_grid_sample_reads_a_window_around_each_grid_point(mode, out, expected):
    grid = torch.zeros(1, out, out, 2)
    _, L = rf(Lambda(lambda s, x: s.mods[1](F.grid_sample(s.mods[0](x), grid, mode=mode, align_corners=False)),
                     nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)), 16)
    assert (L["mods.1"].r_in_min, L["mods.1"].r_out_min) == ((expected[0],) * 2, (expected[1],) * 2)


def test_an_stn_grid_is_modulation_not_content():
    # the localisation net's grid comes from the whole image (conv, global pool, Linear -> theta):
    # left out like an SE gate, so the body after the warp grows from the sampled content alone
    class STN(nn.Module):
        def __init__(self):
            super().__init__()
            self.loc = nn.Sequential(nn.Conv2d(3, 4, 7), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 6))
            self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1))

        def forward(self, x):
            theta = self.loc(x).view(-1, 2, 3)
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            return self.body(F.grid_sample(x, grid, align_corners=False))

    _, L = rf(STN(), 16)
    # input r 1, sampled 1 + 1 = 2, body.0 2 + 2 = 4, body.1 6
    assert (L["body.0"].r_in_min, L["body.1"].r_in_min, L["body.1"].r_out_min) == ((2, 2), (4, 4), (6, 6))


def test_space_to_depth_by_view_and_permute():
    # TResNet's space-to-depth: view into 2x2 blocks, permute the offsets to the channels, reshape.
    # Like PixelUnshuffle(2): conv3 r 3 -> 3 + 1 = 4, j 2 -> conv3 4 + 2*2 = 8.  It was global (the
    # view lost both axes), so every later conv was a head and nothing was reported
    def s2d(s, x):
        h = s.mods[0](x)
        b, c, hh, ww = h.shape
        blocks = h.view(b, c, hh // 2, 2, ww // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(b, 4 * c, hh // 2, ww // 2)
        return s.mods[1](blocks)

    a, L = rf(Lambda(s2d, nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(16, 4, 3, padding=1)), (16, 20))
    assert out_min(L["mods.1"]) == (8, 8) and not L["mods.1"].head
    split = next(layer for layer in a.layers if layer.kind == "unshuffle")
    assert split.stride == (2, 2) and out_min(split) == (4, 4)  # its output read by axis, not by dim


def test_reshapes_that_keep_the_spatial_dims():
    # a GroupNorm written by hand splits the channels, (B, C, H, W) -> (B, G, C/G, H, W), and back;
    # unsqueeze / squeeze of unit dims: the axes just move.  conv3 -> ... -> conv3: 5
    def regroup(s, x):
        h = s.mods[0](x)
        b, c, hh, ww = h.shape
        h = h.view(b, 2, c // 2, hh, ww).view(b, c, hh, ww).unsqueeze(2).squeeze(2)
        return s.mods[1](h)

    a, L = rf(Lambda(regroup, nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)), (16, 20))
    assert out_min(L["mods.1"]) == (5, 5) and [layer.kind for layer in a.layers] == ["conv", "conv"]


def test_a_channel_shuffle_on_a_one_pixel_map_keeps_it_spatial():
    # three 3x3/2 convs take 8 px to 1x1 (r 3, 7, 15); a ShuffleNet channel shuffle (view, transpose,
    # view) must leave the 1x1 map's axes alone: c4 reads 15, c5 31.  The size-1 axes were dropped by
    # the reshape rule, so the map went global and c4, c5 were "head"
    def shuffled(s, x):
        h = s.mods[0](x)
        b, c, hh, ww = h.shape
        h = h.view(b, 2, c // 2, hh, ww).transpose(1, 2).reshape(b, c, hh, ww)
        return s.mods[1](h)

    convs = nn.Sequential(*[nn.Conv2d(3 if i == 0 else 8, 8, 3, 2, 1) for i in range(3)])
    _, L = rf(Lambda(shuffled, convs, nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1))), 8)
    assert L["mods.1.0"].r_in_min == (15, 15) and L["mods.1.1"].r_in_min == (31, 31) and not L["mods.1.0"].head


def test_a_spatial_axis_in_the_channel_slot_is_mixed_by_a_conv():
    # (B, C, F, T) -> transpose(1, 2) -> a conv with in_channels = F reads every frequency row at once:
    # F is mixed, T goes on (3 -> 5 -> 7).  F stayed tracked at dim -3 with r 3, and RF005 printed
    # "largest receptive field is -x7 px"
    net = Lambda(lambda s, x: s.mods[2](s.mods[1](s.mods[0](x).transpose(1, 2))),
                 nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(16, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1))
    a, L = rf(net, (16, 64), channels=1)
    assert L["mods.2"].r_in_min == (None, 5) and L["mods.2"].origins == (None, 1)
    assert not [f for f in lint(a).findings if f.code == "RF005"]


class _ResNetClosedByPool(nn.Module):
    """stem 3x3, then blocks (conv3x3 + conv3x3 with an identity or 1x1 shortcut), closed by a
    global pool written four ways, then a classifier; ``after``: a whole-map pool with two 3x3
    convs after it instead."""

    def __init__(self, pool: str):
        super().__init__()
        self.pool = pool
        self.stem = nn.Conv2d(3, 8, 3, 1, 1)
        self.blocks = nn.ModuleList()
        for c_in, c, stride in ((8, 8, 1), (8, 16, 2), (16, 32, 2), (32, 64, 2), (64, 64, 1)):
            self.blocks.append(nn.ModuleDict({
                "c1": nn.Conv2d(c_in, c, 3, stride, 1), "c2": nn.Conv2d(c, c, 3, 1, 1),
                "sc": nn.Conv2d(c_in, c, 1, stride) if stride != 1 or c_in != c else nn.Identity()}))
        self.avg, self.ada = nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1)
        self.after1, self.after2 = nn.Conv2d(64, 64, 3, 1, 1), nn.Conv2d(64, 64, 3, 1, 1)
        self.drop, self.fc = nn.Dropout(0.1), nn.Linear(64, 10)

    def forward(self, x):
        x = self.stem(x)
        for b in self.blocks:
            x = F.relu(b["c2"](F.relu(b["c1"](x))) + b["sc"](x))
        if self.pool == "module":
            x = self.drop(self.avg(x)).view(x.size(0), -1)
        elif self.pool == "functional":
            x = torch.flatten(F.avg_pool2d(x, 2), 1)
        elif self.pool == "whole":
            x = F.max_pool2d(x, x.size()[2:]).flatten(1)
        elif self.pool == "after":
            x = self.ada(self.after2(self.after1(self.avg(x)))).flatten(1)
        elif self.pool == "sigmoid":  # F.avg_pool2d, an activation without a module, x[:, :, 0, 0]
            x = torch.sigmoid(F.avg_pool2d(x, 2))[:, :, 0, 0]
        elif self.pool == "permute":  # a ConvNeXt-style head: channels last, then the Linear
            x = F.avg_pool2d(x, x.shape[2:]).permute(0, 2, 3, 1).flatten(1)
        elif self.pool == "mean":
            x = F.max_pool2d(x, x.shape[2:]).mean((2, 3))
        else:
            x = self.ada(x).flatten(1)
        return self.fc(x)


@pytest.mark.parametrize("pool", ["adaptive", "module", "functional", "whole", "sigmoid", "permute", "mean"])
def test_a_fixed_pool_over_the_whole_map_before_the_classifier_is_global_pooling(pool):
    """At 16 px the last map is 2x2 (16 -> 8 -> 4 -> 2), so AvgPool2d(2), F.avg_pool2d(x, 2) and a
    max pool over x.size()[2:] each read all of it: global pooling, as the adaptive pool to 1 is.
    By hand: the shortcuts keep r_min 3 (the stem) with jump 8 after three stride-2 blocks; the last
    block's c1 reads 3 (productive), c2 reads 3 + 2*8 = 19 > 16: unproductive, and nothing after it
    (a pool counted as an RF layer read r_min 3 and made the last segment productive: no RF002)."""
    a, layers = rf(_ResNetClosedByPool(pool), 16)
    assert [layer.name for layer in a.layers][-2:] == ["blocks.4.c1", "blocks.4.c2"]
    assert layers["blocks.4.c2"].r_in_min == (19, 19)
    assert a.final_layer == "blocks.4.c2"
    found = {(f.code, f.layer) for f in lint(a).findings}
    assert ("RF002", "blocks.4.c2") in found and ("RF001", "blocks.4.c2") in found


def test_a_whole_map_pool_with_layers_after_it_stays_a_pool():
    """The same 2x2 -> 1x1 pool with two 3x3 convs after it: they read the map it made and are
    judged as RF layers.  By hand: the pool reads r_min 3 (jump 8) -> 3 + 1*8 = 11, jump 16; after1
    reads 11 <= 16 (productive) -> 11 + 2*16 = 43; after2 reads 43 > 16: unproductive."""
    a, layers = rf(_ResNetClosedByPool("after"), 16)
    assert layers["avg"].r_out_min == (11, 11)
    assert layers["after1"].r_in_min == (11, 11) and layers["after2"].r_in_min == (43, 43)
    assert ("RF001", "after2") in {(f.code, f.layer) for f in lint(a).findings}


class _DepthToSpace(nn.Module):
    """enc 3x3 (r 3), down 3x3 /2 (r 5, j 2), deep 9x9 (r 5 + 8*2 = 21), a 2x depth-to-space (nn.
    PixelShuffle, or written as view/permute/reshape), cat with enc's map, dec 3x3."""

    def __init__(self, written: bool):
        super().__init__()
        self.written = written
        self.enc, self.down = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 16, 3, stride=2, padding=1)
        self.deep, self.ps, self.dec = nn.Conv2d(16, 16, 9, padding=4), nn.PixelShuffle(2), nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x):
        s = self.enc(x)
        u = self.deep(self.down(s))
        if self.written:
            b, c, h, w = u.shape
            u = u.reshape(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, c // 4, h * 2, w * 2)
        else:
            u = self.ps(u)
        return self.dec(torch.cat([s, u], 1))


@pytest.mark.parametrize("written", [False, True])
def test_depth_to_space_written_as_reshapes_is_a_pixel_shuffle(written):
    # PixelShuffle(2): (21, j 2) -> (21, j 1); dec reads min(3, 21) .. 21 -> r_out 5 .. 23.  Written as
    # reshapes, the merge of H with the channels' 2 made the branch global and the cat dropped it
    # (r_out_max 5, no warning)
    a, layers = rf(_DepthToSpace(written), 64)
    assert out_min(layers["dec"]) == (5, 5) and out_max(layers["dec"]) == (23, 23)


def test_a_spatial_axis_merged_with_all_the_channels_is_gone():
    # (B, C, F, T) -> (B, T, F, C) -> (B, T, F*C), a CRNN's features per frame: F merged with every
    # channel is mixed away (no channels are left to be the depth of a depth-to-space); T stays
    class Frames(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.frame = nn.Conv1d(32, 8, 3, padding=1)

        def forward(self, x):
            f = self.conv(x).permute(0, 3, 2, 1)
            b, t, fr, c = f.shape
            return self.frame(f.reshape(b, t, fr * c).transpose(1, 2))

    a, layers = rf(Frames(), (8, 32))
    # frame convolves T (input axis 1, W): r 3 + 2 = 5; F (axis 0) is gone
    assert layers["frame"].r_in_min == (3,) and out_min(layers["frame"]) == (5,)
    assert layers["frame"].origins == (1,)


@pytest.mark.parametrize("functional", [False, True])
def test_a_map_folded_back_from_columns_is_said_to_be_untracked(functional):
    # conv, unfold, fold, conv, conv, ...: fold's output went on as global without a word, so the convs
    # after it were heads and a tail there gave no finding; RF005 blamed the first conv's 3x3 RF
    class UnfoldFold(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 3, 3, padding=1)
            self.un, self.fold = nn.Unfold(3, padding=1), nn.Fold((8, 8), 3, padding=1)
            self.body = nn.Sequential(*[nn.Conv2d(3, 3, 3, padding=1) for _ in range(6)])

        def forward(self, x):
            x = self.stem(x)
            x = F.fold(F.unfold(x, 3, padding=1), (8, 8), 3, padding=1) if functional else self.fold(self.un(x))
            return self.body(x)

    a, layers = rf(UnfoldFold(), 8)
    assert layers["body.0"].head
    assert len(a.warnings) == 1 and a.warnings[0].endswith(
        "the map it makes from columns (F.unfold's output) is not tracked and counts as global: a layer that reads "
        "it alone is not checked, and where it is added to another map, that map's RF is kept")
    assert lint(a).findings == []


def test_tensor_unfold_frames_a_spatial_axis():
    # Conv1d k5 (r 5); x.unfold(-1, 40, 16): frames of 40 samples every 16 -> r 5 + 39 = 44, jump 16;
    # the mean over the frame's samples keeps the frame axis; Conv1d k3 over frames: 44 + 2*16 = 76.
    # It was taken for a reshape that merged the axis away: c1 was "head", with no warning
    class Framed(nn.Module):
        def __init__(self):
            super().__init__()
            self.c0, self.c1 = nn.Conv1d(1, 4, 5, padding=2), nn.Conv1d(4, 4, 3)

        def forward(self, x):
            return self.c1(self.c0(x).unfold(-1, 40, 16).mean(-1))

    a, layers = rf(Framed(), 800)
    assert out_min(layers["unfold"]) == (44,) and layers["unfold"].stride == (16,)
    assert not layers["c1"].head and out_max(layers["c1"]) == (76,) and a.warnings == []


@pytest.mark.parametrize("mode,scale,expected", [
    ("bilinear", 0.25, 8),  # the triangle filter spans 2 units, stretched by 1/f = 4: 8 input units
    ("bicubic", 0.5, 8),    # the cubic spans 4, stretched by 2: 8
    ("bilinear", 2.0, 2),   # upsampling: antialias changes nothing, r 1 + j 1 (the spec's linear row)
])
def test_antialiased_downsampling_reads_the_stretched_filter(mode, scale, expected):
    # counted as plain interpolation it read 2 (bilinear) or 4 (bicubic) units; measured by autograd
    # (QA), one output unit's input gradient spans 8 at both
    class Resize(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(1, 4, 1)

        def forward(self, x):
            return F.interpolate(self.c(x), scale_factor=scale, mode=mode, antialias=True)

    a, layers = rf(Resize(), 128)
    [resize] = [layer for layer in a.layers if layer.name != "c"]
    assert out_max(resize) == (expected, expected)


@pytest.mark.parametrize("expand", [False, True])
def test_a_spatial_gate_expanded_over_the_channels_is_a_branch(expand):
    # stem 3x3 (r 3); gate: 5x5 (3 + 4 = 7) then a 1x1 to one channel and a sigmoid: a spatial map,
    # not modulation; gate * x reads 3 .. 7.  a.expand_as(x) (the Attention U-Net's gate) repeats the
    # one channel: it dropped both spatial axes (the prefix of dims changed), and the gate with them
    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.g = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 5, padding=2)
            self.psi, self.W = nn.Conv2d(4, 1, 1), nn.Conv2d(4, 4, 1)

        def forward(self, x):
            x = self.stem(x)
            a = torch.sigmoid(self.psi(self.g(x)))
            return self.W((a.expand_as(x) if expand else a) * x)

    a, layers = rf(Gate(), 16)
    assert layers["W"].r_in_min == (3, 3) and layers["W"].r_in_max == (7, 7)


@pytest.mark.parametrize("a_last", [False, True])
def test_the_final_layer_is_the_branch_that_sees_most_on_every_axis(a_last):
    # two branches joined at the end: a, 3x7 (r 3x7), and b, 1x7 (r 1x7).  Both reach 7 on W; a sees
    # more on H, whichever forward() computes last (the tie on the largest axis went to the later one)
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 4, (3, 7), padding=(1, 3)), nn.Conv2d(1, 4, (1, 7), padding=(0, 3))

        def forward(self, x):
            if a_last:
                b = self.b(x)
                return torch.cat([self.a(x), b], 1)
            a = self.a(x)
            return torch.cat([a, self.b(x)], 1)

    a, _ = rf(Two(), 32)
    assert a.final_layer == "a" and tuple(a.final_r_max) == (3, 7)


def test_a_whole_map_pool_with_a_one_pixel_axis_is_global_pooling():
    # at 8x16 the last map is 1x2 (8 -> 4 -> 2 -> 1 rows; 16 -> 2 columns): a max pool over
    # x.shape[2:] reads all of it, but its one-pixel axis did not count as read whole, so it stayed
    # a pool reading the shortcuts' r_min 3 and hid the tail (blocks.4.c2 reads 19 > 8 rows ... on
    # both axes: 19 > 16 too)
    a, layers = rf(_ResNetClosedByPool("whole"), (8, 16))
    assert a.final_layer == "blocks.4.c2"
    assert ("RF002", "blocks.4.c2") in {(f.code, f.layer) for f in lint(a).findings}


def test_a_pool_over_a_one_pixel_map_before_the_classifier_is_global_pooling():
    # at 8 px the last map is 1x1 (8 -> 4 -> 2 -> 1): F.max_pool2d(x, x.size()[2:]) is a 1x1 window on
    # it, which reads all of it as at 16 px (2x2), but stayed an RF layer: the final layer, reading
    # the shortcuts' r_min 3.  By hand: blocks.4.c2 reads 3 + 2*8 = 19 > 8 and is the final layer
    a, layers = rf(_ResNetClosedByPool("whole"), 8)
    assert a.layers[-1].name == "blocks.4.c2" and a.final_layer == "blocks.4.c2"
    assert layers["blocks.4.c2"].r_in_min == (19, 19)
    assert "RF002" in {f.code for f in lint(a).findings}


def test_depth_to_space_to_one_channel_is_a_pixel_shuffle():
    # ESPCN on the Y channel: 4 channels -> 1 channel at 2x; the one-channel dim did not count as
    # "channels left", so the map became global.  down 3x3 /2 (r 3, j 2), deep 9x9 (3 + 16 = 19),
    # shuffle (19, j 1), refine 3x3: 19 + 2 = 21
    class Espcn(nn.Module):
        def __init__(self):
            super().__init__()
            self.down, self.deep, self.refine = (nn.Conv2d(1, 4, 3, 2, 1), nn.Conv2d(4, 4, 9, padding=4),
                                                 nn.Conv2d(1, 1, 3, padding=1))

        def forward(self, x):
            u = self.deep(self.down(x))
            b, c, h, w = u.shape
            u = u.view(b, 1, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, 1, h * 2, w * 2)
            return self.refine(u)

    a, layers = rf(Espcn(), 32, channels=1)
    assert not layers["refine"].head and out_max(layers["refine"]) == (21, 21)


def test_the_head_removed_with_a_tail_leaves_out_a_side_inputs_layers():
    # eight 3x3 convs (a tail at 8 px), a global mean, concatenated with an MLP of a second input
    # (metadata), two Linear layers: the MLP reads no map, it is no part of the head
    from rflint.report import build_report

    class WithMeta(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(*[nn.Conv2d(3 if i == 0 else 8, 8, 3, padding=1) for i in range(8)])
            self.m1, self.m2, self.fc1, self.fc2 = nn.Linear(10, 8), nn.Linear(8, 8), nn.Linear(16, 8), nn.Linear(8, 5)

        def forward(self, x, meta):
            f = torch.cat([self.features(x).mean((2, 3)), self.m2(self.m1(meta))], 1)
            return self.fc2(self.fc1(f))

    plan = build_report(rflint.analyze(WithMeta(), input_shapes=[(1, 3, 8, 8), (1, 10)])).truncation
    assert plan.head_layers == ("fc1", "fc2")


class StdConv2d(nn.Conv2d):
    """timm/BiT weight standardisation: the kernel is computed from self.weight in forward()."""

    def forward(self, x):
        w = self.weight
        w = (w - w.mean(dim=(1, 2, 3), keepdim=True)) / (w.std(dim=(1, 2, 3), keepdim=True) + 1e-5)
        return F.conv2d(x, w, self.bias, self.stride, self.padding)


class BlurPool(nn.Module):
    """antialiased-cnns: a fixed binomial filter kept as a buffer, applied with F.conv2d."""

    def __init__(self, channels):
        super().__init__()
        a = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("filt", (a[:, None] * a[None, :] / 16)[None, None].repeat(channels, 1, 1, 1))
        self.channels = channels

    def forward(self, x):
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.filt, stride=2, groups=self.channels)


def _chain(conv):
    return nn.Sequential(nn.Conv2d(3, 16, 8, stride=8), nn.ReLU(),
                         conv(16, 16, 3, padding=1), nn.ReLU(), conv(16, 16, 3, padding=1), nn.ReLU(),
                         conv(16, 16, 3, padding=1), nn.ReLU(), conv(16, 16, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))


def test_a_functional_conv_is_parametric_when_its_kernel_comes_from_parameters():
    """Spec §3: parametric = has (learned) weights.  At 32 px the 8x8/8 stem gives r 8, j 8; the 3x3
    convs read r 8, 24, 40, 56: the last two exceed 32 px, a tail of 2 parametric layers.  A
    weight-standardised conv is the same layer as nn.Conv2d (each has 16*16*9 + 16 = 2320 params),
    and its findings point at the line that builds it, like nn.Conv2d's."""
    for conv in (nn.Conv2d, StdConv2d):
        a = rflint.analyze(_chain(conv), 32)
        convs = [layer for layer in a.layers if layer.kernel == (3, 3)]
        assert [layer.parametric for layer in convs] == [True] * 4
        assert [layer.params for layer in convs] == [2320] * 4
        tail = lint(a).context.structure.tail
        assert tail.border.name == convs[2].name and sum(layer.parametric for layer in tail.layers) == 2


def test_a_conv_subclass_with_its_own_forward_points_where_it_is_built(tmp_path):
    (tmp_path / "ws.py").write_text(textwrap.dedent("""
        from test_engine_ops import StdConv2d, nn

        def build():
            return nn.Sequential(
                nn.Conv2d(3, 16, 3),
                StdConv2d(16, 16, 3),
                nn.AdaptiveAvgPool2d(1),
            )
    """))
    a = rflint.analyze(f"{tmp_path / 'ws.py'}:build", 32)
    assert [(layer.op, layer.source.line) for layer in a.layers] == [("Conv2d", 6), ("F.conv2d", 7)]


def test_a_conv_subclass_with_its_own_forward_is_named_by_its_path():
    # it was "2.conv2d", "4.conv2d_1", ...: the module's path and fx's node counter over the whole
    # model, where an nn.Conv2d in its place is "2"; a subclass called twice is "c@2", as a module is
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.c = nn.Conv2d(3, 16, 3, padding=1), StdConv2d(16, 16, 3, padding=1)

        def forward(self, x):
            return self.c(self.c(self.stem(x)))

    assert [layer.name for layer in rflint.analyze(_chain(StdConv2d), 32).layers] == ["0", "2", "4", "6", "8"]
    assert [layer.name for layer in rflint.analyze(Twice(), 32).layers] == ["stem", "c", "c@2"]
    # a function of a module that is no conv keeps its node's name: BlurPool's blur is "1.conv2d"
    blurred = rflint.analyze(nn.Sequential(nn.Conv2d(3, 4, 3), BlurPool(4)), 32)
    assert [layer.name for layer in blurred.layers] == ["0", "1.conv2d"]


def test_a_fixed_filter_in_a_buffer_is_no_parametric_layer():
    """BlurPool after an 8x8/8 stem (r 8, j 8) and a 3x3 conv (r 24) at 16 px: the blur reads r 24
    (> 16 px) and gives 24 + 2 * 8 = 40, but it has no learned weights, so it is no unproductive
    parametric layer (no RF001/RF002)."""
    model = nn.Sequential(nn.Conv2d(3, 4, 8, stride=8), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), BlurPool(4),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
    a = rflint.analyze(model, 16)
    blur = a.layers[-1]
    assert blur.op == "F.conv2d" and not blur.parametric and blur.params == 0
    assert tuple(blur.r_in_min) == (24, 24) and out_min(blur) == (40, 40)
    assert {f.code for f in lint(a).findings} & {"RF001", "RF002"} == set()


def test_dead_taps_of_a_functional_conv_count_its_kernel_not_its_bias():
    """A 3x3 pad-1 F.conv2d on a 1x1 map reads a pixel with its centre tap only: 8/9 of its
    16*16*9 = 2304 kernel weights are wasted, 2048; the bias (16) has no taps."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 16, 8, stride=8)
            self.w = nn.Parameter(torch.zeros(16, 16, 3, 3))
            self.b = nn.Parameter(torch.zeros(16))

        def forward(self, x):
            return F.conv2d(self.stem(x), self.w, self.b, padding=1).mean((2, 3))

    found = [f for f in lint(rflint.analyze(Net(), 8)).findings if f.code == "RF004"]
    assert [f.data["wasted_params"] for f in found] == [2048]


@pytest.mark.parametrize("how", ["module", "functional"])
def test_adaptive_max_pool_returning_indices_is_a_window(how):
    """At 10 px: 3x3 pad 1 gives r 3; the adaptive pool 10 -> 5 has window 2, stride 2 (r 4, j 2);
    the next 3x3 gives 4 + 2 * 2 = 8.  With return_indices the pool outputs (values, indices): it
    made the rest of the net a head."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c0, self.c1 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
            self.p = nn.AdaptiveMaxPool2d(5, return_indices=True)

        def forward(self, x):
            x = self.c0(x)
            x = self.p(x)[0] if how == "module" else F.adaptive_max_pool2d(x, 5, return_indices=True)[0]
            return self.c1(x).mean((2, 3))

    a, L = rf(Net(), 10)
    assert out_min(L["c1"]) == (8, 8) and not L["c1"].head and a.final_layer == "c1"


def test_an_adaptive_pool_to_one_row_is_the_fixed_pool_of_that_size():
    """rf-semantics §2: adaptive to 1 on *all* axes is global, otherwise a window.  At 32 px:
    conv 3, pool (4, j 2), conv 8, pool (10, j 4): an 8x8 map.  AdaptiveAvgPool2d((1, None)) reads
    all 8 rows: r_H = 10 + 7 * 4 = 38 (stride 8), r_W stays 10, exactly like AvgPool2d((8, 1));
    the (1, 3) convs after it add 8 px per layer along W only."""
    def net(pool):
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1),
                             nn.MaxPool2d(2), pool, nn.Conv2d(8, 8, (1, 3), padding=(0, 1)),
                             nn.Conv2d(8, 8, (1, 3), padding=(0, 1)))
    for pool in (nn.AdaptiveAvgPool2d((1, None)), nn.AvgPool2d((8, 1))):
        a, L = rf(net(pool), 32)
        assert [out_min(L[name]) for name in ("4", "5", "6")] == [(38, 10), (38, 18), (38, 26)]


@pytest.mark.parametrize("swap", [
    lambda x: x.transpose(2, 3), lambda x: torch.rot90(x, 1, (2, 3)), lambda x: x.rot90(3, [2, 3]),
    lambda x: x.mT,
], ids=["transpose", "rot90", "rot90_method", "mT"])
def test_ops_that_swap_height_and_width_move_the_rf_with_them(swap):
    """A 1x35 kernel gives r (1, 35); after an H<->W swap the map's H holds the input's W: (35, 1);
    a 35x1 kernel grows H by 34: (69, 1); a 3x3: (71, 3).  rot90 and .mT were taken as elementwise."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c0 = nn.Conv2d(3, 4, (1, 35), padding=(0, 17))
            self.c1 = nn.Conv2d(4, 4, (35, 1), padding=(17, 0))
            self.c2 = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            return self.c2(self.c1(swap(self.c0(x))))

    a, L = rf(Net(), 32)
    assert [out_min(L[name]) for name in ("c0", "c1", "c2")] == [(1, 35), (69, 1), (71, 3)]
    assert not a.warnings


def test_narrow_is_a_crop_and_functional_max_unpool_a_transposed_window():
    """3x3/2 pad 1 at 32 px: r 3, j 2.  narrow(3, 2, 10) crops (r stays 3, no stride is inferred from
    16 -> 10); the 3x3 after it: 3 + 2 * 2 = 7.  F.max_unpool2d after a 3/2 pad-1 max pool reads
    like nn.MaxUnpool2d (a transposed window, rf-semantics §2): pool r 3 + 2 * 2 = 7, j 4; the
    unpool's output unit reads ceil(3 / 2) = 2 input units: 7 + 1 * 4 = 11, j 2."""
    class Crop(nn.Module):
        def __init__(self):
            super().__init__()
            self.c0, self.c1 = nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            return self.c1(self.c0(x).narrow(3, 2, 10))

    a, L = rf(Crop(), 32)
    assert out_min(L["c1"]) == (7, 7) and not a.warnings

    class Unpool(nn.Module):
        def __init__(self):
            super().__init__()
            self.c0 = nn.Conv2d(3, 4, 3, stride=2, padding=1)

        def forward(self, x):
            x = self.c0(x)
            y, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
            return F.max_unpool2d(y, idx, 3, 2, 1, output_size=x.shape[2:])

    a, _ = rf(Unpool(), 32)
    assert [(layer.op, out_min(layer)) for layer in a.layers] == [
        ("Conv2d", (3, 3)), ("F.max_pool2d_with_indices", (7, 7)), ("F.max_unpool2d", (11, 11))]
    assert not a.warnings


@pytest.mark.parametrize("mode", ["right", "left", "linear", "method"])
def test_a_matmul_with_a_constant_matrix_mixes_only_the_dim_it_contracts(mode):
    """conv1d 5/2 (r 5, j 2), the 8 channels projected to 4 by a constant matrix (a mel filterbank
    on a spectrogram's frequencies), conv 5/2 (5 + 4 * 2 = 13, j 4), conv 5 (13 + 4 * 4 = 29).
    Every form of the projection is the same function; a matmul made the tensor global (only a
    product of two activations, attention, mixes positions)."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2, self.c3 = nn.Conv1d(1, 8, 5, stride=2), nn.Conv1d(4, 4, 5, stride=2), nn.Conv1d(4, 4, 5)
            self.register_buffer("P", torch.rand(8, 4))

        def forward(self, x):
            y = self.c1(x)  # (B, 8, T)
            if mode == "right":
                y = (y.transpose(1, 2) @ self.P).transpose(1, 2)
            elif mode == "left":
                y = self.P.t() @ y  # (4, 8) @ (B, 8, T)
            elif mode == "method":
                y = y.transpose(1, 2).matmul(self.P).transpose(1, 2)
            else:
                y = F.linear(y.transpose(1, 2), self.P.t()).transpose(1, 2)
            return self.c3(self.c2(y))

    a, L = rf(Net(), 40)
    assert [out_min(L[name]) for name in ("c1", "c2", "c3")] == [(5,), (13,), (29,)]
    assert a.final_layer == "c3"


def test_a_product_of_two_activations_is_still_global():
    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = nn.Conv1d(1, 8, 5), nn.Conv1d(8, 8, 3)

        def forward(self, x):
            y = self.c1(x)
            y = (y.transpose(1, 2) @ y).softmax(-1) @ y.transpose(1, 2)  # (B, T, T) @ (B, T, 8)
            return self.c2(y.transpose(1, 2))

    a, L = rf(Attn(), 32)
    assert L["c2"].head and a.final_layer == "c1"


class _Spectrogram(nn.Module):
    """A waveform (N, 1, L) -> |STFT| (n_fft 64, hop 16, centred) as a one-channel (F, T) map -> 3x3
    convs: the model's first conv is 2-D, its input is 1-D."""

    def __init__(self):
        super().__init__()
        self.register_buffer("window", torch.hann_window(64))
        self.c1, self.c2 = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        spec = torch.stft(x.squeeze(1), 64, 16, window=self.window, center=True, return_complex=True).abs()
        return self.c2(self.c1(spec.unsqueeze(1)))


def test_an_stft_front_end_is_a_window_over_the_samples():
    """The STFT: window 64, stride 16 (r 64, j 16), 1024 samples -> 65 frames (centred: 1024 / 16
    + 1); each 3x3 conv adds 2 frames of 16 samples along time: 96, 128.  The frequency axis is
    made from channels-like bins: no RF.  A 1-D input for a model whose first conv is 2-D was
    refused ("expects 2 spatial axes"), and the STFT was silently global."""
    a = rflint.analyze(_Spectrogram(), input_shapes=[(1, 1, 1024)])
    L = {layer.name: layer for layer in a.layers}
    assert L["stft"].kernel == (64,) and L["stft"].stride == (16,) and out_min(L["stft"]) == (64,)
    assert L["c1"].out_shape == (1, 4, 33, 65)
    assert L["c1"].r_out_min == (None, 96) and L["c2"].r_out_min == (None, 128)
    assert not a.warnings


class _PaddedSpectrogram(_Spectrogram):
    """_Spectrogram that pads the clip to a multiple of the hop first: ``n, c, t = x.shape`` and a
    branch on the length, as audio models write it, so the symbolic trace fails."""

    def forward(self, x):
        n, c, t = x.shape
        if t % 16:
            x = F.pad(x, (0, 16 - t % 16))
        return super().forward(x)


@pytest.mark.parametrize("length, frames", [(1024, 65), (1000, 64)])
def test_a_waveform_model_the_symbolic_trace_fails_on_takes_a_waveform(length, frames):
    """Where the symbolic trace failed, the input's rank was the first conv's (2-D) whatever the
    model does before it: a waveform model that unpacks its shape was refused at every size
    ("expects 2 spatial axes"), and --input 1000 became 1000x1000.  The trace at the input's shape
    shows the first conv reads a map made from it.  By hand: 1000 samples are padded to 1008, 1008 /
    16 + 1 = 64 frames; the RFs are _Spectrogram's (padding adds no samples to a window's reach)."""
    a = rflint.analyze(_PaddedSpectrogram(), input_shapes=[(1, 1, length)])
    assert "concrete shapes" in a.trace_method
    L = {layer.name: layer for layer in a.layers}
    assert L["stft"].kernel == (64,) and out_min(L["stft"]) == (64,)
    assert L["c1"].out_shape == (1, 4, 33, frames)
    assert L["c1"].r_out_min == (None, 96) and L["c2"].r_out_min == (None, 128)


class _DropConnect(nn.Module):
    def __init__(self, c, shared=None):
        super().__init__()
        self.weight = shared if shared is not None else nn.Parameter(torch.randn(c, c, 3, 3))
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        return F.conv2d(input=x, weight=self.drop(self.weight), padding=1)


def test_functional_conv_kernels_through_modules_keywords_and_sharing():
    """8 px: two 3x3/2 convs (r 3, j 2; r 7, j 4 on a 2x2 map); the DropConnect convs read 7 and 15
    px: the second is unproductive (a tail).  The kernel goes through an nn.Dropout (it was not
    parametric: no tail, exit 0) and the input is given as input= (the RF was dropped).  Two convs
    sharing one kernel count its 8 * 8 * 9 = 576 weights once, at the first, as a module called
    twice does: the tail (the second) then holds none (it was counted twice: 1,152)."""
    shared = nn.Parameter(torch.randn(8, 8, 3, 3))
    for a_kernel, b_kernel, tail_params in ((None, None, 576), (shared, shared, 0)):
        model = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.Conv2d(8, 8, 3, 2, 1), _DropConnect(8, a_kernel),
                              _DropConnect(8, b_kernel), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
        a = rflint.analyze(model, 8)
        convs = [layer for layer in a.layers if layer.op == "F.conv2d"]
        assert [tuple(layer.r_in_min) for layer in convs] == [(7, 7), (15, 15)]
        assert all(layer.parametric for layer in convs)
        tail = lint(a).context.structure.tail
        assert [layer.name for layer in tail.layers] == [convs[1].name] and tail.params == tail_params
    assert [layer.params for layer in convs] == [576, 0]  # the shared kernel: at its first use
    # MACs by keyword too: a 2x2 map of 8 channels, each output 8 * 9 = 72 MACs: 4 * 8 * 72 = 2304
    assert [layer.macs for layer in convs] == [2304, 2304]


def test_the_final_rf_follows_the_input_axes_after_a_swap():
    """(3, 1)/(2, 1) grows H: r (3, 1); transposed, the (1, 3) conv grows the map's W, which is the
    input's H: 3 + 2 * 2 = 7.  In the input's axes that is H 7, W 1 (it read "1x7 for a 9x8 input")."""
    class Swap(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = nn.Conv2d(1, 4, (3, 1), (2, 1), (1, 0)), nn.Conv2d(4, 4, (1, 3), 1, (0, 1))

        def forward(self, x):
            return self.c2(self.c1(x).transpose(-1, -2))

    a = rflint.analyze(Swap(), (9, 8), channels=1)
    assert a.final_r_min == (7, 1) and a.final_r_max == (7, 1)
    assert out_min(a.layer("c2")) == (1, 7)  # the layer's own axes: (W, H) of the input


@pytest.mark.parametrize("indices", [False, True])
def test_a_crnn_height_pool_returning_indices_reads_the_whole_height(indices):
    """AdaptiveMaxPool2d((1, None)) on a 3x3 conv's 12x10 map, then squeeze(2) and a Conv1d along
    W: the height is pooled whole and gone (nothing spatial after the pool on it), W: 3 + 2 = 5.
    With return_indices the pool's (values, indices) hid the squeeze: a false RF005 said "-x5"."""
    class Crnn(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = nn.Conv2d(1, 4, 3, 1, 1), nn.Conv1d(4, 4, 3, 1, 1)
            self.p = nn.AdaptiveMaxPool2d((1, None), return_indices=indices)

        def forward(self, x):
            y = self.p(self.c1(x))
            return self.c2((y[0] if indices else y).squeeze(2))

    a = rflint.analyze(Crnn(), (12, 10), channels=1)
    assert a.final_r_max == (None, 5)
    assert [f.code for f in lint(a).findings] == []


class _WeightNormedConv(nn.Module):
    """A conv written with F.conv2d whose weight carries weight_norm (a TCN/WaveNet block's)."""

    def __init__(self, c):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c, c, 3, 3))
        torch.nn.utils.parametrizations.weight_norm(self, "weight")

    def forward(self, x):
        return F.conv2d(x, self.weight, None, 1, 1)


def test_a_users_module_with_a_parametrization_is_traced_into():
    """torch makes a parametrized module's class anew inside torch, which fx took for a leaf: the
    conv in its forward() was an unknown identity (final RF 7, no tail).  8 px: two 3x3/2 convs
    (r 7, j 4), the weight-normed convs read 7 and 15 px: the second is a tail of one layer with
    weight_v (8 * 8 * 9 = 576) and weight_g (8): 584 params."""
    model = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.Conv2d(8, 8, 3, 2, 1), _WeightNormedConv(8),
                          _WeightNormedConv(8), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    a = rflint.analyze(model, 8)
    convs = [layer for layer in a.layers if layer.op == "F.conv2d"]
    assert [out_min(layer) for layer in convs] == [(15, 15), (23, 23)] and not a.warnings
    assert [layer.params for layer in convs] == [584, 584] and all(layer.parametric for layer in convs)
    # the weights counted once, at the layers (the parametrization's own node held them too)
    assert sum(a.node_params.values()) == a.params
    tail = lint(a).context.structure.tail
    assert [layer.name for layer in tail.layers] == [convs[1].name] and tail.params == 584


class _SelectiveKernel(nn.Module):
    """SKNet's fusion: a 3x3 and a dilated 3x3 branch, weighted by a softmax over the branches from the
    pooled map (global: modulation), summed with einsum."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.b0, self.b1 = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=2, dilation=2)
        self.fc = nn.Linear(4, 8)
        self.after = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        x = self.stem(x)
        feats = torch.stack([self.b0(x), self.b1(x)], dim=1)  # (B, 2, C, H, W)
        att = self.fc(feats.sum(1).mean((2, 3))).view(-1, 2, 4).softmax(1)  # (B, 2, C)
        return self.after(torch.einsum("bmchw,bmc->bchw", feats, att))


class _Einsum(nn.Module):
    def __init__(self, equation, weight_shape):
        super().__init__()
        self.equation, self.weight = equation, nn.Parameter(torch.randn(weight_shape))
        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.b(torch.einsum(self.equation, self.a(x), self.weight))


def test_einsum_reads_its_subscripts():
    # stem 3; branches 3 + 2 = 5 and 3 + 4 = 7; the attention is global, so the fused map is their
    # union {5, 7}, and the conv after it reads 5-7 and makes 7-9.  einsum made it global: "head"
    _, L = rf(_SelectiveKernel(), 16)
    assert (L["after"].r_in_min, L["after"].r_in_max) == ((5, 5), (7, 7))
    assert (L["after"].r_out_min, L["after"].r_out_max) == ((7, 7), (9, 9))
    # the branch attention is a gate, not attention: at 16 px the last map (r 9) sees too little
    assert [f.code for f in lint(rflint.analyze(_SelectiveKernel(), 16)).findings] == ["RF005"]
    # nor is an elementwise product written as einsum: conv3 and conv5 multiplied, conv3: 5-7, at 64 px
    elementwise = Lambda(lambda s, x: s.mods[2](torch.einsum("bchw,bchw->bchw", s.mods[0](x), s.mods[1](x))),
                         nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 5, padding=2), nn.Conv2d(4, 4, 3, padding=1))
    assert [f.code for f in lint(rflint.analyze(elementwise, 64)).findings] == ["RF005"]
    # a channel projection by a weight: conv 3, projected 3, conv 5
    _, L = rf(_Einsum("bchw,oc->bohw", (4, 4)), 16)
    assert (L["b"].r_in_min, L["b"].r_out_min) == ((3, 3), (5, 5))
    # the same written with an ellipsis for the batch: it was global, the conv after it a head
    _, L = rf(_Einsum("...chw,oc->...ohw", (4, 4)), 16)
    assert (L["b"].r_in_min, L["b"].r_out_min) == ((3, 3), (5, 5))
    # a weight over the width (letter w summed away): W is mixed, H goes on, 3 then 5
    _, L = rf(_Einsum("bchw,wv->bchv", (16, 16)), 16)
    assert (L["b"].r_in_min, L["b"].r_out_min) == ((3, None), (5, None))
    convs = (nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1))
    # a map times another one summed over all its positions ('bchw,bcij->bchw', a * b.sum((2, 3))):
    # that one is pooled, a gate, so the first map's RF goes on: 3, then 5
    a, L = rf(Lambda(lambda s, x: s.mods[1](torch.einsum("bchw,bcij->bchw", s.mods[0](x), s.mods[0](x))), *convs), 16)
    assert (L["mods.1"].r_in_min, L["mods.1"].r_out_min) == ((3, 3), (5, 5))
    # two activations over positions (a similarity of every pixel with every pixel): global
    a, L = rf(Lambda(lambda s, x: s.mods[1](
        torch.einsum("bchw,bcxy->bhwxy", s.mods[0](x), s.mods[0](x)).flatten(3).amax(-1).unsqueeze(1).repeat(1, 4, 1, 1)),
        *convs), 16)
    assert L["mods.1"].head


def test_a_matmul_per_position_keeps_the_positions():
    # (b, h, w, 1, c) @ (b, h, w, c, 1): a product over the channels at each pixel, positions in the
    # batch dims; a 3x3 and a 5x5 map in, so the conv after it reads 3-5 and makes 5-7.  It was global
    net = Lambda(lambda s, x: s.mods[2]((s.mods[0](x).permute(0, 2, 3, 1).unsqueeze(-2)
                                         @ s.mods[1](x).permute(0, 2, 3, 1).unsqueeze(-1))
                                        .squeeze(-1).permute(0, 3, 1, 2).expand(-1, 4, -1, -1)),
                 nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 5, padding=2), nn.Conv2d(4, 4, 3, padding=1))
    _, L = rf(net, 16)
    assert (L["mods.2"].r_in_min, L["mods.2"].r_in_max) == ((3, 3), (5, 5))
    assert (L["mods.2"].r_out_min, L["mods.2"].r_out_max) == ((5, 5), (7, 7))


def test_a_matmul_with_a_global_operand_is_modulation():
    # feats (B, C, H, W) @ a (B, C, W, W) made from the pooled map: W is contracted (mixed), H keeps
    # conv 3 and the conv after makes 5; it was global (two activations), every later layer a head
    class Gated(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.fc, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Linear(4, 4 * 8 * 8), nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            y = self.a(x)
            gate = self.fc(y.mean((2, 3))).view(-1, 4, 8, 8)
            return self.b(y @ gate)

    _, L = rf(Gated(), 8)
    assert (L["b"].r_in_min, L["b"].r_out_min) == ((3, None), (5, None))


class _OnlineRep(nn.Module):
    """OREPA/DBB: the 3x3 kernel is built in forward() from a 3x3 and a zero-padded 1x1 kernel."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.stride = stride
        self.w3 = nn.Parameter(torch.randn(c_out, c_in, 3, 3))
        self.w1 = nn.Parameter(torch.randn(c_out, c_in, 1, 1))

    def forward(self, x):
        return F.conv2d(x, self.w3 + F.pad(self.w1, [1, 1, 1, 1]), None, self.stride, 1)


def test_a_model_of_functional_convs_with_computed_kernels_is_linted():
    # only a bare Parameter kernel told the input channels: this was "nothing to lint", exit 0.
    # 3 channels from the first kernel (8, 3, 3, 3); conv s2 r 3, j 2; conv: 3 + 2 * 2 = 7
    a, L = rf(nn.Sequential(_OnlineRep(3, 8, 2), _OnlineRep(8, 8, 1)), 16)
    assert a.channels == 3
    assert [(layer.r_in_min, layer.r_out_min) for layer in a.layers] == [((1, 1), (3, 3)), ((3, 3), (7, 7))]
    assert a.layers[0].params == 8 * 3 * 9 + 8 * 3


class _TokensAndBack(nn.Module):
    """A 3x3 /8 conv, its map flattened into tokens, a Linear over the channels, the tokens put back
    into the map, and a 1x1 conv (RT-DETR's AIFI on the stride-32 map, without the attention)."""

    def __init__(self, how):
        super().__init__()
        self.how = how
        self.c, self.mix, self.d = nn.Conv2d(3, 4, 3, stride=8, padding=1), nn.Linear(4, 4), nn.Conv2d(4, 4, 1)
        self.flat = nn.Flatten(2)

    def forward(self, x):
        y = self.c(x)
        b, c, h, w = y.shape
        flat = {"method": lambda: y.flatten(2), "function": lambda: torch.flatten(y, 2),
                "module": lambda: self.flat(y)}[self.how]()
        t = self.mix(flat.permute(0, 2, 1))
        return self.d(t.permute(0, 2, 1).reshape(b, c, h, w))


@pytest.mark.parametrize("how", ["method", "function", "module"])
@pytest.mark.parametrize("size", [(8, 8), (16, 8), (8, 16), (16, 16)])
def test_a_flatten_of_spatial_axes_is_global_whatever_their_sizes(how, size):
    """rf-semantics.md: a flatten of spatial axes is global.  Matched by sizes, the 1x1 map of 8x8
    px kept W (a unit dim faced it) and dropped H, the 2x1 map of 16x8 kept H: d read (None, 3) or
    (3, None), and a square model got one axis's RF from another path (RT-DETR at 32 px: (515,
    547)).  Now d reads a global tensor at every size: a head layer."""
    a = rflint.analyze(_TokensAndBack(how), size)
    d = a.layer("d")
    assert d.head and d.r_in_max == (None, None)


def _two_maps(x):
    return x, F.max_pool2d(x, 2)


torch.fx.wrap("_two_maps")


class _ReducedOverW(nn.Module):
    """Two 5x5 convs (r 9 on both axes), ``fn`` taking W away, a Conv1d k3 over what is left (H)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.c1 = nn.Conv2d(1, 4, 5, padding=2)
        self.c2 = nn.Conv2d(4, 4, 5, padding=2)
        self.head = nn.Conv1d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.head(self.fn(self.c2(self.c1(x))))


@pytest.mark.parametrize("fn", [
    lambda y: y.median(3)[0], lambda y: torch.median(y, dim=3).values, lambda y: torch.nanmedian(y, 3)[0],
    lambda y: y.kthvalue(2, 3)[0], lambda y: y.mode(3)[0], lambda y: y.mode()[0],
    lambda y: torch.aminmax(y, dim=3).max, lambda y: torch.std_mean(y, 3)[0], lambda y: torch.var_mean(y, 3)[1],
    lambda y: y.select(3, 0), lambda y: torch.select(y, 3, 5), lambda y: y.unbind(3)[0], lambda y: torch.unbind(y, -1)[2],
    lambda y: torch.linalg.vector_norm(y, dim=3), lambda y: torch.linalg.norm(y, 2, 3), lambda y: y.norm(2, 3),
    lambda y: y.std(3, True), lambda y: torch.any(y > 0, 3).float(), lambda y: torch.count_nonzero(y, 3).float(),
    lambda y: torch.trapezoid(y, dim=3), lambda y: y.argmax(3).float(), lambda y: y.amax(3),
    # a dim computed in forward() (a node, taken for torch.max(a, b)'s second map), two-map
    # reductions along W, and torch.special's names
    lambda y: y.mean(y.dim() - 1), lambda y: torch.amax(y, y.ndim - 1), lambda y: y.max(y.ndim - 1)[0],
    lambda y: F.cosine_similarity(y, 2 * y, dim=3), lambda y: F.pairwise_distance(y, y + 1),
    lambda y: torch.linalg.vecdot(y, y), lambda y: torch.special.logsumexp(y, 3), lambda y: torch.select_copy(y, 3, 0),
])
def test_an_op_taking_one_spatial_axis_away_leaves_the_other(fn):
    # at 8x64 the Conv1d reads H (model-input axis 0) with r_min 9 > 8: unproductive.  These ops had
    # no rule: matched by sizes, the kept axis was taken for W (judged against 64, productive), or
    # the map was made global (the head not judged at all)
    a, L = rf(_ReducedOverW(fn), (8, 64), channels=1)
    head = L["head"]
    assert (head.origins, tuple(head.r_in_min), head.head) == ((0,), (9,), False), a.warnings
    assert [f.layer for f in lint(a).findings if f.code == "RF001"] == ["head"]


def test_a_reduction_keeping_its_dim_drops_the_axis_it_mixed():
    # median over W with keepdim: every unit read the whole row, so W is no RF axis any more
    # (it was kept with r 9, and the next conv judged "partial" against 64)
    net = _ReducedOverW(lambda y: y.median(3, keepdim=True)[0])
    net.head = nn.Conv2d(4, 4, (3, 1), padding=(1, 0))
    a, L = rf(net, (8, 64), channels=1)
    assert (L["head"].origins, tuple(L["head"].r_in_min)) == ((0, None), (9, None))  # W: no RF axis
    assert ("RF001", "head") in {(f.code, f.layer) for f in lint(a).findings}  # (not RF006, partial)
    assert not any(f.code == "RF006" for f in lint(a).findings)


class _PickedColumns(nn.Module):
    def __init__(self, how: str):
        super().__init__()
        self.how = how
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)
        self.register_buffer("idx", torch.arange(0, 40, 2))

    def forward(self, x):
        x = self.c1(x)
        x = x[..., self.idx] if self.how == "buffer" else x[:, :, :, list(range(0, 40, 2))]
        return self.c2(x)


@pytest.mark.parametrize("how", ["buffer", "list"])
def test_indexing_every_second_column_is_a_stride_of_two(how):
    # c1: 3 on both axes; every second column: W at jump 2; c2: H 3 + 2 = 5, W 3 + 2 * 2 = 7.  The
    # index kept the RF (W 5), with no word
    a, L = rf(_PickedColumns(how), (16, 40))
    assert out_min(L["c2"]) == (5, 7)
    assert any("indexing with a tensor or list" in w for w in a.warnings)


class _WrappedTuple(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.c3, self.c4 = (nn.Conv2d(3 if i == 0 else 8, 8, 3, padding=1) for i in range(4))

    def forward(self, x):
        _, pooled = _two_maps(self.c1(x))
        return self.c4(self.c3(self.c2(pooled))).mean((2, 3))


def test_a_wrapped_function_that_returns_a_smaller_map_in_a_tuple_is_inferred():
    # _two_maps is fx.wrap-ed (a leaf for the trace) and returns (x, max_pool(x)); the pooled map
    # is 4x4 from 8x8: kernel 1, stride 2 from the shapes.  c1 3, then jump 2: c2 3 + 4 = 7, c3 11
    # (the input of c4: 11 > 8, unproductive).  The tuple passed the RF through: 5, 7, 9, silently
    a, L = rf(_WrappedTuple(), 8)
    assert out_min(L["c3"]) == (11, 11) and tuple(L["c4"].r_in_min) == (11, 11)
    assert any("_two_maps(...)[1]" in w and "stride 2x2" in w for w in a.warnings)


@dataclasses.dataclass
class _Output:
    logits: torch.Tensor
    features: torch.Tensor
    extra: object = None


class _DataclassOutput(nn.Module):
    def __init__(self, wrap: bool):
        super().__init__()
        self.wrap = wrap
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.c3 = nn.Conv2d(8, 8, 3, padding=1)
        self.c4 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        d = self.c4(self.c3(self.c2(self.c1(x))))
        logits = self.fc(d.mean((2, 3)))
        return _Output(logits, d) if self.wrap else (logits, d)


@pytest.mark.parametrize("wrap", [True, False])
def test_a_model_returning_a_dataclass_is_linted_as_one_returning_a_tuple(wrap):
    # c1 3; c2 (s2) 5, jump 2; c3 9 -> c4 reads 9 > 8 px: unproductive, a tail of one layer.  Built
    # into a dataclass (a ModelOutput) the maps reached no output: no tail, no final RF, no note
    a, _ = rf(_DataclassOutput(wrap), 8)
    assert a.final_layer == "c4" and tuple(a.final_r_min) == (13, 13)
    assert {(f.code, f.layer) for f in lint(a).findings} >= {("RF002", "c4"), ("RF001", "c4")}


class _KeepsBoth(nn.Module):
    """Two 5x5 convs (r 9 on both axes of 8x64), ``fn``, a 3x3 conv: each ``fn`` below moves no
    position along H or W for good, so the last conv reads r 9 on both axes, H and W in place."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.c1 = nn.Conv2d(1, 4, 5, padding=2)
        self.c2 = nn.Conv2d(4, 4, 5, padding=2)
        self.lin = nn.Linear(4, 4)
        self.head = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.head(self.fn(self, self.c2(self.c1(x))))


@pytest.mark.parametrize("fn", [
    # halves or quarters along W taken apart and joined again: crops (they were inferred as stride 2)
    lambda m, y: torch.cat(y.chunk(2, dim=3), dim=3), lambda m, y: torch.cat(torch.split(y, 16, dim=3), dim=3),
    lambda m, y: torch.cat(y.tensor_split(4, dim=2), dim=2),
    # ConvNeXt's channels-last Linear written with movedim (inferred with made-up strides)
    lambda m, y: m.lin(y.movedim(1, -1)).movedim(-1, 1), lambda m, y: torch.moveaxis(m.lin(torch.moveaxis(y, 1, 3)), 3, 1),
    # softmax without a dim: torch takes dim 1 (channels) for a 4-D map (it was made global)
    lambda m, y: F.softmax(y), lambda m, y: nn.functional.log_softmax(y),
    # a complex view and back: one trailing dim of 2 added and taken away (made global)
    lambda m, y: torch.view_as_real(torch.view_as_complex(torch.stack([y, y], -1))).sum(-1),
    # maps stacked on a new last dim and summed over it (the stacked map had no RF: the head vanished)
    lambda m, y: torch.stack([y, 2 * y], -1).sum(-1), lambda m, y: torch.dstack([y, y])[:, :, :8],
    # a map taken apart into its columns or rows and stacked back in place, each slice processed
    # alike (a per-frame op): the axis is whole again (it was lost, and a 1-D signal made global)
    lambda m, y: torch.stack(y.unbind(3), 3), lambda m, y: torch.stack([y.select(3, i) for i in range(64)], 3),
    lambda m, y: torch.stack([torch.tanh(f) for f in y.unbind(2)], 2),
    lambda m, y: torch.stack([y.select(dim=3, index=i - 64) for i in range(64)], 3),  # keywords, negative indices
])
def test_ops_that_move_no_position_for_good_keep_both_axes(fn):
    a, L = rf(_KeepsBoth(fn), (8, 64), channels=1)
    assert "head" in L, a.warnings
    assert (L["head"].origins, tuple(L["head"].r_in_min)) == ((0, 1), (9, 9)), a.warnings


class _PairOverW(_ReducedOverW):
    """_ReducedOverW with a two-map module (a submodule, as fx wants it) taking W away."""

    def __init__(self, module):
        super().__init__(lambda y: self.pair(y, y + 1))
        self.pair = module


@pytest.mark.parametrize("module", [nn.CosineSimilarity(dim=3), nn.PairwiseDistance()])
def test_a_pairwise_module_along_w_leaves_h(module):
    # as their functions: W (the last dim) reduced, H left with r 9 > 8 (they were made global)
    a, L = rf(_PairOverW(module), (8, 64), channels=1)
    assert (L["head"].origins, tuple(L["head"].r_in_min)) == ((0,), (9,)), a.warnings


class _PerFrame(nn.Module):
    """1-D: a stride-2 conv (5 samples, jump 2), each frame taken apart and stacked back, then
    Conv1d k3: 5 + 2 * 2 = 9 on the frames axis; the stack made the signal global before."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(1, 4, 5, stride=2, padding=2)
        self.c2 = nn.Conv1d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.c2(torch.stack(self.c1(x).unbind(-1), -1))


def test_frames_stacked_back_keep_a_1d_signal_spatial():
    _, L = rf(_PerFrame(), 32)
    assert (L["c2"].head, out_min(L["c2"])) == (False, (9,))


class _Frames(nn.Module):
    """Video (N, C, T, H, W): each frame through a 2-D conv (3 -> 8 channels) and pooled, the frames
    stacked on a last dim, then Conv1d k3 over time.  Along T each stacked position reads its
    frame alone: r 1 into the first temporal conv, 3, 5, 7 after (TSN).  The per-frame op changed
    the slices (channels, then pooled away H and W), and the time axis was lost: every temporal
    conv was a head."""

    def __init__(self, pool: bool):
        super().__init__()
        self.pool = pool
        self.f = nn.Conv2d(3, 8, 3, padding=1)
        self.t = nn.Sequential(*[nn.Conv1d(8, 8, 3, padding=1) for _ in range(4)])

    def forward(self, x):
        frames = [self.f(fr).mean((-2, -1)) if self.pool else self.f(fr).amax((-2, -1)) for fr in x.unbind(2)]
        return self.t(torch.stack(frames, dim=-1))


@pytest.mark.parametrize("pool", [True, False])
def test_frames_processed_alone_and_stacked_keep_the_time_axis(pool):
    a = rflint.analyze(_Frames(pool), input_shapes=[(1, 3, 6, 16, 16)])
    L = {layer.name: layer for layer in a.layers}
    assert [tuple(L[f"t.{i}"].r_in_min) for i in range(4)] == [(1,), (3,), (5,), (7,)]
    assert [L[f"t.{i}"].origins for i in range(4)] == [(0,)] * 4  # model-input axis 0: T


class _FrameBlocks(nn.Module):
    """Video frames each through a residual conv block with an SE-style gate (two operands, both
    from the frame), stacked back on T, then a Conv3d (3, 1, 1): along T each position reads its
    own frame, r 1 into it.  Only one-operand chains were followed: the time axis was lost."""

    def __init__(self, other: bool):
        super().__init__()
        self.other = other
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.t = nn.Conv3d(3, 3, (3, 1, 1), padding=(1, 0, 0))

    def forward(self, x):
        frames = []
        for f in x.unbind(2):
            y = self.conv(f) + (x[:, :, 0] if self.other else f)  # the other map: not the frame's own
            frames.append(y * torch.sigmoid(y.mean((2, 3), keepdim=True)))
        return self.t(torch.stack(frames, 2))


@pytest.mark.parametrize("other, r_t", [(False, 1), (True, None)])
def test_frames_through_residual_blocks_keep_the_time_axis(other, r_t):
    a = rflint.analyze(_FrameBlocks(other), input_shapes=[(1, 3, 4, 8, 8)])
    t = {layer.name: layer for layer in a.layers}["t"]
    assert t.r_in_min[0] == r_t and t.origins[0] == (0 if r_t else None)


class _FoldedFrames(nn.Module):
    """A clip (B, 3, T, H, W) whose frames are folded into the batch for a 2-D conv, then a Conv3d
    over the clip."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.t = nn.Conv3d(16, 16, 3, padding=1)

    def forward(self, x):
        b, c, t, h, w = x.shape
        f = self.conv(x.transpose(1, 2).reshape(b * t, c, h, w))
        return self.t(f.view(b, t, 16, h // 2, w // 2).transpose(1, 2))


class _SequenceFirst(nn.Module):
    """Tokens laid out (N, B, C), as nn.Transformer's default: the Linear's first dim is no batch."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.lin = nn.Linear(16, 32)

    def forward(self, x):
        return self.lin(self.conv(x).flatten(2).permute(2, 0, 1))


class _BatchInGroups(nn.Module):
    """A tracker's depthwise cross-correlation: the batch folded into the conv's groups (the
    conv's own first dim is 1 at any batch)."""

    def __init__(self):
        super().__init__()
        self.feat = nn.Conv2d(3, 8, 3, stride=2, padding=1)

    def forward(self, x):
        f = self.feat(x)
        b, c, h, w = f.shape
        z = f[:, :, :4, :4]
        return F.conv2d(f.reshape(1, b * c, h, w), z.reshape(b * c, 1, 4, 4), groups=b * c)


@pytest.mark.parametrize("batch", [1, 4])
def test_macs_are_per_sample_of_the_model_input_not_of_each_node(batch):
    """MACs per sample were each node's count divided by that node's own first dim, which is the
    batch only where the model keeps it there.  By hand, per sample of the input:
    frames (T=8 of 32x32): conv 8 frames x 16x16 out x 16 ch x 27 = 884,736; Conv3d 8x16x16 out x
    16 ch x 16*27 = 14,155,776 (the frames' conv was divided by 8: 110,592).
    sequence-first (16x16 px): conv 8x8 out x 16 ch x 27 = 27,648; Linear 64 tokens x 32 x 16 =
    32,768 (divided by the 64 tokens: 512).
    batch in groups (16x16): feat 8x8 x 8 ch x 27 = 13,824; xcorr 5x5 out x 8 ch x 16 = 3,200
    (its own batch is 1: counted x batch)."""
    a = rflint.analyze(_FoldedFrames(), input_shapes=[(batch, 3, 8, 32, 32)])
    assert {layer.name: layer.macs for layer in a.layers} == {"conv": 884_736, "t": 14_155_776}
    assert a.macs == 884_736 + 14_155_776
    a = rflint.analyze(_SequenceFirst(), input_shapes=[(batch, 3, 16, 16)])
    assert a.macs == 27_648 + 32_768
    a = rflint.analyze(_BatchInGroups(), input_shapes=[(batch, 3, 16, 16)])
    assert [layer.macs for layer in a.layers] == [13_824, 3_200] and a.macs == 13_824 + 3_200


class _Products(nn.Module):
    """An 8x8 map of 16 channels (a 1x1 conv: 64 positions x 16 x 3 = 3,072 MACs), then one product."""

    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.conv = nn.Conv2d(3, 16, 1)
        self.w = nn.Parameter(torch.randn(16, 16))
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.attn_kv = nn.MultiheadAttention(16, 2, batch_first=True, add_bias_kv=True)
        self.encoder = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
        self.decoder = nn.TransformerDecoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
        self.transformer = nn.Transformer(16, 2, 1, 1, 32, dropout=0.0, batch_first=True)

    def forward(self, x):
        f = self.conv(x)  # (B, 16, 8, 8)
        b = f.shape[0]
        tokens = f.flatten(2).transpose(1, 2)  # (B, 64, 16)
        if self.kind == "addmm":
            return torch.addmm(self.w[0], tokens.reshape(b * 64, 16), self.w)
        if self.kind == "baddbmm":
            return torch.baddbmm(tokens, tokens, self.w.expand(b, 16, 16))
        if self.kind == "einsum":
            return torch.einsum("bchw,oc->bohw", f, self.w[:8])
        if self.kind == "sdpa":
            q = tokens.reshape(b, 64, 2, 8).transpose(1, 2)  # (B, 2 heads, 64, 8)
            return F.scaled_dot_product_attention(q, q, q)
        if self.kind == "sdpa_keywords":
            q = tokens.reshape(b, 64, 2, 8).transpose(1, 2)
            return F.scaled_dot_product_attention(query=q, key=q, value=q)
        if self.kind == "addmm_keywords":
            return torch.addmm(self.w[0], mat1=tokens.reshape(b * 64, 16), mat2=self.w)
        if self.kind == "einsum_implicit":  # "bchw,oc" is "bchw,oc->bhow"
            return torch.einsum("bchw,oc", f, self.w[:8])
        if self.kind == "mha_bias_kv":
            return self.attn_kv(tokens, tokens, tokens)[0]
        if self.kind == "encoder_layer":
            return self.encoder(tokens)
        if self.kind == "decoder_layer":
            return self.decoder(tokens, tokens)
        if self.kind == "transformer":
            return self.transformer(tokens, tokens)
        return self.attn(tokens, tokens, tokens)[0]


@pytest.mark.parametrize("kind, macs", [
    ("addmm", 64 * 16 * 16),  # a Linear written out: 64 rows x 16 out x 16 in
    ("baddbmm", 64 * 16 * 16),
    ("einsum", 16 * 8 * 8 * 8),  # every (c, h, w, o): 16 x 8 x 8 x 8
    ("sdpa", 2 * 64 * 64 * (8 + 8)),  # 2 heads x 64 queries x 64 keys x (8 for q k^T + 8 for the values)
    # projections 3 x 64 tokens x 16 x 16, attention 2 x 64 x 64 x 16, output projection 64 x 16 x 16
    ("mha", 3 * 64 * 16 * 16 + 2 * 64 * 64 * 16 + 64 * 16 * 16),
    # the same ops with their operands given by keyword, or the einsum's output left implicit
    ("sdpa_keywords", 2 * 64 * 64 * (8 + 8)), ("addmm_keywords", 64 * 16 * 16), ("einsum_implicit", 16 * 8 * 8 * 8),
    # the learnt key/value bias: one more key position, 65, for each query
    ("mha_bias_kv", 3 * 64 * 16 * 16 + 2 * 64 * 65 * 16 + 64 * 16 * 16),
    # an encoder layer: q, k, v and output projections 4 x 64 x 16 x 16, attention 2 x 64 x 64 x 16,
    # feed-forward 2 x 64 x 16 x 32; a decoder layer adds cross-attention on the memory (here the
    # tokens again): projections 4 x 64 x 16 x 16, attention 2 x 64 x 64 x 16
    ("encoder_layer", 4 * 64 * 16 * 16 + 2 * 64 * 64 * 16 + 2 * 64 * 16 * 32),
    ("decoder_layer", 2 * (4 * 64 * 16 * 16 + 2 * 64 * 64 * 16) + 2 * 64 * 16 * 32),
    # nn.Transformer: one encoder and one decoder layer, the decoder's memory the encoder's output
    ("transformer", 3 * (4 * 64 * 16 * 16 + 2 * 64 * 64 * 16) + 2 * (2 * 64 * 16 * 32)),
])
@pytest.mark.parametrize("batch", [1, 3])
def test_macs_of_products_written_out(kind, macs, batch):
    # they counted 0: only matmul/bmm/mm/@ and Linear were read (the README says linear layers and matmuls)
    a = rflint.analyze(_Products(kind), input_shapes=[(batch, 3, 8, 8)])
    assert a.macs == 8 * 8 * 16 * 3 + macs


class _TiedAcrossModules(nn.Module):
    """``tied`` shares ``first``'s weight (8 * 8 * 9 = 576), so only its bias (8) is its own."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.first = nn.Conv2d(8, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.tied = nn.Conv2d(8, 8, 3, padding=1)
        self.tied.weight = self.first.weight
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = self.c2(self.first(self.first(self.stem(x))))
        return self.fc(self.tied(x).mean((2, 3)))


def test_a_weight_tied_between_two_modules_counts_once():
    """Per layer: stem 3*8*9 + 8 = 224, first 576 + 8 = 584 at its first call and 0 at its second,
    c2 584, tied 8; with fc's 45 that is the model's 1,445 (the weight once).  At 4 px the inputs'
    r_min are 1, 3, 5, 7, 9: from first's second call on every conv is unproductive, a tail that
    holds 584 + 8 (tied's weight stays with first), what truncating it removes (it said 1,168)."""
    a = rflint.analyze(_TiedAcrossModules(), 4)
    assert {layer.name: layer.params for layer in a.layers} == {"stem": 224, "first": 584, "first@2": 0,
                                                                "c2": 584, "tied": 8}
    assert a.params == 224 + 584 + 584 + 8 + 45
    assert sum(layer.params for layer in a.layers) + 45 == a.params
    assert sum(a.node_params.values()) == a.params
    tail = lint(a).context.structure.tail
    assert [layer.name for layer in tail.parametric_layers] == ["first@2", "c2", "tied"]
    assert tail.params == 0 + 584 + 8


class _FoldedBlocks(nn.Module):
    """Four residual blocks that each add an unfold-fold of the map to it (VOLO's outlook attention)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.convs = nn.ModuleList(nn.Conv2d(4, 4, 3, padding=1) for _ in range(4))

    def forward(self, x):
        x = self.stem(x)
        for conv in self.convs:
            cols = F.unfold(x, 3, padding=1)
            x = conv(x) + F.fold(cols, x.shape[-2:], 3, padding=1)
        return x.mean((2, 3))


def test_a_warning_given_for_many_nodes_is_said_once():
    # a model with eight outlook-attention blocks printed the same F.fold note eight times; and it
    # said the layers after it were not checked, while the sums kept their RF and every conv was
    a = rflint.analyze(_FoldedBlocks(), 16)
    folds = [w for w in a.warnings if "F.fold" in w]
    assert folds == ["fold, fold_1 and 2 more: F.fold: the map it makes from columns (F.unfold's output) is not "
                     "tracked and counts as global: a layer that reads it alone is not checked, and where it is "
                     "added to another map, that map's RF is kept"]
    # the sums keep the convs' RF: 3, then + 2 per block (r_in of convs.3 is 3 + 3 * 2 = 9)
    assert [layer.r_in_min for layer in a.layers if layer.name.startswith("convs.")][-1] == (9, 9)


class _ModuleAndItsWeight(nn.Module):
    """``conv`` called as a module (3 * 3 * 9 + 3 = 84 params), then its weight and bias given to an
    F.conv2d (no params of its own), then ``out`` (3 * 8 * 9 + 8 = 224)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.out = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        x = F.conv2d(self.conv(x), self.conv.weight, self.conv.bias, padding=1)
        return self.out(x)


def test_a_modules_weight_given_to_a_functional_layer_counts_at_the_module():
    a = rflint.analyze(_ModuleAndItsWeight(), 16)
    assert [layer.params for layer in a.layers] == [84, 0, 224] and a.params == 84 + 224
    assert sum(a.node_params.values()) == a.params



class _AttentionThenConv(nn.Module):
    """A conv, self-attention over the 8x8 positions (global, spec §2), the tokens back into a map,
    a 3x3 conv on it: a head layer that still slides a window over 8x8 positions."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.gate = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        x = self.conv1(x)
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)
        t = torch.softmax(t @ t.transpose(1, 2), -1) @ t
        y = self.conv2(t.transpose(1, 2).reshape(b, c, h, w))
        return y * torch.sigmoid(self.gate(y.mean((2, 3), keepdim=True)))  # a 1x1 gate on 1x1: no window


def test_head_layers_that_slide_a_window_over_a_map_are_noted():
    # MaxViT at 224 px: 56 of 66 layers after its first window attention were head, and the report
    # said "No findings." with no word of them
    from rflint.engine.program import _SPATIAL_HEADS

    a = rflint.analyze(_AttentionThenConv(), 8)
    assert [(layer.name, layer.head) for layer in a.layers] == [("conv1", False), ("conv2", True), ("gate", True)]
    assert [w for w in a.warnings if _SPATIAL_HEADS in w] == [f"conv2: {_SPATIAL_HEADS}"]
    for name in ("se_resnet18", "cbam_resnet18", "densenet121"):  # gates and classifiers: 1x1 on 1x1, or no window
        assert not any(_SPATIAL_HEADS in w for w in rflint.analyze(f"zoo:{name}", 32).warnings), name
