"""The report's and the figure's arithmetic on hand-made curves with hand-computed answers."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from alseg.atomic import atomic_write_text
from alseg.cli import main
from alseg.errors import AlsegError
from alseg.results.plot import metric_range, plot_curves, strategy_colour
from alseg.results.report import summary
from alseg.results.run_dir import rows_to_csv
from alseg.results.runs import Run


def make_run(
    path: Path, strategy: str, seed: int, clicks: list[float], miou: list[float], **config: object
) -> Run:
    """A finished run: one row per cycle, the last querying nothing."""
    rows = [
        {
            "cycle": cycle,
            "strategy": strategy,
            "seed": seed,
            "cost_images": 10.0 * (cycle + 1),
            "cost_pixels": 100.0 * (cycle + 1),
            "cost_regions": 10.0 * (cycle + 1),
            "cost_clicks": cost,
            "labelled_fraction": 0.1 * (cycle + 1),
            "clicks_counted_at": "360x480 (label maps)",
            "test_miou": value,
            "queried_units": 0 if cycle == len(clicks) - 1 else 10,
        }
        for cycle, (cost, value) in enumerate(zip(clicks, miou, strict=True))
    ]
    flat = {"dataset.name": "camvid", "regions._target_": "alseg.regions.boxes.WholeImage", "seed": seed}
    return Run(path, rows, {**flat, **config})


def reference_run(path: Path, miou: float, seed: int = 0) -> Run:
    run = make_run(path, "random", seed, [1000.0], [miou])
    run.rows[0]["labelled_fraction"] = 1.0
    return run


def test_auc_is_taken_over_one_range_shared_by_every_strategy(tmp_path: Path) -> None:
    runs = [
        make_run(tmp_path / "r0", "random", 0, [100, 200, 300], [0.2, 0.4, 0.6]),
        make_run(tmp_path / "e0", "entropy", 0, [150, 250, 400], [0.3, 0.5, 0.7]),
    ]
    rows = {row["strategy"]: row for row in summary(runs, "clicks", "miou")}
    # Shared range [150, 300]. Random: 0.3 at 150, 0.4 at 200, 0.6 at 300 -> area 17.5 + 50 = 67.5.
    assert rows["random"]["auc_range"] == "150-300"
    assert rows["random"]["auc"] == pytest.approx(67.5 / 150)
    # Entropy: 0.3 at 150, 0.5 at 250, 0.5 + 0.2 / 3 at 300 -> area 40 + 26.667 = 66.667.
    assert rows["entropy"]["auc"] == pytest.approx((40 + 80 / 3) / 150)
    assert rows["entropy"]["paired_auc_diff"] == pytest.approx((40 + 80 / 3 - 67.5) / 150)


def test_cost_to_95_uses_each_seeds_whole_curve(tmp_path: Path) -> None:
    """Seed 1 reaches 95% of the reference (0.76) beyond the other seeds' last cost."""
    runs = [
        make_run(tmp_path / "a0", "entropy", 0, [100, 200, 300], [0.5, 0.7, 0.8]),
        make_run(tmp_path / "a1", "entropy", 1, [100, 200, 300, 400], [0.5, 0.6, 0.7, 0.8]),
        make_run(tmp_path / "a2", "entropy", 2, [100, 200, 300], [0.5, 0.6, 0.7]),
        reference_run(tmp_path / "full", 0.8),
    ]
    (row,) = summary(runs, "clicks", "miou")
    # Seed 0 reaches 0.76 at 200 + 0.6 * 100 = 260; seed 1 at 300 + 0.6 * 100 = 360; seed 2 never.
    assert row["reached_95pct"] == "2 of 3"
    assert row["cost_to_95pct_clicks"] == pytest.approx(310.0)
    assert row["cost_to_95pct_clicks_std"] == pytest.approx(np.std([260, 360], ddof=1))
    assert row["auc_range"] == "100-300"
    assert row["final_miou"] == pytest.approx(0.7667, abs=1e-4)  # each seed's own last cycle


def test_mixed_configs_are_separate_rows_and_duplicate_seeds_are_not_averaged(tmp_path: Path) -> None:
    grid = {"regions._target_": "alseg.regions.boxes.Grid", "regions.rows": 4}
    runs = [
        make_run(tmp_path / "e0", "entropy", 0, [100, 200], [0.3, 0.5]),
        make_run(tmp_path / "e1", "entropy", 1, [100, 200], [0.3, 0.7]),
        make_run(tmp_path / "e1_again", "entropy", 1, [100, 200], [0.3, 0.1]),
        make_run(tmp_path / "g0", "entropy", 0, [100, 200], [0.4, 0.9], **grid),
        make_run(tmp_path / "r0", "random", 0, [100, 200], [0.3, 0.4]),
        make_run(tmp_path / "r1", "random", 1, [100, 200], [0.3, 0.4]),
    ]
    rows = {row["strategy"]: row for row in summary(runs, "clicks", "miou")}
    plain = "entropy (regions=WholeImage)"  # regions.rows does not apply to it: not shown
    on_grid = "entropy (regions=Grid, regions.rows=4)"
    assert set(rows) == {plain, on_grid, "random"}
    assert rows[plain]["seeds"] == 2 and rows[plain]["duplicates"] == 1
    assert rows[plain]["final_miou"] == pytest.approx(0.6)  # e1_again is not averaged in
    assert rows[on_grid]["seeds"] == 1 and rows[on_grid]["paired_seeds"] == 1
    assert rows[plain]["paired_final_diff"] == pytest.approx(0.2)
    # 0.3 and 0.1 over two seeds: t(0.975, 1) = 12.706, sd 0.1414, so 12.706 * 0.1.
    assert rows[plain]["paired_final_diff_ci95"] == pytest.approx(12.706 * 0.1, rel=1e-3)


def test_a_strategy_saves_only_when_every_seed_of_both_reached(tmp_path: Path) -> None:
    runs = [
        make_run(tmp_path / "r0", "random", 0, [100, 200, 300], [0.5, 0.7, 0.8]),
        make_run(tmp_path / "e0", "entropy", 0, [100, 200, 300], [0.5, 0.8, 0.8]),
        reference_run(tmp_path / "full", 0.8),
    ]
    rows = {row["strategy"]: row for row in summary(runs, "clicks", "miou")}
    # Random reaches 0.76 at 260, entropy at 100 + 0.866.. * 100 = 186.7: a saving of 28.2%.
    assert rows["entropy"]["saving_vs_random"] == pytest.approx(1 - (100 + 26 / 30 * 100) / 260)
    assert math.isnan(rows["random"]["saving_vs_random"])


def test_runs_without_a_shared_cost_range_fail_clearly(tmp_path: Path) -> None:
    runs = [
        make_run(tmp_path / "r0", "random", 0, [100, 200], [0.5, 0.7]),
        make_run(tmp_path / "e0", "entropy", 0, [300, 400], [0.5, 0.8]),
    ]
    with pytest.raises(AlsegError, match="share no range of clicks"):
        summary(runs, "clicks", "miou")


def test_metric_must_exist_and_the_error_lists_what_does(tmp_path: Path) -> None:
    runs = [make_run(tmp_path / "r0", "random", 0, [100, 200], [0.5, 0.7])]
    with pytest.raises(AlsegError, match="they have: miou"):
        summary(runs, "clicks", "object_f1")


def test_figures_keep_colours_clip_bands_and_name_what_they_show(tmp_path: Path) -> None:
    assert strategy_colour("entropy") == strategy_colour("entropy") != strategy_colour("random")
    assert metric_range("miou") == (0.0, 1.0) and metric_range("object_hausdorff")[1] == math.inf
    runs = [
        make_run(tmp_path / "e0", "entropy", 0, [119, 219], [0.02, 0.5]),
        make_run(tmp_path / "e1", "entropy", 1, [121, 221], [0.30, 0.6]),
        reference_run(tmp_path / "full", 0.8),
    ]
    paths = plot_curves(runs, "clicks", "miou", "std", tmp_path / "fig.png")
    assert [p.suffix for p in paths] == [".png", ".svg", ".pdf"] and all(p.exists() for p in paths)
    svg = (tmp_path / "fig.svg").read_text()
    assert "camvid: mIoU vs clicks" in svg and "test mIoU" in svg
    assert "95% of full supervision: 0.760" in svg  # the plotted value, not the reference's


def test_the_plotted_curve_starts_at_the_first_cycle_and_its_band_is_clipped(tmp_path: Path) -> None:
    from alseg.results import plot

    runs = [
        make_run(tmp_path / "e0", "entropy", 0, [119, 219], [0.02, 0.5]),
        make_run(tmp_path / "e1", "entropy", 1, [121, 221], [0.30, 0.6]),
    ]
    drawn = {}
    real_fill = plt.Axes.fill_between

    def spy(self, x, low, high, **kwargs):
        drawn.update(x=np.asarray(x), low=np.asarray(low))
        return real_fill(self, x, low, high, **kwargs)

    plt.Axes.fill_between = spy
    try:
        plot.plot_curves(runs, "clicks", "miou", "std", tmp_path / "fig.png")
    finally:
        plt.Axes.fill_between = real_fill
    np.testing.assert_allclose(drawn["x"], [120, 220])  # the mean first cost, not a cut range
    assert drawn["low"][0] == 0.0  # 0.16 - 0.198 clipped at 0


def test_the_report_command_states_the_range_and_the_click_resolution(tmp_path: Path, capsys) -> None:
    for name, clicks, miou in (("r0", [100, 200], [0.5, 0.7]), ("e0", [150, 250], [0.5, 0.8])):
        run = make_run(tmp_path / name, "entropy" if name[0] == "e" else "random", 0, clicks, miou)
        atomic_write_text(run.path / "cycles.csv", rows_to_csv(run.rows))
    main(["report", str(tmp_path), "--cost", "clicks", "-o", str(tmp_path / "table")])
    text = (tmp_path / "table.md").read_text()
    assert "150-200 clicks" in text and "Clicks counted at: 360x480 (label maps)" in text
    with pytest.raises(SystemExit):
        main(["plot", str(tmp_path), "--metric", "object_f1", "-o", str(tmp_path / "f.png")])
    assert "they have: miou" in capsys.readouterr().err


def test_dominant_label_ceilings_are_reported_beside_the_precise_reference(tmp_path: Path) -> None:
    from alseg.results.report import ceilings, markdown, reference

    precise = reference_run(tmp_path / "full", 0.40)
    dominant = reference_run(tmp_path / "full_dominant", 0.36)
    dominant.config["budget.annotation"] = "dominant"
    curve = make_run(tmp_path / "r0", "random", 0, [100, 200], [0.30, 0.39])
    runs = [precise, dominant, curve]
    assert reference(runs, "miou") == pytest.approx(0.40)  # not the mean with the ceiling (0.38)
    assert ceilings(runs, "miou") == {"dominant": pytest.approx(0.36)}
    rows = summary(runs, "clicks", "miou")
    assert [row["strategy"] for row in rows] == ["random"]
    assert rows[0]["reached_95pct"] == "1 of 1"  # 0.39 >= 0.95 x 0.40 = 0.38
    text = markdown(rows, reference(runs, "miou"), "miou", "clicks", runs)
    assert "Full-supervision miou: 0.4; 95% of it: 0.38." in text
    assert "Full supervision with every unit labelled dominant: miou 0.36 " in text


def test_ceilings_of_different_settings_are_reported_apart_and_seeds_averaged(tmp_path: Path) -> None:
    from alseg.results.report import ceilings

    runs = []
    for name, segments, seed, miou in [("a", 200, 0, 0.34), ("b", 200, 1, 0.36), ("c", 300, 0, 0.40)]:
        run = reference_run(tmp_path / name, miou, seed)
        run.config.update({"budget.annotation": "dominant", "regions.segments": segments})
        runs.append(run)
    assert ceilings(runs, "miou") == {
        "dominant (regions.segments=200)": pytest.approx(0.35),
        "dominant (regions.segments=300)": pytest.approx(0.40),
    }


def test_precise_references_of_different_settings_are_refused(tmp_path: Path) -> None:
    from alseg.results.report import reference

    short, long = reference_run(tmp_path / "short", 0.30), reference_run(tmp_path / "long", 0.40, 1)
    short.config["train.epochs"], long.config["train.epochs"] = 10, 40
    with pytest.raises(AlsegError, match="differ in more than their seed"):
        reference([short, long], "miou")
    long.config["train.epochs"] = 10  # the same setting, another seed: averaged
    assert reference([short, long], "miou") == pytest.approx(0.35)


def test_each_strategy_is_paired_with_random_on_its_own_protocol_and_saves_to_its_final(
    tmp_path: Path,
) -> None:
    superpixels = {
        "regions._target_": "alseg.regions.superpixels.Superpixels",
        "budget.annotation": "dominant",
    }
    balanced = {**superpixels, "strategy.class_balance": True}
    runs = [
        make_run(tmp_path / "r0", "random", 0, [250, 2000, 3000], [0.3, 0.4, 0.5]),
        make_run(tmp_path / "r1", "random", 1, [250, 2000, 3000], [0.3, 0.4, 0.6]),
        make_run(tmp_path / "rs0", "random", 0, [100, 200, 300], [0.2, 0.3, 0.4], **superpixels),
        make_run(tmp_path / "es0", "entropy", 0, [100, 200, 300], [0.2, 0.5, 0.6], **balanced),
        make_run(tmp_path / "es1", "entropy", 1, [100, 200, 300], [0.2, 0.3, 0.35], **balanced),
    ]
    rows = summary(runs, "clicks", "miou")
    (entropy,) = [row for row in rows if row["strategy"].startswith("entropy")]
    # Paired with random on superpixels (final 0.4 at 300), not with random images (0.55 at 3000):
    # seed 0 reaches 0.4 at 100 + 100 * 0.2 / 0.3 = 166.7 clicks, seed 1 never does.
    assert entropy["paired_seeds"] == 1 and entropy["paired_final_diff"] == pytest.approx(0.2)
    assert entropy["reached_random_final"] == "1 of 2"
    assert entropy["cost_to_random_final_clicks"] == pytest.approx(100 + 100 * 0.2 / 0.3)
    assert math.isnan(entropy["saving_to_random_final"])  # a seed that never got there: no saving
    # Against random images alone (the only random left): their final 0.55 at 3000 clicks.
    alone = [run for run in runs if run.path.name != "rs0"]
    runs[-1].rows[-1]["test_miou"] = 0.56
    (entropy,) = [row for row in summary(alone, "clicks", "miou") if row["strategy"].startswith("entropy")]
    seed0, seed1 = 200 + 100 * 0.05 / 0.1, 200 + 100 * 0.25 / 0.26
    assert entropy["cost_to_random_final_clicks"] == pytest.approx((seed0 + seed1) / 2)
    assert entropy["saving_to_random_final"] == pytest.approx(1 - (seed0 + seed1) / 2 / 3000)


def test_a_saving_is_measured_against_where_random_first_got_there_not_where_it_stopped(
    tmp_path: Path,
) -> None:
    """Random's mean curve flattens at 0.4 by 200 clicks and stops at 300: entropy, at 0.4 only by
    250, saves a sixth of random's budget but needs a quarter more labels than random did."""
    from alseg.results.report import matched_savings, mean_curve
    from alseg.results.runs import group_runs

    runs = [
        make_run(tmp_path / "r0", "random", 0, [100, 200, 300], [0.2, 0.3, 0.4]),
        make_run(tmp_path / "r1", "random", 1, [100, 200, 300], [0.2, 0.5, 0.4]),
        make_run(tmp_path / "e0", "entropy", 0, [100, 200, 300], [0.2, 0.3, 0.5]),
        make_run(tmp_path / "e1", "entropy", 1, [100, 200, 300], [0.2, 0.3, 0.5]),
    ]
    (entropy,) = [row for row in summary(runs, "clicks", "miou") if row["strategy"] == "entropy"]
    assert entropy["cost_to_random_final_clicks"] == pytest.approx(250)
    assert entropy["saving_to_random_final"] == pytest.approx(1 - 250 / 300)
    assert entropy["random_reaches_its_final_clicks"] == pytest.approx(200)
    assert entropy["saving_matched_to_random_final"] == pytest.approx(1 - 250 / 200)
    random_group, entropy_group = sorted(group_runs(runs), key=lambda g: g.strategy != "random")
    levels = matched_savings(
        mean_curve(entropy_group, "clicks", "miou"), mean_curve(random_group, "clicks", "miou")
    )
    assert levels == [pytest.approx((0.4, 200, 250)), pytest.approx((0.4, 200, 250))]
    late = make_run(tmp_path / "e2", "entropy", 2, [100, 200, 300], [0.1, 0.1, 0.1])
    (entropy,) = [row for row in summary([*runs, late], "clicks", "miou") if row["strategy"] == "entropy"]
    # entropy's mean curve (0.17, 0.23, 0.37) never gets to 0.4: no saving
    assert math.isnan(entropy["saving_matched_to_random_final"])


def test_a_report_can_compare_on_the_validation_split(tmp_path: Path) -> None:
    from alseg.results.runs import load_runs

    for name, strategy, val in (("r0", "random", [0.5, 0.6]), ("e0", "entropy", [0.5, 0.9])):
        run = make_run(tmp_path / name, strategy, 0, [100, 200], [0.5, 0.7])
        for row, value in zip(run.rows, val, strict=True):
            row["val_miou"] = value
        atomic_write_text(run.path / "cycles.csv", rows_to_csv(run.rows))
    on_val = {row["strategy"]: row for row in summary(load_runs([tmp_path], "val"), "clicks", "miou")}
    on_test = {row["strategy"]: row for row in summary(load_runs([tmp_path]), "clicks", "miou")}
    assert on_val["entropy"]["final_miou"] == pytest.approx(0.9)
    assert on_test["entropy"]["final_miou"] == pytest.approx(0.7)
    main(
        [
            "plot",
            str(tmp_path),
            "--split",
            "val",
            "--log-cost",
            "--cost",
            "clicks",
            "-o",
            str(tmp_path / "v.png"),
        ]
    )
    svg = (tmp_path / "v.svg").read_text()
    assert "val mIoU" in svg and "10^{2}" in svg  # the split read, on a logarithmic cost axis
    test_only = make_run(tmp_path / "t0", "random", 0, [100], [0.5])
    test_only.split = "val"
    with pytest.raises(AlsegError, match="no val_miou column"):
        test_only.curve("clicks", "miou")
    with pytest.raises(AlsegError, match=r"1 of the runs were not evaluated on val \(e\.g\. .*t0\)"):
        summary([*load_runs([tmp_path], "val"), test_only], "clicks", "miou")


def test_keys_a_run_predates_take_their_defaults_and_moved_classes_match(tmp_path: Path) -> None:
    """A run from before `budget.annotation` existed, naming the regions' old module and torch's
    cross-entropy, is the same protocol as today's default run: one group, not two."""
    old = make_run(tmp_path / "e0", "entropy", 0, [100, 200], [0.3, 0.5])
    old.config["regions._target_"] = "alseg.pool.WholeImage"
    old.config["train.loss._target_"] = "torch.nn.CrossEntropyLoss"  # the default loss before class sets
    new = make_run(tmp_path / "e1", "entropy", 1, [100, 200], [0.3, 0.7], **{"budget.annotation": "precise"})
    dominant = make_run(
        tmp_path / "e2", "entropy", 2, [100, 200], [0.3, 0.6], **{"budget.annotation": "dominant"}
    )
    rows = {row["strategy"]: row for row in summary([old, new, dominant], "clicks", "miou")}
    assert set(rows) == {"entropy (budget.annotation=precise)", "entropy (budget.annotation=dominant)"}
    assert rows["entropy (budget.annotation=precise)"]["seeds"] == 2


def test_markdown_says_not_reached_for_costs_and_na_for_their_spread(tmp_path: Path) -> None:
    from alseg.results.report import markdown

    runs = [
        make_run(tmp_path / "r0", "random", 0, [100, 200], [0.3, 0.4]),
        reference_run(tmp_path / "f", 0.8),
    ]
    rows = summary(runs, "clicks", "miou")
    line = markdown(rows, 0.8, "miou", "clicks", runs).splitlines()[2].split(" | ")
    header = markdown(rows, 0.8, "miou", "clicks", runs).splitlines()[0].split(" | ")
    cells = dict(zip(header, line, strict=True))
    assert cells["cost_to_95pct_clicks"] == "not reached" and cells["cost_to_95pct_clicks_std"] == "n/a"
    assert cells["cost_to_random_final_clicks"] == "n/a"  # random is its own baseline
    (row,) = summary(runs[:1], "clicks", "miou")
    assert row["cost_to_95pct_clicks"] == "n/a"  # no reference: nothing to reach
