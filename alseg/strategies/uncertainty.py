"""Uncertainty sampling: query the units whose pixels the model is least sure of."""

from __future__ import annotations

import torch

from alseg.errors import AlsegError
from alseg.strategies.base import Prediction, TopScoreStrategy
from alseg.uncertainty import get_measure, vote_entropy


class UncertaintySampling(TopScoreStrategy):
    """Scores pixels with an uncertainty measure (least_confidence, margin, entropy) of the
    model's probabilities (the MC-dropout mean when `mc_passes` > 0), reduces them per unit
    and queries the highest."""

    def __init__(
        self, name: str, measure: str, reduction: str = "mean", mc_passes: int = 0, mc_mode: str = "head"
    ) -> None:
        super().__init__(name, reduction, mc_passes, mc_mode)
        self.measure = get_measure(measure)

    def pixel_statistics(self, prediction: Prediction) -> dict[str, torch.Tensor]:
        return {"score": self.measure(prediction.probs)}


class VoteEntropySampling(TopScoreStrategy):
    """Query-by-committee: vote entropy of `mc_passes` MC-dropout passes (`mc_mode` "head"
    reruns only the segmentation head, "full" the whole network)."""

    def __init__(
        self, name: str, mc_passes: int = 20, mc_mode: str = "head", reduction: str = "mean"
    ) -> None:
        super().__init__(name, reduction, mc_passes, mc_mode)
        if mc_passes < 2:
            raise AlsegError(f"vote entropy needs a committee: strategy.mc_passes >= 2 (got {mc_passes}).")

    def pixel_statistics(self, prediction: Prediction) -> dict[str, torch.Tensor]:
        assert prediction.committee is not None
        return {"score": vote_entropy(prediction.committee)}
