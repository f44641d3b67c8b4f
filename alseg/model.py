"""The segmentation model: an smp network built by name, trained by a LightningModule."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytorch_lightning as pl
import segmentation_models_pytorch as smp
import torch
from torch import nn

from alseg.data.base import IGNORE_INDEX
from alseg.errors import AlsegError


def build_network(
    arch: str,
    encoder_name: str,
    num_classes: int,
    encoder_weights: str | None = None,
    encoder_depth: int = 5,
    decoder_channels: Sequence[int] | None = None,
    head_dropout: float = 0.0,
) -> nn.Module:
    """An smp network by name (Unet, FPN, DeepLabV3Plus, ...) that outputs logits (B, C, H, W).

    `encoder_weights` is None by default so nothing downloads; "imagenet" loads pretrained
    weights for users with a network. `head_dropout` > 0 puts dropout before the segmentation
    head: MC dropout then needs the encoder and decoder only once per image.
    """
    kwargs: dict = {"encoder_depth": encoder_depth}
    if decoder_channels is not None:
        kwargs["decoder_channels"] = tuple(decoder_channels)
    try:
        network = smp.create_model(
            arch,
            encoder_name=encoder_name,
            encoder_weights=encoder_weights,
            classes=num_classes,
            **kwargs,
        )
    except KeyError as error:
        raise AlsegError(f"model: {error.args[0]}") from None
    if head_dropout > 0:
        network.segmentation_head = nn.Sequential(nn.Dropout(head_dropout), network.segmentation_head)
    return network


DROPOUT_TYPES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)


@contextmanager
def dropout_active(module: nn.Module) -> Iterator[None]:
    """Put the dropout layers of `module` in training mode (all else as it was), then restore."""
    layers = [m for m in module.modules() if isinstance(m, DROPOUT_TYPES)]
    modes = [m.training for m in layers]
    for layer in layers:
        layer.train()
    try:
        yield
    finally:
        for layer, mode in zip(layers, modes, strict=True):
            layer.train(mode)


def has_dropout(module: nn.Module) -> bool:
    return any(isinstance(m, DROPOUT_TYPES) for m in module.modules())


SmpNetwork = Any
"""An smp segmentation model: `encoder`, `decoder` and `segmentation_head` sub-modules."""


def encode(network: SmpNetwork, images: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Encoder features (shallow to deep) and the decoder output of an smp network."""
    features = network.encoder(images)
    return features, network.decoder(features)


def descriptors(features: list[torch.Tensor]) -> torch.Tensor:
    """Image descriptors (B, D): the deepest encoder features, globally average-pooled."""
    return features[-1].mean(dim=(2, 3))


def mc_dropout_committee(
    network: SmpNetwork, images: torch.Tensor, passes: int, mode: str
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Probabilities (T, B, C, H, W) of `passes` stochastic passes with dropout active.

    mode "head" runs encoder and decoder once and only the segmentation head T times (exact
    when all dropout sits in the head); "full" runs the whole network T times. Also returns
    the encoder features of a deterministic pass.
    """
    if mode not in ("head", "full"):
        raise AlsegError(f"strategy.mc_mode must be 'head' or 'full' (got {mode!r}).")
    if not has_dropout(network.segmentation_head if mode == "head" else network):
        raise AlsegError("MC dropout needs dropout layers: set model.network.head_dropout > 0 (e.g. 0.2).")
    features, decoded = encode(network, images)
    if mode == "head":
        with dropout_active(network.segmentation_head):
            members = [network.segmentation_head(decoded) for _ in range(passes)]
    else:
        with dropout_active(network):
            members = [network(images) for _ in range(passes)]
    return torch.stack(members).float().softmax(dim=2), features


LR_SCHEDULES = ("cosine", "constant")


class SegmentationModule(pl.LightningModule):
    """Trains a network with cross-entropy on labelled pixels; IGNORE_INDEX pixels add nothing."""

    def __init__(
        self, network: nn.Module, lr: float, weight_decay: float, schedule: str = "constant"
    ) -> None:
        super().__init__()
        if schedule not in LR_SCHEDULES:
            raise AlsegError(f"train.lr_schedule must be one of {list(LR_SCHEDULES)} (got {schedule!r}).")
        self.network: SmpNetwork = network
        self.lr = lr
        self.weight_decay = weight_decay
        self.schedule = schedule

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, targets = batch
        loss = nn.functional.cross_entropy(self(images), targets, ignore_index=IGNORE_INDEX)
        self.log("train/loss", loss, prog_bar=True, on_step=False, on_epoch=True, batch_size=len(images))
        return loss

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        if self.schedule == "constant":
            return optimizer
        # Cosine decay to zero over the cycle's steps.
        steps = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
