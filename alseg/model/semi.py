"""Learning from the unlabelled pixels too (`train.semi`): a teacher, the exponential moving
average of the student, predicts each unlabelled image as it is; its confident pixels become
targets for the student on a strongly perturbed view (colour jitter, then CutMix between the
batch's images), weighted against the supervised loss (FixMatch's recipe with a mean teacher).

The unlabelled pixels are every pixel no label covers: unlabelled images and the unlabelled parts
of labelled ones. A pixel with an oracle's answer or a strategy's kept pseudo-label is never a
pseudo-target; pseudo-targets are recomputed each step, never saved and never paid for.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from alseg.errors import AlsegError


@dataclass(frozen=True)
class SemiSupervision:
    """`threshold`: the teacher's confidence (max softmax) above which a pixel is a target;
    `weight`: of the unlabelled loss against the supervised one; `ratio`: unlabelled images per
    labelled image in a step; `ema_decay`: of the teacher's weights each step; `jitter`: the
    colour jitter's strength (brightness and contrast, on normalised images); `cutmix`: mix a
    box of another image of the batch into each strong view."""

    threshold: float = 0.95
    weight: float = 1.0
    ratio: int = 1
    ema_decay: float = 0.99
    jitter: float = 0.4
    cutmix: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1 or self.weight < 0 or self.ratio < 1 or not 0 <= self.ema_decay < 1:
            raise AlsegError(
                "train.semi needs 0 < threshold <= 1, weight >= 0, ratio >= 1 and 0 <= ema_decay < 1 "
                f"(got {self.threshold}, {self.weight}, {self.ratio}, {self.ema_decay})."
            )


class MeanTeacher(nn.Module):
    """A frozen copy of the student whose weights follow the student's moving average."""

    def __init__(self, student: nn.Module) -> None:
        super().__init__()
        self.network = copy.deepcopy(student).eval().requires_grad_(False)

    @torch.no_grad()
    def follow(self, student: nn.Module, decay: float) -> None:
        """Move every weight (and batch-norm statistic) toward the student's."""
        pairs = zip(self.network.state_dict().values(), student.state_dict().values(), strict=True)
        for mine, theirs in pairs:
            if mine.dtype.is_floating_point:
                mine.mul_(decay).add_(theirs.detach(), alpha=1 - decay)
            else:
                mine.copy_(theirs)

    @torch.no_grad()
    def targets(self, images: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The teacher's class per pixel (B, H, W) and whether it is confident enough."""
        confidence, labels = self.network.eval()(images).float().softmax(dim=1).max(dim=1)
        return labels, confidence >= threshold


def strong_view(
    images: torch.Tensor, targets: torch.Tensor, keep: torch.Tensor, semi: SemiSupervision
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images colour-jittered per image and, with CutMix, each given a random box of another
    image of the batch; the targets and their mask move with the pixels."""
    batch = len(images)
    shape = (batch, 1, 1, 1)
    contrast = 1 + semi.jitter * (2 * torch.rand(shape, device=images.device) - 1)
    brightness = semi.jitter * (2 * torch.rand(shape, device=images.device) - 1)
    images = images * contrast + brightness
    if not semi.cutmix or batch < 2:
        return images, targets, keep
    height, width = images.shape[-2:]
    other = torch.roll(torch.arange(batch, device=images.device), 1)
    box = torch.zeros(batch, height, width, dtype=torch.bool, device=images.device)
    for row in range(batch):  # a box of a quarter of the area on average
        h, w = int(height * torch.rand(()).sqrt() * 0.7), int(width * torch.rand(()).sqrt() * 0.7)
        y, x = int(torch.randint(0, height - h + 1, ())), int(torch.randint(0, width - w + 1, ()))
        box[row, y : y + h, x : x + w] = True
    mixed = torch.where(box[:, None], images[other], images)
    return mixed, torch.where(box, targets[other], targets), torch.where(box, keep[other], keep)


def unlabelled_loss(
    student: nn.Module,
    teacher: MeanTeacher,
    images: torch.Tensor,
    known: torch.Tensor,
    semi: SemiSupervision,
) -> torch.Tensor:
    """Cross-entropy of the student on the strong view against the teacher's confident classes,
    over the pixels no label covers (`known` False), averaged over every pixel of the batch."""
    targets, confident = teacher.targets(images, semi.threshold)
    keep = confident & ~known
    view, targets, keep = strong_view(images, targets, keep, semi)
    per_pixel = nn.functional.cross_entropy(student(view).float(), targets, reduction="none")
    return (per_pixel * keep).sum() / keep.numel()
