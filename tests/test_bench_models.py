"""The benchmark models of bench/models.py build on the meta device, trace with torch.fx and analyze;
their sizes and receptive fields match numbers derived by hand (derivations in the comments).

Analyses run at small inputs to stay fast; the benchmark itself runs them at full size."""

from __future__ import annotations

import inspect
import os
import sys

import pytest
import torch
import torch.fx as fx
from torch import nn

import rflint

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")
sys.path.insert(0, BENCH)
import models  # noqa: E402  (bench/models.py)

sys.path.remove(BENCH)

FACTORIES = [models.diamond_chain, models.densenet264, models.resnet1000, models.unet3d]


def _count(module: nn.Module, kind: type) -> int:
    return sum(1 for m in module.modules() if type(m) is kind)


@pytest.fixture(scope="module")
def built() -> dict[str, tuple[nn.Module, fx.GraphModule]]:
    """Every factory built once under the meta device, and its torch.fx trace."""
    out = {}
    for factory in FACTORIES:
        with torch.device("meta"):
            module = factory()
        out[factory.__name__] = (module.eval(), fx.symbolic_trace(module))
    return out


@pytest.mark.parametrize("factory", FACTORIES, ids=lambda f: f.__name__)
def test_factory_needs_no_arguments_and_builds_on_meta(factory, built):
    sig = inspect.signature(factory)
    assert all(p.default is not p.empty for p in sig.parameters.values())
    module, gm = built[factory.__name__]
    tensors = list(module.parameters()) + list(module.buffers())
    assert tensors and all(t.is_meta for t in tensors)
    assert sum(1 for n in gm.graph.nodes if n.op == "call_module") > 0


# --------------------------------------------------------------------------- diamond chain

def test_diamond_chain_receptive_fields():
    # Every conv has stride 1, so the jump stays 1 and a k x k conv adds k - 1 to r on each axis.
    # The 3x3 stem gives r = 3.  Diamond i adds +2 (3x3 branch) or +4 (5x5 branch); the add takes
    # both.  A path through n diamonds that takes the 5x5 branch a times has r = 3 + 2n + 2a, so
    # over all 2^n paths: r_min = 3 + 2n (a = 0), r_max = 3 + 4n (a = n); without the stem's +2
    # that is (1 + 2n, 1 + 4n).  The input of diamond k's convs has seen k diamonds:
    # r_in = (3 + 2k, 3 + 4k).  rflint's "final" layer is the last RF layer with the largest r_max:
    # right[n-1] (5x5), whose output RF is r_in + 4 = (3 + 2(n-1) + 4, 3 + 4(n-1) + 4) = (5 + 2n, 3 + 4n).
    n = 60
    a = rflint.analyze(models.diamond_chain, 32)
    assert a.device == "meta" and a.warnings == []
    assert len(a.layers) == 1 + 2 * n
    for k in (0, 1, 17, n - 1):
        for side in ("left", "right"):
            layer = a.layer(f"{side}.{k}")
            assert layer.r_in_min == (3 + 2 * k,) * 2
            assert layer.r_in_max == (3 + 4 * k,) * 2
    out = a.rf[a.outputs[0]]
    assert [ax.r_min for ax in out.axes] == [3 + 2 * n] * 2 == [123, 123]
    assert [ax.r_max for ax in out.axes] == [3 + 4 * n] * 2 == [243, 243]
    assert a.final_layer == f"right.{n - 1}"
    assert a.final_r_min == (5 + 2 * n,) * 2 and a.final_r_max == (3 + 4 * n,) * 2


# --------------------------------------------------------------------------- DenseNet-264

def test_densenet264_layout(built):
    module, gm = built["densenet264"]
    # Each dense layer has a 1x1 and a 3x3 conv: blocks (6, 12, 64, 48) hold 12, 24, 128, 96 convs;
    # plus conv0 and one 1x1 conv per transition (3): 12 + 24 + 128 + 96 + 1 + 3 = 264 Conv2d.
    for i, layers in enumerate((6, 12, 64, 48), start=1):
        block = getattr(module.features, f"denseblock{i}")
        assert len(block) == layers and _count(block, nn.Conv2d) == 2 * layers
    assert _count(module, nn.Conv2d) == 264
    # channels: 64 + 6*32 = 256 -> 128; 128 + 12*32 = 512 -> 256; 256 + 64*32 = 2304 -> 1152;
    # 1152 + 48*32 = 2688 into the classifier
    assert module.classifier.in_features == 2688
    # Parameters, by hand.  A dense layer with c input channels: BN(c) 2c + conv1 c*128 +
    # BN(128) 256 + conv2 128*32*9 = 36,864, so 130c + 37,120.  Summed over a block of L layers
    # starting at c0 (c = c0 + 32i): 130 (L c0 + 16 L (L-1)) + 37,120 L.
    #   block1 (c0 64,   L 6):  130 *    864 +   222,720 =    335,040
    #   block2 (c0 128,  L 12): 130 *  3,648 +   445,440 =    919,680
    #   block3 (c0 256,  L 64): 130 * 80,896 + 2,375,680 = 12,892,160
    #   block4 (c0 1152, L 48): 130 * 91,392 + 1,781,760 = 13,662,720
    # transitions BN(c) 2c + conv c*c/2:  256 -> 33,280;  512 -> 132,096;  2304 -> 2,658,816
    # conv0 3*64*49 = 9,408; norm0 128; norm5 2*2688 = 5,376; classifier 2688*1000 + 1000 = 2,689,000
    # total 33,337,704.  (Cross-check: the same formula gives torchvision's densenet121 count,
    # 7,978,856; PaddleClas lists DenseNet264 at 33.74M, which is this plus the 398,528 BN running
    # means and variances.)
    assert sum(p.numel() for p in module.parameters()) == 33_337_704
    running = sum(b.numel() for name, b in module.named_buffers() if not name.endswith("num_batches_tracked"))
    assert running == 398_528


def test_densenet264_analyzes(built):
    module, _ = built["densenet264"]
    a = rflint.analyze(module, 32)
    assert a.warnings == [] and a.params == 33_337_704
    # RF layers: 264 convs, pool0 and the 3 transition average pools
    assert len(a.layers) == 268
    assert sum(1 for layer in a.layers if layer.op == "Conv2d") == 264
    # stem: conv0 7x7/2 -> r 7, j 2; pool0 3x3/2 -> r 7 + 2*2 = 11, j 4
    assert a.layer("features.denseblock1.denselayer1.conv1").r_in_min == (11, 11)


# --------------------------------------------------------------------------- ResNet-1001

def test_resnet1000_layout(built):
    module, gm = built["resnet1000"]
    blocks = (3, 111, 216, 3)
    assert tuple(len(getattr(module, f"layer{i}")) for i in range(1, 5)) == blocks
    # 333 bottlenecks x 3 convs = 999, plus conv1, plus 4 projection shortcuts (layer1's first block
    # too: 64 != 256 channels): 1004 Conv2d.  ResNet depth counting (conv1 + block convs + fc): 1001.
    assert _count(module, nn.Conv2d) == 1 + 3 * sum(blocks) + 4 == 1004
    assert 1 + 3 * sum(blocks) + 1 == 1001
    # fx nodes: input; conv1, bn1, relu, maxpool; per bottleneck conv1, bn1, relu, conv2, bn2, relu,
    # conv3, bn3, add, relu (10) and 2 more (conv, bn) for the 4 downsamples; avgpool, flatten,
    # fc, output:  1 + 4 + 3330 + 8 + 4 = 3347
    assert len(gm.graph.nodes) == 3347


def test_resnet1000_analyzes(built):
    module, _ = built["resnet1000"]
    a = rflint.analyze(module, 32)
    assert a.warnings == []
    convs = [layer for layer in a.layers if layer.op == "Conv2d"]
    assert len(convs) == 1004 and len(a.layers) == 1004 + 1  # + maxpool
    assert a.layer("layer1.0.conv1").r_in_min == (11, 11)  # conv1 7x7/2 + maxpool 3x3/2: 7 + 2*2
    # the deepest path has every 3x3 conv: stride 2 of layer2/3/4 sits on the first block's conv2
    # (v1.5).  r grows by 2*j per 3x3 conv with j the jump at its input:
    #   layer1 3 convs at j 4: +24 -> 35; layer2 first at j 4: +8 -> 43, then j 8, 110 more: +1760
    #   -> 1803; layer3 first at j 8: +16 -> 1819, then j 16, 215 more: +6880 -> 8699;
    #   layer4 first at j 16: +32 -> 8731, then j 32, 2 more: +128 -> 8859.
    assert a.final_r_max == (8859, 8859)


# --------------------------------------------------------------------------- 3D U-Net

def test_unet3d_layout_and_receptive_fields(built):
    module, _ = built["unet3d"]
    # double convs: enc1-3, bottleneck, dec1-3 (7 x 2) + the 1x1x1 head
    assert _count(module, nn.Conv3d) == 15
    assert _count(module, nn.ConvTranspose3d) == 3 and _count(module, nn.MaxPool3d) == 3
    a = rflint.analyze(models.unet3d, (16, 16, 16))
    assert a.device == "meta" and a.warnings == []
    assert a.layer("head").out_shape == (1, 2, 16, 16, 16)  # "same" convs: output size = input size
    # encoder: enc1 two 3x3x3 -> r 5; pool 2/2 -> 6, j 2; enc2 +2*2*2 -> 14; pool -> 16, j 4;
    # enc3 +2*4*2 -> 32; pool -> 36, j 8 (input of the bottleneck); bottleneck +2*8*2 -> 68.
    assert a.layer("bottleneck.conv1").r_in_min == (36, 36, 36)
    # r_min of the output: every path crosses enc1 and dec1 (two 3x3x3 each) and the 1x1x1 head, the
    # shortest adds nothing else (the s1 skip): 1 + 4*2 = 9.  r_max: through the bottleneck (68, j 8);
    # a ConvTranspose3d with kernel = stride = 2 makes each output voxel read exactly one input voxel,
    # so r stays and j halves: dec3 +2*4*2 -> 84, dec2 +2*2*2 -> 92, dec1 +2*1*2 -> 96.
    assert a.final_r_min == (9, 9, 9) and a.final_r_max == (96, 96, 96)


def test_unet3d_unproductive_layers_at_16():
    from rflint.report import build_report

    # A layer with weights is unproductive when the smallest RF reaching its input exceeds the
    # 16-voxel side on every axis.  Input r_min per layer (same arithmetic as above; a concat takes
    # the smaller of its inputs, the skip):  enc1 1, 3; enc2 6, 10; enc3 16, 24; bottleneck 36, 52;
    # up3 68; dec3 min(32, 68) = 32, 40; up2 48; dec2 min(14, 48) = 14, 18; up1 22;
    # dec1 min(5, 22) = 5, 7; head 9.  Above 16: these nine.
    report = build_report(rflint.analyze(models.unet3d, (16, 16, 16)))
    unproductive = {f.layer for f in report.findings if f.code == "RF001"}
    assert unproductive == {"enc3.conv2", "bottleneck.conv1", "bottleneck.conv2", "up3", "dec3.conv1",
                            "dec3.conv2", "up2", "dec2.conv2", "up1"}
    assert "RF002" not in {f.code for f in report.findings}  # dec1 and the head still see new context
