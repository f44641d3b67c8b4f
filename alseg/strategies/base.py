"""What a strategy is: per-pixel scores from the model's probabilities, and a ranking of units."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch


class Strategy(ABC):
    """An acquisition strategy.

    It declares what it needs from the model (`needs_model`); the scorer streams the pool and
    hands it probabilities, then reduces its pixel scores per unit with `reduction`. Unit
    scores are "higher = more informative"; a unit that is not available scores -inf.
    """

    needs_model: bool = True

    def __init__(self, name: str, reduction: str = "mean") -> None:
        self.name = name
        self.reduction = reduction

    def pixel_scores(self, probs: torch.Tensor) -> torch.Tensor:
        """Class probabilities (B, C, H, W) -> pixel scores (B, H, W)."""
        raise NotImplementedError(f"strategy {self.name!r} does not score pixels")

    @abstractmethod
    def rank(self, unit_scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Unit scores (images, regions) -> available units (K, 2) of (image, region), best first."""


def rank_by_score(unit_scores: np.ndarray) -> np.ndarray:
    """Available units (finite score) ordered by descending score; ties by ascending index."""
    flat = unit_scores.reshape(-1)
    order = np.argsort(-flat, kind="stable")
    order = order[np.isfinite(flat[order])]
    return np.stack(np.unravel_index(order, unit_scores.shape), axis=1)
