"""Functions torch.fx.wrap keeps whole: the known ones of torchvision (by module and name), and how
any other is read (engine/ops/library.py)."""

import pytest
import torch
import torch.fx
from torch import nn

import rflint
from rflint.report import build_report
from rflint.report.text import layer_table
from swin_like import SwinLike


def test_torchvision_swin_functions_are_read_as_torchvision_writes_them():
    """By hand at 32 px: the 4x4 /4 embedding r 4, j 4; the patch merging a window of 2 with stride
    2 on H and W of the channels-last map: 4 + 1*4 = 8.  The window attention is attention (spec §2:
    global), added to the map it read: modulation, so r stays.  MACs: embedding 64 positions x 8 x
    48; attention per position of the padded map qkv + proj weights + 2 N C (N = 16 positions per
    window): stage 1 64 x (192 + 64 + 256), stage 2 16 x (768 + 256 + 512); the reduction 16 x 32 x
    16; the head 16 x 10."""
    a = rflint.analyze(SwinLike(), 32)
    assert [(layer.name, layer.kernel[:2], layer.stride[:2], layer.r_out_min[:2]) for layer in a.layers] == [
        ("embed", (4, 4), (4, 4), (4, 4)), ("_patch_merging_pad", (2, 2), (2, 2), (8, 8))]
    assert a.final_r_max == (8, 8)
    assert a.macs == 64 * 8 * 48 + 64 * (192 + 64 + 256) + 16 * 32 * 16 + 16 * (768 + 256 + 512) + 16 * 10
    assert not a.warnings  # known functions: nothing to warn about
    report = build_report(a)
    assert report.findings == []  # every unit has the attention's whole-window content: no RF005
    row = next(r for r in layer_table(report).rows if r[0] == "_patch_merging_pad")
    assert row[3:6] == ("2x2 /2x2", "4x4", "4")  # the channels-last map's H and W, not W and the channels


def test_swin_window_attention_macs_count_the_padded_windows():
    # at 40 px the stage-1 map is 10x10, padded to 12x12 for windows of 4: 144 positions of
    # (192 + 64 + 256); stage 2 5x5 -> 8x8: 64 of (768 + 256 + 512); the embedding 100 x 8 x 48,
    # the reduction 25 x 32 x 16 (the merge pads 10x10 to even: 5x5), the head 10 x 16
    a = rflint.analyze(SwinLike(), 40)
    assert a.macs == 100 * 8 * 48 + 144 * 512 + 25 * 32 * 16 + 64 * 1536 + 160


def halve_channels_last(x):
    """(B, H, W, C) -> (B, H/2, W/2, 4C), written out so that fx keeps it whole."""
    return torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)


def scaled(x):
    return x * 2


torch.fx.wrap("halve_channels_last")
torch.fx.wrap("scaled")


class OpaqueCalls(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(16, 4, 3, padding=1)

    def forward(self, x):
        x = scaled(self.c1(x)).permute(0, 2, 3, 1)
        return self.c2(halve_channels_last(x).permute(0, 3, 1, 2))


def test_an_unknown_wrapped_function_is_read_from_its_shapes_with_a_warning():
    """A project's own fx.wrap-ed functions: one that keeps the map is elementwise (as before) but
    now says so, since it may mix positions; one that halves a channels-last map is a stride of 2
    on H and W (it was read on W and the channels, H kept its jump).  By hand: c1 r 3, j 1; the
    halving j 2; c2 3 + 2*2 = 7 on both axes."""
    a = rflint.analyze(OpaqueCalls(), 32)
    assert a.layer("c2").r_out_min == (7, 7) and a.final_r_max == (7, 7)
    assert [w.split(":")[0] for w in a.warnings] == ["scaled", "halve_channels_last"]
    assert "torch.fx.wrap keeps whole" in a.warnings[0] and "stride 2x2 from the shapes" in a.warnings[1]


def test_a_wrapped_function_that_changes_its_argument_lists_runs():
    # torchvision's Swin3D: _get_window_and_shift_size shrinks the window list it is handed, which
    # fx's read-only argument lists refused ("'immutable_list' object does not support mutation")
    a = rflint.analyze(ClampedWindow(), 8)
    assert a.layer("conv").r_out_min == (3, 3)


def clamp_window(window, size):
    for i in range(2):
        if size[i] < window[i]:
            window[i] = size[i]
    return window


torch.fx.wrap("clamp_window")


class ClampedWindow(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.window = nn.Conv2d(3, 4, 3), [16, 16]

    def forward(self, x):
        window = clamp_window(list(self.window), [x.shape[2], x.shape[3]])
        return self.conv(x)[..., : window[0], : window[1]]


def test_torchvision_swin_itself():
    """Where torchvision imports (not beside this project's torch): Swin-T at 224 px, the patch
    embedding 4 and three merges: 32 px; 4.49 GMACs, torchvision's own figure."""
    tv = pytest.importorskip("torchvision")
    a = rflint.analyze(tv.models.swin_t(weights=None), 224)
    assert a.final_r_max == (32, 32) and abs(a.macs / 4.49e9 - 1) < 0.005 and not a.warnings
