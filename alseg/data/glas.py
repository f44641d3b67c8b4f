"""GlaS (MICCAI 2015 gland segmentation): gland vs background, train / testA / testB."""

from __future__ import annotations

import re
from pathlib import Path

from alseg.data.base import DataSplits
from alseg.data.files import LabelledFiles, checked_pair, label_lookup, pixel_size, require_root
from alseg.errors import AlsegError

GLAS_HINT = (
    "get the MICCAI 2015 GlaS data (train_N.bmp with train_N_anno.bmp, testA_N..., testB_N..., "
    "Grade.csv) and pass dataset.root=/path/to/GlaS"
)


def _glas_split(root: Path, prefix: str, size: tuple[int, int], cache_dir: str | None) -> LabelledFiles:
    pattern = re.compile(rf"{prefix}_\d+\.bmp")
    images = sorted(p for p in root.glob(f"{prefix}_*.bmp") if pattern.fullmatch(p.name))
    if not images:
        raise AlsegError(f"{root} holds no {prefix}_N.bmp images; {GLAS_HINT}")
    pairs = []
    for image in images:
        label = image.with_name(f"{image.stem}_anno.bmp")
        pairs.append(checked_pair(image, label))
    # Annotations hold gland instance ids: any non-zero value is gland.
    lookup = label_lookup({0: 0, **dict.fromkeys(range(1, 256), 1)})
    return LabelledFiles(
        pairs, ("background", "gland"), size, lookup, unannotated_classes=(0,), cache_dir=cache_dir
    )


def glas_splits(root: str, size: tuple[int, int] = (256, 256), cache_dir: str | None = None) -> DataSplits:
    """GlaS: train (the pool), testA (val) and testB (test), gland vs background."""
    path = require_root(root, "GlaS", GLAS_HINT)
    shape = pixel_size(size)
    return DataSplits(
        *(_glas_split(path, prefix, shape, cache_dir) for prefix in ("train", "testA", "testB"))
    )
