"""Click costs: how many polygon vertices an annotator places to outline what lies in a box.

Costs are counted at the annotation resolution (the image as the annotator sees it), never at
the size the network trains at: `scale_boxes` maps training-size boxes onto it. Where a dataset
has polygons, the clicks are their vertices, clipped to the box; where it has only label maps,
`contour_clicks` estimates them (docs/click_costs.md measures the estimate).
"""

from __future__ import annotations

import numpy as np

from alseg.data.base import Polygon

CONTOUR_TOLERANCE = 1.25
"""Douglas-Peucker tolerance of the contour estimate, in pixels of the annotation resolution:
the smallest that removes the staircase of a rasterised straight edge (docs/click_costs.md)."""

MIN_OUTLINED_AREA = 4.0
"""Parts of a class smaller than this (pixels) are specks an annotator does not outline."""

_SAME_POINT = 1e-6  # pixels: clipped points closer than this are one click


def clip_polygon(vertices: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
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
        clipped = []
        for i in range(len(points)):
            current, previous = points[i], points[i - 1]
            if inside[i] != inside[i - 1]:
                t = (bound - previous[axis]) / (current[axis] - previous[axis])
                clipped.append(previous + t * (current - previous))
            if inside[i]:
                clipped.append(current)
        points = _distinct(np.array(clipped, dtype=np.float64).reshape(-1, 2))
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
    """Clicks to outline every polygon part inside each box (R, 4) -> (R,) int64."""
    clicks = np.zeros(len(boxes), dtype=np.int64)
    for r, box in enumerate(boxes):
        for _, vertices in polygons:
            clicks[r] += len(clip_polygon(vertices, tuple(box)))
    return clicks


def outline_vertices(contour: np.ndarray, tolerance: float) -> int:
    """Vertices of a closed contour (N, 2) simplified with Douglas-Peucker at `tolerance`.

    A closed contour has no natural start; a start in the middle of a straight edge would
    survive as a spurious vertex. So it is simplified once, then again starting at one of the
    corners the first pass found. Douglas-Peucker splits greedily and can keep two corners a
    pixel apart where a rasterised tip is flat; corners that lie within `tolerance` of the
    line through their neighbours are then dropped, the flattest first.
    """
    from skimage.measure import approximate_polygon

    points = contour[:-1] if np.array_equal(contour[0], contour[-1]) else contour
    start = int(np.argmax(np.hypot(*(points - points[0]).T)))
    for _ in range(2):
        points = np.roll(points, -start, axis=0)
        corners = approximate_polygon(np.vstack([points, points[:1]]), tolerance)[:-1]
        middle = corners[len(corners) // 2]
        start = int(np.argmin(np.hypot(*(points - middle).T)))
    while len(corners) > 3:
        deviation = _chord_distances(corners)
        flattest = int(np.argmin(deviation))
        if deviation[flattest] >= tolerance:
            break
        corners = np.delete(corners, flattest, axis=0)
    return max(len(corners), 3)


def _chord_distances(corners: np.ndarray) -> np.ndarray:
    """Distance of each corner of a closed outline (N, 2) to the line through its neighbours."""
    before, after = np.roll(corners, 1, axis=0), np.roll(corners, -1, axis=0)
    chord = after - before
    offset = corners - before
    cross = np.abs(chord[:, 0] * offset[:, 1] - chord[:, 1] * offset[:, 0])
    return cross / np.maximum(np.hypot(*chord.T), 1e-9)


def contour_clicks(
    target: np.ndarray,
    boxes: np.ndarray,
    skip_classes: tuple[int, ...],
    tolerance: float = CONTOUR_TOLERANCE,
    min_area: float = MIN_OUTLINED_AREA,
) -> np.ndarray:
    """Estimated clicks per box (R, 4) -> (R,) when a dataset has no polygons.

    Each connected part of each class in the box is outlined by its contour, simplified with
    Douglas-Peucker at `tolerance` pixels; its vertices are the clicks. Classes in
    `skip_classes` (background, ignore) and parts under `min_area` pixels are not outlined,
    as annotators do not draw them. `target` is the label map at the annotation resolution.
    """
    from skimage.measure import find_contours

    clicks = np.zeros(len(boxes), dtype=np.int64)
    for r, (y0, x0, y1, x1) in enumerate(boxes):
        crop = target[y0:y1, x0:x1]
        for cls in np.unique(crop):
            if int(cls) in skip_classes:
                continue
            mask = np.pad(crop == cls, 1).astype(np.float32)
            for contour in find_contours(mask, 0.5):
                if polygon_area(contour) >= min_area:
                    clicks[r] += outline_vertices(contour, tolerance)
    return clicks


def scale_boxes(boxes: np.ndarray, size: tuple[int, int], annotation_size: tuple[int, int]) -> np.ndarray:
    """Boxes (R, 4) at the training `size` (H, W) mapped onto the image at `annotation_size`."""
    scale = np.array([annotation_size[0] / size[0], annotation_size[1] / size[1]] * 2)
    return np.round(boxes * scale).astype(np.int64)
