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
from alseg.model.semi import MeanTeacher, SemiSupervision, unlabelled_loss
from alseg.settings import LR_SCHEDULES


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
        semi: SemiSupervision | None = None,
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
        self.semi = semi
        self.teacher = MeanTeacher(network) if semi is not None else None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """A batch of labelled images (and targets); with `semi`, a dict of that ("labelled")
        and of unlabelled images with the mask of their labelled pixels ("unlabelled")."""
        labelled = batch["labelled"] if isinstance(batch, dict) else batch
        images, targets = labelled
        loss = self.loss(self(images), targets)
        if isinstance(batch, dict):
            assert self.semi is not None and self.teacher is not None
            unlabelled, known = batch["unlabelled"]
            extra = unlabelled_loss(self.network, self.teacher, unlabelled, known, self.semi)
            self.log("train/unlabelled_loss", extra, on_step=True, on_epoch=True, batch_size=len(unlabelled))
            loss = loss + self.semi.weight * extra
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(images))
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.teacher is not None and self.semi is not None:
            self.teacher.follow(self.network, self.semi.ema_decay)

    def trained_parameters(self) -> list[nn.Parameter]:
        """Every parameter but the teacher's (which follows the student, untrained)."""
        return [p for name, p in self.named_parameters() if not name.startswith("teacher.")]

    def configure_optimizers(self) -> Any:
        if self.make_optimizer is not None:
            optimizer = self.make_optimizer(self.trained_parameters())
        else:
            parameters = self.trained_parameters()
            optimizer = torch.optim.AdamW(parameters, lr=self.lr, weight_decay=self.weight_decay)
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
