"""Where a cycle's time goes on the synthetic default: train, evaluate, score, select, and
the loop's own bookkeeping (state and cost updates, checkpoints, logs, Trainer set-up).

The run's rows give the measured phases; bookkeeping is the rest of the run's wall time,
data generation excluded. The loop's own work (select + bookkeeping) should stay under 5%.

    python scripts/bench_cycle.py [--strategy entropy] [--tag semi] [overrides ...]
    python scripts/bench_cycle.py --tag semi train/semi=ema_teacher   # with the unlabelled pixels
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from benchlib import compose_cfg, print_table, save

from alseg.acquisition.acquire import PHASES
from alseg.experiment import Experiment

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", default="entropy")
    parser.add_argument("--tag", default="", help="suffix of the result file, e.g. semi")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. budget.cycles=2")
    args = parser.parse_args()
    cfg = compose_cfg(f"strategy={args.strategy}", "progress=false", *args.overrides)
    with tempfile.TemporaryDirectory() as directory:
        experiment = Experiment(cfg, Path(directory))
        start = time.perf_counter()
        rows = experiment.run()
        total = time.perf_counter() - start
    seconds = {phase: sum(row[f"{phase}_seconds"] for row in rows) for phase in PHASES}
    seconds["bookkeeping"] = total - sum(seconds.values())
    table = [
        {"phase": phase, "seconds": round(took, 2), "share_pct": round(100 * took / total, 2)}
        for phase, took in seconds.items()
    ]
    own = seconds["select"] + seconds["bookkeeping"]
    table.append({"phase": "loop's own (select + bookkeeping)", "seconds": round(own, 2),
                  "share_pct": round(100 * own / total, 2)})  # fmt: skip
    print(f"{len(rows)} cycles of {args.strategy} on {cfg.dataset.name}, {total:.1f} s in all:")
    print_table(table)
    name = f"cycle_{args.strategy}" + (f"_{args.tag}" if args.tag else "")
    save(name, table, cycles=len(rows), total_seconds=total, overrides=args.overrides)


if __name__ == "__main__":
    main()
