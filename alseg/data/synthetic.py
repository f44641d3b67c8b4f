"""An embedded synthetic segmentation dataset: procedurally drawn polygons, no files needed.

Each image is a textured, noisy background with a few filled polygons and ellipses drawn on it.
The classes differ in colour, texture, shape, size and frequency; one of them (`spot`) is rare
and small, so an active learner that finds it gains mIoU that random sampling misses. Every
object is drawn from its polygon, so the polygon's vertex count is its true click cost.
Images depend only on (seed, split, index).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw

from alseg.data.base import DataSplits, Polygon
from alseg.errors import AlsegError

CLASS_NAMES: tuple[str, ...] = ("background", "disc", "block", "shard", "blob", "spot")


@dataclass(frozen=True)
class ObjectClass:
    """How objects of one class look: colour (RGB), stripe texture and how often they occur."""

    colour: tuple[float, float, float]
    stripe_period: float  # pixels; 0 = untextured
    weight: float  # relative frequency among drawn objects
    radius: tuple[float, float]  # object size range, as a fraction of the image side


OBJECT_CLASSES = {
    1: ObjectClass((0.80, 0.30, 0.25), 0.0, 0.34, (0.10, 0.20)),  # disc: ellipse
    2: ObjectClass((0.25, 0.35, 0.80), 4.0, 0.30, (0.10, 0.18)),  # block: rotated rectangle
    3: ObjectClass((0.85, 0.80, 0.25), 0.0, 0.18, (0.08, 0.15)),  # shard: triangle
    4: ObjectClass((0.30, 0.75, 0.35), 6.0, 0.13, (0.08, 0.14)),  # blob: irregular star
    5: ObjectClass((0.90, 0.30, 0.90), 0.0, 0.05, (0.03, 0.05)),  # spot: rare and small
}
SPLIT_IDS = {"train": 0, "val": 1, "test": 2}


def _ellipse(rng: np.random.Generator, centre: np.ndarray, radius: float, n: int) -> np.ndarray:
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(0, 2 * np.pi)
    ratio = rng.uniform(0.6, 1.0)
    tilt = rng.uniform(0, np.pi)
    x, y = radius * np.cos(angles), radius * ratio * np.sin(angles)
    c, s = np.cos(tilt), np.sin(tilt)
    return centre + np.stack([c * x - s * y, s * x + c * y], axis=1)


def _object_polygon(rng: np.random.Generator, cls: int, side: int) -> np.ndarray:
    spec = OBJECT_CLASSES[cls]
    radius = rng.uniform(*spec.radius) * side
    centre = rng.uniform(0, side, size=2)
    if cls == 1:
        return _ellipse(rng, centre, radius, int(rng.integers(14, 21)))
    if cls == 2:
        return _ellipse(rng, centre, radius * 1.2, 4)
    if cls == 3:
        return _ellipse(rng, centre, radius * 1.3, 3)
    if cls == 4:
        n = int(rng.integers(8, 13))
        star = _ellipse(rng, centre, 1.0, n) - centre
        lengths = radius * np.where(np.arange(n) % 2 == 0, 1.0, rng.uniform(0.45, 0.7))
        return centre + star * lengths[:, None]
    return _ellipse(rng, centre, radius, 8)


def rasterise(vertices: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bool (H, W): the pixels a filled polygon (N, 2) of (x, y) covers."""
    canvas = Image.new("L", (width, height), 0)
    ImageDraw.Draw(canvas).polygon([tuple(v) for v in vertices.tolist()], fill=1)
    return np.asarray(canvas, dtype=bool)


def random_polygon(rng: np.random.Generator, vertices: int, size: float) -> np.ndarray:
    """A simple, star-shaped polygon (N, 2) of `vertices` corners, `size` pixels across, at
    any rotation, centred at (size / 2 + 2, size / 2 + 2). Its corners are ones an annotator
    would click: edges of at least max(3, size / 12) pixels and turns of at least 20 degrees."""
    while True:
        angles = np.sort(rng.uniform(0, 2 * np.pi, vertices))
        radii = rng.uniform(0.5, 1.0, vertices) * size / 2
        points = np.stack([np.cos(angles) * radii, np.sin(angles) * radii], axis=1)
        edges = np.roll(points, -1, axis=0) - points
        heading = np.arctan2(edges[:, 1], edges[:, 0])
        turns = np.abs((np.diff(np.append(heading, heading[0])) + np.pi) % (2 * np.pi) - np.pi)
        long_enough = np.hypot(*edges.T).min() >= max(3.0, size / 12)
        if long_enough and turns.min() >= np.deg2rad(20) and np.ptp(points, axis=0).min() >= 3:
            return points + size / 2 + 2


def _background(rng: np.random.Generator, side: int) -> np.ndarray:
    """A smooth grey-brown texture: a random base colour plus a few low-frequency waves."""
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side
    base = rng.uniform(0.35, 0.6) + rng.uniform(-0.08, 0.08, size=3)
    image = np.broadcast_to(base[:, None, None], (3, side, side)).astype(np.float32).copy()
    for _ in range(3):
        fx, fy = rng.uniform(0.5, 3.0, size=2)
        wave = np.sin(2 * np.pi * (fx * xx + fy * yy) + rng.uniform(0, 2 * np.pi))
        image += rng.uniform(0.03, 0.10, size=3)[:, None, None].astype(np.float32) * wave
    return image


def _draw_object(
    image: np.ndarray, label: np.ndarray, vertices: np.ndarray, cls: int, rng: np.random.Generator
) -> None:
    side = label.shape[0]
    mask = rasterise(vertices, side, side)
    spec = OBJECT_CLASSES[cls]
    colour = np.clip(np.asarray(spec.colour) + rng.uniform(-0.1, 0.1, size=3), 0, 1)
    fill = np.broadcast_to(colour[:, None, None], image.shape).astype(np.float32)
    if spec.stripe_period:
        yy, xx = np.mgrid[0:side, 0:side]
        angle = rng.uniform(0, np.pi)
        phase = (np.cos(angle) * xx + np.sin(angle) * yy) * 2 * np.pi / spec.stripe_period
        fill = fill + 0.15 * np.sin(phase)[None].astype(np.float32)
    image[:, mask] = fill[:, mask]
    label[mask] = cls


def render_image(
    seed: int, split: str, index: int, size: int, noise: float
) -> tuple[np.ndarray, np.ndarray, list[Polygon]]:
    """Draw one image: (uint8 RGB (3, H, W), uint8 labels (H, W), polygons back to front)."""
    rng = np.random.default_rng([seed, SPLIT_IDS[split], index])
    image = _background(rng, size)
    label = np.zeros((size, size), dtype=np.uint8)
    classes = np.array(list(OBJECT_CLASSES))
    weights = np.array([spec.weight for spec in OBJECT_CLASSES.values()])
    polygons: list[Polygon] = []
    for cls in rng.choice(classes, size=int(rng.integers(2, 7)), p=weights / weights.sum()):
        vertices = _object_polygon(rng, int(cls), size)
        _draw_object(image, label, vertices, int(cls), rng)
        polygons.append((int(cls), vertices.astype(np.float32)))
    image += rng.normal(0, noise, size=image.shape).astype(np.float32)
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8), label, polygons


class SyntheticDataset:
    """One split of the synthetic dataset, rendered once into memory (uint8)."""

    class_names = CLASS_NAMES
    unannotated_classes: tuple[int, ...] = (0,)
    per_image_classes: tuple[int, ...] = ()

    def __init__(self, split: str, length: int, size: int, seed: int, noise: float) -> None:
        rendered = [render_image(seed, split, i, size, noise) for i in range(length)]
        self.image_size = (size, size)
        self._images = torch.from_numpy(np.stack([r[0] for r in rendered]))
        self._targets = torch.from_numpy(np.stack([r[1] for r in rendered]))
        self._polygons = [r[2] for r in rendered]
        self._derived: dict[tuple[int, str], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._polygons)

    def image(self, index: int) -> torch.Tensor:
        return self._images[index].float() / 255

    def target(self, index: int) -> torch.Tensor:
        return self._targets[index].long()

    def derived(self, index: int, name: str, compute: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        if (index, name) not in self._derived:
            self._derived[index, name] = compute(self._images[index].numpy())
        return self._derived[index, name]

    def annotation_size(self, index: int) -> tuple[int, int]:
        return self.image_size  # drawn at the size it is used at

    def annotation_target(self, index: int) -> np.ndarray:
        return self._targets[index].numpy()

    def source(self, index: int) -> str:
        return f"synthetic image {index} (dataset.splits.seed)"

    def annotation_image(self, index: int) -> np.ndarray:
        return self._images[index].permute(1, 2, 0).numpy()

    def polygons(self, index: int) -> list[Polygon]:
        return self._polygons[index]


def synthetic_splits(
    train: int = 400,
    val: int = 100,
    test: int = 100,
    size: int = 64,
    seed: int = 0,
    noise: float = 0.08,
    limit: int | None = None,
) -> DataSplits:
    """Build the train pool and the val and test splits of the synthetic dataset, each of at
    most `limit` images when given.

    `seed` fixes the data itself (not the experiment), so runs with any experiment seed share it.
    """
    if limit is not None:
        train, val, test = (min(count, limit) for count in (train, val, test))
    if min(train, val, test) < 1:
        raise AlsegError(
            f"dataset.train, dataset.val and dataset.test must each be at least 1 image "
            f"(got {train}, {val}, {test})."
        )
    if not isinstance(size, int):
        raise AlsegError(f"dataset.splits.size of the synthetic set is one side in pixels (got {size}).")
    if size < 16:
        raise AlsegError(f"dataset.size must be at least 16 pixels (got {size}).")
    return DataSplits(
        train=SyntheticDataset("train", train, size, seed, noise),
        val=SyntheticDataset("val", val, size, seed, noise),
        test=SyntheticDataset("test", test, size, seed, noise),
    )
