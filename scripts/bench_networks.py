"""Seconds per training step and per CamVid CPU epoch of the networks, measured back to back in
one process (same machine load for all): batch 8 at 96 x 128, AdamW, one thread by default.

    python scripts/bench_networks.py [--models unet,segnet] [--steps 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch
from benchlib import save
from hydra import compose, initialize_config_dir

from alseg.settings import build, config_dir

CAMVID_POOL = 367  # images in an epoch of the CamVid protocols
BATCH, SIZE, CLASSES = 8, (96, 128), 11


def step_seconds(model: str, steps: int) -> tuple[float, int]:
    """Mean seconds of a training step (after two warm-up steps) and the parameter count."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"model={model}"])
    torch.manual_seed(0)
    network = build(cfg.model.network, num_classes=CLASSES).train()
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3)
    images, targets = torch.rand(BATCH, 3, *SIZE), torch.randint(0, CLASSES, (BATCH, *SIZE))
    for step in range(steps + 2):
        if step == 2:
            start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(network(images), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps, sum(p.numel() for p in network.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="unet,segnet,fcn8s,unet_lite0")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    per_epoch = -(-CAMVID_POOL // BATCH)
    rows = []
    print(f"{'model':<14}{'parameters':>12}{'s/step':>9}{'s/epoch':>9}")
    for model in args.models.split(","):
        seconds, parameters = step_seconds(model, args.steps)
        epoch = seconds * per_epoch
        rows.append({"model": model, "parameters": parameters, "step_s": seconds, "epoch_s": epoch})
        print(f"{model:<14}{parameters:>12,}{seconds:>9.3f}{seconds * per_epoch:>9.1f}")
    save("networks", rows, threads=args.threads, batch=BATCH, size=list(SIZE))


if __name__ == "__main__":
    main()
