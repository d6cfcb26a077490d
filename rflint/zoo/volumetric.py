"""A small 3D CNN for single-channel volumes (D x H x W = 32 x 64 x 64).

Medical volumes are often anisotropic (thick slices, fine in-plane pixels),
so the stem is an in-plane (1, 3, 3) conv and a later (3, 1, 1) conv mixes
along depth only. These non-cubic kernels make the receptive field differ
per axis, which rflint has to report axis by axis.
"""

from __future__ import annotations

import torch
from torch import nn


class CNN3D(nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = 2) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(in_channels, 32, kernel_size=(1, 3, 3), padding=(0, 1, 1), bias=False)
        self.bn1 = nn.BatchNorm3d(32)
        self.conv2 = nn.Conv3d(32, 32, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(32)
        self.pool1 = nn.MaxPool3d(kernel_size=2, stride=2)
        self.conv3 = nn.Conv3d(32, 64, kernel_size=3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm3d(64)
        self.conv4 = nn.Conv3d(64, 64, kernel_size=(3, 1, 1), padding=(1, 0, 0), bias=False)
        self.bn4 = nn.BatchNorm3d(64)
        self.pool2 = nn.MaxPool3d(kernel_size=2, stride=2)
        self.conv5 = nn.Conv3d(64, 128, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn5 = nn.BatchNorm3d(128)
        self.relu = nn.ReLU(inplace=False)
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.pool1(x)
        x = self.relu(self.bn3(self.conv3(x)))
        x = self.relu(self.bn4(self.conv4(x)))
        x = self.pool2(x)
        x = self.relu(self.bn5(self.conv5(x)))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def cnn3d(num_classes: int = 2) -> CNN3D:
    return CNN3D(in_channels=1, num_classes=num_classes)
