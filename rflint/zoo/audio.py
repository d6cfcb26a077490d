"""M5-style 1D CNN on raw 16 kHz waveforms (Dai et al., 2017, "Very deep CNNs
for raw waveforms"), at the narrow 32/64-channel width of the PyTorch
speech-commands tutorial. 35 classes = Speech Commands v2.

The first conv is wide (80 samples = 5 ms) with stride 4, then four 4x
max-pools bring 16000 samples down to 14 frames before global average pooling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class M5(nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = 35, width: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(in_channels, width, kernel_size=80, stride=4)
        self.bn1 = nn.BatchNorm1d(width)
        self.relu1 = nn.ReLU(inplace=False)
        self.pool1 = nn.MaxPool1d(4)
        self.conv2 = nn.Conv1d(width, width, kernel_size=3)
        self.bn2 = nn.BatchNorm1d(width)
        self.relu2 = nn.ReLU(inplace=False)
        self.pool2 = nn.MaxPool1d(4)
        self.conv3 = nn.Conv1d(width, 2 * width, kernel_size=3)
        self.bn3 = nn.BatchNorm1d(2 * width)
        self.relu3 = nn.ReLU(inplace=False)
        self.pool3 = nn.MaxPool1d(4)
        self.conv4 = nn.Conv1d(2 * width, 2 * width, kernel_size=3)
        self.bn4 = nn.BatchNorm1d(2 * width)
        self.relu4 = nn.ReLU(inplace=False)
        self.pool4 = nn.MaxPool1d(4)
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.relu1(self.bn1(self.conv1(x))))
        x = self.pool2(self.relu2(self.bn2(self.conv2(x))))
        x = self.pool3(self.relu3(self.bn3(self.conv3(x))))
        x = self.pool4(self.relu4(self.bn4(self.conv4(x))))
        x = F.adaptive_avg_pool1d(x, 1)
        x = torch.flatten(x, 1)
        return self.fc(x)


def audio1d(num_classes: int = 35) -> M5:
    return M5(in_channels=1, num_classes=num_classes)
