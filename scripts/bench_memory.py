"""Peak memory of pool scoring for pools of 100, 1 000 and 10 000 synthetic images, with
whole images and with SLIC superpixels as query units; and what the superpixel maps cost.

Each (pool size, regions) pair runs in a fresh process: it renders the pool (kept as uint8
arrays), computes the region maps (SLIC: seconds and peak RSS growth, per 1 000 images),
builds the default model, warms up on a few images, then resets the peak RSS and scores
the whole pool with entropy. The scoring growth is peak minus the RSS before scoring: it
should stay flat with pool size, beyond the reduced score tables.

    python scripts/bench_memory.py [--pools 100,1000,10000] [--regions image,superpixels] [--size 64]
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


def measure(pool_size: int, size: int, batch_size: int, regions: str) -> dict:
    """Build the region maps of one pool and score it in this process; its memory figures."""
    import time

    import numpy as np
    import torch
    from benchlib import compose_cfg, scoring_context

    from alseg.acquisition.scoring import score_pool
    from alseg.data.synthetic import synthetic_splits
    from alseg.settings import build
    from alseg.strategies.uncertainty import UncertaintySampling

    pool = synthetic_splits(train=pool_size, val=1, test=1, size=size).train
    kind = build(compose_cfg(f"regions={regions}").regions)
    before_maps = rss_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    start = time.perf_counter()
    maps = kind.maps(pool)
    map_seconds = time.perf_counter() - start
    map_growth = rss_mb("VmHWM") - before_maps
    network = build(compose_cfg().model.network, num_classes=6).eval()
    strategy = UncertaintySampling("entropy", "entropy")
    device = torch.device("cpu")
    warm = scoring_context(pool, maps, network, strategy, batch_size, device)
    warm.state.labelled_at[batch_size:] = 0  # only the first batch is unlabelled
    score_pool(warm)
    context = scoring_context(pool, maps, network, strategy, batch_size, device)
    before = rss_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    start = time.perf_counter()
    scores = score_pool(context)
    score_seconds = time.perf_counter() - start
    peak = rss_mb("VmHWM")
    assert np.isfinite(scores.score[maps.exists]).all()
    return {
        "pool": pool_size,
        "regions": regions,
        "units_per_image": round(float(maps.counts.mean()), 1),
        "maps_s_per_1000": round(1000 * map_seconds / pool_size, 2),
        "maps_growth_mb": round(map_growth, 1),
        "score_s": round(score_seconds, 2),
        "rss_before_mb": round(before, 1),
        "peak_mb": round(peak, 1),
        "growth_mb": round(peak - before, 1),
        "score_tables_mb": round(sum(t.nbytes for t in scores.units.values()) / 2**20, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", default="100,1000,10000")
    parser.add_argument("--regions", default="image,superpixels")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker, args.size, args.batch_size, args.regions)))
        return
    rows = []
    for regions in args.regions.split(","):
        for pool in map(int, args.pools.split(",")):
            command = [sys.executable, __file__, "--worker", str(pool), "--size", str(args.size)]
            command += ["--batch-size", str(args.batch_size), "--regions", regions]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print_table(rows[-1:])
    print(
        f"\nPeak RSS of scoring pools of synthetic images ({args.size}x{args.size}, batch {args.batch_size}):"
    )
    print_table(rows)
    for regions in args.regions.split(","):
        mine = [row for row in rows if row["regions"] == regions]
        print(f"{regions}: scoring growth from {mine[0]['pool']} to {mine[-1]['pool']} images: "
              f"{mine[-1]['growth_mb'] - mine[0]['growth_mb']:+.1f} MB")  # fmt: skip
    save("memory", rows, size=args.size, batch_size=args.batch_size)


if __name__ == "__main__":
    main()
