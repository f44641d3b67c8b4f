"""Random sampling: the baseline every strategy must beat."""

from __future__ import annotations

import numpy as np

from alseg.strategies.base import Strategy, rank_by_score


class RandomSampling(Strategy):
    """Ranks the available units in a random order drawn from the cycle's generator."""

    needs_model = False

    def rank(self, unit_scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        shuffled = np.where(np.isfinite(unit_scores), rng.random(unit_scores.shape), -np.inf)
        return rank_by_score(shuffled)
