"""What the trainer reads: the labelled images of a cycle with the oracle's training targets."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from alseg.data.augment import Augmentation
from alseg.data.base import IGNORE_INDEX, SegmentationDataset
from alseg.labels.oracle import Oracle


class LabelledImages(Dataset):
    """Training images (repeats allowed: a bootstrap resample) with targets from the oracle:
    oracle labels, else pseudo-labels, else IGNORE_INDEX."""

    def __init__(
        self, pool: SegmentationDataset, oracle: Oracle, indices: np.ndarray, augment: Augmentation
    ) -> None:
        self.pool = pool
        self.oracle = oracle
        self.indices = indices
        self.augment = augment

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = int(self.indices[item])
        return self.augment(self.pool.image(index), self.oracle.training_target(index))


class UnlabelledPixels(Dataset):
    """Pool images with pixels no label covers (train.semi): each image with the mask of its
    pixels that have a training target (an oracle's answer or a kept pseudo-label), which the
    unlabelled loss leaves alone. Read one by one as the trainer asks: nothing is held."""

    def __init__(self, pool: SegmentationDataset, oracle: Oracle, indices: np.ndarray) -> None:
        self.pool, self.oracle, self.indices = pool, oracle, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = int(self.indices[item])
        return self.pool.image(index), self.oracle.training_target(index) != IGNORE_INDEX
