"""Curves of a metric against labelling cost, and the comparison table of strategies.

Runs are read from run directories (cycles.csv), sweep directories (every run below them) or
W&B run directories (run-*.wandb). A run trained once on the whole pool (one cycle, labelled
fraction 1) is the full-supervision reference of its metric.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alseg.errors import AlsegError
from alseg.loggers import read_wandb_history
from alseg.pool import COST_UNITS
from alseg.results import Row, format_table, read_rows

log = logging.getLogger("alseg")

METRICS = ("miou", "dice", "pixel_acc", "object_f1")
REFERENCE_SHARE = 0.95


@dataclass
class Run:
    """One run's cycle rows and where they came from."""

    path: Path
    rows: list[Row]

    @property
    def strategy(self) -> str:
        return str(self.rows[0].get("strategy", self.path.name))

    @property
    def is_finished(self) -> bool:
        """Whether the run reached its last cycle (which queries nothing)."""
        return int(self.rows[-1].get("queried_units", 0)) == 0

    @property
    def is_full_supervision(self) -> bool:
        return len(self.rows) == 1 and float(self.rows[0]["labelled_fraction"]) >= 1.0

    def curve(self, cost: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """(cost, metric) per cycle; the metric of the test split, else of val."""
        column = next((f"{s}_{metric}" for s in ("test", "val") if f"{s}_{metric}" in self.rows[0]), None)
        if column is None:
            raise AlsegError(f"{self.path} has no test_{metric} or val_{metric} column")
        return (
            np.array([float(r[f"cost_{cost}"]) for r in self.rows]),
            np.array([float(r[column]) for r in self.rows]),
        )


def load_runs(paths: list[str | Path]) -> list[Run]:
    """Every run found at or below the given paths."""
    runs = []
    for path in map(Path, paths):
        if not path.exists():
            raise AlsegError(f"{path} does not exist; give run or sweep directories")
        for csv in sorted(path.rglob("cycles.csv")) if path.is_dir() else []:
            runs.append(Run(csv.parent, read_rows(csv)))
        for wandb_file in sorted(path.rglob("run-*.wandb")) if path.is_dir() else []:
            if not (wandb_file.parents[2] / "cycles.csv").exists():  # not a copy of a run above
                rows = [r for r in read_wandb_history(wandb_file.parent) if "cycle" in r]
                runs.append(Run(wandb_file.parent, rows))
    unfinished = [run for run in runs if run.rows and not run.is_finished]
    if unfinished:
        log.warning(
            "skipping %d unfinished runs: %s", len(unfinished), ", ".join(str(r.path) for r in unfinished)
        )
    runs = [run for run in runs if run.rows and run.is_finished]
    if not runs:
        raise AlsegError(f"no runs (cycles.csv or run-*.wandb) found in {', '.join(map(str, paths))}")
    return runs


@dataclass
class StrategyCurve:
    """The mean and spread over seeds of one strategy's metric on a common cost grid."""

    strategy: str
    cost: np.ndarray  # the grid
    runs: np.ndarray  # (seeds, grid) metric of each run, interpolated onto the grid
    final_costs: np.ndarray  # (seeds,) the last cost of each run
    final_values: np.ndarray  # (seeds,) the last metric of each run

    @property
    def mean(self) -> np.ndarray:
        return self.runs.mean(axis=0)

    def spread(self, band: str) -> np.ndarray:
        """Half-width of the band: the standard deviation, or the 95% interval of the mean."""
        if len(self.runs) < 2:
            return np.zeros_like(self.mean)
        std = self.runs.std(axis=0, ddof=1)
        return std if band == "std" else 1.96 * std / math.sqrt(len(self.runs))


def strategy_curves(runs: list[Run], cost: str, metric: str) -> list[StrategyCurve]:
    """One curve per strategy: its runs (seeds) interpolated onto the union of their costs,
    cut to the cost range every run covers."""
    if cost not in COST_UNITS:
        raise AlsegError(f"--cost must be one of {list(COST_UNITS)} (got {cost!r})")
    if metric not in METRICS:
        raise AlsegError(f"--metric must be one of {list(METRICS)} (got {metric!r})")
    by_strategy: dict[str, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    for run in runs:
        if not run.is_full_supervision:
            by_strategy[run.strategy].append(run.curve(cost, metric))
    curves = []
    for strategy, seeds in sorted(by_strategy.items()):
        low = max(x[0] for x, _ in seeds)
        high = min(x[-1] for x, _ in seeds)
        grid = np.unique(np.concatenate([x[(x >= low) & (x <= high)] for x, _ in seeds]))
        values = np.stack([np.interp(grid, x, y) for x, y in seeds])
        finals = np.array([x[-1] for x, _ in seeds]), np.array([y[-1] for _, y in seeds])
        curves.append(StrategyCurve(strategy, grid, values, *finals))
    return curves


def reference(runs: list[Run], metric: str) -> float | None:
    """The full-supervision metric (mean over such runs), or None when there is none."""
    values = [run.curve("images", metric)[1][-1] for run in runs if run.is_full_supervision]
    return float(np.mean(values)) if values else None


def cost_to_reach(cost: np.ndarray, values: np.ndarray, target: float) -> float:
    """The cost at which a curve first reaches `target`, linearly interpolated (NaN: never)."""
    above = np.flatnonzero(values >= target)
    if not len(above):
        return math.nan
    i = above[0]
    if i == 0:
        return float(cost[0])
    share = (target - values[i - 1]) / (values[i] - values[i - 1])
    return float(cost[i - 1] + share * (cost[i] - cost[i - 1]))


def normalised_area(cost: np.ndarray, values: np.ndarray) -> float:
    """Area under the curve divided by its cost range: the mean metric over the budget."""
    if len(cost) < 2 or cost[-1] == cost[0]:
        return float(values[-1])
    return float(np.trapezoid(values, cost) / (cost[-1] - cost[0]))


def summary(runs: list[Run], cost: str, metric: str) -> list[Row]:
    """One row per strategy: final metric, normalised AUC, cost to 95% of the reference,
    each as mean and spread over seeds, and the saving in that cost relative to random."""
    ref = reference(runs, metric)
    target = REFERENCE_SHARE * ref if ref is not None else None
    rows: list[Row] = []
    for curve in strategy_curves(runs, cost, metric):
        finals = curve.final_values
        areas = np.array([normalised_area(curve.cost, run) for run in curve.runs])
        reach = np.array(
            [cost_to_reach(curve.cost, run, target) if target else math.nan for run in curve.runs]
        )
        rows.append(
            {
                "strategy": curve.strategy,
                "seeds": len(curve.runs),
                f"final_{metric}": float(finals.mean()),
                f"final_{metric}_std": float(finals.std(ddof=1)) if len(finals) > 1 else 0.0,
                f"final_cost_{cost}": float(curve.final_costs.mean()),
                "auc": float(areas.mean()),
                "auc_std": float(areas.std(ddof=1)) if len(areas) > 1 else 0.0,
                f"cost_to_95pct_{cost}": float(np.mean(reach)) if np.isfinite(reach).all() else math.nan,
            }
        )
    baseline = float(next((r[f"cost_to_95pct_{cost}"] for r in rows if r["strategy"] == "random"), math.nan))
    for row in rows:
        row["saving_vs_random"] = (
            1 - float(row[f"cost_to_95pct_{cost}"]) / baseline if baseline > 0 else math.nan
        )
    return rows


def markdown(rows: list[Row], reference_value: float | None, metric: str) -> str:
    """The summary as a Markdown table; unreached costs read "not reached"."""

    def cell(key: str, value: object) -> str:
        if isinstance(value, float) and math.isnan(value):
            return "not reached" if key.startswith("cost_to") else "n/a"
        if isinstance(value, float):
            return f"{100 * value:.1f}%" if key == "saving_vs_random" else f"{value:.4g}"
        return str(value)

    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(c, row[c]) for c in columns) + " |" for row in rows]
    note = (
        f"Full-supervision {metric}: {reference_value:.4g}; "
        f"95% of it: {REFERENCE_SHARE * reference_value:.4g}."
        if reference_value is not None
        else "No full-supervision run given: costs to 95% are not computed."
    )
    return "\n".join(lines) + "\n\n" + note + "\n"


def text_table(rows: list[Row]) -> str:
    return format_table(rows, list(rows[0]))
