"""A run killed at any point resumes to the same labelled sets and rows as an uninterrupted run."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ARGS = ["debug=tiny", "budget.cycles=3", "strategy=entropy", "train.reinit=false"]


def command(run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "alseg.cli", "run", *ARGS, f"hydra.run.dir={run_dir}"]


def env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1"}


def rows_without_timing(run_dir: Path) -> list[dict]:
    with (run_dir / "cycles.csv").open() as handle:
        return [
            {k: v for k, v in row.items() if not k.endswith("_seconds")} for row in csv.DictReader(handle)
        ]


def run_to_end(run_dir: Path) -> None:
    result = subprocess.run(command(run_dir), env=env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("kill_after", ["cycle_000.json", "cycle_001.npz"])
def test_killed_run_resumes_to_the_same_result(tmp_path: Path, kill_after: str) -> None:
    reference = tmp_path / "reference"
    run_to_end(reference)

    interrupted = tmp_path / "interrupted"
    process = subprocess.Popen(
        command(interrupted), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    marker = interrupted / "state" / kill_after
    deadline = time.monotonic() + 300
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert marker.exists(), "the run ended or stalled before the kill point"
    assert not (interrupted / "state" / "cycle_003.json").exists(), "killed too late to test resume"

    run_to_end(interrupted)
    assert rows_without_timing(interrupted) == rows_without_timing(reference)
    for cycle in range(4):
        name = f"cycle_{cycle:03d}.npz"
        with np.load(interrupted / "state" / name) as got, np.load(reference / "state" / name) as expected:
            assert sorted(got) == sorted(expected)
            for key in expected:
                np.testing.assert_array_equal(got[key], expected[key])
    leftovers = [p.name for p in interrupted.rglob(".*") if p.is_file() and p.name.startswith(".cycle")]
    assert leftovers == []


def test_a_finished_run_run_again_changes_nothing(run_tiny, make_cfg, tmp_path, caplog) -> None:
    from alseg.experiment import run

    rows, run_dir = run_tiny("budget.cycles=1")
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    stamps = {p: p.stat().st_mtime_ns for p in before}
    caplog.set_level("INFO", logger="alseg")
    again = run(make_cfg("debug=tiny", "budget.cycles=1"), run_dir)
    assert again == rows and "is finished (2 cycles)" in caplog.text
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before
    assert {p: p.stat().st_mtime_ns for p in before} == stamps  # not even rewritten


@pytest.mark.parametrize("damaged", ["cycle_002.npz", "cycle_002.json"])
def test_a_truncated_state_file_is_discarded_and_recomputed(run_tiny, make_cfg, damaged, caplog) -> None:
    from alseg.experiment import run

    _, run_dir = run_tiny("budget.cycles=2", "train.reinit=false")
    expected = rows_without_timing(run_dir)
    path = run_dir / "state" / damaged
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    caplog.set_level("WARNING", logger="alseg")
    run(make_cfg("debug=tiny", "budget.cycles=2", "train.reinit=false"), run_dir)
    assert "cycle 2 was damaged" in caplog.text and "recomputed from cycle 1" in caplog.text
    assert rows_without_timing(run_dir) == expected


def test_nothing_intact_left_is_one_clear_error(run_tiny, make_cfg) -> None:
    from alseg.errors import AlsegError
    from alseg.experiment import run

    _, run_dir = run_tiny("budget.cycles=1")
    for name in ("cycle_000.npz", "cycle_001.npz"):
        (run_dir / "state" / name).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(AlsegError, match="no intact cycle is left"):
        run(make_cfg("debug=tiny", "budget.cycles=1"), run_dir)


def test_a_killed_run_leaves_nothing_in_the_temporary_directory(tmp_path: Path) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        command(run_dir), env={**env(), "TMPDIR": str(temporary)}, stdout=subprocess.DEVNULL
    )
    marker = run_dir / "state" / "cycle_000.json"
    deadline = time.monotonic() + 300
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert marker.exists()
    assert list(temporary.glob("*wandb*")) == []  # logger=csv: no W&B folders, even when killed
