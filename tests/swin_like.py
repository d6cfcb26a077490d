"""A small Swin written as torchvision writes it: its window attention and patch merging are
functions ``torch.fx.wrap`` keeps whole, known to rflint by module and name (engine/ops/library.py).
The functions here are this test's own (plain window attention, no shift); they carry torchvision's
module name so that rflint takes them for torchvision's, which cannot be imported beside the torch
of this project's tests."""

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

TORCHVISION_SWIN = "torchvision.models.swin_transformer"


def shifted_window_attention(input, qkv_weight, proj_weight, relative_position_bias, window_size, num_heads,
                             shift_size, attention_dropout=0.0, dropout=0.0, qkv_bias=None, proj_bias=None,
                             logit_scale=None, training=True):
    b, h, w, c = input.shape
    wh, ww = window_size
    x = F.pad(input, (0, 0, 0, (ww - w % ww) % ww, 0, (wh - h % wh) % wh))
    ph, pw = x.shape[1:3]
    x = x.view(b, ph // wh, wh, pw // ww, ww, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, wh * ww, c)
    q, k, v = F.linear(x, qkv_weight, qkv_bias).chunk(3, dim=-1)
    x = F.linear((q @ k.transpose(-2, -1)).softmax(-1) @ v, proj_weight, proj_bias)
    x = x.view(b, ph // wh, pw // ww, wh, ww, c).permute(0, 1, 3, 2, 4, 5).reshape(b, ph, pw, c)
    return x[:, :h, :w].contiguous()


def _patch_merging_pad(x):
    h, w = x.shape[-3:-1]
    x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
    return torch.cat([x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :], x[..., 0::2, 1::2, :], x[..., 1::2, 1::2, :]], -1)


for _fn in (shifted_window_attention, _patch_merging_pad):
    _fn.__module__ = TORCHVISION_SWIN
torch.fx.wrap("shifted_window_attention")
torch.fx.wrap("_patch_merging_pad")


class WindowAttention(nn.Module):
    def __init__(self, c, window):
        super().__init__()
        self.window = [window, window]
        self.qkv, self.proj = nn.Linear(c, 3 * c), nn.Linear(c, c)

    def forward(self, x):
        return shifted_window_attention(x, self.qkv.weight, self.proj.weight, None, self.window, 1, [0, 0],
                                        qkv_bias=self.qkv.bias, proj_bias=self.proj.bias)


class Block(nn.Module):
    def __init__(self, c, window):
        super().__init__()
        self.norm, self.attn = nn.LayerNorm(c), WindowAttention(c, window)

    def forward(self, x):
        return x + self.attn(self.norm(x))


class SwinLike(nn.Module):
    """Patch embedding 4x4 /4 to 8 channels, a block of window attention (window 4), patch merging
    (2x2 into the channels, a Linear to 16), a second block, pooled into a classifier."""

    def __init__(self, window=4):
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 4, stride=4)
        self.block1 = Block(8, window)
        self.reduction = nn.Linear(32, 16, bias=False)
        self.block2 = Block(16, window)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = self.block1(self.embed(x).permute(0, 2, 3, 1))
        x = self.block2(self.reduction(_patch_merging_pad(x)))
        return self.head(x.mean((1, 2)))
