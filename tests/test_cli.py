"""The `alseg` command as a user types it, in real subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TINY = ["debug=tiny"]


def alseg(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    return subprocess.run(
        [sys.executable, "-m", "alseg.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_help(tmp_path: Path) -> None:
    top = alseg("--help", cwd=tmp_path)
    assert top.returncode == 0 and "run" in top.stdout
    run_help = alseg("run", "--help", cwd=tmp_path)
    assert run_help.returncode == 0
    for group in ("strategy: ", "dataset: ", "budget: "):
        assert group in run_help.stdout


def test_unknown_strategy_gets_hydras_message_not_a_traceback(tmp_path: Path) -> None:
    result = alseg("run", "strategy=oracle_magic", cwd=tmp_path)
    assert result.returncode != 0
    assert "Could not find 'strategy/oracle_magic'" in result.stderr
    assert "entropy" in result.stderr  # the message lists the available options
    assert "Traceback" not in result.stderr


def test_bad_override_gets_hydras_message(tmp_path: Path) -> None:
    result = alseg("run", "budget.per_cycel=3", cwd=tmp_path)
    assert result.returncode != 0 and "per_cycel" in result.stderr and "Traceback" not in result.stderr


def test_bad_budget_gets_one_clear_line(tmp_path: Path) -> None:
    result = alseg("run", *TINY, "budget.per_cycle=500", f"hydra.run.dir={tmp_path / 'r'}", cwd=tmp_path)
    assert result.returncode == 2
    assert "unlabelled pool only holds 20 images" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.slow
def test_run_writes_the_run_directory(tmp_path: Path) -> None:
    result = alseg("run", *TINY, f"hydra.run.dir={tmp_path / 'r'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "cycle 2 of 2 | " in result.stdout + result.stderr  # the last cycle's log line
    assert (tmp_path / "r" / "cycles.csv").read_text().count("\n") == 4


def test_multirun_sweeps_every_combination(tmp_path: Path) -> None:
    result = alseg(
        "run",
        "-m",
        *TINY,
        "budget.cycles=1",
        "strategy=random,entropy",
        "seed=0,1",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted(p.parent.name for p in (tmp_path / "sweep").glob("*/cycles.csv"))
    expected = [
        f"budget.cycles=1,debug=tiny,seed={s},strategy={n}" for s in (0, 1) for n in ("entropy", "random")
    ]
    assert runs == expected


def test_a_refused_rerun_leaves_the_run_directory_untouched(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    base = [
        sys.executable,
        "-m",
        "alseg.cli",
        "run",
        "debug=tiny",
        "budget.cycles=1",
        f"hydra.run.dir={tmp_path}",
    ]
    first = subprocess.run(base, capture_output=True, text=True, timeout=300, env={**os.environ})
    assert first.returncode == 0, first.stderr[-2000:]
    assert (
        "budget.cycles=1" in (tmp_path / "overrides.yaml").read_text() and (tmp_path / "alseg.log").exists()
    )
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.rglob("*") if p.is_file()}
    refused = subprocess.run(
        [*base, "seed=3"], capture_output=True, text=True, timeout=300, env={**os.environ}
    )
    assert refused.returncode == 2 and "different config" in refused.stdout + refused.stderr
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before
