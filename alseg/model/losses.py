"""The training loss: cross-entropy that also learns from partial labels (class sets)."""

from __future__ import annotations

import torch
from torch import nn

from alseg.errors import AlsegError
from alseg.labels.state import candidate_mask


class PartialLabelCrossEntropy(nn.Module):
    """Mean over labelled pixels of -log(sum of the softmax over the classes a label allows).

    A pixel labelled with one class gets exactly the cross-entropy; a pixel whose unit was
    answered with several classes (a class-set label) is pushed towards any of them, the
    network deciding which (the merged positive loss of multi-class label queries). Pixels
    that allow no class (IGNORE_INDEX) add nothing. `label_smoothing` mixes in the mean
    cross-entropy over all classes with that weight, as torch's CrossEntropyLoss does;
    `ignore_index` is accepted for configs written for it and must be 255.
    """

    def __init__(self, ignore_index: int = 255, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if ignore_index != 255:
            raise AlsegError(f"train.loss.ignore_index must be 255, the ignore label (got {ignore_index})")
        if not 0.0 <= label_smoothing <= 1.0:
            raise AlsegError(f"train.loss.label_smoothing must be in [0, 1] (got {label_smoothing})")
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        allowed = candidate_mask(targets, logits.shape[1])
        labelled = allowed.any(dim=1)
        if not labelled.any():
            return logits.sum() * 0.0  # keeps the graph: a batch with no labelled pixel
        logits = logits.float()
        log_total = torch.logsumexp(logits, dim=1)
        losses = log_total - torch.logsumexp(logits.masked_fill(~allowed, float("-inf")), dim=1)
        if self.label_smoothing:
            uniform = log_total - logits.mean(dim=1)
            losses = (1 - self.label_smoothing) * losses + self.label_smoothing * uniform
        return losses[labelled].mean()
