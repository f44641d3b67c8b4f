"""Seconds per acquisition of every strategy, and cheap (head) vs full MC dropout.

Each strategy runs one cycle of the default synthetic experiment (training shortened) and
reports the acquisition time of that cycle: scoring, auxiliary training (ensembles, VAE,
cost model), selection and labelling. Then a 20-member MC-dropout committee is timed with
the encoder run once (head) and with the whole network run 20 times (full), against one
plain forward pass over the same pool.

    python scripts/bench_acquisition.py [--pool 400] [--strategies random,entropy,...]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import torch
from benchlib import compose_cfg, print_table, save, seconds

from alseg.data.synthetic import synthetic_splits
from alseg.experiment import run
from alseg.model.committee import mc_dropout_committee
from alseg.settings import build, config_dir

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def acquisition_seconds(strategies: list[str], pool: int) -> list[dict]:
    rows = []
    for strategy in strategies:
        cfg = compose_cfg(
            f"strategy={strategy}",
            "budget.cycles=1",
            "train.min_steps=40",
            "train.epochs=1",
            f"dataset.splits.train={pool}",
            "progress=false",
            "evaluate_on=[val]",
        )
        with tempfile.TemporaryDirectory() as directory:
            first = run(cfg, Path(directory))[0]
        rows.append(
            {"strategy": strategy, "unit": cfg.budget.unit, "acquisition_s": first["acquisition_seconds"]}
        )
        print_table(rows[-1:])
    return rows


@torch.inference_mode()
def mc_dropout_seconds(pool: int, passes: int, batch_size: int) -> list[dict]:
    cfg = compose_cfg()
    network = build(cfg.model.network, num_classes=6).eval()
    images = torch.stack([synthetic_splits(train=pool, val=1, test=1).train.image(i) for i in range(pool)])
    batches = images.split(batch_size)

    def single() -> None:
        for batch in batches:
            network(batch).softmax(dim=1)

    def committee(mode: str):
        return lambda: [mc_dropout_committee(network, batch, passes, mode) for batch in batches]

    base = seconds(single, repeat=1)
    rows = [{"scoring": "one forward pass", "seconds": base, "x_forward": 1.0}]
    for mode in ("head", "full"):
        took = seconds(committee(mode), repeat=1)
        rows.append({"scoring": f"MC dropout x{passes} ({mode})", "seconds": took, "x_forward": took / base})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=400)
    parser.add_argument("--passes", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    default = sorted(p.stem for p in (config_dir() / "strategy").glob("*.yaml"))
    parser.add_argument("--strategies", default=",".join(default))
    args = parser.parse_args()

    mc_rows = mc_dropout_seconds(args.pool, args.passes, args.batch_size)
    print(f"\nMC dropout on {args.pool} synthetic images (64x64), batch {args.batch_size}:")
    print_table(mc_rows)
    print(f"\nSeconds per acquisition, {args.pool}-image pool:")
    strategy_rows = acquisition_seconds(args.strategies.split(","), args.pool)
    print_table(strategy_rows)
    save("acquisition", strategy_rows, mc_dropout=mc_rows, pool=args.pool)


if __name__ == "__main__":
    main()
