"""Segmentation quality from a torchmetrics confusion matrix (IoU, Dice, pixel accuracy) and,
where a split gives ground-truth instances, GlaS's object-level F1."""

from __future__ import annotations

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


def f1_from_counts(counts: np.ndarray) -> float:
    true_pos, false_pos, false_neg = counts
    return float(2 * true_pos / max(2 * true_pos + false_pos + false_neg, 1))


@torch.inference_mode()
def evaluate(
    network: nn.Module, loader: DataLoader, num_classes: int, device: torch.device
) -> dict[str, float | list[float]]:
    """Stream a labelled split through the network and score its argmax predictions. Batches
    of (images, targets, instances) add the object-level F1 (foreground: any class but 0)."""
    confusion = MulticlassConfusionMatrix(num_classes, ignore_index=IGNORE_INDEX).to(device)
    objects = np.zeros(3, dtype=np.int64)
    has_instances = False
    was_training = network.training
    network.eval()
    for images, targets, *instances in loader:
        predicted = network(images.to(device)).argmax(dim=1)
        confusion.update(predicted, targets.to(device))
        if instances:
            has_instances = True
            for labels, truth in zip(predicted.cpu().numpy(), instances[0].numpy(), strict=True):
                objects += object_counts(labels > 0, truth)
    network.train(was_training)
    scores = scores_from_confusion(confusion.compute())
    if has_instances:
        scores["object_f1"] = f1_from_counts(objects)
    return scores
