"""What a strategy is, what it declares, and what the one scoring pass hands it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import torch

from alseg.errors import AlsegError
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


SAMPLINGS = ("top", "power")
"""How unit scores become a query: "top" takes the highest scores; "power" draws units without
replacement with probability proportional to score ** sampling_beta (stochastic batch
acquisition, Kirsch et al. 2023): a large query of the top scores piles up near-duplicates,
a draw keeps the informative units most likely and the query spread."""

QUERY_UNITS = ("any", "images", "regions")
"""What a strategy can query: any kind of region, whole images only, or regions only."""


class Strategy(ABC):
    """An acquisition strategy.

    It declares what it needs and the acquisition provides it in one pass over the pool: a
    model pass (`needs_model`), an MC-dropout committee of `mc_passes` > 0 members (in the
    one `scoring.mc_mode`), a committee of `ensemble_size` networks trained on bootstrap
    resamples, pooled descriptors (`needs_descriptors`). `queries` says which region kinds it
    works with; `alseg.acquisition.scoring.check_compatible` refuses the others before anything trains. Unit
    statistics are "higher = more informative". With `class_balance` the pixel "score" is
    weighted by the inverse frequency of the pixel's predicted class among the pixels
    labelled so far (`class_weights`, set before each scoring pass). With `purity` each unit's
    score is multiplied by its predicted purity, the share of its pixels predicted as its most
    frequent predicted class: answered with one class (dominant labels), a unit of purity p gets
    about 1 - p of its pixels wrong, so informative but mixed units step back, as CEREALS weighs
    informativeness by (1 - cost). `sampling` turns unit scores into a query (`SAMPLINGS`): the
    highest first, or drawn in proportion to score ** `sampling_beta`. `reads_ground_truth`
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
        self,
        name: str,
        reduction: str = "mean",
        mc_passes: int = 0,
        class_balance: bool = False,
        purity: bool = False,
        sampling: str = "top",
        sampling_beta: float = 1.0,
    ) -> None:
        get_reduction(reduction)  # fail at construction, not after the first training
        if sampling not in SAMPLINGS:
            raise AlsegError(f"strategy.sampling must be one of {', '.join(SAMPLINGS)} (got {sampling!r}).")
        if not sampling_beta > 0:
            raise AlsegError(f"strategy.sampling_beta must be > 0 (got {sampling_beta}).")
        if mc_passes == 1:
            raise AlsegError(
                "strategy.mc_passes=1 is not a committee: use 0 (one deterministic pass) or >= 2 MC samples."
            )
        if mc_passes < 0:
            raise AlsegError(f"strategy.mc_passes must be >= 0 (got {mc_passes}).")
        self.name = name
        self.reduction = reduction
        self.mc_passes = mc_passes
        self.class_balance = class_balance
        self.class_weights: torch.Tensor | None = None  # set each cycle when class_balance
        self.purity = purity
        self.sampling = sampling
        self.sampling_beta = sampling_beta

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
        """Available units (K, 2) best first under the strategy's `sampling`."""
        if self.sampling == "power":
            unit_scores = power_keys(unit_scores, self.sampling_beta, rng)
        return rank_by_score(unit_scores)

    @abstractmethod
    def rank(self, scores: PoolScores, context: AcquisitionContext) -> np.ndarray:
        """Available units (K, 2) of (image, region), best first."""

    def after_query(self, scores: PoolScores, context: AcquisitionContext) -> None:  # noqa: B027
        """Act once the oracle has labelled the query (pseudo-labelling, for one)."""


class TopScoreStrategy(Strategy):
    """A strategy that queries units by their "score" statistic, under its `sampling`."""

    def rank(self, scores: PoolScores, context: AcquisitionContext) -> np.ndarray:
        return self.order(scores.score, context.rng)


def rank_by_score(unit_scores: np.ndarray) -> np.ndarray:
    """Available units (finite score) ordered by descending score; ties by ascending index."""
    flat = unit_scores.reshape(-1)
    order = np.argsort(-flat, kind="stable")
    order = order[np.isfinite(flat[order])]
    return np.stack(np.unravel_index(order, unit_scores.shape), axis=1)


def power_keys(unit_scores: np.ndarray, beta: float, rng: np.random.Generator) -> np.ndarray:
    """Keys whose descending order draws the available units (finite score) one by one without
    replacement, each with probability proportional to score ** beta among those left: beta *
    log(score) plus standard Gumbel noise (the Gumbel top-k trick). Units of score 0 follow every
    positive one in random order; unavailable units stay -inf."""
    available = np.isfinite(unit_scores)
    if (unit_scores[available] < 0).any():
        raise AlsegError(
            "strategy.sampling=power draws units in proportion to their scores, which must be >= 0; "
            "use strategy.sampling=top with this strategy."
        )
    noise = rng.gumbel(size=unit_scores.shape)
    with np.errstate(divide="ignore"):
        keys = beta * np.log(np.where(available, unit_scores, 0.0)) + noise
    zero = available & (unit_scores == 0)
    positive = available & ~zero
    floor = keys[positive].min() if positive.any() else 0.0
    keys[zero] = floor - 1.0 - rng.random(int(zero.sum()))
    keys[~available] = -np.inf
    return keys
