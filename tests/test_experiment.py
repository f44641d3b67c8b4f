"""The active-learning loop end to end on tiny synthetic runs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from alseg.errors import AlsegError
from alseg.experiment import run
from alseg.labels.ledger import COST_UNITS
from alseg.results.run_dir import read_rows

STRATEGIES = ["random", "least_confidence", "margin", "entropy"]


def labelled_at(path) -> np.ndarray:
    with np.load(path) as saved:
        return saved["labelled_at"]


def same_rows(a: list[dict], b: list[dict]) -> bool:
    """Equal rows, where NaN equals NaN (a class absent from an evaluation split)."""

    def norm(row: dict) -> dict:
        return {k: "nan" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}

    return [norm(r) for r in a] == [norm(r) for r in b]


def without_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if not k.endswith("_seconds")} for row in rows]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_each_strategy_buys_its_budget_every_cycle(run_tiny, strategy: str) -> None:
    rows, run_dir = run_tiny(f"strategy={strategy}")
    assert [row["cycle"] for row in rows] == [0, 1, 2]
    assert [row["cost_images"] for row in rows] == [4, 8, 12]
    assert [row["queried_units"] for row in rows] == [4, 4, 0]
    clicks = [row["cost_clicks"] for row in rows]
    assert clicks[0] > 0 and clicks == sorted(clicks) and len(set(clicks)) == 3
    stamps = labelled_at(run_dir / "state" / "cycle_002.npz")
    assert np.bincount(stamps[stamps >= 0].ravel()).tolist() == [4, 4, 4]
    assert same_rows(read_rows(run_dir / "cycles.csv"), rows)


def test_run_directory_holds_config_rows_state_and_checkpoint(run_tiny) -> None:
    rows, run_dir = run_tiny()
    assert (run_dir / "config.yaml").read_text().startswith("seed: 0")
    header = (run_dir / "cycles.csv").read_text().splitlines()[0].split(",")
    for column in [f"cost_{u}" for u in COST_UNITS] + [
        "labelled_fraction",
        "val_miou",
        "test_miou",
        "test_dice",
        "test_pixel_acc",
        "test_iou_spot",
        *[f"{phase}_seconds" for phase in ("train", "evaluate", "auxiliary", "score", "select")],
        "acquisition_seconds",
    ]:
        assert column in header
    last = rows[-1]
    assert last["auxiliary_seconds"] == last["score_seconds"] == last["select_seconds"] == 0  # no query
    first = rows[0]
    parts = first["auxiliary_seconds"] + first["score_seconds"] + first["select_seconds"]
    assert first["acquisition_seconds"] == pytest.approx(parts, abs=2e-3) and first["score_seconds"] > 0
    assert sorted(p.name for p in (run_dir / "state").iterdir()) == [
        f"cycle_00{c}.{ext}" for c in range(3) for ext in ("json", "npz")
    ]
    # The latest two: a damaged last cycle is recomputed from the one before.
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["cycle_001.pt", "cycle_002.pt"]
    assert (run_dir / "cycles_log" / "metrics.csv").exists()
    assert rows[-1]["labelled_fraction"] == pytest.approx(12 / 24)


def test_same_seed_same_queries_and_metrics(run_tiny) -> None:
    (rows_a, dir_a), (rows_b, dir_b) = run_tiny("strategy=entropy"), run_tiny("strategy=entropy")
    assert same_rows(without_timing(rows_a), without_timing(rows_b))
    np.testing.assert_array_equal(
        labelled_at(dir_a / "state/cycle_002.npz"), labelled_at(dir_b / "state/cycle_002.npz")
    )
    _, dir_c = run_tiny("strategy=entropy", "seed=1")
    assert not np.array_equal(
        labelled_at(dir_a / "state/cycle_000.npz"), labelled_at(dir_c / "state/cycle_000.npz")
    )


def test_strategies_with_one_seed_share_the_initial_set(run_tiny) -> None:
    _, dir_a = run_tiny("strategy=random", "budget.cycles=1")
    _, dir_b = run_tiny("strategy=margin", "budget.cycles=1")
    a, b = labelled_at(dir_a / "state/cycle_000.npz"), labelled_at(dir_b / "state/cycle_000.npz")
    np.testing.assert_array_equal(a == 0, b == 0)


def test_continued_training_loads_the_previous_cycle(run_tiny) -> None:
    rows_fresh, _ = run_tiny("train.reinit=true")
    rows_continued, _ = run_tiny("train.reinit=false")
    assert rows_fresh[0]["test_miou"] == rows_continued[0]["test_miou"]
    assert rows_fresh[1]["test_miou"] != rows_continued[1]["test_miou"]


def test_cosine_schedule_trains_too(run_tiny) -> None:
    constant, _ = run_tiny("train.lr_schedule=constant", "budget.cycles=0")
    cosine, run_dir = run_tiny("train.lr_schedule=cosine", "budget.cycles=0")
    assert constant[0]["test_miou"] != cosine[0]["test_miou"]
    assert (run_dir / "train" / "cycle_000" / "metrics.csv").exists()


def test_evaluating_one_split_only_reports_that_split(run_tiny, caplog) -> None:
    caplog.set_level("INFO", logger="alseg")
    rows, _ = run_tiny("evaluate_on=[test]", "budget.cycles=0")
    assert "test_miou" in rows[0] and "val_miou" not in rows[0]
    assert "test_dice" in caplog.text


def test_total_budget_ends_the_run(run_tiny) -> None:
    rows, _ = run_tiny("budget.cycles=null", "budget.total=10", "budget.per_cycle=4")
    assert [row["cost_images"] for row in rows] == [4, 8, 10]


def test_click_budget_is_spent_in_clicks(run_tiny) -> None:
    rows, _ = run_tiny("budget=clicks", "budget.initial=4", "budget.per_cycle=60", "budget.cycles=2")
    spent = np.diff([row["cost_clicks"] for row in rows])
    assert (spent >= 60).all() and (spent < 60 + 60).all()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["budget.per_cycle=0"], "budget.per_cycle=0 is not valid"),
        (["budget.per_cycle=-5"], "budget.per_cycle=-5 is not valid"),
        (["budget.per_cycle=100"], "unlabelled pool only holds 20 images"),
        (["budget.cycles=10"], "asks for 40 images"),
        (["budget.initial=50"], "pool holds 24"),
        (["budget.total=2"], "below the cost of the initial set"),
        (["budget.unit=dollars"], "budget.unit='dollars' is not valid: it must be one of"),
        (["budget.cycles=null"], "set budget.cycles or budget.total"),
        (["strategy.reduction=median"], "unknown reduction 'median'"),
        (["strategy.measure=variance"], "unknown uncertainty measure 'variance'"),
        (["train.lr_schedule=linear"], "train.lr_schedule='linear' is not valid"),
        (["model.network.encoder_name=resnet7"], "Wrong encoder name"),
    ],
)
def test_bad_input_gets_a_clear_error(make_cfg, tmp_path, overrides, message) -> None:
    strategy = ["strategy=entropy"]
    with pytest.raises(AlsegError, match=message):
        run(make_cfg("debug=tiny", *strategy, *overrides), tmp_path / "run")


def test_resuming_with_another_config_is_refused(make_cfg, tmp_path) -> None:
    run(make_cfg("debug=tiny", "budget.cycles=1"), tmp_path)
    with pytest.raises(AlsegError, match=r"different config .*; seed: 0 -> 3\)"):
        run(make_cfg("debug=tiny", "budget.cycles=1", "seed=3"), tmp_path)


@pytest.mark.parametrize("strategy", ["entropy", "vote_entropy"])
def test_bf16_and_channels_last_train_evaluate_and_score(run_tiny, strategy: str) -> None:
    full, _ = run_tiny(f"strategy={strategy}", "budget.cycles=1")
    mixed, run_dir = run_tiny(
        f"strategy={strategy}", "budget.cycles=1", "trainer.precision=bf16-mixed", "model.channels_last=true"
    )
    assert [row["cost_images"] for row in mixed] == [row["cost_images"] for row in full]
    assert all(0 < row["test_miou"] <= 1 for row in mixed)
    assert mixed[0]["test_miou"] != full[0]["test_miou"]  # the lower precision really ran
    weights = torch.load(run_dir / "checkpoints" / "cycle_001.pt", weights_only=True)
    assert weights["encoder.conv1.weight"].is_contiguous(memory_format=torch.channels_last)


def test_the_console_says_what_runs_and_result_files_follow_the_umask(run_tiny, caplog) -> None:
    import os

    caplog.set_level("INFO", logger="alseg")
    previous = os.umask(0o022)
    try:
        _, run_dir = run_tiny("budget.cycles=1")
    finally:
        os.umask(previous)
    assert f"run directory: {run_dir}" in caplog.text
    assert "pool 24 / val 24 / test 24 images at 32x32; clicks counted at 32x32 (polygons)" in caplog.text
    assert "strategy entropy, regions WholeImage (1 per image)" in caplog.text
    assert "cycle 0 of 1 |" in caplog.text and "cycle 1 of 1 |" in caplog.text
    for name in ("cycles.csv", "config.yaml", "state/cycle_001.npz", "checkpoints/cycle_001.pt"):
        assert (run_dir / name).stat().st_mode & 0o777 == 0o644, name


def test_an_impossible_budget_stops_before_region_maps_are_built(make_cfg, tmp_path, monkeypatch) -> None:
    from alseg.regions.superpixels import Superpixels

    def never(*_args, **_kwargs):
        raise AssertionError("region maps were built before the budget was checked")

    monkeypatch.setattr(Superpixels, "maps", never)
    for overrides, message in (
        (["budget.per_cycle=100"], "only holds 20 images"),
        (["budget.initial=50"], "pool holds 24"),
    ):
        with pytest.raises(AlsegError, match=message):
            run(make_cfg("debug=tiny", "regions=superpixels", *overrides), tmp_path / "run")
