"""Curves, the comparison table and the plot, from real tiny runs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from alseg.cli import main
from alseg.errors import AlsegError
from alseg.results.report import cost_to_reach, interval, normalised_area, reference, summary
from alseg.results.runs import group_runs, load_runs


def test_cost_to_reach_interpolates_and_says_never() -> None:
    cost, values = np.array([10.0, 20.0, 30.0]), np.array([0.5, 0.7, 0.9])
    assert cost_to_reach(cost, values, 0.8) == pytest.approx(25.0)
    assert cost_to_reach(cost, values, 0.4) == pytest.approx(10.0)
    assert math.isnan(cost_to_reach(cost, values, 0.95))


def test_normalised_area_is_the_mean_level_over_the_given_range() -> None:
    cost = np.array([0.0, 10.0, 20.0])
    assert normalised_area(cost, np.array([0.5, 0.5, 0.5]), 0, 20) == pytest.approx(0.5)
    assert normalised_area(cost, np.array([0.0, 1.0, 1.0]), 0, 20) == pytest.approx(0.75)
    # Cut to [5, 15]: 0.5 at 5, 1 from 10 on: (0.75 * 5 + 1 * 5) / 10.
    assert normalised_area(cost, np.array([0.0, 1.0, 1.0]), 5, 15) == pytest.approx(0.875)


def test_interval_is_students_t() -> None:
    # sd 0.1 over 3 seeds: t(0.975, 2) = 4.303, so 4.303 * 0.1 / sqrt(3) = 0.2484.
    assert interval(np.array([0.5, 0.6, 0.7])) == pytest.approx(0.24841, abs=1e-4)
    assert math.isnan(interval(np.array([0.5])))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """Two strategies x two seeds and a full-supervision run, tiny, in one directory."""
    from hydra import compose, initialize_config_dir

    from alseg.experiment import run
    from alseg.settings import config_dir

    root = tmp_path_factory.mktemp("sweep")
    jobs = [[f"strategy={s}", f"seed={seed}"] for s in ("random", "entropy") for seed in (0, 1)]
    jobs.append(["experiment=full_supervision"])  # stays full supervision under debug=tiny
    for number, overrides in enumerate(jobs):
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose(config_name="config", overrides=["debug=tiny", *overrides])
        run(cfg, root / str(number))
    return root


def test_summary_has_a_row_per_strategy_with_the_reference(sweep: Path) -> None:
    runs = load_runs([sweep])
    assert len(runs) == 5 and sum(run.is_full_supervision for run in runs) == 1
    ref = reference(runs, "miou")
    assert ref is not None and 0 < ref <= 1
    rows = summary(runs, "images", "miou")
    assert [row["strategy"] for row in rows] == ["entropy", "random"]
    for row in rows:
        assert row["seeds"] == 2 and row["final_cost_images"] == 12 and row["duplicates"] == 0
        assert 0 <= row["auc"] <= 1 and row["final_miou_std"] >= 0 and row["auc_range"] == "4-12"
    entropy = rows[0]
    assert entropy["paired_seeds"] == 2
    random_final = rows[1]["final_miou"]
    assert entropy["paired_final_diff"] == pytest.approx(entropy["final_miou"] - random_final)
    groups = {group.label: group for group in group_runs(runs)}
    assert groups["random"].seeds == [0, 1]


def test_plot_and_report_commands_write_their_files(sweep: Path, tmp_path: Path, capsys) -> None:
    main(["plot", str(sweep), "--cost", "clicks", "-o", str(tmp_path / "fig.png")])
    assert (tmp_path / "fig.png").stat().st_size > 1000 and (tmp_path / "fig.svg").exists()
    assert (tmp_path / "fig.pdf").read_bytes().startswith(b"%PDF")
    main(["report", str(sweep), "--metric", "dice", "-o", str(tmp_path / "table")])
    assert "final_dice" in capsys.readouterr().out
    markdown = (tmp_path / "table.md").read_text()
    assert "| entropy |" in markdown and "Full-supervision dice" in markdown
    assert (tmp_path / "table.csv").read_text().startswith("strategy,seeds,duplicates,final_dice")
    assert "Clicks counted at: 32x32 (polygons)" in markdown


def test_report_on_a_folder_without_runs_fails_clearly(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "no runs" in capsys.readouterr().err
    with pytest.raises(AlsegError, match="does not exist"):
        load_runs([tmp_path / "missing"])


def test_report_on_full_supervision_alone_says_what_is_missing(sweep: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(sweep / "4")])  # the sweep's full-supervision run
    assert exit_info.value.code == 2
    assert "all full supervision" in capsys.readouterr().err


def test_unfinished_runs_are_skipped(sweep: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(sweep / "0", copy)
    lines = (copy / "cycles.csv").read_text().splitlines()
    (copy / "cycles.csv").write_text("\n".join(lines[:-1]) + "\n")  # as if killed before its last cycle
    runs = load_runs([sweep, copy])
    assert len(runs) == 5 and all(run.path != copy for run in runs)


def test_savings_start_after_the_first_acquisition() -> None:
    cost, values = np.array([10.0, 20.0, 30.0]), np.array([0.5, 0.4, 0.45])
    assert cost_to_reach(cost, values, 0.45) == 10.0  # the initial set already lies above
    assert cost_to_reach(cost, values, 0.45, from_cycle=1) == 30.0  # acquisitions reach it at the end
    assert cost_to_reach(cost, np.array([0.5, 0.6, 0.7]), 0.45, from_cycle=1) == 20.0


def rewritten(run_dir: Path, target: Path, test_miou: list[float]) -> Path:
    """A copy of a finished run whose test mIoU per cycle is the one given."""
    import shutil

    from alseg.results.run_dir import read_rows, rows_to_csv

    shutil.copytree(run_dir, target)
    rows = read_rows(target / "cycles.csv")
    assert len(rows) == len(test_miou)
    for row, value in zip(rows, test_miou, strict=True):
        row["test_miou"] = value
    (target / "cycles.csv").write_text(rows_to_csv(rows))
    return target


def test_a_strategy_below_random_everywhere_gets_no_saving(sweep: Path, tmp_path: Path, capsys) -> None:
    """Random's curve dips (0.40, 0.35, 0.38); entropy lies below it after every acquisition
    (0.30, 0.33). From the shared initial set (0.40, above random's final) entropy would seem to
    reach random's final for free: it must get no saving at all."""
    runs = sorted(load_runs([sweep]), key=lambda run: str(run.path))
    curves = {"random": [0.40, 0.35, 0.38], "entropy": [0.40, 0.30, 0.33]}
    for run in runs:
        if not run.is_full_supervision:
            rewritten(run.path, tmp_path / "runs" / run.path.name, curves[run.strategy])
    rows = {row["strategy"]: row for row in summary(load_runs([tmp_path / "runs"]), "images", "miou")}
    entropy = rows["entropy"]
    assert entropy["ever_above_random"] == "never"
    assert math.isnan(entropy["saving_to_random_final"])  # never reached after an acquisition
    assert not entropy["saving_matched_to_random_final"] > 0
    assert entropy["paired_final_diff"] == pytest.approx(-0.05)
    main(["report", str(tmp_path / "runs"), "-o", str(tmp_path / "table")])
    printed = capsys.readouterr().out
    header = printed.splitlines()[0]
    assert len(header) < 150 and "vs_random (paired, ci95)" in header and "auc_range" not in header
    assert "(n<3)" in printed  # two seeds: the interval is flagged
    assert "(n<3)" in (tmp_path / "table.md").read_text()
    main(["report", str(tmp_path / "runs"), "--all", "-o", str(tmp_path / "table")])
    assert "auc_range" in capsys.readouterr().out.splitlines()[0]


def test_run_directories_given_as_symlinks_are_read(sweep: Path, tmp_path: Path) -> None:
    gathered = tmp_path / "gathered"
    gathered.mkdir()
    for name in ("0", "2"):
        (gathered / f"run{name}").symlink_to(sweep / name, target_is_directory=True)
    (gathered / "loop").symlink_to(gathered, target_is_directory=True)  # a cycle is walked once
    runs = load_runs([gathered])
    assert sorted(run.strategy for run in runs) == ["entropy", "random"]
    assert len(load_runs([gathered / "run0"])) == 1  # a link given directly


def test_the_report_says_when_val_is_the_test_split(sweep: Path, tmp_path: Path) -> None:
    import shutil

    from alseg.results.run_dir import read_rows, rows_to_csv

    assert load_runs([sweep])[0].rows[0]["val_is_test"] == 0  # the synthetic set has a test split
    shutil.copytree(sweep, tmp_path / "runs")
    for csv in (tmp_path / "runs").rglob("cycles.csv"):
        rows = read_rows(csv)
        csv.write_text(rows_to_csv([{**row, "val_is_test": 1} for row in rows]))
    main(["report", str(tmp_path / "runs"), "-o", str(tmp_path / "table")])
    assert "the val split is also the test split" in (tmp_path / "table.md").read_text()


def test_figures_take_labels_size_fonts_and_title(sweep: Path, tmp_path: Path) -> None:
    from alseg.results.plot import short_label

    runs = load_runs([sweep])
    assert [short_label(g) for g in group_runs(runs)] == ["entropy", "random"]
    output = tmp_path / "fig.png"
    main([
        "plot", str(sweep), "-o", str(output), "--size", "5,3", "--font-size", "12", "--title", "Tiny sweep",
        "--label", "entropy::max. entropy",
    ])  # fmt: skip
    svg = output.with_suffix(".svg").read_text()
    assert "Tiny sweep" in svg and "max. entropy (n=2)" in svg and "random (n=2)" in svg
    assert "10.8px" in svg  # the legend at 0.9 x 12 pt
    with pytest.raises(SystemExit):
        main(["plot", str(sweep), "-o", str(output), "--label", "margin::x"])
    with pytest.raises(SystemExit):
        main(["plot", str(sweep), "-o", str(output), "--size", "big"])


def test_legend_entries_name_settings_by_their_last_key() -> None:
    from alseg.results.plot import short_label
    from alseg.results.runs import RunGroup

    group = RunGroup("entropy", {"regions.segments": 200, "strategy.sampling": "power"}, [], [])
    assert short_label(group) == "entropy (segments=200, sampling=power)"
    clash = RunGroup("random", {"regions.size": 32, "dataset.splits.size": (96, 128)}, [], [])
    assert short_label(clash) == "random (regions.size=32, dataset.splits.size=96,128)"
