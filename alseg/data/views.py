"""Views of a pool for inference: its images with their global indices, never its labels."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from alseg.data.base import ImageSource, SegmentationDataset


class PoolImages(Dataset):
    """Images of the pool (no labels) with their global indices: all a scorer may see."""

    def __init__(self, pool: ImageSource, indices: np.ndarray) -> None:
        self.pool = pool
        self.indices = indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, int]:
        index = int(self.indices[item])
        return self.pool.image(index), index


def pool_batches(pool: ImageSource, indices: np.ndarray, batch_size: int, progress: bool, desc: str) -> tqdm:
    """Batches (images, global indices) of the chosen pool images, with a progress bar."""
    loader = DataLoader(PoolImages(pool, indices), batch_size=batch_size)
    return tqdm(loader, desc=desc, disable=not progress, leave=False)


class EvaluationImages(Dataset):
    """A fully labelled evaluation split (val or test), with its instances when it has them."""

    def __init__(self, split: SegmentationDataset) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        item = self.split.image(index), self.split.target(index)
        if hasattr(self.split, "instances"):  # ground-truth objects for the object-level F1
            return *item, torch.from_numpy(self.split.instances(index))
        return item
