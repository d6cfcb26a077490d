"""Benchmark-only architectures (stress shapes for the analysis, not reference models).

Every factory takes no required argument, builds under ``torch.device("meta")`` and traces with
``torch.fx.symbolic_trace``:

* ``diamond_chain(n=60)``  n fork-join diamonds (3x3 and 5x5 branch, added): 2^n paths.
* ``densenet264()``        DenseNet-264 (growth 32, blocks (6, 12, 64, 48), bn_size 4, 64 initial
                           features, compression 0.5), torchvision module names.  264 Conv2d.
* ``resnet1000()``         ResNet-1001: torchvision v1.5 bottleneck ResNet with blocks
                           (3, 111, 216, 3) = 333 bottlenecks.  "1001 layers" counted the way
                           ResNet-50 gets its 50: conv1 + 3 x 333 block convs + fc.  1004 Conv2d
                           (the 4 projection shortcuts included).
* ``unet3d()``             a small 3D U-Net (Cicek et al., 2016): Conv3d, MaxPool3d,
                           ConvTranspose3d, skip concatenations; 1 channel, e.g. 64x64x64.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from rflint.zoo.densenet import DenseNet
from rflint.zoo.resnet import Bottleneck, ResNet
from rflint.zoo.unet import ThreeLevelUNet

# --------------------------------------------------------------------------- the 2^n-path chain


class DiamondChain(nn.Module):
    """n fork-join diamonds (a 3x3 branch and a 5x5 branch, added): 2^n input->output paths."""

    def __init__(self, n: int = 60, width: int = 4):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        self.left = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1) for _ in range(n))
        self.right = nn.ModuleList(nn.Conv2d(width, width, 5, padding=2) for _ in range(n))

    def forward(self, x):
        x = self.stem(x)
        for left, right in zip(self.left, self.right):
            x = left(x) + right(x)
        return x


def diamond_chain(n: int = 60) -> DiamondChain:
    return DiamondChain(n)


# --------------------------------------------------------------------------- big classifiers

DENSENET264_BLOCKS = (6, 12, 64, 48)
RESNET1000_BLOCKS = (3, 111, 216, 3)


def densenet264(num_classes: int = 1000) -> DenseNet:
    """DenseNet-264 (Huang et al., 2017, Table 1), built with the zoo's torchvision-style DenseNet."""
    return DenseNet(growth_rate=32, block_config=DENSENET264_BLOCKS, num_init_features=64, bn_size=4,
                    num_classes=num_classes)


def resnet1000(num_classes: int = 1000) -> ResNet:
    """ResNet-1001 in the ImageNet (v1.5, post-activation bottleneck) layout, blocks (3, 111, 216, 3)."""
    return ResNet(Bottleneck, list(RESNET1000_BLOCKS), num_classes)


# --------------------------------------------------------------------------- 3D U-Net


def double_conv3d(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv3d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)),
        ("bn1", nn.BatchNorm3d(out_channels)),
        ("relu1", nn.ReLU(inplace=False)),
        ("conv2", nn.Conv3d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)),
        ("bn2", nn.BatchNorm3d(out_channels)),
        ("relu2", nn.ReLU(inplace=False)),
    ]))


class UNet3D(ThreeLevelUNet):
    """Three 2x down/up steps; every conv is 3x3x3 "same", so sides divisible by 8 keep their size."""

    def __init__(self, in_channels: int = 1, num_classes: int = 2, base: int = 8):
        super().__init__()
        c1, c2, c3, c4 = base, 2 * base, 4 * base, 8 * base
        self.enc1 = double_conv3d(in_channels, c1)
        self.pool1 = nn.MaxPool3d(2)
        self.enc2 = double_conv3d(c1, c2)
        self.pool2 = nn.MaxPool3d(2)
        self.enc3 = double_conv3d(c2, c3)
        self.pool3 = nn.MaxPool3d(2)
        self.bottleneck = double_conv3d(c3, c4)
        self.up3 = nn.ConvTranspose3d(c4, c3, kernel_size=2, stride=2)
        self.dec3 = double_conv3d(2 * c3, c3)
        self.up2 = nn.ConvTranspose3d(c3, c2, kernel_size=2, stride=2)
        self.dec2 = double_conv3d(2 * c2, c2)
        self.up1 = nn.ConvTranspose3d(c2, c1, kernel_size=2, stride=2)
        self.dec1 = double_conv3d(2 * c1, c1)
        self.head = nn.Conv3d(c1, num_classes, kernel_size=1)


def unet3d(num_classes: int = 2) -> UNet3D:
    return UNet3D(in_channels=1, num_classes=num_classes)
