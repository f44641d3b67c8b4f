"""CEREALS: cost-effective region-based active learning for semantic segmentation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from alseg.errors import AlsegError
from alseg.selection import non_maximum_suppression
from alseg.strategies.base import PoolScores, Prediction, Strategy
from alseg.strategies.click_cost import (
    CACHE_LIMIT_BYTES,
    ClickCostModel,
    cost_inputs,
    images_within,
    train_cost_model,
)
from alseg.strategies.shaping import ScoreShaping
from alseg.uncertainty import entropy, vote_entropy

if TYPE_CHECKING:
    from alseg.strategies.context import AcquisitionContext

COST_MODES = ("learned", "oracle", "constant")


def normalise(values: np.ndarray) -> np.ndarray:
    """Min-max scale the finite entries to [0, 1] (all 0 when they are equal); -inf stays."""
    finite = np.isfinite(values)
    if not finite.any():
        return values
    low, high = values[finite].min(), values[finite].max()
    scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
    return np.where(finite, scaled, -np.inf)


class Cereals(Strategy):
    """Scores regions by g = (1 - C) * I and queries them after non-maximum suppression.

    I is the window's mean pixel entropy (vote entropy with `mc_passes` > 1), C its click cost:
    predicted by a small network trained each cycle on the clicks paid so far (`cost=learned`),
    the true cost (`oracle`, an upper bound that reads hidden labels), or one constant
    (`constant`, the ablation that ranks by I alone). Both are scaled to [0, 1] over the pool.
    Within an image, a region is dropped when its IoU with a better kept region exceeds
    `nms_threshold` (0: any overlap; superpixels never overlap).
    """

    queries = "regions"

    def __init__(
        self,
        name: str,
        cost: str = "learned",
        mc_passes: int = 0,
        nms_threshold: float = 0.0,
        cost_steps: int = 200,
        cost_batch_size: int = 8,
        cost_width: int = 16,
        shaping: ScoreShaping | None = None,
    ) -> None:
        super().__init__(name, "mean", mc_passes, shaping)
        if cost not in COST_MODES:
            raise AlsegError(f"strategy.cost must be one of {list(COST_MODES)} (got {cost!r}).")
        self.cost, self.nms_threshold = cost, nms_threshold
        self.reads_ground_truth = cost == "oracle"
        self.cost_steps, self.cost_batch_size, self.cost_width = cost_steps, cost_batch_size, cost_width
        self.cost_model: ClickCostModel | None = None

    def prepare(self, context: AcquisitionContext, memory_limit: int = CACHE_LIMIT_BYTES) -> None:
        """Fit the cost model to the clicks paid so far. The network's probabilities of the
        labelled images are kept in float16 for at most `memory_limit` bytes: a random subset
        of the labelled images when they do not all fit."""
        if self.cost != "learned":
            return
        classes = len(context.pool.class_names)
        self.cost_model = ClickCostModel(classes, self.cost_width)
        units, clicks = context.revealed_clicks()
        height, width = context.pool.image_size
        per_image = 2 * (3 + classes) * height * width
        images = images_within(np.unique(units[:, 0]), per_image, memory_limit, context.rng)
        row = {int(image): r for r, image in enumerate(images)}
        target = torch.zeros(len(images), context.regions.width)
        known = torch.zeros(len(images), context.regions.width, dtype=torch.bool)
        for (image, region), count in zip(units.tolist(), clicks.tolist(), strict=True):
            if image in row:
                target[row[image], region] = count
                known[row[image], region] = True
        train_cost_model(
            self.cost_model,
            cost_inputs(context.probabilities(images)),
            [context.regions[image] for image in images.tolist()],
            target,
            known,
            context.device,
            self.cost_steps,
            self.cost_batch_size,
            context.rng,
        )

    def pixel_statistics(self, prediction: Prediction) -> dict[str, torch.Tensor]:
        if prediction.committee_logits is not None:
            informativeness = vote_entropy(prediction.committee_logits)
        else:
            informativeness = entropy(prediction.probs)
        statistics = {"score": informativeness}
        if self.cost_model is not None:
            self.cost_model.to(prediction.images.device)
            statistics["cost"] = self.cost_model(prediction.images, prediction.probs)
        return statistics

    def region_costs(self, scores: PoolScores, context: AcquisitionContext) -> np.ndarray:
        """Predicted clicks of every unit (images, regions); only the order matters."""
        if self.cost == "learned":
            density = np.where(scores.available, scores.units["cost"], 0.0)  # per pixel, mean
            return density * context.regions.area_table()
        if self.cost == "oracle":
            return context.true_clicks()
        return np.zeros_like(scores.score)

    def rank(self, scores: PoolScores, context: AcquisitionContext) -> np.ndarray:
        informativeness = normalise(scores.score)
        cost = normalise(np.where(scores.available, self.region_costs(scores, context), -np.inf))
        gain = np.where(scores.available, (1 - cost) * informativeness, -np.inf)
        kept = [
            (image, region, gain[image, region])
            for image in np.flatnonzero(np.isfinite(gain).any(axis=1))
            for region in non_maximum_suppression(
                gain[image, : context.regions.counts[image]],
                context.regions[int(image)].overlap(),
                self.nms_threshold,
            )
        ]
        survivors = np.full_like(gain, -np.inf)
        for image, region, value in kept:
            survivors[image, region] = value
        return self.order(survivors, context.rng)
