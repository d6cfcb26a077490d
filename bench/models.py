"""Benchmark-only architectures (stress shapes for the analysis, not reference models)."""

from __future__ import annotations

from torch import nn


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
