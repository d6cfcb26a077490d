"""MPNet18 / MPNet36: multi-path CNNs from Richter et al., "Should you go deeper?
Optimizing convolutional neural network architectures without training" (Fig. 7).

The text of Fig. 7 is not available to us, so this is our reading of it:

* ``stem``: one 3x3 conv, 64 filters, stride 1, BN, ReLU.
* Four stages ``stage1..stage4`` with 64, 128, 256, 512 filters. The first block
  of *every* stage (stage1 included) downsamples with stride 2, placed on the
  first conv of each path so both paths stay shape-compatible.
* Every conv is "same"-padded and followed by BN + ReLU; the paths of a block
  are merged by element-wise addition, with no identity shortcut and no
  activation after the sum.
* MPNet18 uses 2 Module A blocks per stage. Module A has two paths of equal
  depth but different kernel size: ``path3`` (two 3x3 convs) and ``path7``
  (two 7x7 convs).
* MPNet36 uses 4 Module B blocks per stage. Module B has two paths of equal
  kernel size but different depth: ``short`` (one 3x3 conv) and ``long`` (three
  3x3 convs).
* Head: global average pooling and ``fc``.

The point of both designs is that the paths reach the merge with different
receptive fields, which is what rflint must handle at each addition.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


def conv_path(in_channels: int, out_channels: int, kernel_size: int, depth: int, stride: int) -> nn.Sequential:
    """``depth`` x (conv, bn, relu), named conv1/bn1/relu1, ...; stride on conv1 only."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for i in range(1, depth + 1):
        cin = in_channels if i == 1 else out_channels
        s = stride if i == 1 else 1
        layers[f"conv{i}"] = nn.Conv2d(cin, out_channels, kernel_size, stride=s, padding=kernel_size // 2, bias=False)
        layers[f"bn{i}"] = nn.BatchNorm2d(out_channels)
        layers[f"relu{i}"] = nn.ReLU(inplace=False)
    return nn.Sequential(layers)


class ModuleA(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.path3 = conv_path(in_channels, out_channels, kernel_size=3, depth=2, stride=stride)
        self.path7 = conv_path(in_channels, out_channels, kernel_size=7, depth=2, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.path3(x) + self.path7(x)


class ModuleB(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.short = conv_path(in_channels, out_channels, kernel_size=3, depth=1, stride=stride)
        self.long = conv_path(in_channels, out_channels, kernel_size=3, depth=3, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.short(x) + self.long(x)


class MPNet(nn.Module):
    def __init__(
        self,
        block: type[ModuleA] | type[ModuleB],
        blocks_per_stage: int,
        num_classes: int = 10,
        widths: tuple[int, ...] = (64, 128, 256, 512),
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            OrderedDict(
                [
                    ("conv", nn.Conv2d(3, widths[0], kernel_size=3, stride=1, padding=1, bias=False)),
                    ("bn", nn.BatchNorm2d(widths[0])),
                    ("relu", nn.ReLU(inplace=False)),
                ]
            )
        )
        in_channels = widths[0]
        for s, width in enumerate(widths):
            blocks = [block(in_channels, width, stride=2)]
            blocks += [block(width, width) for _ in range(blocks_per_stage - 1)]
            self.add_module(f"stage{s + 1}", nn.Sequential(*blocks))
            in_channels = width
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.stage1(x)
        x = self.stage2(x)
        x = self.stage3(x)
        x = self.stage4(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.fc(x)


def mpnet18(num_classes: int = 10) -> MPNet:
    return MPNet(ModuleA, 2, num_classes)


def mpnet36(num_classes: int = 10) -> MPNet:
    return MPNet(ModuleB, 4, num_classes)
