"""How well the contour estimate counts clicks, against exact vertex counts.

Three sets: rasterised polygons of 3-12 corners, 8-200 px across, at any rotation (truth: their
corners); the shapes of a known failure (rotated square, pentagon, hexagon, star, pentagons of
growing size); the BDD100K sample's poly2d outlines at 1280 x 720 (truth: their vertices, and
the same outline simplified at the estimator's tolerance), when ../shared/data has them. Each
row gives the median ratio estimate / truth, the share of objects within [0.67, 1.5] and,
for the rasterised polygons, the share within one vertex. Run for several tolerances.

    python scripts/bench_click_estimate.py [--polygons 400] [--tolerances 0.5 1 1.25 1.5 2]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from benchlib import print_table, save

from alseg.clicks import (
    CONTOUR_TOLERANCE,
    MIN_OUTLINED_AREA,
    contour_clicks,
    outline_vertices,
    polygon_clicks,
)
from alseg.data.cityscapes import scalabel_polygons
from alseg.data.synthetic import random_polygon, rasterise, render_image

BDD_POLYGONS = (
    Path(__file__).resolve().parents[2]
    / "shared/data/samples/bdd100k/labels/pan_seg/polygons/sample_polygons.json"
)


def regular(corners: int, radius: float, degrees: float, star: bool = False) -> np.ndarray:
    """A regular polygon (or a star of `corners` points) rotated by `degrees`."""
    count = 2 * corners if star else corners
    angles = np.deg2rad(degrees) + np.arange(count) * 2 * np.pi / count
    radii = np.where(np.arange(count) % 2 == 1, 0.45 * radius, radius) if star else np.full(count, radius)
    return np.stack([np.cos(angles) * radii, np.sin(angles) * radii], axis=1) + radius + 3


def estimate(vertices: np.ndarray, shape: tuple[int, int], tolerance: float, min_area: float) -> int:
    mask = rasterise(vertices, *shape).astype(np.int64)
    box = np.array([[0, 0, shape[0], shape[1]]])
    return int(contour_clicks(mask, box, (0,), tolerance, min_area)[0])


def known_shapes() -> list[tuple[str, np.ndarray, int]]:
    shapes = [
        ("square 70 px at 30 deg", regular(4, 49.5, 30), 4),
        ("pentagon r 35", regular(5, 35, 10), 5),
        ("hexagon r 35", regular(6, 35, 10), 6),
        ("5-point star r 35", regular(5, 35, 10, star=True), 10),
    ]
    return shapes + [(f"pentagon r {r}", regular(5, r, 10), 5) for r in (5, 10, 20, 40)]


def summary(name: str, estimates: np.ndarray, truth: np.ndarray, tolerance: float) -> dict:
    ratio = estimates / truth
    return {
        "set": name,
        "tolerance": tolerance,
        "objects": len(truth),
        "median_ratio": float(np.median(ratio)),
        "share_in_0.67_1.5": float(np.mean((ratio >= 0.67) & (ratio <= 1.5))),
        "share_within_1": float(np.mean(np.abs(estimates - truth) <= 1)),
        "mean_error": float(np.mean(estimates - truth)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polygons", type=int, default=400)
    parser.add_argument(
        "--tolerances", type=float, nargs="+", default=[0.5, 1.0, CONTOUR_TOLERANCE, 1.5, 2.0]
    )
    args = parser.parse_args()
    rng = np.random.default_rng(2026)
    polygons = []
    for _ in range(args.polygons):
        size = float(rng.uniform(8, 200))
        # An 8-pixel object cannot show 12 corners: at most one corner per 4 pixels across.
        corners = int(rng.integers(3, 13 if size >= 48 else max(4, int(size / 4) + 1)))
        polygons.append((random_polygon(rng, corners, size), corners, int(size) + 5))
    shapes = known_shapes()
    human = []
    if BDD_POLYGONS.is_file():
        human = [
            (v, len(v)) for _, v in scalabel_polygons(json.loads(BDD_POLYGONS.read_text())[0]) if len(v) >= 3
        ]
    rows, per_shape = [], []
    for tolerance in args.tolerances:
        min_area = MIN_OUTLINED_AREA
        found = np.array([estimate(v, (side, side), tolerance, min_area) for v, _, side in polygons])
        rows.append(
            summary("rasterised 3-12 corners", found, np.array([c for _, c, _ in polygons]), tolerance)
        )
        found = np.array([estimate(v, (110, 110), tolerance, min_area) for _, v, _ in shapes])
        rows.append(summary("known shapes", found, np.array([t for *_, t in shapes]), tolerance))
        per_shape += [
            {"shape": name, "tolerance": tolerance, "truth": truth, "estimate": int(e)}
            for (name, _, truth), e in zip(shapes, found, strict=True)
        ]
        for side in (64, 256):
            found, exact = synthetic_counts(side, tolerance, min_area)
            rows.append(summary(f"synthetic images at {side} px", found, exact, tolerance))
        if human:
            found = np.array([estimate(v, (720, 1280), tolerance, min_area) for v, _ in human])
            rows.append(
                summary("BDD100K poly2d, vertices", found, np.array([n for _, n in human]), tolerance)
            )
            simplified = np.array([simplified_vertices(v, tolerance) for v, _ in human])
            rows.append(summary("BDD100K poly2d, simplified", found, simplified, tolerance))
    print_table(rows)
    print_table([row for row in per_shape if row["tolerance"] == CONTOUR_TOLERANCE])
    if human:
        edges = np.concatenate([np.hypot(*np.diff(np.vstack([v, v[:1]]), axis=0).T) for v, _ in human])
        print(
            f"BDD100K poly2d: median edge {np.median(edges):.2f} px, "
            f"{np.mean(edges < 0.01):.1%} of edges zero"
        )
    save("click_estimate", rows, shapes=per_shape)


def synthetic_counts(side: int, tolerance: float, min_area: float) -> tuple[np.ndarray, np.ndarray]:
    """Estimated and exact clicks of 100 synthetic images (exact: their polygons' vertices,
    occluded ones included; discs are 14-20-gons)."""
    box = np.array([[0, 0, side, side]])
    found, exact = [], []
    for index in range(100):
        _, label, polygons = render_image(0, "train", index, side, 0.0)
        found.append(int(contour_clicks(label, box, (0,), tolerance, min_area)[0]))
        exact.append(int(polygon_clicks(polygons, box)[0]))
    return np.array(found), np.array(exact)


def simplified_vertices(vertices: np.ndarray, tolerance: float) -> int:
    """Vertices of a drawn outline (N, 2) of (x, y) after Douglas-Peucker at `tolerance`."""
    return outline_vertices(np.vstack([vertices, vertices[:1]])[:, ::-1], tolerance)


if __name__ == "__main__":
    main()
