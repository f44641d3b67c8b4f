"""The headroom of a protocol: an upper bound that queries where the model is wrong."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from alseg.data.base import IGNORE_INDEX
from alseg.strategies.base import Prediction, TopScoreStrategy

if TYPE_CHECKING:
    from alseg.acquisition import AcquisitionContext


class OracleError(TopScoreStrategy):
    """Queries the units where the current model's error is highest: the share of a unit's
    pixels (of known class) whose prediction differs from the hidden ground truth. It reads
    the ground truth on purpose (`reads_ground_truth`, recorded in cycles.csv): an ablation
    that bounds what selecting by the model's mistakes could gain, not a strategy to deploy."""

    reads_ground_truth = True

    def __init__(self, name: str, reduction: str = "mean") -> None:
        super().__init__(name, reduction)
        self._truth: Callable[[np.ndarray], torch.Tensor] | None = None

    def prepare(self, context: AcquisitionContext) -> None:
        self._truth = context.true_targets

    def pixel_statistics(self, prediction: Prediction) -> dict[str, torch.Tensor]:
        assert self._truth is not None and prediction.indices is not None
        truth = self._truth(prediction.indices).to(prediction.images.device)
        wrong = (prediction.probs.argmax(dim=1) != truth) & (truth != IGNORE_INDEX)
        return {"score": wrong.float()}
