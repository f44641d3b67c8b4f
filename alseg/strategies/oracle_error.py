"""The headroom of a protocol: an upper bound that queries where the model is wrong."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from alseg.data.base import IGNORE_INDEX
from alseg.strategies.base import Prediction, TopScoreStrategy
from alseg.strategies.shaping import ScoreShaping

if TYPE_CHECKING:
    from alseg.strategies.context import AcquisitionContext


class OracleError(TopScoreStrategy):
    """Queries the units where the current model's error is highest: the share of a unit's
    pixels (of known class) whose prediction differs from the hidden ground truth. It reads
    the ground truth on purpose (`reads_ground_truth`, recorded in cycles.csv): an ablation
    that bounds what selecting by the model's mistakes could gain, not a strategy to deploy.

    With `corrected` a wrong pixel counts only where the annotator's answer would be right:
    with dominant labels, where the pixel's true class is its unit's dominant class. The
    score is then the share of the unit's pixels its label would correct, the gain of
    labelling it; plain error also favours mixed units, whose one-class answer is most wrong."""

    reads_ground_truth = True

    def __init__(
        self, name: str, reduction: str = "mean", corrected: bool = False, shaping: ScoreShaping | None = None
    ) -> None:
        super().__init__(name, reduction, shaping=shaping)
        self.corrected = corrected
        self._truth: Callable[[np.ndarray], torch.Tensor] | None = None
        self._answers: Callable[[np.ndarray], torch.Tensor] | None = None

    def prepare(self, context: AcquisitionContext) -> None:
        self._truth = context.true_targets
        self._answers = context.true_answers

    def pixel_statistics(self, prediction: Prediction) -> dict[str, torch.Tensor]:
        assert self._truth is not None and self._answers is not None and prediction.indices is not None
        truth = self._truth(prediction.indices).to(prediction.images.device)
        wrong = (prediction.probs.argmax(dim=1) != truth) & (truth != IGNORE_INDEX)
        if self.corrected:
            wrong &= self._answers(prediction.indices).to(truth.device) == truth
        return {"score": wrong.float()}
