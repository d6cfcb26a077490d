"""The clean-size search and the replayed RF pass in cases mutation testing found no test pinned
down.  Hand-worked numbers in the comments."""

from torch import nn

import rflint
from rflint.engine.program import input_needs, needs_of, probe
from rflint.engine.surgery import stride_one
from rflint.report.clean_size import smallest_clean_input


def _adaptive_to_4():
    """conv 3x3, adaptive average pool to 4x4, one 3x3 conv, global pool, linear."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.AdaptiveAvgPool2d(4), nn.Conv2d(8, 8, 3, padding=1),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))


def test_of_the_clean_sizes_a_swinging_search_meets_the_smallest_is_kept():
    # mutant clean_size._search keeping the larger clean size (`<` -> `>`).
    # Adaptive pool n -> 4: window max_i(ceil((i+1)n/4) - floor(i n/4)); the conv after it reads
    # 3 + (window - 1) = 2 + window (conv1 gives r 3, j 1); the pool itself reads 3.
    # n = 9: windows 3, 3, 3, 3 -> the conv reads 5: need 5.  n = 5: windows 2 (2-0, 3-1, 4-2, 5-3)
    # -> reads 4 <= 5: clean.  n = 4: window 1 -> reads 3 <= 4: clean.  n = 3: windows 1, 2, 2, 1
    # (ceil(3/4)-0, ceil(6/4)-0, ceil(9/4)-1, 3-2) -> reads 4 > 3: not clean.  Smallest clean: 4
    a = rflint.analyze(_adaptive_to_4(), 9)
    assert [layer.r_in_min[0] for layer in a.layers][:3] == [1, 3, 5]
    for n, reads in ((5, 4), (4, 3), (3, 4)):
        assert rflint.analyze(_adaptive_to_4(), n).layers[2].r_in_min == (reads, reads)
    assert smallest_clean_input(a) == (4, 4)


class _PoolHead(nn.Module):
    """stem 3x3/2, max pool 2, four blocks (3x3 + 1x1 shortcut, strides 1, 2, 1, 2), AvgPool2d(2),
    mean, linear.  At 32 px the last map is 2x2: the AvgPool2d(2) reads all of it (global pooling,
    no RF layer); with the stem at stride 1 the map is 4x4 and the pool is a 2x2 window again."""

    def __init__(self):
        super().__init__()
        self.stem, self.p = nn.Conv2d(3, 4, 3, 2, 1), nn.MaxPool2d(2)
        self.b = nn.ModuleList([nn.Conv2d(4, 4, 3, s, 1) for s in (1, 2, 1, 2)])
        self.sc = nn.ModuleList([nn.Conv2d(4, 4, 1, s) for s in (1, 2, 1, 2)])
        self.avg, self.fc = nn.AvgPool2d(2), nn.Linear(4, 2)

    def forward(self, x):
        x = self.p(self.stem(x))
        for b, c in zip(self.b, self.sc):
            x = b(x) + c(x)
        return self.fc(self.avg(x).mean((2, 3)))


def test_a_stem_replay_runs_a_pool_whose_one_pixel_output_grew():
    # mutant replay.replay: a pool step reused when its output has no one-pixel axis here, though it
    # had one in the base.  Stem at stride 1: stem (3, j1); max pool 2: (4, j2); blocks: r_min stays 4
    # (the 1x1 shortcuts), jumps 2, 4, 4, 8.  The AvgPool2d(2) then reads r_min 4 on a 4x4 map and is
    # an RF layer: (4 + 1*8, j16) = 12.  The replayed probe must say what the RF pass from scratch says
    prepared = rflint.prepare(_PoolHead())
    base = prepared.at((32, 32))
    assert "avg" not in base.layer_by_node  # at 32 px: global pooling
    replace = stride_one(base, [base.layer("stem")])
    shapes = ((1, 3, 32, 32),)
    full = probe(prepared, shapes, replace)
    replayed = probe(prepared, shapes, replace, base=base)
    avg = next(node for node in full.kernels if node.name == "avg")
    assert list(full.layer_r_min())[-1] == (avg, (4, 4), (0, 1))
    assert full.rf(avg).axes[0].r_min == 12
    assert replayed.rfs == full.rfs
    assert list(replayed.layer_r_min()) == list(full.layer_r_min())


class _WidthOnly(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv1d(3, 4, 5, padding=2), nn.Linear(4, 2)

    def forward(self, x):  # (B, 3, H, W): the mean over H leaves W, which the 5-tap conv reads
        return self.fc(self.conv(x.mean(2)).mean(2))


def test_the_rf_program_alone_gives_the_needs_of_a_model_with_an_axis_no_layer_reads():
    # mutant program.input_needs starting the needs at 0.  H: no RF layer reads it, so the smallest
    # input size no layer's input r_min exceeds is 1 (any size); W: the conv reads r_min 1 -> 1
    prepared = rflint.prepare(_WidthOnly())
    a = prepared.at(shapes=[(1, 3, 8, 16)])  # (its first conv is 1-D: the size is given as a full shape)
    assert a.layer("conv").r_in_min == (1,)
    assert needs_of(a) == (1, 1)
    assert input_needs(prepared, ((1, 3, 8, 16),)) == (1, 1)


class _Groups96(nn.Module):
    """Five 3x3 convs, then W read in groups of 96 (reshape (B, C, H, W/96, 96), mean over H and the
    groups, Linear(4 * 96)): runs at any H and at W a multiple of 96 only."""

    def __init__(self):
        super().__init__()
        self.convs = nn.Sequential(*[nn.Conv2d(3 if i == 0 else 4, 4, 3, padding=1) for i in range(5)])
        self.fc = nn.Linear(4 * 96, 2)

    def forward(self, x):
        h = self.convs(x)
        b, c, hh, ww = h.shape
        return self.fc(h.reshape(b, c, hh, ww // 96, 96).mean((2, 3)).flatten(1))


def test_the_clean_size_search_keeps_the_axes_it_can_shrink_when_another_cannot_move():
    # mutant clean_size._per_axis searching past the analysed size (reach None).  The convs read
    # r_min 1, 3, 5, 7, 9: the needs are 9x9.  H runs at 9; W = 9 does not run (not a multiple of 96)
    # and no size from 9 up to the 96 analysed is one, so W stays 96: the smallest clean input is 9x96
    a = rflint.analyze(_Groups96(), (16, 96))
    assert needs_of(a) == (9, 9)
    assert smallest_clean_input(a) == (9, 96)
