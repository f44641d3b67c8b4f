"""PASCAL VOC 2012 segmentation: 21 classes, 255 = border (ignored)."""

from __future__ import annotations

from pathlib import Path

from alseg.data.base import IGNORE_INDEX, DataSplits
from alseg.data.files import LabelledFiles, checked_pair, label_lookup, pixel_size, require_root
from alseg.errors import AlsegError

VOC_CLASSES = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
VOC_HINT = (
    "get PASCAL VOC 2012 (JPEGImages/, SegmentationClass/, ImageSets/Segmentation/{train,val}.txt) "
    "and pass dataset.root=/path/to/VOC2012"
)


def _voc_split(
    root: Path, split: str, size: tuple[int, int], cache_dir: str | None, limit: int | None
) -> LabelledFiles:
    listing = root / "ImageSets" / "Segmentation" / f"{split}.txt"
    if not listing.is_file():
        raise AlsegError(f"missing split file {listing}; {VOC_HINT}")
    pairs = []
    for name in listing.read_text().split():
        image, label = root / "JPEGImages" / f"{name}.jpg", root / "SegmentationClass" / f"{name}.png"
        pairs.append(checked_pair(image, label, f"{listing} lists {name}: "))
    if not pairs:
        raise AlsegError(f"split file {listing} lists no images")
    lookup = label_lookup({**{c: c for c in range(len(VOC_CLASSES))}, 255: IGNORE_INDEX})
    return LabelledFiles(
        pairs, VOC_CLASSES, size, lookup, unannotated_classes=(0,), cache_dir=cache_dir, limit=limit
    )


def voc_splits(
    root: str, size: tuple[int, int] = (256, 256), cache_dir: str | None = None, limit: int | None = None
) -> DataSplits:
    """VOC 2012 train (the pool) and val (also the test split: test labels are not public)."""
    path = require_root(root, "PASCAL VOC", VOC_HINT)
    shape = pixel_size(size)
    val = _voc_split(path, "val", shape, cache_dir, limit)
    return DataSplits(_voc_split(path, "train", shape, cache_dir, limit), val, val)
