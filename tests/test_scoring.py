"""The streaming scorer ranks units by what the model is unsure of, and never sees labels."""

from __future__ import annotations

import numpy as np
import torch

from alseg.data.synthetic import synthetic_splits
from alseg.pool import Grid, LabelState, WholeImage
from alseg.scoring import score_pool
from alseg.strategies.base import rank_by_score
from alseg.strategies.random import RandomSampling
from alseg.strategies.uncertainty import UncertaintySampling


class BrightnessConfidence(torch.nn.Module):
    """Two-class logits whose margin grows with pixel brightness: dark pixels are uncertain."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        brightness = images.mean(dim=1, keepdim=True)
        return torch.cat([10 * brightness, torch.zeros_like(brightness)], dim=1)


def test_rank_by_score_orders_and_drops_unavailable() -> None:
    scores = np.array([[0.2, -np.inf], [0.9, 0.2], [-np.inf, 0.5]])
    assert rank_by_score(scores).tolist() == [[1, 0], [2, 1], [0, 0], [1, 1]]


def test_uncertainty_prefers_the_darkest_images_and_skips_labelled() -> None:
    pool = synthetic_splits(train=10, val=1, test=1, size=16).train
    brightness = np.random.default_rng(0).permutation(10) * 20 + 10
    pool._images[:] = torch.from_numpy(brightness).to(torch.uint8)[:, None, None, None]
    state = LabelState(len(pool), WholeImage().boxes(16, 16), (16, 16))
    state.mark(np.array([[3, 0]]), cycle=0)
    for measure in ("least_confidence", "margin", "entropy"):
        strategy = UncertaintySampling(measure, measure)
        scores = score_pool(BrightnessConfidence(), pool, state, strategy, 4, torch.device("cpu"), False)
        assert scores[3, 0] == -np.inf
        ranked = strategy.rank(scores, np.random.default_rng(0))
        expected = [i for i in np.argsort(brightness, kind="stable") if i != 3]
        assert ranked[:, 0].tolist() == expected


def test_region_scores_find_the_uncertain_quadrant() -> None:
    pool = synthetic_splits(train=4, val=1, test=1, size=16).train
    pool._images[:] = 255
    pool._images[2, :, 8:, :8] = 0  # bottom-left quadrant of image 2 is dark
    state = LabelState(len(pool), Grid(2, 2).boxes(16, 16), (16, 16))
    strategy = UncertaintySampling("entropy", "entropy")
    scores = score_pool(BrightnessConfidence(), pool, state, strategy, 3, torch.device("cpu"), False)
    assert rank_by_score(scores)[0].tolist() == [2, 2]


def test_random_needs_no_model_and_ranks_every_available_unit() -> None:
    pool = synthetic_splits(train=6, val=1, test=1, size=16).train
    state = LabelState(len(pool), WholeImage().boxes(16, 16), (16, 16))
    state.mark(np.array([[0, 0]]), cycle=0)
    scores = score_pool(None, pool, state, RandomSampling("random"), 4, torch.device("cpu"), False)
    ranked = RandomSampling("random").rank(scores, np.random.default_rng(1))
    assert sorted(ranked[:, 0].tolist()) == [1, 2, 3, 4, 5]
    assert ranked.tolist() != RandomSampling("random").rank(scores, np.random.default_rng(2)).tolist()
