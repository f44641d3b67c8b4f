"""Score shaping, the same for every strategy that scores units: how pixel and unit scores
become a query (the `strategy.class_balance`, `purity`, `sampling` and `sampling_beta` keys,
which alseg.experiment hands to the strategy as one `ScoreShaping`)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from alseg.errors import AlsegError

SAMPLINGS = ("top", "power")
"""How unit scores become a query: "top" takes the highest scores; "power" draws units without
replacement with probability proportional to score ** sampling_beta (stochastic batch
acquisition, Kirsch et al. 2023): a large query of the top scores piles up near-duplicates,
a draw keeps the informative units most likely and the query spread."""


@dataclass(frozen=True)
class ScoreShaping:
    """With `class_balance` each pixel's score is weighted by the inverse frequency of its
    predicted class among the pixels labelled so far. With `purity` each unit's score is
    multiplied by its predicted purity, the share of its pixels predicted as its most frequent
    predicted class: answered with one class (dominant labels), a unit of purity p gets about
    1 - p of its pixels wrong, so informative but mixed units step back, as CEREALS weighs
    informativeness by (1 - cost). `sampling` turns unit scores into a query (`SAMPLINGS`): the
    highest first, or drawn in proportion to score ** `sampling_beta`."""

    class_balance: bool = False
    purity: bool = False
    sampling: str = "top"
    sampling_beta: float = 1.0

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLINGS:
            raise AlsegError(
                f"strategy.sampling must be one of {', '.join(SAMPLINGS)} (got {self.sampling!r})."
            )
        if not self.sampling_beta > 0:
            raise AlsegError(f"strategy.sampling_beta must be > 0 (got {self.sampling_beta}).")

    def weighted(
        self, score: torch.Tensor, predicted: torch.Tensor, weights: torch.Tensor | None
    ) -> torch.Tensor:
        """Pixel scores (B, H, W) weighted by the class weight of each pixel's predicted class
        (`predicted`, B x H x W) when balancing classes, else as they are."""
        if not self.class_balance or weights is None:
            return score
        return score * weights.to(score.device)[predicted]

    def order(self, unit_scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Available units (finite score; K, 2) best first: by score, or drawn by it."""
        if self.sampling == "power":
            unit_scores = power_keys(unit_scores, self.sampling_beta, rng)
        return rank_by_score(unit_scores)


SHAPING_KEYS = tuple(field.name for field in fields(ScoreShaping))
"""The strategy config keys that make its ScoreShaping."""


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
