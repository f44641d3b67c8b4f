"""Networks of one's own for the tests: any module mapping images to logits."""

from __future__ import annotations

import torch
from torch import nn


class TinyNet(nn.Module):
    """Two convolutions and dropout: images (B, 3, H, W) to logits (B, C, H, W)."""

    def __init__(self, num_classes: int, width: int = 8) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Dropout2d(0.1), nn.Conv2d(width, num_classes, 1)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images)


class HalfSize(TinyNet):
    """Breaks the contract: logits at half the input size."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return super().forward(images)[..., ::2, ::2]
