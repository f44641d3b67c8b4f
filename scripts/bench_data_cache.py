"""Epoch time of CamVid's training split with decoded-image caching against without.

One epoch reads every training image and label as training does (decode PNG, resize). Without
a cache every epoch decodes again; the memory cache (default) and the disk cache
(`dataset.splits.cache_dir`) decode once, in the first epoch, and read arrays after.

    python scripts/bench_data_cache.py [--root ../shared/data/CamVid] [--size 96 128]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from benchlib import print_table, save

from alseg.data.camvid import camvid_splits
from alseg.data.files import LabelledFiles

HERE = Path(__file__).resolve().parent


def epoch_seconds(dataset: LabelledFiles, read=None) -> float:
    """Seconds to read every (image, label) pair once."""
    start = time.perf_counter()
    for index in range(len(dataset)):
        if read is None:
            dataset.image(index), dataset.target(index)
        else:
            read(index)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(HERE.parent.parent / "shared" / "data" / "CamVid"))
    parser.add_argument("--size", type=int, nargs=2, default=[96, 128], metavar=("H", "W"))
    args = parser.parse_args()
    if not Path(args.root).is_dir():
        print(f"skipped: CamVid not found at {args.root}; pass --root /path/to/CamVid", file=sys.stderr)
        return

    rows = []
    uncached = camvid_splits(args.root, size=args.size).train
    took = epoch_seconds(uncached, read=uncached._decode)
    rows.append({"cache": "none (decode every epoch)", "epoch_1_s": took, "epoch_2_s": took})
    memory = camvid_splits(args.root, size=args.size).train
    rows.append({"cache": "memory", "epoch_1_s": epoch_seconds(memory), "epoch_2_s": epoch_seconds(memory)})
    with tempfile.TemporaryDirectory() as directory:
        disk = camvid_splits(args.root, size=args.size, cache_dir=directory).train
        first = epoch_seconds(disk)
        fresh = camvid_splits(args.root, size=args.size, cache_dir=directory).train  # a new process's view
        rows.append({"cache": "disk", "epoch_1_s": first, "epoch_2_s": epoch_seconds(fresh)})
    for row in rows:
        row["speedup_epoch_2"] = rows[0]["epoch_2_s"] / row["epoch_2_s"]
    print(f"CamVid train ({len(memory)} images) resized to {args.size[0]}x{args.size[1]}:")
    print_table(rows)
    save("data_cache", rows, images=len(memory), size=args.size)


if __name__ == "__main__":
    main()
