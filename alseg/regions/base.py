"""Query units: how each image of a pool is cut into regions, behind one small interface.

A query unit is one region of one image, named by its (image, region) pair. A `RegionMap`
holds the regions of one image: how many, their masks, bounding boxes and areas, the
reduction of pixel statistics per region, their overlap (for NMS) and the clicks of
outlining objects within them. A `Regions` kind (`regions=image|grid|windows|superpixels`)
builds the `RegionMaps` of a pool. Unit tables are (images, regions) arrays as wide as the
image with the most regions; `RegionMaps.exists` marks the entries that are regions.

Adding a kind of region is one class and one YAML: subclass `Regions` and return a map per
image from `maps` (a `BoxMap` when the regions are boxes, a `SegmentMap` when they partition
the image as a region-id map, or a `RegionMap` of your own), then add
`configs/regions/<name>.yaml` whose `_target_` names the class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import cached_property

import numpy as np
import torch

from alseg.clicks import Annotation
from alseg.data.base import ImageSource


class RegionMap(ABC):
    """The regions of one image of `size` (H, W)."""

    size: tuple[int, int]

    @property
    @abstractmethod
    def count(self) -> int:
        """How many regions the image has."""

    @property
    @abstractmethod
    def boxes(self) -> np.ndarray:
        """Bounding boxes (count, 4) as (y0, x0, y1, x1), pixel ranges [y0, y1) x [x0, x1)."""

    @property
    @abstractmethod
    def areas(self) -> np.ndarray:
        """Pixels (count,) of each region."""

    @abstractmethod
    def mask(self, regions: np.ndarray) -> np.ndarray:
        """Bool (H, W): the pixels of the given regions."""

    def paint(self, regions: np.ndarray, values: np.ndarray, fill: int = -1) -> np.ndarray:
        """Int (H, W): each given region's pixels set to its value, `fill` elsewhere (later
        regions over earlier ones where they overlap)."""
        out = np.full(self.size, fill, dtype=np.int64)
        for region, value in zip(np.asarray(regions).tolist(), np.asarray(values).tolist(), strict=True):
            out[self.mask(np.array([region]))] = value
        return out

    def mask_at(self, regions: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """Bool (size): the given regions' pixels on the image at another `size` (H, W), each
        pixel taking the region of the pixel it falls in (nearest), as clicks are counted."""
        rows = np.arange(size[0]) * self.size[0] // size[0]
        cols = np.arange(size[1]) * self.size[1] // size[1]
        return self.mask(regions)[rows[:, None], cols[None, :]]

    @abstractmethod
    def reduce(self, pixels: torch.Tensor, reduction: str) -> torch.Tensor:
        """Pixel statistics (B, H, W) of B images cut by this map -> (B, count) per region:
        `mean`, `max` or `top10` (the mean of a region's highest 10% of pixels)."""

    @abstractmethod
    def overlap(self) -> np.ndarray:
        """Intersection over union (count, count) of the regions."""

    prices_together: bool = False
    """Whether the click counter should price all regions of an image in one call."""

    @abstractmethod
    def clicks(self, annotation: Annotation, regions: np.ndarray) -> np.ndarray:
        """Clicks (len(regions),) to outline what `annotation` holds inside each given region,
        counted on the image as annotated."""


class RegionMaps:
    """The region maps of every image of a pool: `maps[image]` is that image's `RegionMap`."""

    def __init__(self, counts: np.ndarray, get: Callable[[int], RegionMap], kind: str) -> None:
        self.counts = np.asarray(counts, dtype=np.int64)
        self._get = get
        self.kind = kind

    def __len__(self) -> int:
        return len(self.counts)

    def __getitem__(self, image: int) -> RegionMap:
        return self._get(int(image))

    @property
    def width(self) -> int:
        """Columns of a unit table: the most regions any image has."""
        return int(self.counts.max()) if len(self.counts) else 1

    @cached_property
    def exists(self) -> np.ndarray:
        """Bool (images, width): which entries of a unit table are regions."""
        return np.arange(self.width)[None, :] < self.counts[:, None]

    def area_table(self) -> np.ndarray:
        """Pixels (images, width) of every unit; 0 beyond an image's regions."""
        table = np.zeros((len(self), self.width), dtype=np.int64)
        for image, count in enumerate(self.counts.tolist()):
            table[image, :count] = self[image].areas
        return table

    @property
    def whole_images(self) -> bool:
        """Whether each image is its own single unit."""
        return bool((self.counts == 1).all())


class Regions(ABC):
    """A kind of query unit, as configured: builds the region maps of a pool."""

    @abstractmethod
    def maps(self, pool: ImageSource) -> RegionMaps:
        """The region maps of every image of `pool`."""
