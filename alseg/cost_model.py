"""The learned click-cost model of CEREALS: predicts how many clicks a region will cost."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from alseg.data.base import ImageSource
from alseg.uncertainty import reduce_regions


class ClickCostModel(nn.Module):
    """A small fully convolutional network: image and class probabilities -> clicks per pixel.

    A region's predicted cost is the sum of its pixels' click densities, so one forward pass
    prices every window of an image.
    """

    def __init__(self, num_classes: int, width: int = 16) -> None:
        super().__init__()
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
        return self.layers(torch.cat([images, probs], dim=1)).squeeze(1)


def region_clicks(density: torch.Tensor, boxes: np.ndarray) -> torch.Tensor:
    """Predicted clicks (B, R) of each box: the sum of the click density inside it."""
    areas = torch.as_tensor((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), device=density.device)
    return reduce_regions(density, boxes, "mean") * areas


def train_cost_model(
    model: ClickCostModel,
    pool: ImageSource,
    network: nn.Module,
    units: np.ndarray,
    clicks: np.ndarray,
    boxes: np.ndarray,
    device: torch.device,
    epochs: int,
    batch_size: int,
    lr: float = 1e-2,
) -> None:
    """Fit the model to the clicks paid for labelled units (K, 2), on log(1 + clicks).

    The inputs are the images and the segmentation network's current probabilities; images
    stream in batches, so memory does not grow with the labelled set.
    """
    images = np.unique(units[:, 0])
    row = {int(image): r for r, image in enumerate(images)}
    target = torch.zeros(len(images), len(boxes))
    known = torch.zeros(len(images), len(boxes), dtype=torch.bool)
    for (image, region), count in zip(units.tolist(), clicks.tolist(), strict=True):
        target[row[image], region] = count
        known[row[image], region] = True
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.to(device).train()
    network.eval()
    for _ in range(epochs):
        for start in range(0, len(images), batch_size):
            batch = torch.stack([pool.image(int(i)) for i in images[start : start + batch_size]]).to(device)
            with torch.no_grad():
                probs = network(batch).float().softmax(dim=1)
            predicted = region_clicks(model(batch, probs), boxes)
            mask = known[start : start + batch_size].to(device)
            truth = target[start : start + batch_size].to(device)
            loss = nn.functional.mse_loss(torch.log1p(predicted[mask]), torch.log1p(truth[mask]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
