"""Draw metric-versus-cost curves, one line per strategy with its band over seeds."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt

from alseg.report import REFERENCE_SHARE, Run, reference, strategy_curves

COST_LABELS = {
    "images": "labelling cost (images' worth of area)",
    "pixels": "labelling cost (pixels)",
    "regions": "labelling cost (regions)",
    "clicks": "labelling cost (clicks)",
}
METRIC_LABELS = {"miou": "mIoU", "dice": "Dice", "pixel_acc": "pixel accuracy"}


def plot_curves(runs: list[Run], cost: str, metric: str, band: str, output: Path) -> list[Path]:
    """Write the figure as PNG and SVG next to `output` (its suffix is replaced); return both."""
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=150)
    for curve in strategy_curves(runs, cost, metric):
        spread = curve.spread(band)
        (line,) = axes.plot(
            curve.cost, curve.mean, marker="o", markersize=3, label=f"{curve.strategy} (n={len(curve.runs)})"
        )
        axes.fill_between(
            curve.cost, curve.mean - spread, curve.mean + spread, color=line.get_color(), alpha=0.2
        )
    ref = reference(runs, metric)
    if ref is not None:
        axes.axhline(
            REFERENCE_SHARE * ref,
            color="black",
            linestyle="--",
            linewidth=1,
            label=f"95% of full supervision ({ref:.3f})",
        )
    axes.set_xlabel(COST_LABELS[cost])
    axes.set_ylabel(f"test {METRIC_LABELS[metric]}")
    axes.set_title(
        f"{METRIC_LABELS[metric]} vs labelling cost (band: {'std' if band == 'std' else '95% CI'} over seeds)"
    )
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    paths = [output.with_suffix(".png"), output.with_suffix(".svg")]
    output.parent.mkdir(parents=True, exist_ok=True)
    for path in paths:
        figure.savefig(path)
    plt.close(figure)
    return paths
