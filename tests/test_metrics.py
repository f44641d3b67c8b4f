"""mIoU, Dice and pixel accuracy against a numpy reference, ignore pixels included."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from alseg.data.base import IGNORE_INDEX
from alseg.metrics import (
    evaluate,
    f1_from_counts,
    image_overlap,
    object_counts,
    object_dice,
    object_hausdorff,
    scores_from_confusion,
)


def numpy_scores(pred: np.ndarray, target: np.ndarray, classes: int) -> dict:
    valid = target != IGNORE_INDEX
    ious, dices = [], []
    for c in range(classes):
        p, t = (pred == c) & valid, (target == c) & valid
        inter, union = (p & t).sum(), (p | t).sum()
        if union:
            ious.append(inter / union)
            dices.append(2 * inter / (p.sum() + t.sum()))
    return {"miou": np.mean(ious), "dice": np.mean(dices), "pixel_acc": (pred == target)[valid].mean()}


class FixedPrediction(torch.nn.Module):
    """Returns one-hot logits of predictions stored per image (looked up by the input's value)."""

    def __init__(self, predictions: torch.Tensor, classes: int) -> None:
        super().__init__()
        self.logits = torch.nn.functional.one_hot(predictions, classes).permute(0, 3, 1, 2).float()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits[images[:, 0, 0, 0].long()]


@pytest.mark.parametrize("seed", range(5))
def test_evaluate_matches_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    classes, n = 5, 6
    target = rng.integers(0, classes, size=(n, 8, 8))
    target[rng.random(target.shape) < 0.2] = IGNORE_INDEX
    pred = np.where(rng.random(target.shape) < 0.6, target % classes, rng.integers(0, classes, target.shape))
    images = torch.arange(n, dtype=torch.float32).reshape(n, 1, 1, 1).expand(n, 3, 8, 8)
    loader = DataLoader(TensorDataset(images, torch.from_numpy(target)), batch_size=4)
    got = evaluate(FixedPrediction(torch.from_numpy(pred), classes), loader, classes, torch.device("cpu"))
    expected = numpy_scores(pred, target, classes)
    for key in expected:
        assert got[key] == pytest.approx(expected[key])


def test_absent_class_is_left_out_of_the_mean() -> None:
    confusion = torch.tensor([[5, 1, 0], [1, 3, 0], [0, 0, 0]])
    scores = scores_from_confusion(confusion)
    assert np.isnan(scores["class_iou"][2])
    assert scores["miou"] == pytest.approx((5 / 7 + 3 / 5) / 2)
    assert scores["pixel_acc"] == pytest.approx(8 / 10)


def glands() -> np.ndarray:
    instances = np.zeros((12, 12), dtype=np.int64)
    instances[1:5, 1:5] = 3  # 16 pixels
    instances[7:11, 7:11] = 9  # 16 pixels
    return instances


def test_object_f1_hand_cases() -> None:
    truth = glands()
    exact = truth > 0
    assert object_counts(exact, truth).tolist() == [2, 0, 0]
    one_and_noise = truth == 3
    one_and_noise[0, 10] = True  # a blob on background
    assert object_counts(one_and_noise, truth).tolist() == [1, 1, 1]
    assert f1_from_counts(object_counts(one_and_noise, truth)) == pytest.approx(2 / (2 + 1 + 1))
    small = np.zeros_like(exact)
    small[1:3, 1:5] = True  # half of gland 3: not more than half
    assert object_counts(small, truth).tolist() == [0, 1, 2]
    bridged = exact.copy()
    bridged[4:8, 4:8] = True  # one component over both glands: matches one, the other is missed
    assert object_counts(bridged, truth).tolist() == [1, 0, 1]
    assert object_counts(np.zeros_like(exact), truth).tolist() == [0, 0, 2]
    assert f1_from_counts(np.zeros(3, dtype=np.int64)) == 0.0


def test_object_dice_and_hausdorff_hand_cases() -> None:
    truth = np.zeros((12, 12), dtype=np.int64)
    truth[0:4, 0:4] = 1  # G1, 16 pixels
    assert object_dice(truth, truth) == 1.0 and object_hausdorff(truth, truth) == 0.0
    half = np.zeros_like(truth)
    half[0:4, 0:2] = 1  # the left half of G1
    assert object_dice(half, truth) == pytest.approx(2 * 8 / (16 + 8))
    assert object_hausdorff(half, truth) == pytest.approx(2.0)  # G1's column 3 to column 1
    truth[0:2, 10:12] = 2  # G2, 4 pixels, missed
    found = (truth == 1).astype(np.int64)
    # Truth side: 16/20 x 1 + 4/20 x 0; segmented side: 1 x 1. Half their sum: 0.9.
    assert object_dice(found, truth) == pytest.approx(0.9)
    # G2 is matched to the nearest segmented object, S1: from S1's (3, 0) to G2's (1, 10) is
    # sqrt(104) = 10.198, the farther direction. Truth side 0.8 x 0 + 0.2 x 10.198; other side 0.
    assert object_hausdorff(found, truth) == pytest.approx(0.5 * 0.2 * np.sqrt(104))
    nothing = np.zeros_like(truth)
    assert object_dice(nothing, truth) == 0.0
    assert object_hausdorff(nothing, truth) == pytest.approx(0.5 * np.hypot(12, 12))
    assert object_dice(nothing, nothing) == 1.0 and object_hausdorff(nothing, nothing) == 0.0


def test_per_image_jaccard_differs_from_pooled_as_the_challenge_intends() -> None:
    """A missed 10-pixel lesion beside a perfect 1000-pixel one: pooled Dice near 1, per-image 0.5."""
    big, small = np.zeros((40, 40), dtype=np.int64), np.zeros((40, 40), dtype=np.int64)
    big[:25, :40] = 1  # 1000 pixels
    small[0, :10] = 1  # 10 pixels
    target = np.stack([big, small])
    pred = np.stack([big, np.zeros_like(small)])
    images = torch.arange(2, dtype=torch.float32).reshape(2, 1, 1, 1).expand(2, 3, 40, 40)
    loader = DataLoader(TensorDataset(images, torch.from_numpy(target)), batch_size=2)
    got = evaluate(FixedPrediction(torch.from_numpy(pred), 2), loader, 2, torch.device("cpu"), (1,))
    assert got["image_jaccard"] == {1: pytest.approx(0.5)} and got["image_dice"] == {1: pytest.approx(0.5)}
    assert got["class_dice"][1] == pytest.approx(2 * 1000 / (1000 + 1010))
    assert image_overlap(np.zeros((2, 2)), np.zeros((2, 2)), 1) == (1.0, 1.0)  # nothing to find


def test_isic_columns_name_per_image_and_pooled_metrics() -> None:
    from alseg.experiment import metric_columns

    metrics = {"miou": 0.5, "class_iou": [0.9, 0.4], "class_dice": [0.95, 0.6]}
    metrics |= {"image_jaccard": {1: 0.3}, "image_dice": {1: 0.45}}
    columns = metric_columns("test", metrics, ("background", "lesion"))
    assert columns == {
        "test_miou": 0.5,
        "test_iou_background": 0.9,
        "test_pooled_iou_lesion": 0.4,
        "test_dice_background": 0.95,
        "test_pooled_dice_lesion": 0.6,
        "test_jaccard_lesion": 0.3,
        "test_dice_lesion": 0.45,
    }
