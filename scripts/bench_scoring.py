"""Pool scoring against the bare forward pass, MC dropout head vs full vs baal.

On one synthetic pool and the default model, times: the bare model's inference over the pool
(the floor), alseg's single-pass scoring (least confidence, margin, entropy; per image and per
grid region), the MC-dropout committee of 20 with the encoder run once (head) and with the
whole network run 20 times (the naive loop), and the same heuristic (entropy of the MC mean,
per-image mean) computed by the baal library when it is installed (`pip install baal`).

    python scripts/bench_scoring.py [--pool 1000] [--size 64] [--batch-size 64] [--device cpu]
    python scripts/bench_scoring.py --device cuda --precision bf16 --channels-last   # a GPU's fast path
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from benchlib import compose_cfg, print_table, save, scoring_context, seconds

from alseg.acquisition.scoring import score_pool
from alseg.data.synthetic import synthetic_splits
from alseg.data.views import pool_batches
from alseg.model.committee import dropout_active
from alseg.regions.boxes import Grid, WholeImage
from alseg.regions.superpixels import Superpixels
from alseg.settings import build
from alseg.strategies.uncertainty import UncertaintySampling, VoteEntropySampling

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def baal_entropy(network: torch.nn.Module, batches: list[torch.Tensor], passes: int) -> np.ndarray:
    """baal's MC-dropout predictions and its Entropy heuristic (mean over pixels). baal's
    MCDropoutModule patches nn.Dropout only, so the head's Dropout2d is kept active instead."""
    from baal.active.heuristics import Entropy
    from baal.modelwrapper import ModelWrapper, TrainingArgs

    wrapper = ModelWrapper(network, TrainingArgs(use_cuda=batches[0].is_cuda))
    heuristic = Entropy(reduction="mean")
    with dropout_active(network):
        predictions = [wrapper.predict_on_batch(b, iterations=passes) for b in batches]
    return np.concatenate([heuristic.get_uncertainties(p) for p in predictions])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=1000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--passes", type=int, default=20)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--precision", choices=["32", "bf16"], default="32", help="bf16: autocast, as bf16-mixed"
    )
    parser.add_argument("--channels-last", action="store_true", help="NHWC weights (model.channels_last)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.precision == "bf16":  # every timed pass runs under autocast, as the Trainer's bf16-mixed
        autocast = torch.autocast(device.type, dtype=torch.bfloat16)
        autocast.__enter__()

    pool = synthetic_splits(train=args.pool, val=1, test=1, size=args.size).train
    networks = {  # the same weights; the head's dropout is element-wise or channel-wise
        kind: build(compose_cfg(f"model.network.head_dropout_kind={kind}").model.network, num_classes=6)
        for kind in ("element", "channel")
    }
    networks["channel"].load_state_dict(networks["element"].state_dict())
    memory = torch.channels_last if args.channels_last else torch.contiguous_format
    network = networks["element"].to(device, memory_format=memory).eval()
    networks["channel"].to(device, memory_format=memory).eval()
    side = args.size
    regions = {
        "image": WholeImage().maps(pool),
        "grid 4x4": Grid(4, 4).maps(pool),
        "superpixels": Superpixels(100).maps(pool),
    }
    everything = np.arange(args.pool)

    @torch.inference_mode()
    def bare() -> None:
        for images, _ in pool_batches(pool, everything, args.batch_size, False, ""):
            network(images.to(device))
        if device.type == "cuda":
            torch.cuda.synchronize()

    def scoring(strategy, kind_of_regions: str, dropout: str = "element", mc_mode: str = "head"):
        maps = regions[kind_of_regions]
        net = networks[dropout]
        return lambda: score_pool(
            scoring_context(pool, maps, net, strategy, args.batch_size, device, mc_mode)
        )

    base = seconds(bare, args.repeat)
    rows = [
        {"scoring": "bare forward pass", "seconds": base, "images_per_s": args.pool / base, "x_bare": 1.0}
    ]

    def add(label: str, took: float) -> None:
        rows.append(
            {"scoring": label, "seconds": took, "images_per_s": args.pool / took, "x_bare": took / base}
        )
        print_table(rows[-1:])

    for measure in ("least_confidence", "margin", "entropy"):
        add(
            f"{measure} per image",
            seconds(scoring(UncertaintySampling(measure, measure), "image"), args.repeat),
        )
    for kind_of_regions in ("grid 4x4", "superpixels"):
        add(
            f"entropy per {kind_of_regions} region",
            seconds(scoring(UncertaintySampling("entropy", "entropy"), kind_of_regions), args.repeat),
        )
    for mode, kind, label in (
        ("head", "channel", "encoder once, channel dropout"),
        ("head", "element", "encoder once, element dropout"),
        ("full", "element", "naive loop of full passes"),
    ):
        strategy = VoteEntropySampling("vote_entropy", args.passes)
        add(f"vote entropy, MC x{args.passes} ({label})", seconds(scoring(strategy, "image", kind, mode), 1))
    mc_entropy = UncertaintySampling("entropy", "entropy", mc_passes=args.passes)
    for kind in ("channel", "element"):
        took = seconds(scoring(mc_entropy, "image", kind), 1)
        add(f"entropy of MC x{args.passes} mean, alseg ({kind} dropout)", took)
    try:
        batches = [
            images.to(device) for images, _ in pool_batches(pool, everything, args.batch_size, False, "")
        ]
        add(
            f"entropy of MC x{args.passes} mean, baal",
            seconds(lambda: baal_entropy(network, batches, args.passes), 1),
        )
    except ImportError:
        print("baal is not installed (pip install baal): its row is left out")
    print(f"\nScoring {args.pool} synthetic images ({side}x{side}), batch {args.batch_size}, on {device}:")
    print_table(rows)
    variant = ("_bf16" if args.precision == "bf16" else "") + ("_channels_last" if args.channels_last else "")
    save(
        f"scoring_{device.type}{variant}", rows, pool=args.pool, size=side, batch_size=args.batch_size,
        precision=args.precision, channels_last=args.channels_last,
    )  # fmt: skip


if __name__ == "__main__":
    main()
