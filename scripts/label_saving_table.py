"""The results table of docs/camvid_label_saving.md, one row per arm of bench_label_efficiency.

An arm is the runs named `<arm>_seed<n>` under the given folders. Per arm: the final mIoU
(mean +- sd over seeds), the clicks at the end, the paired difference with random on the same
protocol (query unit, annotation, budget; 95% t interval) and the clicks at which the arm
reaches that random's final (per seed, and on the mean curves against where random's own mean
curve first got there), the clicks at which it reaches random whole images' final and 95% of
precise full supervision (mean over the seeds that get there; n/a where the folders hold no such
runs on the split read), and the share of labelled pixels whose label is wrong at the end:

    python scripts/label_saving_table.py bench/runs/label_efficiency bench/runs/camvid_superpixels

`--levels` prints instead, per arm, the saving at each level random's mean curve reaches (its
mean mIoU at each cycle): 1 - the arm's clicks to get there / random's, both on mean curves.
"""

from __future__ import annotations

import argparse
import math
import re

import numpy as np

from alseg.results.report import (
    REFERENCE_SHARE,
    baseline,
    cost_to_reach,
    matched_savings,
    mean_curve,
    reference,
    saving,
    summary,
)
from alseg.results.runs import Run, RunGroup, group_runs, load_runs

COST = "clicks"
METRIC = "miou"


def arm_of(run: Run) -> str:
    return re.sub(r"_seed\d+$", "", run.path.name)


def reach(runs: list[Run], target: float) -> str:
    """Mean clicks over the seeds that reach `target`, and how many do (n/a: no target)."""
    if math.isnan(target):
        return "n/a"
    costs = np.array([cost_to_reach(*run.curve(COST, METRIC), target) for run in runs])
    reached = costs[np.isfinite(costs)]
    return f"{clicks(reached.mean() if len(reached) else math.nan)} ({len(reached)} of {len(runs)})"


def clicks(value: float) -> str:
    return "not reached" if math.isnan(value) else f"{value:,.0f}"


def value_of(target: float, more: str = "") -> str:
    return "" if math.isnan(target) else f" ({target:.4f}{more})"


def number(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:+.3f}"


def percent(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.0%}"


def table(runs: list[Run]) -> str:
    """The Markdown table (one row per arm, full supervision left out)."""
    rows = summary(runs, COST, METRIC)
    groups = group_runs(runs)
    arms: dict[str, list[Run]] = {}
    paired: dict[str, dict] = {}
    group_of: dict[str, RunGroup] = {}
    for group, row in zip(groups, rows, strict=True):
        assert row["strategy"] == group.label
        names = {arm_of(run) for run in group.runs}
        if len(names) > 1:
            raise SystemExit(f"one report group holds several arms: {sorted(names)}")
        arm = names.pop()
        if arm in arms:
            raise SystemExit(f"the seeds of {arm} fall into several report groups: their configs differ")
        arms[arm], paired[arm], group_of[arm] = group.runs, row, group
    images = arms.get("random", [])  # random whole images: absent from the val runs
    image_finals = [run.curve(COST, METRIC)[1][-1] for run in images]
    random_images_final = float(np.mean(image_finals)) if image_finals else math.nan
    images_there = ""
    if images:  # where random images' own mean curve first got to its final
        first = cost_to_reach(*mean_curve(group_of["random"], COST, METRIC), random_images_final)
        images_there = f", their mean curve there at {clicks(first)}"
    full = reference(runs, METRIC)
    target = REFERENCE_SHARE * full if full is not None else math.nan
    lines = [
        f"| arm | seeds | final {METRIC} | clicks at the end | paired with random on its protocol "
        f"(95% t) | reaches that random's final at (saving) | mean curves: random there at, saving "
        f"| reaches random images' final"
        f"{value_of(random_images_final, images_there)} at | 95% of full{value_of(target)} at "
        "| wrong-label share at the end |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arm, members in sorted(arms.items()):
        finals = np.array([run.curve(COST, METRIC)[1][-1] for run in members])
        spread = f" +- {finals.std(ddof=1):.3f}" if len(finals) > 1 else ""
        end = np.mean([run.curve(COST, METRIC)[0][-1] for run in members])
        row = paired[arm]
        if row["paired_seeds"]:
            half = row["paired_final_diff_ci95"]
            diff = number(row["paired_final_diff"]) + ("" if math.isnan(half) else f" +- {half:.3f}")
            to_random = f"{clicks(row[f'cost_to_random_final_{COST}'])} ({row['reached_random_final']})"
            if not math.isnan(row["saving_to_random_final"]):
                to_random += f", {row['saving_to_random_final']:.0%}"
            first = row[f"random_reaches_its_final_{COST}"]
            matched = f"{clicks(first)}, {percent(row['saving_matched_to_random_final'])}"
        else:
            diff = to_random = matched = "(the baseline)" if arm.startswith("random") else "n/a"
        wrong = np.mean([float(run.rows[-1].get("wrong_label_share", 0.0)) for run in members])
        lines.append(
            f"| {arm} | {','.join(str(run.seed) for run in members)} | {finals.mean():.3f}{spread} "
            f"| {end:,.0f} | {diff} | {to_random} | {matched} | {reach(members, random_images_final)} "
            f"| {reach(members, target)} | {wrong:.3f} |"
        )
    return "\n".join(lines) + "\n"


def levels(runs: list[Run]) -> str:
    """Per arm paired with a random on its protocol: the saving at each level of random's mean
    curve, as `level: saving` from random's first acquisition on."""
    groups = group_runs(runs)
    lines = ["| arm | seeds | saving at random's mean mIoU after each acquisition |", "|---|---|---|"]
    for group in groups:
        base = baseline(group, groups)
        if base is None or base is group:
            continue
        found = matched_savings(mean_curve(group, COST, METRIC), mean_curve(base, COST, METRIC))
        cells = [f"{level:.3f}: {percent(saving(mine, theirs))}" for level, theirs, mine in found]
        arm = arm_of(group.runs[0])
        lines.append(f"| {arm} | {len(group.runs)} (random {len(base.runs)}) | {'; '.join(cells)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", help="archived run folders (bench/runs/...)")
    parser.add_argument("--split", default=None, help="evaluation split to read (default test)")
    parser.add_argument("--levels", action="store_true", help="savings at each level of random's curve")
    args = parser.parse_args()
    runs = load_runs(args.folders, args.split)
    print((levels if args.levels else table)(runs), end="")


if __name__ == "__main__":
    main()
