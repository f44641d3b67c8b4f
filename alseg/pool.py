"""The labelling side of an experiment: query units, what is labelled, what it cost, the oracle.

A query unit is a region of an image, given as a global (image, region) index pair. A whole
image is the single region that covers it. `Regions` describe the boxes of every image (all
images of a dataset share one size); `LabelState` records when each unit was labelled; the
`CostLedger` adds up every cost unit at once; the `Oracle` is the only code that reads the
ground truth of units that are not labelled yet.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import numpy as np
import torch

from alseg.costs import label_map_outlines, polygon_clicks, scale_boxes
from alseg.data.base import IGNORE_INDEX, SegmentationDataset
from alseg.errors import AlsegError

COST_UNITS = ("images", "pixels", "regions", "clicks")
"""Currencies of labelling cost: image area (in whole images), pixels, regions, clicks."""

NEVER = -1
"""`LabelState.labelled_at` value of a unit that was never labelled."""


class Regions(ABC):
    """How an image is cut into query units."""

    @abstractmethod
    def boxes(self, height: int, width: int) -> np.ndarray:
        """Boxes (R, 4) as (y0, x0, y1, x1), pixel ranges [y0, y1) x [x0, x1)."""


class WholeImage(Regions):
    """One unit per image: the image itself."""

    def boxes(self, height: int, width: int) -> np.ndarray:
        return np.array([[0, 0, height, width]], dtype=np.int64)


class Grid(Regions):
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


class SlidingWindows(Regions):
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


class LabelState:
    """What is labelled: oracle labels per unit, and pseudo-labels kept apart.

    `labelled_at` (images, regions) holds the cycle at which each unit was labelled (NEVER =
    not labelled): the labelled mask and its history in one array. `clicks` holds what each
    labelled unit cost in clicks (NaN = not labelled). `pseudo` maps an image index to a label
    map (H, W) the model predicted for it; it costs nothing and never overrides oracle labels.
    """

    def __init__(self, num_images: int, boxes: np.ndarray, image_size: tuple[int, int]) -> None:
        self.boxes = boxes
        self.image_size = image_size
        self.labelled_at = np.full((num_images, len(boxes)), NEVER, dtype=np.int32)
        self.clicks = np.full((num_images, len(boxes)), np.nan, dtype=np.float32)
        self.pseudo: dict[int, np.ndarray] = {}

    @property
    def num_images(self) -> int:
        return self.labelled_at.shape[0]

    @property
    def labelled(self) -> np.ndarray:
        """Bool (images, regions): units labelled by the oracle."""
        return self.labelled_at != NEVER

    def labelled_images(self) -> np.ndarray:
        """Indices of images with at least one labelled unit."""
        return np.flatnonzero(self.labelled.any(axis=1))

    def unlabelled_images(self) -> np.ndarray:
        """Indices of images with at least one unit not labelled yet."""
        return np.flatnonzero(~self.labelled.all(axis=1))

    def training_images(self) -> np.ndarray:
        """Indices of images with oracle labels or pseudo-labels."""
        return np.union1d(self.labelled_images(), np.array(sorted(self.pseudo), dtype=np.int64))

    def pixel_mask(self, image: int) -> np.ndarray:
        """Bool (H, W): pixels of the image covered by a labelled unit."""
        mask = np.zeros(self.image_size, dtype=bool)
        for y0, x0, y1, x1 in self.boxes[self.labelled[image]]:
            mask[y0:y1, x0:x1] = True
        return mask

    def label_shares(self, images: np.ndarray) -> np.ndarray:
        """Share of each image's pixels that training sees labelled: 1 for pseudo-labelled images."""
        return np.array([1.0 if int(i) in self.pseudo else self.pixel_mask(int(i)).mean() for i in images])

    def labelled_fraction(self) -> float:
        """Fraction of the pool's pixels that the oracle labelled."""
        covered = sum(int(self.pixel_mask(i).sum()) for i in self.labelled_images())
        return covered / (self.num_images * self.image_size[0] * self.image_size[1])

    def mark(self, units: np.ndarray, cycle: int, clicks: np.ndarray) -> None:
        """Record units (K, 2) of (image, region) as labelled at `cycle`, with their click costs."""
        image, region = units[:, 0], units[:, 1]
        if (self.labelled_at[image, region] != NEVER).any():
            raise ValueError("a unit was labelled twice; strategies must skip labelled units")
        self.labelled_at[image, region] = cycle
        self.clicks[image, region] = clicks

    def save(self, file: IO[bytes]) -> None:
        pseudo_images = np.array(sorted(self.pseudo), dtype=np.int64)
        pseudo_maps = np.stack([self.pseudo[i] for i in pseudo_images]) if len(pseudo_images) else np.zeros(0)
        np.savez(
            file,
            labelled_at=self.labelled_at,
            clicks=self.clicks,
            pseudo_images=pseudo_images,
            pseudo_maps=pseudo_maps,
        )

    def load(self, path: Path | IO[bytes]) -> None:
        with np.load(path) as saved:
            self.labelled_at = saved["labelled_at"]
            self.clicks = saved["clicks"]
            self.pseudo = dict(zip(saved["pseudo_images"].tolist(), saved["pseudo_maps"], strict=True))


class ImagesOnly:
    """A view of a dataset that gives its images and nothing of its labels."""

    def __init__(self, dataset: SegmentationDataset) -> None:
        self._dataset = dataset
        self.class_names = dataset.class_names
        self.image_size = dataset.image_size

    def __len__(self) -> int:
        return len(self._dataset)

    def image(self, index: int) -> torch.Tensor:
        return self._dataset.image(index)


class CostLedger:
    """Labelling cost spent so far, in every cost unit at once."""

    def __init__(self) -> None:
        self.spent = dict.fromkeys(COST_UNITS, 0.0)

    def charge(self, cost: dict[str, float]) -> None:
        for unit in COST_UNITS:
            self.spent[unit] += float(cost[unit])


class Oracle:
    """The annotator: reveals the ground truth of queried units and charges their cost.

    It is the only holder of the pool's ground truth. Training reads labels through
    `training_target`, which hides every pixel that is not labelled. Clicks are counted at the
    annotation resolution (regions mapped onto the image as annotated), once per image.
    """

    def __init__(self, pool: SegmentationDataset, state: LabelState, ledger: CostLedger) -> None:
        self._pool = pool
        self.state = state
        self.ledger = ledger
        self.pool_images = ImagesOnly(pool)
        self._outline_cache: dict[int, list] = {}
        self._unit_clicks: dict[int, dict[int, float]] = {}
        self._whole_clicks: dict[int, float] = {}

    def clicks_counted_at(self) -> str:
        """The annotation size(s) (H x W) at which clicks are counted, for cycles.csv."""
        sizes = {self._pool.annotation_size(i) for i in range(len(self._pool))}
        low, high = min(sizes), max(sizes)
        name = "polygons" if self._pool.polygons(0) is not None else "label maps"
        span = f"{low[0]}x{low[1]}" if low == high else f"{low[0]}x{low[1]} to {high[0]}x{high[1]}"
        return f"{span} ({name})"

    def unit_cost(self, image: int, region: int) -> dict[str, float]:
        """What labelling one unit costs now, in every cost unit.

        Only pixels not labelled yet are paid for; where a region overlaps labelled pixels,
        its clicks are scaled by the share of its area that is new.
        """
        y0, x0, y1, x1 = self.state.boxes[region]
        new_pixels = int((~self.state.pixel_mask(image)[y0:y1, x0:x1]).sum())
        height, width = self.state.image_size
        clicks = self._clicks(image, np.array([region]))[0]
        return {
            "images": new_pixels / (height * width),
            "pixels": float(new_pixels),
            "regions": 1.0,
            "clicks": float(clicks) * new_pixels / ((y1 - y0) * (x1 - x0)),
        }

    def reveal_images(self, images: np.ndarray, cycle: int) -> None:
        """Label whole images (every unit of each) and charge each image once, as one region."""
        height, width = self.state.image_size
        regions = len(self.state.boxes)
        clicks = 0.0
        for image in images.tolist():
            # Each unit keeps its own click count (what a region-level model learns from),
            # while the ledger pays for the image once.
            units = np.array([[image, r] for r in range(regions)])
            self.state.mark(units, cycle, self._clicks(image).astype(np.float32))
            clicks += self._image_clicks(image)
        self.ledger.charge(
            {
                "images": len(images),
                "pixels": len(images) * height * width,
                "regions": len(images),
                "clicks": clicks,
            }
        )

    def _outlines(self, image: int) -> list:
        """What the annotator draws on the image: its polygons, or the outlines of its label map."""
        if image not in self._outline_cache:
            polygons = self._pool.polygons(image)
            if polygons is None:
                skip = (*self._pool.unannotated_classes, IGNORE_INDEX)
                polygons = label_map_outlines(self._pool.annotation_target(image), skip)
            self._outline_cache[image] = polygons
        return self._outline_cache[image]

    def _clicks(self, image: int, regions: np.ndarray | None = None) -> np.ndarray:
        """Clicks of the image's units (all, or `regions`), counted as annotated (cached)."""
        regions = np.arange(len(self.state.boxes)) if regions is None else regions
        known = self._unit_clicks.setdefault(image, {})
        missing = [r for r in regions.tolist() if r not in known]
        if missing:
            size = self._pool.annotation_size(image)
            boxes = scale_boxes(self.state.boxes[missing], self.state.image_size, size)
            known.update(zip(missing, polygon_clicks(self._outlines(image), boxes).tolist(), strict=True))
        return np.array([known[r] for r in regions.tolist()], dtype=np.float64)

    def _image_clicks(self, image: int) -> float:
        """Clicks of the whole image, counted once however its units overlap (cached)."""
        if image not in self._whole_clicks:
            height, width = self._pool.annotation_size(image)
            whole = np.array([[0, 0, height, width]])
            self._whole_clicks[image] = float(polygon_clicks(self._outlines(image), whole)[0])
        return self._whole_clicks[image]

    def reveal(self, units: Iterable[tuple[int, int]], cycle: int) -> dict[str, float]:
        """Label the units, charge the ledger and return the cost of this query.

        A unit the oracle labels replaces any pseudo-label of its pixels.
        """
        total = dict.fromkeys(COST_UNITS, 0.0)
        for image, region in units:
            cost = self._label(image, region, cycle)
            for unit in COST_UNITS:
                total[unit] += cost[unit]
        return total

    def _label(
        self, image: int, region: int, cycle: int, cost: dict[str, float] | None = None
    ) -> dict[str, float]:
        """Mark one unit labelled and charge what it costs now (`cost`, when already priced)."""
        cost = cost or self.unit_cost(image, region)
        self.state.mark(np.array([[image, region]]), cycle, np.array([cost["clicks"]]))
        self.ledger.charge(cost)
        return cost

    def reveal_within_budget(self, ranked: np.ndarray, unit: str, budget: float, cycle: int) -> np.ndarray:
        """Reveal units in ranked order (K, 2) until `budget` (in `unit`) is spent.

        Units whose cost is known before labelling (images, pixels, regions) are skipped when
        they no longer fit. A click cost is only known once the annotator has drawn it, so the
        last unit may overshoot a click budget; the ledger records what was really spent.
        Units with no unlabelled pixel left are skipped. Returns the revealed units.
        """
        spent, revealed = 0.0, []
        for image, region in ranked.tolist():
            if spent >= budget - 1e-9:
                break
            cost = self.unit_cost(image, region)
            if cost["pixels"] == 0 or (unit != "clicks" and spent + cost[unit] > budget + 1e-9):
                continue
            self._label(image, region, cycle, cost)
            spent += cost[unit]
            revealed.append((image, region))
        return np.array(revealed, dtype=np.int64).reshape(-1, 2)

    def units_affordable(self, unit: str, budget: float) -> int:
        """About how many units `budget` buys, at the mean cost per unit paid so far."""
        mean_cost = self.ledger.spent[unit] / max(self.ledger.spent["regions"], 1.0)
        return max(1, math.ceil(budget / mean_cost)) if mean_cost > 0 else 1

    def revealed_clicks(self) -> tuple[np.ndarray, np.ndarray]:
        """Labelled units (K, 2) and the clicks each cost: what an annotator's log records."""
        units = np.argwhere(self.state.labelled)
        return units, self.state.clicks[units[:, 0], units[:, 1]]

    def true_clicks(self) -> np.ndarray:
        """Clicks of every unit (images, regions), read from hidden labels (upper-bound ablations)."""
        return np.stack([self._clicks(i) for i in range(self.state.num_images)])

    def remaining_capacity(self, unit: str) -> float:
        """Cost (in `unit`) of labelling everything not labelled yet.

        Clicks are priced per image (its whole-image clicks times its unlabelled share), so
        overlapping windows are not counted twice and the check stays linear in the pool.
        """
        if unit == "regions":
            return float((~self.state.labelled).sum())
        height, width = self.state.image_size
        total = 0.0
        for image in self.state.unlabelled_images().tolist():
            new_share = 1.0 - self.state.pixel_mask(image).mean()
            if unit == "clicks":
                total += self._image_clicks(image) * new_share
            else:
                total += new_share * (height * width if unit == "pixels" else 1.0)
        return total

    def training_target(self, image: int) -> torch.Tensor:
        """Oracle labels of an image where labelled, else its pseudo-label, else IGNORE_INDEX."""
        mask = torch.from_numpy(self.state.pixel_mask(image))
        if image in self.state.pseudo:
            target = torch.from_numpy(self.state.pseudo[image]).long()
        else:
            target = torch.full(self.state.image_size, IGNORE_INDEX, dtype=torch.long)
        if mask.any():
            target[mask] = self._pool.target(image)[mask]
        return target


def initial_images(num_images: int, size: int | float, seed: int) -> np.ndarray:
    """Indices of the seeded initial labelled set of whole images.

    `size` is a count of images (an int) or a fraction of the pool (a float in (0, 1]). It
    depends on the seed alone, so every strategy run with one seed starts from the same set.
    """
    if isinstance(size, float) and 0 < size <= 1:
        count = math.ceil(size * num_images)
    elif isinstance(size, int) and size > 0:
        count = size
    else:
        raise AlsegError(
            f"budget.initial must be a positive number of images (e.g. 20) or a fraction of the "
            f"pool in (0, 1] (e.g. 0.1); got {size!r}."
        )
    if count > num_images:
        raise AlsegError(
            f"budget.initial asks for {count} initial images but the pool holds {num_images}; "
            "lower budget.initial or use a larger dataset."
        )
    rng = np.random.default_rng([seed, 0])
    return np.sort(rng.choice(num_images, size=count, replace=False))
