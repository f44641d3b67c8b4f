"""The LightningModule that trains a network on the labelled pixels of a cycle."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from alseg.errors import AlsegError
from alseg.model.losses import PartialLabelCrossEntropy
from alseg.model.networks import SmpNetwork

LR_SCHEDULES = ("cosine", "constant")


class SegmentationModule(pl.LightningModule):
    """Trains a network on labelled pixels; IGNORE_INDEX pixels add nothing.

    `optimizer` builds the optimizer from the parameters and `loss` scores logits (B, C, H, W)
    against targets (B, H, W) (Hydra `_partial_` configs: `train.optimizer`, `train.loss`).
    `scheduler` builds a learning-rate scheduler from the optimizer, stepped every
    `scheduler_interval` ("step" or "epoch"); without one, `schedule` "constant" keeps the
    rate and "cosine" decays it to zero over the cycle's steps.
    """

    def __init__(
        self,
        network: nn.Module,
        lr: float,
        weight_decay: float,
        schedule: str = "constant",
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
        scheduler_interval: str = "step",
    ) -> None:
        super().__init__()
        if schedule not in LR_SCHEDULES:
            raise AlsegError(f"train.lr_schedule must be one of {list(LR_SCHEDULES)} (got {schedule!r}).")
        if scheduler_interval not in ("step", "epoch"):
            raise AlsegError(f"train.scheduler_interval must be step or epoch (got {scheduler_interval!r}).")
        self.network: SmpNetwork = network
        self.lr = lr
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.make_optimizer = optimizer
        self.loss = loss or PartialLabelCrossEntropy()
        self.make_scheduler = scheduler
        self.scheduler_interval = scheduler_interval

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, targets = batch
        loss = self.loss(self(images), targets)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(images))
        return loss

    def configure_optimizers(self) -> Any:
        if self.make_optimizer is not None:
            optimizer = self.make_optimizer(self.parameters())
        else:
            optimizer = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        if self.make_scheduler is not None:
            scheduler = self.make_scheduler(optimizer)
            return {
                "optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval},
            }
        if self.schedule == "constant":
            return optimizer
        # Cosine decay to zero over the cycle's steps.
        steps = max(1, int(self.trainer.estimated_stepping_batches))
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": cosine, "interval": "step"}}
