"""How each cycle's network is built and trained: the model, train and trainer configs, the
pool with the oracle's training targets (and its unlabelled pixels with `train.semi`), and a
fresh Lightning Trainer per fit whose steps follow the labelled pixels."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from pytorch_lightning.utilities import CombinedLoader
from torch import nn
from torch.utils.data import DataLoader, RandomSampler

from alseg.data.augment import Augmentation
from alseg.data.base import SegmentationDataset
from alseg.labels.oracle import Oracle
from alseg.labels.state import LabelState
from alseg.labels.training_set import LabelledImages, UnlabelledPixels
from alseg.model.module import SegmentationModule
from alseg.model.semi import SemiSupervision
from alseg.settings import build


def cycle_seed(seed: int, cycle: int, member: int = 0) -> int:
    """The seed of one cycle's training (member 0) or of an ensemble member's, from the run's seed."""
    return int(np.random.SeedSequence([seed, cycle, member]).generate_state(1)[0] % 2**31)


def semi_supervision(node: DictConfig | None) -> SemiSupervision | None:
    """The `train.semi` options, or None for labelled pixels only."""
    if node is None or node.name == "none":
        return None
    return SemiSupervision(**{str(key): value for key, value in node.items() if key != "name"})


class CycleTraining:
    """Builds and trains the networks of a run's cycles from its config (`model`, `train`,
    `trainer`); `checkpoint(cycle)` is where a cycle's weights were saved; logs go to `root`."""

    def __init__(
        self,
        cfg: DictConfig,
        pool: SegmentationDataset,
        num_classes: int,
        oracle: Oracle,
        state: LabelState,
        augment: Augmentation,
        root: Path,
        checkpoint: Callable[[int], Path],
        seed: int,
        progress: bool,
    ) -> None:
        self.cfg, self.pool, self.num_classes = cfg, pool, num_classes
        self.oracle, self.state, self.augment = oracle, state, augment
        self.root, self.checkpoint, self.seed, self.progress = root, checkpoint, seed, progress

    def fit(self, module: SegmentationModule, images: np.ndarray, callbacks: list, name: str) -> int:
        """Train `module` on the given training images (repeats allowed) with a fresh Trainer;
        the number of optimizer steps."""
        train_cfg = self.cfg.train
        loader = DataLoader(
            LabelledImages(self.pool, self.oracle, images, self.augment),
            batch_size=train_cfg.batch_size,
            shuffle=True,
            drop_last=len(images) > train_cfg.batch_size
            and len(images) % train_cfg.batch_size == 1,  # batch norm
            num_workers=train_cfg.num_workers,
            persistent_workers=train_cfg.num_workers > 0,
        )
        # An epoch is one pass over the labelled pixels: with region labels, fewer batches
        # than the partly labelled images fill, so equal budgets train equally long.
        shares = self.state.label_shares(images)
        batches = math.ceil(len(loader) * shares.sum() / len(images))
        epochs = max(int(train_cfg.epochs), math.ceil(train_cfg.min_steps / batches))
        loaders: Any = loader
        unlabelled_images = self.state.unlabelled_images()
        if module.semi is not None and len(unlabelled_images):  # as many batches as the labelled
            pool = UnlabelledPixels(self.pool, self.oracle, unlabelled_images)
            size = module.semi.ratio * train_cfg.batch_size
            draws = RandomSampler(pool, replacement=True, num_samples=len(loader) * size)
            unlabelled = DataLoader(pool, batch_size=size, sampler=draws)
            loaders = CombinedLoader({"labelled": loader, "unlabelled": unlabelled}, mode="min_size")
        trainer: pl.Trainer = build(
            self.cfg.trainer,
            max_steps=epochs * batches,
            max_epochs=-1,
            callbacks=callbacks,
            logger=pl.loggers.CSVLogger(self.root, name="train", version=name),
            enable_progress_bar=self.progress,
            default_root_dir=str(self.root),
        )
        trainer.fit(module, loaders)
        return int(trainer.global_step)

    def train_member(self, images: np.ndarray, cycle: int, member: int) -> nn.Module:
        """A fresh network trained on `images` (a member of the strategy's bootstrap ensemble,
        trained before the cycle's own fit), in eval mode."""
        pl.seed_everything(cycle_seed(self.seed, cycle, member), workers=True, verbose=False)
        module = self.build_module(cycle, fresh=True)
        self.fit(module, images, [], f"cycle_{cycle:03d}_member_{member}")
        return module.network.eval()

    def build_module(self, cycle: int, fresh: bool = False) -> SegmentationModule:
        """The cycle's network (continued from the last cycle's weights unless `train.reinit`
        or `fresh`) in its LightningModule; an ensemble member (`fresh`) learns from labels only."""
        network = build(self.cfg.model.network, num_classes=self.num_classes)
        if self.cfg.model.get("channels_last", False):
            network = network.to(memory_format=torch.channels_last)
        if cycle > 0 and not fresh and not self.cfg.train.reinit:
            network.load_state_dict(torch.load(self.checkpoint(cycle - 1), weights_only=True))
        train = self.cfg.train
        return SegmentationModule(
            network,
            train.lr,
            train.weight_decay,
            train.lr_schedule,
            optimizer=build(train.optimizer) if train.get("optimizer") else None,
            loss=build(train.loss) if train.get("loss") else None,
            scheduler=build(train.scheduler) if train.get("scheduler") else None,
            scheduler_interval=train.get("scheduler_interval", "step"),
            semi=None if fresh else semi_supervision(train.get("semi")),
        )


class TrainingLoss(pl.Callback):
    """Sends each optimizer step's training loss to the run's logger, steps counted over all
    cycles (`offset` steps came before this cycle)."""

    def __init__(self, logger: Any, cycle: int, offset: int) -> None:
        self.logger, self.cycle, self.offset = logger, cycle, offset

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.logger.log_training_loss(float(loss), self.offset + trainer.global_step, self.cycle)
