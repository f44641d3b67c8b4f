"""`AcquisitionContext`: everything a strategy may use, in one object: the images (never the
labels) of the pool, the label state, the region maps, the trained network and ensemble, the
cycle's randomness, the budget it buys, and ways to feed auxiliary models (images and the
network's probabilities of given images). Of the ground truth of unlabelled units it opens
only `true_clicks`, `true_targets` and `true_answers`, and only for a strategy that declares
`reads_ground_truth`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from torch import nn

from alseg.data.views import pool_batches
from alseg.errors import AlsegError
from alseg.labels.ledger import CostLedger
from alseg.labels.oracle import ImagesOnly, Oracle
from alseg.labels.state import LabelState
from alseg.regions.base import RegionMaps


class Querying(Protocol):
    """What the context needs of the strategy it serves (a `Strategy`)."""

    name: str
    reads_ground_truth: bool


def units_affordable(ledger: CostLedger, unit: str, amount: float) -> int:
    """About how many units `amount` buys, at the mean cost per unit paid so far."""
    if unit == "regions":
        return max(1, math.ceil(amount))
    mean_cost = ledger.spent[unit] / max(ledger.spent["regions"], 1.0)
    return max(1, math.ceil(amount / mean_cost)) if mean_cost > 0 else 1


@dataclass
class AcquisitionContext:
    """One cycle's query: what the strategy may use and what the budget lets it buy."""

    cycle: int  # the cycle whose training will first use the queried labels
    strategy: Querying  # the Strategy querying
    oracle: Oracle
    unit: str
    budget: float
    rng: np.random.Generator
    batch_size: int
    progress: bool
    mc_mode: str
    members: list[nn.Module] = field(default_factory=list)  # the bootstrap ensemble, trained
    network: nn.Module | None = None  # set when the cycle's training ends
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def pool(self) -> ImagesOnly:
        return self.oracle.pool_images

    @property
    def state(self) -> LabelState:
        return self.oracle.state

    @property
    def regions(self) -> RegionMaps:
        return self.oracle.state.regions

    @property
    def wanted(self) -> int:
        """About how many units the cycle's budget buys."""
        return units_affordable(self.oracle.ledger, self.unit, self.budget)

    def images(self, indices: np.ndarray) -> torch.Tensor:
        """Pool images (N, 3, H, W) on the device."""
        return torch.stack([self.pool.image(int(i)) for i in indices]).to(self.device)

    def batches(self, indices: np.ndarray, desc: str = "") -> Iterator[tuple[torch.Tensor, np.ndarray]]:
        """Batches of pool images on the device with their indices."""
        progress = self.progress and bool(desc)
        for images, found in pool_batches(self.pool, indices, self.batch_size, progress, desc):
            yield images.to(self.device), found.numpy()

    @torch.no_grad()
    def probabilities(self, indices: np.ndarray) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches of images and the network's class probabilities (B, C, H, W) for them."""
        assert self.network is not None
        self.network.eval()
        for images, _ in self.batches(indices):
            yield images, self.network(images).float().softmax(dim=1)

    def revealed_clicks(self) -> tuple[np.ndarray, np.ndarray]:
        """Labelled units (K, 2) and the clicks each cost: what an annotator's log records."""
        return self.oracle.revealed_clicks()

    def labelled_class_weights(self) -> torch.Tensor:
        """Inverse frequency (C,) of each class among the oracle-labelled pixels of one known class (add-one
        smoothed), scaled to mean 1: rare classes weigh more. Reads only labelled pixels."""
        classes = len(self.pool.class_names)
        counts = torch.zeros(classes, dtype=torch.float64)
        for image in self.state.labelled_images().tolist():
            given = self.oracle.training_target(image)[torch.from_numpy(self.state.pixel_mask(image))]
            counts += torch.bincount(given[given < classes], minlength=classes).double()
        inverse = 1.0 / ((counts + 1) / (counts.sum() + classes))
        return (inverse / inverse.mean()).float()

    def true_targets(self, indices: np.ndarray) -> torch.Tensor:
        """Ground-truth label maps (B, H, W) of pool images, hidden labels included:
        upper-bound ablations only."""
        self._require_ground_truth("labels")
        return self.oracle.true_targets(indices)

    def _require_ground_truth(self, what: str) -> None:
        if not self.strategy.reads_ground_truth:
            raise AlsegError(
                f"strategy {self.strategy.name!r} asked for the true {what} of unlabelled units; only "
                "an upper-bound ablation that declares reads_ground_truth = True may read them."
            )

    def true_answers(self, indices: np.ndarray) -> torch.Tensor:
        """The annotator's answers (B, H, W) for every unit of pool images (the truth, or each
        unit's dominant class): upper-bound ablations only."""
        self._require_ground_truth("answers")
        return self.oracle.true_answers(indices)

    def true_clicks(self) -> np.ndarray:
        """Clicks of every unit from hidden labels: upper-bound ablations only."""
        self._require_ground_truth("click costs")
        return self.oracle.true_clicks()
