"""Draw metric-versus-cost curves: one line per run group, its band over seeds, the reference."""

from __future__ import annotations

import textwrap
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from alseg.errors import AlsegError
from alseg.results.report import REFERENCE_SHARE, UNBOUNDED_METRICS, reference
from alseg.results.runs import Run, RunGroup, check_choice, group_runs, setting_text

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


def short_label(group: RunGroup, same: frozenset[str] = frozenset()) -> str:
    """A group's legend entry: its strategy and the settings that set it apart (but those in
    `same`, which every curve drawn shares), each key by its last part (`segments=200`, not
    `regions.segments=200`) unless two would read the same."""
    shown = {
        k.removesuffix("._target_"): v for k, v in group.settings.items() if v is not None and k not in same
    }
    last = [key.rsplit(".", 1)[-1] for key in shown]
    names = [part if last.count(part) == 1 else key for key, part in zip(shown, last, strict=True)]
    values = ", ".join(
        f"{name}={setting_text(value)}" for name, value in zip(names, shown.values(), strict=True)
    )
    return f"{group.strategy} ({values})" if values else group.strategy


def shared_settings(groups: list[RunGroup]) -> frozenset[str]:
    """Setting keys with one value among every group that has them, left out of the legend
    where no two entries then read the same: said by another key (a superpixel setting by
    `regions`), not worth the room."""
    keys = {key for group in groups for key in group.settings}
    values = {key: {str(g.settings[key]) for g in groups if g.settings.get(key) is not None} for key in keys}
    same: frozenset[str] = frozenset()
    for key in sorted(k for k, seen in values.items() if len(seen) <= 1):
        labels = [short_label(group, same | {key}) for group in groups]
        if len(set(labels)) == len(labels):
            same = same | {key}
    return same


def parse_labels(pairs: list[str]) -> dict[str, str]:
    """`--label 'DEFAULT::NEW'` options: a legend entry (as drawn by default) -> the text to draw."""
    labels = {}
    for pair in pairs:
        if "::" not in pair:
            raise AlsegError(
                f"--label {pair!r}: give 'LEGEND ENTRY::NEW TEXT', e.g. 'entropy (sampling=power)::drawn'"
            )
        old, new = pair.split("::", 1)
        labels[old.strip()] = new.strip()
    return labels


def parse_size(text: str) -> tuple[float, float]:
    """`--size W,H` in inches."""
    try:
        width, height = (float(v) for v in text.split(","))
    except ValueError:
        raise AlsegError(f"--size {text!r}: give width,height in inches, e.g. 7,4.5") from None
    if width <= 0 or height <= 0:
        raise AlsegError(f"--size {text!r}: width and height must be positive")
    return width, height


@dataclass(frozen=True)
class FigureStyle:
    """How a figure looks: its size in inches, its font size, a title (None: made from the runs)
    and legend entries to replace (default entry -> new text)."""

    size: tuple[float, float] = (7.0, 4.5)
    font_size: float = 9.0
    title: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


def plot_curves(
    runs: list[Run],
    cost: str,
    metric: str,
    band: str,
    output: Path,
    log_cost: bool = False,
    style: FigureStyle | None = None,
) -> list[Path]:
    """Write the figure as PNG, SVG and PDF next to `output` (its suffix is replaced); the cost
    axis logarithmic with `log_cost` (curves whose costs differ by orders of magnitude). Each
    band is a light fill edged by thin lines in its curve's colour and style, so that
    overlapping bands stay apart."""
    check_choice(runs, cost, metric)
    style = style or FigureStyle()
    groups = group_runs(runs)
    same = shared_settings(groups)
    drawn = {short_label(group, same) for group in groups}
    unknown = sorted(set(style.labels) - drawn)
    if unknown:
        raise AlsegError(
            f"--label names {unknown}, which no curve has; the legend entries are: {sorted(drawn)}"
        )
    # SVG keeps its text as text: editable, and searchable, in a paper's figure.
    plt.rcParams.update({"font.size": style.font_size, "svg.fonttype": "none"})
    figure, axes = plt.subplots(figsize=style.size, dpi=150)
    low, high = metric_range(metric)
    styles: dict[str, int] = {}
    for group in groups:
        costs, values = group.cycle_curve(cost, metric)
        mean, spread = values.mean(axis=0), band_half_width(values, band)
        # Groups of one strategy (other settings) share its colour and differ in line style.
        index = styles.get(group.strategy, 0)
        styles[group.strategy] = index + 1
        line = LINE_STYLES[index % len(LINE_STYLES)]
        colour = strategy_colour(group.strategy)
        name = style.labels.get(short_label(group, same), short_label(group, same))
        label = textwrap.fill(f"{name} (n={len(group.runs)})", 60, subsequent_indent="  ")
        axes.plot(costs, mean, marker="o", markersize=3, color=colour, linestyle=line, label=label)
        lower, upper = np.clip(mean - spread, low, high), np.clip(mean + spread, low, high)
        axes.fill_between(costs, lower, upper, color=colour, alpha=0.12, linewidth=0)
        for edge in (lower, upper):
            axes.plot(costs, edge, color=colour, linestyle=line, linewidth=0.6, alpha=0.7)
    ref = reference(runs, metric)
    name = METRIC_LABELS.get(metric, metric)
    if ref is not None:
        level = REFERENCE_SHARE * ref
        label = f"95% of full supervision: {level:.3f} (full: {ref:.3f})"
        axes.axhline(level, color="black", linestyle="--", linewidth=1, label=label)
    datasets = ", ".join(sorted({run.dataset for run in runs}))
    axes.set_xlabel(COST_LABELS[cost])
    splits = ", ".join(sorted({run.evaluated_split() for run in runs}))
    axes.set_ylabel(f"{splits} {name}")
    if log_cost:
        axes.set_xscale("log")
    band_name = "std" if band == "std" else "95% t interval"
    axes.set_title(style.title or f"{datasets}: {name} vs {cost} (band: {band_name} over seeds)")
    axes.grid(alpha=0.3)
    # Beside the axes: entries at the figure's font size never cover the curves.
    # (no tight_layout: it would shrink the axes to fit a long legend; the saved bounding box
    # grows around it instead)
    axes.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize=style.font_size * 0.9)
    paths = [output.with_suffix(suffix) for suffix in FORMATS]
    output.parent.mkdir(parents=True, exist_ok=True)
    for path in paths:
        figure.savefig(path, bbox_inches="tight")
    plt.close(figure)
    return paths
