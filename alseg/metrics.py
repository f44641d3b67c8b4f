"""Segmentation quality from a torchmetrics confusion matrix: IoU, Dice, pixel accuracy."""

from __future__ import annotations

import torch
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
    }


@torch.inference_mode()
def evaluate(
    network: nn.Module, loader: DataLoader, num_classes: int, device: torch.device
) -> dict[str, float | list[float]]:
    """Stream a labelled split through the network and score its argmax predictions."""
    confusion = MulticlassConfusionMatrix(num_classes, ignore_index=IGNORE_INDEX).to(device)
    was_training = network.training
    network.eval()
    for images, targets in loader:
        confusion.update(network(images.to(device)).argmax(dim=1), targets.to(device))
    network.train(was_training)
    return scores_from_confusion(confusion.compute())
