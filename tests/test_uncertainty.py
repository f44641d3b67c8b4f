"""Uncertainty measures and reductions against independent numpy implementations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from alseg.errors import AlsegError
from alseg.uncertainty import entropy, get_measure, least_confidence, margin


def random_probs(seed: int, shape=(2, 5, 4, 6)) -> torch.Tensor:
    logits = torch.from_numpy(np.random.default_rng(seed).normal(0, 3, size=shape))
    return logits.softmax(dim=1)


def reference(name: str, probs: np.ndarray) -> np.ndarray:
    p = np.moveaxis(probs, 1, -1)  # (B, H, W, C)
    ordered = np.sort(p, axis=-1)[..., ::-1]
    if name == "least_confidence":
        return 1 - ordered[..., 0]
    if name == "margin":
        return 1 - (ordered[..., 0] - ordered[..., 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.nansum(np.where(p > 0, p * np.log(p), 0.0), axis=-1)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), name=st.sampled_from(["least_confidence", "margin", "entropy"]))
def test_measures_match_numpy_reference(seed: int, name: str) -> None:
    probs = random_probs(seed)
    np.testing.assert_allclose(get_measure(name)(probs).numpy(), reference(name, probs.numpy()), atol=1e-9)


def test_uniform_is_most_and_one_hot_least_uncertain() -> None:
    classes = 4
    uniform = torch.full((1, classes, 1, 1), 1 / classes)
    one_hot = torch.zeros(1, classes, 1, 1)
    one_hot[0, 2] = 1
    assert least_confidence(uniform).item() == pytest.approx(1 - 1 / classes)
    assert margin(uniform).item() == pytest.approx(1.0)
    assert entropy(uniform).item() == pytest.approx(np.log(classes))
    for measure in (least_confidence, margin, entropy):
        assert measure(one_hot).item() == pytest.approx(0.0)


def test_hand_computed_values_and_ties() -> None:
    probs = torch.tensor([0.5, 0.3, 0.2]).reshape(1, 3, 1, 1)
    assert least_confidence(probs).item() == pytest.approx(0.5)
    assert margin(probs).item() == pytest.approx(0.8)
    assert entropy(probs).item() == pytest.approx(
        -(0.5 * np.log(0.5) + 0.3 * np.log(0.3) + 0.2 * np.log(0.2))
    )
    tie = torch.tensor([0.4, 0.4, 0.2]).reshape(1, 3, 1, 1)
    assert margin(tie).item() == pytest.approx(1.0)


def test_measures_rank_a_confident_pixel_below_an_unsure_one() -> None:
    probs = torch.tensor([[0.9, 0.05, 0.05], [0.4, 0.35, 0.25]]).T.reshape(1, 3, 1, 2)
    for measure in (least_confidence, margin, entropy):
        scores = measure(probs)[0, 0]
        assert scores[1] > scores[0]


def test_unknown_measure_lists_the_valid_names() -> None:
    with pytest.raises(AlsegError, match="entropy"):
        get_measure("entropie")
