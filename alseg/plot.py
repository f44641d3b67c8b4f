"""Draw metric-versus-cost curves: one line per run group, its band over seeds, the reference."""

from __future__ import annotations

import textwrap
import zlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from alseg.report import REFERENCE_SHARE, UNBOUNDED_METRICS, Run, check_choice, group_runs, reference

COST_LABELS = {
    "images": "labelling cost (images' worth of area)",
    "pixels": "labelling cost (pixels)",
    "regions": "labelling cost (regions)",
    "clicks": "labelling cost (clicks)",
}
METRIC_LABELS = {"miou": "mIoU", "dice": "Dice", "pixel_acc": "pixel accuracy", "object_f1": "object F1"}
# One colour per strategy name, the same in every figure (20 distinct ones).
STRATEGY_ORDER = (
    "random",
    "entropy",
    "margin",
    "least_confidence",
    "vote_entropy",
    "density",
    "coreset",
    "ceal",
    "ceal_melanoma",
    "suggestive",
    "cereals",
    "vaal",
    "oracle_error",
)
LINE_STYLES = ("-", "--", ":", "-.")
FORMATS = (".png", ".svg", ".pdf")


def strategy_colour(name: str) -> tuple[float, ...]:
    """The colour of a strategy name: fixed for the known ones, from the name's hash otherwise.
    The first ten are tab10's distinct colours, the next ten tab20's light shades."""
    index = STRATEGY_ORDER.index(name) if name in STRATEGY_ORDER else zlib.crc32(name.encode()) % 20
    return plt.get_cmap("tab10")(index) if index < 10 else plt.get_cmap("tab20")(2 * (index - 10) + 1)


def band_half_width(values: np.ndarray, band: str) -> np.ndarray:
    """Per cycle over seeds (seeds, cycles): the standard deviation or the 95% t interval."""
    if len(values) < 2:
        return np.zeros(values.shape[1])
    std = values.std(axis=0, ddof=1)
    return std if band == "std" else stats.t.ppf(0.975, len(values) - 1) * std / np.sqrt(len(values))


def metric_range(metric: str) -> tuple[float, float]:
    """Where a metric's values can lie: bands are clipped to it."""
    return (0.0, np.inf) if any(part in metric for part in UNBOUNDED_METRICS) else (0.0, 1.0)


def plot_curves(
    runs: list[Run], cost: str, metric: str, band: str, output: Path, log_cost: bool = False
) -> list[Path]:
    """Write the figure as PNG, SVG and PDF next to `output` (its suffix is replaced); the cost
    axis logarithmic with `log_cost` (curves whose costs differ by orders of magnitude)."""
    check_choice(runs, cost, metric)
    groups = group_runs(runs)
    # The legend goes below the axes: long setting labels must not cover the curves.
    figure, axes = plt.subplots(figsize=(8, 4.5 + 0.22 * len(groups)), dpi=150)
    low, high = metric_range(metric)
    styles: dict[str, int] = {}
    for group in groups:
        costs, values = group.cycle_curve(cost, metric)
        mean, spread = values.mean(axis=0), band_half_width(values, band)
        # Groups of one strategy (other settings) share its colour and differ in line style.
        index = styles.get(group.strategy, 0)
        styles[group.strategy] = index + 1
        style = LINE_STYLES[index % len(LINE_STYLES)]
        colour = strategy_colour(group.strategy)
        label = textwrap.fill(f"{group.label} (n={len(group.runs)})", 130, subsequent_indent="    ")
        axes.plot(costs, mean, marker="o", markersize=3, color=colour, linestyle=style, label=label)
        axes.fill_between(
            costs,
            np.clip(mean - spread, low, high),
            np.clip(mean + spread, low, high),
            color=colour,
            alpha=0.2,
        )
    ref = reference(runs, metric)
    name = METRIC_LABELS.get(metric, metric)
    if ref is not None:
        line = REFERENCE_SHARE * ref
        label = f"95% of full supervision: {line:.3f} (full: {ref:.3f})"
        axes.axhline(line, color="black", linestyle="--", linewidth=1, label=label)
    datasets = ", ".join(sorted({run.dataset for run in runs}))
    axes.set_xlabel(COST_LABELS[cost])
    splits = ", ".join(sorted({run.evaluated_split() for run in runs}))
    axes.set_ylabel(f"{splits} {name}")
    if log_cost:
        axes.set_xscale("log")
    band_name = "std" if band == "std" else "95% t interval"
    axes.set_title(f"{datasets}: {name} vs {cost} (band: {band_name} over seeds)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=6, loc="upper left", bbox_to_anchor=(0, -0.15), frameon=False)
    figure.tight_layout()
    paths = [output.with_suffix(suffix) for suffix in FORMATS]
    output.parent.mkdir(parents=True, exist_ok=True)
    for path in paths:
        figure.savefig(path, bbox_inches="tight")
    plt.close(figure)
    return paths
