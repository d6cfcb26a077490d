"""einops' rearrange / reduce / repeat: the pattern decides where each spatial axis goes
(rflint/engine/ops/einops_patterns.py).  Every number is worked out by hand from rf-semantics.md."""

from __future__ import annotations

from fractions import Fraction

import pytest
from torch import nn

import rflint
from rflint.engine.ops.einops_patterns import parse

einops = pytest.importorskip("einops")


class Between(nn.Module):
    """conv3 -> fn -> conv3 (channels in/out given), the thing under test in the middle."""

    def __init__(self, fn, c_in=3, c_mid=4, c_after=4, ndim=2):
        super().__init__()
        conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
        self.fn = fn
        self.first = conv[ndim](c_in, c_mid, 3, padding=1)
        self.last = conv[ndim if c_after > 0 else 1](c_after if c_after > 0 else -c_after, 4, 3, padding=1)

    def forward(self, x):
        return self.last(self.fn(self.first(x)))


def layers(model, size, channels=3):
    a = rflint.analyze(model, size, channels=channels)
    return a, {layer.name: layer for layer in a.layers}


def out_min(layer):
    return tuple(Fraction(v) for v in layer.r_out_min)


def test_channels_last_and_back_keeps_both_axes():
    # Swin's channels-last stage: 1x4x16x24 -> 1x16x24x4 (the shapes alone read as a size change);
    # first conv r 3, last conv 3 + 2 = 5 on both axes, and nothing is inferred from shapes
    def fn(x):
        return einops.rearrange(einops.rearrange(x, "n c h w -> n h w c"), "n h w c -> n c h w")

    a, L = layers(Between(fn), (16, 24))
    assert out_min(L["last"]) == (5, 5)
    assert a.warnings == []


def test_channels_last_slice_is_strided_on_the_right_axes():
    # C == H == W, so the shapes cannot tell the permute: x[:, ::2, ::2, :] in channels-last
    # strides H and W: j 2 on both, last conv 3 + 2*2 = 7 on both
    def fn(x):
        x = einops.rearrange(x, "n c h w -> n h w c")[:, ::2, ::2, :]
        return einops.rearrange(x, "n h w c -> n c h w")

    a, L = layers(Between(fn, c_mid=16, c_after=16), (16, 16))
    assert out_min(L["last"]) == (7, 7) and a.warnings == []


def test_space_to_depth_is_an_unshuffle():
    # (h 2) (w 2) into the channels: like PixelUnshuffle(2), r 3 + 1 = 4, j 2; conv3: 4 + 2*2 = 8
    def fn(x):
        return einops.rearrange(x, "b c (h p1) (w p2) -> b (p1 p2 c) h w", p1=2, p2=2)

    a, L = layers(Between(fn, c_after=16), (16, 16))
    assert out_min(L["last"]) == (8, 8)
    s2d = next(layer for layer in a.layers if layer.kind == "unshuffle")
    assert s2d.kernel == (2, 2) and s2d.stride == (2, 2) and out_min(s2d) == (4, 4)


def test_reduce_over_blocks_is_a_pool():
    # max over 2x3 blocks: r 3 + (1, 2) = (4, 5), j (2, 3); conv3: (4 + 4, 5 + 6) = (8, 11)
    def fn(x):
        return einops.reduce(x, "b c (h 2) (w 3) -> b c h w", "max")

    a, L = layers(Between(fn), (16, 18))
    assert out_min(L["last"]) == (8, 11)
    assert next(layer for layer in a.layers if layer.kind == "pool").stride == (2, 3)


def test_repeat_is_a_nearest_upsample():
    # each pixel twice per axis: j 1/2; conv3: 3 + 2*(1/2) = 4
    def fn(x):
        return einops.repeat(x, "b c h w -> b c (h 2) (w 2)")

    _, L = layers(Between(fn), (8, 8))
    assert out_min(L["last"]) == (4, 4)


def test_tokens_are_global():
    # ViT-style tokens merge h and w: every axis is gone, the tensor is global, the last conv a head
    def fn(x):
        tokens = einops.rearrange(x, "b c h w -> b (h w) c")
        return einops.rearrange(tokens, "b (h w) c -> b c h w", h=8)

    from rflint.engine.program import _SPATIAL_HEADS

    a, L = layers(Between(fn), (8, 8))  # (the last conv slides its window over a global map: noted)
    assert L["last"].head and a.warnings == [f"last: {_SPATIAL_HEADS}"]


def test_reducing_one_axis_keeps_the_other():
    # mean over h of 1x4x16x40: the t axis (model-input axis 1) goes on; conv1d: 3 + 2 = 5
    def fn(x):
        return einops.reduce(x, "b c h t -> b c t", "mean")

    _, L = layers(Between(fn, c_after=-4), (16, 40))
    assert out_min(L["last"]) == (5,) and L["last"].origins == (1,)


def test_ellipsis_round_trip_in_3d():
    def fn(x):
        return einops.rearrange(einops.rearrange(x, "b c ... -> b ... c"), "b ... c -> b c ...")

    a, L = layers(Between(fn, ndim=3), (6, 8, 10), channels=3)
    assert out_min(L["last"]) == (5, 5, 5) and a.warnings == []


@pytest.mark.parametrize("pattern, rank, left, right", [
    ("n c h w -> n h w c", 4, [["n"], ["c"], ["h"], ["w"]], [["n"], ["h"], ["w"], ["c"]]),
    ("b c ... -> b ... c", 5, [["b"], ["c"], ["...0"], ["...1"], ["...2"]],
     [["b"], ["...0"], ["...1"], ["...2"], ["c"]]),
    ("b c ... -> b (...) c", 4, [["b"], ["c"], ["...0"], ["...1"]], [["b"], ["...0", "...1"], ["c"]]),
    ("b 1 h w -> b h w", 4, [["b"], [], ["h"], ["w"]], [["b"], ["h"], ["w"]]),
])
def test_patterns_parse(pattern, rank, left, right):
    assert parse(pattern, rank) == (left, right)


@pytest.mark.parametrize("pattern, rank", [
    ("n c h w", 4),  # no arrow
    ("n c h -> n h c", 4),  # too few dims for the rank, no ellipsis
    ("n (c (h)) w -> n c h w", 3),  # nested group
    ("n c h w -> n h w c)", 4),  # unbalanced
])
def test_patterns_that_do_not_parse(pattern, rank):
    assert parse(pattern, rank) is None


def test_a_list_of_tensors_is_read_from_the_shapes():
    # a list of tensors in (einops stacks it): not read from the pattern; the shapes keep the layout
    def fn(x):
        return einops.rearrange([x, x], "s b c h w -> b (s c) h w")

    a, L = layers(Between(fn, c_after=8), (8, 8))
    assert out_min(L["last"]) == (5, 5)


def test_swin_unetr_keeps_both_axes_through_its_channels_last_stages():
    # monai's SwinUNETR at 64x64: patch embedding 2x2/2 (r 2, j 2), four patch mergings of
    # channels-last slices x[:, 0::2, 0::2, :] (j 32 on both axes at 2x2), the residual path keeps
    # r 2; encoder10's first 3x3 conv: 2 + 2*32 = 66 on both axes > 64, so its second conv is
    # unproductive.  The model runs only at multiples of 32 (its own check): clean from 96.
    nets = pytest.importorskip("monai.networks.nets")
    from rflint.report import build_report

    model = nets.SwinUNETR(in_channels=1, out_channels=2, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1),
                           window_size=4, feature_size=12, spatial_dims=2)  # its init calls .item(): not on meta
    a = rflint.analyze(model, (64, 64), channels=1)
    L = {layer.name: layer for layer in a.layers}
    assert tuple(L["encoder10.layer.conv2.conv"].r_in_min) == (66, 66)
    assert not any("changes the spatial size" in w for w in a.warnings)
    report = build_report(a)
    assert [(f.code, f.layer) for f in report.findings if f.code == "RF001"] == [("RF001", "encoder10.layer.conv2.conv")]
    assert report.min_clean_input == (96, 96)


def test_einops_layer_classes():
    # einops.layers.torch.Rearrange / Reduce trace into reshape and permute: the blocks split off by
    # the first reshape are a window of 2 with stride 2.  conv3 r 3 -> 4 (j 2) -> conv3: 4 + 4 = 8
    from einops.layers.torch import Rearrange, Reduce

    for middle, c_after in ((Rearrange("b c (h p1) (w p2) -> b (c p1 p2) h w", p1=2, p2=2), 16),
                            (Reduce("b c (h p1) (w p2) -> b c h w", "max", p1=2, p2=2), 4)):
        net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), middle, nn.Conv2d(c_after, 4, 3, padding=1))
        _, L = layers(net, (16, 16))
        assert out_min(L["2"]) == (8, 8) and not L["2"].head


def test_depth_to_space_is_a_pixel_shuffle():
    # "b (c p1 p2) h w -> b c (h p1) (w p2)": like PixelShuffle(2), (r, j/2): conv3 r 3 stays 3 with
    # j 1/2, and conv3 after it 3 + 2*(1/2) = 4.  It was global (the block's offsets come from the
    # channels, which the rule took for another input axis)
    def fn(x):
        return einops.rearrange(x, "b (c p1 p2) h w -> b c (h p1) (w p2)", p1=2, p2=2)

    _, L = layers(Between(fn, c_mid=16, c_after=4), (8, 8))
    assert out_min(L["last"]) == (4, 4) and not L["last"].head
