import inspect

import pytest
import torch
import torch.fx

from rflint import zoo

NAMES = sorted(zoo.ZOO)

# torchvision parameter counts at num_classes=1000; a mismatch means our layer table is wrong.
PUBLISHED_PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "vgg11": 132_863_336,
    "vgg16": 138_357_544,
    "densenet121": 7_978_856,
}


def _expected_shape(entry: zoo.ZooEntry, num_classes: int) -> tuple[int, ...]:
    if entry.name == "unet":
        return (1, num_classes, *entry.input_size)
    return (1, num_classes)


def _default_num_classes(entry: zoo.ZooEntry) -> int:
    return inspect.signature(entry.factory).parameters["num_classes"].default


def _module_names(name: str) -> set[str]:
    with torch.device("meta"):
        model = zoo.get(name).factory()
    return {n for n, _ in model.named_modules()}


@pytest.mark.parametrize("name", NAMES)
def test_forward_shape_and_trace(name):
    entry = zoo.ZOO[name]
    torch.manual_seed(0)
    model = entry.factory().eval()
    x = torch.randn(1, entry.channels, *entry.input_size)
    with torch.no_grad():
        out = model(x)
    assert tuple(out.shape) == _expected_shape(entry, _default_num_classes(entry))

    # The traced graph is checked on meta tensors: a second real forward would double the file's runtime.
    traced = torch.fx.symbolic_trace(model)
    assert any(node.op == "call_module" for node in traced.graph.nodes)
    traced_out = traced.to("meta")(x.to("meta"))
    assert traced_out.shape == out.shape


@pytest.mark.parametrize("name", NAMES)
def test_builds_on_meta_device(name):
    entry = zoo.ZOO[name]
    with torch.device("meta"):
        model = entry.factory(num_classes=7)
    assert all(p.is_meta for p in model.parameters())
    out = model.eval()(torch.empty(1, entry.channels, *entry.input_size, device="meta"))
    assert tuple(out.shape) == _expected_shape(entry, 7)


@pytest.mark.parametrize("name,count", sorted(PUBLISHED_PARAMS.items()))
def test_published_parameter_counts(name, count):
    with torch.device("meta"):
        model = zoo.ZOO[name].factory(num_classes=1000)
    assert sum(p.numel() for p in model.parameters()) == count


def test_unet_larger_input():
    model = zoo.get("unet").factory().eval()
    with torch.no_grad():
        out = model(torch.randn(1, 1, 128, 128))
    assert tuple(out.shape) == (1, 2, 128, 128)


def test_defaults_and_entry_names():
    assert {e.name for e in zoo.ZOO.values()} == set(zoo.ZOO)
    assert _default_num_classes(zoo.ZOO["resnet18"]) == 1000
    assert _default_num_classes(zoo.ZOO["resnet18_cifar"]) == 10
    assert _default_num_classes(zoo.ZOO["mpnet18"]) == 10
    assert _default_num_classes(zoo.ZOO["unet"]) == 2
    assert _default_num_classes(zoo.ZOO["audio1d"]) == 35
    assert _default_num_classes(zoo.ZOO["cnn3d"]) == 2


def test_layer_names_follow_torchvision():
    assert {"features.0", "features.17", "features.30"} <= _module_names("vgg16")
    assert {"layer3.1.conv2", "layer4.0.downsample.0"} <= _module_names("resnet18")
    assert {"layer4.0.conv3", "layer2.0.downsample.1"} <= _module_names("resnet50")
    assert {"features.denseblock4.denselayer1.conv2", "features.transition3.conv"} <= _module_names("densenet121")
    assert "stage2.0.path7.conv1" in _module_names("mpnet18")
    assert {"stage4.3.long.conv3", "stage1.0.short.conv1"} <= _module_names("mpnet36")
    assert "inception3a.branch2.1" in _module_names("inception")
    assert "layer1.0.se" in _module_names("se_resnet18")
    assert "layer1.0.cbam" in _module_names("cbam_resnet18")
    assert not any("downsample" in n for n in _module_names("resnet18_noskip"))


def test_get_is_forgiving_and_lists_names_on_error():
    assert zoo.get("VGG19-Dilated") is zoo.ZOO["vgg19_dilated"]
    assert zoo.get("ResNet18_CIFAR") is zoo.ZOO["resnet18_cifar"]
    with pytest.raises(KeyError, match="resnet18_noskip"):
        zoo.get("alexnet")
