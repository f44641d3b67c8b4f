"""Click costs: how many polygon vertices an annotator places to outline what lies in a box.

Costs are counted at the annotation resolution (the image as the annotator sees it), never at
the size the network trains at: `scale_boxes` maps training-size boxes onto it. Where a dataset
has polygons, the clicks are their vertices, clipped to the box; where it has only label maps,
`contour_clicks` estimates them (docs/click_costs.md measures the estimate).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from alseg.data.base import Polygon

CONTOUR_TOLERANCE = 1.25
"""Douglas-Peucker tolerance of the contour estimate, in pixels of the annotation resolution:
the smallest that removes the staircase of a rasterised straight edge (docs/click_costs.md)."""

MIN_OUTLINED_AREA = 4.0
"""Parts of a class smaller than this (pixels) are specks an annotator does not outline."""

_SAME_POINT = 1e-6  # pixels: clipped points closer than this are one click


def clip_polygon(vertices: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """Clip a polygon (N, 2) of (x, y) to a box (y0, x0, y1, x1), Sutherland-Hodgman.

    The result holds the polygon's vertices inside the box plus the points where its outline
    crosses the box border: the clicks an annotator needs to outline the part in the box.
    A point is emitted once even where a vertex lies on the border, and a part of zero area
    (an outline that only touches the box) is empty.
    """
    y0, x0, y1, x1 = box
    # Each edge of the box as (axis, bound, keep values above the bound?).
    edges = ((0, x0, True), (0, x1, False), (1, y0, True), (1, y1, False))
    points = np.asarray(vertices, dtype=np.float64).reshape(-1, 2)
    for axis, bound, above in edges:
        if len(points) == 0:
            break
        inside = points[:, axis] >= bound if above else points[:, axis] <= bound
        previous, previous_inside = np.roll(points, 1, axis=0), np.roll(inside, 1)
        crossing = inside != previous_inside
        step = points[:, axis] - previous[:, axis]
        t = np.divide(bound - previous[:, axis], step, out=np.zeros(len(points)), where=crossing)
        crossings = previous + t[:, None] * (points - previous)
        # For each vertex in order: the crossing on the edge that reaches it, then the vertex.
        candidates = np.stack([crossings, points], axis=1).reshape(-1, 2)
        points = _distinct(candidates[np.stack([crossing, inside], axis=1).reshape(-1)])
    if len(points) < 3 or polygon_area(points) < _SAME_POINT:
        return np.zeros((0, 2))
    return points


def _distinct(points: np.ndarray) -> np.ndarray:
    """The points without consecutive repeats (the outline is closed: the last meets the first)."""
    if len(points) < 2:
        return points
    step = np.abs(points - np.roll(points, 1, axis=0)).max(axis=1)
    return points[step > _SAME_POINT] if (step > _SAME_POINT).any() else points[:1]


def polygon_area(points: np.ndarray) -> float:
    """Area (shoelace) of a closed outline (N, 2), in squared pixels."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def polygon_clicks(polygons: list[Polygon], boxes: np.ndarray) -> np.ndarray:
    """Clicks to outline every polygon part inside each box (R, 4) -> (R,) int64.

    Only polygons that cross a box's border are clipped: one inside costs its own vertices,
    one outside (or only touching) nothing.
    """
    clicks = np.zeros(len(boxes), dtype=np.int64)
    if not polygons:
        return clicks
    shapes = [np.asarray(vertices, dtype=np.float64).reshape(-1, 2) for _, vertices in polygons]
    low = np.array([shape.min(axis=0) if len(shape) else (np.inf, np.inf) for shape in shapes])
    high = np.array([shape.max(axis=0) if len(shape) else (-np.inf, -np.inf) for shape in shapes])
    own = np.array([len(clip_polygon(shape, (-np.inf, -np.inf, np.inf, np.inf))) for shape in shapes])
    for r, (y0, x0, y1, x1) in enumerate(boxes):
        apart = (high[:, 0] <= x0) | (low[:, 0] >= x1) | (high[:, 1] <= y0) | (low[:, 1] >= y1)
        within = (low[:, 0] >= x0) & (high[:, 0] <= x1) & (low[:, 1] >= y0) & (high[:, 1] <= y1)
        clicks[r] = own[within & ~apart].sum()
        for index in np.flatnonzero(~apart & ~within):
            clicks[r] += len(clip_polygon(shapes[index], (y0, x0, y1, x1)))
    return clicks


def outline_vertices(contour: np.ndarray, tolerance: float) -> int:
    """How many vertices `simplified_outline` keeps (at least 3)."""
    return max(len(simplified_outline(contour, tolerance)), 3)


def simplified_outline(contour: np.ndarray, tolerance: float) -> np.ndarray:
    """Corners (K, 2) of a closed contour (N, 2) simplified with Douglas-Peucker at `tolerance`.

    A closed contour has no natural start; a start in the middle of a straight edge would
    survive as a spurious vertex. So it starts at the point farthest from the centroid, a
    corner of the convex hull and so of the outline. Douglas-Peucker splits greedily and can
    keep two corners a pixel apart where a rasterised tip is flat; corners that lie within
    `tolerance` of the line through their neighbours are then dropped, the flattest first.
    """
    from skimage.measure import approximate_polygon

    points = contour[:-1] if np.array_equal(contour[0], contour[-1]) else contour
    start = int(np.argmax(np.hypot(*(points - points.mean(axis=0)).T)))
    points = np.roll(points, -start, axis=0)
    corners = approximate_polygon(np.vstack([points, points[:1]]), tolerance)[:-1]
    while len(corners) > 3:
        deviation = _chord_distances(corners)
        flattest = int(np.argmin(deviation))
        if deviation[flattest] >= tolerance:
            break
        corners = np.delete(corners, flattest, axis=0)
    return corners


def _chord_distances(corners: np.ndarray) -> np.ndarray:
    """Distance of each corner of a closed outline (N, 2) to the line through its neighbours."""
    before, after = np.roll(corners, 1, axis=0), np.roll(corners, -1, axis=0)
    chord = after - before
    offset = corners - before
    cross = np.abs(chord[:, 0] * offset[:, 1] - chord[:, 1] * offset[:, 0])
    return cross / np.maximum(np.hypot(*chord.T), 1e-9)


def label_map_outlines(
    target: np.ndarray,
    skip_classes: tuple[int, ...],
    tolerance: float = CONTOUR_TOLERANCE,
    min_area: float = MIN_OUTLINED_AREA,
) -> list[Polygon]:
    """The polygons an annotator would draw on a label map (H, W): each connected part of each
    class outlined by its contour, simplified with Douglas-Peucker at `tolerance` pixels.
    Classes in `skip_classes` (background, ignore) and parts under `min_area` pixels are not
    outlined. Vertices are (x, y) on pixel edges: pixel (r, c) spans [c, c + 1) x [r, r + 1)."""
    from skimage.measure import find_contours

    outlines: list[Polygon] = []
    for cls in np.unique(target):
        if int(cls) in skip_classes:
            continue
        mask = np.pad(target == cls, 1).astype(np.float32)
        for contour in find_contours(mask, 0.5):
            if polygon_area(contour) >= min_area:
                corners = simplified_outline(contour, tolerance)
                outlines.append((int(cls), corners[:, ::-1] - 0.5))  # padded (row, col) -> (x, y)
    return outlines


def contour_clicks(
    target: np.ndarray,
    boxes: np.ndarray,
    skip_classes: tuple[int, ...],
    tolerance: float = CONTOUR_TOLERANCE,
    min_area: float = MIN_OUTLINED_AREA,
) -> np.ndarray:
    """Estimated clicks per box (R, 4) -> (R,) when a dataset has no polygons: the outlines of
    `label_map_outlines`, clipped to each box like drawn polygons. `target` is the label map at
    the annotation resolution."""
    return polygon_clicks(label_map_outlines(target, skip_classes, tolerance, min_area), boxes)


class OutlineSamples:
    """Points every pixel or less along closed outlines (at the annotation resolution), with
    which are their corners and each point's predecessor on its own outline."""

    def __init__(self, outlines: list[Polygon]) -> None:
        points, corners, previous = [], [], []
        start = 0
        for _, vertices in outlines:
            edges = np.roll(vertices, -1, axis=0) - vertices
            steps = np.maximum(np.ceil(np.hypot(*edges.T)).astype(np.int64), 1)
            fractions = np.concatenate([np.arange(n) / n for n in steps.tolist()])
            origin = np.repeat(np.arange(len(vertices)), steps)
            points.append(vertices[origin] + edges[origin] * fractions[:, None])
            corners.append(fractions == 0)
            count = int(steps.sum())
            previous.append(start + np.roll(np.arange(count), 1))
            start += count
        self.points = np.concatenate(points) if points else np.zeros((0, 2))
        self.corners = np.concatenate(corners) if corners else np.zeros(0, dtype=bool)
        self.previous = np.concatenate(previous) if previous else np.zeros(0, dtype=np.int64)


def cut_clicks(samples: OutlineSamples, inside: np.ndarray) -> int:
    """Clicks of drawing the sampled outlines within a region whose own outline is already drawn
    (a superpixel): the corners that fall inside it (`inside`, its mask at the annotation
    resolution, the outlines' own), plus two for each stretch of outline that enters it and
    leaves it again (a cut from border to border). An outline wholly inside costs its corners;
    one that only passes by costs nothing. Points are looked up in the mask eroded by one pixel
    of the annotation resolution, so an outline running along the region's drawn border is
    not paid again."""
    from scipy.ndimage import binary_erosion

    inside = binary_erosion(inside)
    height, width = inside.shape
    cols = np.clip(samples.points[:, 0].astype(np.int64), 0, width - 1)
    rows = np.clip(samples.points[:, 1].astype(np.int64), 0, height - 1)
    within = inside[rows, cols]
    entries = within & ~within[samples.previous]
    return int((within & samples.corners).sum() + 2 * entries.sum())


def scale_boxes(boxes: np.ndarray, size: tuple[int, int], annotation_size: tuple[int, int]) -> np.ndarray:
    """Boxes (R, 4) at the training `size` (H, W) mapped onto the image at `annotation_size`."""
    scale = np.array([annotation_size[0] / size[0], annotation_size[1] / size[1]] * 2)
    return np.round(boxes * scale).astype(np.int64)


class Annotation:
    """What the annotator draws on one image, at its `size` as annotated (H, W): the dataset's
    polygons when it has them, else outlines traced from its label map. The label map is
    decoded on demand (`target`) and not kept; the outlines are traced once."""

    def __init__(
        self,
        size: tuple[int, int],
        polygons: list[Polygon] | None,
        target: Callable[[], np.ndarray],
        skip_classes: tuple[int, ...],
    ) -> None:
        self.size = size
        self.polygons = polygons
        self.target = target
        self.skip_classes = skip_classes
        self._outlines = polygons

    @property
    def outlines(self) -> list[Polygon]:
        if self._outlines is None:
            self._outlines = label_map_outlines(self.target(), self.skip_classes)
        return self._outlines
