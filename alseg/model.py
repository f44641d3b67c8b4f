"""The segmentation model: an smp network built by name, trained by a LightningModule."""

from __future__ import annotations

from collections.abc import Sequence

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
) -> nn.Module:
    """An smp network by name (Unet, FPN, DeepLabV3Plus, ...) that outputs logits (B, C, H, W).

    `encoder_weights` is None by default so nothing downloads; "imagenet" loads pretrained
    weights for users with a network.
    """
    kwargs: dict = {"encoder_depth": encoder_depth}
    if decoder_channels is not None:
        kwargs["decoder_channels"] = tuple(decoder_channels)
    try:
        return smp.create_model(
            arch,
            encoder_name=encoder_name,
            encoder_weights=encoder_weights,
            classes=num_classes,
            **kwargs,
        )
    except KeyError as error:
        raise AlsegError(f"model: {error.args[0]}") from None


class SegmentationModule(pl.LightningModule):
    """Trains a network with cross-entropy on labelled pixels; IGNORE_INDEX pixels add nothing."""

    def __init__(self, network: nn.Module, lr: float, weight_decay: float) -> None:
        super().__init__()
        self.network = network
        self.lr = lr
        self.weight_decay = weight_decay

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, targets = batch
        loss = nn.functional.cross_entropy(self(images), targets, ignore_index=IGNORE_INDEX)
        self.log("train/loss", loss, prog_bar=True, on_step=False, on_epoch=True, batch_size=len(images))
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
