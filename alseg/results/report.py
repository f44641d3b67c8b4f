"""Curves of a metric against labelling cost, and the comparison table of strategies.

Runs are read from run directories (cycles.csv and config.yaml), sweep directories (every run
below them) or W&B run directories (run-*.wandb). A run trained once on the whole pool (one
cycle, labelled fraction 1) is the full-supervision reference of its metric.

Runs are grouped by strategy name plus every config key that changes the curve: two runs of
one name whose configs differ (regions, budget, model, ...) are separate groups, labelled with
the keys that differ; a second run of a seed already in a group is a duplicate, reported and
never averaged. Comparisons are made over one cost range shared by every group, intervals
use Student's t, and each strategy is paired with random seed by seed (same seed, same
initial set).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from alseg.errors import AlsegError
from alseg.results.run_dir import Row, format_table
from alseg.results.runs import Run, RunGroup, annotation, check_choice, group_runs, grouped

log = logging.getLogger("alseg")

REFERENCE_SHARE = 0.95
UNBOUNDED_METRICS = ("hausdorff",)
"""Metric names (or name parts) not confined to [0, 1]; lower is better for them."""


def _full_supervision(runs: list[Run], metric: str, precise: bool) -> dict[str, float]:
    """Full-supervision runs with precise labels (or with any other annotation), grouped by
    annotation and every key that differs between them: each group's metric, mean over seeds."""
    found = [run for run in runs if run.is_full_supervision and (annotation(run) == "precise") == precise]
    groups = grouped(found, annotation, len({run.dataset for run in runs}) > 1)
    finals = {group.label: [run.curve("images", metric)[1][-1] for run in group.runs] for group in groups}
    return {label: float(np.mean(values)) for label, values in finals.items()}


def reference(runs: list[Run], metric: str) -> float | None:
    """The full-supervision metric with precise labels (mean over its seeds), or None. Runs
    trained on every unit with dominant-class labels are ceilings of that annotation, not
    the reference (see `ceilings`)."""
    found = _full_supervision(runs, metric, precise=True)
    if len(found) > 1:
        raise AlsegError(
            f"the full-supervision runs with precise labels differ in more than their seed "
            f"({'; '.join(found)}): one 95% reference cannot stand for them; report them apart"
        )
    return next(iter(found.values()), None)


def ceilings(runs: list[Run], metric: str) -> dict[str, float]:
    """The metric of full supervision with each other annotation (mean over its seeds), one
    per setting: ceilings that differ in more than their seed are named by what differs."""
    return _full_supervision(runs, metric, precise=False)


def common_range(groups: list[RunGroup], cost: str, metric: str) -> tuple[float, float]:
    """The cost range every run of every group covers: where AUCs are compared."""
    curves = [run.curve(cost, metric)[0] for group in groups for run in group.runs]
    low, high = max(float(x[0]) for x in curves), min(float(x[-1]) for x in curves)
    if not high > low:
        raise AlsegError(
            f"the runs share no range of {cost}: the latest start is {low:g} and the earliest end "
            f"{high:g}; compare runs whose budgets overlap, or use another --cost"
        )
    return low, high


def cost_to_reach(cost: np.ndarray, values: np.ndarray, target: float, from_cycle: int = 0) -> float:
    """The cost at which a curve first reaches `target`, linearly interpolated (NaN: never).
    Only cycles from `from_cycle` on count: savings start at 1, after the first acquisition,
    so that an initial set shared by every strategy is never credited as a saving."""
    above = np.flatnonzero(values[from_cycle:] >= target) + from_cycle
    if not len(above):
        return math.nan
    i = above[0]
    if i == 0 or values[i - 1] >= target:
        return float(cost[i])
    share = (target - values[i - 1]) / (values[i] - values[i - 1])
    return float(cost[i - 1] + share * (cost[i] - cost[i - 1]))


def mean_curve(group: RunGroup, cost: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """A group's mean curve: mean cost and mean metric per cycle over its seeds."""
    costs, values = group.cycle_curve(cost, metric)
    return costs, values.mean(axis=0)


def matched_savings(
    mine: tuple[np.ndarray, np.ndarray], theirs: tuple[np.ndarray, np.ndarray]
) -> list[tuple[float, float, float]]:
    """At each level `theirs` reaches after its first cycle (its metric at each cycle): the level,
    the cost at which `theirs` first reaches it and the cost at which `mine` does (NaN: never).
    A curve that flattens reaches its later levels before it pays for them: comparing with
    the cost of the cycle instead would credit `mine` with the baseline's late, wasted labels."""
    return [
        (float(level), cost_to_reach(*theirs, level, 1), cost_to_reach(*mine, level, 1))
        for level in theirs[1][1:]
    ]


def ever_above(mine: tuple[np.ndarray, np.ndarray], theirs: tuple[np.ndarray, np.ndarray]) -> bool:
    """Whether a mean curve lies above another at any of its cycles after the first
    acquisition (where the other is drawn, linearly interpolated): a curve that never does
    saves nothing, whatever its levels and costs say."""
    (x, y), (their_x, their_y) = mine, theirs
    inside = (x >= their_x[0]) & (x <= their_x[-1])
    inside[0] = False
    return bool((y[inside] > np.interp(x[inside], their_x, their_y)).any())


def saving(cost: float, baseline_cost: float) -> float:
    """The share of the baseline's cost saved: 1 - cost / baseline_cost (NaN: either unknown)."""
    return 1 - cost / baseline_cost if baseline_cost > 0 else math.nan


def normalised_area(cost: np.ndarray, values: np.ndarray, low: float, high: float) -> float:
    """Area under the piecewise-linear curve between `low` and `high`, divided by high - low:
    the mean metric over that cost range."""
    inner = (cost > low) & (cost < high)
    grid = np.concatenate([[low], cost[inner], [high]])
    return float(np.trapezoid(np.interp(grid, cost, values), grid) / (high - low))


def interval(values: np.ndarray) -> float:
    """Half-width of the 95% Student's t interval of the mean (NaN below two values)."""
    if len(values) < 2:
        return math.nan
    return float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))


def _spread(values: np.ndarray) -> float:
    return float(values.std(ddof=1)) if len(values) > 1 else math.nan


def _protocol(group: RunGroup) -> dict[str, Any]:
    """What a group's curve depends on besides its strategy: regions, budget, data, model."""
    setting = group.runs[0].setting
    return {k: v for k, v in setting.items() if k != "strategy" and not k.startswith("strategy.")}


def baseline(group: RunGroup, groups: list[RunGroup]) -> RunGroup | None:
    """The random group to pair `group` with: the one on the same protocol (query unit,
    annotation, budget, ...), else the only one."""
    randoms = [g for g in groups if g.strategy == "random"]
    same = [g for g in randoms if _protocol(g) == _protocol(group)]
    return same[0] if same else randoms[0] if len(randoms) == 1 else None


@dataclass
class SeedScores:
    """Per seed of a group: final metric, AUC over the common range, cost to 95%."""

    final: dict[int | None, float]
    auc: dict[int | None, float]
    reach: dict[int | None, float]
    curves: dict[int | None, tuple[np.ndarray, np.ndarray]]


def _seed_scores(group: RunGroup, cost: str, metric: str, span: tuple[float, float], target: float | None):
    final, auc, reach, curves = {}, {}, {}, {}
    for run in group.runs:
        x, y = curves[run.seed] = run.curve(cost, metric)
        final[run.seed] = float(y[-1])
        auc[run.seed] = normalised_area(x, y, *span)
        reach[run.seed] = cost_to_reach(x, y, target, 1) if target is not None else math.nan
    return SeedScores(final, auc, reach, curves)


def summary(runs: list[Run], cost: str, metric: str) -> list[Row]:
    """One row per group: final metric, AUC over the common cost range, cost to 95% of the
    reference per seed, each as mean, spread and 95% t interval; the paired difference with
    random over shared seeds; and the saving in cost to 95% relative to random."""
    check_choice(runs, cost, metric)
    groups = group_runs(runs)
    if not groups:
        raise AlsegError(
            "the runs given are all full supervision: a report compares active-learning curves "
            "with them; give the curves' run folders too"
        )
    span = common_range(groups, cost, metric)
    ref = reference(runs, metric)
    target = REFERENCE_SHARE * ref if ref is not None else None
    scores = {id(g): _seed_scores(g, cost, metric, span, target) for g in groups}
    rows: list[Row] = []
    for group in groups:
        mine = scores[id(group)]
        finals, areas = np.array(list(mine.final.values())), np.array(list(mine.auc.values()))
        reach = np.array(list(mine.reach.values()))
        reached = reach[np.isfinite(reach)]
        row: Row = {
            "strategy": group.label,
            "seeds": len(group.runs),
            "duplicates": len(group.duplicates),
            f"final_{metric}": float(finals.mean()),
            f"final_{metric}_std": _spread(finals),
            f"final_{metric}_ci95": interval(finals),
            f"final_cost_{cost}": float(np.mean([run.curve(cost, metric)[0][-1] for run in group.runs])),
            "auc": float(areas.mean()),
            "auc_ci95": interval(areas),
            f"cost_to_95pct_{cost}": (float(reached.mean()) if len(reached) else math.nan)
            if target is not None
            else "n/a",
            f"cost_to_95pct_{cost}_std": _spread(reached),
            "reached_95pct": f"{len(reached)} of {len(reach)}" if target is not None else "n/a",
        }
        row.update(_paired(group, groups, scores, cost, metric))
        rows.append(row)
    for row in rows:
        row["auc_range"] = f"{span[0]:g}-{span[1]:g}"
    return rows


def _paired(group: RunGroup, groups: list[RunGroup], scores: dict, cost: str, metric: str) -> Row:
    """Differences with random over the seeds both ran, the saving in cost to 95%, the cost at
    which each seed reaches random's final metric (mean over random's seeds), and the saving at
    that metric on the mean curves, against the cost at which random's own mean curve got there."""
    base = baseline(group, groups)
    empty: Row = {"paired_seeds": 0, "paired_final_diff": math.nan, "paired_final_diff_ci95": math.nan}
    empty |= {"paired_auc_diff": math.nan, "paired_auc_diff_ci95": math.nan, "ever_above_random": "n/a"}
    empty |= {"saving_vs_random": math.nan}
    empty |= {f"cost_to_random_final_{cost}": "n/a", "reached_random_final": "n/a"}
    empty |= {"saving_to_random_final": math.nan, f"random_reaches_its_final_{cost}": math.nan}
    empty |= {"saving_matched_to_random_final": math.nan}
    if base is None or base is group:
        return empty
    mine, theirs = scores[id(group)], scores[id(base)]
    shared = [seed for seed in mine.final if seed is not None and seed in theirs.final]
    final = np.array([mine.final[s] - theirs.final[s] for s in shared])
    auc = np.array([mine.auc[s] - theirs.auc[s] for s in shared])
    mine_reach, their_reach = np.array(list(mine.reach.values())), np.array(list(theirs.reach.values()))
    # A saving needs every seed of both to reach the target; an unreached seed has no cost.
    to_95 = math.nan
    if np.isfinite(mine_reach).all() and np.isfinite(their_reach).all():
        to_95 = saving(mine_reach.mean(), their_reach.mean())
    # Random's end point (mean over its seeds): when does each seed of this group get there?
    their_final = float(np.mean(list(theirs.final.values())))
    their_cost = float(np.mean([x[-1] for x, _ in theirs.curves.values()]))
    to_final = np.array([cost_to_reach(x, y, their_final, 1) for x, y in mine.curves.values()])
    reached = to_final[np.isfinite(to_final)]
    all_reached = len(reached) == len(to_final)
    their_curve, my_curve = mean_curve(base, cost, metric), mean_curve(group, cost, metric)
    levels = matched_savings(my_curve, their_curve)
    their_first, my_first = levels[-1][1:] if levels else (math.nan, math.nan)
    above = ever_above(my_curve, their_curve)

    def gain(value: float) -> float:  # never above random's curve: no positive saving
        return value if above or not value > 0 else 0.0

    return {
        "paired_seeds": len(shared),
        "paired_final_diff": float(final.mean()) if len(shared) else math.nan,
        "paired_final_diff_ci95": interval(final),
        "paired_auc_diff": float(auc.mean()) if len(shared) else math.nan,
        "paired_auc_diff_ci95": interval(auc),
        "ever_above_random": "yes" if above else "never",
        "saving_vs_random": gain(to_95),
        f"cost_to_random_final_{cost}": float(reached.mean()) if len(reached) else math.nan,
        "reached_random_final": f"{len(reached)} of {len(to_final)}",
        "saving_to_random_final": gain(saving(reached.mean(), their_cost)) if all_reached else math.nan,
        f"random_reaches_its_final_{cost}": their_first,
        "saving_matched_to_random_final": gain(saving(my_first, their_first)),
    }


def markdown(rows: list[Row], reference_value: float | None, metric: str, cost: str, runs: list[Run]) -> str:
    """The summary as a Markdown table with notes on the range, intervals and click counting."""

    columns = [c for c in rows[0] if c != "auc_range"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(c, row, cost) for c in columns) + " |" for row in rows]
    notes = [
        f"AUC: mean {metric} over the cost range every run covers, {rows[0]['auc_range']} {cost}.",
        "Intervals (`_ci95`): 95% Student's t over seeds. `paired_*`: strategy minus random on the "
        "seeds both ran (one seed, one initial set); `saving_vs_random`: 1 - cost to 95% / random's, "
        "only when every seed of both reached it. Cost to 95% is the mean over the seeds that reached it. "
        "`cost_to_random_final`: the cost at which a seed first reaches the final metric of the random "
        "run it is paired with (same query unit, annotation and budget; mean over random's seeds); "
        "`saving_to_random_final`: 1 - that cost / random's final cost, when every seed reached it. "
        "`random_reaches_its_final`: the cost at which random's mean curve (mean cost and metric per "
        "cycle over seeds) first reaches its final value, earlier than its end when it flattened; "
        "`saving_matched_to_random_final`: 1 - the cost at which this group's mean curve reaches it / "
        "that cost: the labels saved at equal metric. Savings count cycles after the first "
        "acquisition only (the initial set is shared), and a group whose mean curve is never above "
        "random's (`ever_above_random`) shows no positive saving.",
        f"{FEW_SEEDS_MARK}: an interval from fewer than {MIN_SEEDS} seeds, too unstable to read; run more.",
    ]
    oracle_runs = sorted({run.strategy for run in runs if run.rows[0].get("reads_ground_truth") == 1})
    if oracle_runs:
        notes.append(f"Upper bounds that read ground truth (not strategies): {', '.join(oracle_runs)}.")
    same = sorted({run.dataset for run in runs if str(run.rows[0].get("val_is_test")) == "1"})
    if same:
        notes.append(
            f"On {', '.join(same)} the val split is also the test split (test labels are not public): "
            "test numbers are val numbers, with no held-out test."
        )
    counted = sorted({str(run.rows[0].get("clicks_counted_at", "unknown")) for run in runs})
    notes.append(f"Clicks counted at: {'; '.join(counted)}.")
    if reference_value is None:
        notes.append("No full-supervision run given: costs to 95% are not computed.")
    else:
        share = REFERENCE_SHARE * reference_value
        notes.append(f"Full-supervision {metric}: {reference_value:.4g}; 95% of it: {share:.4g}.")
    for kind, value in ceilings(runs, metric).items():
        notes.append(
            f"Full supervision with every unit labelled {kind}: {metric} {value:.4g} "
            "(the ceiling of that annotation)."
        )
    return "\n".join(lines) + "\n\n" + "\n\n".join(notes) + "\n"


MIN_SEEDS = 3
"""Fewer seeds than this make a 95% interval that is flagged (its t quantile is 12.7 at n = 2)."""
FEW_SEEDS_MARK = "(n<3)"


def cell(key: str, row: Row, cost: str) -> str:
    """One value of a summary row as text: savings in percent, unreached costs said, intervals
    from fewer than MIN_SEEDS seeds flagged."""
    value = row[key]
    if isinstance(value, float) and math.isnan(value):
        reach = key in (f"cost_to_95pct_{cost}", f"cost_to_random_final_{cost}")
        return "not reached" if reach else "n/a"
    if isinstance(value, float):
        text = (
            f"{100 * value:.1f}%"
            if key.startswith("saving_")
            else f"{value:,.0f}"
            if abs(value) >= 1e4
            else f"{value:.4g}"
        )
        seeds = row["paired_seeds"] if key.startswith("paired_") else row["seeds"]
        return f"{text} {FEW_SEEDS_MARK}" if key.endswith("_ci95") and seeds < MIN_SEEDS else text
    return str(value)


def short_rows(rows: list[Row], metric: str, cost: str) -> list[Row]:
    """The columns a reader starts with: seeds, final metric +- sd, the paired difference with
    random +- its 95% interval, the saving at equal metric and the cost to 95%."""

    def plus_minus(key: str, spread: str, row: Row) -> str:
        return f"{cell(key, row, cost)} +- {cell(spread, row, cost)}"

    return [
        {
            "strategy": row["strategy"],
            "seeds": row["seeds"],
            f"final_{metric}": plus_minus(f"final_{metric}", f"final_{metric}_std", row),
            "vs_random (paired, ci95)": plus_minus("paired_final_diff", "paired_final_diff_ci95", row),
            "saving_at_equal_metric": cell("saving_matched_to_random_final", row, cost),
            f"cost_to_95pct_{cost}": cell(f"cost_to_95pct_{cost}", row, cost),
        }
        for row in rows
    ]


def text_table(rows: list[Row]) -> str:
    return format_table(rows, list(rows[0]))
