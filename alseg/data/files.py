"""Datasets read from image and label files: checked, resized once, cached in memory."""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from alseg.data.base import IGNORE_INDEX, Polygon
from alseg.errors import AlsegError

log = logging.getLogger("alseg")

INVALID = -1
"""Label lookup value of a raw label value that must not occur."""

PolygonSource = Callable[[int], list[Polygon] | None]
"""Polygons of an image by index, in the pixel coordinates of its original file."""


def label_lookup(valid: dict[int, int]) -> np.ndarray:
    """A 256-entry table from raw label values to classes (or IGNORE_INDEX); others INVALID."""
    table = np.full(256, INVALID, dtype=np.int16)
    for raw, cls in valid.items():
        table[raw] = cls
    return table


def palette_indices(rgb: np.ndarray, palette: np.ndarray, path: Path) -> np.ndarray:
    """Raw label values (uint8, H x W) of an RGB label (H, W, 3): the index of each pixel's
    colour in `palette` (K, 3); a colour outside the palette is an error naming the file."""
    codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    known = (palette[:, 0].astype(np.int64) << 16) | (palette[:, 1].astype(np.int64) << 8) | palette[:, 2]
    order = np.argsort(known)
    found = np.searchsorted(known[order], codes).clip(0, len(known) - 1)
    matched = known[order][found] == codes
    if not matched.all():
        colours = {tuple(int(c) for c in rgb[y, x]) for y, x in zip(*np.nonzero(~matched), strict=True)}
        shown = sorted(colours)[:5]
        raise AlsegError(
            f"{path} holds colours {shown} that are not in dataset.palette; add them to the palette "
            "(or dataset.ignore_color)"
        )
    return order[found].astype(np.uint8)


def pixel_size(size: Sequence[int] | int) -> tuple[int, int]:
    """A configured (H, W), as ints; one number is a square."""
    if isinstance(size, int):
        return size, size
    return int(size[0]), int(size[1])


def resize_labels(label_map: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A label map (uint8) resized to `size` (H, W) by nearest neighbour: how every dataset
    resizes its labels, and how people's answers are mapped between sizes."""
    if label_map.shape == tuple(size):
        return label_map
    resized = Image.fromarray(label_map.astype(np.uint8)).resize((size[1], size[0]), Image.Resampling.NEAREST)
    return np.asarray(resized).copy()


def checked_pair(image: Path, label: Path, listed_in: str = "") -> tuple[Path, Path]:
    """(image, label) when both files exist, else one error naming the missing file."""
    if not image.is_file():
        raise AlsegError(f"{listed_in}image {image} does not exist")
    if not label.is_file():
        raise AlsegError(f"image {image} has no label: {label} does not exist")
    return image, label


def require_root(root: str | Path, dataset: str, hint: str) -> Path:
    """The dataset root as a Path, or one clear error when it is missing or empty."""
    path = Path(root).expanduser()
    if not path.is_dir():
        raise AlsegError(f"{dataset} root {path} does not exist; {hint}")
    if not any(path.iterdir()):
        raise AlsegError(f"{dataset} root {path} is empty; {hint}")
    return path


def open_header(path: Path) -> Image.Image:
    """An image opened lazily (size and mode only), or one error naming the file."""
    try:
        return Image.open(path)
    except FileNotFoundError:
        raise AlsegError(f"missing file {path}") from None
    except (UnidentifiedImageError, OSError) as error:
        raise AlsegError(f"cannot decode {path} ({error}); replace the corrupt file") from None


def open_image(path: Path, mode: str) -> Image.Image:
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert(mode) if mode and image.mode != mode else image
    except FileNotFoundError:
        raise AlsegError(f"missing file {path}") from None
    except (UnidentifiedImageError, OSError) as error:
        raise AlsegError(f"cannot decode {path} ({error}); replace the corrupt file") from None


class LabelledFiles:
    """A split of (image, label map) file pairs.

    Each pair is decoded, checked and resized to `size` (H, W) on first use and kept as
    uint8, so later epochs never decode again: in memory, or, with `cache_dir`, in one .npz
    per pair on disk (keyed by both paths, their modification times and the size), for data
    that does not fit in memory. Raw label values map to classes through `lookup`; a value
    the lookup marks INVALID is an error naming the file.
    """

    def __init__(
        self,
        pairs: Sequence[tuple[Path, Path]],
        class_names: tuple[str, ...],
        size: tuple[int, int],
        lookup: np.ndarray,
        unannotated_classes: tuple[int, ...] = (),
        polygon_source: PolygonSource | None = None,
        cache_dir: str | Path | None = None,
        per_image_classes: tuple[int, ...] = (),
        limit: int | None = None,
        palette: np.ndarray | None = None,
    ) -> None:
        self.pairs = list(pairs)[:limit]  # the first `limit` pairs (debug=tiny on real data)
        self.palette = palette  # (K, 3) RGB colours: an RGB label's colour k is raw value k
        self.class_names = class_names
        self.image_size = (int(size[0]), int(size[1]))
        self.lookup = lookup
        self.unannotated_classes = unannotated_classes
        self.polygon_source = polygon_source
        self.per_image_classes = per_image_classes
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else None
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._derived: dict[tuple[int, str], np.ndarray] = {}
        self._annotation_sizes: dict[int, tuple[int, int]] = {}

    def __len__(self) -> int:
        return len(self.pairs)

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if self.cache_dir is not None:
            return self._load_from_disk(index)
        if index not in self._cache:
            self._cache[index] = self._decode(index)
        return self._cache[index]

    def _cache_path(self, index: int, name: str) -> Path:
        """The disk cache entry of one pair (and of what is derived from it, by `name`)."""
        assert self.cache_dir is not None
        image_path, label_path = self.pairs[index]
        # Keyed by both files' paths, byte sizes and modification times (ns) and the size asked.
        stamp = f"{image_path}|{label_path}|{self.image_size}|"
        stamp += "|".join(
            f"{p.stat().st_size}:{p.stat().st_mtime_ns}"
            for p in self.pairs[index]
            if p is not None and p.exists()
        )
        suffix = f".{name}.npz" if name else ".npz"
        return self.cache_dir / f"{hashlib.sha1(stamp.encode()).hexdigest()}{suffix}"

    def _read_entry(self, index: int, path: Path, keys: tuple[str, ...]) -> tuple[np.ndarray, ...] | None:
        """A cache entry's arrays, or None when it is absent or damaged (then removed)."""
        if not path.exists():
            return None
        try:
            with np.load(path) as saved:
                return tuple(saved[key] for key in keys)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            image = self.pairs[index][0]
            log.warning("cache entry %s of %s is damaged (%s); rebuilding it", path, image, error)
            path.unlink(missing_ok=True)
            return None

    def _write_entry(self, path: Path, **arrays: np.ndarray) -> None:
        assert self.cache_dir is not None
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(temporary, **arrays)  # type: ignore[arg-type]
        os.replace(temporary, path)

    def _load_from_disk(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        path = self._cache_path(index, "")
        found = self._read_entry(index, path, ("image", "label"))
        if found is not None:
            return found[0], found[1]
        image, label = self._decode(index)
        self._write_entry(path, image=image, label=label)
        return image, label

    def derived(self, index: int, name: str, compute: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """`compute(image)` cached beside the decoded pair: in memory, or on disk with `cache_dir`."""
        if self.cache_dir is None:
            if (index, name) not in self._derived:
                self._derived[index, name] = compute(self._load(index)[0])
            return self._derived[index, name]
        path = self._cache_path(index, name)
        found = self._read_entry(index, path, ("value",))
        if found is not None:
            return found[0]
        value = compute(self._load(index)[0])
        self._write_entry(path, value=value)
        return value

    def _decode(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image, classes = self._decode_native(index)
        height, width = self.image_size
        image = image.resize((width, height), Image.Resampling.BILINEAR)
        return np.asarray(image).transpose(2, 0, 1).copy(), resize_labels(classes, (height, width)).copy()

    def _decode_native(self, index: int) -> tuple[Image.Image, np.ndarray]:
        """The image and its class map (uint8) at the file's size, checked."""
        image_path, label_path = self.pairs[index]
        if label_path is None:  # a pool image nobody has labelled yet (oracle=human answers it)
            image = open_image(image_path, "RGB")
            self._annotation_sizes[index] = (image.size[1], image.size[0])
            return image, np.full((image.size[1], image.size[0]), IGNORE_INDEX, dtype=np.uint8)
        image, label = open_image(image_path, "RGB"), open_image(label_path, "")
        if label.format == "JPEG":
            raise AlsegError(
                f"{label_path} is a JPEG: lossy compression changes label values along every edge; "
                "save the masks as PNG (dataset.mask_suffix names their ending)"
            )
        if self.palette is not None:
            label = Image.fromarray(
                palette_indices(np.asarray(label.convert("RGB")), self.palette, label_path)
            )
        elif label.mode not in ("L", "P", "I;16", "I"):
            label = label.convert("L")
        if image.size != label.size:
            raise AlsegError(
                f"{image_path} is {image.size[0]}x{image.size[1]} but its label {label_path} is "
                f"{label.size[0]}x{label.size[1]}; an image and its label must have the same size"
            )
        raw = np.asarray(label)
        if raw.max() > 255:
            raise AlsegError(f"{label_path} holds label value {raw.max()}, above 255")
        classes = self.lookup[raw]
        if (classes == INVALID).any():
            bad = sorted(set(np.unique(raw[classes == INVALID]).tolist()))
            valid = np.flatnonzero(self.lookup != INVALID).tolist()
            raise AlsegError(
                f"{label_path} holds label values {bad} outside the classes; expected values in {valid}: "
                f"if {bad[0]} marks void set dataset.ignore_index={bad[0]}, map stored values to classes "
                "with dataset.values (folder datasets, e.g. [0, 255] for binary masks), or list "
                "dataset.classes in full"
            )
        self._annotation_sizes[index] = (image.size[1], image.size[0])
        return image, classes.astype(np.uint8)

    def unlabelled(self) -> np.ndarray:
        """Indices of images without a label file: only people can label them."""
        return np.array([i for i, (_, label) in enumerate(self.pairs) if label is None], dtype=np.int64)

    def image(self, index: int) -> torch.Tensor:
        return torch.from_numpy(self._load(index)[0]).float() / 255

    def target(self, index: int) -> torch.Tensor:
        return torch.from_numpy(self._load(index)[1]).long()

    def annotation_size(self, index: int) -> tuple[int, int]:
        """(H, W) of the image file, read from its header."""
        if index not in self._annotation_sizes:
            with open_header(self.pairs[index][0]) as image:
                self._annotation_sizes[index] = (image.size[1], image.size[0])
        return self._annotation_sizes[index]

    def annotation_target(self, index: int) -> np.ndarray:
        """Classes (uint8, H, W) at the label file's size, decoded afresh (callers keep counts)."""
        return self._decode_native(index)[1]

    def annotation_image(self, index: int) -> np.ndarray:
        """The image (H, W, 3) uint8 as its file holds it."""
        return np.asarray(open_image(self.pairs[index][0], "RGB"))

    def source(self, index: int) -> str:
        return str(self.pairs[index][0])

    def polygons(self, index: int) -> list[Polygon] | None:
        """The image's annotated polygons in its file's pixels, or None without polygons."""
        return self.polygon_source(index) if self.polygon_source else None
