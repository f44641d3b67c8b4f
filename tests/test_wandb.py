"""W&B logging runs offline without a login and writes the cycle rows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from alseg.errors import AlsegError
from alseg.loggers import has_wandb_login, read_wandb_history, read_wandb_run


def test_offline_wandb_run_records_every_cycle(
    run_tiny, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc: auto mode must choose offline
    assert not has_wandb_login()
    rows, run_dir = run_tiny("logger=wandb")
    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    history = read_wandb_history(runs[0])
    cycles = [row for row in history if "cycle" in row]
    assert [row["cost_images"] for row in cycles] == [row["cost_images"] for row in rows]
    assert [row["test_miou"] for row in cycles] == pytest.approx([row["test_miou"] for row in rows])
    curve = [row for row in history if "cycles._type" in row]
    assert len(curve) == 1 and curve[0]["cycles._type"] == curve[0]["curve_table._type"] == "table-file"
    assert curve[0]["cycles.nrows"] == len(rows)
    assert (runs[0] / "files" / curve[0]["cycles.path"]).is_file()


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
