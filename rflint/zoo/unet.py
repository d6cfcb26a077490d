"""A small 2D U-Net (Ronneberger et al., 2015) with three down/up steps.

The decoder deliberately mixes the two common upsampling styles so rflint sees
both: the deepest step uses ``ConvTranspose2d(k=2, s=2)``, the other two use
bilinear ``nn.Upsample`` followed by a 3x3 conv. Convs are "same"-padded, so any
input whose sides are divisible by 8 (e.g. 64 or 128) maps to an output of the
same size.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


def double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)),
                ("bn1", nn.BatchNorm2d(out_channels)),
                ("relu1", nn.ReLU(inplace=False)),
                ("conv2", nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)),
                ("bn2", nn.BatchNorm2d(out_channels)),
                ("relu2", nn.ReLU(inplace=False)),
            ]
        )
    )


def upsample_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        OrderedDict(
            [
                ("upsample", nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)),
                ("conv", nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)),
            ]
        )
    )


class ThreeLevelUNet(nn.Module):
    """The wiring of a three-level U-Net; subclasses build enc1-3, pool1-3, bottleneck, up3-1,
    dec3-1 and head (2-D here, 3-D in bench/models.py)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = self.enc1(x)
        s2 = self.enc2(self.pool1(s1))
        s3 = self.enc3(self.pool2(s2))
        x = self.bottleneck(self.pool3(s3))
        x = self.dec3(torch.cat([s3, self.up3(x)], dim=1))
        x = self.dec2(torch.cat([s2, self.up2(x)], dim=1))
        x = self.dec1(torch.cat([s1, self.up1(x)], dim=1))
        return self.head(x)


class UNet(ThreeLevelUNet):
    def __init__(self, in_channels: int = 1, num_classes: int = 2, base: int = 32) -> None:
        super().__init__()
        self.enc1 = double_conv(in_channels, base)
        self.pool1 = nn.MaxPool2d(2)
        self.enc2 = double_conv(base, base * 2)
        self.pool2 = nn.MaxPool2d(2)
        self.enc3 = double_conv(base * 2, base * 4)
        self.pool3 = nn.MaxPool2d(2)
        self.bottleneck = double_conv(base * 4, base * 8)
        self.up3 = nn.ConvTranspose2d(base * 8, base * 4, kernel_size=2, stride=2)
        self.dec3 = double_conv(base * 8, base * 4)
        self.up2 = upsample_conv(base * 4, base * 2)
        self.dec2 = double_conv(base * 4, base * 2)
        self.up1 = upsample_conv(base * 2, base)
        self.dec1 = double_conv(base * 2, base)
        self.head = nn.Conv2d(base, num_classes, kernel_size=1)


def unet(num_classes: int = 2) -> UNet:
    return UNet(in_channels=1, num_classes=num_classes)
