"""Segmentation quality: from a torchmetrics confusion matrix (IoU, Dice, pixel accuracy,
pooled over the split's pixels); per image and averaged, the Jaccard index and Dice of chosen
classes (ISIC 2017 ranks by the mean per-image Jaccard of the lesion); and, where a split gives
ground-truth instances, GlaS's object-level F1, Dice and Hausdorff distance."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy import ndimage
from torch import nn
from torch.utils.data import DataLoader
from torchmetrics.classification import MulticlassConfusionMatrix

from alseg.data.base import IGNORE_INDEX


def scores_from_confusion(confusion: torch.Tensor) -> dict[str, float | list[float]]:
    """mIoU, mean Dice, pixel accuracy and per-class IoU from a (C, C) confusion matrix.

    Rows are true classes. A class absent from both target and prediction has no IoU (NaN)
    and is left out of the means.
    """
    confusion = confusion.double()
    true_pos = confusion.diag()
    false_pos = confusion.sum(dim=0) - true_pos
    false_neg = confusion.sum(dim=1) - true_pos
    union = true_pos + false_pos + false_neg
    present = union > 0
    iou = torch.where(present, true_pos / union.clamp(min=1), torch.nan)
    dice = torch.where(present, 2 * true_pos / (union + true_pos).clamp(min=1), torch.nan)
    return {
        "miou": float(iou[present].mean()) if present.any() else float("nan"),
        "dice": float(dice[present].mean()) if present.any() else float("nan"),
        "pixel_acc": float(true_pos.sum() / confusion.sum().clamp(min=1)),
        "class_iou": iou.tolist(),
        "class_dice": dice.tolist(),
        "class_pixels": confusion.sum(dim=1).long().tolist(),  # of each class in the masks
    }


def object_counts(foreground: np.ndarray, instances: np.ndarray) -> np.ndarray:
    """(TP, FP, FN) of object detection as GlaS scores it. A segmented object (a connected
    component of the predicted foreground) is a true positive when it covers more than half
    of the ground-truth object (instance id > 0) it overlaps most, else a false positive;
    ground-truth objects that no segmented object matches are false negatives."""
    segmented, count = ndimage.label(foreground)
    ids, truth = np.unique(instances, return_inverse=True)
    pairs = np.bincount(segmented.ravel() * len(ids) + truth.ravel(), minlength=(count + 1) * len(ids))
    pairs = pairs.reshape(count + 1, len(ids))
    area = pairs.sum(axis=0)
    pairs[:, ids == 0] = 0  # overlapping background matches nothing
    best = pairs[1:].argmax(axis=1)
    hit = pairs[1:][np.arange(count), best] > 0.5 * area[best]
    true_pos = int(hit.sum())
    return np.array([true_pos, count - true_pos, int((ids > 0).sum()) - len(np.unique(best[hit]))])


def _hausdorff(a: np.ndarray, b: np.ndarray) -> float:
    """Hausdorff distance (pixels) between two non-empty pixel sets given as bool masks."""
    to_b = ndimage.distance_transform_edt(~b)
    to_a = ndimage.distance_transform_edt(~a)
    return float(max(to_b[a].max(), to_a[b].max()))


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def _objects(labels: np.ndarray) -> list[np.ndarray]:
    return [labels == i for i in np.unique(labels) if i > 0]


def _matched_half(
    sources: list[np.ndarray], targets: list[np.ndarray], score, nearest: bool, missing: float
) -> float:
    """Sum over `sources` of area weight x score(source, the target it overlaps most). Without
    an overlapping target the partner is the target nearest in Hausdorff distance (`nearest`)
    or none, which scores `missing`."""
    total_area = sum(int(s.sum()) for s in sources)
    value = 0.0
    for source in sources:
        overlaps = [int((source & t).sum()) for t in targets]
        if targets and max(overlaps) > 0:
            partner = targets[int(np.argmax(overlaps))]
        elif targets and nearest:
            partner = min(targets, key=lambda t: _hausdorff(source, t))
        else:
            value += source.sum() / total_area * missing
            continue
        value += source.sum() / total_area * score(source, partner)
    return value


def object_dice(segmented: np.ndarray, instances: np.ndarray) -> float:
    """GlaS object-level Dice of one image: 1/2 [sum_i g_i D(G_i, S*(G_i)) + sum_j s_j D(G*(S_j), S_j)],
    g_i and s_j the objects' shares of all ground-truth / segmented area, * the object of the
    other side that overlaps most (none: D = 0). Labels: 0 background, objects > 0."""
    truth, found = _objects(instances), _objects(segmented)
    if not truth and not found:
        return 1.0
    return 0.5 * (
        _matched_half(truth, found, _dice, nearest=False, missing=0.0)
        + _matched_half(found, truth, _dice, nearest=False, missing=0.0)
    )


def object_hausdorff(segmented: np.ndarray, instances: np.ndarray) -> float:
    """GlaS object-level Hausdorff distance (pixels) of one image, weighted like object_dice;
    an object that overlaps nothing is matched to the nearest object of the other side, and
    where the other side has no object at all it scores the image diagonal."""
    truth, found = _objects(instances), _objects(segmented)
    if not truth and not found:
        return 0.0
    diagonal = float(np.hypot(*instances.shape))
    return 0.5 * (
        _matched_half(truth, found, _hausdorff, nearest=True, missing=diagonal)
        + _matched_half(found, truth, _hausdorff, nearest=True, missing=diagonal)
    )


def image_overlap(predicted: np.ndarray, target: np.ndarray, cls: int) -> tuple[float, float]:
    """(Jaccard, Dice) of class `cls` in one image, void pixels left out; 1 when both are empty."""
    valid = target != IGNORE_INDEX
    pred, true = (predicted == cls) & valid, (target == cls) & valid
    union = int((pred | true).sum())
    if union == 0:
        return 1.0, 1.0
    inter = int((pred & true).sum())
    return inter / union, 2 * inter / (int(pred.sum()) + int(true.sum()))


def f1_from_counts(counts: np.ndarray) -> float:
    true_pos, false_pos, false_neg = counts
    return float(2 * true_pos / max(2 * true_pos + false_pos + false_neg, 1))


@torch.inference_mode()
def evaluate(
    network: nn.Module,
    loader: DataLoader,
    num_classes: int,
    device: torch.device,
    per_image_classes: tuple[int, ...] = (),
) -> dict[str, Any]:
    """Stream a labelled split through the network and score its argmax predictions.

    `per_image_classes` adds `image_jaccard` and `image_dice` ({class: mean over images}).
    Batches of (images, targets, instances) add the GlaS object-level F1 (over the split's
    objects), Dice and Hausdorff (means over images); foreground is any class but 0.
    """
    confusion = MulticlassConfusionMatrix(num_classes, ignore_index=IGNORE_INDEX).to(device)
    objects = np.zeros(3, dtype=np.int64)
    per_object: list[tuple[float, float]] = []
    per_image: dict[int, list[tuple[float, float]]] = {cls: [] for cls in per_image_classes}
    was_training = network.training
    network.eval()
    for images, targets, *instances in loader:
        predicted = network(images.to(device)).argmax(dim=1)
        confusion.update(predicted, targets.to(device))
        labels, truths = predicted.cpu().numpy(), targets.numpy()
        for cls, values in per_image.items():
            values.extend(image_overlap(p, t, cls) for p, t in zip(labels, truths, strict=True))
        if instances:
            for found, truth in zip(labels, instances[0].numpy(), strict=True):
                objects += object_counts(found > 0, truth)
                segmented = ndimage.label(found > 0)[0]
                per_object.append((object_dice(segmented, truth), object_hausdorff(segmented, truth)))
    network.train(was_training)
    scores: dict[str, Any] = dict(scores_from_confusion(confusion.compute()))
    if per_image:
        scores["image_jaccard"] = {cls: float(np.mean([j for j, _ in v])) for cls, v in per_image.items()}
        scores["image_dice"] = {cls: float(np.mean([d for _, d in v])) for cls, v in per_image.items()}
    if per_object:
        scores["object_f1"] = f1_from_counts(objects)
        scores["object_dice"] = float(np.mean([d for d, _ in per_object]))
        scores["object_hausdorff"] = float(np.mean([h for _, h in per_object]))
    return scores
