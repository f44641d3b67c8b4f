"""ISIC 2017 Part 1: skin lesion segmentation, lesion vs background."""

from __future__ import annotations

import logging
from pathlib import Path

from alseg.data.base import DataSplits
from alseg.data.files import LabelledFiles, checked_pair, label_lookup, pixel_size, require_root
from alseg.errors import AlsegError

log = logging.getLogger("alseg")

CLASS_NAMES = ("background", "lesion")
FOLDERS = {"train": "Training", "val": "Validation", "test": "Test_v2"}
HINT = (
    "get ISIC 2017 Part 1 (ISIC-2017_Training_Data/ISIC_*.jpg with "
    "ISIC-2017_Training_Part1_GroundTruth/ISIC_*_segmentation.png, and the Validation and "
    "Test_v2 folders) and pass dataset.root=/path/to/ISIC2017"
)


def _split(
    root: Path, folder: str, size: tuple[int, int], cache_dir: str | None, limit: int | None
) -> LabelledFiles:
    images_dir = root / f"ISIC-2017_{folder}_Data"
    labels_dir = root / f"ISIC-2017_{folder}_Part1_GroundTruth"
    for directory in (images_dir, labels_dir):
        if not directory.is_dir():
            raise AlsegError(f"missing folder {directory}; {HINT}")
    pairs = []
    for image in sorted(images_dir.glob("ISIC_*.jpg")):
        label = labels_dir / f"{image.stem}_segmentation.png"
        pairs.append(checked_pair(image, label))
    if not pairs:
        raise AlsegError(f"{images_dir} holds no ISIC_*.jpg images")
    return LabelledFiles(
        pairs,
        CLASS_NAMES,
        size,
        label_lookup({0: 0, 255: 1}),
        unannotated_classes=(0,),
        cache_dir=cache_dir,
        per_image_classes=(1,),  # the challenge ranks by the lesion's mean per-image Jaccard
        limit=limit,
    )


def isic2017_splits(
    root: str, size: tuple[int, int] = (128, 128), cache_dir: str | None = None, limit: int | None = None
) -> DataSplits:
    """ISIC 2017's training (the pool), validation and test splits, resized to `size` (H, W).

    Without the Test_v2 folders the validation split serves as the test split too (with a
    warning), so that a copy holding only training and validation data still runs.
    """
    path = require_root(root, "ISIC 2017", HINT)
    size = pixel_size(size)
    train, val = (_split(path, FOLDERS[name], size, cache_dir, limit) for name in ("train", "val"))
    if (path / f"ISIC-2017_{FOLDERS['test']}_Data").is_dir():
        test = _split(path, FOLDERS["test"], size, cache_dir, limit)
    else:
        log.warning("%s has no ISIC-2017_Test_v2_Data: the validation split is used as the test split", path)
        test = val
    return DataSplits(train, val, test)
