"""GlaS (MICCAI 2015 gland segmentation): gland vs background, train / testA / testB."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from alseg.data.base import DataSplits
from alseg.data.files import (
    LabelledFiles,
    checked_pair,
    label_lookup,
    open_image,
    pixel_size,
    require_root,
)
from alseg.errors import AlsegError

GLAS_HINT = (
    "get the MICCAI 2015 GlaS data (train_N.bmp with train_N_anno.bmp, testA_N..., testB_N..., "
    "Grade.csv) and pass dataset.root=/path/to/GlaS"
)


class GlasFiles(LabelledFiles):
    """GlaS images whose annotations also give the gland instances for the object-level F1."""

    def instances(self, index: int) -> np.ndarray:
        """Instance ids (0: background) of one image, resized to `image_size` (nearest)."""
        height, width = self.image_size
        annotation = open_image(self.pairs[index][1], "").resize((width, height), Image.Resampling.NEAREST)
        return np.asarray(annotation, dtype=np.int64)


def _glas_split(
    root: Path, prefix: str, size: tuple[int, int], cache_dir: str | None, limit: int | None
) -> GlasFiles:
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
    return GlasFiles(
        pairs,
        ("background", "gland"),
        size,
        lookup,
        unannotated_classes=(0,),
        cache_dir=cache_dir,
        limit=limit,
    )


def glas_splits(
    root: str, size: tuple[int, int] = (256, 256), cache_dir: str | None = None, limit: int | None = None
) -> DataSplits:
    """GlaS: train (the pool), testA (val) and testB (test), gland vs background."""
    path = require_root(root, "GlaS", GLAS_HINT)
    shape = pixel_size(size)
    return DataSplits(
        *(_glas_split(path, prefix, shape, cache_dir, limit) for prefix in ("train", "testA", "testB"))
    )
