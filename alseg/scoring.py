"""Streaming scorer: one pass over the pool, keeping only per-unit statistics and descriptors."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from alseg.data.base import ImageSource
from alseg.distributed import gather_max, gather_rows, gather_schema, shard
from alseg.model import SmpNetwork, descriptors, encode, mc_dropout_chunks
from alseg.pool import LabelState
from alseg.strategies.base import PoolScores, Prediction, Strategy
from alseg.uncertainty import reduce_regions


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


def predict(
    network: SmpNetwork, images: torch.Tensor, strategy: Strategy, members: list[nn.Module]
) -> tuple[Iterator[Prediction], list[torch.Tensor]]:
    """The predictions a strategy asked for, over consecutive chunks of the batch (one chunk
    unless an MC committee is built in cache-sized chunks, each computed when it is reached),
    and the model's encoder features."""
    if strategy.mc_passes:
        chunks, features = mc_dropout_chunks(network, images, strategy.mc_passes, strategy.mc_mode)
        return _committee_predictions(images, chunks), features
    features, decoded = encode(network, images)
    if members:
        return iter([Prediction(images, None, torch.stack([m(images) for m in members]))]), features
    return iter([Prediction(images, network.segmentation_head(decoded))]), features


def _committee_predictions(images: torch.Tensor, chunks: Iterator[torch.Tensor]) -> Iterator[Prediction]:
    """One prediction per committee chunk (T, b, C, H, W), with its b images."""
    start = 0
    for committee in chunks:
        yield Prediction(images[start : start + committee.shape[1]], None, committee)
        start += committee.shape[1]


def pixel_statistics(strategy: Strategy, predictions: Iterable[Prediction]) -> dict[str, torch.Tensor]:
    """The strategy's per-pixel statistics (B, H, W) of a batch, computed chunk by chunk."""
    parts = [strategy.pixel_statistics(prediction) for prediction in predictions]
    return {name: torch.cat([part[name] for part in parts]) for name in parts[0]}


@torch.inference_mode()
def score_pool(
    network: SmpNetwork | None,
    pool: ImageSource,
    state: LabelState,
    strategy: Strategy,
    batch_size: int,
    device: torch.device,
    progress: bool = True,
    members: list[nn.Module] | None = None,
) -> PoolScores:
    """Per-unit statistics of the unlabelled pool (and descriptors of every image if asked).

    Each batch's probabilities are reduced to unit statistics on the device and dropped, so
    memory holds one batch of predictions plus the (images, regions) tables, whatever the pool.
    Under data parallelism each rank scores its shard and every rank gets all the tables.
    """
    available = ~state.labelled
    candidates = state.unlabelled_images()
    if not strategy.needs_model or network is None:
        return PoolScores({"score": np.where(available, 0.0, -np.inf)}, None, available)
    passed = shard(np.arange(state.num_images) if strategy.needs_descriptors else candidates)
    units: dict[str, np.ndarray] = {}
    features_out: list[torch.Tensor] = []
    was_training = network.training
    network.eval()
    for images, indices in pool_batches(pool, passed, batch_size, progress, "scoring pool"):
        predictions, features = predict(network, images.to(device), strategy, members or [])
        if strategy.needs_descriptors:
            features_out.append(descriptors(features).float().cpu())
        for name, pixels in pixel_statistics(strategy, predictions).items():
            table = units.setdefault(name, unscored(state))
            table[indices.numpy()] = (
                reduce_regions(pixels.float(), state.boxes, strategy.reduction).cpu().numpy()
            )
    network.train(was_training)
    names, width = gather_schema(sorted(units), features_out[0].shape[1] if features_out else 0)
    units = {name: gather_max(units.get(name, unscored(state))) for name in names}
    units.setdefault("score", np.zeros(state.labelled_at.shape, dtype=np.float32))
    for table in units.values():
        table[~available] = -np.inf
    found = None
    if strategy.needs_descriptors:
        mine = torch.cat(features_out) if features_out else torch.zeros((0, width))
        found = gather_rows(mine, passed, state.num_images)
    return PoolScores(units, found, available)


def unscored(state: LabelState) -> np.ndarray:
    """A unit table with nothing scored yet: -inf everywhere."""
    return np.full(state.labelled_at.shape, -np.inf, dtype=np.float32)
