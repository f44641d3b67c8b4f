"""What a strategy is, what it declares, and what the one scoring pass hands it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import torch

from alseg.errors import AlsegError
from alseg.strategies.shaping import ScoreShaping
from alseg.uncertainty import get_reduction

if TYPE_CHECKING:
    from alseg.strategies.context import AcquisitionContext


@dataclass
class Prediction:
    """The model's view of one batch of pool images, as the scorer hands it to a strategy.
    Probabilities are computed on first use: a vote needs only the committee's logits."""

    images: torch.Tensor  # (B, 3, H, W)
    logits: torch.Tensor | None  # (B, C, H, W) of the model, None when there is a committee
    committee_logits: torch.Tensor | None = None  # (T, B, C, H, W) of the members, or None
    indices: np.ndarray | None = None  # (B,) the images' indices in the pool

    @cached_property
    def committee(self) -> torch.Tensor | None:
        """(T, B, C, H, W) member probabilities, or None."""
        return None if self.committee_logits is None else self.committee_logits.float().softmax(dim=2)

    @cached_property
    def probs(self) -> torch.Tensor:
        """(B, C, H, W) class probabilities: the committee mean when there is a committee."""
        if self.committee is not None:
            return self.committee.mean(dim=0)
        assert self.logits is not None
        return self.logits.float().softmax(dim=1)


@dataclass
class PoolScores:
    """Per-unit statistics of the pool, from the cycle's one scoring pass; -inf marks
    unavailable units.

    `units[name]` is (images, regions) for each statistic the strategy asked for ("score" is
    the informativeness); `descriptors` (images, D) is filled for every image when asked;
    `pseudo` holds the label maps the strategy chose to keep from the pass (CEAL's).
    """

    units: dict[str, np.ndarray]
    descriptors: torch.Tensor | None
    available: np.ndarray  # bool (images, regions)
    pseudo: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def score(self) -> np.ndarray:
        return self.units["score"]


QUERY_UNITS = ("any", "images", "regions")
"""What a strategy can query: any kind of region, whole images only, or regions only."""


class Strategy(ABC):
    """An acquisition strategy.

    It declares what it needs and the acquisition provides it in one pass over the pool: a
    model pass (`needs_model`), an MC-dropout committee of `mc_passes` > 0 members (in the
    one `scoring.mc_mode`), a committee of `ensemble_size` networks trained on bootstrap
    resamples, pooled descriptors (`needs_descriptors`). `queries` says which region kinds it
    works with; `alseg.acquisition.scoring.check_compatible` refuses the others before anything trains. Unit
    statistics are "higher = more informative". `shaping` (alseg.strategies.shaping, the
    `strategy.class_balance`, `purity`, `sampling` and `sampling_beta` keys) says how the scores
    become a query, the same for every strategy. `reads_ground_truth`
    marks an upper-bound ablation: only such a strategy may open
    `AcquisitionContext.true_clicks`, and its runs say so in cycles.csv.
    """

    needs_model: bool = True
    reads_ground_truth: bool = False
    mc_passes: int = 0
    ensemble_size: int = 0
    needs_descriptors: bool = False
    queries: str = "any"

    def __init__(
        self, name: str, reduction: str = "mean", mc_passes: int = 0, shaping: ScoreShaping | None = None
    ) -> None:
        get_reduction(reduction)  # fail at construction, not after the first training
        if mc_passes == 1:
            raise AlsegError(
                "strategy.mc_passes=1 is not a committee: use 0 (one deterministic pass) or >= 2 MC samples."
            )
        if mc_passes < 0:
            raise AlsegError(f"strategy.mc_passes must be >= 0 (got {mc_passes}).")
        self.name = name
        self.reduction = reduction
        self.mc_passes = mc_passes
        self.shaping = shaping or ScoreShaping()

    @property
    def needs_pass(self) -> bool:
        """Whether the pool is passed through at all: for the model, or for image statistics."""
        return self.needs_model or type(self).image_statistics is not Strategy.image_statistics

    def prepare(self, context: AcquisitionContext) -> None:  # noqa: B027 (optional hook)
        """Train what the strategy needs beyond the segmentation model (before scoring)."""

    def pixel_statistics(self, prediction: Prediction) -> dict[str, torch.Tensor]:
        """Pixel maps (B, H, W) to reduce per unit; "score" is the informativeness (0 if absent)."""
        return {}

    def image_statistics(self, prediction: Prediction) -> dict[str, torch.Tensor]:
        """Values (B,) per image, given to every unit of the image."""
        return {}

    def pseudo_labels(self, prediction: Prediction, cycle: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Label maps (B, H, W) of the batch and which of its images to keep them for, or None."""
        return None

    def order(self, unit_scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Available units (K, 2) best first under the strategy's score shaping."""
        return self.shaping.order(unit_scores, rng)

    @abstractmethod
    def rank(self, scores: PoolScores, context: AcquisitionContext) -> np.ndarray:
        """Available units (K, 2) of (image, region), best first."""

    def pseudo_labels_to_keep(
        self, scores: PoolScores, context: AcquisitionContext
    ) -> dict[int, np.ndarray] | None:
        """Once the oracle has labelled the query: the pseudo-labels (image -> label map) the
        acquisition keeps until the next one, or None for none. They cost nothing and never
        override an oracle's label."""
        return None


class TopScoreStrategy(Strategy):
    """A strategy that queries units by their "score" statistic, under its `sampling`."""

    def rank(self, scores: PoolScores, context: AcquisitionContext) -> np.ndarray:
        return self.order(scores.score, context.rng)
