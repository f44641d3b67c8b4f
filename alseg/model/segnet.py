"""SegNet (Badrinarayanan et al., 2017): a VGG-16-BN encoder of five stages, each ending in a
2 x 2 max-pool whose indices the mirrored decoder's max-unpooling reuses, so upsampling puts
each value back where its encoder stage pooled it from; a width multiplier as FCN-8s has."""

from __future__ import annotations

import itertools
from pathlib import Path

import torch
from torch import nn

from alseg.errors import AlsegError
from alseg.model.fcn import check_sides

SEGNET_STAGES = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))  # (channels, convolutions)


def _convolutions(channels: list[int]) -> nn.Sequential:
    """3 x 3 convolutions, each followed by batch norm and ReLU, through `channels`."""
    layers: list[nn.Module] = []
    for inputs, outputs in itertools.pairwise(channels):
        layers += [nn.Conv2d(inputs, outputs, 3, padding=1, bias=False), nn.BatchNorm2d(outputs)]
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class PooledFeatures(list):
    """The encoder's pooled features (shallow to deep), with each stage's pooling indices and
    the size it had before pooling: what the decoder's unpooling needs."""

    def __init__(self, features: list[torch.Tensor], indices: list[torch.Tensor], sizes: list[torch.Size]):
        super().__init__(features)
        self.indices, self.sizes = indices, sizes


class SegNetEncoder(nn.Module):
    """VGG-16-BN's five stages; each max-pools 2 x 2 and keeps where each maximum came from."""

    def __init__(self, width: float) -> None:
        super().__init__()
        self.out_channels = [max(8, round(c * width)) for c, _ in SEGNET_STAGES]
        inputs, stages = 3, []
        for outputs, (_, count) in zip(self.out_channels, SEGNET_STAGES, strict=True):
            stages.append(_convolutions([inputs] + [outputs] * count))
            inputs = outputs
        self.stages = nn.ModuleList(stages)
        self.pool = nn.MaxPool2d(2, 2, return_indices=True)

    def forward(self, images: torch.Tensor) -> PooledFeatures:
        features, indices, sizes, x = [], [], [], images
        for stage in self.stages:
            x = stage(x)
            sizes.append(x.shape)
            x, where = self.pool(x)
            features.append(x)
            indices.append(where)
        return PooledFeatures(features, indices, sizes)


class SegNetDecoder(nn.Module):
    """The encoder mirrored: each stage max-unpools with its encoder stage's indices, then
    convolves (as many convolutions as the encoder stage, the last one narrowing to the next
    stage's channels); the shallowest ends at the first stage's width."""

    def __init__(self, channels: list[int]) -> None:
        super().__init__()
        stages = []
        for stage in reversed(range(len(SEGNET_STAGES))):
            count = SEGNET_STAGES[stage][1]
            out = channels[max(stage - 1, 0)]
            stages.append(_convolutions([channels[stage]] * count + [out]))
        self.stages = nn.ModuleList(stages)

    def forward(self, features: PooledFeatures) -> torch.Tensor:
        x = features[-1]
        pooled = zip(reversed(features.indices), reversed(features.sizes), strict=True)
        for stage, (where, size) in zip(self.stages, pooled, strict=True):
            x = stage(unpool(x, where, size))
        return x


def unpool(pooled: torch.Tensor, indices: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """Max-unpooling: each pooled value at the flat position (within its plane of `size`) that
    its pooling took it from, zeros elsewhere. A scatter, unlike `nn.MaxUnpool2d`, has a
    deterministic implementation, which alseg's exact reruns need."""
    planes = torch.zeros(*size[:2], size[2] * size[3], dtype=pooled.dtype, device=pooled.device)
    return planes.scatter(2, indices.flatten(2), pooled.flatten(2)).view(size)


class SegNet(nn.Module):
    """encoder -> decoder -> segmentation_head, the layout of an smp network (descriptors and
    head-only MC committees use it)."""

    def __init__(self, num_classes: int, width: float = 1.0) -> None:
        super().__init__()
        if not 0 < width <= 1:
            raise AlsegError(f"model.network.width must be in (0, 1] (got {width}).")
        self.encoder = SegNetEncoder(width)
        self.decoder = SegNetDecoder(self.encoder.out_channels)
        first = self.encoder.out_channels[0]
        self.segmentation_head = nn.Sequential(nn.Conv2d(first, num_classes, 3, padding=1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_sides(images, "SegNet")
        return self.segmentation_head(self.decoder(self.encoder(images)))


def load_segnet_weights(network: SegNet, path: str) -> None:
    """Load a state dict of this SegNet (same width and classes, e.g. one alseg trained) from
    `path`; one line naming the first key or shape that does not fit."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise AlsegError(
            f"model.network.weights: {file} is not a file; give a SegNet state dict saved by torch.save"
        )
    state = torch.load(file, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state)
    own = network.state_dict()
    for key, tensor in own.items():
        if key not in state:
            raise AlsegError(f"model.network.weights: {file} has no {key}; is it a SegNet of this width?")
        if state[key].shape != tensor.shape:
            raise AlsegError(
                f"model.network.weights: {key} is {tuple(state[key].shape)} in {file}, the network's is "
                f"{tuple(tensor.shape)}: a SegNet of another width or class count"
            )
    network.load_state_dict({key: state[key] for key in own})
