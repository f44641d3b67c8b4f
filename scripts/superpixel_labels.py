"""What dominant-class (or class-set) superpixel labels cost and lose, per SLIC setting, on one split.

For each `regions.segments` value, every superpixel of every image of the split is answered
with its dominant ground-truth class, as `budget.annotation=dominant` does (or, with
`--annotation classes`, with the classes it holds, a click each; with `--annotation
dominant_or_precise`, mixed superpixels with their exact pixels); printed per setting:
superpixels per image, their clicks as a share of outlining every image precisely (both as
the oracle counts them, at the annotation resolution), the share of known pixels labelled with
the wrong class, the share left as ignore (a superpixel whose top class covers less than
`--dominant-shares`), the share under a class set (a partial label, class answers only), the
share answered with exact pixels (dominant_or_precise only), and the
mIoU of the labels of one class against the truth (the classes present). Data
only, no training: a protocol's segment size can be chosen on the validation split with it.

    python scripts/superpixel_labels.py --root ../shared/data/CamVid --split val --segments 100 200 300
    python scripts/superpixel_labels.py --segments 200 300 --dominant-shares 0 0.5 0.7
    python scripts/superpixel_labels.py dataset.splits.size=[192,256] --segments 400 800
    python scripts/superpixel_labels.py --segments 200 --annotation classes
    python scripts/superpixel_labels.py --annotation dominant_or_precise --dominant-shares 0.5 0.7 0.9
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from benchlib import compose_cfg, print_table, save
from torchmetrics.classification import MulticlassConfusionMatrix

from alseg.data.base import IGNORE_INDEX
from alseg.labels.answers import ANSWER_MODES
from alseg.labels.ledger import CostLedger
from alseg.labels.oracle import Oracle
from alseg.labels.state import CLASS_SET_BASE, NO_CLASS, LabelState
from alseg.metrics import scores_from_confusion
from alseg.settings import build

HERE = Path(__file__).resolve().parent


def label_quality(
    split, classes: int, segments: int, dominant_share: float, annotation: str, overrides: list[str]
) -> dict[str, float | str]:
    """Every superpixel of `split` answered as `annotation` says (dominant: its dominant class,
    ignore where that covers less than `dominant_share` of it; classes: the classes covering at
    least that share): cost and label quality."""
    kind = compose_cfg(*overrides, "regions=superpixels", f"regions.segments={segments}").regions
    regions = build(kind).maps(split)
    state = LabelState(regions, split.image_size)
    oracle = Oracle(split, state, CostLedger(), annotation=annotation, dominant_share=dominant_share)
    images = np.arange(len(split))
    oracle.reveal_images(images, cycle=0)
    confusion = MulticlassConfusionMatrix(classes)
    precise, ignored, in_sets, outlined, known_pixels = 0.0, 0, 0, 0, 0
    for image in images.tolist():
        truth, label = split.target(image).ravel(), oracle.training_target(image).ravel()
        valid = truth != IGNORE_INDEX
        answered_exactly = np.flatnonzero(state.labelled[image] & (state.dominant[image] == NO_CLASS))
        exact = state.regions[image].mask(answered_exactly).ravel()
        outlined += int((valid & torch.from_numpy(exact)).sum())
        single = valid & (label < classes)
        confusion.update(label[single], truth[single])
        ignored += int((valid & (label == IGNORE_INDEX)).sum())
        in_sets += int((valid & (label >= CLASS_SET_BASE)).sum())
        known_pixels += int(valid.sum())
        precise += oracle.image_clicks(image)
    return {
        "annotation": annotation,
        "segments": segments,
        "dominant_share": dominant_share,
        "superpixels_per_image": float(regions.counts.mean()),
        "clicks_share_of_precise": oracle.ledger.spent["clicks"] / precise,
        "wrong_pixel_share": oracle.wrong_label_share(),
        "ignored_pixel_share": ignored / known_pixels,
        "class_set_pixel_share": in_sets / known_pixels,
        "outlined_pixel_share": outlined / known_pixels,
        "label_miou": scores_from_confusion(confusion.compute())["miou"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(HERE.parent.parent / "shared" / "data" / "CamVid"))
    parser.add_argument("--experiment", default="camvid_cpu")
    parser.add_argument("--split", default="val", choices=["train", "val", "test"])
    parser.add_argument("--segments", type=int, nargs="+", default=[100, 200, 300])
    parser.add_argument(
        "--dominant-shares",
        type=float,
        nargs="+",
        default=[0.0],
        help="budget.dominant_share values: a superpixel whose top class covers less is labelled ignore",
    )
    answers = [a for a in ANSWER_MODES if a != "precise"]
    parser.add_argument("--annotation", default="dominant", choices=answers)
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. dataset.splits.size=[192,256]")
    args = parser.parse_args()
    if not Path(args.root).is_dir():
        print(f"skipped: no dataset at {args.root}; pass --root", file=sys.stderr)
        return
    overrides = [f"experiment={args.experiment}", f"dataset.root={Path(args.root).resolve()}"]
    overrides += args.overrides
    data = build(compose_cfg(*overrides).dataset.splits)
    split = getattr(data, args.split)
    rows = [
        label_quality(split, data.num_classes, segments, share, args.annotation, overrides)
        for segments in args.segments
        for share in args.dominant_shares
    ]
    height, width = split.image_size
    print(f"{args.experiment}, {args.split} split ({len(split)} images at {height}x{width}):")
    print_table(rows)
    suffix = "" if args.annotation == "dominant" else f"_{args.annotation}"
    name = f"superpixel_labels_{args.experiment}_{args.split}_{height}x{width}{suffix}"
    save(name, rows, overrides=args.overrides)


if __name__ == "__main__":
    main()
