"""Sweep launchers: SLURM through submitit (composed, and run by submitit's local executor),
and parallel local runs through joblib."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir

from alseg.settings import config_dir


def compose_hydra(*overrides: str):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=True)


def test_slurm_launcher_composes_with_cluster_settings() -> None:
    cfg = compose_hydra(
        "hydra/launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.timeout_min=60"
    )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.timeout_min, launcher.mem_gb) == (
        "gpu",
        1,
        60,
        32,
    )
    assert launcher.max_num_timeout > 0  # timed-out jobs are requeued and resume


def test_local_launcher_composes() -> None:
    launcher = compose_hydra("hydra/launcher=local").hydra.launcher
    assert launcher._target_.endswith("JoblibLauncher") and launcher.n_jobs == 2


def sweep(tmp_path: Path, *launcher: str, output: list[str] | None = None) -> list[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    args = [
        "run",
        "-m",
        "debug=tiny",
        "budget.cycles=0",
        "seed=0,1",
        f"hydra.sweep.dir={tmp_path}",
        *launcher,
    ]
    result = subprocess.run(
        [sys.executable, "-m", "alseg.cli", *args], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    if output is not None:
        output.append(result.stdout + result.stderr)
    return sorted(p.parent.name for p in tmp_path.glob("*/cycles.csv"))


def test_submitit_local_executor_runs_the_sweep(tmp_path: Path) -> None:
    runs = sweep(tmp_path, "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10")
    assert len(runs) == 2 and all("seed=" in name for name in runs)


def test_joblib_runs_the_sweep_in_parallel_with_each_line_marked_by_its_job(tmp_path: Path) -> None:
    output: list[str] = []
    assert len(sweep(tmp_path, "hydra/launcher=local", output=output)) == 2
    lines = [line for line in output[0].splitlines() if "[alseg]" in line]
    for job, seed in ((0, 0), (1, 1)):
        mine = [
            line for line in lines if line.startswith(f"[job {job} budget.cycles=0,debug=tiny,seed={seed}] ")
        ]
        assert any("cycle 0 of 0" in line for line in mine), output[0][-2000:]
    assert all(line.startswith("[job ") for line in lines)  # no unmarked alseg line
