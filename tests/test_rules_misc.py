"""Rule behaviour not covered by the zoo acceptance tests (hand-built models, hand-derived numbers)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import rflint
from rflint.errors import RflintError
from rflint.rules import Settings, lint
from rflint.rules.rf004_dead_kernel_taps import used_taps
from rflint.rules.truncation import plan_truncation


class Residual(nn.Module):
    """x + (depth convs 3x3) ; with depth 4 vs identity the ratio is 4/max(0,1) = 4 >= 4."""

    def __init__(self, depth):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.body = nn.Sequential(*[nn.Conv2d(4, 4, 3, padding=1) for _ in range(depth)])

    def forward(self, x):
        x = self.stem(x)
        return x + self.body(x)


def codes(model, size, **settings):
    return [f for f in lint(rflint.analyze(model, size), Settings(**settings)).findings]


def test_rf007_depth_ratio():
    assert [f.code for f in codes(Residual(4), 64) if f.code == "RF007"] == ["RF007"]
    assert [f for f in codes(Residual(3), 64) if f.code == "RF007"] == []
    assert [f for f in codes(Residual(4), 64, dominance_ratio=5) if f.code == "RF007"] == []


def test_rf007_ignores_attention_gates():
    # SE gates are modulation (rf-semantics.md §2): an SE basic block is depth 2 against the identity
    assert [f for f in codes("zoo:se_resnet18", 224) if f.code == "RF007"] == []



class ListOrChainDense(nn.Module):
    """A dense block of four layers (1x1, 3x3 convs), each reading every map before it: as one
    torch.cat of the list (torchvision's DenseNet), or as a chain of pairwise cats (the zoo's)."""

    def __init__(self, as_list):
        super().__init__()
        self.as_list = as_list
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.layers = nn.ModuleList(nn.Sequential(nn.Conv2d(4 + 4 * i, 4, 1), nn.Conv2d(4, 4, 3, padding=1))
                                    for i in range(4))

    def forward(self, x):
        x = self.stem(x)
        if self.as_list:
            maps = [x]
            for layer in self.layers:
                maps.append(layer(torch.cat(maps, 1)))
            return torch.cat(maps, 1)
        for layer in self.layers:
            x = torch.cat([x, layer(x)], 1)
        return x


class ThreeWays(nn.Module):
    """An Inception-like join of three branches from one fork: 1 conv, 1 conv, 4 convs."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.a, self.b = nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 3, padding=1)
        self.deep = nn.Sequential(*[nn.Conv2d(4, 4, 3, padding=1) for _ in range(4)])

    def forward(self, x):
        x = self.stem(x)
        return torch.cat([self.a(x), self.b(x), self.deep(x)], 1)


def test_rf007_reads_a_dense_blocks_list_as_its_chain_of_joins():
    # torch.cat([x, f1, f2, f3, f4]): counted from the fork x, f4 had the whole chain's 8 layers (and
    # each of the block's cats from the third on was reported: torchvision's DenseNet-121, 54 times);
    # counted from f3, the deepest operand it is computed from, 2: as the pairwise chain, where each
    # join is 2 layers against 0
    assert [f for f in codes(ListOrChainDense(as_list=True), 32) if f.code == "RF007"] == []
    assert [f for f in codes(ListOrChainDense(as_list=False), 32) if f.code == "RF007"] == []
    [three] = [f for f in codes(ThreeWays(), 32) if f.code == "RF007"]  # independent branches: as before
    assert (three.data["deep_branch_layers"], three.data["shallow_branch_layers"]) == (4, 1)


class TwoOutputs(nn.Module):
    """An encoder that returns a deep and a shallow feature map (a feature pyramid, deep
    supervision): the maps are outputs, not operands of a merge."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.deep = nn.Sequential(*[nn.Conv2d(4, 4, 3, padding=1) for _ in range(4)])
        self.shallow = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        x = self.stem(x)
        return self.deep(x), self.shallow(x)


def test_rf007_ignores_the_outputs():
    # 4 parametric layers against 1 from the fork (the stem's output): the ratio of Residual(4),
    # but nothing joins the two maps; fx's output node lists both, and it is not a merge
    assert [f for f in codes(TwoOutputs(), 64) if f.code == "RF007"] == []


class SizedLike(nn.Module):
    """The input resized to a deep branch's map (F.interpolate(x, size=a.size()[2:])), then joined
    with that branch: the deep branch gives the interpolation a size, not pixels."""

    def __init__(self):
        super().__init__()
        self.deep = nn.Sequential(*[nn.Conv2d(3, 3, 3, padding=1) for _ in range(5)])
        self.head = nn.Conv2d(6, 4, 1)

    def forward(self, x):
        a = self.deep(x)
        b = torch.nn.functional.interpolate(x, size=a.size()[2:], mode="nearest")
        return self.head(torch.cat([a, b], 1))


def test_a_size_is_not_a_branch():
    a = rflint.analyze(SizedLike(), 16)
    # a.size() and its [2:] are numbers no pixel reaches: no RF; the interpolation sees x alone (r 1)
    assert a.rf["size"] is None and a.rf["getitem"] is None
    assert [axis.lo for axis in a.rf["interpolate"].axes] == [((1, 1),), ((1, 1),)]
    # the one merge is the cat: 5 convs (the fork is x) against the resized input's 0; 5 >= 4 * 1
    found = [f for f in lint(a).findings if f.code == "RF007"]
    assert [f.layer for f in found] == ["cat"] and found[0].data["deep_branch_layers"] == 5

def test_used_taps_by_hand():
    # 3x3, stride 1, pad 1 on a 1x1 map: only the centre tap reads the pixel
    assert used_taps(1, 1, 3, 1, 1, 1) == 1
    # 3x3, stride 2, pad 1, 2x2 -> 1x1: output 0 reads inputs -1, 0, 1: taps 1 and 2
    assert used_taps(2, 1, 3, 2, 1, 1) == 2
    # 3x3 dilation 2, pad 2 on 3x3 map, 3x3 out: o + 2t - 2 in [0, 3) for some o in 0..2: all 3 taps
    assert used_taps(3, 3, 3, 1, 2, 2) == 3
    # 5x5 'valid' conv: every tap reads real pixels
    assert used_taps(8, 4, 5, 1, 0, 1) == 5


def test_min_tail_layers():
    # seven 3x3 convs at 8 px: input RFs 1, 3, ..., 13 -> convs reading 9, 11, 13 are a 3-layer tail
    net = nn.Sequential(*[nn.Conv2d(3 if i == 0 else 4, 4, 3, padding=1) for i in range(7)])
    assert [f.layer for f in codes(net, 8) if f.code == "RF002"] == ["4"]
    assert [f for f in codes(net, 8, min_tail_layers=4) if f.code == "RF002"] == []


def test_partial_layer_rf006():
    # at 8x64 the convs reading 9, 11, 13 are unproductive along H only: RF006, no tail
    net = nn.Sequential(*[nn.Conv2d(3 if i == 0 else 4, 4, 3, padding=1) for i in range(7)])
    found = codes(net, (8, 64))
    assert [f.layer for f in found if f.code == "RF006"] == ["4", "5", "6"]
    assert not [f for f in found if f.code in ("RF001", "RF002")]
    assert found[0].data.get("axes", ["H"]) == ["H"]


def test_unproductive_needs_every_axis_strictly():
    # a layer whose input RF equals the input size is productive (strict >)
    net = nn.Sequential(*[nn.Conv2d(3 if i == 0 else 4, 4, 3, padding=1) for i in range(3)])  # inputs 1, 3, 5
    assert [f for f in codes(net, 5) if f.code == "RF001"] == []
    assert [f.layer for f in codes(net, 4) if f.code == "RF001"] == ["2"]


def test_model_level_suppression(tmp_path, monkeypatch):
    (tmp_path / "m.py").write_text(
        "import torch.nn as nn\n\n\n"
        "def build():  # rflint: ignore[RF001,RF002]\n"
        "    return nn.Sequential(*[nn.Conv2d(3 if i == 0 else 4, 4, 3, padding=1) for i in range(7)])\n"
    )
    monkeypatch.chdir(tmp_path)
    found = codes("m.py:build", 8)
    assert not [f for f in found if f.code in ("RF001", "RF002")]
    assert torch.__version__  # torch imported fine in the user's module


def test_smallest_clean_input_runs():
    from rflint.report import build_report

    # ResNet18 at 32: the largest input r_min is layer4.1.conv2's 75 (rf-semantics.md §6 numbers:
    # its conv1 output 75 feeds conv2) and RFs do not depend on the size: 75x75
    assert build_report(rflint.analyze("zoo:resnet18", 32)).min_clean_input == (75, 75)
    # the zoo U-Net (3 poolings, skips concatenated) only runs at multiples of 8.  The candidate is
    # its transposed conv's input RF: double 3x3 + 2x2/2 pool three times, then the bottleneck's
    # double 3x3: 5, 6 (j 2), 14, 16 (j 4), 32, 36 (j 8), 36 + 16 + 16 = 68; raised to 72
    assert build_report(rflint.analyze("zoo:unet", 64)).min_clean_input == (72, 72)
    # M5 (audio1d): the candidate is pool4's input r_min, 1004, but the map vanishes below 1772:
    # pool4 needs 4 in, conv4 6, pool3 24, conv3 26, pool2 104, conv2 106, pool1 424, and
    # conv1 (k 80, s 4) gives 424 from (L - 80) / 4 + 1, so L = 1772; RFs do not change with L
    assert build_report(rflint.analyze("zoo:audio1d", 16000)).min_clean_input == (1772,)



class SkipAfterFourPools(nn.Module):
    """A 3x3 conv whose map is pooled 2x2/2 four times, upsampled x16 and concatenated with itself:
    it runs only at multiples of 16."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Conv2d(1, 4, 3, padding=1)
        self.down = nn.Sequential(*[nn.MaxPool2d(2) for _ in range(4)])
        self.up = nn.Upsample(scale_factor=16)
        self.head = nn.Conv2d(8, 1, 1)

    def forward(self, x):
        e = self.enc(x)
        return self.head(torch.cat([e, self.up(self.down(e))], 1))


def test_smallest_clean_input_past_the_pixel_steps():
    from rflint.report import build_report

    # the largest input r_min is the upsampling's: 3, then pools add 1, 2, 4, 8 (j 1, 2, 4, 8): 18.
    # 18 does not line up (18, 9, 4, 2, 1, up to 16: the join fails), nor do 19..25 (the pixel
    # steps), so the search goes on past them to 32, the next multiple of 16, where r_min is still 18
    assert build_report(rflint.analyze(SkipAfterFourPools(), 64)).min_clean_input == (32, 32)

class StridedOnHOnly(nn.Module):
    """A U-Net level of strides (2, 2) then (2, 1) and back: it runs where H is a multiple of 4 and
    W of 2.  The first conv's kernel (3, 2) ("same" padding) makes the W receptive fields even."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Conv2d(1, 4, (3, 2), padding="same")
        self.down1 = nn.Conv2d(4, 4, 3, stride=2, padding=1)
        self.down2 = nn.Conv2d(4, 4, 3, stride=(2, 1), padding=1)
        self.mid = nn.Sequential(*[nn.Conv2d(4, 4, 3, padding=1) for _ in range(3)])
        self.up2 = nn.ConvTranspose2d(4, 4, (2, 1), stride=(2, 1))
        self.up1 = nn.ConvTranspose2d(4, 4, 2, stride=2)
        self.out = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        s = self.enc(x)
        y = self.up1(self.up2(self.mid(self.down2(self.down1(s)))))
        return self.out(torch.cat([y, s], 1))


class MelBinsLinear(nn.Module):
    """Six 3x3 convs over (frames, 20 mel bins), then a Linear over channels x bins: any number of
    frames, exactly 20 bins."""

    def __init__(self):
        super().__init__()
        self.convs = nn.Sequential(*[nn.Conv2d(1 if i == 0 else 4, 4, 3, padding=1) for i in range(6)])
        self.fc = nn.Linear(4 * 20, 5)

    def forward(self, x):
        return self.fc(self.convs(x).permute(0, 2, 1, 3).flatten(2))


def test_the_clean_size_is_searched_per_axis():
    """One offset added to every axis found no size or an inflated one.  By hand: StridedOnHOnly's
    RFs (r_min, jump on H / W): enc (3, 2), down1 (5, 4) with jumps 2 / 2, down2 (9, 8) with jumps
    4 / 2, the mid convs read (9, 8), (17, 12), (25, 16) and give (33, 20), which up2 reads (its
    kernel equals its stride: no growth, so up1 reads it too); the largest input r_min is (33, 20).
    H must be a multiple of 4 (36 from 33), W of 2 (20 is): 36x20.  From 33x20 one offset d runs
    only where 33 + d is a multiple of 4 (d odd) and 20 + d even (d even): never; the search had
    gone on to 128x128 (from 32x32) or kept the size analysed (64x64).  MelBinsLinear: the sixth
    conv reads r 11 (1, 3, ..., 11) on both axes, and the Linear takes 20 bins only: 11x20, where
    one offset gave no size that runs but the size analysed."""
    from rflint.report import build_report

    for size in ((32, 32), (64, 64)):
        assert build_report(rflint.analyze(StridedOnHOnly(), size, channels=1)).min_clean_input == (36, 20)
    for size in ((16, 20), (64, 20)):
        assert build_report(rflint.analyze(MelBinsLinear(), size, channels=1)).min_clean_input == (11, 20)


class FixedHeadResNet(nn.Module):
    """An ImageNet stem (7x7/2 p3 conv, 3x3/2 p1 max-pool), one residual block (where the stem ends),
    four plain 3x3 convs, and a head that flattens the map into Linear(4*8*8, 10): it only runs
    where the last map is 8x8."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 7, stride=2, padding=3)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.block = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))
        self.plain = nn.Sequential(*[nn.Conv2d(4, 4, 3, padding=1) for _ in range(4)])
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        x = x + self.block(x)
        return self.fc(torch.flatten(self.plain(x), 1))


def test_stem_prefixes_the_model_cannot_run_with_are_not_proposed():
    # At 32 px: conv1 gives 16x16 (RF 7, jump 2), the max-pool 8x8 (RF 7 + 2*2 = 11, jump 4).  The
    # residual block's identity keeps r_min at 11; each plain 3x3 conv then adds 2*4 = 8, so the 4th
    # one's input r_min is 11 + 3*8 = 35 > 32: a one-layer tail.  Without conv1's stride the map
    # reaching fc is 16x16, without both 32x32: fc takes neither, so no stem change is proposed, and
    # the lint still finishes.
    findings = codes(FixedHeadResNet(), 32)
    tail = next(f for f in findings if f.code == "RF002")
    assert tail.layer == "plain.3"
    assert "RF003" not in {f.code for f in findings}


class DenseLayer(nn.Module):
    """torchvision's dense layer: the concatenation of *every* earlier map, then conv 1x1, conv 3x3."""

    def __init__(self, cin: int, growth: int = 2):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, 2 * growth, 1)
        self.conv2 = nn.Conv2d(2 * growth, growth, 3, padding=1)

    def forward(self, feats):
        return self.conv2(torch.relu(self.conv1(torch.cat(feats, 1))))


class DenseBlock(nn.Module):
    def __init__(self, layers: int, cin: int = 4, growth: int = 2):
        super().__init__()
        self.stem = nn.Conv2d(3, cin, 3, padding=1)
        self.layers = nn.ModuleList(DenseLayer(cin + i * growth, growth) for i in range(layers))

    def forward(self, x):
        feats = [self.stem(x)]
        for layer in self.layers:
            feats.append(layer(feats))
        return torch.cat(feats, 1)


def test_rf007_in_a_dense_block():
    # every concatenation forks at the stem's output s (all paths into it pass there) and joins s
    # with the new maps n_1 .. n_{j-1}, each 2 convs after the concatenation before it.  Counted from
    # s, n_{j-1} is 2 * (j - 1) deep and layers 3.. were reported (torchvision's DenseNet-121: 54
    # times); counted from n_{j-2}, the deepest operand it is computed from, it is 2, against s's 0:
    # 2 < 4 * 1, as in the pairwise chain of the zoo's DenseNet.  At ratio 2 each join is reported,
    # its deep branch 2 layers, its shallow one s (0).
    assert [f for f in codes(DenseBlock(6), 16) if f.code == "RF007"] == []
    found = [f for f in codes(DenseBlock(6), 16, dominance_ratio=2) if f.code == "RF007"]
    assert [(f.data["deep_branch_layers"], f.data["shallow_branch_layers"]) for f in found] == [(2, 0)] * 6
    assert {f.data["fork"] for f in found} == {"stem"}


class _StemThenBranches(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))
        self.body = nn.Sequential(*[nn.Conv2d(4, 4, 3, padding=1) for _ in range(4)])

    def forward(self, x):
        x = self.stem(x)
        return x + self.body(x)


def test_rf007_names_the_fork_as_the_layer_table_does():
    # the fork is the stem's output: it was fx's "stem_2", where the layer table and RF002's cut say "stem.2"
    [finding] = [f for f in codes(_StemThenBranches(), 32) if f.code == "RF007"]
    assert finding.data["fork"] == "stem"
    assert (finding.data["deep_branch_layers"], finding.data["shallow_branch_layers"]) == (4, 0)


def test_rf007_branch_depths_match_every_path_on_random_dags():
    # the rule's depths against brute force on the traced DAG: networkx's dominators (from a virtual
    # source feeding the input) and every simple path from the fork to each operand through
    # spatial tensors; at ratio 1 every merge with a parametric branch is reported. DAGs with at most
    # 300 paths into any node (the enumeration is the slow part)
    import os
    import sys

    import networkx as nx

    sys.path.insert(0, os.path.dirname(__file__))
    import dagzoo

    checked = 0
    for seed in range(60):
        spec = dagzoo.generate(seed)
        if max(dagzoo.path_counts(spec)) > 300:
            continue
        a = rflint.analyze(dagzoo.build_module(spec), tuple(spec["input_size"]), channels=spec["channels"])
        g, out = a.graph, a.order[-1]
        relevant = (set().union(*(nx.descendants(g, i) for i in a.inputs)) | set(a.inputs)) & (nx.ancestors(g, out) | {out})
        spatial = {n for n in relevant if a.rf.get(n) is not None and a.rf[n].spatial}
        parametric = {layer.node for layer in a.layers if layer.parametric}
        dag = g.subgraph(relevant).copy()
        dag.add_edges_from(("source", i) for i in a.inputs)
        idom = nx.immediate_dominators(dag, "source")
        expected = {}
        for merge in spatial - {out}:
            operands = [p for p in g.predecessors(merge) if p in spatial]
            fork = idom[merge]
            if len(operands) < 2 or fork == "source":
                continue
            walk = g.subgraph(spatial | {fork})
            depth = {p: max([sum(n in parametric for n in path[1:])
                             for path in nx.all_simple_paths(walk, fork, p)], default=0) for p in operands}
            # counted from the deepest other operand an operand is computed from, if any
            depth = {p: d - max([depth[q] for q in operands if q != p and q in nx.ancestors(walk, p)], default=0)
                     for p, d in depth.items()}
            if max(depth.values()) >= 1:
                expected[merge] = (a.tensor_name(fork), max(depth.values()), min(depth.values()))
        found = {f.layer.rsplit(".", 1)[-1]: (f.data["fork"], f.data["deep_branch_layers"], f.data["shallow_branch_layers"])
                 for f in lint(a, Settings(dominance_ratio=1)).findings if f.code == "RF007"}
        assert found == expected, seed
        checked += len(expected)
    assert checked >= 40


class ImageAndMask(nn.Module):
    """An image through six 3x3 convs, plus a half-resolution mask through one conv, upsampled 2x
    and added: two forward() arguments."""

    def __init__(self):
        super().__init__()
        self.a = nn.Sequential(*[nn.Conv2d(3 if i == 0 else 4, 4, 3, padding=1) for i in range(6)])
        self.b = nn.Conv2d(1, 4, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2)

    def forward(self, x, m):
        return self.a(x) + self.up(self.b(m))


def test_clean_size_of_a_model_with_two_inputs():
    # a.k reads r 1 + 2k, so at 8 px a.4 (9) and a.5 (11) are unproductive and 11 px would do; the
    # mask goes along at half the size: ceil(11 / 2) = 6, upsampled to 12, which does not meet 11;
    # at 12 the mask is 6 and 11 <= 12. (It searched with the image alone, which cannot run: none.)
    from rflint.report import build_report

    a = rflint.analyze(ImageAndMask(), input_shapes=[(1, 3, 8, 8), (1, 1, 4, 4)])
    assert [layer.name for layer in a.layers if layer.parametric and layer.r_in_min[0] > 8] == ["a.4", "a.5"]
    assert build_report(a).min_clean_input == (12, 12)


class Multiples128(nn.Module):
    """A conv, seven 2x max pools, upsampled 128x and joined to the conv's map: it runs only at
    multiples of 128."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.up = nn.Upsample(scale_factor=128)
        self.o = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        y = z = self.c(x)
        for _ in range(7):
            z = self.pool(z)
        return self.o(torch.cat([y, self.up(z)], 1))


def test_clean_size_is_never_worse_than_the_size_analysed():
    # the upsampling reads r 3 + (1 + 2 + ... + 64) = 130, so 130 would do, but the model runs only
    # at multiples of 128: the search from 130 (64 single steps, to 194) finds none. At 256 nothing
    # is unproductive (130 <= 256): that is the answer, not "none found"
    from rflint.report import build_report

    a = rflint.analyze(Multiples128(), 256)
    assert a.layer("up").r_in_min == (130, 130)
    assert build_report(a).min_clean_input == (256, 256)
    # at 128 the upsampling is unproductive (130 > 128); past the pixel steps, the next multiples of
    # 128 (then 256 ...) are tried: 256 runs (it said none found: a U-Net deeper than 6 levels never
    # had a clean size)
    assert build_report(rflint.analyze(Multiples128(), 128)).min_clean_input == (256, 256)


class Checked128(Multiples128):
    """Multiples128 with its own size check, worded like monai's SwinUNETR."""

    def forward(self, x):
        if any(side % 128 for side in x.shape[2:]):
            raise ValueError(f"spatial dimensions of input image {tuple(x.shape[2:])} must be divisible by 2**7.")
        return super().forward(x)


def test_clean_size_is_the_next_multiple_a_size_check_names():
    # as above, 130 is needed; the model's own check names 2**7: 256 is the next size that runs,
    # although it is 126 px away (further than the pixel steps reach)
    from rflint.report import build_report

    assert build_report(rflint.analyze(Checked128(), 128)).min_clean_input == (256, 256)


def _adaptive_mid():
    """conv 3x3, adaptive average pool to 4x4, two 3x3 convs, global pool, linear."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.AdaptiveAvgPool2d(4), nn.Conv2d(8, 8, 3, padding=1),
                         nn.Conv2d(8, 8, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))


def test_clean_size_when_the_needs_swing_between_two_sizes():
    # rf-semantics.md §2, pool 11 -> 4: windows 3, 4, 4, 3 (max 4), stride 11/4; so r 3 -> 6 (j 2.75)
    # -> 11.5, and the last conv reads 11.5 > 11: it needs 12. At 12 the windows are 3, stride 3:
    # 3 -> 5 (j 3) -> 11 <= 12, clean, but needing only 11, which needs 12 again. The search went
    # back and forth and said "none found"; 12 was clean all along.
    from rflint.report import build_report

    a = rflint.analyze(_adaptive_mid(), 11)
    assert [layer.r_in_min[0] for layer in a.layers][:4] == [1, 3, 6, 11.5]
    assert build_report(a).min_clean_input == (12, 12)


def test_rf004_skips_the_head():
    # rf-semantics.md §3: no RF rule applies after the tensor becomes global. The 3x3 conv after the
    # global pool reads a 1x1 map (8 of 9 taps on padding) but is head; the stride-2 conv before it
    # (4x4 -> 2x2 at 4 px: taps -1, 0, 1 and 1, 2, 3, all used) is not reported either
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, stride=2, padding=1),
                        nn.AdaptiveAvgPool2d(1), nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 10, 1), nn.Flatten())
    a = rflint.analyze(net, 4)
    assert a.layer("3").head
    assert [f for f in lint(a).findings if f.code == "RF004"] == []


class TinyViT(nn.Module):
    """A 16x16 stride-16 patch embedding, a transformer encoder over the patches, a classifier."""

    def __init__(self, attention: bool = True):
        super().__init__()
        self.attention = attention
        self.patch = nn.Conv2d(3, 32, 16, stride=16)
        self.enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(32, 4, 64, batch_first=True), 2)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        return self.fc((self.enc(tokens) if self.attention else tokens).mean(1))


def test_rf005_leaves_attention_models_alone():
    # the patches see 16 px of 64: no unit of the last feature map sees the whole input, but the
    # encoder's attention combines them (rules/RF005.md); without the encoder it is reported
    assert [f for f in codes(TinyViT(), 64) if f.code == "RF005"] == []
    found = [f for f in codes(TinyViT(attention=False), 64) if f.code == "RF005"]
    assert [(f.layer, f.data["final_r_max"]) for f in found] == [("patch", [16, 16])]


class SizeRead(nn.Module):
    """A stride-2 conv and five 3x3 convs, then either a segmentation output resized to the input
    (F.interpolate(y, size=x.shape[-2:]), as torchvision's DeepLabV3 and FCN do; or scale_factor=2)
    or a classifier that reads the batch size off the input (b = x.size(0); y.view(b, -1))."""

    def __init__(self, how: str):
        super().__init__()
        self.how = how
        self.convs = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1),
                                   *[nn.Conv2d(4, 4, 3, padding=1) for _ in range(5)])
        self.seg = nn.Conv2d(4, 2, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        if self.how == "classifier":
            b = x.size(0)
            return self.fc(self.pool(self.convs(x)).view(b, -1))
        y = self.seg(self.convs(x))
        if self.how == "size":
            return torch.nn.functional.interpolate(y, size=x.shape[-2:])
        return torch.nn.functional.interpolate(y, scale_factor=2)


@pytest.mark.parametrize("how", ["size", "scale", "classifier"])
def test_a_size_read_off_the_input_is_no_path_around_the_layers(how):
    # at 16 px: convs.0 reads 1 (out 3, jump 2), then each 3x3 adds 4: convs.k reads 3 + 4(k - 1),
    # so convs.5 reads 19 > 16 and is the border, the cut after convs.4. x.shape / x.size() made a
    # path from the input to the output around every layer: the cut was the input itself ("9
    # parametric layers, 100% of the params") or, for the classifier, there was no tail at all
    a = rflint.analyze(SizeRead(how), 16)
    assert [layer.r_in_min[0] for layer in a.layers][:6] == [1, 3, 7, 11, 15, 19]
    s = lint(a).context.structure
    assert s.tail is not None and s.tail.cut_name == "convs.4" and s.border.name == "convs.5"


class SplitBlock(nn.Module):
    """Three 3x3 convs to 8 channels, then a ShuffleNet-style block: the map split in two with
    x.chunk, one half through a 3x3 conv, joined again; a classifier."""

    def __init__(self):
        super().__init__()
        self.convs = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1),
                                   nn.Conv2d(8, 8, 3, padding=1))
        self.branch = nn.Conv2d(4, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        a, b = self.convs(x).chunk(2, dim=1)
        return self.fc(self.pool(torch.cat([self.branch(a), b], 1)).flatten(1))


def test_the_cut_is_never_a_tuple(tmp_path):
    # at 6 px the convs read 1, 3, 5 and the branch 7 > 6: the split block is the tail. Its cut is
    # the 8-channel map it splits (the output of convs), not the tuple chunk returns (4 channels a piece): the
    # new head is Linear(8, 10), and the truncated model runs
    from rflint.fixes import truncate
    from rflint.report import build_report

    report = build_report(rflint.analyze(SplitBlock(), 6))
    assert report.structure.tail.cut_name == "convs"  # the Sequential's output
    assert report.truncation.as_dict()["new_head"] == "global average pooling + Linear(8, 10)"
    cut = truncate(SplitBlock(), 6)
    assert cut(torch.randn(1, 3, 6, 6)).shape == (1, 10)


def test_no_truncation_command_for_a_dense_output():
    # rflint fix --truncate needs a (batch, classes) output; a segmentation model's suggested fix
    # told the user to run it anyway, and it failed
    import io

    from rich.console import Console

    from rflint.report import build_report
    from rflint.report.text import render_model

    console = Console(file=io.StringIO(), width=300, color_system=None)
    render_model(build_report(rflint.analyze(SizeRead("size"), 16)), console)
    text = console.file.getvalue()
    assert "end the feature extractor at convs.4" in text and "Try it:" not in text


class Focus(nn.Module):
    """YOLOv5's space-to-depth stem: four offset slices concatenated, so the first conv reads 12
    channels made from a 3-channel image."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(12, 8, 3, padding=1)

    def forward(self, x):
        return self.conv(torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]], 1))


def test_channels_when_the_first_conv_does_not_read_the_input():
    # rflint takes the input channels from the first conv (12 here, 48 after the concatenation); it
    # said "Invalid channel dimensions", and with --channels 5 told the user to set 12
    from rflint.errors import RflintError

    for channels in (None, 5):
        with pytest.raises(RflintError, match=r"conv \(in_channels 12\) does not read the input itself .* "
                                              r"pass channels, e\.g\. channels=3"):
            rflint.analyze(Focus(), 16, channels=channels)
    assert rflint.analyze(Focus(), 16, channels=3).layers[-1].name == "conv"


class _PaddedByOps(nn.Module):
    """At 2 px: a (k3 s2 p1) reads a 2x2 map -> 1x1; b gets it through nn.ZeroPad2d(1), c through
    F.pad(1, 1, 1, 1), d through F.pad(0, 2, 0, 2) (zeros after the pixel only), e through a replicate
    pad (no zeros: copies of real pixels).  b and c (k3, p0) read real index t - 1 at o = 0: tap 1 only, 8/9
    dead; d reads index t: tap 0 only, 8/9 dead; e: no finding."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.pad = nn.ZeroPad2d(1)
        self.b, self.c, self.d, self.e = (nn.Conv2d(4, 4, 3) for _ in range(4))

    def forward(self, x):
        x = self.b(self.pad(self.a(x)))
        x = self.c(torch.nn.functional.pad(x, (1, 1, 1, 1)))
        x = self.d(torch.nn.functional.pad(x, (0, 2, 0, 2), value=0.0))
        return self.e(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"))


def test_rf004_counts_zeros_a_pad_op_adds():
    found = {f.layer: f for f in codes(_PaddedByOps(), 2) if f.code == "RF004"}
    assert sorted(found) == ["a", "b", "c", "d"]
    assert found["a"].data["wasted_fraction"] == "5/9"  # rf-semantics.md §6's 2x2 case
    for name in "bcd":
        assert found[name].data["wasted_fraction"] == "8/9" and found[name].data["input_size"] == [1, 1]
        assert found[name].data["wasted_params"] == 4 * 4 * 9 * 8 // 9
    assert found["d"].data["used_taps"] == [1, 1]


class _Shared(nn.Module):
    """One 5x5 conv (p 2) called on the 8x8 map (every tap reads a real pixel somewhere) and, after
    an 8x8 max pool, on a 1x1 one (tap 2 only).  Its weights are shared, so a tap is dead only if no
    call reads a real pixel with it: none is."""

    def __init__(self):
        super().__init__()
        self.first = nn.Conv2d(3, 4, 3, padding=1)
        self.shared = nn.Conv2d(4, 4, 5, padding=2)

    def forward(self, x):
        x = self.shared(self.first(x))
        return self.shared(nn.functional.max_pool2d(x, 8))


def test_rf004_shared_weights_are_dead_only_when_dead_in_every_call():
    a = rflint.analyze(_Shared(), 8)
    second = a.layer("shared@2")
    assert not second.head and second.in_shape[2:] == (1, 1)  # alone, 24/25 of its taps would be dead
    assert [f for f in lint(a).findings if f.code == "RF004"] == []  # but the 8x8 call reads all 25
    found = [f for f in codes(_SharedSmall(), 2) if f.code == "RF004"]
    assert len(found) == 1 and found[0].layer == "shared"
    assert found[0].data["used_taps"] == [3, 3] and found[0].data["wasted_fraction"] == "16/25"
    assert "maps of 1x1, 2x2 in its 2 calls" in found[0].message


class _SharedSmall(nn.Module):
    """The 5x5 conv (p 2) on the 2x2 input map (taps 1, 2, 3) and then on 1x1 (tap 2): 3 of 5 per axis."""

    def __init__(self):
        super().__init__()
        self.first = nn.Conv2d(3, 4, 1)
        self.shared = nn.Conv2d(4, 4, 5, padding=2)

    def forward(self, x):
        x = self.shared(self.first(x))
        return self.shared(nn.functional.max_pool2d(x, 2))


class SharedLoop(nn.Module):
    """A stem conv, then one stride-2 block called six times (weights shared across the calls)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, stride=2), nn.ReLU())
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        x = self.stem(x)
        for _ in range(6):
            x = self.block(x)
        return self.head(x.mean((2, 3)))


def test_a_tail_of_shared_calls_says_its_weights_are_shared():
    # at 16: stem r 3; the block's calls read r 3, 5 (j 2), 9 (j 4), then 17 (j 8) > 16: calls 4-6
    # are the tail. Their weights are the block's, counted at its first call: the tail holds none
    # of its own, and the message says why instead of "0 params"
    from rflint.report import build_report

    tail = [f for f in build_report(rflint.analyze(SharedLoop(), 16)).findings if f.code == "RF002"]
    assert len(tail) == 1 and tail[0].layer == "block.0@4"
    assert tail[0].data["parametric_layers"] == 3 and tail[0].data["params"] == 0
    assert "no params of their own (they reuse the weights of layers before the cut)" in tail[0].message


class _MixW(nn.Module):
    """conv3, a Linear over W (MLP-Mixer-style token mixing on an NCHW map), conv3."""

    def __init__(self):
        super().__init__()
        self.c1, self.mix, self.c2 = nn.Conv2d(3, 8, 3, padding=1), nn.Linear(16, 16), nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        return self.c2(self.mix(self.c1(x)))


def test_an_axis_mixed_away_is_covered():
    # W is mixed by the Linear: every unit sees the whole width, so RF005 (no unit sees the whole
    # input on any axis) does not hold; H: 3 + 2 = 5.  The model runs at W = 16 only, and c2 reads
    # r 3 on H: 3x16 is the smallest clean size (the search, raising both axes together, had found
    # 18x16 and fallen back to the size analysed, 16x16)
    from rflint.report import build_report

    a = rflint.analyze(_MixW(), 16)
    assert a.layer("c2").r_out_min == (5, None)
    report = build_report(a)
    assert [f.code for f in report.findings] == [] and report.min_clean_input == (3, 16)


def _non_local(s, x):
    """conv3 -> h; a non-local block adds attention over all positions of h; conv3."""
    h = s.mods[0](x)
    f = h.flatten(2)
    context = (f @ torch.softmax(f.transpose(1, 2) @ f, dim=-1)).view_as(h)
    return s.mods[1](h + context)


class _Lambda(nn.Module):
    def __init__(self, fn, *mods):
        super().__init__()
        self.fn, self.mods = fn, nn.ModuleList(mods)

    def forward(self, x):
        return self.fn(self, x)


def test_rf005_not_reported_when_attention_joins_before_the_last_map():
    # the last conv reads r 3 (its r_max 5 < 16 on both axes), but the attention branch it also
    # reads holds every position: rf-semantics.md leaves that global operand out of the merge as
    # modulation, so RF005 said "no unit sees the whole input" (UNETR's decoder, non-local blocks)
    net = _Lambda(_non_local, nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1))
    a = rflint.analyze(net, 16)
    assert a.final_r_max == (5, 5)
    assert not [f for f in lint(a).findings if f.code == "RF005"]
    # without the attention branch it is reported
    plain = _Lambda(lambda s, x: s.mods[1](s.mods[0](x)), nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1))
    assert [f.code for f in lint(rflint.analyze(plain, 16)).findings] == ["RF005"]


class _TwoHeads(nn.Module):
    """Five 3x3/2 convs (RF 3, 7, 15, 31, 63; jump 32), then two heads of two 3x3 convs each."""

    def __init__(self, two: bool = True):
        super().__init__()
        self.body = nn.Sequential(*[nn.Conv2d(3 if i == 0 else 8, 8, 3, 2, 1) for i in range(5)])
        self.head_a = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1))
        self.head_b = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1))
        self.two = two

    def forward(self, x):
        f = self.body(x)
        return (self.head_a(f), self.head_b(f)) if self.two else self.head_a(f)


@pytest.mark.parametrize("two", [False, True])
def test_a_model_with_several_outputs_has_its_tail_after_the_last_shared_map(two):
    # every head conv reads 63 or more > 32: the tail is both heads, cut after body, 4 (or 2) convs.
    # With two outputs the heads lay after the last cut tensor, in no segment: four RF001s, no tail
    from rflint.report import build_report

    tail = build_report(rflint.analyze(_TwoHeads(two), 32)).structure.tail
    assert tail is not None and tail.cut_name == "body"
    assert len(tail.parametric_layers) == (4 if two else 2) and tail.params == (4 if two else 2) * 584


class _CRNN(nn.Module):
    """Two conv + 2x2 pool blocks over (freq, time); then ``how`` turns the map into a sequence."""

    def __init__(self, how: str):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.rnn = nn.GRU(32, 32, batch_first=True) if how != "mean" else None
        self.how, self.fc = how, nn.Linear(32, 10)

    def forward(self, x):
        f = self.conv(x)
        if self.how == "mean":  # mean over frequency, frame-wise classifier
            return self.fc(f.mean(dim=2).permute(0, 2, 1))
        seq, _ = self.rnn(f.flatten(2).permute(0, 2, 1))  # every position a step of a GRU
        return self.fc(seq[:, -1])


@pytest.mark.parametrize("how", ["mean", "gru"])
def test_rf005_on_a_crnn(how):
    # the last map's r_max is 3, 4, 8, 10 < 64x128: RF005 said no unit sees the whole input.  With
    # the mean over frequency after the last conv, frequency is covered (the rule looked at the conv's
    # axes, not the last spatial tensor's); with a GRU over the positions every step sees the past
    a = rflint.analyze(_CRNN(how), (64, 128), channels=1)
    assert a.final_r_max == (10, 10)
    assert not [f for f in lint(a).findings if f.code == "RF005"]


class _SEGate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, c, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.fc(self.pool(x)))


class _DownBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1, self.conv2, self.proj = nn.Conv2d(c, c, 3, 2, 1), nn.Conv2d(c, c, 3, 1, 1), nn.Conv2d(c, c, 1, 2)

    def forward(self, x):
        return self.proj(x) + self.conv2(torch.relu(self.conv1(x)))


@pytest.mark.parametrize("se", [False, True])
def test_an_se_gate_does_not_end_the_stem(se):
    # c0 3x3/2, (SE), c1 3x3/2, four residual down blocks.  As is, block 3's conv2 reads
    # 7 + 2*16 = 39 > 32: a tail.  With c0 and c1 at stride 1 block 4's conv2 reads 5 + 2*8 = 21:
    # none.  The SE gate's global branch made its segment "parallel", which ended the stem at c0
    from rflint.report import build_report

    net = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), _SEGate(16) if se else nn.Identity(), nn.Conv2d(16, 16, 3, 2, 1),
                        *[_DownBlock(16) for _ in range(4)], nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    stem = build_report(rflint.analyze(net, 32)).stem
    assert [layer.name for layer in stem.layers] == ["0", "2"] and stem.removes_tail


def test_rf005_an_axis_picked_by_an_index_is_not_covered():
    # conv3, conv3 (r 5), row 0 picked (x[:, :, 0]), Conv1d k3 over W: r 7 < 32.  The picked row sees
    # 5 of 32 rows; it was counted as "mixed away" like a mean, and RF005 fell silent
    net = _Lambda(lambda s, x: s.mods[1](s.mods[0](x)[:, :, 0]),
                  nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)),
                  nn.Conv1d(4, 4, 3, padding=1))
    a = rflint.analyze(net, 32)
    assert a.final_r_max == (None, 7)  # by input axis: H was picked, not seen whole
    assert [f.code for f in lint(a).findings] == ["RF005"]


def test_rf005_exemptions_follow_what_the_op_mixes():
    # an FFT over the channels mixes no position: conv3, conv3 (r 5 < 16) is reported; so is
    # grid_sample: each unit reads two taps around its grid point (conv3 3, sampled 4, conv3 6 < 16),
    # and the grid, like a gate, says where to read, not what
    convs = (nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1))
    over_channels = _Lambda(lambda s, x: s.mods[1](torch.fft.fft(s.mods[0](x), dim=1).real), *convs)
    assert [f.code for f in lint(rflint.analyze(over_channels, 16)).findings] == ["RF005"]
    grid = torch.zeros(1, 16, 16, 2)
    sampled = _Lambda(lambda s, x: s.mods[1](torch.nn.functional.grid_sample(s.mods[0](x), grid, align_corners=False)), *convs)
    assert [f.code for f in lint(rflint.analyze(sampled, 16)).findings] == ["RF005"]
    over_the_map = _Lambda(lambda s, x: s.mods[1](torch.fft.fft2(s.mods[0](x)).real), *convs)
    assert [f.code for f in lint(rflint.analyze(over_the_map, 16)).findings] == []


def test_rf006_names_the_input_rf_in_the_inputs_axis_order():
    # a transposed map: conv 1x9 along H (the tensor's last dim), then 1x3; at 8x64 H reads
    # 1 + 8 = 9 > 8, W 3 <= 64.  The message printed the RF in the tensor's order (3x9 against 8x64)
    net = _Lambda(lambda s, x: s.mods[1](s.mods[0](x.transpose(2, 3))).transpose(2, 3),
                  nn.Conv2d(3, 4, (3, 9), padding=(1, 4)), nn.Conv2d(4, 4, (1, 3), padding=(0, 1)))
    found = [f for f in lint(rflint.analyze(net, (8, 64))).findings if f.code == "RF006"]
    assert len(found) == 1 and "its input RF 9x3 px exceeds the 8x64 px input there" in found[0].message


class _MapAndLogits(nn.Module):
    """c1, c2 (3x3/2); a map b1(c2) and logits from c3 -> a1 -> a2 -> mean -> fc, in either order."""

    def __init__(self, map_first: bool):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 8, 3, 2, 1), nn.Conv2d(8, 8, 3, 2, 1)
        self.b1, self.c3 = nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)
        self.a1, self.a2 = nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)
        self.fc, self.map_first = nn.Linear(8, 10), map_first

    def forward(self, x):
        h = self.c2(self.c1(x))
        if self.map_first:
            m = self.b1(h)
            return m, self.fc(self.a2(self.a1(self.c3(h))).mean((2, 3)))
        logits = self.fc(self.a2(self.a1(self.c3(h))).mean((2, 3)))
        return self.b1(h), logits


def test_the_final_rf_does_not_depend_on_the_order_of_the_outputs():
    # r: c1 3 (j 2), c2 7 (j 4), b1 15; c3 15, a1 23, a2 31.  The final RF is a2's, the branch whose
    # units see most, whichever output forward() computes first (it was b1's in one order)
    for map_first in (True, False):
        a = rflint.analyze(_MapAndLogits(map_first), 16)
        assert a.final_layer == "a2" and a.final_r_max == (31, 31)


def test_dead_taps_message_when_no_tap_reads_a_pixel():
    """Conv1d k4 with padding='same' on a one-sample input: torch pads 1 before and 2 after, so tap
    i reads position i - 1 and only tap 1 reads the sample (3/4 dead).  The second conv, dilation
    2, pads 3 and 3: taps read -3, -1, 1, 3, never 0: all 4 taps dead, all 4*4*4 = 64 weights."""
    model = nn.Sequential(nn.Conv1d(1, 4, 4, padding="same"), nn.Conv1d(4, 4, 4, padding="same", dilation=2),
                          nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, 2))
    found = {f.layer: f.message for f in codes(model, 1) if f.code == "RF004"}
    assert "only 1 of its kernel taps ever read a real sample, so 3/4 of its weights (12 params)" in found["0"]
    assert "none of its kernel taps ever reads a real sample, so all of its weights (64 params)" in found["1"]


class _SE(nn.Module):
    def __init__(self, c, conv):
        super().__init__()
        self.conv = conv
        make = (lambda i, o: nn.Conv2d(i, o, 1)) if conv else nn.Linear
        self.fc1, self.fc2 = make(c, c // 4), make(c // 4, c)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=self.conv)
        g = torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))
        return x * (g if self.conv else g[:, :, None, None])


class _SEBlock(nn.Module):
    def __init__(self, c, conv):
        super().__init__()
        self.c1, self.c2, self.se = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1), _SE(c, conv)

    def forward(self, x):
        return x + self.se(self.c2(torch.relu(self.c1(x))))


@pytest.mark.parametrize("conv", [True, False], ids=["conv_se", "linear_se"])
def test_se_gates_in_a_tail_are_neither_tail_layers_nor_head(conv):
    """At 4 px: stem 3x3 gives 3; in each residual block c1 reads 3 (productive) and c2 reads 5 > 4
    (unproductive): the tail after the stem holds the 8 block convs.  Its params: 4 * (2 * 2320 +
    68 + 80) = 19,152 (the SE weights are in the blocks).  An SE written with 1x1 convs (MobileNetV3,
    RegNet) said 16 layers, and both forms listed the SE layers again as "the head" (592 params twice)."""
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), *[_SEBlock(16, conv) for _ in range(4)],
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    result = lint(rflint.analyze(model, 4))
    tail = result.context.structure.tail
    assert [layer.name for layer in tail.parametric_layers] == [f"{b}.c{i}" for b in range(1, 5) for i in (1, 2)]
    assert tail.params == 4 * (2 * 2320 + 68 + 80)
    rf002 = next(f for f in result.findings if f.code == "RF002")
    assert "8 parametric RF layers" in rf002.message
    plan = plan_truncation(result.context.analysis, tail)
    assert plan.head_layers == () and plan.head_text() == "" and plan.params_removed == 19152 + 170  # + the fc


class _SpaceToDepth16(nn.Module):
    """3x3 conv, space-to-depth by 16 (PixelUnshuffle or view/permute/reshape), 3x3 conv."""

    def __init__(self, how):
        super().__init__()
        self.how = how
        self.conv1, self.conv2 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4 * 256, 8, 3, padding=1)

    def forward(self, x):
        x = self.conv1(x)
        if self.how == "unshuffle":
            x = nn.functional.pixel_unshuffle(x, 16)
        else:
            b, c, h, w = x.shape
            x = x.view(b, c, h // 16, 16, w // 16, 16).permute(0, 1, 3, 5, 2, 4).reshape(b, c * 256, h // 16, w // 16)
        return self.conv2(x).mean((2, 3))


@pytest.mark.parametrize("how", ["unshuffle", "view"])
@pytest.mark.parametrize("size", [48, 160])
def test_clean_size_of_a_model_that_runs_at_multiples_of_16_only(how, size):
    """conv1 gives r 3; the 16x16 blocks: 3 + 15 * 1 = 18, so conv2 needs 18 px.  The model runs at
    multiples of 16 only, and 18 + 2^k never is one: the search (doubling and bisecting, as for a
    vanishing map) found none, or the size analysed.  The first multiple of 16 from 18 on is 32."""
    from rflint.report import build_report

    assert build_report(rflint.analyze(_SpaceToDepth16(how), size)).min_clean_input == (32, 32)


def test_dead_taps_in_1d_read_as_sizes():
    """A 16/16 stem leaves 1 position of a 16-sample signal; the 3-tap conv after it reads a real
    sample with its middle tap only: 2/3 of its 4 * 4 * 3 = 48 weights, 32.  "(3 kernel on a 1 map)"
    did not read as sizes, and "a 1 px map ... a real pixel" not as a signal's."""
    model = nn.Sequential(nn.Conv1d(1, 4, 16, stride=16), nn.Conv1d(4, 4, 3, padding=1))
    [found] = [f for f in lint(rflint.analyze(model, 16)).findings if f.code == "RF004"]
    assert found.message.startswith("layer 1 (3-tap kernel on a map of length 1): only 1 of its kernel taps ever read a real sample")
    assert found.data["wasted_params"] == 32


class _ImagePooling(nn.Module):
    """A 3x3 stem (r 3) and a head of 3x3 convs (r 5, 7): far below 32 px.  ``branch``: none, an
    ASPP-style image-pooling branch concatenated back, or an SE gate multiplied in."""

    def __init__(self, branch):
        super().__init__()
        self.branch = branch
        self.stem, self.pool_proj = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 1)
        self.c1, self.c2 = nn.Conv2d(16 if branch == "aspp" else 8, 8, 3, padding=1), nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x):
        x = self.stem(x)
        g = self.pool_proj(nn.functional.adaptive_avg_pool2d(x, 1))
        if self.branch == "aspp":
            x = torch.cat([x, nn.functional.interpolate(g, size=x.shape[-2:], mode="bilinear")], 1)
        elif self.branch == "se":
            x = x * torch.sigmoid(g)
        y = self.c2(self.c1(x))
        if self.branch == "after":  # merged after the last conv: the map goes to the classifier so
            y = y + self.pool_proj(nn.functional.adaptive_avg_pool2d(y.repeat(1, 2, 1, 1), 1))[:, :4]
        return y


@pytest.mark.parametrize("branch, reported", [("none", True), ("aspp", False), ("se", True), ("after", False)])
def test_rf005_and_a_branch_pooled_from_the_whole_map(branch, reported):
    """Largest RF 7 px at 32 px: RF005, unless whole-image features are concatenated back (ASPP's
    image pooling), before the last conv or after it (only the way to the input was looked at:
    the QA pass of the docs); an SE gate only scales the map."""
    found = [f for f in lint(rflint.analyze(_ImagePooling(branch), 32)).findings if f.code == "RF005"]
    assert bool(found) == reported
    if found:
        assert found[0].data["final_r_max"] == [7, 7]


class _RowPicked(nn.Module):
    """A 3x3 conv, its first row picked by an index, a 3-tap conv along W."""

    def __init__(self):
        super().__init__()
        self.c, self.c1, self.fc = nn.Conv2d(1, 8, 3, padding=1), nn.Conv1d(8, 8, 3, padding=1), nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(self.c1(self.c(x)[:, :, 0]).mean(-1))


def test_rf005_names_the_axes_a_picked_row_leaves():
    # r 3 after the 3x3 conv, then 3 + 2 = 5 along W; H was picked (one row: it sees no more than
    # before, so RF005 holds), and the message read "-x5 px"
    [found] = [f for f in lint(rflint.analyze(_RowPicked(), (32, 64), channels=1)).findings if f.code == "RF005"]
    assert found.data["final_r_max"] == [None, 5]
    assert "its largest receptive field is 5 px along W for a 32x64 px input" in found.message


def test_a_1d_signal_is_measured_in_samples():
    """M5-like: 80/4 stem, 4/4 pool, 3-tap conv: r 80, then 80 + 3 * 4 = 92, then 92 + 2 * 16 = 124
    samples, below 2000: RF005 in samples ("2000 px" read as pixels of an image)."""
    model = nn.Sequential(nn.Conv1d(1, 4, 80, stride=4), nn.MaxPool1d(4), nn.Conv1d(4, 4, 3))
    [found] = [f for f in lint(rflint.analyze(model, 2000)).findings if f.code == "RF005"]
    assert "its largest receptive field is 124 samples for a 2000-sample input" in found.message


def test_fractional_sizes_are_written_as_decimals_never_in_exponent_notation():
    # DeepLabV3+ at 513 px (align_corners resizes 33 -> 129 -> 513) has r_max 3982/3: the report said
    # '1.33e+03x1.33e+03 px'
    from fractions import Fraction

    from rflint.rules.structure import fmt_size

    assert fmt_size((Fraction(3982, 3), Fraction(3982, 3))) == "1327.33x1327.33"
    assert fmt_size((Fraction(17, 3), Fraction(7, 2), 5, None)) == "5.67x3.5x5x-"


def test_a_dead_tap_message_names_the_dilation_and_reads_an_8x8_map():
    # "c (3x3 kernel on a 4x4 map): only 1x1 of its kernel taps ..." read as a wrong number: by hand,
    # dilation 4, padding 4 on a 4x4 map reads o - 4 + 4t, a real pixel for t = 1 only (o <= 3)
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.down = nn.Conv2d(3, 4, 3, 2, 1)  # 8 -> 4
            self.c = nn.Conv2d(4, 4, 3, 1, 4, dilation=4)

        def forward(self, x):
            return self.c(self.down(x))

    found = [f for f in lint(rflint.analyze(Net(), 8)).findings if f.code == "RF004"]
    assert [f.message.split(":")[0] for f in found] == ["c (3x3 kernel, dilation 4, on a 4x4 map)"]
    from rflint.rules.structure import a_or_an

    assert [a_or_an(t) for t in ("8x8 map", "11-tap", "18000-sample", "1100 px", "32x32")] == [
        "an 8x8 map", "an 11-tap", "an 18000-sample", "a 1100 px", "a 32x32"]


def test_select_rules_takes_a_string_as_the_command_line_does():
    # select_rules("RF001") read the string letter by letter: "unknown rule code or prefix 'F'"
    from rflint.rules import select_rules

    assert [r.code for r in select_rules("RF001,RF005")] == ["RF001", "RF005"]
    assert [r.code for r in select_rules(["RF00"], "RF007")] == ["RF001", "RF002", "RF003", "RF004", "RF005", "RF006"]


@pytest.mark.parametrize("bias", [False, True])
def test_dead_taps_of_a_weight_normed_conv_count_its_kernel_only(bias):
    # weight_norm's gains (one per output channel) and the bias have no taps: 8/9 of an 8x8x3x3
    # kernel on a 1x1 map is 512, with or without the parametrization (it said 519 and 526)
    from torch.nn.utils.parametrizations import weight_norm

    conv = weight_norm(nn.Conv2d(8, 8, 3, padding=1, bias=bias))
    model = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), conv)  # 2 px -> a 1x1 map for conv
    [found] = [f for f in lint(rflint.analyze(model, 2)).findings if f.code == "RF004" and f.layer == "1"]
    assert found.data["wasted_params"] == 8 * 8 * 8


class _FnConv5Dilated(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4, 4, 5, 5) * 0.1)

    def forward(self, x):  # the rank picked from x.dim(): traced with concrete shapes
        return (nn.functional.conv1d, nn.functional.conv2d)[x.dim() - 3](x, self.weight, None, 1, 4, 2)


class _CeilPool(nn.Module):
    def forward(self, x):
        return (nn.functional.max_pool1d, nn.functional.max_pool2d)[x.dim() - 3](x, 2, ceil_mode=True)


def test_the_clean_size_search_stops_at_its_limit():
    # found by the CLI fuzz: at 1x1 px the adaptive pools' fractional jumps gave needs of 11.6e9 px,
    # tried as they were: torch's "Storage size calculation overflowed", an internal error (exit 2)
    from rflint.report import build_report

    model = nn.Sequential(nn.Conv2d(1, 1, 1), nn.AdaptiveAvgPool2d(2), nn.PixelUnshuffle(2), _CeilPool(),
                          _FnConv5Dilated(), nn.AdaptiveAvgPool2d(2))
    report = build_report(rflint.analyze(model, 1))
    assert report.structure.tail is not None and report.min_clean_input is None


def test_an_unproductive_layer_names_its_rf_on_the_inputs_axes():
    # a 1-D signal unsqueezed for 2-D convs (a spectrogram front end does the same): the layer's
    # first axis is none of the input's, and RF001 said "is -x17 samples".  By hand: (1, 9) kernels,
    # input RFs 1, 9, 17 > 16
    class Lifted(nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = nn.Sequential(*[nn.Conv2d(1 if i == 0 else 4, 4, (1, 9), padding=(0, 4)) for i in range(3)])

        def forward(self, x):
            return self.convs(x.unsqueeze(2))

    [found] = [f for f in lint(rflint.analyze(Lifted(), input_shapes=[(1, 1, 16)])).findings if f.code == "RF001"]
    assert "the smallest receptive field reaching its input is 17 samples, larger than" in found.message


class SquareNeedsStridedOnH(nn.Module):
    """StridedOnHOnly's kind of U-Net level (pools (2, 1): H a multiple of 4, any W) beside a 9x9
    conv and a 3x3 conv after it, whose needs are square."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = nn.Sequential(nn.MaxPool2d((2, 1)), nn.MaxPool2d((2, 1)))
        self.up = nn.Sequential(nn.ConvTranspose2d(4, 4, (2, 1), (2, 1)), nn.ConvTranspose2d(4, 4, (2, 1), (2, 1)))
        self.wide, self.after = nn.Conv2d(1, 4, 9, padding=4), nn.Conv2d(4, 4, 3, padding=1)
        self.out = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        e = self.enc(x)
        return self.out(torch.cat([self.up(self.pool(e)), e + self.after(self.wide(x))], 1))


def test_square_needs_of_a_model_that_treats_its_axes_apart_are_searched_per_axis():
    """At a square size with square needs, one offset went to every axis: 12x12.  By hand: enc r 3;
    the (2, 1) pools read 3 and 4 (H) / 3 (W) and give 6 / 3, which the transposed convs read (kernel
    = stride: no growth); wide reads 1 and gives 9, which after reads: needs (9, 9).  H must be a
    multiple of 4 (12), W runs as it is (9): 12x9 (found by the QA pass's brute-force oracle)."""
    from rflint.report import build_report

    assert build_report(rflint.analyze(SquareNeedsStridedOnH(), 32, channels=1)).min_clean_input == (12, 9)


class JoinThenFunctionalPools(nn.Module):
    """A U-Net level (runs at multiples of 4), then five F.max_pool2d and a 5x5 conv without padding."""

    def __init__(self):
        super().__init__()
        self.c0, self.c1 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.p, self.p2, self.up = nn.MaxPool2d(2), nn.MaxPool2d(2), nn.ConvTranspose2d(4, 4, 4, stride=4)
        self.c2, self.last = nn.Conv2d(8, 4, 3, padding=1), nn.Conv2d(4, 4, 5)

    def forward(self, x):
        a = self.c0(x)
        x = self.c2(torch.cat([a, self.up(self.p2(self.c1(self.p(a))))], 1))
        for _ in range(5):
            x = F.max_pool2d(x, 2)
        return self.last(x)


def test_the_clean_size_past_a_join_and_functional_pools():
    """The size bound saw no functional pool (1 px), so past the join's pixel steps the search had
    nothing to start from and gave back the size analysed (found by the QA pass's oracle).  By hand:
    c2 reads the skip's 3 and gives 5; the pools give 6, 8, 12, 20, 36 (jumps 2 to 32), which last
    reads: needs 36.  It runs from 5 * 2**5 = 160 px (multiples of 4 for the join): 160x160."""
    from rflint.report import build_report

    for size in (200, 256):
        assert build_report(rflint.analyze(JoinThenFunctionalPools(), size)).min_clean_input == (160, 160)


class PairsOfUnits(nn.Module):
    """Two 5x5 convs without padding and a padded one, then the map read as pairs of units: it runs
    where (H - 8) x (W - 8) is even."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.c3 = nn.Conv2d(3, 4, 5), nn.Conv2d(4, 4, 5), nn.Conv2d(4, 4, 5, padding=2)

    def forward(self, x):
        x = self.c3(self.c2(self.c1(x)))
        return x.flatten(2).view(x.shape[0], x.shape[1], -1, 2).mean(-1)


def test_axes_the_model_couples_are_raised_one_at_a_time():
    """c3 reads r 9 on both axes: needs (9, 9).  Each axis alone runs at 9 (the other at the size
    analysed, 20x30: 1 x 22 and 12 x 1 units, even), but 9x9 leaves 1 x 1: odd.  One offset for
    both axes gave 10x10; one axis raised at a time gives 10x9 or 9x10, both clean and running (the
    QA pass's oracle: the two smallest), 9x10 the first of them."""
    from rflint.report import build_report

    assert build_report(rflint.analyze(PairsOfUnits(), (20, 30))).min_clean_input == (9, 10)


class WidthOf16(nn.Module):
    """An 11x11 conv without padding, a padded 11x11 one and a 1x1, behind a check of the model's
    own that names no multiple: the width must be a multiple of 16."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.c3 = nn.Conv2d(3, 4, 11), nn.Conv2d(4, 4, 11, padding=5), nn.Conv2d(4, 4, 1)

    def forward(self, x):
        assert x.shape[-1] % 16 == 0
        return self.c3(self.c2(self.c1(x)))


def test_a_check_that_names_no_multiple_is_not_taken_for_a_vanishing_map():
    """Any failure but a vanishing map was searched as if every larger size ran: 7 single steps,
    then doubling and bisecting, which jumped over the multiples of 16 (None from 32x16, though
    21x32 is clean and runs: the QA pass's oracle).  By hand: c2 reads 11, c3 reads 21: needs
    (21, 21); H runs at 21 (11 and more: the first conv's output is 11 - 10 = 1 px at least), W at
    a multiple of 16 from 21: 32."""
    from rflint.report import build_report

    for size in ((32, 16), (21, 48)):
        assert build_report(rflint.analyze(WidthOf16(), size)).min_clean_input == (21, 32)


def test_first_success_bisects_below_a_limit_known_to_succeed():
    # success from d = 37 on, d = 7 known to fail: the gaps probe 15 and 31 (fail), then 63 passes
    # the limit 40.  Without up_to_limit that is the end; with it (the clean-size search below the
    # size analysed, which runs) the probe stops at 40, succeeds, and bisecting (31, 40] gives 37
    from rflint.engine.size_hints import first_success

    probed = []

    def probe(d):
        probed.append(d)
        return d if d >= 37 else None

    assert first_success(probe, 7, limit=40) is None
    probed.clear()
    assert first_success(probe, 7, limit=40, up_to_limit=True) == (37, 37)
    assert probed == [15, 31, 40, 35, 37, 36]
    assert first_success(lambda d: None, 7, limit=40, up_to_limit=True) is None  # stops at the limit


class _LongStem(nn.Module):
    """Eight 3x3 stride-2 convs (256 px down to 1), then a residual block: the stem is all eight.
    The block's first conv is dilated 150 (k_eff 301 > 256): its second reads more than the image
    however many downsamplings go, so no prefix helps and every one allowed is tried."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(*[nn.Conv2d(3 if i == 0 else 4, 4, 3, stride=2, padding=1) for i in range(8)])
        self.a = nn.Conv2d(4, 4, 3, padding=150, dilation=150)
        self.b = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        x = self.stem(x)
        return x + self.b(self.a(x))


def test_the_stem_experiment_tries_at_most_six_downsamplings(monkeypatch):
    # every prefix of the stem's downsamplings was tried, each a shape pass over the whole graph:
    # n passes for a stem of n (rules/RF003.md: at most the first 6)
    from rflint.engine.prepare import Prepared

    calls = []
    probe = Prepared.probe
    monkeypatch.setattr(Prepared, "probe", lambda self, *args, **kwargs: calls.append(1) or probe(self, *args, **kwargs))
    a = rflint.analyze(_LongStem(), 256)
    assert [f.code for f in lint(a).findings if f.code == "RF002"] == ["RF002"]  # a tail: the experiment runs
    assert len(calls) == 6


class _StemThenBlock(nn.Module):
    """At 6 px: stem 3x3/2 (r 3, jump 2); block in 3 (productive) out 7, joined with the skip (r_min
    3); c1 in 3 (productive); c2 in 7 > 6, c3 in 11: a tail of 2.  Stem at stride 1 (jump 1): c1 in
    3 -> 5, c2 in 5 (productive) -> 7, c3 in 7 > 6: a tail of 1."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.block = nn.Conv2d(8, 8, 3, padding=1)
        self.c1, self.c2, self.c3 = (nn.Conv2d(8, 8, 3, padding=1) for _ in range(3))
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.block(x)
        return self.fc(self.c3(self.c2(self.c1(x))).mean((2, 3)))


def test_messages_count_one_in_the_singular():
    # "from 2 to 1 parametric layers", "a branch of 1 parametric layers"
    rf003 = [f.message for f in codes(_StemThenBlock(), 6) if f.code == "RF003"]
    assert len(rf003) == 1 and "inputs: with stem at stride 1 (not 2x2), the predicted tail shortens from 2 to 1 parametric layer;" in rf003[0]
    assert "parametric layers" not in rf003[0]
    # x + a(x): a branch of one conv against the identity's none, a ratio 1 / max(0, 1) = 1
    rf007 = [f.message for f in codes(Residual(1), 16, dominance_ratio=1) if f.code == "RF007"]
    assert len(rf007) == 1 and "joins a branch of 1 parametric layer with one of 0:" in rf007[0]
    assert "of 2 parametric layers with one of 0:" in [f.message for f in codes(Residual(2), 16, dominance_ratio=1)
                                                       if f.code == "RF007"][0]


@pytest.mark.parametrize("kwargs, said", [
    (dict(channels=3), "expects 1 input channel, got 3"),
    (dict(input_shapes=[(1, 1, 8, 8)], channels=3), "input_shapes gives the first input 1 channel but channels is 3"),
])
def test_channel_errors_count_one_in_the_singular(kwargs, said):
    with pytest.raises(RflintError) as err:
        rflint.analyze(nn.Sequential(nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 3)), **({"input_size": 8} if "input_shapes" not in kwargs else {}), **kwargs)
    assert said in str(err.value)


class _FunctionalReluCut(nn.Module):
    """At 8 px: stem 3x3/2 (r 3, jump 2); c1 in 3, c2 in 7, summed with the skip (r_min 3); down
    3x3/2 in 3 (productive), out 7 at jump 4; c3 in 7 (productive), c4 in 15 > 8: the last block
    is the tail, cut after the F.relu of down, fx's relu_3 (the fourth F.relu)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.c1, self.c2, self.c3, self.c4 = (nn.Conv2d(8, 8, 3, padding=1) for _ in range(4))
        self.down = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = F.relu(x + self.c2(F.relu(self.c1(x))))
        x = F.relu(self.down(x))  # the cut
        x = F.relu(x + self.c4(F.relu(self.c3(x))))
        return self.fc(x.mean((2, 3)))


def test_a_cut_named_by_fx_alone_says_where_it_is_made():
    # "after relu_3 no path to the output ...", "truncate after relu_3": a name in no line of the model
    import inspect
    import os

    lines, first = inspect.getsourcelines(_FunctionalReluCut)
    line = first + next(i for i, text in enumerate(lines) if "# the cut" in text)
    label = f"relu_3 at {os.path.relpath(__file__)}:{line}"  # the path as the findings give theirs
    a = rflint.analyze(_FunctionalReluCut(), 8)
    tail = lint(a).context.structure.tail
    assert tail.cut == tail.cut_name == "relu_3" and tail.cut_label == label
    assert tail.params == 2 * (8 * 8 * 9 + 8)
    rf002 = [f for f in codes(_FunctionalReluCut(), 8) if f.code == "RF002"][0]
    assert f"after {label} no path to the output" in rf002.message and f"truncate after {label} (" in rf002.message
    # the JSON's cut is the tensor's name, a field a program reads, not the sentence's words
    assert rf002.data["cut"] == "relu_3" and rf002.data["truncation"]["cut"] == "relu_3"
    # a module's output keeps its path alone (spec §6: ResNet18 at 32 is cut after layer3.0)
    assert lint(rflint.analyze("zoo:resnet18", 32)).context.structure.tail.cut_name == "layer3.0"


def test_a_sequential_models_layers_are_called_layers_in_sentences():
    # "after 3 no path to the output ...", "4 (Conv2d) is unproductive", "0 expects 3 input channels":
    # an nn.Sequential's children are named by their index, read as counts in a sentence.  At 4 px
    # the convs read 1, 3 and 5 > 4: the third (index 4) is the border, cut after the ReLU at index 3
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    found = {f.code: f for f in codes(model, 4)}
    assert found["RF002"].message.startswith("predicted tail at 4x4 px: after layer 3 no path to the output")
    assert "its border, is layer 4);" in found["RF002"].message and "truncate after layer 3 (" in found["RF002"].message
    assert found["RF002"].data["cut"] == "3" and found["RF002"].layer == "4"  # the names themselves are kept
    assert lint(rflint.analyze(model, 4)).context.structure.tail.cut_label == "layer 3"
    assert found["RF001"].message.startswith("layer 4 (Conv2d) is unproductive")
    with pytest.raises(RflintError) as err:
        rflint.analyze(model, 4, channels=1)
    assert "layer 0 expects 3 input channels, got 1" in str(err.value)
    # nested Sequentials: "after 1.0 no path", "0.0 expects 3 input channels" read as numbers too
    from rflint.wording import named

    assert [named(n) for n in ("1.0", "1.1.0", "3@2", "layer1.0", "0.conv", "conv1")] == \
        ["layer 1.0", "layer 1.1.0", "layer 3@2", "layer1.0", "0.conv", "conv1"]
    nested = nn.Sequential(nn.Sequential(*model[:4]), nn.Sequential(*model[4:]))
    found = {f.code: f for f in codes(nested, 4)}
    assert found["RF002"].message.startswith("predicted tail at 4x4 px: after layer 0 no path")  # the block 0's output
    assert found["RF001"].message.startswith("layer 1.0 (Conv2d) is unproductive")
    # a dotted path is a name already
    assert [f.message.split(" (")[0] for f in codes("zoo:resnet18", 32) if f.code == "RF001"][0] == "layer3.1.conv2"


class _DeadProjectionBesideAttention(nn.Module):
    """At 4 px: c1 reads 1, c2 3 (out 5); the pool reads 5 > 4 (out 6, jump 2), the 1x1 proj 6 > 4.
    The tail starts after c2; its one parametric layer, proj, holds 16 * 16 + 16 = 272 params.  An
    encoder layer over the pooled map's tokens (global) and the fc run on to the output in the same
    segment: the head, not the tail's layers."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(16, 16, 3, padding=1)
        self.pool, self.proj = nn.MaxPool2d(2), nn.Conv2d(16, 16, 1)
        self.enc = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.pool(self.c2(self.c1(x)))
        return self.fc(self.proj(x).mean((2, 3)) + self.enc(x.flatten(2).transpose(1, 2)).mean(1))


def test_the_tail_holds_its_own_layers_not_the_head_after_it():
    # "the tail holds 1 parametric RF layer, 635,114 params (77.1%)": a CoAtNet's attention stages were counted
    result = lint(rflint.analyze(_DeadProjectionBesideAttention(), 4))
    tail = result.context.structure.tail
    assert [layer.name for layer in tail.parametric_layers] == ["proj"] and tail.params == 272
    rf002 = next(f for f in result.findings if f.code == "RF002")
    assert "the tail holds 1 parametric RF layer, 272 params" in rf002.message
    # a truncation removes the head too, and says so (the encoder layer's weights among them)
    enc = sum(p.numel() for p in _DeadProjectionBesideAttention().enc.parameters())
    assert "enc" in rf002.data["truncation"]["head_layers_removed"]
    assert rf002.data["truncation"]["params_removed"] >= 272 + enc


class _SegMapAndLogits(_FunctionalReluCut):
    """_FunctionalReluCut returning a 1x1 segmentation map (8 * 2 + 2 = 18 params) and the logits:
    the segment after the last cut runs on to the output, which reads a map."""

    def __init__(self):
        super().__init__()
        self.seg = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = F.relu(x + self.c2(F.relu(self.c1(x))))
        x = F.relu(self.down(x))
        x = F.relu(x + self.c4(F.relu(self.c3(x))))
        return self.seg(x), self.fc(x.mean((2, 3)))


def test_a_two_output_models_tail_holds_its_layers_not_the_classifier():
    # the output node reads the map too, so the fc (8 * 10 + 10 = 90) "fed a map" through it
    tail = lint(rflint.analyze(_SegMapAndLogits(), 8)).context.structure.tail
    assert [layer.name for layer in tail.parametric_layers] == ["c3", "c4", "seg"]
    assert tail.params == 2 * (8 * 8 * 9 + 8) + 18

