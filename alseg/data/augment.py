"""Augmentation of the labelled training set (never of the pool that is scored, nor of evaluation)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from alseg.errors import AlsegError


class Augmentation:
    """Random horizontal flip with probability `hflip`, then a random crop of `crop` (H, W).

    Image and target move together; randomness comes from torch's generator, which each
    cycle seeds, so runs stay reproducible.
    """

    def __init__(self, hflip: float = 0.0, crop: Sequence[int] | None = None) -> None:
        if not 0 <= hflip <= 1:
            raise AlsegError(f"dataset.augment.hflip is a probability in [0, 1] (got {hflip}).")
        self.hflip = hflip
        self.crop = (int(crop[0]), int(crop[1])) if crop is not None else None

    def __call__(self, image: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.hflip and torch.rand(()) < self.hflip:
            image, target = image.flip(-1), target.flip(-1)
        if self.crop is not None:
            height, width = target.shape
            crop_h, crop_w = self.crop
            if crop_h > height or crop_w > width:
                raise AlsegError(
                    f"dataset.augment.crop {list(self.crop)} is larger than the images ({height}x{width})."
                )
            y = int(torch.randint(0, height - crop_h + 1, ()))
            x = int(torch.randint(0, width - crop_w + 1, ()))
            image, target = image[:, y : y + crop_h, x : x + crop_w], target[y : y + crop_h, x : x + crop_w]
        return image, target
