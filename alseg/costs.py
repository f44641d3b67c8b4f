"""Click costs: how many polygon vertices an annotator places to outline what lies in a box."""

from __future__ import annotations

import numpy as np

from alseg.data.base import Polygon


def clip_polygon(vertices: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Clip a polygon (N, 2) of (x, y) to a box (y0, x0, y1, x1), Sutherland-Hodgman.

    The result holds the polygon's vertices inside the box plus the points where its outline
    crosses the box border: the clicks an annotator needs to outline the part in the box.
    """
    y0, x0, y1, x1 = box
    # Each edge of the box as (axis, bound, keep values above the bound?).
    edges = ((0, x0, True), (0, x1, False), (1, y0, True), (1, y1, False))
    points = vertices
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
        points = np.array(clipped, dtype=np.float64).reshape(-1, 2)
    return points


def polygon_clicks(polygons: list[Polygon], boxes: np.ndarray) -> np.ndarray:
    """Clicks to outline every polygon part inside each box (R, 4) -> (R,) int64."""
    clicks = np.zeros(len(boxes), dtype=np.int64)
    for r, box in enumerate(boxes):
        for _, vertices in polygons:
            clicks[r] += len(clip_polygon(vertices, tuple(box)))
    return clicks


def contour_clicks(
    target: np.ndarray, boxes: np.ndarray, skip_classes: tuple[int, ...], tolerance: float = 0.5
) -> np.ndarray:
    """Estimated clicks per box (R, 4) -> (R,) when a dataset has no polygons.

    Each connected part of each class in the box is outlined by its contour, simplified with
    Douglas-Peucker at `tolerance` pixels; its vertices are the clicks. Classes in
    `skip_classes` (background, ignore) are not outlined, as annotators do not draw them.
    """
    from skimage.measure import approximate_polygon, find_contours

    clicks = np.zeros(len(boxes), dtype=np.int64)
    for r, (y0, x0, y1, x1) in enumerate(boxes):
        crop = target[y0:y1, x0:x1]
        for cls in np.unique(crop):
            if int(cls) in skip_classes:
                continue
            mask = np.pad(crop == cls, 1).astype(np.float32)
            for contour in find_contours(mask, 0.5):
                # A closed contour repeats its first point at the end.
                clicks[r] += max(len(approximate_polygon(contour, tolerance)) - 1, 3)
    return clicks
