"""The Lightning callback that turns a fit into one active-learning cycle."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytorch_lightning as pl
from torch.utils.data import DataLoader

from alseg.acquisition.acquire import PHASES, acquire
from alseg.metrics import evaluate
from alseg.model.module import SegmentationModule
from alseg.strategies.context import AcquisitionContext


@dataclass
class CycleOutcome:
    """What a cycle measured: metrics per evaluation split, queried units and the seconds of
    each phase (train, evaluate; then auxiliary training of ensembles, VAE or cost model,
    pool scoring and selection, which together are the acquisition)."""

    metrics: dict[str, dict[str, Any]]
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    queried: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    query_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))  # the strategy's, per unit
    train_steps: int = 0

    @property
    def acquisition_seconds(self) -> float:
        return self.seconds["auxiliary"] + self.seconds["score"] + self.seconds["select"]


class ActiveLearningCallback(pl.Callback):
    """At the end of fit: evaluate on every evaluation split, then run the cycle's query on
    the trained network (`acquisition`; None in the last cycle). The outcome is kept in
    `self.outcome` for the experiment to record."""

    def __init__(
        self,
        eval_loaders: dict[str, DataLoader],
        num_classes: int,
        acquisition: AcquisitionContext | None,
        per_image_classes: dict[str, tuple[int, ...]] | None = None,
        auxiliary_seconds: float = 0.0,
    ) -> None:
        self.eval_loaders = eval_loaders
        self.per_image_classes = per_image_classes or {}
        self.num_classes = num_classes
        self.acquisition = acquisition
        self.auxiliary_seconds = auxiliary_seconds  # the ensemble, trained before the fit
        self.outcome: CycleOutcome | None = None
        self._fit_start = 0.0

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._fit_start = time.perf_counter()

    def on_fit_end(self, trainer: pl.Trainer, pl_module: SegmentationModule) -> None:  # type: ignore[override]
        self.outcome = outcome = CycleOutcome({})
        outcome.seconds["auxiliary"] = self.auxiliary_seconds
        start = time.perf_counter()
        outcome.seconds["train"] = start - self._fit_start
        # Inference in the Trainer's precision (autocast under bf16-mixed or 16-mixed).
        inference_precision = trainer.precision_plugin.forward_context
        with inference_precision():
            for split, loader in self.eval_loaders.items():
                per_image = self.per_image_classes.get(split, ())
                outcome.metrics[split] = evaluate(
                    pl_module, loader, self.num_classes, pl_module.device, per_image
                )
        outcome.seconds["evaluate"] = time.perf_counter() - start
        if self.acquisition is not None:
            self.acquisition.network, self.acquisition.device = pl_module.network, pl_module.device
            query = acquire(self.acquisition, outcome.seconds, inference_precision)
            outcome.queried, outcome.query_scores = query
