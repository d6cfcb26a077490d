"""MAC counts (costs.py: multiply-accumulates per sample) in cases mutation testing found no test
pinned down; by hand in each comment."""

import torch
import torch.nn.functional as F
from torch import nn

import rflint


def macs_by_layer(a):
    return {layer.name: layer.macs for layer in a.layers}


def test_macs_of_a_transposed_conv_count_its_input():
    # mutant costs.macs_rule: a transposed conv's MACs counted on its output.
    # Every input element is multiplied by out_channels * k*k weights: 4*8*8 = 256 inputs x 8 x 9
    # = 18432 (not its 8 x 17x17 = 2312 outputs x 72 = 166464)
    net = nn.Sequential(nn.ConvTranspose2d(3, 4, 1), nn.ConvTranspose2d(4, 8, 3, stride=2))
    a = rflint.analyze(net, 8)
    assert macs_by_layer(a) == {"0": 3 * 64 * 4, "1": 18432}  # "0": 3*8*8 inputs x 4 outputs x 1 tap


def test_macs_of_grouped_and_depthwise_convs():
    # mutant costs.macs_rule: in_channels instead of in_channels // groups.
    # Output elements x (in_channels / groups) x k*k, 8x8 maps (padding 1):
    # depthwise (8 groups): 8*64 = 512 x 1 x 9 = 4608; 2 groups: 512 x 4 x 9 = 18432; dense 512 x 8 x 9 = 36864
    net = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.Conv2d(8, 8, 3, padding=1, groups=2),
                        nn.Conv2d(8, 8, 3, padding=1))
    a = rflint.analyze(net, 8, channels=8)
    assert macs_by_layer(a) == {"0": 4608, "1": 18432, "2": 36864}
    assert a.macs == 4608 + 18432 + 36864


class _FunctionalLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)  # 2*4*4 = 32 outputs x 3 = 96
        self.w = nn.Parameter(torch.randn(10, 32))

    def forward(self, x):
        return F.linear(self.conv(x).flatten(1), self.w)


def test_macs_of_a_functional_linear_count_its_in_features():
    # mutant costs.macs_rule: F.linear's per-output count read off the weight's out_features.
    # 10 outputs x 32 in_features = 320 (weight (out=10, in=32)); plus the conv's 96
    a = rflint.analyze(_FunctionalLinear(), 4)
    assert a.macs == 96 + 320


class _AttentionWithNarrowValues(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 1)  # 16*8*8 = 1024 outputs x 3 = 3072
        self.v = nn.Conv2d(3, 8, 1)  # 8*64 = 512 x 3 = 1536

    def forward(self, x):
        b = x.shape[0]
        q = self.conv(x).flatten(2).transpose(1, 2).reshape(b, 64, 2, 8).transpose(1, 2)  # (B, 2, 64, 8)
        v = self.v(x).flatten(2).transpose(1, 2).reshape(b, 64, 2, 4).transpose(1, 2)  # (B, 2, 64, 4)
        return F.scaled_dot_product_attention(q, q, v)


def test_macs_of_attention_whose_values_are_narrower_than_its_keys():
    # mutant costs._attention_rule: (E + Ev) -> 2E.
    # 2 heads x 64 queries x 64 keys x (E 8 for q k^T + Ev 4 for the values) = 98304
    a = rflint.analyze(_AttentionWithNarrowValues(), 8)
    assert a.macs == 3072 + 1536 + 2 * 64 * 64 * (8 + 4)


class _BroadcastEinsum(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 1)  # 16*8*8 = 1024 outputs x 3 = 3072
        self.w = nn.Parameter(torch.randn(1, 8, 8))

    def forward(self, x):
        f = self.conv(x).reshape(16, 8, 8)  # 16 matrices of 8x8 (batch 1)
        return torch.einsum("bij,bjk->bik", f, self.w)  # w broadcast over b


def test_macs_of_an_einsum_with_a_broadcast_operand():
    # mutant costs._einsum_rule: a letter's size is the last operand's (1, broadcast) not the largest.
    # one MAC per (b, i, j, k): 16 x 8 x 8 x 8 = 8192
    a = rflint.analyze(_BroadcastEinsum(), 8)
    assert a.macs == 3072 + 16 * 8 * 8 * 8


class _DecoderOnAShorterMemory(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 1)  # 16*8*8 = 1024 outputs x 3 = 3072
        self.decoder = nn.TransformerDecoderLayer(16, 2, 32, dropout=0.0, batch_first=True)

    def forward(self, x):
        f = self.conv(x)
        tokens = f.flatten(2).transpose(1, 2)  # (B, 64, 16)
        memory = F.avg_pool2d(f, 2).flatten(2).transpose(1, 2)  # (B, 16, 16)
        return self.decoder(tokens, memory)


def test_macs_of_a_decoder_layer_with_a_memory_of_another_length():
    # mutant costs._transformer_layer: the cross-attention's key/value projections on the target's
    # tokens instead of the memory's.  e = 16, 64 target tokens, 16 memory tokens, feed-forward 32:
    # self-attention 4*64*16*16 + 2*64*64*16 = 65536 + 131072 = 196608;
    # cross-attention: q and output projections 2*64*16*16 = 32768, k and v projections of the memory
    # 2*16*16*16 = 8192, attention 2*64*16*16 = 32768: 73728;  feed-forward 2*64*16*32 = 65536
    a = rflint.analyze(_DecoderOnAShorterMemory(), 8)
    assert a.macs == 3072 + 196608 + 73728 + 65536


class _Recurrent(nn.Module):
    """A 3-tap Conv1d (2 -> 6 channels), then a recurrent layer over its 10 steps."""

    def __init__(self, rnn):
        super().__init__()
        self.conv, self.rnn = nn.Conv1d(2, 6, 3, padding=1), rnn

    def forward(self, x):
        h = self.conv(x)  # (N, 6, T)
        return self.rnn(h.transpose(1, 2) if self.rnn.batch_first else h.permute(2, 0, 1))[0].mean()


def test_macs_of_recurrent_layers_count_their_gates():
    # They counted 0 (a CRNN's GRU, Demucs' BLSTM: 2.2 of its 6.9 GMACs).  Per step, direction and
    # layer: gates * H * (I_l + H_out), + H * proj_size for an LSTM with a projection; I_l = I for
    # the first layer, H_out * directions after it.  T = 10 steps; the conv: 60 outputs x 2 x 3 = 360.
    cases = [
        (nn.LSTM(6, 5, batch_first=True), 4 * 5 * (6 + 5) * 10),  # 2200
        (nn.RNN(6, 5), 1 * 5 * (6 + 5) * 10),  # 550, sequence-first
        # 2 layers, both ways: (3*5*(6+5) + 3*5*(10+5)) * 2 * 10 = (165 + 225) * 20
        (nn.GRU(6, 5, num_layers=2, bidirectional=True), 7800),
        # proj_size 3: layer 0 4*5*(6+3) + 5*3 = 195, layer 1 4*5*(6+3) + 15 = 195 (its input 3 * 2):
        # 390 * 2 * 10
        (nn.LSTM(6, 5, num_layers=2, bidirectional=True, proj_size=3, batch_first=True), 7800),
    ]
    for rnn, macs in cases:
        a = rflint.analyze(_Recurrent(rnn), input_shapes=[(2, 2, 10)])  # a batch of 2: per sample
        assert a.node_macs["rnn"] == macs, rnn
        assert a.macs == 360 + macs


# Mutation testing, third round (2026-12-05): params and MACs per node; each test names the mutant it kills.

class _GroupedUpConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(3, 4, 2, stride=2)  # 8x8 -> 4x4
        self.up = nn.ConvTranspose2d(4, 8, 3, stride=2, groups=2)  # 4x4 -> (4-1)*2 + 3 = 9x9

    def forward(self, x):
        return self.up(self.down(x))


def test_macs_of_a_grouped_transposed_conv():
    # mutant costs.macs_rule: a transposed conv's `out_channels // groups` -> `out_channels` (m01).
    # down: 4 x 4 x 4 outputs x (3 in x 2 x 2) = 64 x 12 = 768.  up: each of its 4 x 4 x 4 = 64 input
    # elements feeds the 8 / 2 = 4 output channels of its group at 3 x 3 positions: 64 x 4 x 9 = 2304
    a = rflint.analyze(_GroupedUpConv(), (8, 8))
    assert a.node_macs["down"] == 768
    assert a.node_macs["up"] == 2304
    assert a.macs == 768 + 2304


class _FunctionalUpConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(3, 4, 2, stride=2)
        self.w = nn.Parameter(torch.randn(4, 8, 3, 3))  # (in, out, k, k), as conv_transpose2d takes it

    def forward(self, x):
        return F.conv_transpose2d(self.down(x), self.w, stride=2)


def test_macs_of_a_functional_transposed_conv_count_its_input():
    # mutant costs.macs_rule: F.conv_transpose2d counted on its output (m07).  Its input is 4 x 4 x 4
    # = 64 elements, each multiplied into 8 x 3 x 3 = 72 outputs: 4608 (its 8 x 9 x 9 = 648 outputs
    # x 72 would be 46656)
    a = rflint.analyze(_FunctionalUpConv(), (8, 8))
    up = next(name for name in a.node_macs if name.startswith("conv_transpose"))
    assert a.node_macs[up] == 4608
    assert a.macs == 768 + 4608


class _AddmmHead(nn.Module):
    """A 1x1 conv to 16 channels, the mean over the map, then torch.addmm to 4 outputs."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 1)
        self.w, self.b = nn.Parameter(torch.randn(16, 4)), nn.Parameter(torch.zeros(4))

    def forward(self, x):
        return torch.addmm(self.b, self.conv(x).mean((2, 3)), self.w)


def test_macs_of_an_addmm_whose_output_is_narrower_than_its_input():
    # mutant costs.macs_rule: addmm's first factor read from argument 2 (mat2, the weight) (m09).
    # conv: 8 x 8 x 16 outputs x 3 = 3072.  addmm: (1, 16) @ (16, 4): 4 outputs x 16 = 64
    # (with the weight's last dim, 4, it would be 16)
    a = rflint.analyze(_AddmmHead(), (8, 8))
    addmm = next(name for name in a.node_macs if name.startswith("addmm"))
    assert a.node_macs[addmm] == 64
    assert a.macs == 3072 + 64


class _Attend(nn.Module):
    """Tokens (L, N, E) sequence-first: 64 positions of a 16-channel 8x8 map, batch 1; the first
    16 of them query all 64 through nn.MultiheadAttention(16, 2), batch_first False."""

    def __init__(self, zero_attn: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 1)
        self.attn = nn.MultiheadAttention(16, 2, add_zero_attn=zero_attn)

    def forward(self, x):
        tokens = self.conv(x).flatten(2).permute(2, 0, 1)  # (64, 1, 16)
        return self.attn(tokens[:16], tokens, tokens)[0]


def test_macs_of_attention_with_fewer_queries_than_keys():
    # mutant costs._multihead_attention: the output projection on the keys' tokens (m15).
    # projections: q 16 x 16 x 16, k and v 64 x 16 x 16 each; attention: 16 queries x 64 keys x 16
    # for q k^T and again for the values: 2 x 16 x 64 x 16; output projection 16 x 16 x 16
    a = rflint.analyze(_Attend(), (8, 8))
    expected = (16 + 64 + 64) * 16 * 16 + 2 * 16 * 64 * 16 + 16 * 16 * 16
    assert a.node_macs["attn"] == expected
    assert a.macs == 64 * 16 * 3 + expected


def test_macs_of_attention_with_a_zero_attention_position():
    # mutant costs._multihead_attention without add_zero_attn's extra key (m14): the zero key and
    # value appended to the 64 make 65 positions for each query: attention 2 x 16 x 65 x 16
    a = rflint.analyze(_Attend(zero_attn=True), (8, 8))
    assert a.node_macs["attn"] == (16 + 64 + 64) * 16 * 16 + 2 * 16 * 65 * 16 + 16 * 16 * 16


def test_a_parameter_registered_under_two_names_counts_once():
    # mutant costs._own_params without the dedup of a two-parameter leaf whose two are one tensor
    # (m24).  A 3x3 conv without bias, 3 -> 4 channels: 4 x 3 x 3 x 3 = 108 weights, also reachable
    # as conv.alias; the layer and the model hold 108
    conv = nn.Conv2d(3, 4, 3, bias=False)
    conv.alias = conv.weight
    a = rflint.analyze(nn.Sequential(conv), (8, 8))
    assert a.params == 108
    assert a.layer("0").params == 108


def _swin_attention_macs(side, window):
    import sys, os  # noqa: E401  (the suite's torchvision stand-in, tests/swin_like.py)
    sys.path.insert(0, os.path.join(os.path.dirname(rflint.__file__), os.pardir, "tests"))
    from swin_like import WindowAttention

    class _Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed, self.attn = nn.Conv2d(3, 8, 1), WindowAttention(8, window)

        def forward(self, x):
            return self.attn(self.embed(x).permute(0, 2, 3, 1))

    a = rflint.analyze(_Net(), (side, side))
    return {k: v for k, v in a.node_macs.items() if k.startswith("shifted_window_attention")}


def test_macs_of_window_attention_on_a_map_padded_to_whole_windows():
    # mutants costs._window_attention_rule: positions of the unpadded map (m20); one N C instead of
    # two for the attention (m21).  A 6x6 map of 8 channels, windows of 4x4 (N = 16): padded to 8x8 =
    # 64 positions, each with the qkv projection (24 x 8 = 192 weights), the output projection
    # (8 x 8 = 64) and q k^T plus scores x v within its window (2 x 16 x 8 = 256): 64 x 512
    assert list(_swin_attention_macs(6, 4).values()) == [64 * (192 + 64 + 256)]


class _ScaledBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)  # 16 weights + 4 biases
        self.gamma = nn.Parameter(torch.ones(4))  # the block's own parameter, not a leaf's

    def forward(self, x):
        return x + self.gamma[:, None, None] * self.conv(x)


class _SharedScale(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)  # 4 x 3 x 3 x 3 + 4 = 112
        self.b1, self.b2 = _ScaledBlock(), _ScaledBlock()
        self.b2.gamma = self.b1.gamma  # one layer scale for both blocks

    def forward(self, x):
        return self.b2(self.b1(self.stem(x)))


def test_a_blocks_own_parameter_shared_by_two_blocks_counts_once():
    # mutant costs.count_params counting a non-leaf module's own parameters without checking they
    # were seen (m26).  112 (stem) + 20 + 20 (the two 1x1 convs) + 4 (the one gamma) = 156
    assert rflint.analyze(_SharedScale(), (8, 8)).params == 156
