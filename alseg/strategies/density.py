"""Information density and core-set: informativeness weighted by, or replaced with, coverage."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from alseg.selection import k_center_greedy, mean_similarity
from alseg.strategies.base import PoolScores, Prediction, Strategy
from alseg.strategies.shaping import ScoreShaping
from alseg.uncertainty import get_measure

if TYPE_CHECKING:
    from alseg.strategies.context import AcquisitionContext


class InformationDensity(Strategy):
    """score(x) = phi(x) * (mean over the unlabelled pool of sim(x, u)) ** beta.

    phi is an uncertainty measure reduced per unit; sim is the cosine similarity of pooled
    encoder descriptors, computed block by block. Regions take their image's density.
    """

    needs_descriptors = True

    def __init__(
        self,
        name: str,
        measure: str = "entropy",
        beta: float = 1.0,
        reduction: str = "mean",
        mc_passes: int = 0,
        block: int = 1024,
        shaping: ScoreShaping | None = None,
    ) -> None:
        super().__init__(name, reduction, mc_passes, shaping)
        self.measure = get_measure(measure)
        self.beta = beta
        self.block = block

    def pixel_statistics(self, prediction: Prediction) -> dict[str, torch.Tensor]:
        return {"score": self.measure(prediction.probs)}

    def rank(self, scores: PoolScores, context: AcquisitionContext) -> np.ndarray:
        assert scores.descriptors is not None
        unlabelled = context.state.unlabelled_images()
        pool = scores.descriptors[unlabelled]
        density = np.ones(len(scores.descriptors), dtype=np.float32)  # labelled: -inf either way
        density[unlabelled] = mean_similarity(pool, pool, self.block).clamp(min=0).numpy()
        return self.order(scores.score * density[:, None] ** self.beta, context.rng)


class CoreSet(Strategy):
    """Core-set: k-center greedy on pooled descriptors, the labelled images as first centres."""

    needs_descriptors = True
    queries = "images"

    def rank(self, scores: PoolScores, context: AcquisitionContext) -> np.ndarray:
        assert scores.descriptors is not None
        labelled = context.state.labelled_images()
        # A few picks beyond what the budget buys, in case some do not fit it.
        picks = k_center_greedy(scores.descriptors, labelled, 2 * context.wanted + 8)
        return np.stack([picks, np.zeros_like(picks)], axis=1)
