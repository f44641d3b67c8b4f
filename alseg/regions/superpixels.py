"""Regions that partition the image as an id map: superpixels (SLIC) and their reductions."""

from __future__ import annotations

from functools import cached_property, lru_cache

import numpy as np
import torch

from alseg.clicks import CONTOUR_TOLERANCE, Annotation, label_map_outlines, scale_boxes
from alseg.data.base import IGNORE_INDEX, ImageSource
from alseg.errors import AlsegError
from alseg.regions.base import RegionMap, RegionMaps, Regions
from alseg.uncertainty import get_reduction

MAPS_KEPT = 512
"""Superpixel maps (with their outlines) kept built; the ids themselves live in the data cache."""


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
