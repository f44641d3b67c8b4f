"""Regions that are boxes: the whole image, a grid, sliding windows (CEREALS)."""

from __future__ import annotations

from abc import abstractmethod
from functools import cached_property

import numpy as np
import torch

from alseg.clicks import Annotation, polygon_clicks, scale_boxes
from alseg.data.base import ImageSource
from alseg.errors import AlsegError
from alseg.regions.base import RegionMap, RegionMaps, Regions
from alseg.uncertainty import get_reduction


class BoxMap(RegionMap):
    """Regions that are boxes (count, 4): a whole image, grid cells, sliding windows."""

    def __init__(self, boxes: np.ndarray, size: tuple[int, int]) -> None:
        self._boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
        self.size = size

    @property
    def count(self) -> int:
        return len(self._boxes)

    @property
    def boxes(self) -> np.ndarray:
        return self._boxes

    @cached_property
    def areas(self) -> np.ndarray:
        return (self._boxes[:, 2] - self._boxes[:, 0]) * (self._boxes[:, 3] - self._boxes[:, 1])

    def mask(self, regions: np.ndarray) -> np.ndarray:
        mask = np.zeros(self.size, dtype=bool)
        for y0, x0, y1, x1 in self._boxes[regions]:
            mask[y0:y1, x0:x1] = True
        return mask

    def reduce(self, pixels: torch.Tensor, reduction: str) -> torch.Tensor:
        """Boxes of equal size are gathered together: batched over images and boxes."""
        reduce = get_reduction(reduction)
        batch, height, width = pixels.shape
        flat = pixels.reshape(batch, height * width)
        out = pixels.new_empty(batch, self.count)
        sizes = self._boxes[:, 2:] - self._boxes[:, :2]
        for size in np.unique(sizes, axis=0):
            group = np.flatnonzero((sizes == size).all(axis=1))
            dy, dx = np.meshgrid(np.arange(size[0]), np.arange(size[1]), indexing="ij")
            offsets = (dy * width + dx).reshape(-1)
            starts = self._boxes[group, 0] * width + self._boxes[group, 1]
            index = torch.as_tensor(starts[:, None] + offsets[None], device=flat.device)
            values = flat[:, index.reshape(-1)].reshape(batch, len(group), -1)
            out[:, torch.as_tensor(group, device=flat.device)] = reduce(values)
        return out

    def overlap(self) -> np.ndarray:
        return self._overlap

    @cached_property
    def _overlap(self) -> np.ndarray:
        boxes = self._boxes
        y0 = np.maximum(boxes[:, None, 0], boxes[None, :, 0])
        x0 = np.maximum(boxes[:, None, 1], boxes[None, :, 1])
        y1 = np.minimum(boxes[:, None, 2], boxes[None, :, 2])
        x1 = np.minimum(boxes[:, None, 3], boxes[None, :, 3])
        inter = np.clip(y1 - y0, 0, None) * np.clip(x1 - x0, 0, None)
        return inter / (self.areas[:, None] + self.areas[None, :] - inter)

    def clicks(self, annotation: Annotation, regions: np.ndarray) -> np.ndarray:
        """Each outline clipped to each box (mapped onto the image as annotated)."""
        boxes = scale_boxes(self._boxes[regions], self.size, annotation.size)
        return polygon_clicks(annotation.outlines, boxes)


class BoxRegions(Regions):
    """A kind whose boxes depend only on the image size, shared by every image of the pool."""

    @abstractmethod
    def boxes(self, height: int, width: int) -> np.ndarray:
        """Boxes (R, 4) as (y0, x0, y1, x1), pixel ranges [y0, y1) x [x0, x1)."""

    def maps(self, pool: ImageSource) -> RegionMaps:
        shared = BoxMap(self.boxes(*pool.image_size), pool.image_size)
        return RegionMaps(np.full(len(pool), shared.count), lambda image: shared, type(self).__name__)


class WholeImage(BoxRegions):
    """One unit per image: the image itself."""

    def boxes(self, height: int, width: int) -> np.ndarray:
        return np.array([[0, 0, height, width]], dtype=np.int64)


class Grid(BoxRegions):
    """A rows x cols grid of non-overlapping cells that tile the image."""

    def __init__(self, rows: int, cols: int) -> None:
        if rows < 1 or cols < 1:
            raise AlsegError(f"regions.rows and regions.cols must be >= 1 (got {rows}, {cols}).")
        self.rows, self.cols = rows, cols

    def boxes(self, height: int, width: int) -> np.ndarray:
        if self.rows > height or self.cols > width:
            raise AlsegError(
                f"a {self.rows}x{self.cols} grid does not fit images of {height}x{width} pixels; "
                "use fewer regions.rows / regions.cols."
            )
        ys = np.linspace(0, height, self.rows + 1).round().astype(np.int64)
        xs = np.linspace(0, width, self.cols + 1).round().astype(np.int64)
        return np.array(
            [[ys[r], xs[c], ys[r + 1], xs[c + 1]] for r in range(self.rows) for c in range(self.cols)],
            dtype=np.int64,
        )


MIN_WINDOW = 4
"""Pixels: a window scaled below this is a speck, not a region to label."""


class SlidingWindows(BoxRegions):
    """Square windows of `size` pixels slid with `stride`, overlapping when stride < size.

    With `reference_width` the size and stride are given at that image width and scaled to
    the dataset's width (CEREALS uses 128-pixel windows on 2048-pixel-wide Cityscapes).
    Windows are placed so that the last one touches the right and bottom borders.
    """

    def __init__(self, size: int, stride: int, reference_width: int | None = None) -> None:
        if size < 1 or stride < 1:
            raise AlsegError(f"regions.size and regions.stride must be >= 1 (got {size}, {stride}).")
        self.size, self.stride, self.reference_width = size, stride, reference_width

    def boxes(self, height: int, width: int) -> np.ndarray:
        scale = width / self.reference_width if self.reference_width else 1.0
        size, stride = max(1, round(self.size * scale)), max(1, round(self.stride * scale))
        if size < MIN_WINDOW:
            raise AlsegError(
                f"regions.size={self.size} at width {self.reference_width} makes windows of {size} pixels on "
                f"images {width} pixels wide, too small to mean a region (debug=tiny shrinks images to 32 "
                "pixels); raise regions.size or dataset.splits.size"
            )
        if size > min(height, width):
            raise AlsegError(
                f"windows of {size} pixels do not fit images of {height}x{width}; lower regions.size."
            )
        ys = _window_starts(height, size, stride)
        xs = _window_starts(width, size, stride)
        return np.array([[y, x, y + size, x + size] for y in ys for x in xs], dtype=np.int64)


def _window_starts(length: int, size: int, stride: int) -> list[int]:
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts
