"""Stochastic batch acquisition: `strategy.sampling=power` draws units in proportion to their
scores, checked against sampling without replacement computed by hand."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
from test_strategies import image_context, run_experiment

from alseg.errors import AlsegError
from alseg.strategies.base import PoolScores
from alseg.strategies.shaping import ScoreShaping, power_keys, rank_by_score
from alseg.strategies.uncertainty import UncertaintySampling

DRAWS = 20_000


def orders(scores: np.ndarray, beta: float = 1.0, seed: int = 0) -> list[tuple[int, ...]]:
    """The orders in which `DRAWS` power draws rank the units of one image's flat scores."""
    rng = np.random.default_rng(seed)
    return [tuple(rank_by_score(power_keys(scores[None], beta, rng))[:, 1]) for _ in range(DRAWS)]


def without_replacement(weights: np.ndarray, order: tuple[int, ...]) -> float:
    """The probability of drawing `order` one unit at a time, each in proportion to its weight
    among those left."""
    left, probability = weights.astype(float), 1.0
    for unit in order:
        probability *= left[unit] / left.sum()
        left[unit] = 0.0
    return probability


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_power_draws_whole_orders_as_sampling_without_replacement(beta: float) -> None:
    scores = np.array([1.0, 2.0, 3.0])
    seen = Counter(orders(scores, beta))
    for order in itertools.permutations(range(3)):
        expected = without_replacement(scores**beta, order)
        assert seen[order] / DRAWS == pytest.approx(expected, abs=0.012), order


def test_top_sampling_is_the_score_order_and_a_large_beta_approaches_it() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.3])
    assert rank_by_score(scores[None])[:, 1].tolist() == [1, 2, 3, 0]
    assert Counter(orders(scores, beta=60.0)).most_common(1)[0][0] == (1, 2, 3, 0)


def test_unavailable_units_are_never_drawn_and_zero_scores_come_last() -> None:
    scores = np.array([[0.0, 0.2, -np.inf, 0.7], [0.0, -np.inf, 0.1, 0.0]])
    rng = np.random.default_rng(0)
    for _ in range(200):
        ranked = [tuple(unit) for unit in rank_by_score(power_keys(scores, 1.0, rng))]
        assert len(ranked) == 6 and (0, 2) not in ranked and (1, 1) not in ranked
        assert set(ranked[:3]) == {(0, 1), (0, 3), (1, 2)}  # every positive score first


def test_power_sampling_refuses_negative_scores_and_bad_settings() -> None:
    with pytest.raises(AlsegError, match="must be >= 0"):
        power_keys(np.array([[0.5, -0.1]]), 1.0, np.random.default_rng(0))
    with pytest.raises(AlsegError, match="one of top, power"):
        ScoreShaping(sampling="softmax")
    with pytest.raises(AlsegError, match="sampling_beta must be > 0"):
        ScoreShaping(sampling="power", sampling_beta=0.0)


def test_a_strategy_samples_with_the_cycle_generator() -> None:
    score = np.linspace(0.1, 1.0, 10)[:, None]
    scores = PoolScores({"score": score}, None, np.ones((10, 1), dtype=bool))
    strategy = UncertaintySampling("entropy", "entropy", shaping=ScoreShaping(sampling="power"))
    first = strategy.rank(scores, image_context(10, 3))[:, 0].tolist()
    assert strategy.rank(scores, image_context(10, 3))[:, 0].tolist() == first  # same seed, same draw
    assert sorted(first) == list(range(10)) and first != list(range(9, -1, -1))


def test_a_power_sampled_run_spends_its_budget_and_repeats_under_its_seed(make_cfg, tmp_path) -> None:
    superpixels = ("regions=superpixels", "budget.annotation=dominant", "budget.cycles=1")
    queried = {}
    for run, sampling in (("a", "power"), ("b", "power"), ("top", "top")):
        overrides = (*superpixels, f"strategy.sampling={sampling}")
        _, rows = run_experiment(make_cfg, tmp_path / run, "entropy", *overrides)
        assert rows[1]["cost_clicks"] - rows[0]["cost_clicks"] == rows[0]["queried_units"] > 0
        with np.load(tmp_path / run / "state" / "cycle_001.npz") as state:
            queried[run] = state["labelled_at"]
    assert (queried["a"] == queried["b"]).all() and (queried["a"] != queried["top"]).any()
