"""Built-in model zoo: pure ``torch.nn`` reference CNNs for ``rflint zoo``.

Every factory accepts ``num_classes`` (and needs nothing else), builds under
``torch.device("meta")`` and traces with ``torch.fx.symbolic_trace``. Module
names follow torchvision conventions where a torchvision counterpart exists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from . import attention, audio, densenet, inception, mpnet, resnet, unet, vgg, volumetric


@dataclass(frozen=True)
class ZooEntry:
    name: str
    factory: Callable[..., nn.Module]
    input_size: tuple[int, ...]
    channels: int
    description: str


_ENTRIES = [
    ZooEntry("vgg11", vgg.vgg11, (224, 224), 3, "VGG-11 (config A), no batch norm"),
    ZooEntry("vgg13", vgg.vgg13, (224, 224), 3, "VGG-13 (config B), no batch norm"),
    ZooEntry("vgg16", vgg.vgg16, (224, 224), 3, "VGG-16 (config D), no batch norm"),
    ZooEntry("vgg19", vgg.vgg19, (224, 224), 3, "VGG-19 (config E), no batch norm"),
    ZooEntry("vgg19_dilated", vgg.vgg19_dilated, (224, 224), 3, "VGG-19 with every 3x3 conv dilated by 3"),
    ZooEntry("resnet18", resnet.resnet18, (224, 224), 3, "ResNet-18, BasicBlock [2,2,2,2]"),
    ZooEntry("resnet34", resnet.resnet34, (224, 224), 3, "ResNet-34, BasicBlock [3,4,6,3]"),
    ZooEntry("resnet50", resnet.resnet50, (224, 224), 3, "ResNet-50 v1.5, Bottleneck [3,4,6,3]"),
    ZooEntry("resnet18_cifar", resnet.resnet18_cifar, (32, 32), 3, "ResNet-18 with 3x3/s1 stem, no max-pool (CIFAR)"),
    ZooEntry("resnet18_noskip", resnet.resnet18_noskip, (32, 32), 3, "ResNet-18 with all skip connections removed"),
    ZooEntry("densenet121", densenet.densenet121, (224, 224), 3, "DenseNet-121, growth 32, blocks (6,12,24,16)"),
    ZooEntry("mpnet18", mpnet.mpnet18, (32, 32), 3, "MPNet18: 3x3/7x7 two-path Module A blocks (Richter et al.)"),
    ZooEntry("mpnet36", mpnet.mpnet36, (32, 32), 3, "MPNet36: short/long two-path Module B blocks (Richter et al.)"),
    ZooEntry("inception", inception.inception, (224, 224), 3, "Small Inception-v1 (GoogLeNet stem + 3a/3b/4a/4b)"),
    ZooEntry("se_resnet18", attention.se_resnet18, (224, 224), 3, "ResNet-18 with squeeze-and-excitation blocks"),
    ZooEntry("cbam_resnet18", attention.cbam_resnet18, (224, 224), 3, "ResNet-18 with CBAM channel+spatial attention"),
    ZooEntry("unet", unet.unet, (64, 64), 1, "Small 2D U-Net (3 levels), transposed-conv and bilinear ups"),
    ZooEntry("audio1d", audio.audio1d, (16000,), 1, "M5-style 1D CNN on 1 s of raw 16 kHz audio"),
    ZooEntry("cnn3d", volumetric.cnn3d, (32, 64, 64), 1, "Small 3D CNN for DxHxW volumes, anisotropic kernels"),
]

ZOO: dict[str, ZooEntry] = {e.name: e for e in _ENTRIES}


def get(name: str) -> ZooEntry:
    key = name.strip().lower().replace("-", "_")
    try:
        return ZOO[key]
    except KeyError:
        raise KeyError(f"unknown zoo model {name!r}; valid names: {', '.join(ZOO)}") from None


__all__ = ["ZOO", "ZooEntry", "get"]
