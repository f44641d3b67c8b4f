"""Label efficiency on CamVid: which strategy reaches high mIoU for the fewest labels.

Runs a CamVid CPU protocol (`--experiment`: camvid_cpu, the scratch U-Net-R18, or
camvid_lite0_cpu, the pretrained EfficientNet-Lite0 U-Net) for each arm (a named configuration:
a strategy with its query unit, annotation and budget, see ARMS) and seed, one run per
process; then prints the `alseg report` tables and writes the report and plot. Finished runs
are skipped and interrupted ones resume, so the script can run in the background and be
restarted. Finished runs' results (cycles.csv, config.yaml) are copied to
bench/runs/<name of --out>/, which is committed: a new checkout skips them and the report
reads them from there:

    nohup python scripts/bench_label_efficiency.py --root ../shared/data/CamVid --threads 1 &
    nohup python scripts/bench_label_efficiency.py --out bench/camvid_superpixels \
        --arms full_supervision_sp_dominant,random_sp_dominant,entropy_sp_dominant &

Cereals queries windows with the same area budget as the image strategies (20 images' worth
of pixels per cycle) and is compared on pixels and on clicks. The superpixel arms spend a
click budget.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from benchlib import RESULTS, save

from alseg.atomic import atomic_write_text
from alseg.results.report import markdown, reference, summary, text_table
from alseg.results.run_dir import read_rows, rows_to_csv
from alseg.results.runs import load_runs

HERE = Path(__file__).resolve().parent
IMAGE_PIXELS = 96 * 128  # the protocols' resized image
WALL_FILE = "wall_seconds.txt"


def full_supervision(epochs: int) -> list[str]:
    return ["strategy=random", "budget.initial=1.0", "budget.cycles=0", f"train.epochs={epochs}"]


FULL_SUPERVISION = full_supervision(40)


# The superpixel protocol: SLIC segments chosen on the validation split
# (scripts/superpixel_labels.py); 8 500 clicks a cycle end five cycles near 10% of the clicks of
# outlining the whole pool precisely (459 225), the goal's bound.
def superpixels(segments: int) -> list[str]:
    return ["regions=superpixels", f"regions.segments={segments}", "evaluate_on=[val,test]"]


SUPERPIXELS = superpixels(200)
SUPERPIXEL_BUDGET = ["budget.unit=clicks", "budget.per_cycle=8500"]
DOMINANT = [*SUPERPIXELS, "budget.annotation=dominant"]
CLASSES = [*SUPERPIXELS, "budget.annotation=classes"]
# Mixed superpixels (top class under 70% of the area) answered ignore, still a click each: on the
# validation split this cuts wrong labels from 7.7% to 2.9% of pixels and leaves 11.7% unlabelled,
# but its ceiling (every superpixel so labelled) is lower on val than with share 0: 0.448 vs 0.470.
DOMINANT70 = [*DOMINANT, "budget.dominant_share=0.7"]
# Finer superpixels: 300 segments lift the dominant ceiling on val (0.479 against 0.470 with 200);
# the 20 initial images cost about 6 400 clicks, so 7 900 a cycle end five cycles near 10%.
DOMINANT300 = [*superpixels(300), "budget.annotation=dominant"]
SUPERPIXEL300_BUDGET = ["budget.unit=clicks", "budget.per_cycle=7900"]
# The superpixels the 0.7 share answers ignore are outlined instead (one click filling the top
# class, then cuts along the other classes' outlines): on val the whole pool costs 48% of
# precise clicks instead of 19.5%, with 2.9% of pixels wrong instead of 7.7%. The 20 initial
# images cost about 11 600 clicks, so 6 870 a cycle end five cycles near 10%.
OUTLINED70 = [*SUPERPIXELS, "budget.annotation=dominant_or_precise", "budget.dominant_share=0.7"]
OUTLINED70_BUDGET = ["budget.unit=clicks", "budget.per_cycle=6870"]
# Smaller acquisitions to the same end: ten cycles of 4 250 clicks instead of five of 8 500, so
# that each query is made by a model trained on more of what came before (on val the uncertainty
# and error arms fall behind random in the first two large cycles).
SMALL_CYCLES_BUDGET = ["budget.unit=clicks", "budget.per_cycle=4250", "budget.cycles=10"]
ARMS: dict[str, list[str]] = {
    "full_supervision": FULL_SUPERVISION,
    # as many optimizer steps as a ten-cycle curve (about 3 200; 40 epochs are 1 840): is the
    # 40-epoch reference trained out? Kept apart (--out bench/camvid_long_reference): a report
    # refuses two precise references that differ in more than their seed.
    "full_supervision_long": [*full_supervision(70), "evaluate_on=[val,test]"],
    # the ceiling of dominant labels with the same steps (in the same folder as its reference)
    "full_supervision_sp_dominant_long": [*full_supervision(70), *DOMINANT],
    "random": ["strategy=random"],
    "entropy": ["strategy=entropy"],
    "vote_entropy": ["strategy=vote_entropy"],
    # windows with the image strategies' area budget: 20 images' worth of pixels a cycle
    "cereals": ["strategy=cereals", "budget.unit=pixels", f"budget.per_cycle={20 * IMAGE_PIXELS}"],
    "full_supervision_sp_dominant": [*FULL_SUPERVISION, *DOMINANT],
    "random_sp_dominant": ["strategy=random", *DOMINANT, *SUPERPIXEL_BUDGET],
    "entropy_sp_dominant": ["strategy=entropy", *DOMINANT, *SUPERPIXEL_BUDGET],
    "entropy_sp_dominant_balanced": [
        "strategy=entropy", "strategy.class_balance=true", *DOMINANT, *SUPERPIXEL_BUDGET
    ],
    "oracle_error_sp_dominant": ["strategy=oracle_error", *DOMINANT, *SUPERPIXEL_BUDGET],
    # the upper bound counting only the wrong pixels a dominant label would fix
    "oracle_error_sp_dominant_corrected": [
        "strategy=oracle_error", "strategy.corrected=true", *DOMINANT, *SUPERPIXEL_BUDGET
    ],
    "entropy_sp_dominant_purity": ["strategy=entropy", "strategy.purity=true", *DOMINANT, *SUPERPIXEL_BUDGET],
    # each superpixel answered with the classes it holds, a click per class (partial labels)
    "full_supervision_sp_classes": [*FULL_SUPERVISION, *CLASSES],
    "random_sp_classes": ["strategy=random", *CLASSES, *SUPERPIXEL_BUDGET],
    "entropy_sp_classes": ["strategy=entropy", *CLASSES, *SUPERPIXEL_BUDGET],
    "full_supervision_sp_dominant70": [*FULL_SUPERVISION, *DOMINANT70],
    "full_supervision_sp300_dominant": [*FULL_SUPERVISION, *DOMINANT300],
    "random_sp300_dominant": ["strategy=random", *DOMINANT300, *SUPERPIXEL300_BUDGET],
    "entropy_sp300_dominant_balanced": [
        "strategy=entropy", "strategy.class_balance=true", *DOMINANT300, *SUPERPIXEL300_BUDGET
    ],
    # mixed superpixels step back: each score weighted by the superpixel's predicted purity
    "entropy_sp300_dominant_balanced_purity": [
        "strategy=entropy", "strategy.class_balance=true", "strategy.purity=true", *DOMINANT300,
        *SUPERPIXEL300_BUDGET,
    ],
    "oracle_error_sp300_dominant": ["strategy=oracle_error", *DOMINANT300, *SUPERPIXEL300_BUDGET],
    "full_supervision_sp_outlined70": [*FULL_SUPERVISION, *OUTLINED70],
    "random_sp_outlined70": ["strategy=random", *OUTLINED70, *OUTLINED70_BUDGET],
    "entropy_sp_outlined70": ["strategy=entropy", *OUTLINED70, *OUTLINED70_BUDGET],
    # clicks now differ between superpixels (1 or a cut's), so CEREALS' cost model has a choice
    "cereals_sp_outlined70": ["strategy=cereals", *OUTLINED70, *OUTLINED70_BUDGET],
    "random_sp_dominant_c10": ["strategy=random", *DOMINANT, *SMALL_CYCLES_BUDGET],
    "entropy_sp_dominant_c10": ["strategy=entropy", *DOMINANT, *SMALL_CYCLES_BUDGET],
    # draws each query in proportion to entropy instead of taking the top: a query of 4 250
    # superpixels from the top piles up near-duplicates of what the model finds hard
    "entropy_sp_dominant_c10_power": [
        "strategy=entropy", "strategy.sampling=power", *DOMINANT, *SMALL_CYCLES_BUDGET
    ],
    # the same draw on the five-cycle budget (the pretrained protocol)
    "entropy_sp_dominant_power": [
        "strategy=entropy", "strategy.sampling=power", *DOMINANT, *SUPERPIXEL_BUDGET
    ],
    "vaal": ["strategy=vaal"],
    "oracle_error_sp_dominant_corrected_c10": [
        "strategy=oracle_error", "strategy.corrected=true", *DOMINANT, *SMALL_CYCLES_BUDGET
    ],
    "random_sp_precise": ["strategy=random", *SUPERPIXELS, *SUPERPIXEL_BUDGET],
    "entropy_sp_precise": ["strategy=entropy", *SUPERPIXELS, *SUPERPIXEL_BUDGET],
}  # fmt: skip
"""Named configurations of the protocol (`experiment=...` plus these overrides)."""


ARCHIVED = ("cycles.csv", "config.yaml", "overrides.yaml", WALL_FILE)
"""What a finished run keeps in git (bench/runs/<out>/<run>/): all the report needs."""


def cycles_of(overrides: list[str]) -> int:
    """The acquisition cycles an arm runs: its `budget.cycles` override, else the protocols' 5."""
    given = [o.split("=", 1)[1] for o in overrides if o.startswith("budget.cycles=")]
    return int(given[-1]) if given else 5


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


def run_once(run_dir: Path, overrides: list[str], cycles: int, threads: int, experiment: str) -> float | None:
    """Run (or resume) one experiment in its own process; its wall seconds, None if it was done."""
    if finished(run_dir, cycles):
        return None
    command = [
        str(Path(sys.executable).parent / "alseg"), "run", f"experiment={experiment}", "progress=false",
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
    parser.add_argument(
        "--arms",
        default="full_supervision,random,entropy,vote_entropy,cereals",
        help=f"comma-separated, of: {', '.join(ARMS)}",
    )
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument(
        "--out",
        default=str(HERE.parent / "bench" / "label_efficiency"),
        help="runs folder; its name names the JSON under bench/results",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads per run")
    parser.add_argument(
        "--experiment",
        default="camvid_cpu",
        help="the protocol: camvid_cpu (scratch U-Net-R18) or camvid_lite0_cpu (pretrained Lite0)",
    )
    parser.add_argument(
        "--archive",
        default=None,
        help="finished runs' results are kept (and found) here; default bench/runs/<name of --out>",
    )
    parser.add_argument("--docs", help="also write report and plot under this folder (e.g. docs)")
    args = parser.parse_args()
    if not Path(args.root).is_dir():
        print(f"skipped: CamVid not found at {args.root}; pass --root /path/to/CamVid", file=sys.stderr)
        return

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    common = [f"dataset.root={Path(args.root).resolve()}"]
    unknown = sorted(set(args.arms.split(",")) - set(ARMS))
    if unknown:
        parser.error(f"unknown arms {unknown}; known: {', '.join(ARMS)}")
    planned = []
    for arm in args.arms.split(","):
        cycles = cycles_of(ARMS[arm])
        seeds = ["0"] if cycles == 0 else args.seeds.split(",")  # a reference: one run
        planned += [(out / f"{arm}_seed{seed}", cycles, [*ARMS[arm], f"seed={seed}"]) for seed in seeds]
    archive_dir = Path(args.archive) if args.archive else HERE.parent / "bench" / "runs" / out.name
    for run_dir, cycles, overrides in planned:
        print(f"{run_dir.name}: ", end="", flush=True)
        if finished(archive_dir / run_dir.name, cycles):
            print("archived before", flush=True)
            continue
        took = run_once(run_dir, common + overrides, cycles, args.threads, args.experiment)
        archive(run_dir, archive_dir)
        print("done before" if took is None else f"{took:.0f} s", flush=True)
    timings = [{"run": d.name, "wall_s": wall_seconds(archive_dir / d.name)} for d, _, _ in planned]
    print(f"\nwall seconds per run (all its processes):\n{text_table(timings)}")

    runs = load_runs([archive_dir])
    if all(run.is_full_supervision for run in runs):  # references alone: nothing to compare
        for run in runs:
            metrics = [f"{k} {v:.4f}" for k, v in run.rows[-1].items() if k.endswith("_miou")]
            print(f"{run.path.name}: {' '.join(metrics)}")
        return
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
        from alseg.results.plot import plot_curves

        for cost in ("pixels", "clicks"):
            plot_curves(runs, cost, "miou", "std", Path(args.docs) / f"camvid_label_efficiency_{cost}.png")
    save(out.name, tables["pixels"], by_clicks=tables["clicks"], wall_seconds=timings)
    print(f"results in {out} and {RESULTS}")


if __name__ == "__main__":
    main()
