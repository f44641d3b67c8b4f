"""Streaming scorer: one pass over the unlabelled pool, keeping only per-unit scores."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from alseg.data.base import SegmentationDataset
from alseg.pool import LabelState
from alseg.strategies.base import Strategy
from alseg.uncertainty import reduce_regions


class PoolImages(Dataset):
    """Images of the pool (no labels) with their global indices: all a scorer may see."""

    def __init__(self, pool: SegmentationDataset, indices: np.ndarray) -> None:
        self.pool = pool
        self.indices = indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, int]:
        index = int(self.indices[item])
        return self.pool.image(index), index


@torch.inference_mode()
def score_pool(
    network: nn.Module,
    pool: SegmentationDataset,
    state: LabelState,
    strategy: Strategy,
    batch_size: int,
    device: torch.device,
    progress: bool = True,
) -> np.ndarray:
    """Unit scores (images, regions) for the pool; labelled units score -inf.

    Probabilities of a batch are reduced to unit scores on the device and dropped, so memory
    holds one batch of probabilities and the (images, regions) score table, whatever the pool.
    """
    scores = np.full(state.labelled_at.shape, -np.inf, dtype=np.float32)
    candidates = state.unlabelled_images()
    if not strategy.needs_model:
        scores[candidates] = 0.0
    else:
        loader = DataLoader(PoolImages(pool, candidates), batch_size=batch_size)
        was_training = network.training
        network.eval()
        for images, indices in tqdm(loader, desc="scoring pool", disable=not progress, leave=False):
            probs = network(images.to(device)).float().softmax(dim=1)
            unit_scores = reduce_regions(strategy.pixel_scores(probs), state.boxes, strategy.reduction)
            scores[indices.numpy()] = unit_scores.cpu().numpy()
        network.train(was_training)
    scores[state.labelled] = -np.inf
    return scores
