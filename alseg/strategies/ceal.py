"""CEAL: cost-effective active learning. The uncertain go to the annotator, the confident are
pseudo-labelled by the model for free."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from alseg.errors import AlsegError
from alseg.strategies.base import PoolScores, Prediction, Strategy
from alseg.strategies.shaping import ScoreShaping, rank_by_score
from alseg.uncertainty import get_measure

if TYPE_CHECKING:
    from alseg.strategies.context import AcquisitionContext


class Ceal(Strategy):
    """Queries the most uncertain units; pseudo-labels every confident unlabelled image.

    An image is confident when its mean max-probability exceeds delta_t, where the allowed
    uncertainty 1 - delta_t shrinks linearly: 1 - delta_t = max(0, (1 - delta) - delta_decay * t)
    at cycle t. Pseudo-labels (the model's argmax) cost nothing, never override oracle labels,
    and are recomputed every cycle from the predictions of the cycle's one scoring pass.

    The melanoma variant (`no_detection` n, `random` m) queries, per cycle, the n most
    uncertain images, then the n whose prediction holds the least foreground (no detection),
    then m random ones, then the rest by uncertainty.
    """

    def __init__(
        self,
        name: str,
        measure: str = "entropy",
        delta: float = 0.95,
        delta_decay: float = 0.005,
        reduction: str = "mean",
        mc_passes: int = 0,
        no_detection: int = 0,
        random: int = 0,
        background_class: int = 0,
        pseudo_label: bool = True,
        shaping: ScoreShaping | None = None,
    ) -> None:
        super().__init__(name, reduction, mc_passes, shaping)
        if not 0 < delta <= 1 or delta_decay < 0 or no_detection < 0 or random < 0:
            raise AlsegError(
                "ceal needs 0 < strategy.delta <= 1, strategy.delta_decay >= 0, and non-negative "
                f"strategy.no_detection and strategy.random (got {delta}, {delta_decay}, "
                f"{no_detection}, {random})."
            )
        self.measure = get_measure(measure)
        self.delta, self.delta_decay = delta, delta_decay
        self.no_detection, self.random = no_detection, random
        self.background_class = background_class
        self.pseudo_label = pseudo_label

    def threshold(self, cycle: int) -> float:
        """delta_t: the mean confidence above which an image is pseudo-labelled at `cycle`."""
        return 1 - max(0.0, (1 - self.delta) - self.delta_decay * cycle)

    def pixel_statistics(self, prediction: Prediction) -> dict[str, torch.Tensor]:
        foreground = (prediction.probs.argmax(dim=1) != self.background_class).float()
        return {"score": self.measure(prediction.probs), "foreground": foreground}

    def rank(self, scores: PoolScores, context: AcquisitionContext) -> np.ndarray:
        by_uncertainty = self.order(scores.score, context.rng)
        if not self.no_detection and not self.random:
            return by_uncertainty
        by_no_detection = rank_by_score(np.where(scores.available, -scores.units["foreground"], -np.inf))
        by_chance = rank_by_score(
            np.where(scores.available, context.rng.random(scores.available.shape), -np.inf)
        )
        return _interleave(
            [
                (by_uncertainty, self.no_detection),
                (by_no_detection, self.no_detection),
                (by_chance, self.random),
                (by_uncertainty, len(by_uncertainty)),
            ]
        )

    def pseudo_labels(self, prediction: Prediction, cycle: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The argmax of every image whose mean confidence exceeds delta_t."""
        if not self.pseudo_label:
            return None
        confidence = prediction.probs.amax(dim=1).mean(dim=(1, 2))
        return prediction.probs.argmax(dim=1).to(torch.uint8), confidence > self.threshold(cycle)

    def pseudo_labels_to_keep(
        self, scores: PoolScores, context: AcquisitionContext
    ) -> dict[int, np.ndarray] | None:
        """The confident images that still have unlabelled units, pseudo-labelled."""
        unlabelled = set(context.state.unlabelled_images().tolist())
        return {image: label for image, label in scores.pseudo.items() if image in unlabelled}


def _interleave(parts: list[tuple[np.ndarray, int]]) -> np.ndarray:
    """Take `count` new units from each ranking in turn, skipping units already taken."""
    taken: dict[tuple[int, int], None] = {}
    for ranking, count in parts:
        for unit in map(tuple, ranking.tolist()):
            if count == 0:
                break
            if unit not in taken:
                taken[unit] = None
                count -= 1
    return np.array(list(taken), dtype=np.int64).reshape(-1, 2)
