"""One active-learning experiment: build everything from the config, then run the cycles.

Cycle c trains on the labels bought so far, evaluates, and (unless it is the last) queries
the next units. Every cycle draws its randomness from (seed, cycle) alone, so a resumed run
repeats exactly what an uninterrupted one does.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from alseg.acquisition.acquire import bootstrap_resample
from alseg.acquisition.budget import Budget, initial_images
from alseg.acquisition.callback import ActiveLearningCallback, CycleOutcome
from alseg.acquisition.scoring import check_compatible
from alseg.atomic import atomic_write_text
from alseg.data.augment import Augmentation
from alseg.data.base import DataSplits
from alseg.data.views import EvaluationImages
from alseg.distributed import barrier, is_main, process_rank
from alseg.errors import AlsegError
from alseg.labels.human import (
    ANSWERS,
    PENDING,
    QUERIES,
    HumanOracle,
    apply_answers,
    checked_answers,
    pending_cycle,
    query_dir,
    read_label_studio,
    read_mask_folder,
    write_query,
)
from alseg.labels.label_studio import LabelStudioOracle
from alseg.labels.ledger import COST_UNITS, CostLedger
from alseg.labels.oracle import Oracle
from alseg.labels.state import LabelState
from alseg.model.module import SegmentationModule
from alseg.model.networks import check_network
from alseg.model.training import CycleTraining, TrainingLoss, cycle_seed
from alseg.regions.base import Regions
from alseg.results.run_dir import Row, RunDirectory, flatten_config, format_table
from alseg.results.runs import changed_keys
from alseg.settings import apply_full_supervision, build, check_settings, public_config, public_overrides
from alseg.strategies.base import Strategy
from alseg.strategies.context import AcquisitionContext
from alseg.strategies.shaping import SHAPING_KEYS, ScoreShaping

log = logging.getLogger("alseg")

SUMMARY_COLUMNS = ["cycle", "cost_images", "cost_clicks", "labelled_fraction"]
SUMMARY_METRICS = ["miou", "dice"]
RESUMABLE_CHANGES = {"oracle"}
"""Config keys a run may change when resumed: who answers the next queries."""


def build_strategy(node: DictConfig) -> Strategy:
    """The configured strategy; its score-shaping keys, where its config has them, are handed
    to it as one ScoreShaping."""
    shaping = {key: node[key] for key in SHAPING_KEYS if key in node}
    if not shaping:
        return build(node)
    rest = OmegaConf.create({key: value for key, value in node.items() if key not in SHAPING_KEYS})
    return build(rest, _partial_=True)(shaping=ScoreShaping(**shaping))  # a dataclass, not a config


class Experiment:
    """Builds the objects of one run from its config and runs its cycles in `root`."""

    def __init__(self, cfg: DictConfig, root: Path, overrides: list[str] | None = None) -> None:
        apply_full_supervision(cfg)
        check_settings(cfg)
        self.cfg = cfg
        self.overrides = overrides or []
        # Carriage-return progress bars flood piped logs: only on a terminal.
        self.progress = bool(cfg.progress) and sys.stderr.isatty()
        self.seed = int(cfg.seed)
        self.run_dir = RunDirectory(root)
        self.strategy: Strategy = build_strategy(cfg.strategy)
        self.data: DataSplits = build(cfg.dataset.splits)
        budget = OmegaConf.to_container(cfg.budget, resolve=True)
        self.budget = Budget.from_config(budget, len(self.data.train))  # type: ignore[arg-type]
        self.budget.check_pool(len(self.data.train), int(np.prod(self.data.train.image_size)))
        self.augment = Augmentation(**cfg.dataset.get("augment", {}))
        kind: Regions = build(cfg.regions)
        self.regions = kind.maps(self.data.train)
        network = build(cfg.model.network, num_classes=self.data.num_classes)
        check_network(network, self.data.num_classes, self.data.train.image_size)
        check_compatible(self.strategy, self.regions, network, str(cfg.scoring.mc_mode))
        self.state = LabelState(self.regions, self.data.train.image_size)
        self.ledger = CostLedger()
        oracle_kind: type[Oracle] = get_class(str(cfg.oracle._target_))
        loss_target = str(cfg.train.get("loss", {}).get("_target_", ""))
        if self.budget.annotation == "classes" and loss_target == "torch.nn.CrossEntropyLoss":
            raise AlsegError(
                "budget.annotation=classes gives class-set labels, which torch.nn.CrossEntropyLoss cannot "
                "learn: use train.loss._target_=alseg.model.losses.PartialLabelCrossEntropy (the default)"
            )
        self.without_masks = self.data.train.unlabelled() if hasattr(self.data.train, "unlabelled") else None
        people = issubclass(oracle_kind, HumanOracle)
        if self.without_masks is not None and len(self.without_masks) and not people:
            raise AlsegError(
                f"{len(self.without_masks)} pool images have no mask (dataset.unlabelled); only people can "
                "label them: run with oracle=human"
            )
        self.oracle: Oracle
        if oracle_kind is Oracle and (Path(root) / ANSWERS).is_dir():
            # people answered earlier cycles: their answers train, the dataset answers new queries
            self.oracle = HumanOracle(self.data.train, self.state, self.ledger, Path(root), asks_people=False)
        else:
            self.oracle = oracle_kind.for_run(
                self.data.train, self.state, self.ledger, Path(root), self.budget.unit,
                self.budget.annotation, self.budget.dominant_share,
                **{key: value for key, value in cfg.oracle.items() if key not in ("_target_", "name")},
            )  # fmt: skip
        self.human = isinstance(self.oracle, HumanOracle) and self.oracle.asks_people
        self.clicks_counted_at = self.oracle.clicks_counted_at()
        self.training = CycleTraining(
            cfg, self.data.train, self.data.num_classes, self.oracle, self.state, self.augment,
            self.run_dir.root, self.run_dir.checkpoint, self.seed, self.progress,
        )  # fmt: skip
        self._rows: list[Row] = []
        self.eval_loaders = {
            split: DataLoader(EvaluationImages(getattr(self.data, split)), batch_size=cfg.scoring.batch_size)
            for split in cfg.evaluate_on
        }

    def run(self) -> list[Row]:
        """Run (or resume) every cycle; return the cycle rows. A finished run is left as it is."""
        self._check_config_matches_saved()
        if is_main():
            self.run_dir.discard_damaged_cycles()
        barrier()
        finished = self.run_dir.finished_rows()
        if finished is not None:
            log.info(
                "%s is finished (%d cycles); its results are in %s",
                self.run_dir.root,
                len(finished),
                self.run_dir.root / "cycles.csv",
            )
            return finished
        # Rank 0 writes alseg.log; a DDP child its own alseg.rank<N>.log.
        name = "alseg.log" if is_main() else f"alseg.rank{process_rank()}.log"
        log_file = logging.FileHandler(self.run_dir.root / name)
        log_file.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
        logging.getLogger().addHandler(log_file)
        if log.getEffectiveLevel() > logging.INFO:  # from Python, with logging unconfigured
            log.setLevel(logging.INFO)  # alseg.log holds the cycle lines however the run starts
        try:
            return self._run_logged()
        finally:
            logging.getLogger().removeHandler(log_file)
            log_file.close()

    def _run_logged(self) -> list[Row]:
        self._log_start()
        self.logger = build(self.cfg.logger, save_dir=str(self.run_dir.root))
        self.logger.log_hyperparams(OmegaConf.to_container(public_config(self.cfg)))
        status = "failed"
        try:
            rows = self._run_cycles()
            status = "success"
        finally:
            # Close the logger's run even on failure: a sweep runs its jobs in one process.
            self.logger.finalize(status)
        log.info("cycles of %s:\n%s", self.run_dir.root, format_table(rows, self.summary_columns()))
        return rows

    def _log_start(self) -> None:
        """What the run is, before it starts: where it writes, the data, the strategy, the budget."""
        budget, data = self.budget, self.data
        cycles = "until budget.total is spent" if budget.cycles is None else f"{budget.cycles} acquisitions"
        log.info("run directory: %s", self.run_dir.root)
        log.info(
            "data: %s, pool %d / val %d / test %d images at %dx%d; clicks counted at %s",
            self.cfg.dataset.name,
            len(data.train),
            len(data.val),
            len(data.test),
            *data.train.image_size,
            self.clicks_counted_at,
        )
        if data.val_is_test:
            log.warning(
                "%s's test labels are not public: its val split is also the test split, so val and test "
                "numbers are the same images' (no held-out test); compare protocols on them with care",
                self.cfg.dataset.name,
            )
        counts = self.regions.counts
        per_image = f"{counts[0]}" if counts.min() == counts.max() else f"{counts.mean():.0f} on average"
        log.info(
            "strategy %s, regions %s (%s per image); budget: %s initial images, %g %s per cycle, %s",
            self.strategy.name,
            self.regions.kind,
            per_image,
            budget.initial,
            budget.per_cycle,
            budget.unit,
            cycles,
        )

    def summary_columns(self) -> list[str]:
        """Columns of the table logged at the end: costs, then each split's main metrics."""
        metrics = [f"{split}_{name}" for split in self.cfg.evaluate_on for name in SUMMARY_METRICS]
        return SUMMARY_COLUMNS + metrics

    def _run_cycles(self) -> list[Row]:
        if is_main():
            self.run_dir.remove_stale_temporaries()
        completed = self.run_dir.last_completed_cycle()
        if completed >= 0:
            rows = self.run_dir.restore(completed, self.state, self.ledger)
            log.info("resuming %s after cycle %d", self.run_dir.root, completed)
            # The logger starts afresh (a CSV file) or resumes (W&B): give it every cycle again.
            for row in rows:
                self.logger.log_metrics(_numeric(row), step=int(row["cycle"]))
        else:
            rows = []
            images = initial_images(len(self.data.train), self.budget.initial, self.seed, self.without_masks)
            self.oracle.reveal_images(images, cycle=0)
            self.budget.check_fits(self.ledger, self.oracle.remaining_capacity(self.budget.unit))
        self._rows = rows  # the cycles so far (TrainingLoss counts their steps)
        cycle = completed + 1
        pending = pending_cycle(self.run_dir.root)
        if pending is not None and not self._answered_in_label_studio(pending):
            self._awaiting_answers()
            return rows
        while True:
            acquire = self.budget.should_acquire(cycle, self.ledger)
            trained_on = {f"cost_{unit}": self.ledger.spent[unit] for unit in COST_UNITS}
            trained_on["labelled_fraction"] = self.state.labelled_fraction()
            trained_on["wrong_label_share"] = self.oracle.wrong_label_share()
            outcome, module = self._run_cycle(cycle, acquire)
            rows.append(self._row(cycle, trained_on, outcome))
            if is_main():
                self.run_dir.save_cycle(
                    cycle,
                    rows,
                    self.state,
                    self.ledger,
                    module.network.state_dict(),
                    bool(self.cfg.keep_checkpoints),
                )
            barrier()
            self.logger.log_metrics(_numeric(rows[-1]), step=cycle)
            self.logger.save()
            log.info("%s%s", self._cycle_of(cycle), _summary_line(rows[-1]))
            if not acquire or len(outcome.queried) == 0:
                break
            if self.human:
                self._write_query(cycle + 1, outcome.queried, outcome.query_scores, module)
                if not self._answered_in_label_studio(cycle + 1):
                    self._awaiting_answers()
                    break
            cycle += 1
        return rows

    def _write_query(
        self, cycle: int, units: np.ndarray, scores: np.ndarray, module: SegmentationModule
    ) -> None:
        """The human oracle's batch: images, regions, the model's predictions and the strategy's
        scores (the order people label in), to label."""
        assert isinstance(self.oracle, HumanOracle)
        self.oracle.pending.clear()
        images = [self.data.train.image(int(image)) for image in units[:, 0]]
        network = module.network.eval()
        with torch.no_grad():
            predictions = [
                network(image[None].to(module.device)).argmax(dim=1)[0].cpu().numpy() for image in images
            ]
        pairs = [(int(i), int(r)) for i, r in units.tolist()]
        if is_main():
            write_query(
                self.run_dir.root,
                cycle,
                pairs,
                self.data.train,
                predictions,
                self.state,
                self.data.class_names,
                scores,
            )

    def _answered_in_label_studio(self, cycle: int) -> bool:
        """With oracle=label_studio: import the pending query, wait for its labels and apply
        them (True); with any other oracle, nothing (False)."""
        if not isinstance(self.oracle, LabelStudioOracle) or not is_main():
            return False
        ids = self.oracle.submit(cycle)
        self.oracle.wait(cycle, ids)
        export = self.oracle.fetch(cycle, ids)
        try:
            cost = self.apply_answers_from(export)
        except AlsegError as error:
            named = re.sub(
                r"\b(t\d{4})\b", lambda m: f"{m[1]} (Label Studio task {ids.get(m[1], '?')})", str(error)
            )
            raise AlsegError(f"{named}; correct it in Label Studio, then rerun the same command") from None
        spent = ", ".join(f"{value:g} {unit}" for unit, value in cost.items())
        log.info("cycle %d: the labels from Label Studio are applied (%s)", cycle, spent)
        return True

    def apply_answers_from(self, source: Path) -> dict[str, float]:
        """Apply the answers in `source` (a Label Studio export or a folder of mask PNGs) to the
        pending query and record them with the last completed cycle; what the query cost.
        Nothing is applied unless every answer passes the checks."""
        root = self.run_dir.root
        cycle = pending_cycle(root)
        assert cycle is not None and isinstance(self.oracle, HumanOracle)
        query = json.loads((query_dir(root, cycle) / "query.json").read_text())
        answers = read_mask_folder(source, query) if source.is_dir() else read_label_studio(source, query)
        background = self.data.train.unannotated_classes
        fill = background[0] if background else None
        maps = checked_answers(answers, query, source, self.state, fill)
        cost = apply_answers(self.oracle, query, maps, answers)
        self.run_dir.update_state(self.run_dir.last_completed_cycle(), self.state, self.ledger)
        record = {"source": str(source), "cost": cost}
        atomic_write_text(query_dir(root, cycle) / "applied.json", json.dumps(record, indent=1) + "\n")
        (root / QUERIES / PENDING).unlink()
        return cost

    def _awaiting_answers(self) -> None:
        folder = query_dir(self.run_dir.root, pending_cycle(self.run_dir.root) or 0)
        log.info(
            "cycle %s's query awaits its labels: %s (tasks.json and labeling_config.xml for Label Studio, or "
            "the PNGs of images/, regions/, predictions/); then run `alseg label %s --from EXPORT` and this "
            "command again",
            folder.name.removeprefix("cycle_").lstrip("0") or "0",
            folder,
            self.run_dir.root,
        )

    def _cycle_of(self, cycle: int) -> str:
        """The prefix 'cycle k of N | ': cycles run from 0 (the initial set) to N, the last acquisition's."""
        total = self.budget.cycles
        return f"cycle {cycle} of {total} | " if total is not None else ""

    def _check_config_matches_saved(self) -> None:
        saved = self.run_dir.root / "config.yaml"
        public = public_config(self.cfg)
        text = OmegaConf.to_yaml(public)
        same = saved.exists() and saved.read_text() == text
        if not same and self.run_dir.last_completed_cycle() >= 0:
            old = flatten_config(OmegaConf.to_container(OmegaConf.load(saved)))
            new = flatten_config(OmegaConf.to_container(public))
            absent = "(absent)"
            keys = [k for k in changed_keys(old, new) if k.split(".")[0] not in RESUMABLE_CHANGES]
            if keys:
                changes = ", ".join(f"{k}: {old.get(k, absent)} -> {new.get(k, absent)}" for k in keys[:5])
                raise AlsegError(
                    f"{self.run_dir.root} holds a run with a different config ({saved}; {changes}); resume "
                    "it with the same overrides, or give a new hydra.run.dir."
                )
        if is_main() and not same:
            atomic_write_text(saved, text)
            atomic_write_text(
                self.run_dir.root / "overrides.yaml", OmegaConf.to_yaml(public_overrides(self.overrides))
            )

    def _run_cycle(self, cycle: int, acquire: bool) -> tuple[CycleOutcome, SegmentationModule]:
        acquisition, auxiliary = None, 0.0
        if acquire:
            acquisition = AcquisitionContext(
                cycle=cycle + 1,
                strategy=self.strategy,
                oracle=self.oracle,
                unit=self.budget.unit,
                budget=self.budget.for_cycle(self.ledger),
                rng=np.random.default_rng([self.seed, cycle, 1]),
                batch_size=int(self.cfg.scoring.batch_size),
                progress=self.progress,
                mc_mode=str(self.cfg.scoring.mc_mode),
            )
            start = time.perf_counter()
            labelled = self.state.labelled_images()
            acquisition.members = [
                self.training.train_member(bootstrap_resample(labelled, acquisition.rng), cycle, m + 1)
                for m in range(self.strategy.ensemble_size)
            ]
            auxiliary = time.perf_counter() - start
        pl.seed_everything(cycle_seed(self.seed, cycle), workers=True, verbose=False)
        module = self.training.build_module(cycle)
        per_image = {split: getattr(self.data, split).per_image_classes for split in self.eval_loaders}
        callback = ActiveLearningCallback(
            self.eval_loaders, self.data.num_classes, acquisition, per_image, auxiliary
        )
        callbacks: list[pl.Callback] = [callback]
        if hasattr(self.logger, "log_training_loss"):  # W&B: each step's loss, steps over all cycles
            callbacks.append(TrainingLoss(self.logger, cycle, self._steps_before(cycle)))
        steps = self.training.fit(module, self.state.training_images(), callbacks, f"cycle_{cycle:03d}")
        assert callback.outcome is not None
        callback.outcome.train_steps = steps
        return callback.outcome, module

    def _steps_before(self, cycle: int) -> int:
        """Optimizer steps of the cycles before `cycle` (from cycles.csv when resumed)."""
        return sum(int(row.get("train_steps", 0)) for row in self._rows[:cycle])

    def _row(self, cycle: int, trained_on: dict[str, float], outcome: CycleOutcome) -> Row:
        """The cycles.csv row: the cost and labelled fraction trained on, then the metrics."""
        row: Row = {"cycle": cycle, "strategy": self.strategy.name, "seed": self.seed, **trained_on}
        row["clicks_counted_at"] = self.clicks_counted_at
        row["val_is_test"] = int(self.data.val_is_test)
        row["reads_ground_truth"] = int(self.strategy.reads_ground_truth)
        for split, metrics in outcome.metrics.items():
            row.update(metric_columns(split, metrics, self.data.class_names))
            if cycle == 0:
                warn_absent_classes(split, metrics["class_pixels"], self.data.class_names)
        row["queried_units"] = len(outcome.queried)
        row["train_steps"] = outcome.train_steps
        row.update({f"{phase}_seconds": round(took, 3) for phase, took in outcome.seconds.items()})
        row["acquisition_seconds"] = round(outcome.acquisition_seconds, 3)
        return row


def warn_absent_classes(split: str, pixels: list[int], class_names: tuple[str, ...]) -> None:
    """A warning naming each class that no mask of the split holds: its IoU is never measured
    and its mIoU leaves it out, as when masks store it under an unexpected value."""
    absent = [name for name, count in zip(class_names, pixels, strict=True) if count == 0]
    if absent:
        log.warning(
            "no mask of the %s split holds class %s: its IoU is not measured and the mIoU leaves it "
            "out; if the masks store it under another value, map it with dataset.values (folder "
            "datasets) or dataset.palette",
            split,
            ", ".join(absent),
        )


def metric_columns(split: str, metrics: dict[str, Any], class_names: tuple[str, ...]) -> Row:
    """cycles.csv columns of one split's metrics: `test_miou`, per class `test_iou_<class>` and
    `test_dice_<class>` (pooled over the split's pixels). Where a class is also scored per
    image (ISIC's lesion), `test_jaccard_<class>` and `test_dice_<class>` are the means over
    images and its pooled columns are named `test_pooled_iou_<class>`, `test_pooled_dice_<class>`."""
    per_image = set(metrics.get("image_jaccard", {}))
    columns: Row = {}
    for key, value in metrics.items():
        if key.startswith("class_"):  # class_iou -> test_iou_<class>, class_dice -> ...
            kind = key.removeprefix("class_")
            for cls, (name, v) in enumerate(zip(class_names, value, strict=True)):
                columns[f"{split}_{'pooled_' if cls in per_image else ''}{kind}_{name}"] = v
        elif key.startswith("image_"):  # image_jaccard -> test_jaccard_<class>, image_dice -> ...
            columns.update(
                {f"{split}_{key.removeprefix('image_')}_{class_names[c]}": v for c, v in value.items()}
            )
        else:
            columns[f"{split}_{key}"] = value
    return columns


def _numeric(row: Row) -> dict[str, float]:
    return {key: float(value) for key, value in row.items() if isinstance(value, int | float)}


def _summary_line(row: Row) -> str:
    return (
        f"{row['cost_images']:7.1f} images {row['cost_clicks']:8.0f} clicks "
        f"| labelled {100 * row['labelled_fraction']:5.1f}% | val mIoU {row.get('val_miou', math.nan):.3f} "
        f"| test mIoU {row.get('test_miou', math.nan):.3f} dice {row.get('test_dice', math.nan):.3f} "
        f"| train {row['train_seconds']:.1f}s acquire {row['acquisition_seconds']:.1f}s"
    )


def run(cfg: DictConfig, run_dir: Path | str, overrides: list[str] | None = None) -> list[Row]:
    """Run one experiment from a composed config into `run_dir` (resumed when it holds one).
    `overrides` (the command line's) are kept in overrides.yaml."""
    return Experiment(cfg, Path(run_dir), overrides).run()


def label_run(root: Path, source: Path) -> dict[str, float]:
    """`alseg label ROOT --from SOURCE`: apply the answers to the run's pending query; what
    the query cost. Nothing is applied unless every answer passes the checks."""
    if pending_cycle(root) is None:
        raise AlsegError(f"no query awaits labels in {root}; run it with oracle=human first")
    if not source.exists():
        raise AlsegError(f"{source} does not exist; give a Label Studio JSON export or a folder of mask PNGs")
    cfg = OmegaConf.load(root / "config.yaml")
    assert isinstance(cfg, DictConfig)
    # the answers come from files whoever asked (an `oracle: human` string predates the group)
    cfg.oracle = OmegaConf.create({"_target_": f"{HumanOracle.__module__}.HumanOracle", "name": "human"})
    experiment = Experiment(cfg, root)
    assert isinstance(experiment.oracle, HumanOracle)
    completed = experiment.run_dir.last_completed_cycle()
    experiment.run_dir.restore(completed, experiment.state, experiment.ledger)
    return experiment.apply_answers_from(source)
