"""The cycle's one pass over the pool: per-unit statistics, image statistics, descriptors and
kept pseudo-labels, reduced on the device batch by batch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, cast

import numpy as np
import torch
from torch import nn

from alseg.distributed import gather_max, gather_objects, gather_rows, gather_schema, shard
from alseg.errors import AlsegError
from alseg.model.committee import has_dropout, mc_dropout_chunks
from alseg.model.networks import SmpNetwork, descriptors, encode, has_smp_layout
from alseg.regions.base import RegionMaps
from alseg.strategies.base import PoolScores, Prediction, Strategy

if TYPE_CHECKING:
    from alseg.strategies.context import AcquisitionContext


def predict(
    network: SmpNetwork | None,
    images: torch.Tensor,
    strategy: Strategy,
    members: list[nn.Module],
    mc_mode: str,
    indices: np.ndarray,
) -> tuple[Iterator[Prediction], list[torch.Tensor]]:
    """The predictions a strategy asked for, over consecutive chunks of the batch (one chunk
    unless an MC committee is built in cache-sized chunks, each computed when it is reached),
    and the model's encoder features (none without a model)."""
    if not strategy.needs_model or network is None:
        return iter([Prediction(images, None, indices=indices)]), []
    if strategy.mc_passes:
        chunks, features = mc_dropout_chunks(network, images, strategy.mc_passes, mc_mode)
        return _committee_predictions(images, indices, chunks), features
    if not has_smp_layout(network):  # a network of one's own: logits only (checked at build)
        if members:
            return iter([Prediction(images, None, torch.stack([m(images) for m in members]), indices)]), []
        return iter([Prediction(images, network(images), indices=indices)]), []
    features, decoded = encode(network, images)
    if members:
        committee = torch.stack([m(images) for m in members])
        return iter([Prediction(images, None, committee, indices)]), features
    return iter([Prediction(images, network.segmentation_head(decoded), indices=indices)]), features


def _committee_predictions(
    images: torch.Tensor, indices: np.ndarray, chunks: Iterator[torch.Tensor]
) -> Iterator[Prediction]:
    """One prediction per committee chunk (T, b, C, H, W), with its b images."""
    start = 0
    for committee in chunks:
        stop = start + committee.shape[1]
        yield Prediction(images[start:stop], None, committee, indices[start:stop])
        start = stop


def reduce_units(
    regions: RegionMaps, indices: np.ndarray, pixels: torch.Tensor, reduction: str
) -> np.ndarray:
    """Pixel statistics (B, H, W) of the images `indices` -> unit table rows (B, width).

    Images sharing one map (boxes) are reduced together; entries beyond an image's regions
    stay -inf."""
    out = np.full((len(indices), regions.width), -np.inf, dtype=np.float32)
    groups: dict[int, tuple] = {}
    for row, image in enumerate(indices.tolist()):
        region_map = regions[image]
        groups.setdefault(id(region_map), (region_map, []))[1].append(row)
    for region_map, rows in groups.values():
        reduced = region_map.reduce(pixels[torch.as_tensor(rows, device=pixels.device)], reduction)
        out[rows, : region_map.count] = reduced.cpu().numpy()
    return out


def unit_purity(regions: RegionMaps, indices: np.ndarray, labels: torch.Tensor, classes: int) -> np.ndarray:
    """Each unit's predicted purity (B, width): the share of its pixels predicted as its most
    frequent predicted class, from predicted label maps (B, H, W)."""
    shares = [reduce_units(regions, indices, (labels == c).float(), "mean") for c in range(classes)]
    return np.max(shares, axis=0)


@torch.inference_mode()
def score_pool(context: AcquisitionContext) -> PoolScores:
    """Per-unit statistics of the unlabelled pool (and descriptors of every image if asked).

    Each batch's probabilities are reduced to unit statistics on the device and dropped, so
    memory holds one batch of predictions plus the (images, regions) tables, whatever the pool.
    Under data parallelism each rank scores its shard and every rank gets all the tables.
    """
    strategy, state, network = cast(Strategy, context.strategy), context.state, context.network
    available = state.available
    if not strategy.needs_pass:
        return PoolScores({"score": np.where(available, 0.0, -np.inf)}, None, available)
    everything = strategy.needs_descriptors
    passed = shard(np.arange(state.num_images) if everything else state.unlabelled_images())
    units: dict[str, np.ndarray] = {}
    features_out: list[torch.Tensor] = []
    pseudo: dict[int, np.ndarray] = {}
    was_training = network.training if network is not None else False
    if network is not None:
        network.eval()
    shaping = strategy.shaping
    class_weights = context.labelled_class_weights() if shaping.class_balance else None
    for images, indices in context.batches(passed, "scoring pool"):
        predictions, features = predict(network, images, strategy, context.members, context.mc_mode, indices)
        if strategy.needs_descriptors:
            features_out.append(descriptors(features).float().cpu())
        chunks = list(predictions)
        statistics, per_image, kept = _batch_statistics(strategy, chunks, context.cycle, class_weights)
        for name, pixels in statistics.items():
            table = units.setdefault(name, unscored(state.labelled_at.shape))
            table[indices] = reduce_units(context.regions, indices, pixels.float(), strategy.reduction)
        if shaping.purity:
            labels = torch.cat([chunk.probs.argmax(dim=1) for chunk in chunks])
            table = units.setdefault("purity", unscored(state.labelled_at.shape))
            table[indices] = unit_purity(context.regions, indices, labels, chunks[0].probs.shape[1])
        for name, values in per_image.items():
            table = units.setdefault(name, unscored(state.labelled_at.shape))
            table[indices] = values.float().cpu().numpy()[:, None]
        if kept is not None:
            labels, keep = kept
            for row in np.flatnonzero(keep.cpu().numpy()).tolist():
                pseudo[int(indices[row])] = labels[row].cpu().numpy()
    if network is not None:
        network.train(was_training)
    names, width = gather_schema(sorted(units), features_out[0].shape[1] if features_out else 0)
    units = {name: gather_max(units.get(name, unscored(state.labelled_at.shape))) for name in names}
    units.setdefault("score", np.zeros(state.labelled_at.shape, dtype=np.float32))
    if shaping.purity:
        units["score"] = units["score"] * units["purity"]
    for table in units.values():
        table[~available] = -np.inf
    found = None
    if strategy.needs_descriptors:
        mine = torch.cat(features_out) if features_out else torch.zeros((0, width))
        found = gather_rows(mine, passed, state.num_images)
    return PoolScores(units, found, available, gather_objects(pseudo))


def _batch_statistics(
    strategy: Strategy, predictions: list[Prediction], cycle: int, class_weights: torch.Tensor | None
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], tuple[torch.Tensor, torch.Tensor] | None]:
    """The strategy's pixel statistics (B, H, W), image statistics (B,) and kept pseudo-labels
    of a batch, computed chunk by chunk; the pixel "score" weighted by `class_weights` of each
    pixel's predicted class when the strategy balances classes."""
    pixel_parts = [strategy.pixel_statistics(prediction) for prediction in predictions]
    for part, prediction in zip(pixel_parts, predictions, strict=True):
        if "score" in part and class_weights is not None:
            predicted = prediction.probs.argmax(dim=1)
            part["score"] = strategy.shaping.weighted(part["score"], predicted, class_weights)
    image_parts = [strategy.image_statistics(prediction) for prediction in predictions]
    label_parts = [strategy.pseudo_labels(prediction, cycle) for prediction in predictions]
    pixels = {name: torch.cat([part[name] for part in pixel_parts]) for name in pixel_parts[0]}
    per_image = {name: torch.cat([part[name] for part in image_parts]) for name in image_parts[0]}
    kept = None
    if label_parts[0] is not None:
        kept = (torch.cat([p[0] for p in label_parts]), torch.cat([p[1] for p in label_parts]))  # type: ignore[index]
    return pixels, per_image, kept


def unscored(shape: tuple[int, ...]) -> np.ndarray:
    """A unit table with nothing scored yet: -inf everywhere."""
    return np.full(shape, -np.inf, dtype=np.float32)


def check_compatible(strategy: Strategy, regions: RegionMaps, network: nn.Module, mc_mode: str) -> None:
    """Refuse, before anything trains, a strategy that cannot work with the chosen regions or
    network, in one line saying what to change."""
    if strategy.queries == "images" and not regions.whole_images:
        raise AlsegError(
            f"strategy {strategy.name!r} queries whole images; run it with regions=image, not {regions.kind}."
        )
    if strategy.queries == "regions" and regions.whole_images:
        raise AlsegError(
            f"strategy {strategy.name!r} queries regions: run it with regions=windows, grid or superpixels."
        )
    layout = has_smp_layout(network)
    if (strategy.needs_descriptors or (strategy.mc_passes and mc_mode == "head")) and not layout:
        what = "descriptors" if strategy.needs_descriptors else "an MC committee of the head"
        raise AlsegError(
            f"strategy {strategy.name!r} needs {what}: the network must have encoder, decoder and "
            "segmentation_head sub-modules (every smp model and model=fcn8s do)."
        )
    if strategy.mc_passes:
        part = network.get_submodule("segmentation_head") if mc_mode == "head" else network
        if not has_dropout(part):
            where = "before the segmentation head" if mc_mode == "head" else "in the network"
            raise AlsegError(
                f"strategy {strategy.name!r} needs MC dropout but there is no dropout {where}: set "
                "model.network.head_dropout > 0 (e.g. 0.2)."
            )
