"""Peak memory of pool scoring for pools of 100, 1 000 and 10 000 synthetic images.

Each pool size runs in a fresh process: it renders the pool (kept as uint8 arrays), builds
the default model, warms up on a few images, then resets the peak RSS and scores the whole
pool with entropy per image and per grid region. The growth is peak minus the RSS before
scoring: it should stay flat with pool size, beyond the reduced score tables.

    python scripts/bench_memory.py [--pools 100,1000,10000] [--size 64]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from benchlib import print_table, save

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def rss_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak since the last reset) of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def measure(pool_size: int, size: int, batch_size: int) -> dict:
    """Score one pool in this process and return its memory figures."""
    import numpy as np
    import torch
    from benchlib import compose_cfg

    from alseg.data.synthetic import synthetic_splits
    from alseg.experiment import build
    from alseg.pool import Grid, LabelState
    from alseg.scoring import score_pool
    from alseg.strategies.uncertainty import UncertaintySampling

    pool = synthetic_splits(train=pool_size, val=1, test=1, size=size).train
    network = build(compose_cfg().model.network, num_classes=6).eval()
    state = LabelState(pool_size, Grid(4, 4).boxes(size, size), (size, size))
    strategy = UncertaintySampling("entropy", "entropy")
    warm = LabelState(pool_size, state.boxes, (size, size))
    warm.labelled_at[batch_size:] = 0  # only the first batch is unlabelled
    score_pool(network, pool, warm, strategy, batch_size, torch.device("cpu"), False)
    before = rss_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    scores = score_pool(network, pool, state, strategy, batch_size, torch.device("cpu"), False)
    peak = rss_mb("VmHWM")
    assert np.isfinite(scores.score).all()
    return {
        "pool": pool_size,
        "rss_before_mb": round(before, 1),
        "peak_mb": round(peak, 1),
        "growth_mb": round(peak - before, 1),
        "score_tables_mb": round(sum(t.nbytes for t in scores.units.values()) / 2**20, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", default="100,1000,10000")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker, args.size, args.batch_size)))
        return
    rows = []
    for pool in map(int, args.pools.split(",")):
        command = [sys.executable, __file__, "--worker", str(pool), "--size", str(args.size)]
        command += ["--batch-size", str(args.batch_size)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print_table(rows[-1:])
    print(
        f"\nPeak RSS of scoring pools of synthetic images ({args.size}x{args.size}, batch {args.batch_size}):"
    )
    print_table(rows)
    print(f"growth from {rows[0]['pool']} to {rows[-1]['pool']} images: "
          f"{rows[-1]['growth_mb'] - rows[0]['growth_mb']:+.1f} MB")  # fmt: skip
    save("memory", rows, size=args.size, batch_size=args.batch_size)


if __name__ == "__main__":
    main()
