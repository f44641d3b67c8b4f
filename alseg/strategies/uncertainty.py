"""Uncertainty sampling: query the units whose pixels the model is least sure of."""

from __future__ import annotations

import torch

from alseg.errors import AlsegError
from alseg.strategies.base import Prediction, TopScoreStrategy
from alseg.strategies.shaping import ScoreShaping
from alseg.uncertainty import get_measure, vote_entropy


class UncertaintySampling(TopScoreStrategy):
    """Scores pixels with an uncertainty measure (least_confidence, margin, entropy) of the
    model's probabilities (the MC-dropout mean when `mc_passes` > 0), reduces them per unit
    and queries the highest."""

    def __init__(
        self,
        name: str,
        measure: str,
        reduction: str = "mean",
        mc_passes: int = 0,
        shaping: ScoreShaping | None = None,
    ) -> None:
        super().__init__(name, reduction, mc_passes, shaping)
        self.measure = get_measure(measure)

    def pixel_statistics(self, prediction: Prediction) -> dict[str, torch.Tensor]:
        return {"score": self.measure(prediction.probs)}


class VoteEntropySampling(TopScoreStrategy):
    """Query-by-committee: vote entropy of a committee. The committee is `mc_passes` MC-dropout
    passes (in the run's `scoring.mc_mode`) or,
    with `ensemble_size` > 1, that many networks trained on bootstrap resamples."""

    def __init__(
        self,
        name: str,
        mc_passes: int = 20,
        reduction: str = "mean",
        ensemble_size: int = 0,
        shaping: ScoreShaping | None = None,
    ) -> None:
        committee = 0 if ensemble_size else mc_passes
        super().__init__(name, reduction, committee, shaping)
        self.ensemble_size = ensemble_size
        if max(self.mc_passes, ensemble_size) < 2:
            raise AlsegError(
                "vote entropy needs a committee: strategy.mc_passes >= 2 or strategy.ensemble_size >= 2 "
                f"(got {mc_passes}, {ensemble_size})."
            )

    def pixel_statistics(self, prediction: Prediction) -> dict[str, torch.Tensor]:
        assert prediction.committee_logits is not None
        return {"score": vote_entropy(prediction.committee_logits)}
