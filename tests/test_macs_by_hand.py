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
