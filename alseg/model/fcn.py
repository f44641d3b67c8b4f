"""FCN-8s (Long et al.): a VGG-16 encoder whose pool3, pool4 and fc7 features are fused
coarse to fine, with a width multiplier (CEREALS trains it at width 0.25)."""

from __future__ import annotations

import torch
from torch import nn

from alseg.errors import AlsegError

VGG16_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))  # (channels, convolutions)


def _block(inputs: int, outputs: int, convolutions: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(convolutions):
        layers += [nn.Conv2d(inputs if i == 0 else outputs, outputs, 3, padding=1), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.MaxPool2d(2))


def check_sides(images: torch.Tensor, network: str) -> None:
    """Refuse images whose sides five 2 x 2 poolings cannot halve evenly."""
    if images.shape[2] % 32 or images.shape[3] % 32:
        raise AlsegError(
            f"{network} needs image sides divisible by 32 (got {tuple(images.shape[2:])}); "
            "set dataset.splits.size accordingly."
        )


class Vgg16Encoder(nn.Module):
    """VGG-16 blocks, then fc6/fc7 as convolutions; returns the pool3, pool4 and fc7 features."""

    def __init__(self, width: float) -> None:
        super().__init__()
        channels = [max(8, round(c * width)) for c, _ in VGG16_BLOCKS]
        inputs, blocks = 3, []
        for out, (_, convolutions) in zip(channels, VGG16_BLOCKS, strict=True):
            blocks.append(_block(inputs, out, convolutions))
            inputs = out
        self.blocks = nn.ModuleList(blocks)
        fc = max(16, round(4096 * width))
        self.fc = nn.Sequential(
            nn.Conv2d(inputs, fc, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(fc, fc, 1),
            nn.ReLU(inplace=True),
        )
        self.out_channels = (channels[2], channels[3], fc)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        features, x = [], images
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return [features[2], features[3], self.fc(x)]


class Fcn8sDecoder(nn.Module):
    """Projects pool3, pool4 and fc7 to `channels`, adds them coarse to fine (strides 32, 16,
    8), and upsamples the sum 8x to the input's size."""

    def __init__(self, in_channels: tuple[int, int, int], channels: int) -> None:
        super().__init__()
        self.project = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        pool3, pool4, fc7 = (project(f) for project, f in zip(self.project, features, strict=True))
        x = nn.functional.interpolate(fc7, size=pool4.shape[2:], mode="bilinear") + pool4
        x = nn.functional.interpolate(x, size=pool3.shape[2:], mode="bilinear") + pool3
        return nn.functional.interpolate(x, scale_factor=8, mode="bilinear")


class Fcn8s(nn.Module):
    """encoder -> decoder -> segmentation_head, the layout of an smp network."""

    def __init__(self, num_classes: int, width: float = 1.0, channels: int = 64) -> None:
        super().__init__()
        if not 0 < width <= 1:
            raise AlsegError(f"model.network.width must be in (0, 1] (got {width}).")
        self.encoder = Vgg16Encoder(width)
        self.decoder = Fcn8sDecoder(self.encoder.out_channels, channels)
        self.segmentation_head = nn.Sequential(nn.Conv2d(channels, num_classes, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_sides(images, "FCN-8s")
        return self.segmentation_head(self.decoder(self.encoder(images)))
