"""trace/size_bound.py against brute force: the bound never exceeds the smallest size that runs
(else the clean-size search would skip a size that runs), and is exact on conv/pool networks."""

import pytest
import torch

import rflint
from rflint.engine.size_hints import misaligned
from rflint.trace.size_bound import input_size_bound
from rflint.zoo import ZOO

import dagzoo


def _bound(prepared, size):
    a = prepared.at(size)
    return input_size_bound(a.traced.order, a.traced.modules, a.shapes, a.inputs[0])


def _smallest_running(prepared, n_axes, upto):
    for s in range(1, upto + 1):
        if prepared.needs_at((s,) * n_axes) is not None:
            return s
    return None


# the smallest uniform size that runs, worked out by hand from the layer definitions
EXACT = {
    # VGG: five 2x2/2 max-pools; the last one needs a 2x2 map, so 2**5 = 32
    "vgg16": 32,
    # ResNet18: conv1 7x7/2 p3 -> maxpool 3x3/2 p1 -> three stride-2 3x3 p1 convs.  Backwards from
    # one unit: layer4's conv needs 1 (3x3 p1 s2: 2*0+2+1-2 = 1), ... maxpool needs 1, conv1 needs
    # 2*0 + 6 + 1 - 6 = 1: every size runs
    "resnet18": 1,
}


@pytest.mark.parametrize("name", sorted(n for n in ZOO if len(ZOO[n].input_size) == 2))
def test_bound_is_below_the_smallest_size_that_runs(name):
    prepared = rflint.prepare(f"zoo:{name}")
    bound = _bound(prepared, tuple(ZOO[name].input_size))
    smallest = _smallest_running(prepared, 2, 256)
    assert smallest is not None
    assert max(bound) <= smallest
    if name in EXACT:
        assert smallest == EXACT[name] and max(bound) == smallest


def test_bound_is_exact_on_m5():
    # tests/test_rules_misc.py derives 1772 by hand for M5 (audio1d): the map vanishes below it
    prepared = rflint.prepare("zoo:audio1d")
    assert _bound(prepared, (16000,)) == (1772,)
    assert prepared.needs_at((1771,)) is None and prepared.needs_at((1772,)) is not None
    why = prepared.try_needs((1771,))  # the reason, for the clean-size search: a map vanishes, not a join
    assert "too small" in str(why) and not misaligned(why) and why.__traceback__ is None


@pytest.mark.parametrize("seed", range(30))
def test_bound_is_below_the_smallest_size_that_runs_on_random_dags(seed):
    spec = dagzoo.generate(4200 + seed, ndim=2)
    with torch.device("meta"):
        model = dagzoo.build_module(spec)
    prepared = rflint.prepare(model, channels=spec["channels"])
    size = tuple(spec["input_size"])
    bound = _bound(prepared, size)
    for axis in range(2):  # shrink one axis, the other as generated (that size runs)
        runs = [v for v in range(1, size[axis] + 1)
                if prepared.needs_at(tuple(v if i == axis else s for i, s in enumerate(size))) is not None]
        assert runs and bound[axis] <= runs[0]


class _Crop(torch.nn.Module):
    def forward(self, x):
        return x[:, :, 1:-1]


@pytest.mark.parametrize("after", [
    torch.nn.Upsample(scale_factor=2, mode="bilinear"),  # its factor was 0/0: ZeroDivisionError
    torch.nn.AdaptiveAvgPool2d(2),  # its window was 0: r_out 0
])
def test_a_map_cropped_to_nothing_is_too_small(after):
    # x[:, :, 1:-1] leaves H - 2 rows: none at 1x1 or 2x2 (torch lets the empty map through), one at 3x3
    net = torch.nn.Sequential(_Crop(), torch.nn.ConvTranspose2d(1, 1, 1), after)
    with pytest.raises(rflint.errors.RflintError) as err:
        rflint.analyze(net, 1, channels=1)
    assert str(err.value) == ("input 1x1 is too small for Sequential: the feature map vanishes at 0.getitem; "
                              "the smallest input that runs is 3x3")
    assert rflint.analyze(net, 3, channels=1).layers


class _CropThenConv(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Conv2d(3, 8, 3, 2, 1), torch.nn.Conv2d(8, 8, 3, 2, 1)
        self.c = torch.nn.Conv2d(8, 8, 3)

    def forward(self, x):
        return self.c(self.b(self.a(x))[:, :, 2:-2, 2:-2])


def test_the_map_is_said_to_vanish_where_it_emptied():
    # 16 -> 8 -> 4 px, the crop leaves 0x0, and c (3x3, no padding) is where torch finally fails:
    # the error named c; the map vanished at the crop.  c needs 3 px: crop 7, 13, 25 is the smallest
    with pytest.raises(rflint.errors.RflintError) as err:
        rflint.analyze(_CropThenConv(), 16)
    assert str(err.value) == ("input 16x16 is too small for _CropThenConv: the feature map vanishes at getitem; "
                              "the smallest input that runs is 25x25")


class _Functional(torch.nn.Module):
    """An average pool 3/2, a max pool 2, and a 3x3 conv, all written as functions."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(4, 3, 3, 3))

    def forward(self, x):
        x = torch.nn.functional.avg_pool2d(x, 3, 2)
        x = torch.nn.functional.max_pool2d(x, kernel_size=2)
        return torch.nn.functional.conv2d(x, self.weight)


def test_functional_pools_and_convs_bound_the_size():
    # only modules asked for units, so this model's bound was 1 px and the clean-size search, past a
    # join, had nothing to start from (a U-Net block before F.max_pool2d: the size analysed came back
    # as the smallest clean one).  By hand, backwards from one unit: the 3x3 conv needs 3, the max
    # pool 2 * (3 - 1) + 2 = 6, the average pool 3/2 2 * (6 - 1) + 3 = 13; and 13 runs (6, 3, 1)
    prepared = rflint.prepare(_Functional(), channels=3)
    assert _bound(prepared, (32, 32)) == (13, 13)
    assert _smallest_running(prepared, 2, 64) == 13
