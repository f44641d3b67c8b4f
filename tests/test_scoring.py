"""The streaming scorer ranks units by what the model is unsure of, and never sees labels."""

from __future__ import annotations

import numpy as np
import torch
from conftest import acquisition_context
from torch import nn

from alseg.acquisition.scoring import score_pool
from alseg.data.synthetic import synthetic_splits
from alseg.regions.boxes import Grid
from alseg.strategies.random import RandomSampling
from alseg.strategies.shaping import rank_by_score
from alseg.strategies.uncertainty import UncertaintySampling


class Brightness(nn.Module):
    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return features[-1].mean(dim=1, keepdim=True)


class TwoClassLogits(nn.Module):
    def forward(self, brightness: torch.Tensor) -> torch.Tensor:
        return torch.cat([10 * brightness, torch.zeros_like(brightness)], dim=1)


class BrightnessConfidence(nn.Module):
    """An smp-shaped network (encoder, decoder, head) whose two-class margin grows with pixel
    brightness: dark pixels are the uncertain ones."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = lambda images: [images]
        self.decoder = Brightness()
        self.segmentation_head = TwoClassLogits()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.segmentation_head(self.decoder(self.encoder(images)))


def scored(pool, strategy, regions=None, seed: int = 0, network=None, labelled=()):
    """The context over `pool` (units in `labelled` marked) and the strategy's pool scores."""
    context = acquisition_context(pool, regions, network or BrightnessConfidence(), strategy, seed=seed)
    for image, region in labelled:
        context.state.mark(np.array([[image, region]]), cycle=0, clicks=np.array([0.0]))
    return context, score_pool(context)


def test_rank_by_score_orders_and_drops_unavailable() -> None:
    scores = np.array([[0.2, -np.inf], [0.9, 0.2], [-np.inf, 0.5]])
    assert rank_by_score(scores).tolist() == [[1, 0], [2, 1], [0, 0], [1, 1]]


def test_uncertainty_prefers_the_darkest_images_and_skips_labelled() -> None:
    pool = synthetic_splits(train=10, val=1, test=1, size=16).train
    brightness = np.random.default_rng(0).permutation(10) * 20 + 10
    pool._images[:] = torch.from_numpy(brightness).to(torch.uint8)[:, None, None, None]
    for measure in ("least_confidence", "margin", "entropy"):
        strategy = UncertaintySampling(measure, measure)
        context, scores = scored(pool, strategy, labelled=[(3, 0)])
        assert scores.score[3, 0] == -np.inf
        ranked = strategy.rank(scores, context)
        expected = [i for i in np.argsort(brightness, kind="stable") if i != 3]
        assert ranked[:, 0].tolist() == expected


def test_region_scores_find_the_uncertain_quadrant() -> None:
    pool = synthetic_splits(train=4, val=1, test=1, size=16).train
    pool._images[:] = 255
    pool._images[2, :, 8:, :8] = 0  # bottom-left quadrant of image 2 is dark
    _, scores = scored(pool, UncertaintySampling("entropy", "entropy"), Grid(2, 2))
    assert rank_by_score(scores.score)[0].tolist() == [2, 2]


def test_random_needs_no_model_and_ranks_every_available_unit() -> None:
    pool = synthetic_splits(train=6, val=1, test=1, size=16).train
    strategy = RandomSampling("random")
    context, scores = scored(pool, strategy, seed=1, labelled=[(0, 0)])
    ranked = strategy.rank(scores, context)
    assert sorted(ranked[:, 0].tolist()) == [1, 2, 3, 4, 5]
    other, _ = scored(pool, strategy, seed=2, labelled=[(0, 0)])
    assert ranked.tolist() != strategy.rank(scores, other).tolist()
