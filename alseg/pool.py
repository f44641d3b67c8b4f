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

from alseg.costs import contour_clicks, polygon_clicks
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


class LabelState:
    """Which units are labelled, and at which cycle (NEVER = not labelled).

    `labelled_at` is an int array (images, regions): the labelled mask and its history in one.
    """

    def __init__(self, num_images: int, boxes: np.ndarray, image_size: tuple[int, int]) -> None:
        self.boxes = boxes
        self.image_size = image_size
        self.labelled_at = np.full((num_images, len(boxes)), NEVER, dtype=np.int32)

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

    def pixel_mask(self, image: int) -> np.ndarray:
        """Bool (H, W): pixels of the image covered by a labelled unit."""
        mask = np.zeros(self.image_size, dtype=bool)
        for y0, x0, y1, x1 in self.boxes[self.labelled[image]]:
            mask[y0:y1, x0:x1] = True
        return mask

    def labelled_fraction(self) -> float:
        """Fraction of the pool's pixels that are labelled."""
        covered = sum(int(self.pixel_mask(i).sum()) for i in self.labelled_images())
        return covered / (self.num_images * self.image_size[0] * self.image_size[1])

    def mark(self, units: np.ndarray, cycle: int) -> None:
        """Record units (K, 2) of (image, region) as labelled at `cycle`."""
        image, region = units[:, 0], units[:, 1]
        if (self.labelled_at[image, region] != NEVER).any():
            raise ValueError("a unit was labelled twice; strategies must skip labelled units")
        self.labelled_at[image, region] = cycle

    def save(self, file: IO[bytes]) -> None:
        np.save(file, self.labelled_at)

    def load(self, path: Path) -> None:
        self.labelled_at = np.load(path)


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
    `training_target`, which hides every pixel that is not labelled.
    """

    def __init__(self, pool: SegmentationDataset, state: LabelState, ledger: CostLedger) -> None:
        self._pool = pool
        self.state = state
        self.ledger = ledger

    def unit_cost(self, image: int, region: int) -> dict[str, float]:
        """What labelling one unit costs now, in every cost unit (new pixels only)."""
        y0, x0, y1, x1 = self.state.boxes[region]
        new_pixels = int((~self.state.pixel_mask(image)[y0:y1, x0:x1]).sum())
        height, width = self.state.image_size
        return {
            "images": new_pixels / (height * width),
            "pixels": float(new_pixels),
            "regions": 1.0,
            "clicks": float(self._clicks(image, self.state.boxes[region : region + 1])[0]),
        }

    def _clicks(self, image: int, boxes: np.ndarray) -> np.ndarray:
        polygons = self._pool.polygons(image)
        if polygons is not None:
            return polygon_clicks(polygons, boxes)
        return contour_clicks(self._pool.target(image).numpy(), boxes, skip_classes=(IGNORE_INDEX,))

    def reveal(self, units: Iterable[tuple[int, int]], cycle: int) -> dict[str, float]:
        """Label the units, charge the ledger and return the cost of this query."""
        total = dict.fromkeys(COST_UNITS, 0.0)
        for image, region in units:
            cost = self.unit_cost(image, region)
            self.state.mark(np.array([[image, region]]), cycle)
            for unit in COST_UNITS:
                total[unit] += cost[unit]
        self.ledger.charge(total)
        return total

    def reveal_within_budget(self, ranked: np.ndarray, unit: str, budget: float, cycle: int) -> np.ndarray:
        """Reveal units in ranked order (K, 2) until `budget` (in `unit`) is spent.

        Units whose cost is known before labelling (images, pixels, regions) are skipped when
        they no longer fit. A click cost is only known once the annotator has drawn it, so the
        last unit may overshoot a click budget; the ledger records what was really spent.
        Returns the revealed units.
        """
        spent, revealed = 0.0, []
        for image, region in ranked.tolist():
            if spent >= budget or (unit != "clicks" and budget - spent < 1e-9):
                break
            cost = self.unit_cost(image, region)
            if cost["pixels"] == 0 or (unit != "clicks" and spent + cost[unit] > budget + 1e-9):
                continue
            self.reveal([(image, region)], cycle)
            spent += cost[unit]
            revealed.append((image, region))
        return np.array(revealed, dtype=np.int64).reshape(-1, 2)

    def remaining_capacity(self, unit: str) -> float:
        """Cost (in `unit`) of labelling every unit that is not labelled yet."""
        return sum(self.unit_cost(int(i), int(r))[unit] for i, r in np.argwhere(~self.state.labelled))

    def training_target(self, image: int) -> torch.Tensor:
        """Ground truth of an image with every unlabelled pixel set to IGNORE_INDEX."""
        target = self._pool.target(image).clone()
        target[~torch.from_numpy(self.state.pixel_mask(image))] = IGNORE_INDEX
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
