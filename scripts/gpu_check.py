"""The prepared GPU check: one command, under 8 minutes on one GPU, one JSON naming the card.

1. Pool scoring (scripts/bench_scoring.py) on CUDA in float32, then with bf16 autocast and
   channels_last: the GPU fast path against the plain one, on the same pool.
2. One short CamVid curve at the original 360 x 480 with the pretrained Lite0 U-Net
   (experiment=camvid_lite0_cpu, trainer=gpu: bf16-mixed, channels_last), two acquisitions
   of entropy-ranked superpixels with dominant labels; skipped, and said, without CamVid.

    python scripts/gpu_check.py [--root ../shared/data/CamVid] [--out bench/results]

Writes bench/results/gpu_check_<card>.json. On a machine without CUDA it stops at once.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from benchlib import RESULTS, machine

from alseg.results.run_dir import read_rows

HERE = Path(__file__).resolve().parent
CURVE = (
    "experiment=camvid_lite0_cpu", "trainer=gpu", "model.channels_last=true", "dataset.splits.size=[360,480]",
    "strategy=entropy", "regions=superpixels", "regions.segments=400", "budget.annotation=dominant",
    "budget.unit=clicks", "budget.per_cycle=8500", "budget.cycles=2", "train.batch_size=16",
    "scoring.batch_size=32", "progress=false", "logger=csv",
)  # fmt: skip


def scoring(precision: str, channels_last: bool, timeout: float) -> list[dict]:
    """One run of bench_scoring on CUDA; its rows."""
    command = [sys.executable, str(HERE / "bench_scoring.py"), "--device", "cuda", "--pool", "2000"]
    command += ["--size", "128", "--batch-size", "128", "--precision", precision, "--repeat", "2"]
    command += ["--channels-last"] if channels_last else []
    subprocess.run(command, check=True, timeout=timeout)
    variant = ("_bf16" if precision == "bf16" else "") + ("_channels_last" if channels_last else "")
    return json.loads((RESULTS / f"scoring_cuda{variant}.json").read_text())["rows"]


def curve(root: Path, timeout: float) -> dict:
    """The short CamVid curve: its cycles.csv rows and wall seconds, or why it was skipped."""
    if not root.is_dir():
        return {"skipped": f"no CamVid at {root}; pass --root"}
    with tempfile.TemporaryDirectory() as folder:
        command = [str(Path(sys.executable).parent / "alseg"), "run", *CURVE, f"dataset.root={root}"]
        command.append(f"hydra.run.dir={folder}/run")
        start = time.perf_counter()
        done = subprocess.run(command, timeout=timeout, capture_output=True, text=True)
        took = time.perf_counter() - start
        if done.returncode != 0:
            return {"failed": done.stderr[-2000:], "wall_s": took}
        rows = read_rows(Path(folder) / "run" / "cycles.csv")
    keep = ("cycle", "cost_clicks", "labelled_fraction", "val_miou", "test_miou", "train_seconds")
    return {"overrides": list(CURVE), "wall_s": took, "rows": [{k: r.get(k) for k in keep} for r in rows]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(HERE.parent.parent / "shared" / "data" / "CamVid"))
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device here; run it on a GPU machine")
    card = torch.cuda.get_device_name(0)
    start = time.perf_counter()
    result: dict = {"card": card, "machine": machine()}
    result["scoring_fp32"] = scoring("32", False, timeout=150)
    result["scoring_bf16_channels_last"] = scoring("bf16", True, timeout=150)
    result["camvid_curve_360x480"] = curve(
        Path(args.root), timeout=max(60.0, 450 - (time.perf_counter() - start))
    )
    result["wall_s"] = time.perf_counter() - start
    slug = re.sub(r"[^a-z0-9]+", "_", card.lower()).strip("_")
    path = Path(args.out) / f"gpu_check_{slug}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {path} ({result['wall_s']:.0f} s on {card})")


if __name__ == "__main__":
    main()
