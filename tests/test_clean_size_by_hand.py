"""The clean-size search and the replayed RF pass in cases mutation testing found no test pinned
down.  Hand-worked numbers in the comments."""

from torch import nn

import rflint
from rflint.engine.program import input_needs, needs_of, probe
from rflint.engine.surgery import stride_one
from rflint.report.clean_size import _rounded_up, smallest_clean_input


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


# Mutation testing, third round (2026-12-05): the clean-size search; each test names the mutant it kills.

def _spy_trials(a):
    """Record every size the search re-checks (Prepared.try_needs), in order."""
    tried = []
    real = a.prepared.try_needs

    def spy(size, base=None):
        tried.append(tuple(size))
        return real(size, base=base)

    a.prepared.try_needs = spy
    return tried


class _EvenOnly(nn.Module):
    """Two 3x3 convs, a 3x3/2 average pool (padding 1) and a x2 nearest upsample added back to
    the map, a last 3x3 conv: runs where H and W are even only (pool to ceil(n/2), up to 2 ceil(n/2))."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.c3 = (nn.Conv2d(3 if i == 0 else 4, 4, 3, padding=1) for i in range(3))
        self.pool, self.up = nn.AvgPool2d(3, 2, 1), nn.Upsample(scale_factor=2)

    def forward(self, x):
        h = self.c2(self.c1(x))
        return self.c3(h + self.up(self.pool(h)))


def test_a_raised_clean_size_ends_the_search_at_once():
    # mutant clean_size._search going on after a raised size that runs and is clean (c04: the
    # `size != candidate` early return dropped: the same two trials again for every round).
    # r_in_min: c1 1, c2 3, pool 5 (-> 5 + 2 = 7, j 2), up 7, c3 min(5, 7) = 5: the needs are 7x7.
    # 7 is odd (the join fails); 8 runs, and there the needs are 7 <= 8: clean.  Two trials, 7 then 8
    a = rflint.analyze(_EvenOnly(), (16, 16))
    assert needs_of(a) == (7, 7)
    tried = _spy_trials(a)
    assert smallest_clean_input(a) == (8, 8)
    assert tried == [(7, 7), (8, 8)]


def test_a_size_that_needs_itself_is_tried_once():
    # mutant clean_size._search without its `candidate == size` stop (c10: the size is re-checked
    # every round until the rounds run out).  Three 3x3 convs: r_in_min 1, 3, 5 -> needs 5x5; at 5x5
    # they are 5x5 again (no layer depends on the size): one trial
    net = nn.Sequential(*(nn.Conv2d(3 if i == 0 else 4, 4, 3, padding=1) for i in range(3)))
    a = rflint.analyze(net, (16, 16))
    assert needs_of(a) == (5, 5)
    tried = _spy_trials(a)
    assert smallest_clean_input(a) == (5, 5)
    assert tried == [(5, 5)]


class _EvenWidth(nn.Module):
    """3x3, 3x3, 1x1 convs; the mean over H; a 1-tap Conv1d over W; an AvgPool1d(1, 2) and a x2
    upsample added back (runs where W is even, any H); the mean over W; a Linear."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.c3 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 1)
        self.w = nn.Conv1d(4, 4, 1)
        self.pool, self.up = nn.AvgPool1d(1, 2), nn.Upsample(scale_factor=2)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        m = self.w(self.c3(self.c2(self.c1(x))).mean(2))
        return self.fc((m + self.up(self.pool(m))).mean(2))


def test_layers_over_one_axis_have_their_axes_raised_one_at_a_time():
    # mutant clean_size._uneven ignoring layers whose axes are not the map's (c11: `layer.origins
    # != axes` dropped; the needs are square and every layer's kernel, stride and padding are alike
    # per axis, so both axes were raised together to 6x6).
    # r_in_min: c1 1, c2 3, c3 5 (H and W); w, pool, up 5 on W alone: needs 5x5.  5x5 fails (W odd);
    # H alone at 5 runs (5x16), W alone from 5: 16x6 runs; together 5x6 runs and needs 5x5: clean
    a = rflint.analyze(_EvenWidth(), (16, 16))
    assert a.layer("w").origins == (1,)
    assert needs_of(a) == (5, 5)
    assert smallest_clean_input(a) == (5, 6)


def test_a_size_already_a_multiple_is_not_raised():
    # mutant clean_size._rounded_up as (s // m + 1) * m (c09): the next multiple of 32 from 64 is 64
    # itself; from 20 it is 32; an axis not in ``axes`` stays
    assert _rounded_up((64, 20), 32) == (64, 32)
    assert _rounded_up((64, 20), 32, axes=(0,)) == (64, 20)
    assert _rounded_up((65, 20), 32, axes=(0,)) == (96, 20)


class _CroppedBy8(nn.Module):
    """A padded 3x3 conv, the map cropped by 8 units at the top and left, a 3x3 conv without padding."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3)

    def forward(self, x):
        return self.c2(self.c1(x)[..., 8:, 8:])


def test_the_bisection_starts_at_the_last_size_that_failed():
    # mutant clean_size._raised handing _smallest_running the offset after the last pixel step as
    # the one known to fail (c23: `d - 1` -> `d`), so the size right after the pixel steps was never
    # tried.  r_in_min: c1 1, c2 3: needs 3x3.  The crop leaves n - 8 units, c2 needs 3: the model runs
    # from n = 11 on (below, the map is empty or too small: a vanishing map, so running is monotone).
    # The pixel steps try 4 .. 10 (3 + 1 .. 3 + 7: max_steps 8), all fail; the smallest that runs is
    # the next one, 11, which is clean (needs 3 <= 11)
    a = rflint.analyze(_CroppedBy8(), (32, 32))
    assert needs_of(a) == (3, 3)
    assert smallest_clean_input(a) == (11, 11)


class _GroupsOf4(nn.Module):
    """Two 5x5 convs without padding (H, W - 8), a (5, 4) conv with padding 2 (H - 8, W - 7), then
    the map read as groups of 4 units: runs where (H - 8) * (W - 7) is a multiple of 4."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.c3 = nn.Conv2d(3, 4, 5), nn.Conv2d(4, 4, 5), nn.Conv2d(4, 4, (5, 4), padding=2)

    def forward(self, x):
        x = self.c3(self.c2(self.c1(x)))
        return x.flatten(2).view(x.shape[0], x.shape[1], -1, 4).mean(-1)


def test_of_the_axes_raised_one_at_a_time_the_smallest_total_is_kept():
    # mutant clean_size._per_axis picking the raised trial by its sizes alone (c25: the key
    # (sum, sizes) -> sizes: 9x11 sorts before 10x9).
    # r_in_min: c1 1, c2 5, c3 9 (both axes): needs 9x9.  At 20x31 (12 x 24 units) H alone at 9 runs
    # (1 x 24), W alone at 9 runs (12 x 2), but 9x9 leaves 1 x 2 = 2 units: not a multiple of 4.
    # Raised from there: H by 1 -> 10x9, 2 x 2 = 4: runs; W -> 9x10 (1 x 3) fails, 9x11 (1 x 4) runs.
    # Both are clean (needs 9x9); 10x9 totals 19 px, 9x11 20: 10x9
    a = rflint.analyze(_GroupsOf4(), (20, 31))
    assert needs_of(a) == (9, 9)
    assert smallest_clean_input(a) == (10, 9)
