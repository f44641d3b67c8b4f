"""What is labelled: the oracle's units per cycle, their click costs, and pseudo-labels."""

from __future__ import annotations

from pathlib import Path
from typing import IO

import numpy as np
import torch

from alseg.data.base import IGNORE_INDEX
from alseg.regions.base import RegionMaps

NEVER = -1
"""`LabelState.labelled_at` value of a unit that was never labelled."""

NO_CLASS = -1
"""`LabelState.dominant` value of a unit without a class answer (labelled precisely, or not)."""

CLASS_SET_BASE = 1 << 32
"""Label value of a pixel whose unit was answered with several classes: CLASS_SET_BASE plus the
bit mask of the classes (bit c for class c); the pixel's class is one of them (a partial label)."""


def class_set_code(classes: np.ndarray) -> int:
    """Label value of the class answer `classes`: the class itself when it is one, IGNORE (255)
    when none, else CLASS_SET_BASE plus their bit mask."""
    classes = np.unique(classes)
    if len(classes) == 0:
        return IGNORE_INDEX
    if len(classes) == 1:
        return int(classes[0])
    return CLASS_SET_BASE + int(np.bitwise_or.reduce(np.left_shift(1, classes.astype(np.int64))))


def candidate_mask(targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Bool (B, C, H, W): the classes each pixel's label allows. A class index allows itself,
    a class-set label (CLASS_SET_BASE + mask) its classes, IGNORE (and any other value) none."""
    classes = torch.arange(num_classes, device=targets.device).view(1, -1, 1, 1)
    labels = targets.unsqueeze(1)
    single = labels == classes
    bits = torch.where(labels >= CLASS_SET_BASE, labels - CLASS_SET_BASE, torch.zeros_like(labels))
    return single | ((bits >> classes) & 1).bool()


class LabelState:
    """What is labelled: oracle labels per unit, and pseudo-labels kept apart.

    `labelled_at` (images, regions) holds the cycle at which each unit was labelled (NEVER =
    not labelled): the labelled mask and its history in one array. `clicks` holds what each
    labelled unit cost in clicks (NaN = not labelled). `dominant` holds the class answer the
    annotator gave a unit: its dominant class, IGNORE_INDEX when no class covered enough of it,
    or a class-set code (see class_set_code) when answered with the classes it holds; NO_CLASS
    for units labelled precisely or not at all. Tables are as wide as
    the image with the most regions; `exists` marks real regions. `pseudo` maps an image index
    to a label map (H, W) the model predicted for it; it costs nothing and never overrides
    oracle labels.
    """

    def __init__(self, regions: RegionMaps, image_size: tuple[int, int]) -> None:
        self.regions = regions
        self.image_size = image_size
        self.exists: np.ndarray = regions.exists
        shape = (len(regions), regions.width)
        self.labelled_at = np.full(shape, NEVER, dtype=np.int32)
        self.clicks = np.full(shape, np.nan, dtype=np.float32)
        self.dominant: np.ndarray = np.full(shape, NO_CLASS, dtype=np.int64)
        self.pseudo: dict[int, np.ndarray] = {}

    @property
    def num_images(self) -> int:
        return self.labelled_at.shape[0]

    @property
    def labelled(self) -> np.ndarray:
        """Bool (images, regions): units labelled by the oracle."""
        return self.labelled_at != NEVER

    @property
    def available(self) -> np.ndarray:
        """Bool (images, regions): units that exist and are not labelled yet."""
        return self.exists & ~self.labelled

    def labelled_images(self) -> np.ndarray:
        """Indices of images with at least one labelled unit."""
        return np.flatnonzero(self.labelled.any(axis=1))

    def unlabelled_images(self) -> np.ndarray:
        """Indices of images with at least one unit not labelled yet."""
        return np.flatnonzero(self.available.any(axis=1))

    def training_images(self) -> np.ndarray:
        """Indices of images with oracle labels or pseudo-labels."""
        return np.union1d(self.labelled_images(), np.array(sorted(self.pseudo), dtype=np.int64))

    def pixel_mask(self, image: int) -> np.ndarray:
        """Bool (H, W): pixels of the image covered by a labelled unit."""
        return self.regions[image].mask(np.flatnonzero(self.labelled[image]))

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
        if not self.exists[image, region].all():
            raise ValueError("a unit beyond its image's regions was labelled; rank existing units only")
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
            dominant=self.dominant,
            pseudo_images=pseudo_images,
            pseudo_maps=pseudo_maps,
        )

    def load(self, path: Path | IO[bytes]) -> None:
        with np.load(path) as saved:
            if saved["labelled_at"].shape != self.labelled_at.shape:
                raise ValueError(
                    f"a saved label state of {saved['labelled_at'].shape} units does not fit this pool's "
                    f"{self.labelled_at.shape}"
                )
            self.labelled_at = saved["labelled_at"]
            self.clicks = saved["clicks"]
            # States saved before dominant-class labels existed hold precise labels only.
            self.dominant = (
                saved["dominant"].astype(np.int64)
                if "dominant" in saved
                else np.full(self.labelled_at.shape, NO_CLASS, dtype=np.int64)
            )
            self.pseudo = dict(zip(saved["pseudo_images"].tolist(), saved["pseudo_maps"], strict=True))
