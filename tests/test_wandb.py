"""W&B logging runs offline without a login and writes the cycle rows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from alseg.errors import AlsegError
from alseg.results.loggers import (
    has_wandb_login,
    read_wandb_config,
    read_wandb_history,
    read_wandb_run,
    read_wandb_x_axis,
    wandb_run_finished,
)


def test_offline_wandb_run_records_every_cycle(
    run_tiny, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc: auto mode must choose offline
    assert not has_wandb_login()
    rows, run_dir = run_tiny("logger=wandb")
    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and wandb_run_finished(runs[0])  # written in full when the run returns
    history = read_wandb_history(runs[0])
    cycles = [row for row in history if "cycle" in row]
    assert [row["cost_images"] for row in cycles] == [row["cost_images"] for row in rows]
    assert [row["test_miou"] for row in cycles] == pytest.approx([row["test_miou"] for row in rows])
    curve = [row for row in history if "cycles._type" in row]
    assert len(curve) == 1 and curve[0]["cycles._type"] == curve[0]["curve_table._type"] == "table-file"
    assert curve[0]["cycles.nrows"] == len(rows)
    assert (runs[0] / "files" / curve[0]["cycles.path"]).is_file()
    # Every optimizer step's training loss, on one step axis over all cycles.
    losses = [row for row in history if "train/loss" in row]
    steps = [row["train/step"] for row in losses]
    assert len(losses) == sum(int(row["train_steps"]) for row in rows) and steps == sorted(set(steps))
    assert [row["train/cycle"] for row in losses] == sorted(row["train/cycle"] for row in losses)
    assert all(row["train/loss"] > 0 for row in losses)


def test_a_file_that_is_not_a_wandb_log_is_refused(tmp_path: Path) -> None:
    (tmp_path / "run-x.wandb").write_bytes(b"not a log")
    with pytest.raises(AlsegError, match="not a W&B run file"):
        read_wandb_history(tmp_path)


def test_runs_of_a_sweep_share_a_wandb_group(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep_2026"
    command = [
        str(Path(sys.executable).parent / "alseg"), "run", "-m", "debug=tiny", "budget.cycles=1",
        "logger=wandb", "logger.mode=offline", "seed=0,1", f"hydra.sweep.dir={sweep}",
    ]  # fmt: skip
    env = {**os.environ, "HOME": str(tmp_path), "WANDB_SILENT": "true"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = sorted(sweep.glob("*/wandb/offline-run-*"))
    infos = [read_wandb_run(run) for run in runs]
    assert [info["group"] for info in infos] == ["sweep_2026", "sweep_2026"]
    names = sorted(info["name"] for info in infos)  # the overrides, as the sweep's subfolders
    assert names == sorted(run.parents[1].name for run in runs) and names[0].endswith("seed=0")


def test_a_resumed_run_logs_every_cycle_to_the_same_wandb_run_and_csv(
    run_tiny, make_cfg, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """W&B offline and the CSV logger after a resume: every cycle, one run id, the config, and
    the x-axis of the budget's unit."""
    from alseg.experiment import run
    from alseg.results.run_dir import read_rows

    monkeypatch.setenv("HOME", str(tmp_path))
    overrides = ["logger=wandb", "logger.mode=offline", "budget=clicks", "budget.per_cycle=60"]
    rows, run_dir = run_tiny(*overrides)
    for suffix in ("json", "npz"):  # as if killed before cycle 2 was committed
        (run_dir / "state" / f"cycle_002.{suffix}").unlink()
    run(make_cfg("debug=tiny", *overrides), run_dir)
    offline = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline) == 2 and len({read_wandb_run(path)["id"] for path in offline}) == 1
    cycles = [row["cycle"] for row in read_wandb_history(offline[-1]) if "cycle" in row]
    assert cycles == [0, 1, 2]
    config = read_wandb_config(offline[-1])
    assert config["budget"]["unit"] == "clicks" and config["strategy"]["name"] == "entropy"
    assert read_wandb_x_axis(offline[-1]) == "cost_clicks"
    csv_run = run_tiny("budget.cycles=2")[1]
    for suffix in ("json", "npz"):
        (csv_run / "state" / f"cycle_002.{suffix}").unlink()
    run(make_cfg("debug=tiny", "budget.cycles=2"), csv_run)
    assert [row["cycle"] for row in read_rows(csv_run / "cycles_log" / "metrics.csv")] == [0, 1, 2]
    assert len(rows) == 3


@pytest.mark.slow
def test_the_last_cycle_reaches_wandb_ten_times_under_load(
    run_tiny, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The run's last cycle was once lost in four runs on a loaded machine: ten runs beside two
    processes that keep every core busy, each read at once after it returns."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("HOME", str(tmp_path))
    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)
    ]
    try:
        for attempt in range(10):
            rows, run_dir = run_tiny("logger=wandb", f"seed={attempt}")
            (run,) = (run_dir / "wandb").glob("offline-run-*")
            cycles = [row["cycle"] for row in read_wandb_history(run) if "cycle" in row]
            assert cycles == [row["cycle"] for row in rows], f"attempt {attempt}"
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
