"""CamVid, the SegNet version: 11 classes at 480x360, void (11) ignored."""

from __future__ import annotations

from pathlib import Path

from alseg.data.base import IGNORE_INDEX, DataSplits
from alseg.data.files import LabelledFiles, checked_pair, label_lookup, pixel_size, require_root
from alseg.errors import AlsegError

CLASS_NAMES = (
    "sky",
    "building",
    "pole",
    "road",
    "pavement",
    "tree",
    "sign_symbol",
    "fence",
    "car",
    "pedestrian",
    "bicyclist",
)
HINT = (
    "get the SegNet version of CamVid (train/, trainannot/, val/, valannot/, test/, testannot/ "
    "and train.txt, val.txt, test.txt) and pass dataset.root=/path/to/CamVid"
)


SEGNET_PREFIX = "/SegNet/CamVid/"


def _relative(path: str) -> str:
    """A split-file path relative to the root: SegNet's lists start with /SegNet/CamVid/."""
    return path.removeprefix(SEGNET_PREFIX).lstrip("/")


def _split(
    root: Path, name: str, size: tuple[int, int], cache_dir: str | None, limit: int | None
) -> LabelledFiles:
    listing = root / f"{name}.txt"
    if not listing.is_file():
        raise AlsegError(
            f"missing split file {listing}; it lists lines like "
            f"'/SegNet/CamVid/{name}/X.png /SegNet/CamVid/{name}annot/X.png'"
        )
    pairs = []
    for number, line in enumerate(listing.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2:
            raise AlsegError(f"{listing}:{number}: expected an image path and a label path, got {line!r}")
        image, label = (root / _relative(field) for field in fields)
        pairs.append(checked_pair(image, label, f"{listing}:{number}: "))
    if not pairs:
        raise AlsegError(f"split file {listing} lists no images")
    lookup = label_lookup({**{c: c for c in range(len(CLASS_NAMES))}, 11: IGNORE_INDEX})
    return LabelledFiles(pairs, CLASS_NAMES, size, lookup, cache_dir=cache_dir, limit=limit)


def camvid_splits(
    root: str, size: tuple[int, int] = (180, 240), cache_dir: str | None = None, limit: int | None = None
) -> DataSplits:
    """CamVid's train (the pool), val and test splits, resized to `size` (H, W); the first
    `limit` images of each when given."""
    path = require_root(root, "CamVid", HINT)
    shape = pixel_size(size)
    return DataSplits(*(_split(path, name, shape, cache_dir, limit) for name in ("train", "val", "test")))
