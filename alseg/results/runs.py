"""Reading runs: run, sweep and W&B directories, their configs in today's terms, and groups.

A run is read from its cycles.csv (or W&B history) and config.yaml. Runs are grouped by
strategy name plus every config key that changes the curve: two runs of one name whose configs
differ (regions, budget, model, ...) are separate groups, labelled with the keys that differ; a
second run of a seed already in a group is a duplicate, reported and never averaged. A run
older than a key has the key's default value; a class that moved is named by its new path.
"""

from __future__ import annotations

import functools
import logging
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from alseg.errors import AlsegError
from alseg.labels.ledger import COST_UNITS
from alseg.results.loggers import read_wandb_history
from alseg.results.run_dir import Row, flatten_config, read_rows
from alseg.settings import config_dir

log = logging.getLogger("alseg")

# Config keys that never change a curve: where results go, how fast, what is printed.
NEUTRAL_KEYS = (
    "seed",
    "progress",
    "keep_checkpoints",
    "evaluate_on",
    "scoring",
    "logger",
    "hydra",
    "dataset.root",
    "dataset.splits.root",
    "dataset.splits.cache_dir",
    "train.num_workers",
)


MOVED_CLASSES = {
    **{
        f"alseg.{module}.{name}": f"alseg.regions.{room}.{name}"
        for module in ("pool", "regions")
        for name, room in {"WholeImage": "boxes", "Grid": "boxes", "SlidingWindows": "boxes",
                           "Superpixels": "superpixels"}.items()
    },
    "alseg.model.build_network": "alseg.model.networks.build_network",
    "alseg.model.build_fcn8s": "alseg.model.networks.build_fcn8s",
    "alseg.losses.PartialLabelCrossEntropy": "alseg.model.losses.PartialLabelCrossEntropy",
    "alseg.loggers.wandb_logger": "alseg.results.loggers.wandb_logger",
}  # fmt: skip
"""Classes that moved (same behaviour): old runs' config.yaml name them by their old path."""

MOVED_KEYS = {"oracle": "oracle.name"}
"""Config keys that moved: `oracle: simulated` became the config group `oracle` (its `name`)."""


SAME_BEHAVIOUR = {"torch.nn.CrossEntropyLoss": "alseg.model.losses.PartialLabelCrossEntropy"}
"""Classes an old default names that behave exactly as today's: the default loss is torch's
cross-entropy on labels of one class (tests/test_class_answers.py)."""


def _moved(value: Any) -> Any:
    if isinstance(value, str) and value in SAME_BEHAVIOUR:
        return SAME_BEHAVIOUR[value]
    return MOVED_CLASSES.get(value, value) if isinstance(value, str) else value


def _neutral(key: str) -> bool:
    return any(key == k or key.startswith(f"{k}.") for k in NEUTRAL_KEYS)


@dataclass
class Run:
    """One run's cycle rows, its config (flattened; empty when unknown) and where they came from."""

    path: Path
    rows: list[Row]
    config: dict[str, Any] = field(default_factory=dict)
    split: str | None = None  # the evaluation split to read; None: test where evaluated, else val

    @property
    def strategy(self) -> str:
        return str(self.rows[0].get("strategy", self.path.name))

    @property
    def seed(self) -> int | None:
        seed = self.rows[0].get("seed", self.config.get("seed"))
        return None if seed is None else int(seed)

    @property
    def dataset(self) -> str:
        return str(self.config.get("dataset.name", "unknown"))

    @property
    def setting(self) -> dict[str, Any]:
        """What shapes the curve: the config without neutral keys, and where clicks were counted.
        A key the run's config lacks (added to alseg after the run) has its default value, which
        reproduces what runs did before the key existed."""
        config = {**default_config(), **in_todays_keys(self.config)} if self.config else {}
        setting = {k: _moved(v) for k, v in config.items() if not _neutral(k)}
        setting["clicks_counted_at"] = self.rows[0].get("clicks_counted_at")
        return setting

    @property
    def is_finished(self) -> bool:
        """Whether the run reached its last cycle (which queries nothing)."""
        return int(self.rows[-1].get("queried_units", 0)) == 0

    @property
    def is_full_supervision(self) -> bool:
        return len(self.rows) == 1 and float(self.rows[0]["labelled_fraction"]) >= 1.0

    def evaluated_split(self) -> str:
        """The split whose metrics this run's curves show."""
        if self.split is not None:
            return self.split
        return "test" if any(key.startswith("test_") for key in self.rows[0]) else "val"

    def metrics(self) -> set[str]:
        """Metric names this run has for its split (by default test, else val)."""
        split = self.evaluated_split()
        return {
            key.removeprefix(f"{split}_")
            for key, value in self.rows[0].items()
            if key.startswith(f"{split}_") and isinstance(value, int | float)
        }

    def curve(self, cost: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """(cost, metric) per cycle; the metric of the run's split."""
        column = f"{self.evaluated_split()}_{metric}"
        if column not in self.rows[0]:
            raise AlsegError(
                f"{self.path} has no {column} column; evaluate_on names the splits a run evaluates"
            )
        return (
            np.array([float(r[f"cost_{cost}"]) for r in self.rows]),
            np.array([float(r[column]) for r in self.rows]),
        )


@functools.cache
def default_config() -> dict[str, Any]:
    """The flattened default config, with no group chosen: the values of keys a run predates."""
    if GlobalHydra.instance().is_initialized():  # inside `alseg run`: its search path is ours
        cfg = compose(config_name="config")
    else:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose(config_name="config")
    return flatten_config(OmegaConf.to_container(cfg, resolve=True))


def in_todays_keys(config: dict[str, Any]) -> dict[str, Any]:
    """A flat config with its moved keys renamed."""
    return {MOVED_KEYS.get(key, key): value for key, value in config.items()}


def changed_keys(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Flat keys whose value differs between a saved config and today's, in today's terms: a
    class that moved is named by its new path, a key added since has its default value."""
    absent, defaults = "(absent)", default_config()
    saved = {key: _moved(value) for key, value in in_todays_keys(saved).items()}
    return sorted(
        key
        for key in saved.keys() | current.keys()
        if saved.get(key, defaults.get(key, absent)) != current.get(key, absent)
    )


def _read_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.yaml"
    return flatten_config(OmegaConf.to_container(OmegaConf.load(path))) if path.is_file() else {}


def find_files(root: Path, pattern: str) -> list[Path]:
    """Files matching `pattern` at or below `root`, following symbolic links to directories
    (a folder of links to runs is a common way to gather them), each real directory once."""
    found, seen = [], set()
    for folder, subfolders, _ in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a link back up the tree
            subfolders.clear()
            continue
        seen.add(real)
        found += sorted(Path(folder).glob(pattern))
    return sorted(found)


def load_runs(paths: list[str | Path], split: str | None = None) -> list[Run]:
    """Every finished run found at or below the given paths, read on `split` (None: test where
    evaluated, else val)."""
    runs = []
    for path in map(Path, paths):
        if not path.exists():
            raise AlsegError(f"{path} does not exist; give run or sweep directories")
        for csv in find_files(path, "cycles.csv") if path.is_dir() else []:
            runs.append(Run(csv.parent, read_rows(csv), _read_config(csv.parent), split))
        for wandb_file in find_files(path, "run-*.wandb") if path.is_dir() else []:
            if not (wandb_file.parents[2] / "cycles.csv").exists():  # not a copy of a run above
                rows = [r for r in read_wandb_history(wandb_file.parent) if "cycle" in r]
                runs.append(Run(wandb_file.parent, rows, split=split))
    unfinished = [run for run in runs if run.rows and not run.is_finished]
    if unfinished:
        log.warning(
            "skipping %d unfinished runs: %s", len(unfinished), ", ".join(str(r.path) for r in unfinished)
        )
    runs = [run for run in runs if run.rows and run.is_finished]
    if not runs:
        raise AlsegError(f"no runs (cycles.csv or run-*.wandb) found in {', '.join(map(str, paths))}")
    return runs


def available_metrics(runs: list[Run]) -> list[str]:
    """Metrics every run has: what --metric accepts."""
    return sorted(set.intersection(*(run.metrics() for run in runs)) - {"seconds"})


def check_choice(runs: list[Run], cost: str, metric: str) -> None:
    """One error, listing what exists, for a cost unit or metric the runs do not have."""
    if cost not in COST_UNITS:
        raise AlsegError(f"--cost must be one of {list(COST_UNITS)} (got {cost!r})")
    lacking = [run for run in runs if not run.metrics()]
    if lacking:
        split = lacking[0].evaluated_split()
        raise AlsegError(
            f"{len(lacking)} of the runs were not evaluated on {split} (e.g. {lacking[0].path}): leave "
            f"them out, or pick a split they have with --split (their runs set evaluate_on)"
        )
    metrics = available_metrics(runs)
    if metric not in metrics:
        raise AlsegError(f"--metric {metric!r} is not in these runs; they have: {', '.join(metrics)}")


@dataclass
class RunGroup:
    """The seeds of one strategy in one setting."""

    strategy: str
    settings: dict[str, Any]  # the config keys (and values) that set this group apart
    runs: list[Run]  # one per seed, sorted by seed
    duplicates: list[Run]  # further runs of a seed already in `runs`: reported, not averaged

    @property
    def label(self) -> str:
        if not self.settings:
            return self.strategy
        # keys that do not apply to this group (None: another kind of region has them) are left out
        shown = [
            f"{k.removesuffix('._target_')}={setting_text(v)}"
            for k, v in self.settings.items()
            if v is not None
        ]
        return f"{self.strategy} ({', '.join(shown)})" if shown else self.strategy

    @property
    def seeds(self) -> list[int | None]:
        return [run.seed for run in self.runs]

    def cycle_curve(self, cost: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """Mean cost per cycle over seeds (cycles,) and each seed's metric (seeds, cycles),
        over the cycles every seed reached: a curve that starts at its first cycle."""
        curves = [run.curve(cost, metric) for run in self.runs]
        cycles = min(len(x) for x, _ in curves)
        costs = np.stack([x[:cycles] for x, _ in curves]).mean(axis=0)
        return costs, np.stack([y[:cycles] for _, y in curves])


def setting_text(value: Any) -> str:
    """A setting as a label shows it: lists joined, alseg's classes by their own name."""
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return value.rsplit(".", 1)[-1] if isinstance(value, str) and value.startswith("alseg.") else str(value)


def group_runs(runs: list[Run]) -> list[RunGroup]:
    """Runs (full supervision left out) grouped by strategy and every key that changes the curve."""
    curves = [run for run in runs if not run.is_full_supervision]
    return grouped(curves, lambda run: run.strategy, len({run.dataset for run in runs}) > 1)


def grouped(runs: list[Run], name_of: Callable[[Run], str], several_datasets: bool) -> list[RunGroup]:
    """Runs grouped by `name_of` and, within a name, by every key whose value differs."""
    by_name: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        by_name[name_of(run)].append(run)
    groups = []
    for name, named in sorted(by_name.items()):
        keys = sorted(set().union(*(run.setting for run in named)))
        differing = [k for k in keys if len({_hashable(run.setting.get(k)) for run in named}) > 1]
        if several_datasets and "dataset.name" not in differing:
            differing.insert(0, "dataset.name")
        split: dict[tuple, list[Run]] = defaultdict(list)
        for run in named:
            split[tuple(_hashable(run.setting.get(k)) for k in differing)].append(run)
        for values, members in sorted(split.items(), key=lambda item: str(item[0])):
            kept: dict[int | None, Run] = {}
            duplicates = []
            for run in sorted(members, key=lambda r: str(r.path)):
                if run.seed in kept:
                    duplicates.append(run)
                else:
                    kept[run.seed] = run
            if duplicates:
                log.warning(
                    "%s: %d duplicate seed(s) not averaged: %s",
                    name,
                    len(duplicates),
                    ", ".join(str(r.path) for r in duplicates),
                )
            ordered = sorted(kept.values(), key=lambda r: (r.seed is None, r.seed or 0))
            groups.append(RunGroup(name, dict(zip(differing, values, strict=True)), ordered, duplicates))
    return groups


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def annotation(run: Run) -> str:
    """How the run's units were answered: precise (the default) or dominant."""
    return str(run.config.get("budget.annotation", "precise"))
