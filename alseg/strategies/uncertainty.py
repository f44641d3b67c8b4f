"""Uncertainty sampling: query the units whose pixels the model is least sure of."""

from __future__ import annotations

import numpy as np
import torch

from alseg.strategies.base import Strategy, rank_by_score
from alseg.uncertainty import get_measure, get_reduction


class UncertaintySampling(Strategy):
    """Scores pixels with an uncertainty measure (least_confidence, margin, entropy), reduces
    them per unit and queries the highest."""

    def __init__(self, name: str, measure: str, reduction: str = "mean") -> None:
        super().__init__(name, reduction)
        self.measure = get_measure(measure)
        get_reduction(reduction)  # fail at construction, not after the first training

    def pixel_scores(self, probs: torch.Tensor) -> torch.Tensor:
        return self.measure(probs)

    def rank(self, unit_scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return rank_by_score(unit_scores)
