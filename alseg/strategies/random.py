"""Random sampling: the baseline every strategy must beat."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from alseg.strategies.base import PoolScores, Strategy
from alseg.strategies.shaping import rank_by_score

if TYPE_CHECKING:
    from alseg.strategies.context import AcquisitionContext


class RandomSampling(Strategy):
    """Ranks the available units in a random order drawn from the cycle's generator."""

    needs_model = False

    def rank(self, scores: PoolScores, context: AcquisitionContext) -> np.ndarray:
        shuffled = np.where(scores.available, context.rng.random(scores.available.shape), -np.inf)
        return rank_by_score(shuffled)
