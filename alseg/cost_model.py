"""The learned click-cost model of CEREALS: predicts how many clicks a region will cost."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from alseg.data.base import ImageSource
from alseg.scoring import pool_batches
from alseg.uncertainty import reduce_regions

CACHE_LIMIT_BYTES = 1 << 30  # float16 inputs kept for training the cost model


class ClickCostModel(nn.Module):
    """A small fully convolutional network: image and class probabilities -> clicks per pixel.

    A region's predicted cost is the sum of its pixels' click densities, so one forward pass
    prices every window of an image.
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


def region_clicks(density: torch.Tensor, boxes: np.ndarray) -> torch.Tensor:
    """Predicted clicks (B, R) of each box: the sum of the click density inside it."""
    areas = torch.as_tensor((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), device=density.device)
    return reduce_regions(density, boxes, "mean") * areas


def images_within(
    images: np.ndarray, per_image: int, memory_limit: int, rng: np.random.Generator
) -> np.ndarray:
    """All images when `per_image` bytes each fit in `memory_limit`, else a sorted random subset that fits."""
    fitting = max(1, memory_limit // per_image)
    return images if len(images) <= fitting else np.sort(rng.choice(images, fitting, replace=False))


def cost_inputs(
    pool: ImageSource, network: nn.Module, images: np.ndarray, device: torch.device, batch_size: int
) -> torch.Tensor:
    """Images and the network's class probabilities, (N, 3 + C, H, W) in float16 on the CPU."""
    network.eval()
    batches = []
    for batch, _ in pool_batches(pool, images, batch_size, False, ""):
        batch = batch.to(device)
        with torch.no_grad():
            probs = network(batch).float().softmax(dim=1)
        batches.append(torch.cat([batch, probs], dim=1).half().cpu())
    return torch.cat(batches)


def train_cost_model(
    model: ClickCostModel,
    pool: ImageSource,
    network: nn.Module,
    units: np.ndarray,
    clicks: np.ndarray,
    boxes: np.ndarray,
    device: torch.device,
    steps: int,
    batch_size: int,
    rng: np.random.Generator,
    lr: float = 1e-2,
    memory_limit: int = CACHE_LIMIT_BYTES,
) -> list[float]:
    """Fit the model to the clicks paid for labelled units (K, 2), on log(1 + clicks); the losses.

    The segmentation network runs once per labelled image, not once per step: its inputs are
    kept in float16 for at most `memory_limit` bytes, a random subset of the labelled images
    when they do not all fit. Each of the `steps` steps fits a random batch of them.
    """
    height, width = pool.image_size
    per_image = 2 * (3 + model.num_classes) * height * width
    images = images_within(np.unique(units[:, 0]), per_image, memory_limit, rng)
    row = {int(image): r for r, image in enumerate(images)}
    target = torch.zeros(len(images), len(boxes))
    known = torch.zeros(len(images), len(boxes), dtype=torch.bool)
    for (image, region), count in zip(units.tolist(), clicks.tolist(), strict=True):
        if image in row:
            target[row[image], region] = count
            known[row[image], region] = True
    inputs = cost_inputs(pool, network, images, device, batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.to(device).train()
    losses = []
    for _ in range(steps):
        batch = torch.as_tensor(rng.choice(len(images), min(batch_size, len(images)), replace=False))
        x = inputs[batch].to(device).float()
        predicted = region_clicks(model.density(x), boxes)
        mask, truth = known[batch].to(device), target[batch].to(device)
        loss = nn.functional.mse_loss(torch.log1p(predicted[mask]), torch.log1p(truth[mask]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return losses
