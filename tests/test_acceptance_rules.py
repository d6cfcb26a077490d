"""The rules issue's acceptance points, through the CLI's JSON on zoo models.

Expected values come from rf-semantics.md §6 (reference numbers) or are derived by hand in the
comments (published parameter / MAC counts of ResNet18 and simple arithmetic).
"""

import json

import pytest
from typer.testing import CliRunner

from rflint.cli.app import app

runner = CliRunner()


def run(*args):
    result = runner.invoke(app, ["check", *args, "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    doc = json.loads(result.stdout)
    return result.exit_code, doc["models"][0]


def convs(model):
    return [layer["name"] for layer in model["layers"] if layer["op"].startswith("Conv")]


def codes(model, code):
    return [f for f in model["findings"] if f["code"] == code]


@pytest.mark.parametrize("name, size, nth", [
    ("vgg11", 32, 6), ("vgg13", 32, 7), ("vgg16", 32, 8), ("vgg19", 32, 8),
    ("vgg11", 64, 7), ("vgg13", 64, 9), ("vgg16", 64, 10), ("vgg19", 64, 10),
    ("resnet18_noskip", 32, 5), ("vgg19_dilated", 32, 5),
])
def test_border_is_the_published_conv(name, size, nth):
    code, m = run(f"zoo:{name}", "--input", str(size))
    assert m["border"] == convs(m)[nth - 1]
    assert code == 1 and len(codes(m, "RF002")) == 1
    assert codes(m, "RF002")[0]["layer"] == m["border"]


@pytest.mark.parametrize("name", ["vgg11", "vgg13", "vgg16", "vgg19"])
def test_vgg_at_224_has_no_tail(name):
    code, m = run(f"zoo:{name}", "--input", "224")
    assert m["tail"] is None and m["border"] is None and not codes(m, "RF002")
    assert code == 0


def test_resnet18_at_32():
    code, m = run("zoo:resnet18", "--input", "32")
    assert code == 1
    # RF001 on exactly conv2 of blocks 6, 7, 8 (stage 3 block 2, both stage-4 blocks)
    assert [f["layer"] for f in codes(m, "RF001")] == ["layer3.1.conv2", "layer4.0.conv2", "layer4.1.conv2"]
    assert m["border"] == "layer3.1.conv2"
    assert m["tail"]["cut"] == "layer3.0"
    assert sorted(m["tail"]["layers"]) == sorted([
        "layer3.1.conv1", "layer3.1.conv2", "layer4.0.conv1", "layer4.0.conv2", "layer4.0.downsample.0",
        "layer4.1.conv1", "layer4.1.conv2",
    ])
    # tail params by hand: layer3.1 = 2*(256*256*9) + 2 BN*(2*256) = 1,180,672;
    # layer4 = 256*512*9 + 512*512*9 + 256*512 + 3*1024 + 2*512*512*9 + 2*1024 = 8,393,728
    assert m["tail"]["params"] == 1_180_672 + 8_393_728
    # truncation: 11,689,512 - (tail + fc 513,000) + Linear(256, 1000) 257,000
    assert m["truncation"]["params_after"] == 11_689_512 - (1_180_672 + 8_393_728 + 513_000) + 257_000
    assert m["resolution"]["final_r_min"] == [139, 139] and m["resolution"]["final_r_max"] == [435, 435]
    statuses = {layer["name"]: layer["status"] for layer in m["layers"]}
    assert statuses["layer3.1.conv2"] == "unproductive" and statuses["layer3.1.conv1"] == "productive"


def test_resnet18_removable_stem():
    _, m = run("zoo:resnet18", "--input", "32")
    [stem] = codes(m, "RF003")
    assert stem["data"]["layers"] == ["conv1", "maxpool"] and stem["data"]["removes_tail"] is True
    assert "conv1" in stem["message"] and "maxpool" in stem["message"] and "no predicted tail" in stem["message"]
    # ResNet18 at 224 has 1,814,073,344 MACs: conv1 118,013,952 (112*112*64*147), fc 512,000, the rest
    # 1,695,547,392 on 56/28/14/7 maps.  At 32 px the rest runs on 8/4/2/1 maps ((8/56)^2 = 1/49) and
    # without the stem's two downsamplings on 32/16/8/4 maps ((32/56)^2 = 1024/3136).
    before = 16 * 16 * 64 * 147 + 1_695_547_392 // 49 + 512_000
    after = 32 * 32 * 64 * 147 + 1_695_547_392 * 1024 // 3136 + 512_000
    assert stem["data"]["macs_before"] == before == m["macs"]
    assert stem["data"]["macs_after"] == after
    assert stem["data"]["macs_increase"] == after - before


def test_resnet18_dead_taps():
    # stage 4 at 32 px: layer4.0.conv1 reads a 2x2 map with stride 2, pad 1 -> taps 1,2 used per axis: 4/9
    # live, 5/9 wasted; the other three read 1x1 maps -> only the centre tap: 8/9 wasted
    _, m = run("zoo:resnet18", "--input", "32")
    dead = {f["layer"]: f["data"]["wasted_fraction"] for f in codes(m, "RF004")}
    assert dead == {"layer4.0.conv1": "5/9", "layer4.0.conv2": "8/9", "layer4.1.conv1": "8/9", "layer4.1.conv2": "8/9"}


def test_resnet34_cut():
    _, m = run("zoo:resnet34", "--input", "32")
    assert m["tail"]["cut"] == "layer3.0"


def test_cifar_stem_resnet18_has_no_tail():
    code, m = run("zoo:resnet18_cifar", "--input", "32")
    assert m["tail"] is None and not codes(m, "RF002") and code == 0


def test_densenet121_tail_is_the_fourth_dense_block():
    _, m = run("zoo:densenet121", "--input", "32")
    block4 = [layer["name"] for layer in m["layers"] if layer["name"].startswith("features.denseblock4.")]
    assert m["tail"]["cut"] == "features.transition3"
    assert m["tail"]["layers"] == block4 and len(block4) == 32  # 16 dense layers x (1x1 + 3x3)


@pytest.mark.parametrize("variant", ["se_resnet18", "cbam_resnet18"])
def test_attention_does_not_change_the_tail(variant):
    _, plain = run("zoo:resnet18", "--input", "32")
    _, att = run(f"zoo:{variant}", "--input", "32")
    assert att["tail"]["cut"] == plain["tail"]["cut"] and att["border"] == plain["border"]
    backbone = [n for n in att["tail"]["layers"] if ".se." not in n and ".cbam." not in n]
    assert backbone == plain["tail"]["layers"]


@pytest.mark.parametrize("name", ["mpnet18", "mpnet36"])
def test_mpnet_border_max_comes_before_border(name):
    _, m = run(f"zoo:{name}", "--input", "32")
    order = [layer["name"] for layer in m["layers"]]
    assert m["border"] is not None and m["border_max"] is not None
    assert order.index(m["border_max"]) < order.index(m["border"])


def test_exit_code_follows_fail_on():
    code, _ = run("zoo:vgg16", "--input", "224", "--fail-on", "warning")
    assert code == 1  # RF005: VGG16's final r_max 212 < 224 is a warning
    code, _ = run("zoo:resnet18", "--input", "32", "--fail-on", "never")
    assert code == 0
    code, m = run("zoo:resnet18", "--input", "32", "--ignore", "RF002")  # its one error
    assert code == 0 and m["findings"] and "RF002" not in {f["code"] for f in m["findings"]}
    # ignoring every rule is not a pass: nothing would be checked
    result = runner.invoke(app, ["check", "zoo:resnet18", "--input", "32", "--ignore", "RF002", "--ignore", "RF00"])
    assert result.exit_code == 2 and "no rule left to run" in result.stderr


def test_a_pointwise_layer_after_a_productive_3x3_blocks_the_bottleneck():
    # README decision: ResNet-50 at 32 px.  The stem gives 11 px (jump 4); in layer3 (jump 16) each
    # bottleneck's 3x3 reads 11 through the skips and outputs 11 + 2*16 = 43, which its 1x1 conv3
    # reads: 43 > 32.  The spec's wording lets that 1x1 block the block's only growing path, so the
    # tail starts at layer3.1 (layer3.0's 3x3 reads 11 at jump 8: 27 <= 32)
    import rflint
    from rflint.rules.structure import analyse_structure

    a = rflint.analyze("zoo:resnet50", 32)
    assert a.layer("layer3.1.conv2").r_in_min == (11, 11) and a.layer("layer3.1.conv3").r_in_min == (43, 43)
    tail = analyse_structure(a).tail
    assert tail.cut_name == "layer3.0" and tail.border.name == "layer3.1.conv3"


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
def test_an_fcn_head_does_not_hide_the_backbones_tail(mode):
    # ResNet18's body at 32 px (tail blocks 6-8, cut after layer3.0: rf-semantics.md §6), a 1x1
    # classifier, and an upsample back to the input size.  A bilinear or bicubic upsample grows r by
    # j and reads the skips' 11 px, so it counted as a productive expanding layer and made the last
    # segment productive: no tail, and the CI gate passed
    import torch
    import torch.nn.functional as F
    from torch import nn

    import rflint
    from rflint.rules.structure import analyse_structure
    from rflint.zoo.resnet import resnet18

    class Seg(nn.Module):
        def __init__(self):
            super().__init__()
            r = resnet18()
            self.body = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool, r.layer1, r.layer2, r.layer3, r.layer4)
            self.cls = nn.Conv2d(512, 5, 1)

        def forward(self, x):
            return F.interpolate(self.cls(self.body(x)), size=x.shape[-2:], mode=mode)

    with torch.device("meta"):
        net = Seg()
    tail = analyse_structure(rflint.analyze(net, 32)).tail
    assert tail is not None and tail.cut_name == "body.6.0" and tail.border.name == "body.6.1.conv2"
