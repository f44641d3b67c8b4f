"""The learned click-cost model of CEREALS: predicts how many clicks a region will cost."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from alseg.regions.base import RegionMap

CACHE_LIMIT_BYTES = 1 << 30  # float16 inputs kept for training the cost model


class ClickCostModel(nn.Module):
    """A small fully convolutional network: image and class probabilities -> clicks per pixel.

    A region's predicted cost is the sum of its pixels' click densities, so one forward pass
    prices every region of an image.
    """

    def __init__(self, num_classes: int, width: int = 16) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.layers = nn.Sequential(
            nn.Conv2d(3 + num_classes, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=2, dilation=2),
            nn.ReLU(),
            nn.Conv2d(width, 1, 1),
            nn.Softplus(),
        )

    def forward(self, images: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """Click density (B, H, W): clicks per pixel."""
        return self.density(torch.cat([images, probs], dim=1))

    def density(self, inputs: torch.Tensor) -> torch.Tensor:
        """Click density (B, H, W) from images and probabilities stacked on channels."""
        return self.layers(inputs).squeeze(1)


def region_clicks(density: torch.Tensor, maps: Sequence[RegionMap], width: int) -> torch.Tensor:
    """Predicted clicks (B, width) of each region of each image (its map in `maps`): the sum
    of the click density inside it; 0 beyond an image's regions."""
    out = density.new_zeros(len(maps), width)
    for row, region_map in enumerate(maps):
        areas = torch.as_tensor(region_map.areas, device=density.device, dtype=density.dtype)
        out[row, : region_map.count] = region_map.reduce(density[row : row + 1], "mean")[0] * areas
    return out


def images_within(
    images: np.ndarray, per_image: int, memory_limit: int, rng: np.random.Generator
) -> np.ndarray:
    """All images when `per_image` bytes each fit in `memory_limit`, else a sorted random subset that fits."""
    fitting = max(1, memory_limit // per_image)
    return images if len(images) <= fitting else np.sort(rng.choice(images, fitting, replace=False))


def cost_inputs(batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Images and the network's class probabilities, (N, 3 + C, H, W) in float16 on the CPU."""
    return torch.cat([torch.cat([images, probs], dim=1).half().cpu() for images, probs in batches])


def train_cost_model(
    model: ClickCostModel,
    inputs: torch.Tensor,
    maps: Sequence[RegionMap],
    target: torch.Tensor,
    known: torch.Tensor,
    device: torch.device,
    steps: int,
    batch_size: int,
    rng: np.random.Generator,
    lr: float = 1e-2,
) -> list[float]:
    """Fit the model to the clicks paid for labelled units, on log(1 + clicks); the losses.

    `inputs` (N, 3 + C, H, W) are the labelled images with their probabilities (computed
    once, not once per step), `maps` their region maps, `target` (N, width) the clicks paid
    where `known`. Each of the `steps` steps fits a random batch of the images.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.to(device).train()
    losses = []
    width = target.shape[1]
    for _ in range(steps):
        batch = rng.choice(len(inputs), min(batch_size, len(inputs)), replace=False)
        x = inputs[torch.as_tensor(batch)].to(device).float()
        predicted = region_clicks(model.density(x), [maps[b] for b in batch.tolist()], width)
        mask, truth = known[batch].to(device), target[batch].to(device)
        loss = nn.functional.mse_loss(torch.log1p(predicted[mask]), torch.log1p(truth[mask]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return losses
