"""Label efficiency on CamVid: which strategy reaches high mIoU for the fewest labels.

Runs the CamVid CPU protocol (`experiment=camvid_cpu`) for each strategy and seed, one run
per process, plus one full-supervision reference run; then prints the `alseg report` table
and writes the report and plot. Finished runs are skipped and interrupted ones resume, so
the script can run in the background and be restarted. Finished runs' results (cycles.csv,
config.yaml) are copied to bench/runs/<name of --out>/, which is committed: a new checkout
skips them and the report reads them from there:

    nohup python scripts/bench_label_efficiency.py --root ../shared/data/CamVid &

Cereals queries windows with the same area budget as the image strategies (20 images' worth
of pixels per cycle) and is compared on pixels and on clicks.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from benchlib import RESULTS, save

from alseg.report import load_runs, markdown, reference, summary, text_table
from alseg.results import atomic_write_text, read_rows, rows_to_csv

HERE = Path(__file__).resolve().parent
IMAGE_PIXELS = 96 * 128  # camvid_cpu's resized image
PER_STRATEGY = {"cereals": ["budget.unit=pixels", f"budget.per_cycle={20 * IMAGE_PIXELS}"]}
WALL_FILE = "wall_seconds.txt"
FULL_SUPERVISION = ["strategy=random", "budget.initial=1.0", "budget.cycles=0", "train.epochs=40"]


ARCHIVED = ("cycles.csv", "config.yaml", "overrides.yaml", WALL_FILE)
"""What a finished run keeps in git (bench/runs/<out>/<run>/): all the report needs."""


def finished(run_dir: Path, cycles: int) -> bool:
    csv = run_dir / "cycles.csv"
    return csv.exists() and len(read_rows(csv)) == cycles + 1


def archive(run_dir: Path, archive_dir: Path) -> None:
    """Copy a finished run's results into the archive, so later checkouts need not rerun it."""
    target = archive_dir / run_dir.name
    target.mkdir(parents=True, exist_ok=True)
    for name in ARCHIVED:
        if (run_dir / name).exists():
            atomic_write_text(target / name, (run_dir / name).read_text())


def wall_seconds(run_dir: Path) -> float:
    """Wall seconds the run's processes took so far (all of them, when it was resumed)."""
    path = run_dir / WALL_FILE
    return float(path.read_text()) if path.exists() else 0.0


def run_once(run_dir: Path, overrides: list[str], cycles: int, threads: int) -> float | None:
    """Run (or resume) one experiment in its own process; its wall seconds, None if it was done."""
    if finished(run_dir, cycles):
        return None
    command = [
        str(Path(sys.executable).parent / "alseg"), "run", "experiment=camvid_cpu", "progress=false",
        f"hydra.run.dir={run_dir}", *overrides,
    ]  # fmt: skip
    env = {"OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}
    start = time.perf_counter()
    with open(run_dir.parent / f"{run_dir.name}.log", "a") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})
    took = time.perf_counter() - start
    atomic_write_text(run_dir / WALL_FILE, f"{wall_seconds(run_dir) + took:.1f}\n")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(HERE.parent.parent / "shared" / "data" / "CamVid"))
    parser.add_argument("--strategies", default="random,entropy,vote_entropy,cereals")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument(
        "--out",
        default=str(HERE.parent / "bench" / "label_efficiency"),
        help="runs folder; its name names the JSON under bench/results",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads per run")
    parser.add_argument(
        "--archive",
        default=None,
        help="finished runs' results are kept (and found) here; default bench/runs/<name of --out>",
    )
    parser.add_argument("--no-reference", action="store_true", help="skip the full-supervision run")
    parser.add_argument("--docs", help="also write report and plot under this folder (e.g. docs)")
    args = parser.parse_args()
    if not Path(args.root).is_dir():
        print(f"skipped: CamVid not found at {args.root}; pass --root /path/to/CamVid", file=sys.stderr)
        return

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    common = [f"dataset.root={Path(args.root).resolve()}"]
    planned = [] if args.no_reference else [(out / "full_supervision_seed0", 0, FULL_SUPERVISION)]
    planned += [
        (
            out / f"{strategy}_seed{seed}",
            5,
            [f"strategy={strategy}", f"seed={seed}", *PER_STRATEGY.get(strategy, [])],
        )
        for strategy in args.strategies.split(",")
        for seed in args.seeds.split(",")
    ]
    archive_dir = Path(args.archive) if args.archive else HERE.parent / "bench" / "runs" / out.name
    for run_dir, cycles, overrides in planned:
        print(f"{run_dir.name}: ", end="", flush=True)
        if finished(archive_dir / run_dir.name, cycles):
            print("archived before", flush=True)
            continue
        took = run_once(run_dir, common + overrides, cycles, args.threads)
        archive(run_dir, archive_dir)
        print("done before" if took is None else f"{took:.0f} s", flush=True)
    timings = [{"run": d.name, "wall_s": wall_seconds(archive_dir / d.name)} for d, _, _ in planned]
    print(f"\nwall seconds per run (all its processes):\n{text_table(timings)}")

    runs = load_runs([archive_dir])
    tables = {}
    for cost in ("images", "pixels", "clicks"):
        rows = summary(runs, cost, "miou")
        print(f"\nmIoU against {cost}:\n{text_table(rows)}")
        tables[cost] = rows
        if args.docs:
            prefix = Path(args.docs) / f"camvid_label_efficiency_{cost}"
            atomic_write_text(prefix.with_suffix(".csv"), rows_to_csv(rows))
            text = markdown(rows, reference(runs, "miou"), "miou", cost, runs)
            atomic_write_text(prefix.with_suffix(".md"), text)
    if args.docs:
        from alseg.plot import plot_curves

        for cost in ("pixels", "clicks"):
            plot_curves(runs, cost, "miou", "std", Path(args.docs) / f"camvid_label_efficiency_{cost}.png")
    save(out.name, tables["pixels"], by_clicks=tables["clicks"], wall_seconds=timings)
    print(f"results in {out} and {RESULTS}")


if __name__ == "__main__":
    main()
