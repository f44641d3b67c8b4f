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
from functools import cached_property, lru_cache

import numpy as np
import torch

from alseg.costs import CONTOUR_TOLERANCE, Annotation, label_map_outlines, polygon_clicks, scale_boxes
from alseg.data.base import IGNORE_INDEX, ImageSource
from alseg.errors import AlsegError
from alseg.uncertainty import get_reduction

REDUCTION_NAMES = ("mean", "max", "top10")
MAPS_KEPT = 512
"""Superpixel maps (with their outlines) kept built; the ids themselves live in the data cache."""


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


class SegmentMap(RegionMap):
    """Regions that partition the image, given as a region-id map (H, W) of 0 .. count - 1.

    Reductions are segment sums on the statistics' device over the id map (`index_add`,
    `scatter_reduce`), never a loop over regions.
    """

    prices_together = True

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = np.asarray(ids)
        self.size = (int(self.ids.shape[0]), int(self.ids.shape[1]))
        self._count = int(self.ids.max()) + 1

    @property
    def count(self) -> int:
        return self._count

    @cached_property
    def boxes(self) -> np.ndarray:
        from scipy.ndimage import find_objects

        slices = find_objects(self.ids.astype(np.int32) + 1, max_label=self._count)
        return np.array([[s[0].start, s[1].start, s[0].stop, s[1].stop] for s in slices], dtype=np.int64)

    @cached_property
    def areas(self) -> np.ndarray:
        return np.bincount(self.ids.reshape(-1), minlength=self._count).astype(np.int64)

    def mask(self, regions: np.ndarray) -> np.ndarray:
        chosen = np.zeros(self._count, dtype=bool)
        chosen[regions] = True
        return chosen[self.ids]

    def paint(self, regions: np.ndarray, values: np.ndarray, fill: int = -1) -> np.ndarray:
        lookup = np.full(self._count, fill, dtype=np.int64)
        lookup[regions] = values
        return lookup[self.ids]

    def reduce(self, pixels: torch.Tensor, reduction: str) -> torch.Tensor:
        if reduction not in REDUCTION_NAMES:
            get_reduction(reduction)  # the error naming the valid reductions
        values = pixels.reshape(pixels.shape[0], -1)
        ids = torch.as_tensor(self.ids.reshape(-1), device=values.device).long()
        return segment_reduce(values, ids, self._count, reduction)

    def overlap(self) -> np.ndarray:
        return np.eye(self._count)  # a partition: regions never overlap

    @cached_property
    def shapes(self) -> list:
        """Each region's outline at the map's resolution: its exact pixel outline (holes cut
        out) simplified with Douglas-Peucker at the estimator's tolerance, corners on pixel
        edges, as an annotator would trace it."""
        import shapely

        shapes = []
        for region, (y0, x0, y1, x1) in enumerate(self.boxes.tolist()):
            crop = np.pad(self.ids[y0:y1, x0:x1] == region, ((0, 0), (1, 1))).astype(np.int8)
            rows, starts = np.nonzero(np.diff(crop, axis=1) == 1)
            _, stops = np.nonzero(np.diff(crop, axis=1) == -1)
            runs = shapely.box(x0 + starts, y0 + rows, x0 + stops, y0 + rows + 1)
            shape = shapely.union_all(runs)
            shapes.append(shapely.simplify(shape, CONTOUR_TOLERANCE, preserve_topology=True))
        return shapes

    def clicks(self, annotation: Annotation, regions: np.ndarray) -> np.ndarray:
        """Polygons are clipped to each region's outline (shapely); a label map is restricted
        to each region and outlined there (the contour estimate within the region)."""
        if annotation.polygons is None:
            return self._label_map_clicks(annotation, regions)
        import shapely

        clicks = np.zeros(len(regions), dtype=np.int64)
        objects = [shapely.make_valid(shapely.Polygon(v)) for _, v in annotation.polygons if len(v) >= 3]
        if not objects:
            return clicks
        scale = np.array([annotation.size[1] / self.size[1], annotation.size[0] / self.size[0]])
        tree = shapely.STRtree(objects)
        for k, region in enumerate(np.asarray(regions).tolist()):
            shape = shapely.transform(self.shapes[region], lambda points: points * scale)
            pieces = shapely.intersection(np.array(objects, dtype=object)[tree.query(shape)], shape)
            clicks[k] = sum(vertex_count(piece) for piece in pieces)
        return clicks

    def _label_map_clicks(self, annotation: Annotation, regions: np.ndarray) -> np.ndarray:
        target = annotation.target()
        height, width = target.shape
        rows = np.arange(height) * self.size[0] // height
        cols = np.arange(width) * self.size[1] // width
        boxes = scale_boxes(self.boxes, self.size, (height, width))
        clicks = np.zeros(len(regions), dtype=np.int64)
        for k, region in enumerate(np.asarray(regions).tolist()):
            y0, x0, y1, x1 = boxes[region]
            inside = self.ids[rows[y0:y1, None], cols[None, x0:x1]] == region
            restricted = np.where(inside, target[y0:y1, x0:x1], IGNORE_INDEX)
            outlines = label_map_outlines(restricted, (*annotation.skip_classes, IGNORE_INDEX))
            clicks[k] = sum(len(corners) for _, corners in outlines)
        return clicks


def vertex_count(geometry) -> int:
    """Clicks of a clipped shape: the corners of each polygon part (collinear points dropped),
    holes included; lines and points (touching without area) cost nothing."""
    import shapely

    total = 0
    for part in shapely.get_parts(shapely.simplify(geometry, 0.0)):
        if part.geom_type == "GeometryCollection":
            total += vertex_count(part)
        elif part.geom_type == "Polygon" and part.area > 1e-9:
            total += len(part.exterior.coords) - 1 + sum(len(ring.coords) - 1 for ring in part.interiors)
    return total


def segment_reduce(values: torch.Tensor, segments: torch.Tensor, count: int, reduction: str) -> torch.Tensor:
    """Per-segment `mean`, `max` or `top10` (B, count) of values (B, N) over segment ids (N,).

    top10 is the mean of each segment's max(1, n // 10) highest values, as for boxes: values
    are sorted by segment, then descending within it (two stable sorts), and each keeps the
    first k of its run."""
    batch = values.shape[0]
    sizes = torch.bincount(segments, minlength=count)
    if reduction == "mean":
        sums = values.new_zeros(batch, count).index_add_(1, segments, values)
        return sums / sizes.clamp(min=1).to(values.dtype)
    if reduction == "max":
        out = values.new_full((batch, count), -torch.inf)
        return out.scatter_reduce_(1, segments.expand(batch, -1), values, "amax", include_self=True)
    by_value = torch.argsort(values, dim=1, descending=True, stable=True)
    by_segment = torch.argsort(segments[by_value], dim=1, stable=True)
    order = by_value.gather(1, by_segment)
    ordered = segments.sort(stable=True).values  # the segment of each sorted position
    starts = torch.cumsum(sizes, 0) - sizes
    rank = torch.arange(len(segments), device=values.device) - starts[ordered]
    keep = (sizes // 10).clamp(min=1)
    taken = rank < keep[ordered]
    top = values.gather(1, order) * taken.to(values.dtype)
    return values.new_zeros(batch, count).index_add_(1, ordered, top) / keep.to(values.dtype)


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


class Superpixels(Regions):
    """SLIC superpixels (scikit-image) of each image at the dataset's resolution.

    About `segments` regions an image, `compactness` trading colour for shape (higher: more
    square), `sigma` the Gaussian smoothing before segmenting. Each map is computed once per
    image and cached with the decoded images (in memory, or on disk with `cache_dir`), then
    numbered 0 .. count - 1; every superpixel is connected.
    """

    def __init__(self, segments: int = 100, compactness: float = 10.0, sigma: float = 1.0) -> None:
        if segments < 1 or compactness <= 0 or sigma < 0:
            raise AlsegError(
                "regions.segments must be >= 1, regions.compactness > 0 and regions.sigma >= 0 "
                f"(got {segments}, {compactness}, {sigma})."
            )
        self.segments, self.compactness, self.sigma = segments, compactness, sigma

    @property
    def cache_name(self) -> str:
        return f"slic-{self.segments}-{self.compactness:g}-{self.sigma:g}"

    def segment(self, image: np.ndarray) -> np.ndarray:
        """Region ids (H, W), 0 .. count - 1, of an image (3, H, W) of uint8."""
        from skimage.segmentation import slic

        labels = slic(
            image.transpose(1, 2, 0),
            n_segments=self.segments,
            compactness=self.compactness,
            sigma=self.sigma,
            start_label=0,
            channel_axis=-1,
            enforce_connectivity=True,
        )
        ids = np.unique(labels, return_inverse=True)[1].reshape(labels.shape)
        return ids.astype(np.int16 if ids.max() < 2**15 else np.int32)

    def maps(self, pool: ImageSource) -> RegionMaps:
        @lru_cache(maxsize=MAPS_KEPT)
        def get(image: int) -> SegmentMap:
            return SegmentMap(pool.derived(image, self.cache_name, self.segment))

        counts = np.array([get(image).count for image in range(len(pool))], dtype=np.int64)
        return RegionMaps(counts, get, "Superpixels")
