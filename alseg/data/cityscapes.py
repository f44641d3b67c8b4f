"""Cityscapes (gtFine) and BDD100K semantic segmentation: the 19 Cityscapes train classes."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from alseg.data.base import IGNORE_INDEX, DataSplits, Polygon
from alseg.data.files import LabelledFiles, checked_pair, label_lookup, pixel_size, require_root
from alseg.errors import AlsegError

log = logging.getLogger("alseg")

TRAIN_CLASSES = (
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
)
# Cityscapes labelIds of the 19 train classes, in train-id order; every other id is ignored.
TRAIN_LABEL_IDS = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)
CITYSCAPES_LOOKUP = label_lookup(
    {
        **dict.fromkeys(range(34), IGNORE_INDEX),
        **{label: train for train, label in enumerate(TRAIN_LABEL_IDS)},
    }
)
TRAIN_ID_LOOKUP = label_lookup({**{c: c for c in range(19)}, 255: IGNORE_INDEX})
CITYSCAPES_HINT = (
    "get Cityscapes (leftImg8bit/{train,val}/<city>/*_leftImg8bit.png and "
    "gtFine/{train,val}/<city>/*_gtFine_labelIds.png) and pass dataset.root=/path/to/cityscapes"
)
BDD_HINT = (
    "get BDD100K 10k images (images/10k/{train,val}/*.jpg) and semantic masks "
    "(labels/sem_seg/masks/{train,val}/*.png) and pass dataset.root=/path/to/bdd100k"
)


def class_of(label: str) -> int:
    """Train id of a polygon's label ("car", "cargroup", ...), IGNORE_INDEX for the rest."""
    name = label.removesuffix("group")
    return TRAIN_CLASSES.index(name) if name in TRAIN_CLASSES else IGNORE_INDEX


def cityscapes_polygons(path: Path) -> list[Polygon]:
    """Every object of a *_gtFine_polygons.json: an annotator clicked each of its vertices."""
    try:
        objects = json.loads(path.read_text())["objects"]
        return [(class_of(o["label"]), np.asarray(o["polygon"], dtype=np.float32)) for o in objects]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise AlsegError(f"{path} is not a Cityscapes polygons file ({error!r})") from None


def scalabel_polygons(frame: dict) -> list[Polygon]:
    """Every poly2d of a Scalabel frame (BDD100K): its vertices, Bezier control points included."""
    return [
        (class_of(label.get("category", "")), np.asarray(poly["vertices"], dtype=np.float32))
        for label in frame.get("labels") or []
        for poly in label.get("poly2d") or []
    ]


def _cityscapes_split(
    root: Path, split: str, size: tuple[int, int], cache_dir: str | None, limit: int | None
) -> LabelledFiles:
    images = sorted((root / "leftImg8bit" / split).glob("*/*_leftImg8bit.png"))
    if not images:
        raise AlsegError(f"no images in {root / 'leftImg8bit' / split}/<city>/; {CITYSCAPES_HINT}")
    pairs, polygon_files = [], []
    for image in images:
        stem = image.name.removesuffix("_leftImg8bit.png")
        label_dir = root / "gtFine" / split / image.parent.name
        label = label_dir / f"{stem}_gtFine_labelIds.png"
        pairs.append(checked_pair(image, label))
        polygon_files.append(label_dir / f"{stem}_gtFine_polygons.json")

    def polygons(index: int) -> list[Polygon] | None:
        path = polygon_files[index]
        return cityscapes_polygons(path) if path.is_file() else None

    return LabelledFiles(
        pairs,
        TRAIN_CLASSES,
        size,
        CITYSCAPES_LOOKUP,
        polygon_source=polygons,
        cache_dir=cache_dir,
        limit=limit,
    )


def cityscapes_splits(
    root: str,
    size: tuple[int, int] = (256, 512),
    test_split: str = "val",
    cache_dir: str | None = None,
    limit: int | None = None,
) -> DataSplits:
    """Cityscapes train (the pool), val, and `test_split` (val: the test labels are not public).

    Click costs come from *_gtFine_polygons.json beside the labels when present.
    """
    path = require_root(root, "Cityscapes", CITYSCAPES_HINT)
    shape = pixel_size(size)
    val = _cityscapes_split(path, "val", shape, cache_dir, limit)
    test = val if test_split == "val" else _cityscapes_split(path, test_split, shape, cache_dir, limit)
    return DataSplits(_cityscapes_split(path, "train", shape, cache_dir, limit), val, test)


def _bdd_split(
    root: Path, split: str, size: tuple[int, int], cache_dir: str | None, limit: int | None
) -> LabelledFiles:
    image_dir, mask_dir = root / "images" / "10k" / split, root / "labels" / "sem_seg" / "masks" / split
    images = sorted(image_dir.glob("*.jpg"))
    if not images:
        raise AlsegError(f"no images in {image_dir}; {BDD_HINT}")
    pairs = []
    for image in images:
        mask = mask_dir / f"{image.stem}.png"
        pairs.append(checked_pair(image, mask))
    polygon_file = root / "labels" / "sem_seg" / "polygons" / f"sem_seg_{split}.json"
    frames: dict[str, dict] = {}
    if polygon_file.is_file():
        frames = {frame["name"]: frame for frame in json.loads(polygon_file.read_text())}
    else:
        log.info("%s is absent: BDD100K click costs are estimated from the masks", polygon_file)

    def polygons(index: int) -> list[Polygon] | None:
        frame = frames.get(pairs[index][0].name)
        return scalabel_polygons(frame) if frame is not None else None

    return LabelledFiles(
        pairs, TRAIN_CLASSES, size, TRAIN_ID_LOOKUP, polygon_source=polygons, cache_dir=cache_dir, limit=limit
    )


def bdd100k_splits(
    root: str, size: tuple[int, int] = (180, 320), cache_dir: str | None = None, limit: int | None = None
) -> DataSplits:
    """BDD100K 10k: train (the pool) and val (also the test split: test labels are not public).

    Click costs come from labels/sem_seg/polygons/sem_seg_<split>.json (Scalabel poly2d) when
    present.
    """
    path = require_root(root, "BDD100K", BDD_HINT)
    shape = pixel_size(size)
    val = _bdd_split(path, "val", shape, cache_dir, limit)
    return DataSplits(_bdd_split(path, "train", shape, cache_dir, limit), val, val)
