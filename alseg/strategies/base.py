"""What a strategy is, and what the scorer and the acquisition step hand it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from torch import nn

from alseg.data.base import ImageSource
from alseg.errors import AlsegError
from alseg.pool import LabelState
from alseg.uncertainty import get_reduction


@dataclass
class Prediction:
    """The model's view of one batch of pool images, as the scorer hands it to a strategy.
    Probabilities are computed on first use: a vote needs only the committee's logits."""

    images: torch.Tensor  # (B, 3, H, W)
    logits: torch.Tensor | None  # (B, C, H, W) of the model, None when there is a committee
    committee_logits: torch.Tensor | None = None  # (T, B, C, H, W) of the members, or None

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
    """Per-unit statistics of the pool, reduced by the scorer; -inf marks unavailable units.

    `units[name]` is (images, regions) for each statistic the strategy asked for ("score" is
    the informativeness); `descriptors` (images, D) is filled for every image when asked.
    """

    units: dict[str, np.ndarray]
    descriptors: torch.Tensor | None
    available: np.ndarray  # bool (images, regions)

    @property
    def score(self) -> np.ndarray:
        return self.units["score"]


@dataclass
class AcquisitionContext:
    """What one cycle's query may use. Of the ground truth of unlabelled units it holds only
    `true_clicks`, the door that upper-bound ablations (CEREALS' oracle cost) open on purpose;
    it opens only for a strategy that declares `reads_ground_truth`."""

    cycle: int
    network: nn.Module
    pool: ImageSource  # images only
    state: LabelState
    device: torch.device
    rng: np.random.Generator
    wanted: int  # about how many units the cycle's budget buys
    batch_size: int
    progress: bool
    train_network: Callable[[np.ndarray, int], nn.Module]  # (image indices, seed) -> trained network
    revealed_clicks: Callable[[], tuple[np.ndarray, np.ndarray]]  # labelled units, their click costs
    true_clicks: Callable[
        [], np.ndarray
    ]  # clicks of every unit from hidden labels: upper-bound ablations only


class Strategy(ABC):
    """An acquisition strategy.

    It declares what it needs; the scorer provides it: a model pass (`needs_model`), an MC
    dropout committee (`mc_passes` > 0, `mc_mode` "head" or "full"), a committee of
    `ensemble_size` networks trained on bootstrap resamples, pooled descriptors
    (`needs_descriptors`). Unit statistics are "higher = more informative".
    `reads_ground_truth` marks an upper-bound ablation: only such a strategy may open
    `AcquisitionContext.true_clicks`, and its runs say so in cycles.csv.
    """

    needs_model: bool = True
    reads_ground_truth: bool = False
    mc_passes: int = 0
    mc_mode: str = "head"
    ensemble_size: int = 0
    needs_descriptors: bool = False

    def __init__(self, name: str, reduction: str = "mean", mc_passes: int = 0, mc_mode: str = "head") -> None:
        get_reduction(reduction)  # fail at construction, not after the first training
        if mc_passes == 1:
            raise AlsegError(
                "strategy.mc_passes=1 is not a committee: use 0 (one deterministic pass) or >= 2 MC samples."
            )
        if mc_passes < 0 or mc_mode not in ("head", "full"):
            raise AlsegError(
                f"strategy.mc_passes must be >= 0 and strategy.mc_mode 'head' or 'full' "
                f"(got {mc_passes}, {mc_mode!r})."
            )
        self.name = name
        self.reduction = reduction
        self.mc_passes = mc_passes
        self.mc_mode = mc_mode

    def prepare(self, context: AcquisitionContext) -> None:  # noqa: B027 (optional hook)
        """Train what the strategy needs beyond the segmentation model (before scoring)."""

    def pixel_statistics(self, prediction: Prediction) -> dict[str, torch.Tensor]:
        """Pixel maps (B, H, W) to reduce per unit; "score" is the informativeness (0 if absent)."""
        return {}

    @abstractmethod
    def rank(self, scores: PoolScores, context: AcquisitionContext) -> np.ndarray:
        """Available units (K, 2) of (image, region), best first."""

    def after_query(self, context: AcquisitionContext) -> None:  # noqa: B027 (optional hook)
        """Act once the oracle has labelled the query (pseudo-labelling, for one)."""


class TopScoreStrategy(Strategy):
    """A strategy that queries the units with the highest "score" statistic."""

    def rank(self, scores: PoolScores, context: AcquisitionContext) -> np.ndarray:
        return rank_by_score(scores.score)


def require_whole_images(strategy: Strategy, state: LabelState) -> None:
    """Refuse region units for strategies defined on whole images."""
    if len(state.boxes) != 1:
        raise AlsegError(f"strategy {strategy.name!r} queries whole images; run it with regions=image.")


def rank_by_score(unit_scores: np.ndarray) -> np.ndarray:
    """Available units (finite score) ordered by descending score; ties by ascending index."""
    flat = unit_scores.reshape(-1)
    order = np.argsort(-flat, kind="stable")
    order = order[np.isfinite(flat[order])]
    return np.stack(np.unravel_index(order, unit_scores.shape), axis=1)
