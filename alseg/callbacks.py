"""The Lightning callback that turns a fit into one active-learning cycle."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytorch_lightning as pl
from torch import nn
from torch.utils.data import DataLoader

from alseg.distributed import is_main, share_state
from alseg.errors import AlsegError
from alseg.metrics import evaluate
from alseg.model import SegmentationModule
from alseg.pool import Oracle
from alseg.scoring import score_pool
from alseg.strategies.base import AcquisitionContext, Strategy


@dataclass
class Acquisition:
    """One cycle's query: what to spend, in which cost unit, with what randomness and helpers."""

    cycle: int  # the cycle whose training will first use the queried labels
    strategy: Strategy
    oracle: Oracle
    unit: str
    budget: float
    rng: np.random.Generator
    batch_size: int
    train_network: Callable[[np.ndarray, int], nn.Module]


PHASES = ("train", "evaluate", "auxiliary", "score", "select")


@dataclass
class CycleOutcome:
    """What a cycle measured: metrics per evaluation split, queried units and the seconds of
    each phase (train, evaluate; then auxiliary training of ensembles, VAE or cost model,
    pool scoring and selection, which together are the acquisition)."""

    metrics: dict[str, dict[str, Any]]
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    queried: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))

    @property
    def acquisition_seconds(self) -> float:
        return self.seconds["auxiliary"] + self.seconds["score"] + self.seconds["select"]


class PhaseTimer:
    """Adds the wall time since the last call to a named phase."""

    def __init__(self, seconds: dict[str, float], start: float) -> None:
        self.seconds = seconds
        self.last = start

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] += now - self.last
        self.last = now


class ActiveLearningCallback(pl.Callback):
    """At the end of fit: evaluate on every evaluation split, then query the next units.

    The query is skipped in the last cycle (`acquisition=None`). The outcome is kept in
    `self.outcome` for the experiment to record.
    """

    def __init__(
        self,
        eval_loaders: dict[str, DataLoader],
        num_classes: int,
        acquisition: Acquisition | None,
        progress: bool,
        per_image_classes: dict[str, tuple[int, ...]] | None = None,
    ) -> None:
        self.eval_loaders = eval_loaders
        self.per_image_classes = per_image_classes or {}
        self.num_classes = num_classes
        self.acquisition = acquisition
        self.progress = progress
        self.outcome: CycleOutcome | None = None
        self._fit_start = 0.0

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._fit_start = time.perf_counter()

    def on_fit_end(self, trainer: pl.Trainer, pl_module: SegmentationModule) -> None:  # type: ignore[override]
        self.outcome = outcome = CycleOutcome({})
        timer = PhaseTimer(outcome.seconds, start=self._fit_start)
        timer.lap("train")
        # Inference in the Trainer's precision (autocast under bf16-mixed or 16-mixed).
        inference_precision = trainer.precision_plugin.forward_context
        with inference_precision():
            for split, loader in self.eval_loaders.items():
                per_image = self.per_image_classes.get(split, ())
                outcome.metrics[split] = evaluate(
                    pl_module, loader, self.num_classes, pl_module.device, per_image
                )
        timer.lap("evaluate")
        if self.acquisition is not None:
            outcome.queried = self._acquire(pl_module, self.acquisition, timer, inference_precision)

    def _acquire(
        self,
        pl_module: SegmentationModule,
        acq: Acquisition,
        timer: PhaseTimer,
        inference_precision: Callable[[], AbstractContextManager],
    ) -> np.ndarray:
        oracle, strategy = acq.oracle, acq.strategy
        context = AcquisitionContext(
            cycle=acq.cycle,
            network=pl_module.network,
            pool=oracle.pool_images,
            state=oracle.state,
            device=pl_module.device,
            rng=acq.rng,
            wanted=oracle.units_affordable(acq.unit, acq.budget),
            batch_size=acq.batch_size,
            progress=self.progress,
            train_network=acq.train_network,
            revealed_clicks=oracle.revealed_clicks,
            true_clicks=oracle.true_clicks if strategy.reads_ground_truth else refuse_ground_truth(strategy),
        )
        strategy.prepare(context)
        members = [
            acq.train_network(bootstrap_resample(oracle.state.labelled_images(), acq.rng), member)
            for member in range(strategy.ensemble_size)
        ]
        timer.lap("auxiliary")
        with inference_precision():
            scores = score_pool(
                pl_module.network,
                context.pool,
                oracle.state,
                strategy,
                acq.batch_size,
                pl_module.device,
                self.progress,
                members,
            )
        timer.lap("score")
        queried = np.zeros((0, 2), dtype=np.int64)
        if is_main():  # under DDP rank 0 decides and hands its new state to every rank
            ranked = strategy.rank(scores, context)
            queried = oracle.reveal_within_budget(ranked, acq.unit, acq.budget, acq.cycle)
            strategy.after_query(context)
        queried = share_state(oracle.state, oracle.ledger, queried)
        timer.lap("select")
        return queried


def refuse_ground_truth(strategy: Strategy) -> Callable[[], np.ndarray]:
    """What a strategy that has not declared `reads_ground_truth` gets for `true_clicks`."""

    def refuse() -> np.ndarray:
        raise AlsegError(
            f"strategy {strategy.name!r} asked for the true click costs of unlabelled units; only an "
            "upper-bound ablation that declares reads_ground_truth = True may read them."
        )

    return refuse


def bootstrap_resample(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A bootstrap sample: as many images as given, drawn with replacement."""
    return rng.choice(images, size=len(images), replace=True)
