"""Crash soak: kill a run at random moments, resume it each time, and check that it ends
identical to an uninterrupted run (cycles.csv without timings, every state file).

    python scripts/crash_soak.py [--kills 15] [--seed 0] [--out bench/crash_soak]

Each trial starts the same tiny run in a fresh directory, kills it with SIGKILL after a random
delay (up to the uninterrupted run's wall time), then keeps killing the resumed process at
random delays until the run has finished once, and compares. Prints one row per trial and
writes the JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from benchlib import print_table, save

ARGS = ["debug=tiny", "budget.cycles=3", "strategy=entropy", "train.reinit=false", "progress=false"]


def command(run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "alseg.cli", "run", *ARGS, f"hydra.run.dir={run_dir}"]


def run_for(run_dir: Path, seconds: float | None) -> bool:
    """Run (or resume) the experiment; kill it after `seconds`. Whether it finished by itself."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    process = subprocess.Popen(command(run_dir), env=env, **quiet)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        return False
    if process.returncode != 0:
        raise RuntimeError(f"{run_dir}: the run failed with exit status {process.returncode}")
    return True


def rows_without_timing(run_dir: Path) -> list[dict]:
    with (run_dir / "cycles.csv").open() as handle:
        rows = csv.DictReader(handle)
        return [{k: v for k, v in row.items() if not k.endswith("_seconds")} for row in rows]


def same_states(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in (a / "state").glob("*.npz"))
    if names != sorted(p.name for p in (b / "state").glob("*.npz")):
        return False
    for name in names:
        with np.load(a / "state" / name) as x, np.load(b / "state" / name) as y:
            # NaN marks an unpriced unit: equal where both are NaN.
            if sorted(x) != sorted(y) or any(
                not np.array_equal(x[k], y[k], equal_nan=x[k].dtype.kind == "f") for k in x
            ):
                return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=15, help="trials, each killed at least once")
    parser.add_argument("--seed", type=int, default=0)
    default_out = Path(__file__).resolve().parent.parent / "bench" / "crash_soak"
    parser.add_argument("--out", default=str(default_out))
    args = parser.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    run_for(out / "reference", None)
    wall = time.perf_counter() - start
    expected = rows_without_timing(out / "reference")
    rng = random.Random(args.seed)
    rows = []
    trial = 0
    while trial < args.kills:
        run_dir = out / f"trial_{trial:02d}"
        delays: list[float] = []
        while True:  # killed at random moments (start-up included) up to 3 times, then left to finish
            delay = rng.uniform(0.5, 0.9 * wall) if len(delays) < 3 else None
            began = time.perf_counter()
            if run_for(run_dir, delay):
                break
            delays.append(round(float(delay or 0), 2))
        if not delays:  # it finished before the first kill: the machine got faster; try again
            wall = time.perf_counter() - began
            shutil.rmtree(run_dir)
            continue
        identical = rows_without_timing(run_dir) == expected and same_states(run_dir, out / "reference")
        rows.append({"trial": trial, "kills": len(delays), "kill_after_s": delays, "identical": identical})
        print(rows[-1], flush=True)
        trial += 1
    print_table(rows)
    print(
        f"{sum(r['identical'] for r in rows)} of {len(rows)} trials ended identical to the uninterrupted run"
    )
    save("crash_soak", rows, uninterrupted_wall_s=round(wall, 1), args=ARGS)


if __name__ == "__main__":
    main()
