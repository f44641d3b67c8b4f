"""Suggestive Annotation: uncertain by a bootstrap ensemble, then representative by set cover."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from alseg.errors import AlsegError
from alseg.selection import cosine_similarity, greedy_max_cover
from alseg.strategies.base import PoolScores, Prediction, Strategy
from alseg.strategies.shaping import rank_by_score
from alseg.uncertainty import committee_variance

if TYPE_CHECKING:
    from alseg.strategies.context import AcquisitionContext


class SuggestiveAnnotation(Strategy):
    """Pixel uncertainty is the disagreement (probability variance) of `ensemble_size` networks
    trained on bootstrap resamples of the labelled set; image uncertainty is its mean. The
    `candidates` (K) most uncertain images are narrowed to `select` (k) by greedy maximum set
    cover: F(S) = sum over the unlabelled pool of the max cosine similarity to S, the
    similarity binarised at `similarity_threshold` when one is given.

    `select` null buys what the cycle's budget buys; `candidates` null is twice `select`.
    Units after the k chosen follow by uncertainty, so a larger budget is still spent.
    """

    needs_descriptors = True
    queries = "images"

    def __init__(
        self,
        name: str,
        ensemble_size: int = 4,
        candidates: int | None = 16,
        select: int | None = 8,
        similarity_threshold: float | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(name, reduction)
        if ensemble_size < 2:
            raise AlsegError(
                f"suggestive needs an ensemble: strategy.ensemble_size >= 2 (got {ensemble_size})."
            )
        if candidates is not None and select is not None and not 0 < select <= candidates:
            raise AlsegError(
                f"suggestive needs 0 < strategy.select <= strategy.candidates (got {select}, {candidates})."
            )
        self.ensemble_size = ensemble_size
        self.candidates, self.select = candidates, select
        self.similarity_threshold = similarity_threshold

    def pixel_statistics(self, prediction: Prediction) -> dict[str, torch.Tensor]:
        assert prediction.committee is not None
        return {"score": committee_variance(prediction.committee)}

    def rank(self, scores: PoolScores, context: AcquisitionContext) -> np.ndarray:
        assert scores.descriptors is not None
        select = self.select or context.wanted
        by_uncertainty = rank_by_score(scores.score)
        shortlist = by_uncertainty[: self.candidates or 2 * select, 0]
        pool = scores.descriptors[context.state.unlabelled_images()]
        similarity = cosine_similarity(scores.descriptors[shortlist], pool)
        if self.similarity_threshold is not None:
            similarity = (similarity > self.similarity_threshold).float()
        chosen = shortlist[greedy_max_cover(similarity, select)]
        rest = by_uncertainty[~np.isin(by_uncertainty[:, 0], chosen)]
        return np.concatenate([np.stack([chosen, np.zeros_like(chosen)], axis=1), rest])
