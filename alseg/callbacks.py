"""The Lightning callback that turns a fit into one active-learning cycle."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytorch_lightning as pl
from torch.utils.data import DataLoader

from alseg.data.base import SegmentationDataset
from alseg.metrics import evaluate
from alseg.pool import Oracle
from alseg.scoring import score_pool
from alseg.strategies.base import Strategy


@dataclass
class Acquisition:
    """One cycle's query: how much to spend, in which cost unit, and with what randomness."""

    cycle: int
    strategy: Strategy
    pool: SegmentationDataset
    oracle: Oracle
    unit: str
    budget: float
    rng: np.random.Generator
    batch_size: int


@dataclass
class CycleOutcome:
    """What a cycle measured: metrics per evaluation split, queried units and seconds."""

    metrics: dict[str, dict[str, Any]]
    train_seconds: float
    acquisition_seconds: float = 0.0
    queried: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))


class ActiveLearningCallback(pl.Callback):
    """At the end of fit: evaluate on every evaluation split, then query the next batch.

    The query is skipped in the last cycle (`acquisition=None`). The outcome is kept in
    `self.outcome` for the experiment to record.
    """

    def __init__(
        self,
        eval_loaders: dict[str, DataLoader],
        num_classes: int,
        acquisition: Acquisition | None,
        progress: bool,
    ) -> None:
        self.eval_loaders = eval_loaders
        self.num_classes = num_classes
        self.acquisition = acquisition
        self.progress = progress
        self.outcome: CycleOutcome | None = None
        self._fit_start = 0.0

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._fit_start = time.perf_counter()

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        train_seconds = time.perf_counter() - self._fit_start
        metrics = {
            split: evaluate(pl_module, loader, self.num_classes, pl_module.device)
            for split, loader in self.eval_loaders.items()
        }
        self.outcome = CycleOutcome(metrics, train_seconds)
        if self.acquisition is not None:
            start = time.perf_counter()
            self.outcome.queried = self._acquire(pl_module, self.acquisition)
            self.outcome.acquisition_seconds = time.perf_counter() - start

    def _acquire(self, pl_module: pl.LightningModule, acq: Acquisition) -> np.ndarray:
        scores = score_pool(
            pl_module,
            acq.pool,
            acq.oracle.state,
            acq.strategy,
            acq.batch_size,
            pl_module.device,
            self.progress,
        )
        ranked = acq.strategy.rank(scores, acq.rng)
        return acq.oracle.reveal_within_budget(ranked, acq.unit, acq.budget, acq.cycle)
