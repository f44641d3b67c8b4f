"""NMS, set cover, k-center, density and committee measures on hand-computed cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from alseg.errors import AlsegError
from alseg.regions.boxes import BoxMap, SlidingWindows
from alseg.selection import (
    cosine_similarity,
    greedy_max_cover,
    k_center_greedy,
    mean_similarity,
    non_maximum_suppression,
)
from alseg.strategies.cereals import normalise
from alseg.uncertainty import class_argmax, committee_variance, vote_counts, vote_entropy


def one_hot_committee(votes: list[int], classes: int = 3) -> torch.Tensor:
    """A committee (T, 1, C, 1, 1) whose member t puts all its mass on class votes[t]."""
    committee = torch.zeros(len(votes), 1, classes, 1, 1)
    for member, cls in enumerate(votes):
        committee[member, 0, cls] = 1.0
    return committee


def test_vote_entropy_hand_values() -> None:
    assert vote_entropy(one_hot_committee([1, 1, 1, 1])).item() == pytest.approx(0.0)
    assert vote_entropy(one_hot_committee([0, 0, 1, 1])).item() == pytest.approx(np.log(2))
    assert vote_entropy(one_hot_committee([0, 1, 2])).item() == pytest.approx(np.log(3))
    assert vote_entropy(one_hot_committee([0, 0, 0, 2])).item() == pytest.approx(
        -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    )


def test_vote_entropy_counts_votes_not_probabilities() -> None:
    soft = torch.tensor([[0.6, 0.4, 0.0], [0.55, 0.45, 0.0]]).reshape(2, 1, 3, 1, 1)
    assert vote_entropy(soft).item() == pytest.approx(0.0)  # both vote class 0


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), ties=st.booleans())
def test_class_argmax_matches_torch_argmax_ties_included(seed: int, ties: bool) -> None:
    values = torch.from_numpy(np.random.default_rng(seed).normal(size=(3, 2, 5, 4, 4)))
    if ties:
        values = values.round()  # many equal maxima: the first class wins, as in argmax
    assert torch.equal(class_argmax(values).long(), values.argmax(dim=2))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_vote_entropy_and_variance_match_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    committee = torch.from_numpy(rng.dirichlet(np.ones(4), size=(5, 2, 3, 3))).permute(0, 1, 4, 2, 3)
    votes = committee.argmax(dim=2).numpy()  # (T, B, H, W)
    share = np.stack([(votes == c).mean(axis=0) for c in range(4)], axis=-1)
    expected = -np.sum(np.where(share > 0, share * np.log(np.where(share > 0, share, 1)), 0), axis=-1)
    np.testing.assert_allclose(vote_entropy(committee).numpy(), expected, atol=1e-9)
    np.testing.assert_allclose(
        committee_variance(committee).numpy(), committee.numpy().var(axis=0).mean(axis=1), atol=1e-12
    )


def test_box_overlap_hand_values() -> None:
    boxes = np.array([[0, 0, 4, 4], [0, 2, 4, 6], [10, 10, 12, 12]])
    overlap = BoxMap(boxes, (16, 16)).overlap()
    assert overlap[0, 0] == 1 and overlap[0, 2] == 0
    assert overlap[0, 1] == pytest.approx(8 / 24)


def test_nms_keeps_the_best_and_drops_what_overlaps_it() -> None:
    boxes = np.array([[0, 0, 4, 4], [0, 2, 4, 6], [0, 4, 4, 8], [8, 8, 12, 12]])
    overlap = BoxMap(boxes, (16, 16)).overlap()
    scores = np.array([0.5, 0.9, 0.4, -np.inf])
    # 1 is best and overlaps 0 and 2; 3 is unavailable.
    assert non_maximum_suppression(scores, overlap, 0.0).tolist() == [1]
    # 1 overlaps 0 and 2 by IoU 1/3 each; at threshold 0.5 all three stay.
    assert non_maximum_suppression(scores, overlap, 0.5).tolist() == [1, 0, 2]
    scores = np.array([0.9, 0.1, 0.8, 0.7])
    assert non_maximum_suppression(scores, overlap, 0.0).tolist() == [0, 2, 3]


def test_nms_ties_keep_the_lower_index() -> None:
    boxes = np.array([[0, 0, 4, 4], [0, 2, 4, 6]])
    assert non_maximum_suppression(np.array([0.5, 0.5]), BoxMap(boxes, (16, 16)).overlap(), 0.0).tolist() == [
        0
    ]


def brute_force_cover(similarity: np.ndarray, count: int) -> float:
    return max(
        similarity[list(s)].max(axis=0).sum() for s in itertools.combinations(range(len(similarity)), count)
    )


def test_greedy_max_cover_hand_example() -> None:
    # Candidate 0 covers pool items 0-1, candidate 1 items 2-3, candidate 2 items 0-2 weakly.
    similarity = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0], [0.6, 0.6, 0.6, 0.0]])
    # Gains 2, 2, 1.8: the tie goes to the lower index; then candidate 1 adds 2, candidate 2 0.6.
    assert greedy_max_cover(similarity, 1).tolist() == [0]
    assert greedy_max_cover(similarity, 2).tolist() == [0, 1]


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_greedy_max_cover_reaches_its_guarantee(seed: int) -> None:
    similarity = np.random.default_rng(seed).random((6, 8))
    picks = greedy_max_cover(torch.from_numpy(similarity), 3)
    assert len(set(picks.tolist())) == 3
    achieved = similarity[picks].max(axis=0).sum()
    assert achieved >= (1 - 1 / np.e) * brute_force_cover(similarity, 3) - 1e-9


def test_k_center_picks_the_farthest_points_first() -> None:
    points = torch.tensor([[0.0], [1.0], [10.0], [4.0], [6.0]])
    # From centre 0: farthest is 10 (index 2); then 4 and 6 are 4 away from {0, 10}; tie -> index 3.
    assert k_center_greedy(points, np.array([0]), 3).tolist() == [2, 3, 4]
    assert k_center_greedy(points, np.array([], dtype=np.int64), 1).tolist() == [0]


def test_k_center_never_returns_a_centre() -> None:
    points = torch.zeros(5, 2)  # all equal: every distance is 0
    picks = k_center_greedy(points, np.array([1, 3]), 10)
    assert sorted(picks.tolist()) == [0, 2, 4]


@pytest.mark.parametrize("block", [1, 3, 1024])
def test_mean_similarity_blockwise_equals_full(block: int) -> None:
    features = torch.from_numpy(np.random.default_rng(0).normal(size=(7, 5)))
    full = cosine_similarity(features, features).mean(dim=1)
    torch.testing.assert_close(mean_similarity(features, features, block), full.float())


def test_sliding_windows_cover_the_image_and_scale() -> None:
    boxes = SlidingWindows(16, 8).boxes(40, 64)
    cover = np.zeros((40, 64), dtype=int)
    for y0, x0, y1, x1 in boxes:
        assert (y1 - y0, x1 - x0) == (16, 16)
        cover[y0:y1, x0:x1] += 1
    assert (cover >= 1).all()
    assert boxes[:, 2].max() == 40 and boxes[:, 3].max() == 64
    scaled = SlidingWindows(128, 64, reference_width=2048).boxes(256, 512)
    assert (scaled[:, 2] - scaled[:, 0] == 32).all()
    with pytest.raises(AlsegError, match="do not fit"):
        SlidingWindows(100, 10).boxes(40, 64)


def test_normalise_scales_finite_values_only() -> None:
    values = np.array([2.0, 4.0, -np.inf, 3.0])
    np.testing.assert_allclose(normalise(values), [0.0, 1.0, -np.inf, 0.5])
    np.testing.assert_allclose(normalise(np.array([5.0, 5.0])), [0.0, 0.0])


@pytest.mark.parametrize(("members", "classes"), [(3, 4), (20, 19), (70, 12), (1, 1)])
def test_vote_counts_match_per_class_counting(members: int, classes: int) -> None:
    labels = torch.from_numpy(np.random.default_rng(members).integers(0, classes, size=(members, 2, 5, 7)))
    expected = torch.stack([(labels == c).sum(dim=0) for c in range(classes)])
    assert torch.equal(vote_counts(labels.to(torch.uint8), classes), expected)
