"""VGG (Simonyan & Zisserman, 2014), configurations A/B/D/E without batch norm.

``vgg19_dilated`` gives every 3x3 conv ``dilation=3`` (effective kernel 7) with
``padding=3``, so feature-map sizes match plain VGG19 while the receptive field
grows much faster.
"""

from __future__ import annotations

import torch
from torch import nn

# Numbers are conv output channels; "M" is a 2x2/stride-2 max-pool.
CFGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [
        64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
        512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
    ],
}


def make_layers(cfg: list[int | str], dilation: int = 1) -> nn.Sequential:
    layers: list[nn.Module] = []
    in_channels = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            # padding == dilation keeps "same" spatial size for a 3x3 kernel.
            out_channels = int(v)
            layers.append(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=dilation, dilation=dilation))
            layers.append(nn.ReLU(inplace=False))
            in_channels = out_channels
    return nn.Sequential(*layers)


class VGG(nn.Module):
    def __init__(self, features: nn.Sequential, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(inplace=False),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=False),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def vgg11(num_classes: int = 1000) -> VGG:
    return VGG(make_layers(CFGS["A"]), num_classes)


def vgg13(num_classes: int = 1000) -> VGG:
    return VGG(make_layers(CFGS["B"]), num_classes)


def vgg16(num_classes: int = 1000) -> VGG:
    return VGG(make_layers(CFGS["D"]), num_classes)


def vgg19(num_classes: int = 1000) -> VGG:
    return VGG(make_layers(CFGS["E"]), num_classes)


def vgg19_dilated(num_classes: int = 1000) -> VGG:
    return VGG(make_layers(CFGS["E"], dilation=3), num_classes)
