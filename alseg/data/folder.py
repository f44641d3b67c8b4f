"""Your own dataset without Python: a folder of images and a folder of masks, paired by stem.

    root/
      images/  a.jpg b.jpg ...
      masks/   a.png b.png ...   (class indices 0 .. C-1, or RGB colours with a palette)

Splits come from split files (one stem per line) or from seeded val/test fractions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from alseg.data.base import IGNORE_INDEX, DataSplits
from alseg.data.files import LabelledFiles, label_lookup, pixel_size, require_root
from alseg.errors import AlsegError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
HINT = "put images in <root>/images and masks with the same stems in <root>/masks, then pass dataset.root"


def _files(folder: Path, suffix: str | None, what: str) -> dict[str, Path]:
    """Files of a folder by stem (those ending in `suffix`, or any image suffix)."""
    if not folder.is_dir():
        raise AlsegError(f"{what} folder {folder} does not exist; {HINT}")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if suffix is not None:
            if path.name.endswith(suffix):
                found[path.name.removesuffix(suffix)] = path
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            if path.stem in found:
                raise AlsegError(f"{found[path.stem]} and {path} share the stem {path.stem!r}; keep one")
            found[path.stem] = path
    if not found:
        raise AlsegError(f"{what} folder {folder} holds no files ending in {suffix or IMAGE_SUFFIXES}")
    return found


def _pairs(root: Path, images: str, masks: str, image_suffix: str | None, mask_suffix: str) -> dict:
    if mask_suffix.lower().endswith((".jpg", ".jpeg")):
        raise AlsegError(
            f"dataset.mask_suffix={mask_suffix}: JPEG masks are lossy (compression changes label values "
            "along every edge); save the masks as PNG and set dataset.mask_suffix=.png"
        )
    image_files = _files(root / images, image_suffix, "image")
    mask_files = _files(root / masks, mask_suffix, "mask")
    missing = sorted(set(image_files) - set(mask_files))
    if missing:
        raise AlsegError(
            f"{len(missing)} images have no mask in {root / masks} (first: {image_files[missing[0]]}, "
            f"expected {root / masks / (missing[0] + mask_suffix)})"
        )
    orphans = sorted(set(mask_files) - set(image_files))
    if orphans:
        raise AlsegError(f"{len(orphans)} masks have no image (first: {mask_files[orphans[0]]})")
    return {stem: (image_files[stem], mask_files[stem]) for stem in sorted(image_files)}


MASKS_CHECKED = 8
"""Masks read at start to catch a foreground stored as the void value."""


def _refuse_void_foreground(masks: list[Path], ignore_index: int) -> None:
    """One error when the first masks hold only 0 and `ignore_index`: binary masks stored as
    0/255, whose foreground would be read as void (IoU 0 for it at every cycle, silently)."""
    from PIL import Image

    seen: set[int] = set()
    for path in masks[:MASKS_CHECKED]:
        with Image.open(path) as mask:
            if mask.mode not in ("L", "P"):
                return
            seen |= set(np.unique(np.asarray(mask)).tolist())
    if seen == {0, ignore_index}:
        raise AlsegError(
            f"the masks in {masks[0].parent} hold only the values 0 and {ignore_index} (the first "
            f"{len(masks[:MASKS_CHECKED])} read), and {ignore_index} is dataset.ignore_index (void): "
            f"every foreground pixel would be ignored. For binary masks stored as 0/{ignore_index} set "
            f"dataset.values=[0,{ignore_index}] (each class's stored value, in the order of dataset.classes)"
        )


def _split_stems(
    root: Path, stems: list[str], splits: dict | None, val: float, test: float, seed: int
) -> dict[str, list[str]]:
    """Stems per split: from split files (one stem per line), or seeded fractions."""
    if splits:
        chosen = {}
        for name in ("train", "val", "test"):
            if name not in splits:
                raise AlsegError(f"dataset.split_files needs train, val and test (got {sorted(splits)})")
            listing = root / splits[name]
            if not listing.is_file():
                raise AlsegError(f"split file {listing} does not exist")
            listed = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
            unknown = sorted(set(listed) - set(stems))
            if unknown:
                raise AlsegError(f"{listing} lists {unknown[:3]}, which have no image and mask pair")
            chosen[name] = listed
        return chosen
    if not (0 < val < 1 and 0 < test < 1 and val + test < 1):
        raise AlsegError(
            f"dataset.val_fraction and dataset.test_fraction must be in (0, 1) with a sum below 1 "
            f"(got {val}, {test})"
        )
    order = np.random.default_rng(seed).permutation(len(stems))
    n_val, n_test = max(1, round(val * len(stems))), max(1, round(test * len(stems)))
    if n_val + n_test >= len(stems):
        raise AlsegError(f"{len(stems)} images are too few for a train, a val and a test split")
    shuffled = [stems[i] for i in order]
    return {
        "val": sorted(shuffled[:n_val]),
        "test": sorted(shuffled[n_val : n_val + n_test]),
        "train": sorted(shuffled[n_val + n_test :]),
    }


def folder_splits(
    root: str,
    classes: Sequence[str],
    images: str = "images",
    masks: str = "masks",
    image_suffix: str | None = None,
    mask_suffix: str = ".png",
    ignore_index: int | None = 255,
    values: Sequence[int] | None = None,
    palette: Sequence[Sequence[int]] | None = None,
    ignore_color: Sequence[int] | None = None,
    split_files: dict | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    split_seed: int = 0,
    unlabelled: str | None = None,
    unannotated_classes: Sequence[int] = (),
    size: Sequence[int] | int = (256, 256),
    cache_dir: str | None = None,
    limit: int | None = None,
) -> DataSplits:
    """Train (the pool), val and test splits of a folder dataset, resized to `size` (H, W).

    Mask value c is class c (`classes` names them), or `values[c]` when given (binary masks
    stored as 0/255: `values=[0, 255]`); `ignore_index` is void; with `palette` (one RGB colour
    per class) masks are RGB and `ignore_color` is void. Any other value is an error naming the
    file; masks that hold only 0 and `ignore_index` are refused (the foreground would be void),
    and so are JPEG masks (lossy). `unannotated_classes` (background) cost no clicks. Images in the
    `unlabelled` folder (under root; no masks) join the train pool for people to label
    (`oracle=human`).
    """
    path = require_root(root, "dataset", HINT)
    names = tuple(str(name) for name in classes)
    if not names:
        raise AlsegError("dataset.classes must name the classes, e.g. [background, lesion]")
    pairs = _pairs(path, images, masks, image_suffix, mask_suffix)
    valid = {c: c for c in range(len(names))}
    colours: np.ndarray | None = None
    if palette is not None:
        colours = np.array([list(c) for c in palette], dtype=np.int64).reshape(-1, 3)
        if len(colours) != len(names):
            raise AlsegError(f"dataset.palette has {len(colours)} colours for {len(names)} classes")
        if ignore_color is not None:
            colours = np.vstack([colours, np.array(list(ignore_color)).reshape(1, 3)])
            valid[len(names)] = IGNORE_INDEX
    elif values is not None:
        valid = {int(value): c for c, value in enumerate(values)}
        if len(valid) != len(names) or not all(0 <= value <= 255 for value in valid):
            raise AlsegError(
                f"dataset.values must give {len(names)} distinct stored values in [0, 255], one per class "
                f"of dataset.classes (got {list(values)})"
            )
        if ignore_index is not None and ignore_index not in valid:
            valid[ignore_index] = IGNORE_INDEX
    elif ignore_index is not None:
        if ignore_index < len(names) or ignore_index > 255:
            raise AlsegError(f"dataset.ignore_index={ignore_index} must be in [{len(names)}, 255] or null")
        valid[ignore_index] = IGNORE_INDEX
        _refuse_void_foreground([mask for _, mask in pairs.values()], ignore_index)
    lookup = label_lookup(valid)
    stems = _split_stems(path, list(pairs), split_files, val_fraction, test_fraction, split_seed)
    shape = pixel_size(size)
    extra: list = []
    if unlabelled is not None:
        extra = [
            (path, None) for path in _files(path / unlabelled, image_suffix, "unlabelled image").values()
        ]
    return DataSplits(
        *(
            LabelledFiles(
                [pairs[stem] for stem in stems[split]] + (extra if split == "train" else []),
                names,
                shape,
                lookup,
                tuple(unannotated_classes),
                cache_dir=cache_dir,
                limit=limit,
                palette=colours,
            )
            for split in ("train", "val", "test")
        )
    )
